"""The meta-training loop behind train.py, usable from scripts and benchmarks.

Importing this module defines no command-line flags.
"""

import math
import os

from absl import logging
import numpy as np
import tensorflow as tf

from l2l.checkpoint import l2l_file
import meta
from l2l.experiment import progress
from l2l.swarm import swarm_unroll
import util


class TrainingDiverged(RuntimeError):
  """The meta-loss became NaN or infinite."""


def check_save_path(save_path, net_ids, overwrite):
  """Creates `save_path` if needed and refuses to replace a saved optimizer.

  Args:
    save_path: the directory, or None.
    net_ids: the ids whose `<id>.l2l` files training will write.
    overwrite: allow replacing existing files.

  Raises:
    ValueError: if the directory already holds one of those files.
  """
  if save_path is None:
    return
  if os.path.exists(save_path) and not os.path.isdir(save_path):
    raise ValueError("--save_path {} exists and is not a directory.".format(
        save_path))
  files = [l2l_file.checkpoint_path(save_path, i) for i in net_ids]
  existing = [os.path.basename(f) for f in files if os.path.exists(f)]
  if existing and not overwrite:
    raise ValueError(
        "{} already holds a saved optimizer ({}); choose another --save_path "
        "or pass --overwrite to replace it.".format(save_path,
                                                    ", ".join(existing)))
  os.makedirs(save_path, exist_ok=True)


class _Summaries:
  """TensorBoard scalars of training, written when a log directory is set."""

  def __init__(self, logdir):
    self._writer = (None if logdir is None else
                    tf.compat.v1.summary.FileWriter(logdir))

  def add(self, step, **scalars):
    if self._writer is None:
      return
    summary = tf.compat.v1.Summary(value=[
        tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value))
        for tag, value in sorted(scalars.items())])
    self._writer.add_summary(summary, step)

  def close(self):
    if self._writer is not None:
      self._writer.close()


def _run_epochs(sess, fetches, ops, reset, num_unrolls, num_epochs):
  """Runs epochs of `num_unrolls` unrolls from a fresh instance each.

  Args:
    sess: the session.
    fetches: `(final loss, meta-loss)` tensors of one unroll.
    ops: ops run with every unroll (update, and the meta-step in training).
    reset: op drawing a fresh instance.
    num_unrolls: unrolls per epoch.
    num_epochs: epochs to run.

  Returns:
    `(total seconds, total final loss, mean meta-loss per unroll)`.

  Raises:
    TrainingDiverged: if a loss is not finite.
  """
  total_time = 0.0
  total_cost = 0.0
  meta_losses = []
  for _ in range(num_epochs):
    seconds, (cost, meta_loss) = util.run_epoch(sess, fetches, ops, reset,
                                                num_unrolls)
    cost = float(np.mean(cost))
    if not (math.isfinite(cost) and math.isfinite(meta_loss)):
      raise TrainingDiverged("the optimizee loss became {}".format(cost))
    total_time += seconds
    total_cost += cost
    meta_losses.append(meta_loss)
  return total_time, total_cost, float(np.mean(meta_losses))


