"""Quality benchmark: a freshly meta-trained L2L optimizer vs tuned baselines.

For each problem: meta-train an optimizer for a fixed budget (`training.train`
into a temporary directory, fixed seed, saved at the end), tune each baseline
of `evaluation.BASELINES` on the tuning instances at the training horizon
(100 steps), then run every optimizer on the same held-out instances for 500
steps and read the loss after 100, 200 and 500 steps: the training horizon and
2x and 5x beyond it. Prints one `BENCH quality` line per figure and a markdown
table per problem.

    python bench/quality.py
    python bench/quality.py --problems=quadratic-las --train_epochs=100
    python bench/quality.py --eval_epochs=10 --output=/tmp/quality.md
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import math
import tempfile
import timeit

from absl import flags
from absl import logging

import common  # First: it quiets TensorFlow before anything imports it.
from l2l.experiment import cli
from l2l.experiment import evaluation
from l2l.experiment import scores
from l2l.experiment import training

FLAGS = flags.FLAGS
flags.DEFINE_list("problems",
                  ["quadratic-las", "digits", "square_cos_10"],
                  "Comma-separated problems (names util.get_config knows).")
flags.DEFINE_integer("seed", 0, "Seed of the held-out instances, the same "
                     "for every optimizer; tuning uses other instances.")
flags.DEFINE_integer("train_epochs", 1000, "Meta-training epochs per "
                     "problem.")
flags.DEFINE_integer("eval_epochs", 50, "Held-out instances per optimizer.")
flags.DEFINE_integer("tune_epochs", 10, "Tuning instances per learning rate "
                     "tried.")
flags.DEFINE_integer("train_seed", 1, "Graph-level seed of meta-training.")
flags.DEFINE_integer("num_particles", 1, "Swarm size: above 1, L2L is "
                     "meta-trained and evaluated as a LOIS swarm and PSO "
                     "with as many particles is added.")
flags.DEFINE_string("output", None, "Also write the markdown tables here.")


# Loss read after these many steps: the training horizon, 2x and 5x.
HORIZONS = tuple(m * common.TRAIN_STEPS for m in (1, 2, 5))
# Mean final losses closer than this (relative) count as a tie.
TIE_TOLERANCE = common.TIE_TOLERANCE
# Epochs of train.py's end-of-training evaluation (its default).
TRAIN_EVALUATION_EPOCHS = 20

Result = collections.namedtuple("Result", "optimizer, learning_rate, figures")
Result.__doc__ = """One optimizer on one problem.

