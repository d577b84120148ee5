"""Swarm benchmark: learned swarms against strong baselines at equal budget.

Every method gets the same number of function+gradient evaluations per start
set (`--budget`, 1000: the learned swarm's 4 particles x 250 steps; a
gradient costs one evaluation together with its value, a value alone one
too) and is scored per start set (one batch row of a test-function problem:
its own instance and starts) by the lowest loss among the points it
evaluated; the figure is the mean over start sets, ± its standard error.
The rows: Rastrigin as the learned swarms were trained on it (starts
N(0, 1.3), optimum at the origin), and held-out rows: Rastrigin with its
optimum shifted per start set by U(-2, 2) per coordinate, Rastrigin from
starts N(0, 3), and Ackley, Griewank, Levy, Styblinski-Tang and Rosenbrock,
each shifted alike (`l2l/tasks/test_functions.py`). The methods:

- learned swarms (`--path`, `--hop_path`, `--refine_path`, or meta-trained here on 10-d
  Rastrigin only): LOIS's swarm with the learned attraction gate
  (`training.SWARM_RECIPE`), the basin-hopping swarm (`HOP_RECIPE`), and
  the refining swarm: the basin-hopping recipe trained on scaled Rastrigin
  (`REFINE_PROBLEM`), its start sets' record holders refining the record
  by shrinking steps (`REFINE_OPTIONS`);
- PSO with 4 and with 20 particles, its inertia and pulls tuned;
- Adam, best of K restarts of budget / K steps, K = 4, 10, 40, 100, its
  learning rate tuned per K; Adam with 4 restarts that all jump to their
  start set's best point partway (the fraction tuned too);
- multi-start L-BFGS, basinhopping, differential evolution (scipy) and
  CMA-ES with IPOP restarts (the `cma` package), their step sizes or
  population tuned;

every setting tuned per row and dimension on other instances and starts
(`evaluation.tuning_seed`). Prints one `BENCH swarm` line per figure and
markdown tables.

    pip install -e ".[bench]"           # scipy and cma
    python bench/swarm.py               # 10-d and 20-d
    python bench/swarm.py --quick       # a brief version, under 10 min
    python bench/swarm.py --path=./sc10 --hop_path=./hop10 --refine_path=./ref10
"""

import os
import sys

# Before numpy loads: scipy's tiny L-BFGS-B iterations slow ~20x with
# OpenBLAS threads on a busy machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import itertools
import json
import math
import tempfile
import time
import timeit

from absl import app
from absl import flags
from absl import logging
import numpy as np

import common  # First: it quiets TensorFlow before anything imports it.
try:
  import equal_budget
except ImportError as missing:
  # scipy and cma, the bench extras; one line, not a traceback.
  sys.exit("Error: bench/swarm.py needs the bench extras ({}): pip install "
           "-e '.[bench]'".format(missing))
from l2l import files
from l2l.experiment import cli
from l2l.experiment import evaluation
from l2l.experiment import scores
from l2l.experiment import training
import util

FLAGS = flags.FLAGS
flags.DEFINE_list("dims", ["10", "20"], "Dimensions to run.")
flags.DEFINE_boolean("quick", False, "10-d only, one instance, brief "
                     "meta-training and small tuning grids: aimed at under "
                     "10 minutes on 2 idle cores.")
flags.DEFINE_integer("budget", 1000, "Function+gradient evaluations per "
                     "start set, for every method.")
flags.DEFINE_string("path", None, "The LOIS-recipe swarm to score (trained "
                    "here on 10-d Rastrigin when not given; 'none' leaves "
                    "it out).")
flags.DEFINE_string("hop_path", None, "The basin-hopping swarm to score "
                    "(trained here on 10-d Rastrigin when not given; "
                    "'none' leaves it out).")
