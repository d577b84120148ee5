"""Evaluates a learned optimizer, or a hand-designed baseline, on a problem.

    python evaluate.py --problem=quadratic --optimizer=L2L --path=./quadratic
    python evaluate.py --problem=quadratic --optimizer=Adam --tune --plot

`python evaluate.py --help` lists every flag; the installed command
`l2l-evaluate` is the same program (see
l2l/experiment/evaluate_command.py).
"""

from l2l.experiment import evaluate_command

if __name__ == "__main__":
  evaluate_command.run()
