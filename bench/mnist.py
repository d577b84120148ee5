"""MNIST benchmark: the L2L paper's Figures 4 and 5 on real MNIST.

Meta-trains DeepMind's optimizer (the 2x20 LogAndSign LSTM at scale 0.01) on
`mnist` (one hidden layer of 20 sigmoid units, batch 128, the train split;
epochs of 100 steps, unrolls of 20, as the paper) and compares it with SGD,
Momentum, NAG (Nesterov), RMSProp and Adam, each with its learning rate
tuned on instances of its own, on the same held-out instances (the test
split): after 100 steps (Figure 4, left), after 200 (Figure 4, right: the
optimizer meta-trained on 100-step runs generalising to 200), and on the
paper's three variants (Figure 5: 40 hidden units, two hidden layers, ReLU)
with the optimizer meta-trained on `mnist`.

Two disjoint sets of instances:

- validation (the tuning seed, `evaluation.tuning_seed(--seed)`, on the
  train split, so that no setting is picked on test images): every
  baseline's learning rate is tuned on them, at each horizon, with
  `evaluation.tune`; and the meta-trained optimizer is evaluated on them at
  every checkpoint (`--checkpoint_period` epochs), which gives the
  meta-training curve, the number of meta-epochs it took to beat tuned Adam
  at 100 steps, and the checkpoint that is kept;
- held-out (`--seed`, on the test split, as DeepMind evaluated there):
  every optimizer runs on the same `--eval_epochs` instances, once, at the
  settings picked above.

A checkpoint is the optimizer train.py holds at that epoch: the best of its
evaluations so far (every `--checkpoint_period` epochs, on
`--train_evaluation_epochs` training instances). Meta-training's cost is
measured in CPU seconds (user + system of this process, less the
validations'), so that a shared machine's load does not distort it: the
goal's budget, an hour on 2 cores, is 7200 CPU seconds.

Prints `BENCH mnist` lines and markdown tables, and writes one
loss-versus-step plot per panel (and the meta-training curve) into
`--output_dir`, with the records files they are drawn from and the
optimizers of every checkpoint.

    python bench/mnist.py                       # the full bench (~40 min)
    python bench/mnist.py --train_only --train_epochs=500   # settings search
    python bench/mnist.py --optimizer_path=DIR  # skip meta-training

Given an `--output_dir` that holds a run (stopped, or asked for fewer
epochs), it continues it: meta-training resumes from its training state and
the curve goes on.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import json
import math
import tempfile
import time
import timeit

from absl import flags
from absl import logging

import common  # First: it quiets TensorFlow before anything imports it.
from matplotlib import figure as mpl_figure
from matplotlib.backends import backend_agg

from l2l import files
from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.core import meta_objective
from l2l.experiment import cli
from l2l.experiment import evaluation
from l2l.experiment import plots
from l2l.experiment import records
from l2l.experiment import scores
from l2l.experiment import training
from l2l.experiment import training_state
import networks
import problems
import util

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Directory of the four MNIST files; "
                    "default {} when it exists, else where --problem=mnist "
                    "looks ($L2L_DATA_DIR, else the l2l-data cache)."
                    .format(common.SHARED_MNIST_DIR))
flags.DEFINE_integer("seed", 0, "Seed of the held-out instances; the "
                     "validation instances are the tuning seed's.")
flags.DEFINE_integer("eval_epochs", 100, "Held-out instances per optimizer "
                     "and problem (DeepMind's evaluate.py: 100).")
flags.DEFINE_integer("tune_epochs", 20, "Validation instances: per learning "
                     "rate tried, and per checkpoint of meta-training.")
flags.DEFINE_integer("train_epochs", 1000, "Meta-training epochs.")
flags.DEFINE_integer("checkpoint_period", 100, "Epochs between checkpoints "
                     "(train.py's evaluations, then a validation).")
flags.DEFINE_integer("train_evaluation_epochs", 20, "Training instances "
                     "per train.py evaluation (its default), which picks "
                     "the optimizer a checkpoint holds.")
flags.DEFINE_float("meta_learning_rate", 0.003, "Meta-training's Adam "
                   "learning rate.")
flags.DEFINE_enum("meta_objective", "log",
                  list(meta_objective.OBJECTIVES),
                  "What the meta-loss sums over an unroll: the losses "
                  "(DeepMind's) or their logs.")
flags.DEFINE_integer("train_seed", 1, "Graph-level seed of meta-training.")
flags.DEFINE_boolean("second_derivatives", True, "Meta-train through the "
                     "optimizee's gradients (train.py's option).")
flags.DEFINE_boolean("zero_gate_biases", True, "Start the LSTM's gate "
                     "biases at zero, as this library's configurations do "
                     "(networks.library_config); false keeps DeepMind's "
                     "random start (Sonnet 1's default), which with this "
                     "bench's other defaults stayed at chance level "
                     "(bench/README.md).")
flags.DEFINE_integer("unroll_length", common.UNROLL_LENGTH, "Steps per "
                     "meta-training unroll; the paper's is {}.".format(
                         common.UNROLL_LENGTH))
flags.DEFINE_boolean("train_only", False, "Stop after meta-training and its "
                     "validation curve (for choosing the settings): no "
                     "held-out evaluation.")
flags.DEFINE_string("optimizer_path", None, "A saved optimizer to evaluate "
                    "instead of meta-training one.")
flags.DEFINE_list("variants", ["mnist-40", "mnist-2layer", "mnist-relu"],
                  "The Figure 5 problems, run with the optimizer "
                  "meta-trained on mnist.")
flags.DEFINE_string("output_dir", None, "Where the plots, records files and "
                    "checkpoints go (default: a new temporary directory, "
                    "kept).")
flags.DEFINE_string("output", None, "Also write the markdown report here.")


PROBLEM = "mnist"
# `mnist` with this library's net (zero gate biases), for --zero_gate_biases.
ZERO_BIAS_PROBLEM = "mnist-zero-gate-biases"
# Where the meta-training curve is kept, in --output_dir.
CURVE_FILE = "curve.json"
HORIZONS = (common.TRAIN_STEPS, 2 * common.TRAIN_STEPS)
# The paper's Figure 4 baselines, and classical momentum.
BASELINES = tuple(evaluation.BASELINES)
SCRIPT = "mnist"
# A run whose every step is bench_line'd: the figures' text form.
_LOG_SPEC = ".3f"

Checkpoint = collections.namedtuple(
    "Checkpoint", "epoch, saved_epoch, cpu_seconds, validation, path")
Checkpoint.__doc__ = """One point of the meta-training curve.