flags.DEFINE_string("refine_path", None, "The refining swarm to score, "
                    "evaluated with REFINE_OPTIONS (trained here on scaled "
                    "10-d Rastrigin, REFINE_PROBLEM, when not given; 'none' "
                    "leaves it out).")
flags.DEFINE_integer("train_epochs", None, "Meta-training epochs per swarm; "
                     "defaults to each recipe's.")
flags.DEFINE_integer("quick_train_epochs", 5, "Meta-training epochs per "
                     "swarm with --quick.")
flags.DEFINE_integer("eval_epochs", 1, "Held-out instances of 128 start "
                     "sets each, the same for every method.")
flags.DEFINE_integer("tune_start_sets", 16, "Start sets each tuning run of "
                     "a scipy or CMA-ES baseline gets (Adam and PSO tune on "
                     "one instance of 128).")
flags.DEFINE_integer("seed", 0, "Seed of the held-out instances; tuning "
                     "uses other instances (evaluation.tuning_seed).")
flags.DEFINE_integer("train_seed", 1, "Graph-level seed of meta-training.")
flags.DEFINE_string("rows", None, "Comma-separated row labels to run "
                    "(default: all).")
flags.DEFINE_string("output", None, "Also write the markdown tables here.")
METHODS = ("learned", "pso", "numpy")
flags.DEFINE_list("methods", list(METHODS), "Which methods to "
                  "run: learned (the learned swarms), pso, numpy (Adam, "
                  "scipy, CMA-ES); with --scores_file, a long run splits "
                  "into processes whose files --tables_from joins.")
flags.DEFINE_string("scores_file", None, "Also write every start set's "
                    "score to this JSON file, after each row.")
flags.DEFINE_list("tables_from", None, "Print the tables of these "
                  "--scores_file files, joined, instead of running.")
flags.DEFINE_list("validate", None, "Validation mode: score these learned "
                  "swarms, given as label=path=particles[=option:value...], "
                  "on the validation rows (VALIDATION_ROWS, seed "
                  "VALIDATION_SEED) next to Adam's best of 4 and 40 "
                  "restarts, instead of the benchmark.")

# The problems, by the labels of the table; {d} is the dimension. Every
# held-out function's optimum is moved per start set by U(-2, 2) per
# coordinate from its usual place.
ROWS = collections.OrderedDict([
    ("rastrigin", "rastrigin:num_dims={d}"),
    ("rastrigin_shifted", "rastrigin:num_dims={d},random_shift=2"),
    ("rastrigin_wide", "rastrigin:num_dims={d},init_stddev=3"),
    ("ackley", "ackley:num_dims={d},random_shift=2"),
    ("griewank", "griewank:num_dims={d},random_shift=2"),
    ("levy", "levy:num_dims={d},random_shift=2"),
    ("styblinski_tang", "styblinski_tang:num_dims={d},random_shift=2"),
    ("rosenbrock", "rosenbrock:num_dims={d},random_shift=2"),
])
TRAINING_ROWS = ("rastrigin",)
# The validation rows every learned-swarm setting was picked on (with
# --validate): functions that are neither trained on nor held out, and
# Rastrigin's training distribution on other instances (VALIDATION_SEED).
VALIDATION_ROWS = collections.OrderedDict([
    ("rastrigin", "rastrigin:num_dims={d}"),
    ("salomon", "salomon:num_dims={d},random_shift=2"),
    ("alpine", "alpine:num_dims={d},random_shift=2"),
])
VALIDATION_SEED = 7
# The problem the learned swarms meta-train on: LOIS's random family around
# 10-d Rastrigin, optimum at the origin, starts N(0, 1.3).
TRAINING_PROBLEM = "square_cos_10"
# The basin-hopping swarm: LOIS's recipe with the "hop" gate (see
# docs/design.md, "Basin hopping"), its settings picked on the validation
# functions of bench/README.md's swarm section.
HOP_RECIPE = dict(training.SWARM_RECIPE, swarm_options=dict(
    training.SWARM_RECIPE["swarm_options"], attraction_gain="hop",
    hop_noise=0.7))
