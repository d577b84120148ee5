"""Swarm benchmark: does a learned swarm explore Rastrigin better than PSO?

On test-mode Rastrigin (`square_cos_<d>`), for each of `--dims`: meta-train a
swarm with the documented recipe (`training.SWARM_RECIPE`; or score the one
in `--path`), tune Adam's learning rate on tuning instances, then run the
learned swarm, PSO and Adam restarted from the swarm's starts on the same
held-out instances (4 particles, 250 steps, batch 128, starts N(0, 1.3)).
Reports each one's best-particle final loss and each particle's mean
displacement (|x_250 - x_0| per coordinate), and an ablation: the recipe
re-trained with each feature, the feature attention, the attraction gate and
the objective switched off in turn (in the first of `--dims`). Prints one
`BENCH swarm` line per figure and markdown tables.

    python bench/swarm.py                 # the recipe in 10-d and 20-d
    python bench/swarm.py --quick         # a brief version, under 10 min
    python bench/swarm.py --path=./sc10   # score a swarm already trained
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import math
import tempfile
import timeit

from absl import app
from absl import flags
from absl import logging
import numpy as np

import common  # First: it quiets TensorFlow before anything imports it.
from l2l.experiment import evaluation
from l2l.experiment import training

FLAGS = flags.FLAGS
flags.DEFINE_list("dims", ["10", "20"], "Rastrigin dimensions to run.")
flags.DEFINE_boolean("quick", False, "Train briefly (--quick_train_epochs) "
                     "and evaluate on --quick_eval_epochs instances: aimed at "
                     "under 10 minutes on 2 idle cores.")
flags.DEFINE_string("path", None, "Score the swarm saved in this directory "
                    "(the coordinate-wise swarm runs in every dimension) "
                    "instead of training one; skips the ablation.")
flags.DEFINE_integer("train_epochs", None, "Meta-training epochs per swarm; "
                     "defaults to the recipe's.")
flags.DEFINE_integer("quick_train_epochs", 10, "Meta-training epochs per "
                     "swarm with --quick.")
flags.DEFINE_integer("eval_epochs", 20, "Held-out instances per optimizer.")
flags.DEFINE_integer("quick_eval_epochs", 5, "Held-out instances with "
                     "--quick.")
flags.DEFINE_integer("tune_epochs", 5, "Tuning instances per learning rate "
                     "Adam tries.")
flags.DEFINE_integer("num_steps", 250, "Optimization steps per instance.")
flags.DEFINE_integer("num_particles", 4, "Particles (restarts for Adam).")
flags.DEFINE_integer("seed", 0, "Seed of the held-out instances, the same "
                     "for every optimizer; tuning uses other instances.")
flags.DEFINE_integer("train_seed", 1, "Graph-level seed of meta-training.")
flags.DEFINE_boolean("ablation", True, "Re-train and score the ablations "
                     "(in the first of --dims).")
flags.DEFINE_string("output", None, "Also write the markdown tables here.")

# LOIS's reported final losses on Rastrigin (its poster's ablation).
LOIS_CLAIMS = {10: 12.3, 20: 43.0}
# The ablations: the recipe with one part switched off, as swarm options.
ABLATIONS = collections.OrderedDict([
    ("no gradient attention", {"use_gradient_attention": False}),
    ("no momentum", {"use_momentum": False}),
    ("no personal best", {"use_personal_best": False}),
    ("no attraction", {"use_attraction": False}),
    ("no feature attention", {"use_feature_attention": False}),
    ("no attraction gate", {"attraction_gain": "off"}),
    # The objective switched off: LOIS's sum over every step.
    ("no objective", {"objective": "sum", "time_weighting": "uniform"}),
])

Score = collections.namedtuple("Score", "name, lr, final, std, displacements")
Score.__doc__ = """One optimizer in one dimension.

