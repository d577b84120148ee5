"""Compares optimizers from their records files: a table and a plot.

    l2l-compare records/*.npz
    l2l-compare a.npz b.npz --output=comparison.png --format=csv

Prints one row per records file (see records.py), best final loss first.
The figures are those evaluate.py prints, under the rules of scores.py: the
final loss is the best particle's loss after the last step, each start set
(batch row of an instance) keeping its own best particle, its mean ±
standard deviation over start sets; the "Log Mean Final Error" is log10 of
that mean, or "diverged" when the mean is NaN or infinite. When some file
holds several particles, a further column gives the older figure, one
particle per instance picked by its batch mean. A warning goes to stderr
when the files differ in problem, seed or number of steps, since their
optimizers then did not see the same instances.
"""

import collections
import csv
import io
import math

import numpy as np

from l2l import files
from l2l.experiment import plots
from l2l.experiment import records
from l2l.experiment import scores

Row = collections.namedtuple(
    "Row", "path, label, problem, learning_rate, tuned, seed, epochs, steps, "
    "final, final_std, log_final, seconds, particles, start_sets, "
    "final_by_mean")
Row.__doc__ = """What the table shows of one records file.

path: the records file.
label: the optimizer, as in the plot's legend, e.g. "Adam (lr=0.01)", with
  " (diverged)" if some best-particle loss is NaN or infinite.
problem: the problem's name, or None.
learning_rate: the baseline's learning rate, or None (L2L, PSO).
tuned: True if the learning rate was tuned on separate instances (and some
  rate tried there did not diverge).
seed: the seed of the evaluation instances, or None.
epochs, steps: from the shape of the losses.
final, final_std, log_final: `records.summary`'s "final", "final_std" and
  "log_final".
seconds: mean wall-clock seconds per epoch (NaN if not recorded).
particles: points per instance (the losses' last dimension).
start_sets: how many start sets the final loss averages.
final_by_mean: `records.summary`'s "final_by_mean", the older figure.
"""

_HEADER = ("Optimizer", "Problem", "Learning rate", "Seed", "Epochs", "Steps",
           "Final loss (mean ± std over start sets)", "Log Mean Final Error",
           "Seconds / epoch")
# The older figure's column, shown when some file has several particles.
_BY_MEAN_HEADER = "Best particle by batch mean"
_CSV_HEADER = ("optimizer", "problem", "learning_rate", "tuned", "seed",
               "epochs", "steps", "start_sets", "final_loss_mean",
               "final_loss_std", "log_mean_final_error",
               "final_loss_best_particle_by_batch_mean", "seconds_per_epoch",
               "records_file")
# The file's column, shown when rows would otherwise read the same.
_FILE_HEADER = "Records file"


def _row(path):
  """The `Row` of one records file, and its settings."""
  arrays, settings = records.read(path)
  try:
    return _figures(path, arrays, settings), settings
  except (TypeError, ValueError) as error:
    raise records.RecordsError("{} has settings the table cannot show: "
                               "{}".format(path, error)) from error


def _figures(path, arrays, settings):
  """The `Row` of one records file's contents."""
  losses = np.asarray(arrays["losses"], np.float64)
  figures = records.summary(records.scored_losses(arrays))
  seconds = arrays.get("seconds")
  mean_seconds = (float(np.mean(seconds)) if seconds is not None and
                  np.size(seconds) else float("nan"))
  learning_rate = settings.get("learning_rate")
  return Row(
      path=path,
      label=plots.label(settings, losses.shape[2]) + (
          " (diverged)" if figures["status"] == scores.DIVERGED or
          not np.all(np.isfinite(records.best_curve(arrays))) else ""),
      problem=settings.get("problem"),
      learning_rate=None if learning_rate is None else float(learning_rate),
      tuned=(bool(settings.get("tuning")) and
             not scores.tuning_found_no_rate(settings.get("tuning"))),
      seed=settings.get("seed"),
      epochs=losses.shape[0],
      steps=losses.shape[1] - 1,
      final=figures["final"],
      final_std=figures["final_std"],
      log_final=figures["log_final"],
      seconds=mean_seconds,
      particles=losses.shape[2],
      start_sets=figures["start_sets"],
      final_by_mean=figures["final_by_mean"])


def _sort_key(row):
  # Ascending final loss; NaN (a diverged run) after everything, inf included.
  return (math.isnan(row.final), row.final if not math.isnan(row.final)
          else 0.0)


