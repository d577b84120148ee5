"""Speed benchmark: meta-training and learned-optimizer step costs.

For each problem, in one process:

- graph_seconds: time to build the meta-training graph (`meta_minimize`,
  unroll 20: the unrolled loop, its gradients and the Adam meta-step);
- first_epoch_seconds: the first training epoch, which includes TensorFlow's
  one-off graph optimisation (the warm-up, not averaged);
- seconds_per_epoch: one training epoch (reset, then 5 unrolls of 20 steps,
  each with a meta-step), averaged over --epochs epochs after the warm-up;
- l2l_step_ms and adam_step_ms: the median of one step of the learned
  optimizer as evaluation runs it (`meta_loss` with len_unroll=1, running its
  `update`) and of one step of `tf.compat.v1.train.AdamOptimizer.minimize` on
  the same problem, and their ratio l2l_to_adam_step_ratio;
- peak_rss_mb: the process's peak resident memory so far (ru_maxrss): it
  includes every problem measured before, and TensorFlow itself.

    python bench/speed.py
    python bench/speed.py --problems=quadratic-las --epochs=5 --steps=200
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import resource
import timeit

from absl import app
from absl import flags
from absl import logging
import numpy as np

import common  # First: it quiets TensorFlow before anything imports it.
import tensorflow as tf
import meta
import problems
import util

FLAGS = flags.FLAGS
flags.DEFINE_list("problems", ["quadratic-las", "digits"],
                  "Comma-separated problems (names util.get_config knows).")
flags.DEFINE_integer("seed", 0, "Graph-level seed of the timed graphs.")
flags.DEFINE_integer("epochs", 20, "Training epochs averaged (after one "
                     "warm-up epoch).")
flags.DEFINE_integer("steps", 1000, "Single steps timed per optimizer (after "
                     "--warmup_steps).")
flags.DEFINE_integer("warmup_steps", 100, "Untimed single steps first.")

# Single steps between two resets (fresh instances) while timing steps.
STEPS_PER_RESET = common.TRAIN_STEPS
# Learning rate of the timed Adam (speed does not depend on it).
ADAM_LEARNING_RATE = 0.01
# The table's columns, in order.
METRICS = ("graph_seconds", "first_epoch_seconds", "seconds_per_epoch",
           "l2l_step_ms", "adam_step_ms", "l2l_to_adam_step_ratio",
           "peak_rss_mb")

Session = collections.namedtuple("Session", "session, reset, ops")
Session.__doc__ = """A session on a finalised graph, initialised.

session: the `tf.compat.v1.Session`.
reset: op drawing a fresh instance (and fresh optimizer state).
ops: what one timed run executes.
"""


def peak_rss_mb():
  """The process's peak resident memory so far, in MB (Linux: KB units)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def start_session(graph, reset, ops):
  """Finalises `graph`, initialises its variables and returns a `Session`."""
  with graph.as_default():
    init = tf.compat.v1.global_variables_initializer()
  graph.finalize()
  session = tf.compat.v1.Session(graph=graph)
  session.run(init)
  return Session(session, reset, ops)


def new_graph(problem_name):
  """A seeded graph and the problem's test-mode configuration in it.

  Returns:
    `(graph, (problem, net_config, net_assignments))`; build in the graph.
  """
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(FLAGS.seed)
    config = util.get_config(problem_name, mode="test")
  return graph, config


def training_session(problem_name):
  """Builds the meta-training graph, timing `meta_minimize`.

  Returns:
    `(Session running [cost, update, step], graph construction seconds)`.
  """
  graph, (problem, net_config, net_assignments) = new_graph(problem_name)
  with graph.as_default():
    start = timeit.default_timer()
    optimizer = meta.MetaOptimizer(**net_config)
    step, update, reset, cost, _ = optimizer.meta_minimize(
        problem, common.UNROLL_LENGTH, learning_rate=common.META_LEARNING_RATE,
        net_assignments=net_assignments)
    seconds = timeit.default_timer() - start
  return start_session(graph, reset, [cost, update, step]), seconds


def time_training(problem_name):
  """Graph construction, warm-up epoch and mean epoch times of meta-training.

  Returns:
    A dict of those three figures.
  """
  run, graph_seconds = training_session(problem_name)
  num_unrolls = common.TRAIN_STEPS // common.UNROLL_LENGTH
  with run.session:
    def epoch():
      return util.run_epoch(run.session, run.ops[0], run.ops[1:], run.reset,
                            num_unrolls)[0]
    first = epoch()
    seconds = [epoch() for _ in range(FLAGS.epochs)]
  return {"graph_seconds": graph_seconds, "first_epoch_seconds": first,
          "seconds_per_epoch": float(np.mean(seconds))}


def l2l_step_session(problem_name):
  """One learned-optimizer step as evaluation runs it (untrained weights)."""
  graph, (problem, net_config, net_assignments) = new_graph(problem_name)
  with graph.as_default():
    optimizer = meta.MetaOptimizer(**net_config)
    info = optimizer.meta_loss(problem, 1, net_assignments=net_assignments)
  return start_session(graph, info.reset, info.update)


def adam_step_session(problem_name):
  """One step of TensorFlow's Adam on the same problem."""
  graph, (problem, _, _) = new_graph(problem_name)
  with graph.as_default():
    loss = problems.mean_loss(problem())
    step = tf.compat.v1.train.AdamOptimizer(ADAM_LEARNING_RATE).minimize(loss)
    reset = tf.compat.v1.global_variables_initializer()
  return start_session(graph, reset, step)


def median_step_seconds(run):
  """Median seconds of one run of `run.ops` after the warm-up steps.

  A fresh instance is drawn every `STEPS_PER_RESET` steps (untimed).
  """
  seconds = []
  with run.session:
    for i in range(FLAGS.warmup_steps + FLAGS.steps):
      if i % STEPS_PER_RESET == 0:
        run.session.run(run.reset)
      start = timeit.default_timer()
      run.session.run(run.ops)
      if i >= FLAGS.warmup_steps:
        seconds.append(timeit.default_timer() - start)
  return float(np.median(seconds))


def time_steps(problem_name):
  """The L2L and Adam step medians (ms) and their ratio."""
  l2l = median_step_seconds(l2l_step_session(problem_name))
  adam = median_step_seconds(adam_step_session(problem_name))
  return {"l2l_step_ms": 1000 * l2l, "adam_step_ms": 1000 * adam,
          "l2l_to_adam_step_ratio": l2l / adam}


def measure(problem_name):
  """Every metric of `METRICS` on one problem."""
  logging.info("Timing meta-training on %s", problem_name)
  figures = time_training(problem_name)
  logging.info("Timing single steps on %s", problem_name)
  figures.update(time_steps(problem_name))
  figures["peak_rss_mb"] = peak_rss_mb()
  return figures


def print_figures(problem_name, figures):
  """Prints one `BENCH speed` line per metric."""
  for metric in METRICS:
    common.print_bench_line("speed", collections.OrderedDict([
        ("problem", problem_name), ("metric", metric),
        ("value", figures[metric])]))


def main(argv):
  del argv
  common.print_environment("speed")
  common.print_bench_line("speed", collections.OrderedDict([
      ("problem", "none"), ("metric", "peak_rss_mb_after_import"),
      ("value", peak_rss_mb())]))
  rows = []
  for problem_name in FLAGS.problems:
    figures = measure(problem_name)
    print_figures(problem_name, figures)
    rows.append([problem_name] + [figures[m] for m in METRICS])
  print("\n" + common.markdown_table(("problem",) + METRICS, rows),
        flush=True)


if __name__ == "__main__":
  app.run(main)
