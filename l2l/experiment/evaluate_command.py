"""Evaluates a learned optimizer, or a baseline, on held-out instances.

    python evaluate.py --problem=quadratic --optimizer=L2L --path=./quadratic
    l2l-evaluate --problem=quadratic --optimizer=Adam --tune --plot

It prints the originals' "Log Mean Final Error" (log10 of the mean final
loss) and writes a records file of every step's losses, which l2l-compare
reads. The same --seed gives every optimizer the same instances.
"""

import os
import shlex
import signal
import sys

from absl import flags
from absl import logging
import numpy as np

# cli first: it quiets TensorFlow before evaluation imports it.
from l2l.experiment import cli
from l2l import checks  # pylint: disable=g-bad-import-order
from l2l.checkpoint import manifest
from l2l.experiment import evaluation
from l2l.experiment import records
from l2l.experiment import scores
from l2l.experiment import shared_flags
import util

FLAGS = flags.FLAGS
# Where records go without --records_dir or --path.
DEFAULT_RECORDS_DIR = "records"
flags.DEFINE_enum("optimizer", "L2L", list(evaluation.OPTIMIZERS),
                  "Optimizer to evaluate.")
flags.DEFINE_string("path", None, "Directory of a saved L2L optimizer "
                    "(train.py's --save_path); --optimizer=L2L needs it, "
                    "unless --untrained.")
flags.DEFINE_boolean("untrained", False, "Evaluate --optimizer=L2L's net "
                     "as it is before meta-training (its initial weights), "
                     "on purpose, without --path.")
flags.DEFINE_float("learning_rate", 0.001, "Learning rate of a baseline.")
flags.DEFINE_integer("num_epochs", 100, "Number of evaluation instances.")
flags.DEFINE_integer("seed", 0, "Seed of the problem instances; the same seed "
                     "gives every optimizer the same instances. From 0 to "
                     "{} (TensorFlow reduces seeds modulo 2^31 - 1, so "
                     "others repeat these draws).".format(checks.MAX_SEED),
                     lower_bound=0, upper_bound=checks.MAX_SEED)
flags.DEFINE_string("problem", "simple", "Problem to evaluate on: one of " +
                    ", ".join(util.problem_names()) + ". Without it, "
                    "--optimizer=L2L evaluates on the problem --path was "
                    "meta-trained on (its manifest's).")
flags.DEFINE_integer("num_steps", 100, "Optimizer steps per instance.")
flags.DEFINE_boolean("tune", False, "Pick the baseline's learning rate from a "
                     "log grid (1e-4 to 10) on tuning instances disjoint from "
                     "the evaluation instances (a data problem's train "
                     "split).")
flags.DEFINE_integer("tune_epochs", 10, "Instances per learning rate tried.")
flags.DEFINE_string("records_dir", None, "Where the records file goes; "
                    "defaults to --path, else ./records.")
flags.DEFINE_integer("record_positions", 1, "Epochs whose swarm positions "
                     "the records file keeps.")
flags.DEFINE_boolean("plot", False, "Also write a PNG of loss versus step.")
flags.DEFINE_float("pso_inertia", 0.7298, "PSO inertia weight.")
flags.DEFINE_float("pso_cognitive", 1.49618, "PSO attraction to a particle's "
                   "own best.")
flags.DEFINE_float("pso_social", 1.49618, "PSO attraction to the swarm's "
                   "best.")
shared_flags.define_flags()


# Exit status of an evaluation whose mean final loss is NaN or infinite.
EXIT_DIVERGED = 2


def validate_flags():
  """Checks every flag before any work; exits with one line on a bad one."""
  shared_flags.check_flags()
  cli.check_at_least(1, "num_epochs", "num_steps", "tune_epochs")
  cli.check_at_least(0, "record_positions")
  cli.check_non_negative_number("pso_inertia", "pso_cognitive", "pso_social")
  if FLAGS.optimizer not in ("L2L", "PSO"):
    cli.check_positive_number("learning_rate")
  cli.check_not_empty("path", "records_dir")
  _problem_from_manifest()
  cli.check_with("problem", util.check_problem_name)
  if FLAGS.records_dir is None and FLAGS.path is not None:
    # The records go beside the model, which may be read-only (a released
    # one on a shared disk).
    cli.check_writable_directory(
        "path", remedy="the records file goes there unless --records_dir "
        "names another directory")
  else:
    cli.check_writable_directory(
        "records_dir", FLAGS.records_dir or DEFAULT_RECORDS_DIR)
  # Last: a value that is wrong in itself is named before what is missing.
  _check_untrained()