optimizer: "L2L", a name in `evaluation.BASELINES`, or "PSO".
learning_rate: the tuned learning rate of a baseline, else None.
figures: {steps: mean final loss} for each of `HORIZONS` (inf if diverged).
"""


def horizon_figures(losses):
  """The mean final loss after each of `HORIZONS` steps.

  Args:
    losses: an `Evaluation`'s row losses, at least max(HORIZONS) steps
      long, scored per start set (`scores`).

  Returns:
    {steps: mean}; inf where a run diverged (`scores.diverged`), so it ranks
    last and prints as "diverged".
  """
  figures = {}
  for steps in HORIZONS:
    mean = scores.mean_final(losses[:, :steps + 1])
    figures[steps] = math.inf if scores.diverged(mean) else mean
  return figures


def swarm_options():
  """The swarm options of L2L and PSO, or None for single-point L2L."""
  if FLAGS.num_particles > 1:
    return {"num_particles": FLAGS.num_particles}
  return None


def meta_train(problem, directory):
  """Meta-trains an optimizer on `problem` and saves it in `directory`.

  Args:
    problem: the problem name.
    directory: an empty directory.

  Returns:
    True if an optimizer was saved (training did not diverge first).
  """
  logging.info("Meta-training on %s for %d epochs", problem,
               FLAGS.train_epochs)
  start = timeit.default_timer()
  result = training.train(
      problem, save_path=directory, num_epochs=FLAGS.train_epochs,
      log_period=max(1, FLAGS.train_epochs // 5),
      evaluation_period=FLAGS.train_epochs,
      evaluation_epochs=TRAIN_EVALUATION_EPOCHS,
      num_steps=common.TRAIN_STEPS, unroll_length=common.UNROLL_LENGTH,
      learning_rate=common.META_LEARNING_RATE, seed=FLAGS.train_seed,
      num_particles=FLAGS.num_particles, show_progress=False)
  common.print_bench_line("quality", collections.OrderedDict([
      ("problem", problem), ("stage", "meta_train"),
      ("train_epochs", FLAGS.train_epochs),
      ("seconds", timeit.default_timer() - start),
      ("train_mean_final", scores.mean_text(result.best_evaluation))]))
  return result.saved


def run_optimizer(optimizer, problem, **kwargs):
  """Runs an optimizer on the held-out instances for max(HORIZONS) steps.

  Args:
    optimizer: a name `evaluation.evaluate` knows.
    problem: the problem name.
    **kwargs: passed to `evaluation.evaluate` (learning_rate, path, ...).

  Returns:
    The `horizon_figures` of its losses.
  """
  start = timeit.default_timer()
  result = evaluation.evaluate(
      optimizer, problem, num_steps=max(HORIZONS),
      num_epochs=FLAGS.eval_epochs, seed=FLAGS.seed, show_progress=False,
      **kwargs)
  logging.info("%s on %s: %d instances in %.1f s", optimizer, problem,
               FLAGS.eval_epochs, timeit.default_timer() - start)
  return horizon_figures(result.row_losses)


def learned_result(problem):
  """Meta-trains and evaluates the learned optimizer.

  Returns:
    Its `Result`; every figure inf if meta-training diverged.
  """
  with tempfile.TemporaryDirectory(prefix="l2l-bench-") as directory:
    if not meta_train(problem, directory):
      logging.warning("Meta-training on %s diverged: L2L scores inf.", problem)
      return Result("L2L", None, {s: math.inf for s in HORIZONS})
    figures = run_optimizer("L2L", problem, path=directory,
                            swarm_options=swarm_options())
  return Result("L2L", None, figures)


def tuned_learning_rate(optimizer, problem):
  """A baseline's best learning rate on the tuning instances at 100 steps."""
  best, scores = evaluation.tune(
      optimizer, problem, seed=FLAGS.seed, num_steps=common.TRAIN_STEPS,
      num_epochs=FLAGS.tune_epochs, show_progress=False)
  grid = sorted(scores)
  if best in (grid[0], grid[-1]):
    logging.warning("%s on %s: the best learning rate %g is at the edge of "
                    "the grid.", optimizer, problem, best)
  return best


def baseline_result(optimizer, problem):
  """Tunes a baseline and evaluates it at its best learning rate."""
  learning_rate = tuned_learning_rate(optimizer, problem)
  # With a swarm, each baseline restarts from the swarm's k starts.
  figures = run_optimizer(optimizer, problem, learning_rate=learning_rate,
                          swarm_options=swarm_options())
  return Result(optimizer, learning_rate, figures)


def problem_results(problem):
  """Every optimizer's `Result` on one problem, L2L first."""
  results = [learned_result(problem)]
  start = timeit.default_timer()
  results.extend(baseline_result(name, problem)
                 for name in evaluation.BASELINES)
  if swarm_options():
    results.append(Result("PSO", None, run_optimizer(
        "PSO", problem, swarm_options=swarm_options())))
  common.print_bench_line("quality", collections.OrderedDict([
      ("problem", problem), ("stage", "tune_and_baselines"),
      ("seconds", timeit.default_timer() - start)]))
  return results


def print_figures(problem, results):
  """Prints one `BENCH quality` line per optimizer and horizon."""
  for result in results:
    for steps in HORIZONS:
      mean = result.figures[steps]
      fields = collections.OrderedDict([
          ("problem", problem), ("optimizer", result.optimizer),
          ("lr", "none" if result.learning_rate is None
           else result.learning_rate),
          ("steps", steps), ("train_epochs", FLAGS.train_epochs),
          ("log_mean_final_error", scores.log_text(mean, ".4g")),
          ("mean_final", scores.mean_text(mean))])
      if swarm_options():
        fields["particles"] = FLAGS.num_particles
      common.print_bench_line("quality", fields)