HOP_PARTICLES = 4
# The refining swarm: the basin-hopping recipe meta-trained on Rastrigin
# with each coordinate scaled by a log-uniform factor in [1/4, 4] (basins
# 1/4 to 4 wide), and evaluated with the "bold driver" step size, under
# which each start set's record holder refines the record rather than
# hopping (`SwarmConfig.step_shrink`). Trained without the step size:
# trained with it, the swarm scored far worse on validation. The problem
# and 0.85 were picked on the validation rows (bench/README.md).
REFINE_PROBLEM = "rastrigin:num_dims=10,scale_range=4"
REFINE_OPTIONS = {"step_shrink": 0.85}

# Tuning grids (the full bench; --quick keeps the marked subsets).
PSO_GRID = [(0.7298, 1.49618), (0.5, 1.49618), (0.5, 2.0), (0.3, 2.0),
            (0.9, 0.75)]
QUICK_PSO_GRID = PSO_GRID[:3]
ADAM_RESTARTS = (4, 10, 40, 100)
JUMP_FRACTIONS = (0.25, 0.5, 0.75)
BASIN_STEPS = (0.25, 0.5, 1.0, 2.0)
DE_POPSIZES = (5, 15)
CMA_SIGMAS = (0.5, 1.0, 2.0)

# The learned swarms' labels begin with this.
LEARNED_PREFIX = "L2L swarm"

Score = collections.namedtuple("Score", "method, setting, bests")
Score.__doc__ = """One method on one row.

method: its label.
setting: the tuned setting, as text ("-" for none).
bests: [start sets] each start set's best loss within the budget.
"""


def eval_epochs():
  return 1 if FLAGS.quick else FLAGS.eval_epochs


def budget_bests(row_losses, steps):
  """Each start set's best loss among the points evaluated in `steps` steps.

  Args:
    row_losses: an `Evaluation`'s [epochs, steps + 1, particles, rows].
    steps: the steps whose starting points were evaluated (budget /
      particles): the final read after the last step is not counted.

  A point whose loss is NaN makes its start set's figure NaN (diverged:
  stricter than the numpy baselines, which skip such points); one whose
  loss overflowed to infinity is the worst point evaluated, as it is for
  them. (The final-loss rule of `scores`, which the commands use, is
  stricter still: an infinite final loss counts as diverged.)

  Returns:
    float64 [epochs * rows].
  """
  evaluated = scores.as_row_losses(row_losses)[:, :steps]
  return np.min(evaluated, axis=(1, 2)).reshape(-1)


def mean_of(bests):
  """The figure: the mean over start sets (inf if any diverged)."""
  value = float(np.mean(bests))
  return math.inf if math.isnan(value) else value


def standard_error(bests):
  with np.errstate(invalid="ignore"):
    return float(np.std(bests) / math.sqrt(len(bests)))


def run_tf(optimizer, problem, particles, seed, epochs, **kwargs):
  """One TensorFlow method (learned swarm or PSO): bests per start set."""
  steps = FLAGS.budget // particles
  options = dict(kwargs.pop("swarm_options", {}), num_particles=particles)
  result = evaluation.evaluate(
      optimizer, problem, num_steps=steps, num_epochs=epochs, seed=seed,
      mode="test", record_positions=0, show_progress=False,
      swarm_options=options, **kwargs)
  return budget_bests(result.row_losses, steps)