def _problem_from_manifest():
  """Without --problem, a saved optimizer runs on the problem it was
  meta-trained on (its manifest's), not on DeepMind's default `simple`.

  Files without a manifest (DeepMind's, LOIS's) keep the default. A
  problem of one's own needs the module that registered it: without it,
  its name may be a built-in problem's (`register_problem(...,
  replace=True)`), another than the one trained on.
  """
  if FLAGS.optimizer != "L2L" or FLAGS.path is None:
    return
  try:
    saved = manifest.read(FLAGS.path)
  except ValueError as error:
    cli.fail(str(error))
  if saved is None:
    return
  trained_on = saved["problem"]
  given = FLAGS["problem"].present
  if not trained_on:
    if not given:
      # Saved by a script that named no problem (`save(..., problem=...)`).
      sys.stdout.write("Problem: {} (the default: {}'s manifest names no "
                       "problem; --problem chooses one).\n".format(
                           FLAGS.problem, FLAGS.path))
    return
  module = saved["training"].get("problem_module")
  if given:
    if (module and util.problem_module(FLAGS.problem) is None and
        util.base_name(FLAGS.problem) == util.base_name(trained_on) and
        _known(FLAGS.problem)):
      logging.warning(
          "%s was meta-trained on %s as %s registers it; without that "
          "module, --problem=%s is the built-in problem (%s gives the one "
          "trained on).", FLAGS.path, trained_on, module, FLAGS.problem,
          _module_flag(module))
    return
  try:
    util.check_problem_name(trained_on)
  except ValueError as error:
    cli.fail("{} was meta-trained on {}, which is not a problem here ({}); "
             "pass {}, the module that registers it, or --problem.".format(
                 FLAGS.path, trained_on, error,
                 _module_flag(module) if module else "--problem_module"))
  if module and util.problem_module(trained_on) is None:
    # Any module registering it will do: the recorded path may be another
    # machine's.
    cli.fail("{} was meta-trained on {} as {} registers it, which was not "
             "given here (without it, {} is the built-in problem); pass {}, "
             "or --problem.".format(FLAGS.path, trained_on, module,
                                    trained_on, _module_flag(module)))
  FLAGS.problem = trained_on
  sys.stdout.write("Problem: {}, the one {} was meta-trained on (--problem "
                   "chooses another).\n".format(trained_on, FLAGS.path))


def _known(problem_name):
  """Whether `problem_name` is a problem here (else `check_problem_name`
  reports it, after this)."""
  try:
    util.check_problem_name(problem_name)
  except ValueError:
    return False
  return True


def _module_flag(module):
  return "--problem_module=" + shlex.quote(module)


def _check_untrained():
  """Refuses to evaluate an untrained L2L optimizer unless asked to."""
  if FLAGS.untrained and FLAGS.optimizer != "L2L":
    cli.fail("--untrained applies to --optimizer=L2L only, not "
             "--optimizer={}.".format(FLAGS.optimizer))
  if FLAGS.untrained and FLAGS.path is not None:
    cli.fail("--untrained evaluates the net before meta-training and "
             "--path={} a trained one: pass one of them.".format(FLAGS.path))
  if FLAGS.optimizer == "L2L" and FLAGS.path is None and not FLAGS.untrained:
    cli.fail("--optimizer=L2L needs --path, the directory of a trained "
             "optimizer (train.py's --save_path); pass --untrained to "
             "evaluate the net before meta-training on purpose.")


def _swarm_options():
  if FLAGS.optimizer == "PSO":
    options = {"inertia": FLAGS.pso_inertia,
               "cognitive": FLAGS.pso_cognitive, "social": FLAGS.pso_social}
    # Without --num_particle PSO keeps its default of 4 particles; a given
    # number, 1 included, is what runs.
    if FLAGS["num_particle"].present:
      options["num_particles"] = FLAGS.num_particle
    return options
  # L2L runs a LOIS swarm; a baseline runs from as many starts.
  if FLAGS.optimizer == "L2L":
    # The saved manifest gives the swarm, its particles included; flags
    # given here override it, with or without --num_particle.
    options = shared_flags.swarm_flag_options(only_given=True)
    # Given, even as 1: a saved swarm asked to run one point says it cannot.
    if FLAGS["num_particle"].present:
      options["num_particles"] = FLAGS.num_particle
    return options
  if FLAGS.num_particle <= 1:
    return {}
  return {"num_particles": FLAGS.num_particle}


def _warn_unused_flags():
  """Warns of flags given that the chosen evaluation does not use."""
  if FLAGS.optimizer != "L2L":
    cli.warn_unused(cli.given_flags("swarm_"), "--optimizer={} is no learned "
                    "swarm".format(FLAGS.optimizer))
  if FLAGS.optimizer != "PSO":
    cli.warn_unused(cli.given_flags("pso_"), "--optimizer={} is not "
                    "PSO".format(FLAGS.optimizer))
  if FLAGS.optimizer in ("L2L", "PSO"):
    cli.warn_unused(cli.given_flags("learning_rate"), "--optimizer={} has no "
                    "learning rate".format(FLAGS.optimizer))
  elif FLAGS.tune:
    cli.warn_unused(cli.given_flags("learning_rate"), "--tune picks the "
                    "learning rate")
  if not FLAGS.tune:
    cli.warn_unused(cli.given_flags("tune_epochs"), "without --tune nothing "
                    "is tuned")


