"""Meta-trains a learned optimizer on a problem.

    python train.py --problem=quadratic --save_path=./quadratic

`python train.py --help` lists every flag; the installed command `l2l-train`
is the same program (see l2l/experiment/train_command.py).
"""

from l2l.experiment import train_command

if __name__ == "__main__":
  train_command.run()