name: "L2L", "PSO", "Adam", or an ablation's name.
lr: Adam's tuned learning rate, else None.
final: mean over instances of the best particle's final loss (inf: diverged).
std: its standard deviation over instances.
displacements: each particle's mean |x_T - x_0| per coordinate.
"""


def eval_epochs():
  return FLAGS.quick_eval_epochs if FLAGS.quick else FLAGS.eval_epochs


def train_epochs():
  if FLAGS.quick:
    return FLAGS.quick_train_epochs
  if FLAGS.train_epochs is not None:
    return FLAGS.train_epochs
  return training.SWARM_RECIPE["num_epochs"]


def recipe_options(**changes):
  """The recipe's swarm options with `changes`."""
  return dict(training.SWARM_RECIPE["swarm_options"], **changes)


def score(name, problem, lr=None, **kwargs):
  """Runs one optimizer on the held-out instances and scores it."""
  start = timeit.default_timer()
  epochs = eval_epochs()
  result = evaluation.evaluate(
      name if name in ("PSO", "Adam") else "L2L", problem,
      num_steps=FLAGS.num_steps, num_epochs=epochs, seed=FLAGS.seed,
      mode="test", record_positions=epochs, show_progress=False,
      learning_rate=lr or 0.001, **kwargs)
  logging.info("%s on %s: %d instances in %.1f s", name, problem, epochs,
               timeit.default_timer() - start)
  best = np.min(result.losses[:, -1, :], axis=1)
  moved = np.abs(result.positions[:, -1] - result.positions[:, 0])
  return Score(name, lr, evaluation.final_error(result.losses),
               float(np.std(best)), np.mean(moved, axis=(0, 2)))