def _report(result, figures, settings):
  """The originals' statistics and the swarm's figures, as the command's text.

  Args:
    result: the `evaluation.Evaluation`.
    figures: `records.summary` of its losses.
    settings: what the records file says of the run.

  Returns:
    The lines the command writes to stdout (the records file's line
    follows once it is written).
  """
  lines = [util.format_stats("Epoch {}".format(FLAGS.num_epochs),
                             figures["final"] * FLAGS.num_epochs,
                             np.sum(result.seconds), FLAGS.num_epochs)]
  if result.losses.shape[2] > 1:
    # The first figure is the one the Log Mean Final Error above is of.
    spread = ("" if scores.diverged(figures["final"]) else
              "std {:.3g} ".format(figures["final_std"]))
    lines.append("Best particle per start set: mean final loss {} ({}over "
                 "{} start sets)\n".format(
                     scores.mean_text(figures["final"], ".6g"), spread,
                     figures["start_sets"]))
    lines.append("Best particle by batch mean (the older figure): {}\n"
                 .format(scores.mean_text(figures["final_by_mean"], ".6g")))
    lines.append("Per-particle mean final loss: " + ", ".join(
        "{:.6g}".format(v) for v in figures["particle_means"]) + "\n")
  if scores.tuning_found_no_rate(settings.get("tuning")):
    lines.append("Tuned learning rate: none, every rate tried diverged on "
                 "the tuning instances (evaluated at the grid's first, "
                 "{:g})\n".format(settings["learning_rate"]))
  elif settings.get("tuning"):
    lines.append("Tuned learning rate: {:g}\n".format(
        settings["learning_rate"]))
  return "".join(lines)


def main(argv):
  del argv
  validate_flags()
  _warn_unused_flags()
  cli.interrupt_on_sigterm()
  try:
    _evaluate_and_report()
  except KeyboardInterrupt as interrupt:
    # A records file is written whole, at the end, so none is left half
    # written.
    name = cli.interrupted_by(interrupt)
    sys.stderr.write("Interrupted ({}): the evaluation stopped; a records "
                     "file is only written when it ends.\n".format(name))
    sys.exit(128 + signal.Signals[name])


def _evaluate_and_report():
  """Evaluates as the flags say, writes the records and reports them."""
  with cli.plain_errors():
    common = dict(num_steps=FLAGS.num_steps, data_dir=FLAGS.data_dir,
                  swarm_options=_swarm_options())
    learning_rate = FLAGS.learning_rate
    tuning = None
    if FLAGS.tune:
      learning_rate, tuning_scores = evaluation.tune(
          FLAGS.optimizer, FLAGS.problem, seed=FLAGS.seed,
          num_epochs=FLAGS.tune_epochs, **common)
      tuning = {"seed": evaluation.tuning_seed(FLAGS.seed),
                "mode": "validation",
                "epochs": FLAGS.tune_epochs,
                "scores": {repr(lr): s for lr, s in tuning_scores.items()}}
    result = evaluation.evaluate(
        FLAGS.optimizer, FLAGS.problem, num_epochs=FLAGS.num_epochs,
        seed=FLAGS.seed, learning_rate=learning_rate, path=FLAGS.path,
        record_positions=FLAGS.record_positions, **common)
    settings = {
        "optimizer": FLAGS.optimizer, "problem": FLAGS.problem,
        "learning_rate": None if FLAGS.optimizer in ("L2L", "PSO") else
                         learning_rate,
        "seed": FLAGS.seed, "num_steps": FLAGS.num_steps,
        "num_epochs": FLAGS.num_epochs,
        # Absolute: the records may be read on another machine, or from
        # another directory, than the one the evaluation ran in.
        "path": FLAGS.path and os.path.abspath(FLAGS.path),
        # What that optimizer is (its problem, training, files' digests):
        # the records may be read where its directory is not.
        "optimizer_manifest": result.optimizer_manifest,
        # What ran: the saved swarm's options with the flags' over them.
        "swarm_options": result.swarm_options, "tuning": tuning,
    }
    directory = FLAGS.records_dir or FLAGS.path or DEFAULT_RECORDS_DIR
    figures = records.summary(result.row_losses)
    # The figures first: a records file that cannot be written (a full
    # disk) then costs the file, not the evaluation's result.
    sys.stdout.write(_report(result, figures, settings))
    sys.stdout.flush()
    path = records.write(directory, result, settings)
    sys.stdout.write("Records: " + path + "\n")
    if FLAGS.plot:
      from l2l.experiment import plots  # pylint: disable=g-import-not-at-top (matplotlib is slow)
      image = os.path.splitext(path)[0] + ".png"
      plots.loss_curves([path], image)
      sys.stdout.write("Plot: " + image + "\n")
  if figures["status"] == scores.DIVERGED:
    sys.stderr.write("Error: {} diverged on {}: its mean final loss is not a "
                     "finite number{}.\n".format(
                         FLAGS.optimizer, FLAGS.problem,
                         scores.broken_at_start(result.losses[:, 0])))
    sys.exit(EXIT_DIVERGED)


def run():
  """Entry point of evaluate.py and the l2l-evaluate command."""
  cli.run(main, sys.modules[__name__], shared_flags)


if __name__ == "__main__":
  run()
