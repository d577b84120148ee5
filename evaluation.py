"""Runs an optimizer, learned or hand-designed, on fresh problem instances.

Every optimizer of one comparison sees the same instances: each graph sets the
same graph-level seed and builds the problem's variables first, so their
random initialisers draw the same sequence, epoch after epoch.
"""

import collections
import timeit

from absl import logging
import numpy as np
import tensorflow as tf

import meta
import problems
import progress
import util

BASELINES = {
    "SGD": lambda lr: tf.compat.v1.train.GradientDescentOptimizer(lr),
    "Momentum": lambda lr: tf.compat.v1.train.MomentumOptimizer(lr, 0.9),
    "RMSProp": lambda lr: tf.compat.v1.train.RMSPropOptimizer(lr),
    "Adam": lambda lr: tf.compat.v1.train.AdamOptimizer(lr),
}
OPTIMIZERS = ("L2L",) + tuple(BASELINES)

Evaluation = collections.namedtuple("Evaluation", "losses, seconds")
Evaluation.__doc__ = """Per-epoch results of `evaluate`.

losses: float64 array [epochs, num_steps + 1]; entry (e, t) is the mean loss
  of epoch e's instance after t steps.
seconds: array [epochs] of wall-clock seconds per epoch.
"""


class _Runner:
  """The ops of one optimizer on one problem: reset, then `step` repeatedly."""

  def __init__(self, setup, reset, step, loss, initial_loss=None):
    self.setup = setup
    self.reset = reset
    self.step = step
    self.loss = loss
    self.initial_loss = initial_loss

  def run_epoch(self, sess, num_steps):
    """Returns the losses after 0..num_steps steps on a fresh instance."""
    sess.run(self.reset)
    losses = []
    for _ in range(num_steps):
      if self.initial_loss is None:
        before, _ = sess.run([self.loss, self.step])
        losses.append(before)
      else:
        before, after, _ = sess.run([self.initial_loss, self.loss, self.step])
        if not losses:
          losses.append(before)
        losses.append(after)
    if self.initial_loss is None:
      losses.append(sess.run(self.loss))
    return np.asarray(losses, dtype=np.float64)


def _build_baseline(name, problem, learning_rate):
  loss = problems.mean_loss(problem())
  optimizer = BASELINES[name](learning_rate)
  step = optimizer.minimize(loss)
  reset = tf.compat.v1.global_variables_initializer()
  return _Runner(tf.no_op(), reset, step, loss)


def _build_l2l(problem, net_config, net_assignments, path, swarm_options):
  if path is None:
    logging.warning("Evaluating an untrained L2L optimizer: no --path given.")
  optimizer = meta.MetaOptimizer(**dict(net_config, **swarm_options))
  info = optimizer.meta_loss(problem, 1, net_assignments=net_assignments,
                             model_path=path)
  loss = tf.reduce_mean(info.fx)
  # With one step per unroll the meta-loss is f(x_t) + f(x_t+1).
  initial_loss = info.loss - tf.reduce_sum(info.fx)
  # The optimizer is initialised once; each epoch re-draws only the problem
  # and the optimizer's state, so every optimizer sees the same instances.
  setup = tf.compat.v1.variables_initializer(optimizer.variables())
  return _Runner(setup, info.reset, info.update, loss, initial_loss)


def evaluate(optimizer, problem_name, num_steps=100, num_epochs=100, seed=0,
             learning_rate=0.001, path=None, mode="test", swarm_options=None,
             show_progress=True):
  """Runs one optimizer on `num_epochs` fresh instances of a problem.

  Args:
    optimizer: "L2L" or a name in `BASELINES`.
    problem_name: a name `util.get_config` knows.
    num_steps: optimization steps per instance.
    num_epochs: number of instances.
    seed: graph-level seed; the same seed gives the same instances to every
      optimizer.
    learning_rate: the baseline's learning rate (ignored for L2L).
    path: directory of a saved L2L optimizer.
    mode: "test" (held-out instances) or "train".
    swarm_options: LOIS options for L2L, e.g. {"num_particles": 4}.
    show_progress: show a progress bar (or log lines off a terminal).

  Returns:
    An `Evaluation`.

  Raises:
    ValueError: for an unknown optimizer or problem, or a checkpoint that
      does not fit the problem.
  """
  if optimizer not in OPTIMIZERS:
    raise ValueError("Unknown optimizer {!r}; expected one of {}.".format(
        optimizer, ", ".join(OPTIMIZERS)))
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(seed)
    problem, net_config, net_assignments = util.get_config(
        problem_name, path if optimizer == "L2L" else None, mode=mode)
    if optimizer == "L2L":
      runner = _build_l2l(problem, net_config, net_assignments, path,
                          swarm_options or {})
    else:
      runner = _build_baseline(optimizer, problem, learning_rate)
    graph.finalize()
  losses = []
  seconds = []
  with tf.compat.v1.Session(graph=graph) as sess:
    sess.run(runner.setup)
    epochs = progress.bar(range(num_epochs), desc="{} on {}".format(
        optimizer, problem_name), enabled=show_progress)
    for _ in epochs:
      start = timeit.default_timer()
      losses.append(runner.run_epoch(sess, num_steps))
      seconds.append(timeit.default_timer() - start)
  return Evaluation(np.stack(losses), np.asarray(seconds))
