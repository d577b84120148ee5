"""The one rule for the final-error figure, so no command reports a win it lacks.

Every printed "Log Mean Final Error", every records file, compare's table,
the benchmarks and the exit codes of the commands use this module:

- a NaN or infinite mean final loss means the run *diverged*: no number is
  printed for it ("diverged"), its records file is flagged, and the command
  exits non-zero;
- a finite mean of exactly 0 has log10 -inf, which is the truth;
- a negative mean (possible for problems whose loss is not a squared error)
  has no log10: the figure says so instead of showing a number;
- anything else is log10 of the mean.

And the one rule for which loss counts when several points run on one
instance (a swarm's particles, a baseline's restarts): per *start set*. A
problem whose loss has one value per batch row (Rastrigin's 128 rows) is a
batch of independent instances, each started from its own set of k points;
each row keeps its own best particle, and the figure is the mean over start
sets (every row of every evaluated instance) of that best final loss, its
spread the standard deviation over start sets. Picking one particle for the
whole batch by its batch-mean loss instead (`best_particle_by_mean`) favours
a swarm, whose particles share information across a row, over independent
restarts, which land in different basins per row; it is kept only as a named
second figure. A problem with one loss per instance is one start set per
instance, and both figures agree.

The figures take losses as [epochs, steps + 1, particles, rows] (an
`Evaluation`'s `row_losses`) or, as older records hold them,
[epochs, steps + 1, particles] (one row: each particle's batch mean).
"""

import math

import numpy as np

DIVERGED = "diverged"
NO_LOG = "none (negative mean)"

# Status of a mean final loss.
FINITE = "finite"
NEGATIVE = "negative"


def status(mean):
  """Classifies a mean final loss: `DIVERGED`, `NEGATIVE` or `FINITE`.

  Args:
    mean: a number (NaN and infinities allowed).

  Returns:
    One of the three strings.
  """
  mean = float(mean)
  if not math.isfinite(mean):
    return DIVERGED
  if mean < 0:
    return NEGATIVE
  return FINITE


def diverged(mean):
  """True if a mean final loss is NaN or infinite."""
  return status(mean) == DIVERGED


def tuning_found_no_rate(tuning):
  """True if a records file's tuning settings score every rate tried as
  diverged: the rate it kept is then the grid's first, not a tuned one.

  Args:
    tuning: the `tuning` settings of a records file (`{"scores": {rate:
      mean final loss}, ...}`), or None where the rate was given.
  """
  rate_scores = (tuning or {}).get("scores") or {}
  return bool(rate_scores) and all(
      diverged(float(value)) for value in rate_scores.values())


def broken_at_start(start_losses):
  """What to add to a divergence report when the loss was not finite before
  any step, or "".

  Such a loss is the problem's doing (its `build`), not the optimizer's:
  the report says so, with the value (NaN, or an infinity that the first
  step turns into NaN).

  Args:
    start_losses: the losses at starting points, before any step (any
      shape).

  Returns:
    "; ... " naming the first value that is not finite, or "" if all are.
  """
  start_losses = np.asarray(start_losses, np.float64).ravel()
  broken = start_losses[~np.isfinite(start_losses)]
  if not broken.size:
    return ""
  return ("; the loss is already {} at the starting point, before any "
          "step: the problem (its build()) is at fault, not the "
          "optimizer".format(broken[0]))


def log_final(mean):
  """log10 of a mean final loss under the rule above.

  Args:
    mean: the mean final loss.

  Returns:
    log10(mean) (-inf for 0), or NaN when it has none (diverged or negative);
    `status` tells which.
  """
  if status(mean) != FINITE:
    return float("nan")
  if mean == 0:
    return float("-inf")
  return math.log10(mean)


def log_text(mean, spec=".2f"):
  """The "Log Mean Final Error" as text: a number, "diverged" or no log.

  Args:
    mean: the mean final loss.
    spec: format spec of a finite log (e.g. ".2f"; "r" for full precision).

  Returns:
    The text.
  """
  kind = status(mean)
  if kind == DIVERGED:
    return DIVERGED
  if kind == NEGATIVE:
    return NO_LOG
  value = log_final(mean)
  return repr(value) if spec == "r" else format(value, spec)


def mean_text(mean, spec=".4g"):
  """A mean final loss as text: the number, or "diverged"."""
  if diverged(mean):
    return DIVERGED
  return repr(float(mean)) if spec == "r" else format(float(mean), spec)


def as_row_losses(losses):
  """Losses as [epochs, steps + 1, particles, rows], float64.

  Args:
    losses: [epochs, steps + 1, particles, rows], or
      [epochs, steps + 1, particles] (taken as one row).

  Returns:
    The 4-d array.

  Raises:
    ValueError: for another number of dimensions.
  """
  losses = np.asarray(losses, np.float64)
  if losses.ndim == 3:
    return losses[..., np.newaxis]
  if losses.ndim != 4:
    raise ValueError("losses must be [epochs, steps + 1, particles(, rows)], "
                     "got shape {}.".format(list(losses.shape)))
  return losses


def best_per_start_set(losses):
  """Each start set's best particle at every step.

  A NaN or infinite loss of any particle makes that start set's best NaN:
  a swarm (or a set of restarts) with a diverged particle counts as
  diverged, whether its overflow has reached NaN yet or is still infinite.

  Args:
    losses: see the module docstring.

  Returns:
    float64 array [epochs, steps + 1, rows].
  """
  losses = as_row_losses(losses)
  return np.min(np.where(np.isfinite(losses), losses, np.nan), axis=2)


def start_set_finals(losses):
  """The best particle's final loss of every start set.

  Args:
    losses: see the module docstring.

  Returns:
    float64 array [epochs * rows], epoch-major.
  """
  return best_per_start_set(losses)[:, -1, :].reshape(-1)


def best_curve(losses):
  """Mean over each epoch's start sets of their best loss, at every step.

  Args:
    losses: see the module docstring.

  Returns:
    float64 array [epochs, steps + 1].
  """
  return np.mean(best_per_start_set(losses), axis=2)


def mean_final(losses):
  """Mean over start sets of the best particle's final loss (NaN/inf kept)."""
  return float(np.mean(start_set_finals(losses)))


def final_std(losses):
  """Standard deviation over start sets of their best final loss."""
  with np.errstate(invalid="ignore"):  # inf - inf in a diverged run.
    return float(np.std(start_set_finals(losses)))


def best_particle_by_mean(losses):
  """The older figure: one particle per epoch, picked by its batch mean.

  Each epoch's particle with the lowest final loss averaged over the rows,
  that mean averaged over epochs. It is at least `mean_final`, and equal
  when there is one particle or one row.

  Args:
    losses: see the module docstring.

  Returns:
    A float.
  """
  batch_means = np.mean(as_row_losses(losses)[:, -1], axis=2)
  return float(np.mean(np.min(batch_means, axis=1)))
