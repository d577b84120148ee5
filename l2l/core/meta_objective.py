"""The meta-objective of a single-point (L2L) unroll, from its losses.

DeepMind's meta-loss is the sum of the optimizee's losses over the unroll
(`"sum"`, the default). Its meta-gradient comes mostly from the steps and
tasks whose losses are largest: on one problem, the early steps; on a family
of tasks whose losses differ by decades, the hardest tasks. `"log"` sums
the losses' natural logs instead, so every step's relative progress counts
alike whatever the task's loss scale: halving a loss of 0.01 is worth as
much as halving a loss of 1. That is also how the benchmarks score an
optimizer (the log10 of its final loss).

The swarm (LOIS) has its own objectives (`SwarmConfig.objective`).
"""

import tensorflow as tf

OBJECTIVES = ("sum", "log")
DEFAULT = "sum"
# "log" scores a loss below this as this. Progress past it asks for nothing
# float32 can resolve on losses of order one, and a zero or negative loss,
# which has no log, gives no meta-gradient instead of a NaN.
LOG_FLOOR = 1e-8


def check(objective):
  """Raises for an objective name `meta_objective` does not know.

  Args:
    objective: the name to check.

  Raises:
    ValueError: if `objective` is not one of `OBJECTIVES`.
  """
  if objective not in OBJECTIVES:
    raise ValueError("Unknown meta-objective {!r}: expected one of {}.".format(
        objective, ", ".join(OBJECTIVES)))


def meta_objective(fx_history, objective=DEFAULT):
  """The meta-loss of an unroll.

  Args:
    fx_history: [len_unroll + 1] losses: at the unroll's start and after
      each of its steps.
    objective: one of `OBJECTIVES`.

  Returns:
    A scalar: the sum over the unroll of the losses (`"sum"`) or of their
    logs, each floored at `LOG_FLOOR` (`"log"`).

  Raises:
    ValueError: for an unknown `objective`.
  """
  check(objective)
  if objective == "log":
    fx_history = tf.math.log(tf.maximum(fx_history, LOG_FLOOR))
  return tf.reduce_sum(fx_history, name="loss")
