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


def best_final_losses(losses):
  """The best particle's final loss of each epoch.

  A NaN loss of any particle makes that epoch's best NaN: a swarm with a
  diverged particle counts as diverged.

  Args:
    losses: array [epochs, steps + 1, particles].

  Returns:
    float64 array [epochs].
  """
  return np.min(np.asarray(losses, np.float64)[:, -1, :], axis=1)


def mean_final(losses):
  """Mean over epochs of the best particle's final loss (NaN/inf kept)."""
  return float(np.mean(best_final_losses(losses)))
