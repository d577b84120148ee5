"""Distributed benchmark: meta-training throughput on a localhost cluster.

For each worker count N (--workers), `python -m l2l.experiment.local_cluster`
starts one ps task and N workers on this machine and meta-trains
--problem twice:

1. throughput: --epochs epochs (of all workers together); the chief's log
   gives the training time, from its first meta-step to the last (start-up
   and the final evaluation excluded): epochs_per_second (all workers) and
   seconds_per_meta_step (one worker's unroll and meta-step);
2. budget: as many epochs as that throughput fits in --budget_seconds; the
   saved optimizer is then evaluated (evaluation.py's `evaluate`, seed 0, the
   same held-out instances for every N): log_mean_final_error.

A one-process row (train.py, no cluster) gives the same figures for
reference. The parameter traffic of a meta-step is computed from the
optimizer's size: each worker reads the parameters once per unroll and sends
one meta-gradient of the same size.

    nice -n 10 python bench/distributed.py
    nice -n 10 python bench/distributed.py --workers=1,2 --budget_seconds=60
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import datetime
import math
import re
import subprocess
import tempfile

from absl import flags
from absl import logging
import numpy as np

import common  # First: it quiets TensorFlow before anything imports it.
import tensorflow as tf
import meta
import util
from l2l.experiment import cli
from l2l.experiment import evaluation

FLAGS = flags.FLAGS
flags.DEFINE_string("problem", "quadratic", "Problem to meta-train.")
flags.DEFINE_list("workers", ["1", "2"], "Worker counts to measure.")
flags.DEFINE_boolean("sync_replicas", True, "Synchronous meta-steps.")
flags.DEFINE_integer("epochs", 40, "Epochs (all workers) of the throughput "
                     "run.")
flags.DEFINE_float("budget_seconds", 60.0, "Training time of the budget run.")
flags.DEFINE_integer("evaluation_epochs", 20, "Held-out instances scored.")
flags.DEFINE_integer("seed", 1, "Seed of the runs.")
flags.DEFINE_float("timeout", 900.0, "Seconds after which one run is "
                   "stopped as failed.")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = "distributed"
# absl's log prefix: "I1126 09:05:01.330875 ..." (month, day, time).
_LOG_TIME = re.compile(r"^[IWE](\d\d)(\d\d) (\d\d):(\d\d):(\d\d\.\d+)")


def _log_seconds(line):
  match = _LOG_TIME.match(line)
  if match is None:
    return None
  _, _, hours, minutes, seconds = match.groups()
  return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _between(log_text, start_marker, end_marker):
  """Seconds between the log lines holding the two markers."""
  start = end = None
  for line in log_text.splitlines():
    if start is None and start_marker in line:
      start = _log_seconds(line)
    if end_marker in line:
      end = _log_seconds(line)
  if start is None or end is None:
    raise RuntimeError("The log lacks {!r} or {!r}.".format(start_marker,
                                                          end_marker))
  return (end - start) % 86400


def _train_flags(save_path, num_epochs):
  return ["--problem=" + FLAGS.problem, "--save_path=" + save_path,
          "--num_epochs={}".format(num_epochs),
          "--evaluation_period={}".format(num_epochs + 1),
          "--evaluation_epochs=1", "--log_period={}".format(num_epochs),
          "--num_steps={}".format(common.TRAIN_STEPS),
          "--unroll_length={}".format(common.UNROLL_LENGTH),
          "--learning_rate={}".format(common.META_LEARNING_RATE),
          "--seed={}".format(FLAGS.seed)]


def _run(workers, num_epochs, directory):
  """Meta-trains; returns (training seconds, epochs trained, save path)."""
  save_path = os.path.join(directory, "optimizer")
  logs = os.path.join(directory, "logs")
  env = dict(os.environ, PYTHONPATH=ROOT)
  if workers == 0:
    command = [sys.executable, os.path.join(ROOT, "train.py")]
  else:
    command = [sys.executable, "-m", "l2l.experiment.local_cluster",
               "--workers={}".format(workers), "--log_dir=" + logs,
               "--timeout={}".format(FLAGS.timeout),
               "--sync_replicas={}".format(FLAGS.sync_replicas)]
  done = subprocess.run(command + _train_flags(save_path, num_epochs),
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=FLAGS.timeout + 60, check=False)
  if done.returncode != 0:
    raise RuntimeError("The run failed: {}".format(done.stderr[-2000:]))
  if workers == 0:
    # train.py logs the mean epoch time of its one log period.
    mean = float(re.search(r"Mean epoch time: ([0-9.]+) s",
                           done.stderr).group(1))
    return mean * num_epochs, num_epochs, save_path
  with open(os.path.join(logs, "worker0.log")) as log:
    chief_log = log.read()
  seconds = _between(chief_log, "training until meta-step",
                     "training ends")
  steps = int(re.search(r"training until meta-step (\d+)",
                        chief_log).group(1))
  per_step = workers if FLAGS.sync_replicas else 1
  epochs = steps * per_step * common.UNROLL_LENGTH / common.TRAIN_STEPS
  return seconds, epochs, save_path


def _score(save_path):
  error = evaluation.final_error(evaluation.evaluate(
      "L2L", FLAGS.problem, num_steps=common.TRAIN_STEPS,
      num_epochs=FLAGS.evaluation_epochs, seed=0, path=save_path,
      show_progress=False))
  return math.log10(error) if error > 0 else float("nan")


def parameter_count(problem_name):
  """Floats in the meta-optimizer's parameters for `problem_name`."""
  with tf.Graph().as_default():
    problem, net_config, net_assignments = util.get_config(problem_name)
    optimizer = meta.MetaOptimizer(**net_config)
    optimizer.meta_loss(problem, 1, net_assignments=net_assignments)
    return int(sum(np.prod(v.shape) for v in
                   optimizer.trainable_variables()))


