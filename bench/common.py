"""What the benchmarks share.

The settings every benchmark states (the training horizon and unroll), the
output (one machine-readable `BENCH` line per figure on stdout, and
markdown tables), and how a benchmark starts: `run`, which turns bad input
into one line, as the commands do, and `check_integers` for list flags (the
others take `cli`'s checks).
"""

import collections
import datetime
import math
import numbers
import os
import timeit

# The scripts import this module before anything imports TensorFlow; cli
# quiets its start-up notices, which would bury the figures.
from absl import app

from l2l import files
from l2l.experiment import cli

# Optimizer steps per meta-training epoch: the training horizon.
TRAIN_STEPS = 100
# Steps per unroll (one meta-iteration); TRAIN_STEPS / UNROLL_LENGTH unrolls
# make an epoch.
UNROLL_LENGTH = 20
# The meta-optimizer's Adam learning rate (train.py's default).
META_LEARNING_RATE = 0.001


# Mean final losses closer than this (relative) count as a tie.
TIE_TOLERANCE = 0.01

# The copy of the original MNIST files on the machines the benches run on.
SHARED_MNIST_DIR = "/work/shared/data/mnist"


def mnist_dir(flag_value):
  """A bench's MNIST directory: its flag, else SHARED_MNIST_DIR if present.

  Args:
    flag_value: the bench's --data_dir, or None.

  Returns:
    A directory, or None to let the reader search ($L2L_DATA_DIR, then the
    l2l-data cache).
  """
  if flag_value:
    return flag_value
  return SHARED_MNIST_DIR if os.path.isdir(SHARED_MNIST_DIR) else None


def rank_key(mean):
  """A mean final loss as it ranks: a diverged one (NaN or infinite) last.

  NaN compares false with everything, so `min` would keep whichever came
  first; with this key a diverged figure is never the lowest.
  """
  return mean if math.isfinite(mean) else math.inf


def spread(losses):
  """Losses of runs over seeds: `(median, lowest, highest, mean)`.

  A diverged run (NaN or infinite) counts as infinite, the worst, so the
  median and the range still order the runs (NaN would make them
  meaningless) and the mean is infinite.

  Args:
    losses: one final loss per run, at least one.

  Returns:
    Four floats.
  """
  ranked = sorted(rank_key(float(loss)) for loss in losses)
  middle = len(ranked) // 2
  median = (ranked[middle] if len(ranked) % 2 else
            (ranked[middle - 1] + ranked[middle]) / 2)
  return median, ranked[0], ranked[-1], math.fsum(ranked) / len(ranked)


def beats(first, second):
  """True if mean final loss `first` is lower than `second`, a diverged one
  (NaN or infinite) counting as the highest: it beats nothing."""
  return math.isfinite(first) and rank_key(first) < rank_key(second)


def tied(first, second):
  """True if two finite mean final losses differ by at most TIE_TOLERANCE.

  Diverged figures (NaN or infinite) tie with nothing, not even each other.
  """
  if not (math.isfinite(first) and math.isfinite(second)):
    return False
  return first == second or (
      abs(first - second) <= TIE_TOLERANCE * min(abs(first), abs(second)))


def format_value(value):
  """Formats a figure compactly: 4 significant digits, `inf`, `nan`.

  Args:
    value: a number, or anything else (printed with `str`).

  Returns:
    The text.
  """
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    return str(value)
  if isinstance(value, numbers.Integral):
    return str(int(value))
  value = float(value)
  if math.isnan(value):
    return "nan"
  if math.isinf(value):
    return "inf" if value > 0 else "-inf"
  return "{:.4g}".format(value)


def bench_line(script, fields):
  """One machine-readable line: `BENCH <script> key=value ...`.

  Args:
    script: "quality" or "speed".
    fields: an ordered mapping of keys to values (see `format_value`).

  Returns:
    The line, without a newline.
  """
  pairs = ("{}={}".format(key, format_value(value))
           for key, value in fields.items())
  return " ".join(["BENCH", script] + list(pairs))


def print_bench_line(script, fields):
  """Prints `bench_line(script, fields)` to stdout, flushed at once."""
  print(bench_line(script, fields), flush=True)


def markdown_table(headers, rows):
  """A markdown table.

  Args:
    headers: the column titles.
    rows: lists of cells, one per column; cells are formatted with
      `format_value` unless they are strings already.

  Returns:
    The table, one line per row, ending with a newline.
  """
  def line(cells):
    return "| " + " | ".join(
        c if isinstance(c, str) else format_value(c) for c in cells) + " |"
  lines = [line(headers), line(["---"] * len(headers))]
  lines.extend(line(row) for row in rows)
  return "\n".join(lines) + "\n"


def run(main):
  """Runs a benchmark's `main` as `app.run` does, bad input as one line.

  A benchmark checks its flags first (`cli.check_at_least` and the like,
  `check_integers`), each failing with one line; a value that fails later
  (an unknown problem, missing data) is reported as the commands report it
  (`cli.plain_errors`: "Error: ...", exit status 1; `--verbosity=1` keeps
  the traceback).
  """
  def main_with_plain_errors(argv):
    with cli.plain_errors():
      return main(argv)
  app.run(main_with_plain_errors, flags_parser=cli.parse_flags)


def check_integers(name, minimum=1):
  """Exits with one line unless list flag `name` holds integers >= minimum.

  The list flags' counterpart of `cli.check_at_least`.

  Args:
    name: a `flags.DEFINE_list` flag.
    minimum: the smallest value an item may take.
  """
  def integers(values):
    if not all(_is_integer_text(value) and int(value) >= minimum
               for value in values):
      raise ValueError("expected integers >= {}, comma-separated".format(
          minimum))
  cli.check_with(name, integers)


def _is_integer_text(text):
  try:
    int(text)
  except ValueError:
    return False
  return True


def print_environment(script):
  """Prints a `BENCH <script> stage=environment` line: date, cores, load.

  The machine may be shared; a high load average means slower, noisier
  timings.
  """
  print_bench_line(script, collections.OrderedDict([
      ("stage", "environment"),
      ("date", datetime.date.today().isoformat()),
      ("cpus", os.cpu_count()),
      ("load_1min", os.getloadavg()[0])]))


def write_report(script, report, output, start, **fields):
  """Prints a bench's tables, writes them to `output`, ends with its total.

  Args:
    script: the bench's name, as in its BENCH lines.
    report: the markdown tables.
    output: a file to write them to too (atomically), or None.
    start: `timeit.default_timer()` when the bench began.
    **fields: extra fields of the closing BENCH line, before the stage.
  """
  print("\n" + report, flush=True)
  if output:
    files.write_atomic(output, report.encode("utf-8"))
  print_bench_line(script, collections.OrderedDict(
      list(fields.items()) +
      [("stage", "total"), ("seconds", timeit.default_timer() - start)]))