def train_swarm(directory, recipe, particles, problem=TRAINING_PROBLEM):
  """Meta-trains a swarm on `problem`; True if it saved."""
  epochs = (FLAGS.quick_train_epochs if FLAGS.quick else
            FLAGS.train_epochs or recipe["num_epochs"])
  start = timeit.default_timer()
  cpu = time.process_time()
  result = training.train(
      problem, save_path=directory, num_epochs=epochs,
      log_period=max(1, epochs // 5), evaluation_period=epochs,
      evaluation_epochs=5, num_steps=recipe["num_steps"],
      unroll_length=recipe["unroll_length"],
      learning_rate=recipe["learning_rate"], seed=FLAGS.train_seed,
      num_particles=particles, show_progress=False,
      swarm_options=recipe["swarm_options"])
  common.print_bench_line("swarm", collections.OrderedDict([
      ("problem", problem), ("stage", "meta_train"),
      ("options", ",".join("{}={}".format(k, v) for k, v in sorted(
          recipe["swarm_options"].items()))),
      ("train_epochs", epochs), ("seconds", timeit.default_timer() - start),
      ("cpu_seconds", time.process_time() - cpu),
      ("train_mean_final", result.best_evaluation)]))
  return result.saved and math.isfinite(result.best_evaluation)


def learned_scores(problem, swarms):
  return [Score(label, "{} particles".format(particles),
                run_tf("L2L", problem, particles, FLAGS.seed, eval_epochs(),
                       path=path, swarm_options=options))
          for label, path, particles, options in swarms]


def tuned(label, candidates, evaluate_on_tuning, evaluate_held_out,
          describe):
  """Tunes a method on tuning instances, then scores it held out.

  Args:
    label: the method's label.
    candidates: the settings to try.
    evaluate_on_tuning: setting -> bests on the tuning instances.
    evaluate_held_out: setting -> bests on the held-out instances.
    describe: setting -> text.

  Returns:
    A `Score`.
  """
  if len(candidates) == 1:
    best = candidates[0]
  else:
    tried = {setting: mean_of(evaluate_on_tuning(setting))
             for setting in candidates}
    best = min(tried, key=tried.get)
    logging.info("%s: tuned %s (%s)", label, describe(best), ", ".join(
        "{}: {:.4g}".format(describe(s), v) for s, v in tried.items()))
    if best in (candidates[0], candidates[-1]) and len(candidates) > 2:
      logging.info("%s: the tuned setting %s is at the edge of its grid.",
                   label, describe(best))
  return Score(label, describe(best), evaluate_held_out(best))


def pso_scores(problem):
  grid = QUICK_PSO_GRID if FLAGS.quick else PSO_GRID
  results = []
  for particles in (4, 20):
    def run(setting, seed, epochs, particles=particles):
      inertia, pull = setting
      return run_tf("PSO", problem, particles, seed, epochs, swarm_options={
          "inertia": inertia, "cognitive": pull, "social": pull})
    results.append(tuned(
        "PSO, {} particles".format(particles), grid,
        lambda s, run=run: run(s, evaluation.tuning_seed(FLAGS.seed), 1),
        lambda s, run=run: run(s, FLAGS.seed, eval_epochs()),
        lambda s: "w={:g}, c={:g}".format(*s)))
  return results


def numpy_scores(problem):
  """The numpy baselines on the held-out instances of `problem`."""
  held_out, first_starts = equal_budget.read_instances(
      problem, FLAGS.seed, eval_epochs())
  tuning_all, _ = equal_budget.read_instances(
      problem, evaluation.tuning_seed(FLAGS.seed), 1)
  tuning_small = tuning_all.subset(FLAGS.tune_start_sets)
  budget = FLAGS.budget
  rates = (evaluation.LEARNING_RATE_GRID[2:9] if FLAGS.quick
           else evaluation.LEARNING_RATE_GRID)
  results = []

  def generator(*key):
    return np.random.default_rng([FLAGS.seed, *key])

  for restarts in ((4, 40) if FLAGS.quick else ADAM_RESTARTS):
    results.append(tuned(
        "Adam, best of {} restarts".format(restarts), rates,
        lambda lr, k=restarts: equal_budget.adam_restarts(
            tuning_all, generator(1, k), budget, k, lr),
        lambda lr, k=restarts: equal_budget.adam_restarts(
            held_out, generator(2, k), budget, k, lr),
        lambda lr: "lr={:.3g}".format(lr)))
  jump_grid = list(itertools.product(rates, JUMP_FRACTIONS))
  results.append(tuned(
      "Adam, 4 restarts, jump to best", jump_grid,
      lambda s: equal_budget.adam_restarts(tuning_all, generator(3), budget,
                                           4, s[0], s[1]),
      lambda s: equal_budget.adam_restarts(held_out, generator(4), budget, 4,
                                           s[0], s[1]),
      lambda s: "lr={:.3g}, jump at {:g}".format(*s)))
  results.append(Score("L-BFGS, restarts", "-", equal_budget.lbfgs_restarts(
      held_out, generator(5), budget)))
  for label, method, grid, describe, key in (
      ("basinhopping", equal_budget.basin_hopping,
       BASIN_STEPS[1:3] if FLAGS.quick else BASIN_STEPS,
       "stepsize={:g}".format, 6),
      ("differential evolution", equal_budget.differential_evolution,
       DE_POPSIZES[:1] if FLAGS.quick else DE_POPSIZES,
       "popsize={:g}".format, 8),
      ("CMA-ES, IPOP restarts", equal_budget.cma_es,
       CMA_SIGMAS[1:2] if FLAGS.quick else CMA_SIGMAS,
       "sigma0={:g}*init".format, 10)):
    results.append(tuned(
        label, list(grid),
        lambda s, m=method, k=key: m(tuning_small, generator(k), budget, s),
        lambda s, m=method, k=key: m(held_out, generator(k + 1), budget, s),
        describe))
  return results, held_out, first_starts


def check_instances(problem, held_out, first_starts):
  """Checks that numpy's instances are the ones TensorFlow's methods see.

  Adam from those starts, 0 steps in: TensorFlow's loss at the first
  particle's start must be numpy's at the same point.
  """
  result = evaluation.evaluate("Adam", problem, num_steps=0,
                               num_epochs=eval_epochs(), seed=FLAGS.seed,
                               mode="test", show_progress=False)
  tf_losses = result.row_losses[:, 0, 0, :].reshape(-1)
  np_losses = held_out.value(first_starts)
  if not np.allclose(tf_losses, np_losses, rtol=1e-4, atol=1e-4):
    raise RuntimeError("{}: numpy's instances differ from TensorFlow's "
                       "(max difference {:.3g}).".format(
                           problem, np.max(np.abs(tf_losses - np_losses))))


def row_scores(problem, swarms):
  start = timeit.default_timer()
  results = []
  if "learned" in FLAGS.methods:
    results.extend(learned_scores(problem, swarms))
  if "pso" in FLAGS.methods:
    results.extend(pso_scores(problem))
  if "numpy" in FLAGS.methods:
    numpy_results, held_out, first_starts = numpy_scores(problem)
    check_instances(problem, held_out, first_starts)
    results.extend(numpy_results)
  logging.info("%s: %.0f s", problem, timeit.default_timer() - start)
  return results


def write_scores(swarms, scored):
  """Writes `scored` {(dims, row): [Score]} to --scores_file as JSON.

  With the settings text, the file keeps the descriptions of the learned
  swarms it scored, so that joined files name every swarm once.
  """
  records = [{"dims": dims, "row": row, "method": r.method,
              "setting": r.setting, "bests": [float(b) for b in r.bests]}
             for (dims, row), results in scored.items() for r in results]
  files.write_atomic(FLAGS.scores_file, json.dumps(
      {"settings": settings_text(swarms), "swarms": swarm_descriptions(swarms),
       "scores": records}).encode("utf-8"))


def joined_settings(contents):
  """One settings text for scores files joined by --tables_from.

  Runs split by method write the same sentence but for their learned
  swarms: each file's list of swarms is replaced by all the files' swarms,
  and equal texts are kept once. Files written before the swarms were
  kept in them keep their own text.
  """
  everyone = list(dict.fromkeys(
      description for content in contents
      for description in content.get("swarms", [])))
  texts = []
  for content in contents:
    text = content["settings"]
    if "swarms" in content:
      text = text.replace(swarm_list_text(content["swarms"]),
                          swarm_list_text(everyone), 1)
    texts.append(text)
  return " ".join(dict.fromkeys(texts))


def read_scores(paths):
  """Joins --scores_file files: (settings text, {dims: {row: [Score]}})."""
  contents = []
  joined = collections.defaultdict(lambda: collections.defaultdict(list))
  for path in paths:
    with open(path) as stream:
      content = json.load(stream)
    contents.append(content)
    for record in content["scores"]:
      joined[record["dims"]][record["row"]].append(Score(
          record["method"], record["setting"], np.asarray(record["bests"])))
  # The table's columns in ROWS' order, its methods baselines first.
  ordered = {}
  for dims, by_row in joined.items():
    ordered[dims] = collections.OrderedDict(
        (row, sorted(by_row[row], key=lambda r: r.method.startswith(
            LEARNED_PREFIX))) for row in ROWS if row in by_row)
  return joined_settings(contents), ordered


def report(dims, by_row, learned_labels):
  """The markdown of one dimension: scores, verdicts, tuned settings."""
  rows = list(by_row)
  return "### {}-d\n\n{}\n{}\nTuned settings:\n\n{}".format(
      dims, table(rows, by_row), "\n".join(
          "- " + line for line in verdicts(dims, rows, by_row,
                                           learned_labels)),
      settings_table(rows, by_row))


def print_scores(dims, row, results):
  for result in results:
    common.print_bench_line("swarm", collections.OrderedDict([
        ("dims", dims), ("row", row), ("method", result.method.replace(
            " ", "_").replace(",", "")),
        ("setting", result.setting.replace(" ", "")),
        ("budget", FLAGS.budget), ("start_sets", len(result.bests)),
        ("mean_best", mean_of(result.bests)),
        ("standard_error", standard_error(result.bests)),
        ("std", float(np.std(result.bests))),
        ("median_best", float(np.median(result.bests)))]))


def methods_of(rows, by_row):
  """Every method scored on any of `rows`, in the order first met."""
  return list(dict.fromkeys(r.method for row in rows for r in by_row[row]))


def cell_of(by_row, row, method):
  """The `Score` of `method` on `row`, or None where it was not run."""
  return next((r for r in by_row[row] if r.method == method), None)


def table(rows, by_row):
  """Methods down, rows across: mean ± standard error, the best bold."""
  cells = []
  for method in methods_of(rows, by_row):
    line = [method]
    for row in rows:
      result = cell_of(by_row, row, method)
      if result is None:
        line.append("-")
        continue
      means = [mean_of(r.bests) for r in by_row[row]]
      text = "{} ± {}".format(common.format_value(mean_of(result.bests)),
                              common.format_value(standard_error(
                                  result.bests)))
      if mean_of(result.bests) <= min(means):
        text = "**{}**".format(text)
      line.append(text)
    cells.append(line)
  return common.markdown_table(["method"] + list(rows), cells)


def settings_table(rows, by_row):
  cells = []
  for method in methods_of(rows, by_row):
    found = [cell_of(by_row, row, method) for row in rows]
    cells.append([method] + ["-" if r is None else r.setting for r in found])
  return common.markdown_table(["method"] + list(rows), cells)


def verdicts(dims, rows, by_row, learned_labels):
  """Per row: does each learned swarm beat every baseline?"""
  lines = []
  for row in rows:
    results = by_row[row]
    baselines = [r for r in results if r.method not in learned_labels]
    if not baselines:
      # A run of the learned swarms alone: --tables_from joins it with the
      # baselines' run and says it there.
      continue
    best = min(baselines, key=lambda r: mean_of(r.bests))
    kind = "training" if row in TRAINING_ROWS else "held-out"
    for result in results:
      if result.method not in learned_labels:
        continue
      ours = mean_of(result.bests)
      theirs = mean_of(best.bests)
      beaten = sum(mean_of(r.bests) < ours for r in baselines)
      if ours < theirs:
        word = "beats every baseline; the best is"
      else:
        word = "does NOT beat {} of {} baselines; the best is".format(
            beaten, len(baselines))
      lines.append("{}-d {} ({}): {} ({}) {} {} ({}).".format(
          dims, row, kind, result.method, common.format_value(ours), word,
          best.method, common.format_value(theirs)))
  return lines


def swarms_to_score(directory):
  """(label, path, particles, swarm options) of each learned swarm to score,
  training as needed."""
  swarms = []
  for label, path, recipe, particles, name, problem, options in (
      ("L2L swarm, LOIS recipe", FLAGS.path, training.SWARM_RECIPE, 4,
       "recipe", TRAINING_PROBLEM, {}),
      ("L2L swarm, basin hopping", FLAGS.hop_path, HOP_RECIPE,
       HOP_PARTICLES, "hop", TRAINING_PROBLEM, {}),
      (REFINE_LABEL, FLAGS.refine_path,
       HOP_RECIPE, HOP_PARTICLES, "refine", REFINE_PROBLEM,
       REFINE_OPTIONS)):
    if path == "none":
      continue
    if path is None:
      path = os.path.join(directory, name)
      if not train_swarm(path, recipe, particles, problem):
        logging.warning("Meta-training %s diverged; it is left out.", label)
        continue
    swarms.append((label, path, particles, options))
  return swarms


# The refining swarm's label; it alone trains on REFINE_PROBLEM.
REFINE_LABEL = "L2L swarm, basin hopping, refining the record"


def swarm_descriptions(swarms):
  """What the settings text says of each learned swarm scored."""
  return ["{} ({} particles x {} steps, {}{})".format(
      label, particles, FLAGS.budget // particles, path,
      "".join(", {}={}".format(*item) for item in options.items()))
          for label, path, particles, options in swarms]


def swarm_list_text(descriptions):
  return "; ".join(descriptions) or "none in this run"


def settings_text(swarms):
  return (
      "{} function+gradient evaluations per start set for every method; "
      "each start set scored by the lowest loss among the points its "
      "method evaluated; mean over {} held-out start sets ({} instances of "
      "128, seed {}) ± its standard error. Learned swarms: {}; meta-trained "
      "on {} only{}. Every baseline's setting tuned per row and dimension on "
      "other instances (seed {}).".format(
          FLAGS.budget, 128 * eval_epochs(), eval_epochs(), FLAGS.seed,
          swarm_list_text(swarm_descriptions(swarms)), TRAINING_PROBLEM,
          " (the refining swarm on {})".format(REFINE_PROBLEM)
          if any(swarm[0] == REFINE_LABEL for swarm in swarms) else "",
          evaluation.tuning_seed(FLAGS.seed)))


def validation_swarm(spec):
  """(label, path, particles, swarm options) of a --validate entry.

  Raises:
    ValueError: for an entry not of the form
      label=path=particles[=option:value...].
  """
  label, path, particles, *options = spec.split("=") + ["", ""]
  if not (label and path and particles.isdigit() and int(particles) >= 1):
    raise ValueError("--validate entry {!r}: expected label=path=particles"
                     "[=option:value...]".format(spec))
  overrides = util.parse_problem_options(",".join(
      option.replace(":", "=", 1) for option in options if option))
  return label, path, int(particles), overrides


def validate(dims_list):
  """Scores the --validate swarms on the validation rows."""
  swarms = [validation_swarm(spec) for spec in FLAGS.validate]
  sections = ["Validation: seed {}, {} start sets per row, budget {}.\n"
              .format(VALIDATION_SEED, 128 * eval_epochs(), FLAGS.budget)]
  for dims in dims_list:
    by_row = collections.OrderedDict()
    for row, template in VALIDATION_ROWS.items():
      problem = template.format(d=dims)
      held_out, _ = equal_budget.read_instances(problem, VALIDATION_SEED,
                                                eval_epochs())
      results = [Score(label, "{} particles".format(particles), run_tf(
          "L2L", problem, particles, VALIDATION_SEED, eval_epochs(),
          path=path, swarm_options=overrides))
                 for label, path, particles, overrides in swarms]
      for restarts in (4, 40):
        results.append(Score(
            "Adam, best of {} restarts".format(restarts), "lr=0.03",
            equal_budget.adam_restarts(
                held_out, np.random.default_rng([VALIDATION_SEED, restarts]),
                FLAGS.budget, restarts, 0.0316)))
      by_row[row] = results
      print_scores(dims, "validation_" + row, results)
    sections.append("### {}-d validation\n\n{}".format(
        dims, table(list(by_row), by_row)))
  return "\n".join(sections)


def check_flags():
  """Exits with one line, before any work, on a flag out of its range."""
  # The largest number of restarts needs one step each.
  cli.check_at_least(max(ADAM_RESTARTS), "budget")
  cli.check_at_least(1, "quick_train_epochs", "eval_epochs",
                     "tune_start_sets")
  if FLAGS.train_epochs is not None:
    cli.check_at_least(1, "train_epochs")
  # Rosenbrock, a held-out row, needs two dimensions.
  common.check_integers("dims", 2)
  cli.check_with("methods", _check_methods)
  for spec in FLAGS.validate or []:
    cli.check_with("validate", lambda _, spec=spec: validation_swarm(spec))


def _check_methods(methods):
  if not set(methods) <= set(METHODS):
    raise ValueError("expected some of " + ", ".join(METHODS))


def main(argv):
  del argv
  check_flags()
  if FLAGS.validate:
    start = timeit.default_timer()
    common.write_report("swarm", validate([int(d) for d in FLAGS.dims]),
                        FLAGS.output, start)
    return
  common.print_environment("swarm")
  start = timeit.default_timer()
  if FLAGS.tables_from:
    settings, joined = read_scores(FLAGS.tables_from)
    learned = {r.method for rows in joined.values() for results in
               rows.values() for r in results if r.method.startswith(
                   LEARNED_PREFIX)}
    common.write_report("swarm", "\n".join(
        [settings + "\n"] +
        [report(dims, joined[dims], learned) for dims in sorted(joined)]),
                        FLAGS.output, start)
    return
  dims_list = [10] if FLAGS.quick else [int(d) for d in FLAGS.dims]
  rows = list(ROWS) if FLAGS.rows is None else FLAGS.rows.split(",")
  unknown = sorted(set(rows) - set(ROWS))
  if unknown:
    raise app.UsageError("Unknown --rows {}; expected some of {}.".format(
        ", ".join(unknown), ", ".join(ROWS)))
  with tempfile.TemporaryDirectory(prefix="l2l-swarm-") as directory:
    swarms = (swarms_to_score(directory) if "learned" in FLAGS.methods
              else [])
    settings = settings_text(swarms)
    sections = [settings + "\n"]
    learned_labels = {swarm[0] for swarm in swarms}
    scored = collections.OrderedDict()
    for dims in dims_list:
      by_row = collections.OrderedDict()
      for row in rows:
        by_row[row] = row_scores(ROWS[row].format(d=dims), swarms)
        scored[(dims, row)] = by_row[row]
        print_scores(dims, row, by_row[row])
        if FLAGS.scores_file:
          write_scores(swarms, scored)
      sections.append(report(dims, by_row, learned_labels))
  common.write_report("swarm", "\n".join(sections), FLAGS.output, start)


if __name__ == "__main__":
  common.run(main)