def rows(record_paths):
  """Reads records files into table rows, best mean final loss first.

  Args:
    record_paths: records files.

  Returns:
    A list of `Row`s; ties keep the order of `record_paths`.

  Raises:
    ValueError: if `record_paths` is empty.
    records.RecordsError: if a file is not a records file.
    FileNotFoundError: if a file does not exist.
  """
  record_paths = list(record_paths)
  if not record_paths:
    raise ValueError("No records files to compare.")
  table_rows, settings = zip(*(_row(path) for path in record_paths))
  labels = plots.told_apart_by_run([row.label for row in table_rows],
                                   settings)
  return sorted((row._replace(label=label)
                 for row, label in zip(table_rows, labels)), key=_sort_key)


def differences(table_rows):
  """What keeps rows from being a comparison on the same instances.

  Args:
    table_rows: `Row`s.

  Returns:
    A list of messages, one per setting in which the rows differ among
    problem, seed, number of instances (epochs) and number of steps; empty
    if they agree. Rows over different numbers of instances are means of
    different samples, even from one seed.
  """
  messages = []
  for name, field in (("problem", "problem"), ("seed", "seed"),
                      ("num_epochs", "epochs"), ("num_steps", "steps")):
    values = list(dict.fromkeys(getattr(row, field) for row in table_rows))
    if len(values) > 1:
      messages.append("the records differ in {}: {}".format(
          name, ", ".join(str(v) for v in values)))
  return messages


def _number(value, spec):
  if value is None:
    return "-"
  if isinstance(value, float) and math.isnan(value):
    return "n/a"
  return format(value, spec)


def _final_text(row):
  if scores.diverged(row.final):
    return scores.DIVERGED
  return "{} ± {}".format(_number(row.final, ".4g"),
                          _number(row.final_std, ".2g"))


def _markdown(table_rows):
  by_mean = any(row.particles > 1 for row in table_rows)
  cells = []
  for row in table_rows:
    learning_rate = _number(row.learning_rate, ".3g")
    if row.tuned and row.learning_rate is not None:
      learning_rate += " (tuned)"
    cells.append((
        row.label, "-" if row.problem is None else str(row.problem),
        learning_rate, _number(row.seed, ""), str(row.epochs),
        str(row.steps),
        _final_text(row), scores.log_text(row.final),
        _number(row.seconds, ".3g")) + (
            (scores.mean_text(row.final_by_mean),) if by_mean else ()))
  # Runs of the same settings would show as the same row but for their
  # figures: then each row names its file.
  settings = [line[:6] for line in cells]
  by_file = len(set(settings)) < len(settings)
  if by_file:
    cells = [line + (name,) for line, name in zip(
        cells, files.distinct_names(row.path for row in table_rows))]
  header = (_HEADER + ((_BY_MEAN_HEADER,) if by_mean else ()) +
            ((_FILE_HEADER,) if by_file else ()))
  # Text left, figures right.
  alignment = (["---"] * 2 + ["---:"] * (len(header) - 2 - by_file) +
               ["---"] * by_file)
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(alignment) + "|"]
  for line in cells:
    lines.append("| " + " | ".join(c.replace("|", "\\|") for c in line) +
                 " |")
  return "\n".join(lines) + "\n"


def _csv(table_rows):
  stream = io.StringIO()
  writer = csv.writer(stream, lineterminator="\n")
  writer.writerow(_CSV_HEADER)
  for row in table_rows:
    writer.writerow((
        row.label, "" if row.problem is None else row.problem,
        "" if row.learning_rate is None else repr(row.learning_rate),
        int(row.tuned), "" if row.seed is None else row.seed, row.epochs,
        row.steps, row.start_sets, scores.mean_text(row.final, "r"),
        "" if scores.diverged(row.final) else repr(row.final_std),
        scores.log_text(row.final, "r"),
        scores.mean_text(row.final_by_mean, "r"), repr(row.seconds),
        row.path))
  return stream.getvalue()


def format_table(table_rows, fmt="markdown"):
  """Formats rows as a table.

  Args:
    table_rows: `Row`s, in the order to show them.
    fmt: "markdown" (rounded, for reading and papers) or "csv" (full
      precision, mean and std in separate columns, empty cells for missing
      values).

  Returns:
    The table as text, ending in a newline.

  Raises:
    ValueError: for an unknown `fmt`.
  """
  if fmt == "markdown":
    return _markdown(table_rows)
  if fmt == "csv":
    return _csv(table_rows)
  raise ValueError("Unknown table format {!r}; expected markdown or "
                   "csv.".format(fmt))


def table(record_paths, fmt="markdown"):
  """The comparison table of records files, best mean final loss first.

  Args:
    record_paths: records files.
    fmt: "markdown" or "csv" (see `format_table`).

  Returns:
    The table as text.

  Raises:
    ValueError: if `record_paths` is empty or `fmt` is unknown.
    records.RecordsError: if a file is not a records file.
    FileNotFoundError: if a file does not exist.
  """
  return format_table(rows(record_paths), fmt)
