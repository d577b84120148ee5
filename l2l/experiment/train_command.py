"""Meta-trains a learned optimizer on a problem and saves the best one.

    python train.py --problem=quadratic --save_path=./quadratic
    l2l-train --problem=quadratic --save_path=./quadratic

Every --evaluation_period epochs, and at the end, the optimizer is evaluated
on fresh instances and saved in --save_path if it is the best so far; the
training state kept beside it lets --resume continue a stopped run. With a
cluster description (TF_CONFIG, or --ps_hosts, --worker_hosts,
--job_name and --task_index) it runs one task of a cluster training (see
l2l/experiment/distributed_training.py and local_cluster.py).
"""

import os
import signal
import sys
import timeit

from absl import flags
from absl import logging

# cli first: it quiets TensorFlow before training imports it.
from l2l.experiment import cli
from l2l import checks
from l2l import files
from l2l.core import meta_objective as meta_objectives
from l2l.experiment import cluster
from l2l.experiment import distributed_training
from l2l.experiment import launcher_watch
from l2l.experiment import shared_flags
from l2l.experiment import training
from l2l.experiment import training_state
from l2l.swarm import config as swarm_config
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
flags.DEFINE_boolean("recompute", False,
                     "Recompute the LSTM's gates in the backward pass: "
                     "about a third of the memory per coordinate and "
                     "unrolled step, for problems too large otherwise; some "
                     "more time, the same training (plain L2L on one "
                     "machine). Only where the LSTM runs as TensorFlow ops: "
                     "the native kernels always recompute.")
flags.DEFINE_integer("seed", None, "Graph-level random seed, from 0 to {} "
                     "(TensorFlow reduces seeds modulo 2^31 - 1, so others "
                     "repeat these draws).".format(checks.MAX_SEED),
                     lower_bound=0, upper_bound=checks.MAX_SEED)
flags.DEFINE_string("logdir", None, "Directory for TensorBoard summaries.")
flags.DEFINE_boolean("overwrite", False, "Allow replacing the optimizer "
                     "(and the training state) already in --save_path.")
flags.DEFINE_integer("checkpoint_period", training.DEFAULT_CHECKPOINT_PERIOD,
                     "Epochs between training states kept in "
                     "--save_path/training_state (also kept on Ctrl-C or "
                     "SIGTERM); a killed run loses at most this many.")
flags.DEFINE_boolean("resume", False, "Continue the run whose training "
                     "state is in --save_path.")
flags.DEFINE_enum("meta_objective", meta_objectives.DEFAULT,
                  list(meta_objectives.OBJECTIVES),
                  "What the meta-loss sums over an unroll (plain L2L): sum "
                  "(the losses, as DeepMind's code) or log (their logs, so "
                  "every task and step counts by its relative progress).")
flags.DEFINE_enum("swarm_objective", "sum", list(swarm_config.OBJECTIVES),
                  "Swarm meta-objective: sum (every particle, every step), "
                  "best_so_far (the best loss found yet, every step) or "
                  "final_best (the best particle at the unroll's end).")
flags.DEFINE_enum("swarm_time_weighting", "uniform",
                  list(swarm_config.TIME_WEIGHTINGS),
                  "Swarm: weight of an unroll's steps in the meta-objective.")
flags.DEFINE_float("swarm_entropy_weight", 0.001, "Swarm: weight of the "
                   "posterior entropy term (>= 0).", lower_bound=0.0)
flags.DEFINE_boolean("swarm_entropy", True, "Swarm: add LOIS's posterior "
                     "entropy term to the meta-loss (it about triples the "
                     "cost of an epoch).")
flags.DEFINE_boolean("swarm_normalise_entropy", False, "Swarm: "
                     "--swarm_entropy_weight is the entropy term's share of "
                     "the objective's size, not an absolute factor.")
shared_flags.define_flags()
cluster.define_flags()

# Exit status of a run stopped because a loss became NaN or infinite.
EXIT_DIVERGED = 2