def train(problem_name, save_path=None, num_epochs=10000, log_period=100,
          evaluation_period=1000, evaluation_epochs=20, num_steps=100,
          unroll_length=20, learning_rate=0.001, second_derivatives=False,
          seed=None, num_particles=1, overwrite=False, data_dir=None,
          logdir=None, show_progress=True):
  """Meta-trains an optimizer and saves the best one by periodic evaluation.

  An evaluation also runs after the last epoch, so a short run saves too.

  Args:
    problem_name: a name `util.get_config` knows.
    save_path: directory for the best optimizer, or None.
    num_epochs: training epochs.
    log_period: epochs between logged statistics.
    evaluation_period: epochs between evaluations.
    evaluation_epochs: epochs per evaluation.
    num_steps: optimizer steps per epoch.
    unroll_length: steps per unroll; must divide `num_steps`.
    learning_rate: meta-optimizer learning rate.
    second_derivatives: backpropagate through optimizee gradients.
    seed: graph-level seed.
    num_particles: LOIS swarm size (1: plain L2L).
    overwrite: allow replacing an optimizer already in `save_path`.
    data_dir: directory of mnist/cifar files.
    logdir: directory for TensorBoard summaries (meta-loss, final loss and
      seconds per epoch, evaluation loss), or None.
    show_progress: show a progress readout.

  Returns:
    The best evaluation's mean final loss (inf if none completed).

  Raises:
    ValueError: for bad settings.
  """
  if num_steps % unroll_length:
    raise ValueError(
        "num_steps ({}) must be a multiple of unroll_length ({}).".format(
            num_steps, unroll_length))
  num_unrolls = num_steps // unroll_length
  # What the saved manifest records about this training.
  settings = {"num_epochs": num_epochs, "num_steps": num_steps,
              "unroll_length": unroll_length, "learning_rate": learning_rate,
              "second_derivatives": second_derivatives, "seed": seed,
              "num_particles": num_particles,
              "evaluation_period": evaluation_period,
              "evaluation_epochs": evaluation_epochs}
  graph = tf.Graph()
  with graph.as_default():
    if seed is not None:
      tf.compat.v1.set_random_seed(seed)
    problem, net_config, net_assignments = util.get_config(
        problem_name, data_dir=data_dir)
    check_save_path(save_path, _saved_ids(net_config, num_particles),
                    overwrite)
    optimizer = meta.MetaOptimizer(num_particles=num_particles, **net_config)
    step, update, reset, cost_op, _ = optimizer.meta_minimize(
        problem, unroll_length, learning_rate=learning_rate,
        net_assignments=net_assignments,
        second_derivatives=second_derivatives)
    # The summed optimizee losses of the unroll (the meta-loss, less the
    # swarm's entropy term).
    fetches = (cost_op, tf.reduce_sum(optimizer.fx_history))
    init = tf.compat.v1.global_variables_initializer()
    # FileWriter refuses eager mode, so it is made inside the graph.
    summaries = _Summaries(logdir)
    graph.finalize()

  best_evaluation = float("inf")
  with tf.compat.v1.Session(graph=graph) as sess:
    sess.run(init)
    total_time = 0.0
    total_cost = 0.0
    epochs = progress.bar(range(num_epochs), "Training on " + problem_name,
                          enabled=show_progress)
    try:
      for e in epochs:
        seconds, cost, meta_loss = _run_epochs(
            sess, fetches, [update, step], reset, num_unrolls, 1)
        summaries.add(e + 1, meta_loss=meta_loss, final_loss=cost,
                      epoch_seconds=seconds)
        total_time += seconds
        total_cost += cost
        if (e + 1) % log_period == 0:
          logging.info("%s", util.format_stats(
              "Epoch {}".format(e + 1), total_cost, total_time, log_period))
          total_time = total_cost = 0.0
        if (e + 1) % evaluation_period == 0 or e + 1 == num_epochs:
          eval_time, eval_cost, _ = _run_epochs(
              sess, fetches, [update], reset, num_unrolls, evaluation_epochs)
          summaries.add(e + 1, evaluation_final_loss=(
              eval_cost / evaluation_epochs))
          logging.info("%s", util.format_stats(
              "EVALUATION", eval_cost, eval_time, evaluation_epochs))
          if eval_cost < best_evaluation:
            best_evaluation = eval_cost
            if save_path is not None:
              optimizer.save(sess, save_path, problem=problem_name,
                             training=dict(settings, epochs_done=e + 1))
              logging.info("Saved the meta-optimizer to %s", save_path)
    except TrainingDiverged as error:
      logging.error(
          "Training diverged (%s); stopped. The last good optimizer%s.", error,
          (" is in " + save_path) if save_path and math.isfinite(
              best_evaluation) else " was never saved")
    finally:
      summaries.close()
  return best_evaluation / evaluation_epochs


def _saved_ids(net_config, num_particles):
  ids = list(net_config)
  if num_particles > 1:
    ids.append(swarm_unroll.ATTENTION_ID)
  return ids


# The pieces of `train` that cluster training (distributed_training.py)
# shares.
run_epochs = _run_epochs
saved_ids = _saved_ids
Summaries = _Summaries