def measure(workers):
  """The figures of one worker count (0: one process, no cluster)."""
  with tempfile.TemporaryDirectory(prefix="l2l-bench-") as directory:
    seconds, epochs, _ = _run(workers, FLAGS.epochs,
                              os.path.join(directory, "throughput"))
  rate = epochs / seconds
  budget_epochs = max(1, int(rate * FLAGS.budget_seconds))
  with tempfile.TemporaryDirectory(prefix="l2l-bench-") as directory:
    budget_seconds, trained, save_path = _run(
        workers, budget_epochs, os.path.join(directory, "budget"))
    error = _score(save_path)
  unrolls_per_epoch = common.TRAIN_STEPS // common.UNROLL_LENGTH
  return collections.OrderedDict([
      ("epochs_per_second", rate),
      ("seconds_per_meta_step",
       max(1, workers) / (rate * unrolls_per_epoch)),
      ("budget_epochs", trained),
      ("budget_training_seconds", budget_seconds),
      ("log_mean_final_error", error)])


def main(argv):
  del argv
  common.check_integers("workers")
  cli.check_at_least(1, "epochs", "evaluation_epochs")
  cli.check_positive_number("budget_seconds", "timeout")
  common.print_environment(SCRIPT)
  mode = "sync" if FLAGS.sync_replicas else "async"
  floats = parameter_count(FLAGS.problem)
  traffic = 2 * 4 * floats
  common.print_bench_line(SCRIPT, collections.OrderedDict([
      ("problem", FLAGS.problem), ("metric", "parameter_floats"),
      ("value", floats)]))
  common.print_bench_line(SCRIPT, collections.OrderedDict([
      ("problem", FLAGS.problem), ("metric", "bytes_per_meta_step"),
      ("value", traffic)]))
  rows = []
  for workers in [0] + [int(w) for w in FLAGS.workers]:
    label = "one process" if workers == 0 else "{} ps + {} {}".format(
        1, workers, mode)
    logging.info("Measuring %s (%s)", label, datetime.datetime.now())
    figures = measure(workers)
    for metric, value in figures.items():
      common.print_bench_line(SCRIPT, collections.OrderedDict([
          ("problem", FLAGS.problem), ("setup", label.replace(" ", "_")),
          ("metric", metric), ("value", value)]))
    rows.append([label] + list(figures.values()))
  print("\n" + common.markdown_table(
      ("setup", "epochs_per_second", "seconds_per_meta_step",
       "budget_epochs", "budget_training_seconds", "log_mean_final_error"),
      rows))


if __name__ == "__main__":
  common.run(main)
