"""Compares evaluations: one table, and a plot, of the records files given.

    l2l-compare records/*.npz
    l2l-compare a.npz b.npz --output=comparison.png --format=csv

(or `python -m l2l.experiment.compare_command ...`). The positional
arguments are records files (.npz) that evaluate.py wrote, one or more;
the table has a row per file, and a warning says when the files were not
evaluated on the same instances (l2l/experiment/compare.py).
"""

import os
import sys

from absl import flags

from l2l.experiment import cli
from l2l.experiment import compare
from l2l.experiment import plots

FLAGS = flags.FLAGS
flags.DEFINE_string("output", None, "Also write a PNG of loss versus step of "
                    "every records file here.")
flags.DEFINE_enum("format", "markdown", ["markdown", "csv"],
                  "Format of the table.")


# What the command takes after its flags.
ARGUMENTS = "RECORDS.npz [RECORDS.npz ...]"


# The first bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_output(output, record_paths):
  """Exits with one line unless `output` may receive the plot.

  The plot replaces a PNG (an earlier plot), never anything else: not one
  of the records files it draws, nor a file of another kind.

  Args:
    output: the --output path.
    record_paths: the records files given.
  """
  if not output.lower().endswith(".png"):
    cli.fail("--output={} is invalid: the plot is a PNG image; expected a "
             "path ending in .png.".format(output))
  if any(os.path.exists(path) and os.path.exists(output) and
         os.path.samefile(path, output) for path in record_paths):
    cli.fail("--output={} is one of the records files to compare; choose "
             "another path for the plot.".format(output))
  if os.path.isdir(output):
    cli.fail("--output={} is a directory; expected a .png file "
             "path.".format(output))
  if os.path.exists(output):
    try:
      with open(output, "rb") as stream:
        is_png = stream.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError as error:
      cli.fail("--output={} cannot be read ({}).".format(output, error))
    if not is_png:
      cli.fail("--output={} exists and is not a PNG image; the plot "
               "replaces only an earlier plot: choose another path.".format(
                   output))


def main(argv):
  cli.check_not_empty("output")
  record_paths = argv[1:]
  if not record_paths:
    cli.fail("no records files given: expected {} {} (the .npz files "
             "evaluate.py wrote).".format(cli.program(), ARGUMENTS))
  if FLAGS.output:
    check_output(FLAGS.output, record_paths)
  with cli.plain_errors():
    table_rows = compare.rows(record_paths)
    text = compare.format_table(table_rows, FLAGS.format)
  for message in compare.differences(table_rows):
    sys.stderr.write("Warning: {}; the optimizers were not compared on the "
                     "same instances.\n".format(message))
  sys.stdout.write(text)
  if FLAGS.output:
    with cli.plain_errors("Could not write {}".format(FLAGS.output)):
      plots.loss_curves(record_paths, FLAGS.output)
    # Not on stdout, which may be a CSV file.
    sys.stderr.write("Plot: {}\n".format(FLAGS.output))


def run():
  """Entry point of the l2l-compare command."""
  cli.run(main, sys.modules[__name__], arguments=ARGUMENTS)


if __name__ == "__main__":
  run()
