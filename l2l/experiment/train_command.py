"""The train command: meta-trains a learned optimizer on a problem.

    python train.py --problem=quadratic --save_path=./quadratic
    l2l-train --problem=quadratic --save_path=./quadratic

With a cluster description (TF_CONFIG, or --ps_hosts, --worker_hosts,
--job_name and --task_index) it runs one task of a cluster training (see
l2l/experiment/distributed_training.py and local_cluster.py).
"""

import sys
import timeit

from absl import flags
from absl import logging

# cli first: it quiets TensorFlow before training imports it.
from l2l.experiment import cli
from l2l.experiment import cluster
from l2l.experiment import distributed_training
from l2l.experiment import training
import util

FLAGS = flags.FLAGS
flags.DEFINE_string("save_path", None, "Directory where the best optimizer is "
                    "saved (one <net_id>.l2l file per net).")
flags.DEFINE_integer("num_epochs", 10000, "Number of training epochs.")
flags.DEFINE_integer("log_period", 100, "Epochs between logged statistics.")
flags.DEFINE_integer("evaluation_period", 1000,
                     "Epochs between evaluations (and saves).")
flags.DEFINE_integer("evaluation_epochs", 20, "Epochs per evaluation.")
flags.DEFINE_string("problem", "simple", "Problem to train on: one of " +
                    ", ".join(util.problem_names()) + ".")
flags.DEFINE_integer("num_steps", 100, "Optimizer steps per epoch.")
flags.DEFINE_integer("unroll_length", 20, "Meta-optimizer unroll length.")
flags.DEFINE_float("learning_rate", 0.001, "Meta-optimizer learning rate.")
flags.DEFINE_boolean("second_derivatives", False,
                     "Backpropagate through the optimizee gradients.")
flags.DEFINE_integer("seed", None, "Graph-level random seed.")
flags.DEFINE_string("logdir", None, "Directory for TensorBoard summaries.")
flags.DEFINE_boolean("overwrite", False, "Allow replacing the optimizer "
                     "already saved in --save_path.")
cli.define_shared_flags()
cluster.define_flags()


def main(argv):
  del argv
  start = timeit.default_timer()
  settings = dict(
      save_path=FLAGS.save_path, num_epochs=FLAGS.num_epochs,
      log_period=FLAGS.log_period,
      evaluation_period=FLAGS.evaluation_period,
      evaluation_epochs=FLAGS.evaluation_epochs, num_steps=FLAGS.num_steps,
      unroll_length=FLAGS.unroll_length, learning_rate=FLAGS.learning_rate,
      second_derivatives=FLAGS.second_derivatives, seed=FLAGS.seed,
      num_particles=FLAGS.num_particle, overwrite=FLAGS.overwrite,
      data_dir=FLAGS.data_dir, logdir=FLAGS.logdir)
  with cli.plain_errors():
    task = cluster.from_parsed_flags(FLAGS)
    if task is not None:
      _train_on_cluster(task, settings)
    else:
      training.train(FLAGS.problem, **settings)
  logging.info("Training took %.1f s", timeit.default_timer() - start)


def _train_on_cluster(task, settings):
  """Runs this process's task of a cluster training."""
  try:
    best = distributed_training.train(
        task, FLAGS.problem, sync_replicas=FLAGS.sync_replicas,
        timeout=FLAGS.cluster_timeout, **settings)
  except (RuntimeError, TimeoutError, training.TrainingDiverged) as error:
    cli.fail("{} {}: {}".format(task.job_name, task.task_index, error))
  if task.is_chief and settings["save_path"] and not best < float("inf"):
    cli.fail("The chief finished without saving an optimizer to {}.".format(
        settings["save_path"]))


def run():
  """Entry point of train.py and the l2l-train command."""
  cli.run(main, sys.modules[__name__], cli, cluster)


if __name__ == "__main__":
  run()