epoch: meta-training epochs done.
saved_epoch: the epoch of the optimizer train.py held then (its best
  evaluation so far).
cpu_seconds: meta-training's CPU seconds so far, validations excluded.
validation: its mean final loss on the validation instances at 100 steps.
path: a copy of that optimizer.
"""


def data_dir():
  """The --data_dir, or its default (None: the reader's own search)."""
  return common.mnist_dir(FLAGS.data_dir)


def training_problem():
  """The problem name meta-training runs: `mnist`, or with --zero_gate_biases
  the same MLP and data with this library's net, registered here."""
  if not FLAGS.zero_gate_biases:
    return PROBLEM
  if ZERO_BIAS_PROBLEM not in util.problem_names():
    util.register_problem(
        ZERO_BIAS_PROBLEM,
        lambda mode: problems.mnist(layers=(20,), mode=mode,
                                    data_dir=data_dir()),
        net_config={networks.DEFAULT_NET_ID: networks.library_config()})
  return ZERO_BIAS_PROBLEM


def cpu_seconds():
  """CPU seconds (user + system, every thread) this process has used."""
  return time.process_time()


def log_text(mean):
  return scores.log_text(mean, _LOG_SPEC)


# ----------------------------------------------------------- baselines ---


def tune_baselines(problem, steps):
  """Tunes every baseline's learning rate on the validation instances.

  Returns:
    {name: (learning rate, its mean final loss on the validation
    instances)}.
  """
  tuned = {}
  for name in BASELINES:
    start = cpu_seconds()
    best, errors = evaluation.tune(
        name, problem, seed=FLAGS.seed, num_steps=steps,
        num_epochs=FLAGS.tune_epochs, data_dir=data_dir(),
        show_progress=False)
    grid = sorted(errors)
    if best in (grid[0], grid[-1]):
      logging.warning("%s on %s at %d steps: the best learning rate %g is "
                      "at the edge of the grid.", name, problem, steps, best)
    tuned[name] = (best, errors[best])
    common.print_bench_line(SCRIPT, collections.OrderedDict([
        ("stage", "tune"), ("problem", problem), ("optimizer", name),
        ("steps", steps), ("lr", best),
        ("validation_log_mean_final_error", log_text(errors[best])),
        ("cpu_seconds", cpu_seconds() - start)]))
  return tuned


# ------------------------------------------------------- meta-training ---


def validate(path):
  """The mean final loss of a saved optimizer on the validation instances."""
  result = evaluation.evaluate(
      "L2L", PROBLEM, num_steps=common.TRAIN_STEPS,
      num_epochs=FLAGS.tune_epochs,
      seed=evaluation.tuning_seed(FLAGS.seed), path=path, mode="validation",
      data_dir=data_dir(), show_progress=False)
  return evaluation.final_error(result.losses)


def copy_optimizer(source, destination):
  """Copies a saved optimizer's manifest and net files, atomically each."""
  saved = manifest.read(source)
  names = [manifest.path_in(source)] + [
      l2l_file.checkpoint_path(source, net_id) for net_id in saved["nets"]]
  for name in names:
    with open(name, "rb") as stream:
      files.write_atomic(os.path.join(destination, os.path.basename(name)),
                         stream.read())
  return destination


def curve_settings():
  """What a meta-training curve depends on, besides its length."""
  return {"meta_learning_rate": FLAGS.meta_learning_rate,
          "meta_objective": FLAGS.meta_objective,
          "train_seed": FLAGS.train_seed,
          "second_derivatives": FLAGS.second_derivatives,
          "unroll_length": FLAGS.unroll_length,
          "checkpoint_period": FLAGS.checkpoint_period,
          "train_evaluation_epochs": FLAGS.train_evaluation_epochs,
          "tune_epochs": FLAGS.tune_epochs, "seed": FLAGS.seed}


def read_curve(output_dir):
  """The curve kept in `output_dir` by an earlier run ([] if none).

  Raises:
    ValueError: if that run had other settings.
  """
  path = os.path.join(output_dir, CURVE_FILE)
  if not os.path.exists(path):
    return []
  with open(path, "rb") as stream:
    kept = json.loads(stream.read().decode("utf-8"))
  # A curve kept before a setting existed had its flag's default.
  settings = {key: kept["settings"].get(key, FLAGS[key].default)
              for key in curve_settings()}
  if settings != curve_settings():
    raise ValueError(
        "{} holds a run with other settings ({}); give another "
        "--output_dir, or those settings to continue it.".format(
            output_dir, settings))
  return [Checkpoint(**point) for point in kept["curve"]]


def write_curve(output_dir, curve):
  text = json.dumps({"settings": curve_settings(),
                     "curve": [point._asdict() for point in curve]},
                    indent=1)
  files.write_atomic(os.path.join(output_dir, CURVE_FILE),
                     text.encode("utf-8"))


class CheckpointValidation:
  """Validates train.py's optimizer every `--checkpoint_period` epochs.

  Called by `training.train` after every epoch; at the epoch after a
  checkpoint (train.py has evaluated and saved by then) it evaluates the
  saved optimizer on the validation instances, unless it is the one
  already validated, and keeps the curve in the output directory.
  """

  def __init__(self, output_dir, save_path, rivals, curve):
    """Starts or continues the curve.

    Args:
      output_dir: the bench's directory: each validated optimizer is
        copied to its `checkpoints/`, and the curve kept in it.
      save_path: train.py's save directory.
      rivals: {name: validation mean final loss} of the tuned baselines at
        100 steps, for the BENCH lines.
      curve: the curve of the run this one continues ([] for none).
    """
    self.output_dir = output_dir
    self.save_path = save_path
    self.rivals = rivals
    self.curve = list(curve)
    # A resumed run adds to the CPU seconds of the one it continues.
    self._base = curve[-1].cpu_seconds if curve else 0.0
    self._start = cpu_seconds()
    self._validation_seconds = 0.0

  def train_seconds(self):
    """Meta-training's CPU seconds so far, validations excluded."""
    return (self._base + cpu_seconds() - self._start -
            self._validation_seconds)

  def __call__(self, epoch, seconds, final_loss):
    del seconds, final_loss  # Unused.
    done = self.curve[-1].epoch if self.curve else 0
    if epoch - 1 > done and (epoch - 1) % FLAGS.checkpoint_period == 0:
      self.validate(epoch - 1)

  def validate(self, epoch):
    """Adds the checkpoint of `epoch` to the curve."""
    train_seconds = self.train_seconds()
    start = cpu_seconds()
    saved = manifest.read(self.save_path)
    saved_epoch = int(saved["training"]["epochs_done"])
    previous = self.curve[-1] if self.curve else None
    if previous is not None and previous.saved_epoch == saved_epoch:
      validation, path = previous.validation, previous.path
    else:
      path = copy_optimizer(self.save_path, os.path.join(
          self.output_dir, "checkpoints", "epoch_{}".format(saved_epoch)))
      validation = validate(path)
    self.curve.append(Checkpoint(epoch, saved_epoch, train_seconds,
                                 validation, path))
    write_curve(self.output_dir, self.curve)
    self._validation_seconds += cpu_seconds() - start
    fields = collections.OrderedDict([
        ("stage", "checkpoint"), ("epoch", epoch),
        ("saved_epoch", saved_epoch), ("train_cpu_seconds", train_seconds),
        ("validation_log_mean_final_error", log_text(validation))])
    for name, value in sorted(self.rivals.items()):
      fields[name + "_validation"] = log_text(value)
    fields["load_1min"] = os.getloadavg()[0]
    common.print_bench_line(SCRIPT, fields)


def meta_train(output_dir, rivals, curve):
  """Meta-trains on `mnist`, validating every checkpoint.

  A run whose state and curve are in `output_dir` (stopped, or asked for
  fewer epochs) is continued, with the same settings.

  Args:
    output_dir: the bench's directory; train.py saves in `train/`, every
      validated optimizer is copied to `checkpoints/epoch_<n>/`, and the
      curve is kept in `curve.json`.
    rivals: {name: validation mean final loss} of the tuned baselines.
    curve: the curve `read_curve` found there.

  Returns:
    `(curve, interrupted)`: the curve, a list of `Checkpoint`s (empty if
    nothing was saved), and the signal that stopped meta-training, or None.
  """
  save_path = os.path.join(output_dir, "train")
  resume = training_state.exists(save_path)
  if resume and curve and curve[-1].epoch >= FLAGS.train_epochs:
    logging.info("%s holds a curve of %d epochs already.", output_dir,
                 curve[-1].epoch)
    return curve, None
  validation = CheckpointValidation(output_dir, save_path, rivals, curve)
  result = training.train(
      training_problem(), save_path=save_path, num_epochs=FLAGS.train_epochs,
      log_period=FLAGS.checkpoint_period,
      evaluation_period=FLAGS.checkpoint_period,
      evaluation_epochs=FLAGS.train_evaluation_epochs,
      num_steps=common.TRAIN_STEPS, unroll_length=FLAGS.unroll_length,
      learning_rate=FLAGS.meta_learning_rate, seed=FLAGS.train_seed,
      second_derivatives=FLAGS.second_derivatives,
      data_dir=data_dir(), show_progress=False, resume=resume,
      checkpoint_period=FLAGS.checkpoint_period,
      epoch_callback=validation, meta_objective=FLAGS.meta_objective)
  if result.interrupted:
    return validation.curve, result.interrupted
  if result.diverged:
    logging.warning("Meta-training diverged at epoch %d; the curve ends at "
                    "the last good optimizer.", result.epochs)
  if result.saved and (not validation.curve or
                       validation.curve[-1].epoch < result.epochs):
    validation.validate(result.epochs)
  return validation.curve, None


def first_beating(curve, value):
  """The first checkpoint whose validation is below `value`, or None."""
  return next((c for c in curve if common.beats(c.validation, value)), None)


def curve_figure(curve, rivals, output_path):
  """Plots validation loss versus meta-epochs, the tuned baselines flat."""
  fig = mpl_figure.Figure(figsize=(7.0, 4.5), dpi=150)
  backend_agg.FigureCanvasAgg(fig)
  axes = fig.add_subplot(1, 1, 1)
  axes.plot([c.epoch for c in curve], [c.validation for c in curve],
            marker="o", label="L2L (train.py's optimizer at that epoch)")
  for name, value in sorted(rivals.items(), key=lambda item: item[1]):
    axes.axhline(value, linestyle="--", linewidth=1,
                 label="{} (tuned)".format(name))
  axes.set_yscale("log")
  axes.set_xlabel("meta-training epochs")
  axes.set_ylabel("mean loss after {} steps\n(validation instances)".format(
      common.TRAIN_STEPS))
  axes.set_title("Meta-training on mnist")
  axes.grid(True, alpha=0.3)
  axes.legend(loc="best", fontsize="small")
  fig.tight_layout()
  return plots.save_figure(fig, output_path)


def curve_table(curve, rivals):
  """The meta-training curve as a markdown table."""
  adam = rivals["Adam"]
  best = min(rivals.values(), key=common.rank_key)
  rows = [[c.epoch, c.saved_epoch, "{:.0f}".format(c.cpu_seconds),
           log_text(c.validation),
           "yes" if common.beats(c.validation, adam) else "no",
           "yes" if common.beats(c.validation, best) else "no"] for c in curve]
  return common.markdown_table(
      ["epoch", "optimizer of epoch", "CPU s", "L2L validation",
       "beats Adam", "beats every baseline"], rows)


def curve_summary(curve, rivals):
  """Sentences: when the curve first beat tuned Adam and every baseline."""
  adam = rivals["Adam"]
  best_name = min(rivals, key=lambda name: common.rank_key(rivals[name]))
  best = rivals[best_name]
  lines = []
  for label, value in (("tuned Adam ({})".format(log_text(adam)), adam),
                       ("every tuned baseline (best: {}, {})".format(
                           best_name, log_text(best)), best)):
    hit = first_beating(curve, value)
    if hit is None:
      last = curve[-1]
      lines.append(
          "It did NOT beat {} on the validation instances at {} steps in {} "
          "epochs ({:.0f} CPU s); its best was {} (epoch {}).".format(
              label, common.TRAIN_STEPS, last.epoch, last.cpu_seconds,
              log_text(min((c.validation for c in curve),
                           key=common.rank_key)),
              min(curve, key=lambda c: common.rank_key(c.validation)).epoch))
    else:
      lines.append(
          "It first beat {} on the validation instances at {} steps after "
          "{} epochs ({:.0f} CPU s of meta-training): {}.".format(
              label, common.TRAIN_STEPS, hit.epoch, hit.cpu_seconds,
              log_text(hit.validation)))
  return lines


# ------------------------------------------------------------ held-out ---


def held_out(optimizer, problem, steps, **kwargs):
  """Runs an optimizer on the held-out instances.

  Returns:
    Its `evaluation.Evaluation`.
  """
  start = cpu_seconds()
  result = evaluation.evaluate(
      optimizer, problem, num_steps=steps, num_epochs=FLAGS.eval_epochs,
      seed=FLAGS.seed, data_dir=data_dir(), show_progress=False, **kwargs)
  logging.info("%s on %s: %d held-out instances, %.0f CPU s", optimizer,
               problem, FLAGS.eval_epochs, cpu_seconds() - start)
  return result


def figure_of(result, steps):
  """The mean final loss after `steps` steps of a longer run."""
  return scores.mean_final(evaluation.scored_losses(
      evaluation.first_steps(result, steps)))


def problem_results(problem, optimizer_path, tuned):
  """Every optimizer on one problem's held-out instances.

  Args:
    problem: a util.get_config name.
    optimizer_path: the meta-trained optimizer.
    tuned: {steps: {name: (learning rate, validation)}} of the baselines.

  Returns:
    {name: {steps: (learning rate or None, mean final loss, Evaluation)}}.
  """
  longest = max(HORIZONS)
  learned = held_out("L2L", problem, longest, path=optimizer_path)
  results = {"L2L": {s: (None, figure_of(learned, s), learned)
                     for s in HORIZONS}}
  for name in BASELINES:
    runs = {}
    results[name] = {}
    for steps in HORIZONS:
      rate = tuned[steps][name][0]
      if rate not in runs:
        runs[rate] = held_out(name, problem, longest, learning_rate=rate)
      results[name][steps] = (rate, figure_of(runs[rate], steps), runs[rate])
  return results


def print_figures(problem, results):
  for name, by_steps in results.items():
    for steps, (rate, mean, _) in sorted(by_steps.items()):
      common.print_bench_line(SCRIPT, collections.OrderedDict([
          ("stage", "held_out"), ("problem", problem), ("optimizer", name),
          ("lr", "none" if rate is None else rate), ("steps", steps),
          ("eval_epochs", FLAGS.eval_epochs),
          ("log_mean_final_error", scores.log_text(mean, ".4g")),
          ("mean_final", scores.mean_text(mean))]))


def panel_plot(problem, steps, results, output_dir):
  """One loss-versus-step plot: every optimizer's first `steps` steps."""
  paths, labels = [], []
  for name, by_steps in results.items():
    rate, _, result = by_steps[steps]
    truncated = evaluation.first_steps(result, steps)
    settings = {"optimizer": name, "problem": problem, "learning_rate": rate,
                "seed": FLAGS.seed, "num_steps": steps,
                "num_epochs": FLAGS.eval_epochs}
    paths.append(records.write(os.path.join(output_dir, "records"),
                               truncated, settings))
    labels.append(plots.label(settings))
  output = os.path.join(output_dir, "{}_{}_steps.png".format(problem, steps))
  return plots.loss_curves(paths, output, labels=labels, title=(
      "{}: {} held-out instances, {} steps".format(
          problem, FLAGS.eval_epochs, steps)))


def beats_every_baseline(results, steps):
  learned = results["L2L"][steps][1]
  return all(common.beats(learned, results[name][steps][1])
             for name in BASELINES)


def verdict(problem, results, steps):
  """A sentence: does L2L beat every tuned baseline after `steps` steps?"""
  learned = results["L2L"][steps][1]
  best = min(BASELINES,
             key=lambda name: common.rank_key(results[name][steps][1]))
  theirs = results[best][steps][1]
  word = "beats" if beats_every_baseline(results, steps) else "does NOT beat"
  return "{}, {} steps: L2L ({}) {} every tuned baseline (best: {} at lr {}, " \
      "{}).".format(problem, steps, log_text(learned), word, best,
                    common.format_value(results[best][steps][0]),
                    log_text(theirs))


def held_out_table(all_results):
  """Rows: optimizers; columns: problem and horizon; the lowest in bold."""
  columns = [(problem, steps) for problem in all_results for steps in HORIZONS]
  rows = []
  for name in ("L2L",) + BASELINES:
    row = [name]
    for problem, steps in columns:
      rate, mean, _ = all_results[problem][name][steps]
      lowest = min((r[steps][1] for r in all_results[problem].values()),
                   key=common.rank_key)
      text = log_text(mean)
      if mean == lowest and math.isfinite(mean):
        text = "**{}**".format(text)
      if rate is not None:
        text += " ({})".format(common.format_value(rate))
      row.append(text)
    rows.append(row)
  headers = ["optimizer"] + ["{} @{}".format(p, s) for p, s in columns]
  return common.markdown_table(headers, rows)


def settings_text(train_seconds):
  return (
      "L2L: DeepMind's `mnist` optimizer (2x20 LSTM, LogAndSign, scale 0.01"
      "{}) meta-trained on the train split, {} epochs of {} steps, unroll {}, "
      "meta lr {:g}, meta-objective {}, seed {}{} ({:.0f} CPU s); the "
      "checkpoint kept is the best of every {} epochs on {} validation "
      "instances (train split, another seed). Baselines: learning rate tuned per problem and horizon on "
      "the same validation instances (evaluation.tune, grid 1e-4..10 in "
      "half decades). Every optimizer on the same {} held-out instances "
      "(test split, seed {}). Cells: log10 of the mean loss after that many "
      "steps (lower is better; the lowest in bold), the learning rate in "
      "brackets.".format(
          ", gate biases starting at zero" if FLAGS.zero_gate_biases else "",
          FLAGS.train_epochs, common.TRAIN_STEPS, FLAGS.unroll_length,
          FLAGS.meta_learning_rate, FLAGS.meta_objective, FLAGS.train_seed,
          ", second derivatives" if FLAGS.second_derivatives else "",
          train_seconds, FLAGS.checkpoint_period, FLAGS.tune_epochs,
          FLAGS.eval_epochs, FLAGS.seed))


def main(argv):
  del argv
  cli.check_at_least(1, "eval_epochs", "tune_epochs", "train_epochs",
                     "checkpoint_period", "train_evaluation_epochs",
                     "unroll_length")
  cli.check_positive_number("meta_learning_rate")
  common.print_environment(SCRIPT)
  start = timeit.default_timer()
  output_dir = FLAGS.output_dir or tempfile.mkdtemp(prefix="l2l-mnist-bench-")
  os.makedirs(output_dir, exist_ok=True)
  logging.info("Plots, records and checkpoints go to %s", output_dir)
  try:
    kept_curve = read_curve(output_dir)
  except ValueError as error:
    cli.fail(error)
  mnist_tuned = tune_baselines(PROBLEM, common.TRAIN_STEPS)
  rivals = {name: value for name, (_, value) in mnist_tuned.items()}
  sections = []
  train_seconds = 0.0
  if FLAGS.optimizer_path:
    optimizer_path = FLAGS.optimizer_path
  else:
    curve, interrupted = meta_train(output_dir, rivals, kept_curve)
    if interrupted:
      logging.error("Stopped by %s; run the same command again to continue "
                    "from epoch %d.", interrupted,
                    curve[-1].epoch if curve else 0)
      return 130
    if not curve:
      logging.error("Meta-training saved no optimizer.")
      return 2
    train_seconds = curve[-1].cpu_seconds
    picked = min(curve, key=lambda c: common.rank_key(c.validation))
    optimizer_path = picked.path
    curve_figure(curve, rivals, os.path.join(output_dir, "meta_training.png"))
    summary = curve_summary(curve, rivals)
    summary.append("Kept: the optimizer of epoch {} (validation {}).".format(
        picked.saved_epoch, log_text(picked.validation)))
    common.print_bench_line(SCRIPT, collections.OrderedDict([
        ("stage", "meta_train"), ("epochs", curve[-1].epoch),
        ("train_cpu_seconds", train_seconds),
        ("picked_epoch", picked.saved_epoch),
        ("picked_validation", log_text(picked.validation)),
        ("adam_validation", log_text(rivals["Adam"])),
        ("epochs_to_beat_adam", getattr(
            first_beating(curve, rivals["Adam"]), "epoch", "none")),
        ("epochs_to_beat_every_baseline", getattr(
            first_beating(curve, min(rivals.values())), "epoch", "none"))]))
    sections.append("#### Meta-training on mnist\n\n{}\n\n{}".format(
        curve_table(curve, rivals), "\n".join("- " + s for s in summary)))
  if not FLAGS.train_only:
    all_results = collections.OrderedDict()
    for problem in [PROBLEM] + list(FLAGS.variants):
      tuned = {steps: (mnist_tuned if (problem, steps) == (
          PROBLEM, common.TRAIN_STEPS) else tune_baselines(problem, steps))
               for steps in HORIZONS}
      results = problem_results(problem, optimizer_path, tuned)
      print_figures(problem, results)
      # Figure 4 has a panel per horizon; Figure 5 one per variant.
      for steps in HORIZONS:
        if problem == PROBLEM or steps == max(HORIZONS):
          panel_plot(problem, steps, results, output_dir)
      all_results[problem] = results
    verdicts = [verdict(p, r, s) for p, r in all_results.items()
                for s in HORIZONS]
    sections.insert(0, "#### Held-out instances\n\n{}\n\n{}\n\n{}".format(
        settings_text(train_seconds), held_out_table(all_results),
        "\n".join("- " + v for v in verdicts)))
  report = "\n".join(sections)
  common.write_report(SCRIPT, report, FLAGS.output, start,
                      output_dir=output_dir)
  return 0


if __name__ == "__main__":
  common.run(main)