def validate_flags():
  """Checks every flag before any work; exits with one line on a bad one.

  Returns:
    This process's cluster task (`cluster.from_parsed_flags`), or None on
    one machine.
  """
  shared_flags.check_flags()
  cli.check_at_least(1, "num_epochs", "log_period", "evaluation_period",
                     "evaluation_epochs", "num_steps", "unroll_length",
                     "checkpoint_period")
  cli.check_positive_number("learning_rate", "cluster_timeout")
  cli.check_non_negative_number("swarm_entropy_weight")
  if FLAGS.num_particle > 1 and FLAGS.meta_objective != meta_objectives.DEFAULT:
    cli.fail("--meta_objective={} is for plain L2L; a swarm "
             "(--num_particle={}) meta-trains on --swarm_objective "
             "instead.".format(FLAGS.meta_objective, FLAGS.num_particle))
  if FLAGS.num_particle > 1 and FLAGS.recompute:
    cli.fail("--recompute is for plain L2L; a swarm (--num_particle={}) "
             "does not take it.".format(FLAGS.num_particle))
  if FLAGS.num_steps % FLAGS.unroll_length:
    cli.fail("--num_steps={} is invalid: expected a multiple of "
             "--unroll_length={}.".format(FLAGS.num_steps,
                                         FLAGS.unroll_length))
  cli.check_not_empty("save_path", "logdir")
  cli.check_with("problem", util.check_problem_name)
  if FLAGS.resume and FLAGS.overwrite:
    cli.fail("--resume continues the run in --save_path and --overwrite "
             "starts over: pass one of them.")
  if FLAGS.resume and FLAGS.save_path is None:
    cli.fail("--resume needs the --save_path of the run to continue.")
  cli.check_writable_directory("save_path")
  if FLAGS.save_path is not None:
    # Found now, not at the first checkpoint after the epochs it would cost.
    state_directory = os.path.join(FLAGS.save_path,
                                   training_state.DIRECTORY)
    if os.path.isdir(state_directory):
      cli.check_writable_directory(
          "save_path", state_directory,
          remedy="the run keeps its training state there")
  cli.check_writable_directory("logdir")
  with cli.plain_errors():
    task = cluster.from_parsed_flags(FLAGS)
  if task is not None and FLAGS.meta_objective != meta_objectives.DEFAULT:
    cli.fail("--meta_objective={} is not available to cluster training, "
             "which sums the losses; drop the flag or train on one "
             "machine.".format(FLAGS.meta_objective))
  if task is not None and FLAGS.recompute:
    cli.fail("--recompute is not available to cluster training; drop the "
             "flag or train on one machine.")
  return task


def _kept_optimizer(result):
  """What an interrupted run left in --save_path, as a phrase."""
  if result.saved:
    return "the best optimizer beside it"
  if result.saved_on_stop is not None:
    return ("an optimizer evaluated on stopping (epoch {}, mean final loss "
            "{:.6g}) in {} until the resumed run's first evaluation "
            "replaces it".format(result.saved_on_stop["epoch"],
                                 result.saved_on_stop["evaluation"],
                                 FLAGS.save_path))
  return "no optimizer (none was evaluated)"


def _report(result):
  """Says how the run ended, and returns its exit status."""
  if result.interrupted:
    if result.state_path is None:
      kept = "nothing was kept (no --save_path)"
    else:
      kept = ("the training state of epoch {} is in {}, {}; continue with: "
              "{}".format(result.epochs, result.state_path,
                          _kept_optimizer(result), cli.resume_command()))
    sys.stderr.write("Interrupted ({}): {}\n".format(result.interrupted,
                                                     kept))
    return 128 + signal.Signals[result.interrupted].value
  if result.diverged:
    return EXIT_DIVERGED
  if FLAGS.save_path is not None and not result.saved:
    if result.saved_on_stop is not None:
      logging.warning("Training ended at epoch %d without an evaluation; %s "
                      "holds the optimizer evaluated when the run was "
                      "stopped at epoch %d.", result.epochs, FLAGS.save_path,
                      result.saved_on_stop["epoch"])
      return 0
    sys.stderr.write("Error: no optimizer was saved in {}: training ended at "
                     "epoch {} without an evaluation.\n".format(
                         FLAGS.save_path, result.epochs))
    return 1
  if FLAGS.save_path is None:
    logging.warning("No --save_path: the trained optimizer was not saved.")
  return 0


def swarm_options():
  """The swarm's options from the flags (empty for plain L2L)."""
  if FLAGS.num_particle <= 1:
    cli.warn_unused(cli.given_flags("swarm_"), "--num_particle={} trains "
                    "one point, not a swarm".format(FLAGS.num_particle))
    return {}
  shared_flags.warn_unused_swarm_flags(FLAGS.swarm_attraction_gain)
  if not FLAGS.swarm_entropy:
    cli.warn_unused(cli.given_flags("swarm_entropy_weight") +
                    cli.given_flags("swarm_normalise_entropy"),
                    "--noswarm_entropy leaves the entropy term out")
  if FLAGS.swarm_objective == "final_best":
    cli.warn_unused(cli.given_flags("swarm_time_weighting"),
                    "--swarm_objective=final_best scores the last step "
                    "only")
  return dict(shared_flags.swarm_flag_options(),
              objective=FLAGS.swarm_objective,
              time_weighting=FLAGS.swarm_time_weighting,
              use_entropy=FLAGS.swarm_entropy,
              entropy_weight=FLAGS.swarm_entropy_weight,
              normalise_entropy=FLAGS.swarm_normalise_entropy)


