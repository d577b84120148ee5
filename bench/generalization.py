"""Generalisation benchmark: one learned optimizer on tasks it never saw.

Meta-trains an optimizer on the task family (`l2l.tasks.family`; its
default net is `networks.AdaptiveStepLSTM` whose step sizes follow their
hypergradients and whose LSTM corrects Adam's direction, both fading after
the 100 steps it is meta-trained on) once per seed,
and keeps, of those and the net before meta-training, the one best on
validation tasks that are neither family draws nor held-out tasks
(`VALIDATION`); for comparison, it meta-trains DeepMind's LSTM (LogAndSign,
2x20) on `digits` alone for the same epochs, as in the L2L paper's MNIST
experiments. Then runs both on held-out tasks that no training
draw contains (`HELD_OUT`), for 1,000 steps, reading the loss after 100 (the
training horizon) and 1,000 steps. Baselines: SGD+momentum, RMSProp and
Adam, each (a) at the one learning rate that does best over the training
family (`evaluation.tune` on family draws at 100 steps) and (b) at each
task's own best learning rate at each horizon, picked on the evaluation
instances (an oracle). Prints `BENCH generalization` lines, two markdown
tables, the win counts, any divergence and any loss that climbs back.

    python bench/generalization.py            # 56 min wall on a shared
                                              # 2-core VM (32-43 alone at
                                              # --grid_stride=2)
    python bench/generalization.py --quick    # 4.8-6 min CPU, 3.4-4.3 min wall
    python bench/generalization.py --ablation --quick   # the trick ablation
    python bench/generalization.py --ablation --variant=family:net=cw
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
from l2l.core import meta_objective
from l2l.experiment import cli
from l2l.experiment import evaluation
from l2l.experiment import scores
from l2l.experiment import training
import util

FLAGS = flags.FLAGS
flags.DEFINE_boolean("quick", False, "Small budget (under 10 minutes): "
                     "overrides the budget flags with QUICK.")
flags.DEFINE_boolean("ablation", False, "Instead of the baseline comparison, "
                     "meta-train on each family variant of ABLATIONS and "
                     "run each on the held-out tasks.")
flags.DEFINE_multi_string("variant", None, "With --ablation, meta-train on "
                          "this problem instead of every ABLATIONS one "
                          "(repeat the flag for more), e.g. "
                          "family:scale_range=3.")
# The family's recipe (`training.FAMILY_RECIPE`, also README's command)
# gives the defaults of meta-training.
RECIPE = training.FAMILY_RECIPE
assert RECIPE["num_steps"] == common.TRAIN_STEPS
flags.DEFINE_integer("train_epochs", RECIPE["num_epochs"],
                     "Meta-training epochs, each run.")
# 3x the other benches' rate (bench/README.md, "Attempts").
flags.DEFINE_float("meta_learning_rate", RECIPE["learning_rate"],
                   "Meta-training's learning rate (both runs).")
# One held-out instance's final minibatch loss can differ from another's by
# more than a decade (Adam at 0.1 on the relu MLP: 0.003 to 0.1), so three
# instances decided wins by chance (bench/README.md, "Attempts: unroll
# length and instance count").
flags.DEFINE_integer("eval_epochs", 10, "Held-out instances per optimizer "
                     "and task.")
flags.DEFINE_integer("tune_epochs", 3, "Family draws per learning rate "
                     "when tuning the baselines' family learning rate.")
# Half decades, as evaluate.py --tune and the other benches: on whole
# decades the oracle (b) missed Adam at 0.0316 on the convnet, which is
# better there than the learned optimizer (bench/README.md).
flags.DEFINE_integer("grid_stride", 1, "Use every n-th learning rate of "
                     "evaluation.LEARNING_RATE_GRID (1: half decades, 2: "
                     "whole decades).")
# The family as it is, with its default net (bench/README.md, "Attempts").
flags.DEFINE_string("family", "family",
                    "The family problem name, e.g. family:scale_range=1.")
flags.DEFINE_integer("seed", 0, "Seed of the held-out instances.")
# Truncated unrolls bias meta-training toward short steps (Wu et al., 2018):
# with DeepMind's 20 the family's optimizer fell behind the net it started
# from (bench/README.md, "Attempts: unroll length and instance count").
flags.DEFINE_integer("unroll_length", RECIPE["unroll_length"],
                     "Steps per meta-training unroll on the family (the "
                     "digits run keeps DeepMind's {}); the default is the "
                     "whole {}-step horizon.".format(common.UNROLL_LENGTH,
                                                     common.TRAIN_STEPS))
# DeepMind's sum: the log objective picked a seed that lost the relu MLP
# (bench/README.md, "Attempts: which channel generalises").
flags.DEFINE_enum("meta_objective", meta_objective.DEFAULT,
                  list(meta_objective.OBJECTIVES),
                  "What the family's meta-loss sums over an unroll "
                  "(l2l.core.meta_objective; the digits run keeps DeepMind's "
                  "sum): the losses, or their logs.")
flags.DEFINE_list("train_seeds", ["1", "2", "3"], "Graph-level seeds of "
                  "meta-training on the family: one optimizer per seed; of "
                  "those and the net before meta-training, the one best on "
                  "the VALIDATION tasks is compared (the digits run and the "
                  "ablation use the first).")
flags.DEFINE_string("output", None, "Also write the markdown report here.")


# The held-out tasks (util.get_config names): none is ever drawn by the
# family's defaults (`family.HELD_OUT_MLPS`; no convnet; breast_cancer's test
# split; quadratics up to 32-d there).
HELD_OUT = ("digits-40-sigmoid", "digits-20-20-sigmoid", "digits-20-relu",
            "digits-conv", "breast_cancer-logistic", "quadratic-100")
HORIZONS = (common.TRAIN_STEPS, 10 * common.TRAIN_STEPS)
BASELINES = ("Momentum", "RMSProp", "Adam")
QUICK = {"train_epochs": 60, "eval_epochs": 1, "tune_epochs": 1,
         "grid_stride": 3, "train_seeds": ["1"]}
# The ablation's variants, each a change to the --family problem (its
# options after "family:"; a later key overrides an earlier one): the
# family as it is, then one trick off at a time, then a trick that is off
# by default turned on.
ABLATIONS = collections.OrderedDict([
    ("the --family problem", ""),
    ("DeepMind's LSTM in place of the adaptive net", "net=cw"),
    ("no fade past the 100-step horizon", "net=adaptive_nohorizon"),
    ("the LSTM moves the step sizes too (on)", "net=adaptive_lstm_steps"),
    ("no hypergradient step sizes", "net=adaptive_nohyper"),
    ("no parameter scaling", "scale_range=1"),
    ("no convex tasks (MLPs only)", "logistic_weight=0,quadratic_weight=0"),
    ("no architecture randomisation",
     "random_width=0,random_depth=0,random_activation=0"),
    ("digits table only", "datasets=digits"),
    ("no feature standardisation", "standardize=0"),
    ("heavy-tailed unroll lengths (on)", "unroll_tail=2"),
])
# How a run meta-trains: the steps of one unroll, and what its meta-loss
# sums over them (`l2l.core.meta_objective`).
Recipe = collections.namedtuple("Recipe", "unroll_length, meta_objective")
# Training problem of the comparison run next to the family, and its recipe:
# DeepMind's LSTM meta-trained as the L2L paper trained it on MNIST.
SINGLE_PROBLEM = "digits"
SINGLE_RECIPE = Recipe(common.UNROLL_LENGTH, meta_objective.DEFAULT)

# Meta-training keeps the best of this many evaluations, each on this many
# draws of the training problem's test split (never a held-out task): one
# meta-training seed can end on a bad meta-step (bench/README, "Attempts").
EVALUATIONS = RECIPE["num_epochs"] // RECIPE["evaluation_period"]
EVALUATION_EPOCHS = RECIPE["evaluation_epochs"]
# The meta-validation tasks that pick the optimizer compared: family tasks
# the family never draws and no held-out task resembles (MLPs 33-48 units
# wide on wine and iris, quadratics of 33-64 dimensions). The family's own
# draws rank the seeds backwards (bench/README.md, "Attempts").
VALIDATION = ("family:datasets=wine+iris,min_width=33,max_width=48,"
              "min_dims=33,max_dims=64")
VALIDATION_EPOCHS = 20
# The candidate that is the family's net before any meta-step.
UNTRAINED = "untrained"

# `finals`: each instance's final loss (best particle), for paired counts.
Score = collections.namedtuple("Score", "mean, log, diverged, finals")


def budget(name):
  """A budget flag's value, `QUICK`'s under --quick."""
  return QUICK[name] if FLAGS.quick else getattr(FLAGS, name)


def grid():
  """The learning rates the baselines are tuned and swept over."""
  return evaluation.LEARNING_RATE_GRID[::budget("grid_stride")]


def score(losses, steps):
  """The mean final loss after `steps` steps, its log10, and divergence.

  `losses` are an `Evaluation`'s `row_losses`; each start set (here one per
  instance: every held-out task's loss is a scalar) is a final.
  """
  losses = losses[:, :steps + 1]
  finals = scores.start_set_finals(losses)
  mean = scores.mean_final(losses)
  if not math.isfinite(mean):
    return Score(math.inf, math.inf, True, finals)
  # `scores.log_final` scores a loss of exactly 0 (a separable table fitted
  # to float precision) as -inf, the best score there is, not a NaN.
  return Score(mean, scores.log_final(mean), False, finals)


def seeds():
  """The meta-training seeds, as integers."""
  return [int(seed) for seed in budget("train_seeds")]


def family_recipe():
  """How the family's runs meta-train (--unroll_length, --meta_objective)."""
  return Recipe(FLAGS.unroll_length, FLAGS.meta_objective)