def train_swarm(problem, directory, options):
  """Meta-trains a swarm with the recipe's settings; True if it saved."""
  recipe = training.SWARM_RECIPE
  start = timeit.default_timer()
  result = training.train(
      problem, save_path=directory, num_epochs=train_epochs(),
      log_period=max(1, train_epochs() // 5),
      evaluation_period=train_epochs(), evaluation_epochs=5,
      num_steps=recipe["num_steps"], unroll_length=recipe["unroll_length"],
      learning_rate=recipe["learning_rate"], seed=FLAGS.train_seed,
      num_particles=FLAGS.num_particles, show_progress=False,
      swarm_options=options)
  common.print_bench_line("swarm", collections.OrderedDict([
      ("problem", problem), ("stage", "meta_train"),
      ("train_epochs", train_epochs()),
      ("seconds", timeit.default_timer() - start),
      ("train_mean_final", result.best_evaluation)]))
  return result.saved and math.isfinite(result.best_evaluation)


def learned_score(name, problem, options, path=None):
  """Trains (unless `path` is given) and scores one swarm.

  The saved directory's manifest gives evaluation the swarm's options.
  """
  swarm = {"num_particles": FLAGS.num_particles}
  if path is not None:
    return score(name, problem, path=path, swarm_options=swarm)
  with tempfile.TemporaryDirectory(prefix="l2l-swarm-") as directory:
    if not train_swarm(problem, directory, options):
      logging.warning("Meta-training %s on %s diverged: it scores inf.",
                      name, problem)
      return Score(name, None, math.inf, math.nan,
                   np.full(FLAGS.num_particles, math.nan))
    return score(name, problem, path=directory, swarm_options=swarm)


def baseline_scores(problem):
  """PSO, and Adam tuned then restarted from the swarm's starts."""
  starts = {"num_particles": FLAGS.num_particles}
  best, scores = evaluation.tune(
      "Adam", problem, seed=FLAGS.seed, num_steps=FLAGS.num_steps,
      num_epochs=FLAGS.tune_epochs, swarm_options=starts,
      show_progress=False)
  grid = sorted(scores)
  if best in (grid[0], grid[-1]):
    logging.warning("Adam on %s: the best learning rate %g is at the edge of "
                    "the grid.", problem, best)
  return [score("PSO", problem, swarm_options=starts),
          score("Adam", problem, lr=best, swarm_options=starts)]


def print_score(dims, table, result):
  common.print_bench_line("swarm", collections.OrderedDict([
      ("dims", dims), ("table", table), ("optimizer", result.name.replace(
          " ", "_")),
      ("lr", "none" if result.lr is None else result.lr),
      ("particles", FLAGS.num_particles), ("steps", FLAGS.num_steps),
      ("instances", eval_epochs()), ("train_epochs", (
          "none" if FLAGS.path or result.name in ("PSO", "Adam")
          else train_epochs())),
      ("mean_final", result.final), ("final_std", result.std),
      ("mean_displacement", float(np.mean(result.displacements))),
      ("particle_displacements", ",".join(
          common.format_value(v) for v in result.displacements))]))


def verdicts(dims, results):
  """Sentences: does the learned swarm beat PSO, Adam, LOIS's claim?"""
  by_name = {r.name: r for r in results}
  ours = by_name["L2L"].final
  lines = []
  for rival, label in (("PSO", "PSO"), ("Adam", "best-of-{} tuned Adam".format(
      FLAGS.num_particles))):
    theirs = by_name[rival].final
    if common.tied(ours, theirs):
      word = "ties (within {:.0%}) with".format(common.TIE_TOLERANCE)
    elif ours < theirs:
      word = "beats"
    else:
      word = "does NOT beat"
    lines.append("{}-d: the learned swarm ({}) {} {} ({}).".format(
        dims, common.format_value(ours), word, label,
        common.format_value(theirs)))
  claim = LOIS_CLAIMS.get(dims)
  if claim is not None:
    word = "reaches" if ours <= claim else "does NOT reach"
    lines.append("{}-d: it {} LOIS's claimed {}.".format(dims, word, claim))
  return lines


def rows(results):
  return [[r.name, "-" if r.lr is None else common.format_value(r.lr),
           "{} ± {}".format(common.format_value(r.final),
                            common.format_value(r.std)),
           common.format_value(float(np.mean(r.displacements))),
           ", ".join(common.format_value(v) for v in r.displacements)]
          for r in results]


HEADERS = ["optimizer", "lr", "best-particle final loss",
           "mean displacement", "per particle"]


def settings_text():
  recipe = training.SWARM_RECIPE
  trained = ("the swarm in {}".format(FLAGS.path) if FLAGS.path else
             "swarms meta-trained {} epochs of {} steps (unroll {}, meta lr "
             "{:g}, seed {}, options {})".format(
                 train_epochs(), recipe["num_steps"], recipe["unroll_length"],
                 recipe["learning_rate"], FLAGS.train_seed,
                 recipe_options()))
  return ("Test-mode Rastrigin, {} particles, {} steps, batch 128, starts "
          "N(0, 1.3), {} held-out instances (seed {}), the same for every "
          "optimizer; {}; Adam's learning rate tuned on {} other instances "
          "per rate, restarted from the swarm's {} starts; all scored by "
          "their best particle.".format(
              FLAGS.num_particles, FLAGS.num_steps, eval_epochs(), FLAGS.seed,
              trained, FLAGS.tune_epochs, FLAGS.num_particles))


def main(argv):
  del argv
  common.print_environment("swarm")
  start = timeit.default_timer()
  sections = [settings_text() + "\n"]
  dims_list = [int(d) for d in FLAGS.dims]
  for index, dims in enumerate(dims_list):
    problem = "square_cos_{}".format(dims)
    results = [learned_score("L2L", problem, recipe_options(), FLAGS.path)]
    results.extend(baseline_scores(problem))
    for result in results:
      print_score(dims, "main", result)
    sections.append("### {}-d\n\n{}\n{}\n".format(
        dims, common.markdown_table(HEADERS, rows(results)),
        "\n".join("- " + line for line in verdicts(dims, results))))
    if FLAGS.ablation and not FLAGS.path and index == 0:
      ablations = [results[0]]
      for name, change in ABLATIONS.items():
        ablations.append(learned_score(name, problem, recipe_options(
            **change)))
        print_score(dims, "ablation", ablations[-1])
      sections.append("### {}-d ablation (each re-trained alike)\n\n{}".format(
          dims, common.markdown_table(HEADERS, rows(ablations))))
  report = "\n".join(sections)
  common.write_report("swarm", report, FLAGS.output, start)


if __name__ == "__main__":
  app.run(main)