def main(argv):
  del argv
  task = validate_flags()
  start = timeit.default_timer()
  settings = dict(
      save_path=FLAGS.save_path, num_epochs=FLAGS.num_epochs,
      log_period=FLAGS.log_period,
      evaluation_period=FLAGS.evaluation_period,
      evaluation_epochs=FLAGS.evaluation_epochs, num_steps=FLAGS.num_steps,
      unroll_length=FLAGS.unroll_length, learning_rate=FLAGS.learning_rate,
      second_derivatives=FLAGS.second_derivatives, seed=FLAGS.seed,
      num_particles=FLAGS.num_particle, overwrite=FLAGS.overwrite,
      data_dir=FLAGS.data_dir, logdir=FLAGS.logdir,
      # The statistics blocks on stdout, as DeepMind's train.py printed them.
      stats_stream=sys.stdout)
  with cli.plain_errors():
    if task is not None:
      # A task of local_cluster's stops itself if its launcher dies; one
      # started by hand watches nothing.
      launcher_watch.start(chief=task.is_chief)
      status = _train_on_cluster(task, settings)
      logging.info("Training took %.1f s", timeit.default_timer() - start)
      sys.exit(status)
    # Not for a cluster's tasks: a ps task blocks in its server, where a
    # Python handler would never run and SIGTERM would no longer stop it.
    cli.interrupt_on_sigterm()
    try:
      result = training.train(
          FLAGS.problem, checkpoint_period=FLAGS.checkpoint_period,
          resume=FLAGS.resume, swarm_options=swarm_options(),
          meta_objective=FLAGS.meta_objective, recompute=FLAGS.recompute,
          **settings)
    except (files.DirectoryBusyError, files.DirectoryMovedError):
      raise  # They say what to do.
    except OSError as error:
      # A full disk, say: what the run kept, and how to go on from it.
      raise _with_what_was_kept(error) from error
    except KeyboardInterrupt as interrupt:
      # Interrupted before training could keep a state (building the graph,
      # replaying a resumed run's draws: the signal's name comes with it).
      name = cli.interrupted_by(interrupt)
      sys.stderr.write("Interrupted ({}) before training started: nothing "
                       "new was kept.\n".format(name))
      sys.exit(128 + signal.Signals[name])
  logging.info("Training took %.1f s", timeit.default_timer() - start)
  sys.exit(_report(result))


def _with_what_was_kept(error):
  """`error`, with the training state the run kept, if it kept one.

  Args:
    error: the OSError that stopped the run.

  Returns:
    An OSError saying what `error` says, then which epoch's state is kept
    and the command that resumes from it; `error` itself if none is kept.
  """
  if FLAGS.save_path is None or not training_state.exists(FLAGS.save_path):
    return error
  try:
    epoch = training_state.read(FLAGS.save_path)[1]["epoch"]
  except (OSError, ValueError, KeyError):
    return error
  return OSError("{}. The training state of epoch {} is kept in {}: once "
                 "that is mended, continue with: {}".format(
                     str(error).rstrip("."), epoch,
                     training_state.path(FLAGS.save_path),
                     cli.resume_command()))


def _train_on_cluster(task, settings):
  """Runs this process's task of a cluster training.

  Returns:
    The exit status: the chief's says how the run ended, as on one machine.
  """
  try:
    result = distributed_training.train(
        task, FLAGS.problem, sync_replicas=FLAGS.sync_replicas,
        timeout=FLAGS.cluster_timeout, swarm_options=swarm_options(),
        checkpoint_period=FLAGS.checkpoint_period, resume=FLAGS.resume,
        **settings)
  except training.TrainingDiverged as error:
    # The same status as a one-machine run that diverged.
    sys.stderr.write("Error: {} {}: training diverged: {}\n".format(
        task.job_name, task.task_index, error))
    return EXIT_DIVERGED
  except (RuntimeError, TimeoutError) as error:
    cli.fail("{} {}: {}".format(task.job_name, task.task_index, error))
  return 0 if result is None else _report(result)


def run():
  """Entry point of train.py and the l2l-train command."""
  cli.run(main, sys.modules[__name__], shared_flags, cluster)


if __name__ == "__main__":
  run()