def meta_train(problem, directory, seed, recipe):
  """Meta-trains on `problem` into `directory`; reports flatness of epochs.

  Returns:
    The `training.TrainingResult`.
  """
  epochs = budget("train_epochs")
  seconds = []
  start = timeit.default_timer()
  result = training.train(
      problem, save_path=directory, num_epochs=epochs,
      log_period=max(1, epochs // 5),
      evaluation_period=max(1, epochs // EVALUATIONS),
      evaluation_epochs=EVALUATION_EPOCHS, num_steps=common.TRAIN_STEPS,
      unroll_length=recipe.unroll_length,
      learning_rate=FLAGS.meta_learning_rate, seed=seed,
      show_progress=False, meta_objective=recipe.meta_objective,
      epoch_callback=lambda epoch, s, cost: seconds.append(s))
  tenth = max(1, len(seconds) // 10)
  common.print_bench_line("generalization", collections.OrderedDict([
      ("stage", "meta_train"), ("problem", problem), ("seed", seed),
      ("train_epochs", epochs), ("unroll_length", recipe.unroll_length),
      ("meta_objective", recipe.meta_objective),
      ("seconds", timeit.default_timer() - start),
      # Epoch 1 holds TensorFlow's one-off warm-up; flatness is read after.
      ("first_tenth_epoch_seconds", np.mean(seconds[1:tenth + 1])
       if len(seconds) > 1 else math.nan),
      ("last_tenth_epoch_seconds", np.mean(seconds[-tenth:])
       if seconds else math.nan),
      ("train_mean_final", result.best_evaluation)]))
  return result


def run(optimizer, task, **kwargs):
  """{steps: Score} of one optimizer on a held-out task's instances."""
  result = evaluation.evaluate(
      optimizer, task, num_steps=max(HORIZONS),
      num_epochs=budget("eval_epochs"), seed=FLAGS.seed, show_progress=False,
      **kwargs)
  return {steps: score(result.row_losses, steps) for steps in HORIZONS}


def learned_scores(problem, directory, seed, recipe=None):
  """`(best evaluation, {task: {steps: Score}})` of one meta-training.

  The best evaluation is the mean final loss on draws of `problem`'s test
  split that meta-training saved its optimizer at (inf if it diverged).
  `recipe` defaults to the family's (`family_recipe`).
  """
  result = meta_train(problem, directory, seed, recipe or family_recipe())
  if not result.saved:
    logging.warning("Meta-training on %s diverged: it scores inf.", problem)
    never = Score(math.inf, math.inf, True,
                  np.full(budget("eval_epochs"), math.inf))
    return math.inf, {task: {steps: never for steps in HORIZONS}
                      for task in HELD_OUT}
  return result.best_evaluation, held_out_scores(directory)


def held_out_scores(directory):
  """{task: {steps: Score}} of the optimizer saved in `directory`."""
  return {task: run("L2L", task, path=directory) for task in HELD_OUT}


def save_untrained(problem, directory):
  """Saves `problem`'s net as it is before meta-training into `directory`.

  One epoch at meta learning rate 0: Adam's meta-step is then 0, so the
  saved weights are the initial ones, in the directory layout (`.l2l`
  files and manifest) every other candidate has.
  """
  training.train(problem, save_path=directory, num_epochs=1,
                 evaluation_period=1, evaluation_epochs=1,
                 num_steps=common.TRAIN_STEPS,
                 unroll_length=FLAGS.unroll_length, learning_rate=0.0,
                 seed=seeds()[0], show_progress=False)


def validation_loss(directory):
  """Mean final loss of a saved optimizer on the `VALIDATION` draws."""
  result = evaluation.evaluate(
      "L2L", VALIDATION, num_steps=common.TRAIN_STEPS,
      num_epochs=VALIDATION_EPOCHS, seed=FLAGS.seed, path=directory,
      show_progress=False)
  return evaluation.final_error(result)


def picked_family_optimizer(root):
  """Meta-trains one optimizer per seed; picks one on validation tasks.

  The candidates are the family's net before meta-training and each seed's
  meta-trained optimizer (its best on the family's own draws); the one with
  the lowest mean final loss on the `VALIDATION` tasks, which are neither
  family draws nor held-out tasks, is the one compared.

  Returns:
    `(picked, {candidate: (validation loss, family evaluation, scores)})`,
    candidates being `UNTRAINED` and the seeds.
  """
  candidates = collections.OrderedDict()
  directory = os.path.join(root, UNTRAINED)
  save_untrained(FLAGS.family, directory)
  candidates[UNTRAINED] = (validation_loss(directory), math.nan,
                           held_out_scores(directory))
  for seed in seeds():
    directory = os.path.join(root, "family-{}".format(seed))
    family_loss, task_scores = learned_scores(FLAGS.family, directory, seed)
    candidates[seed] = (validation_loss(directory) if math.isfinite(
        family_loss) else math.inf, family_loss, task_scores)
  picked = min(candidates, key=lambda name: candidates[name][0])
  fields = collections.OrderedDict([("stage", "family_pick"),
                                    ("picked", picked)])
  for name, (validation, family_loss, _) in candidates.items():
    fields["{}_validation".format(name)] = validation
    fields["{}_family_evaluation".format(name)] = family_loss
  common.print_bench_line("generalization", fields)
  return picked, candidates


def candidates_report(picked, candidates):
  """A table of every candidate's held-out scores at the training horizon."""
  steps = HORIZONS[0]
  rows = [["{}{}".format("before meta-training" if name == UNTRAINED
                         else "seed {}".format(name),
                         " (picked)" if name == picked else ""),
           common.format_value(validation),
           "-" if name == UNTRAINED else common.format_value(family_loss)] +
          [cell(task_scores[task][steps]) for task in HELD_OUT]
          for name, (validation, family_loss, task_scores)
          in candidates.items()]
  headers = (["candidate", "validation", "family evaluation"] +
             ["{} @{}".format(task, steps) for task in HELD_OUT])
  return ("#### Each candidate\n\nThe optimizer compared is the candidate "
          "with the lowest mean final loss on {} draws of the validation "
          "tasks `{}` ({} steps). The family evaluation is each seed's "
          "best mean final loss on family draws (test split, {} epochs per "
          "evaluation, the best of {} evaluations).\n\n{}".format(
              VALIDATION_EPOCHS, VALIDATION, common.TRAIN_STEPS,
              EVALUATION_EPOCHS, EVALUATIONS,
              common.markdown_table(headers, rows)))


def family_learning_rates():
  """Each baseline's one learning rate, best over family draws at 100 steps."""
  rates = {}
  for name in BASELINES:
    rates[name], tuning = evaluation.tune(
        name, FLAGS.family, seed=FLAGS.seed, grid=grid(), mode="train",
        num_steps=common.TRAIN_STEPS, num_epochs=budget("tune_epochs"),
        show_progress=False)
    common.print_bench_line("generalization", collections.OrderedDict([
        ("stage", "family_tuning"), ("optimizer", name),
        ("lr", rates[name]), ("family_mean_final", tuning[rates[name]])]))
  return rates


def baseline_sweep():
  """{(baseline, task): {lr: {steps: Score}}} over the grid."""
  sweep = {}
  for name in BASELINES:
    for task in HELD_OUT:
      sweep[name, task] = {lr: run(name, task, learning_rate=lr)
                           for lr in grid()}
  return sweep


def oracle(by_rate, steps):
  """The learning rate with the lowest mean at `steps`, and its Score."""
  best = min(by_rate, key=lambda lr: by_rate[lr][steps].mean)
  return best, by_rate[best][steps]


def cell(score_value):
  """A score's table cell: its log10, or `diverged`."""
  return "diverged" if score_value.diverged else common.format_value(
      score_value.log)


def instances_beating(ours, others):
  """On how many instances `ours` ends below every score of `others`.

  The instances are paired: every optimizer starts each instance from the
  same task and initial values. A NaN counts as the worst loss there is.
  """
  def finals(score_value):
    return np.where(np.isnan(score_value.finals), np.inf, score_value.finals)
  best_other = np.min([finals(other) for other in others], axis=0)
  return int(np.sum(finals(ours) < best_other))


def comparison_report(learned, single, rates, sweep):
  """Prints BENCH lines; returns the markdown tables and verdicts."""
  sections = []
  for steps in HORIZONS:
    rows = []
    wins_a = wins_b = 0
    diverged = []
    for task in HELD_OUT:
      ours = learned[task][steps]
      fixed = {n: sweep[n, task][rates[n]][steps] for n in BASELINES}
      best = {n: oracle(sweep[n, task], steps) for n in BASELINES}
      beats_a = all(ours.mean < s.mean for s in fixed.values())
      beats_b = all(ours.mean < s.mean for _, s in best.values())
      wins_a += beats_a
      wins_b += beats_b
      instances_a = instances_beating(ours, fixed.values())
      instances_b = instances_beating(ours, [s for _, s in best.values()])
      if ours.diverged:
        diverged.append("L2L-family on " + task)
      if single[task][steps].diverged:
        diverged.append("L2L-{} on {}".format(SINGLE_PROBLEM, task))
      fields = collections.OrderedDict([
          ("task", task), ("steps", steps),
          ("l2l_family", ours.log), ("l2l_" + SINGLE_PROBLEM,
                                     single[task][steps].log)])
      for name in BASELINES:
        fields[name + "_family_lr"] = fixed[name].log
        fields[name + "_oracle_lr"] = best[name][0]
        fields[name + "_oracle"] = best[name][1].log
      fields["beats_all_a"] = beats_a
      fields["beats_all_b"] = beats_b
      fields["instances_beating_all_a"] = instances_a
      fields["instances_beating_all_b"] = instances_b
      fields["instances"] = len(ours.finals)
      common.print_bench_line("generalization", fields)
      rows.append([task, cell(ours), cell(single[task][steps])] +
                  [cell(fixed[n]) for n in BASELINES] +
                  ["{} ({})".format(cell(best[n][1]),
                                    common.format_value(best[n][0]))
                   for n in BASELINES] +
                  ["yes" if beats_a else "**no**",
                   "yes" if beats_b else "**no**",
                   "{} of {}".format(instances_a, len(ours.finals))])
    headers = (["task", "L2L family", "L2L " + SINGLE_PROBLEM] +
               ["{} (a) lr {}".format(n, common.format_value(rates[n]))
                for n in BASELINES] +
               ["{} (b) (lr)".format(n) for n in BASELINES] +
               ["beats all (a)", "beats all (b)",
                "instances below all (a)"])
    sections.append(
        "#### {} steps\n\n{}\nL2L-family beats every (a) baseline on {} of {} "
        "tasks and every (b) oracle on {} of {}. Diverged: {}.{} The "
        "last column counts the instances on which L2L-family's final "
        "loss is below every (a) baseline's on the same instance.\n".format(
            steps, common.markdown_table(headers, rows), wins_a,
            len(HELD_OUT), wins_b, len(HELD_OUT),
            ", ".join(diverged) or "none", rising_text(learned, steps)))
    common.print_bench_line("generalization", collections.OrderedDict([
        ("stage", "wins"), ("steps", steps), ("wins_a", wins_a),
        ("wins_b", wins_b), ("tasks", len(HELD_OUT)),
        ("l2l_diverged", len(diverged))]))
  return "\n".join(sections)


def rising_text(learned, steps):
  """Names the tasks whose loss is higher at `steps` than at the horizon.

  A loss that climbs back is a failure past the training horizon even when
  it stays finite, so the report says so next to the divergences.
  """
  if steps == HORIZONS[0]:
    return ""
  rising = [task for task in HELD_OUT
            if learned[task][steps].mean > learned[task][HORIZONS[0]].mean]
  common.print_bench_line("generalization", collections.OrderedDict([
      ("stage", "rising"), ("steps", steps), ("tasks", len(rising))]))
  return " Loss higher than after {} steps: {}.".format(
      HORIZONS[0], ", ".join(rising) or "none")


def settings_text():
  """The settings of the report, as sentences."""
  trained_on = ("each variant" if FLAGS.ablation else
                "`{}` and on `{}`".format(FLAGS.family, SINGLE_PROBLEM))
  # The ablation and the digits run use the first seed only.
  used_seeds = seeds()[:1] if FLAGS.ablation else seeds()
  recipe_text = "unroll {}, {} meta-objective".format(*family_recipe())
  if not FLAGS.ablation:
    recipe_text += " ({}, {} on `{}`)".format(*SINGLE_RECIPE, SINGLE_PROBLEM)
  text = ("Meta-training: {} epochs of {} steps, {}, meta lr {:g}, "
          "seed{} {}, on {}. Held-out: {} instance{} each (seed {}). ".format(
              budget("train_epochs"), common.TRAIN_STEPS,
              recipe_text, FLAGS.meta_learning_rate,
              "s" if len(used_seeds) > 1 else "",
              ", ".join(str(seed) for seed in used_seeds), trained_on,
              budget("eval_epochs"), "s" if budget("eval_epochs") > 1 else "",
              FLAGS.seed))
  if not FLAGS.ablation:
    text += (
        "(a): learning rate tuned on {} family draws per rate at {} steps; "
        "(b): best rate per task and horizon on the evaluation instances. "
        "Grid: {}. ".format(budget("tune_epochs"), common.TRAIN_STEPS,
                            ", ".join(common.format_value(lr)
                                      for lr in grid())))
  return text + "Cells: log10 mean final loss, lower is better."


def comparison():
  """Meta-trains both optimizers, runs everything; the markdown report."""
  with tempfile.TemporaryDirectory(prefix="l2l-generalization-") as root:
    picked, candidates = picked_family_optimizer(root)
    _, single = learned_scores(SINGLE_PROBLEM, os.path.join(root, "single"),
                               seeds()[0], SINGLE_RECIPE)
  start = timeit.default_timer()
  rates = family_learning_rates()
  sweep = baseline_sweep()
  common.print_bench_line("generalization", collections.OrderedDict([
      ("stage", "baselines"), ("seconds", timeit.default_timer() - start)]))
  return "\n\n".join([
      settings_text(),
      comparison_report(candidates[picked][2], single, rates, sweep),
      candidates_report(picked, candidates)])


def variant_problem(change):
  """The --family problem with an ABLATIONS change applied."""
  if not change:
    return FLAGS.family
  return FLAGS.family + ("," if ":" in FLAGS.family else ":") + change


def ablation():
  """Meta-trains each variant of ABLATIONS; a table of held-out scores.

  The first row is the --family problem's net before meta-training, so the
  table also says what meta-training itself moved.
  """
  labels = collections.OrderedDict(
      (variant_problem(change), label) for label, change in ABLATIONS.items())
  with tempfile.TemporaryDirectory(prefix="l2l-ablation-") as directory:
    save_untrained(FLAGS.family, directory)
    rows = [ablation_row("the --family net before meta-training",
                         FLAGS.family, held_out_scores(directory))]
  for problem in FLAGS.variant or labels:
    with tempfile.TemporaryDirectory(prefix="l2l-ablation-") as directory:
      _, task_scores = learned_scores(problem, directory, seeds()[0])
    rows.append(ablation_row(labels.get(problem, "(not in ABLATIONS)"),
                             problem, task_scores))
  headers = ["variant", "problem"] + ["{} @{}".format(task, steps)
                                      for steps in HORIZONS
                                      for task in HELD_OUT]
  return (settings_text() + "\n\n" +
          common.markdown_table(headers, rows))


def ablation_row(label, problem, task_scores):
  """Prints one variant's BENCH lines; its row of the ablation table."""
  for task in HELD_OUT:
    for steps in HORIZONS:
      common.print_bench_line("generalization", collections.OrderedDict([
          ("stage", "ablation"), ("variant", label), ("problem", problem),
          ("task", task), ("steps", steps),
          ("log_mean_final_error", task_scores[task][steps].log)]))
  return [label, "`{}`".format(problem)] + [
      cell(task_scores[task][steps])
      for steps in HORIZONS for task in HELD_OUT]


def main(argv):
  del argv
  common.check_integers("train_seeds", 0)
  cli.check_at_least(1, "train_epochs", "eval_epochs", "tune_epochs",
                     "grid_stride", "unroll_length")
  cli.check_positive_number("meta_learning_rate")
  if FLAGS.family.partition(":")[0] != "family":
    raise app.UsageError("--family={}: expected the family problem, "
                         "`family` or `family:<options>`.".format(
                             FLAGS.family))
  if not FLAGS.train_seeds:
    raise app.UsageError("--train_seeds is empty: expected integers such as "
                         "1,2,3.")
  if common.TRAIN_STEPS % FLAGS.unroll_length:
    raise app.UsageError("--unroll_length={}: expected a positive divisor "
                         "of the {} training steps, such as 20 or {}.".format(
                             FLAGS.unroll_length, common.TRAIN_STEPS,
                             common.TRAIN_STEPS))
  checked = [("--family", FLAGS.family)]
  checked += [("--variant", problem) for problem in FLAGS.variant or ()]
  for flag, problem in checked:
    try:
      util.check_problem_name(problem)
    except ValueError as error:
      raise app.UsageError("{}={}: {}".format(flag, problem, error))
  common.print_environment("generalization")
  start = timeit.default_timer()
  report = ablation() if FLAGS.ablation else comparison()
  common.write_report("generalization", report, FLAGS.output, start)


if __name__ == "__main__":
  common.run(main)