def verdict(results, steps, rivals, label):
  """Says whether L2L beats the best of `rivals` after `steps` steps.

  Args:
    results: the `Result`s of one problem.
    steps: one of `HORIZONS`.
    rivals: names of the optimizers L2L is compared with.
    label: what the best of them is called in the sentence.

  Returns:
    The sentence.
  """
  learned = next(r for r in results if r.optimizer == "L2L")
  best = min((r for r in results if r.optimizer in rivals),
             key=lambda r: common.rank_key(r.figures[steps]))
  ours, theirs = learned.figures[steps], best.figures[steps]
  if common.tied(ours, theirs):
    word = "ties (within {:.0%}) with".format(TIE_TOLERANCE)
  elif common.beats(ours, theirs):
    word = "beats"
  else:
    word = "does NOT beat"
  return "{} steps: L2L ({}) {} {}, {} ({}).".format(
      steps, scores.log_text(ours, ".4g"), word, label, best.optimizer,
      scores.log_text(theirs, ".4g"))


def verdicts(results):
  """The verdicts of one problem: against the baselines, and PSO if run."""
  comparisons = [(tuple(evaluation.BASELINES), "the best tuned baseline")]
  if any(r.optimizer == "PSO" for r in results):
    comparisons.append((("PSO",), "the gradient-free swarm"))
  return [verdict(results, steps, rivals, label)
          for rivals, label in comparisons for steps in HORIZONS]


def table_cells(results, steps):
  """The log10 figures of one column; the lowest mean and its ties in bold."""
  lowest = min((r.figures[steps] for r in results), key=common.rank_key)
  cells = []
  for result in results:
    mean = result.figures[steps]
    text = scores.log_text(mean, ".4g")
    cells.append("**{}**".format(text) if common.tied(mean, lowest) else text)
  return cells


def settings_text():
  """The settings of every table, as a sentence."""
  particles = (", {} particles for L2L and PSO and {} restarts from the "
               "same starts for each baseline, all scored per start set "
               "(each row's best particle)".format(FLAGS.num_particles,
                                                  FLAGS.num_particles)
               if swarm_options() else "")
  return (
      "L2L meta-trained {} epochs ({} steps, unroll {}, meta lr {:g}, seed "
      "{}){}; {} held-out instances (seed {}); baseline learning rates tuned "
      "on {} other instances at {} steps. Cells: log10 of the mean final "
      "loss, lower is better; the best, and any within {:.0%} of its mean, "
      "in bold.".format(
          FLAGS.train_epochs, common.TRAIN_STEPS, common.UNROLL_LENGTH,
          common.META_LEARNING_RATE, FLAGS.train_seed, particles,
          FLAGS.eval_epochs, FLAGS.seed, FLAGS.tune_epochs, common.TRAIN_STEPS,
          TIE_TOLERANCE))


def problem_table(problem, results):
  """The markdown section of one problem: settings, table and verdicts."""
  columns = [table_cells(results, steps) for steps in HORIZONS]
  rows = []
  for i, result in enumerate(results):
    learning_rate = ("-" if result.learning_rate is None
                     else common.format_value(result.learning_rate))
    rows.append([result.optimizer, learning_rate] + [c[i] for c in columns])
  headers = ["optimizer", "lr"] + ["{} steps".format(s) for s in HORIZONS]
  return "### {}\n\n{}\n\n{}\n{}\n".format(
      problem, settings_text(), common.markdown_table(headers, rows),
      "\n".join("- " + line for line in verdicts(results)))


def main(argv):
  del argv
  cli.check_at_least(1, "train_epochs", "eval_epochs", "tune_epochs",
                     "num_particles")
  common.print_environment("quality")
  start = timeit.default_timer()
  sections = []
  for problem in FLAGS.problems:
    results = problem_results(problem)
    print_figures(problem, results)
    sections.append(problem_table(problem, results))
  report = "\n".join(sections)
  common.write_report("quality", report, FLAGS.output, start, problem="all")


if __name__ == "__main__":
  common.run(main)
