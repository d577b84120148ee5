"""Runs an optimizer, learned or hand-designed, on fresh problem instances.

Every optimizer of one comparison sees the same instances: each graph sets the
same graph-level seed and builds the problem's variables first, so their
random initialisers draw the same sequence, epoch after epoch.
"""

import collections
import timeit

from absl import logging
import numpy as np
import tensorflow as tf

from l2l.baselines import pso
from l2l.checkpoint import manifest
from l2l.core import interception
from l2l.core import native
from l2l.core import particles
from l2l.experiment import progress
from l2l.experiment import scores
from l2l.swarm import lois_released
import meta
import problems
import util

BASELINES = {
    "SGD": tf.compat.v1.train.GradientDescentOptimizer,
    "Momentum": lambda lr: tf.compat.v1.train.MomentumOptimizer(lr, 0.9),
    # Nesterov's accelerated gradient, the paper's NAG.
    "NAG": lambda lr: tf.compat.v1.train.MomentumOptimizer(
        lr, 0.9, use_nesterov=True),
    "RMSProp": tf.compat.v1.train.RMSPropOptimizer,
    "Adam": tf.compat.v1.train.AdamOptimizer,
}
OPTIMIZERS = ("L2L",) + tuple(BASELINES) + ("PSO",)
# PSO's swarm size when none is given.
PSO_PARTICLES = 4

# Learning rates `tune` tries: half decades from 1e-4 to 10 (SGD's best on
# `quadratic` and `digits` is above 1: their batch means shrink gradients).
LEARNING_RATE_GRID = tuple(float(lr) for lr in np.logspace(-4, 1, 11))
# Tuning draws its instances from this offset of the evaluation seed, so the
# learning rate is never chosen on the instances it is judged on.
TUNING_SEED_OFFSET = 100003

Evaluation = collections.namedtuple(
    "Evaluation",
    "losses, seconds, positions, row_losses, swarm_options, lstm_step, "
    "optimizer_manifest", defaults=(None, None, None, None))
Evaluation.__doc__ = """Per-epoch results of `evaluate`.

losses: float64 array [epochs, num_steps + 1, particles]; entry (e, t, j) is
  particle j's mean loss on epoch e's instance after t steps (one particle for
  single-point optimizers).
seconds: float64 array [epochs] of wall-clock seconds per epoch.
positions: None, or float32 array [recorded epochs, num_steps + 1, particles,
  coordinates] of the swarm's positions in the first recorded epochs.
row_losses: float64 array [epochs, num_steps + 1, particles, rows]: the same
  losses on each batch row, i.e. each start set, separately (rows = 1 for a
  problem whose loss is a scalar). `l2l.experiment.scores` scores them. None
  in an `Evaluation` made by hand from `losses` alone, which then counts as
  one row.
swarm_options: the options the points ran with, as records keep them: a
  learned swarm's (its saved ones, with those given over them; LOIS's
  released model says so), PSO's, a baseline's number of restarts ({} for
  one point), or None in an `Evaluation` made by hand.
lstm_step: how the learned optimizer's LSTM steps ran, which shapes the
  seconds: "native kernel" (`l2l.core.native`), "TensorFlow ops", or None
  when no LSTM ran (a baseline, PSO) or for an `Evaluation` made by hand.
optimizer_manifest: the manifest of the saved optimizer evaluated, as it
  was when its files were read (None without one, or for another
  optimizer).
"""


def scored_losses(result):
  """What `scores` takes of an `Evaluation`.

  Args:
    result: an `Evaluation`.

  Returns:
    Its row losses, or its losses (as one row) when it has none.
  """
  return result.losses if result.row_losses is None else result.row_losses


def first_steps(result, num_steps):
  """The evaluation a run of only its first `num_steps` steps would give.

  Args:
    result: an `Evaluation` of at least `num_steps` steps.
    num_steps: how many steps to keep.

  Returns:
    An `Evaluation` whose losses, row losses and positions end after
    `num_steps` steps (the seconds stay those of the whole run).
  """
  def cut(array):
    return None if array is None else array[:, :num_steps + 1]
  return result._replace(losses=cut(result.losses),
                         positions=cut(result.positions),
                         row_losses=cut(result.row_losses))


def _rows_of(tensor):
  """A loss tensor as [k, rows] (a [k] tensor is one row)."""
  return tf.reshape(tensor, [int(tensor.shape[0]), -1])


class _Runner:
  """Ops of one optimizer on one problem and how to run one epoch.

  Running `row_losses` (and `positions`) together with `step` reads the
  point the step starts from; after the last step they are read once more.
  """

  def __init__(self, setup, reset, step, row_losses, positions=None,
               options=None):
    """Keeps the ops.

    Args:
      setup: op run once per session.
      reset: op drawing a fresh instance and fresh optimizer state.
      step: op taking one optimization step.
      row_losses: tensor [k, rows] of each point's loss on every batch row
        at the current point(s) (rows = 1 for a scalar loss).
      positions: tensor [k, n] of the current points, or None.
      options: the swarm options the points run with (`Evaluation`'s).
    """
    self.options = options or {}
    # The problem's `build`, set by `evaluate`: one that draws a task per
    # epoch (the task family) draws it before each reset.
    self.problem = None
    self.setup = setup
    self.reset = reset
    self.step = step
    self.row_losses = row_losses
    self.positions = positions

  def run_epoch(self, sess, num_steps, record_positions):
    """Runs one instance.

    Returns:
      Row losses [steps + 1, k, rows], and positions [steps + 1, k, n] or
      None.
    """
    problems.draw_next_task(self.problem, sess)
    observe = {"row_losses": self.row_losses}
    if record_positions and self.positions is not None:
      observe["positions"] = self.positions
    # Each "unroll" here is one step; the last point is read once more.
    _, seen = util.run_unrolls(sess, observe, [self.step], num_steps,
                               reset=self.reset)
    seen.append(sess.run(observe))
    row_losses = np.asarray([s["row_losses"] for s in seen], np.float64)
    if "positions" not in observe:
      return row_losses, None
    return row_losses, np.asarray([s["positions"] for s in seen], np.float32)


def _observed_rows(make_loss, points, constants, losses):
  """[k, rows] losses of k points for a `_Runner` of an unroll.

  An unroll records only each point's batch mean; a problem whose loss has
  one value per row is evaluated once more at the points, for the rows. A
  scalar loss is its own single row: no second evaluation, which on a data
  problem would draw another minibatch.

  Args:
    make_loss: the problem's `build` function.
    points: one [k, ...] tensor per trainable variable: where the unroll
      starts.
    constants: the problem instance.
    losses: [k] the unroll's losses at `points`.

  Returns:
    A [k, rows] tensor.
  """
  k = int(points[0].shape[0])
  with tf.name_scope("observed_rows"):
    rows, _ = particles.particle_losses(make_loss, points, constants)
  if rows.shape[1] == 1:
    return tf.reshape(losses, [k, 1])
  return rows


def _build_baseline(name, problem, learning_rate, num_particles=1):
  """A hand-designed optimizer, from one start or from several.

  With `num_particles` > 1 it runs independently from the same starts as the
  swarms (its update is elementwise, so descending the sum of the starts'
  losses moves each start as if alone): the fair single-point counterpart
  of a k-particle swarm is the best of k restarts.
  """
  optimizer = BASELINES[name](learning_rate)
  if num_particles == 1:
    raw = problem()
    step = optimizer.minimize(problems.mean_loss(raw))
    rows = tf.reshape(raw, [1, -1])
    positions = None
  else:
    x, constants = interception.get_variables(problem)
    starts = particles.draw_particles(problem, x, constants, num_particles)
    rows = tf.stack([particles.row_losses(problem, start, constants)
                     for start in starts])
    positions = particles.flatten([tf.stack(v) for v in zip(*starts)])
    # The positions are read by ops of their own; the step waits for them,
    # so a run of [positions, step] reads where the step starts.
    with tf.control_dependencies([positions]):
      step = optimizer.minimize(tf.reduce_sum(tf.reduce_mean(rows, axis=1)),
                                var_list=sum(starts, []))
  reset = tf.compat.v1.global_variables_initializer()
  return _Runner(tf.no_op(), reset, step, rows, positions=positions,
                 options=({"num_particles": num_particles}
                          if num_particles > 1 else {}))


def saved_configuration(path, saved, make_problem, net_config,
                        net_assignments, swarm_options):
  """What a saved optimizer's manifest says, in place of the problem's.

  A directory with a manifest loads with the nets, the assignment rule and
  the swarm options it was saved with, whatever configuration the problem
  name gives; one without a manifest (DeepMind's and LOIS's files, older
  saves) loads with the problem's, as before.

  Args:
    path: the saved optimizer's directory, or None.
    saved: its manifest (`manifest.read(path)`), or None without one.
    make_problem: makes the problem's `build` function afresh in the
      current graph; the throwaway build that reads the problem's variables
      runs in a graph of its own, and a problem can hold variables of the
      graph it was made in (the task family's task variables).
    net_config: the problem's net config.
    net_assignments: the problem's net assignments.
    swarm_options: swarm options given by the caller; they override the
      saved ones.

  Returns:
    `(net_config, net_assignments, swarm_options)`.

  Raises:
    ValueError: for a bad manifest, a missing `.l2l` file, a problem
      variable no net of the manifest covers, or a number of particles the
      saved optimizer cannot run (one for a swarm, several for one point).
  """
  if saved is None:
    return net_config, net_assignments, swarm_options
  _check_particles(path, saved["swarm"].get("num_particles", 1),
                   swarm_options.get("num_particles"))
  # The rule is applied to the problem's variables, which only a build
  # reveals; a throwaway graph keeps that build out of the evaluated one.
  with tf.Graph().as_default():
    variables, _ = interception.get_variables(make_problem())
  assignments, _ = manifest.assign(
      saved["assignment"],
      [interception.variable_name(v) for v in variables],
      [v.shape.rank for v in variables], where=path)
  return (manifest.net_configs(saved, path), assignments,
          dict(saved["swarm"], **swarm_options))


def check_held_out(path, problem_name, seed, data_dir=None):
  """Refuses to evaluate a saved optimizer on the instances it trained on.

  Training and evaluation draw a problem's instances from the same
  graph-level seed in the same order, so evaluating with the seed the
  optimizer was meta-trained with (its manifest says which) on the same
  problem replays its training instances: evaluation instance k + 1 is
  training epoch k's. So does another name of the same problem
  (`quadratic` and `quadratic-las` differ in their nets only), which is
  told by its first draw at that seed, and so may the same problem with
  other options (`family:datasets=iris` draws the quadratics of
  `family` at that seed), which is refused whatever it draws.

  Args:
    path: the saved optimizer's directory.
    problem_name: the problem to evaluate on.
    seed: the evaluation's seed.
    data_dir: where a data problem's files are.

  Raises:
    ValueError: for that seed and problem, naming both.
  """
  _check_held_out(path, manifest.read(path), problem_name, seed, data_dir)


def _check_held_out(path, saved, problem_name, seed, data_dir):
  """`check_held_out` on `saved`, the manifest read from `path` (or None)."""
  if saved is None:
    return
  trained = saved["problem"]
  if trained is None or saved["training"].get("seed") != seed:
    return
  if util.base_name(trained) != util.base_name(problem_name):
    if not _draws_alike((trained, seed, None), (problem_name, seed, None),
                        data_dir):
      return
    trained = "{} (which draws what {} draws)".format(trained, problem_name)
  elif trained != problem_name:
    # Other options of one problem draw from one random stream at one
    # seed: the task family's kinds, a test function's starts.
    trained = "{} (the problem {} with other options)".format(
        trained, problem_name)
  raise ValueError(
      "{} was meta-trained on {} with seed {}, and evaluating with that "
      "seed replays its training's random draws (starts, minibatches, "
      "instances): evaluate with another seed, so that the figures are on "
      "held-out instances.".format(path, trained, seed))


def _first_draw(problem_name, seed, mode, data_dir):
  """What a run of `problem_name` at graph seed `seed` (in `mode`) draws
  first: the names and values of its starting point and instance, or None
  if it cannot be built here (say, a problem of one's own not registered)."""
  try:
    with tf.Graph().as_default():
      tf.compat.v1.set_random_seed(seed)
      problem = util.get_config(problem_name, mode=mode,
                                data_dir=data_dir)[0]
      variables, instance = interception.get_variables(problem)
      with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        drawn = variables + instance
        return list(zip([v.name for v in drawn], sess.run(drawn)))
  except (ValueError, OSError):  # DataError is an OSError.
    return None


def _draws_alike(first, second, data_dir):
  """Whether two runs, each `(problem name, seed, mode)`, draw alike."""
  first, second = (_first_draw(*run, data_dir) for run in (first, second))
  return (first is not None and second is not None and
          len(first) == len(second) and
          all(a_name == b_name and np.array_equal(a, b)
              for (a_name, a), (b_name, b) in zip(first, second)))


def _check_particles(path, saved, wanted):
  """Refuses a number of particles the optimizer in `path` cannot run.

  A swarm's LSTM reads the swarm's features (attention over the particles,
  their bests), which one point does not have, and a single point's LSTM
  reads a bare gradient: neither runs as the other.

  Args:
    path: the saved optimizer's directory.
    saved: the particles it was saved with.
    wanted: the particles asked for, or None (the saved number).

  Raises:
    ValueError: naming both numbers and what to give instead.
  """
  if wanted is None:
    return
  if saved > 1 and wanted <= 1:
    raise ValueError(
        "{} holds a swarm optimizer of {} particles, which cannot run as "
        "one point (its LSTM reads the swarm's features); give "
        "num_particles of 2 or more, or none for its {}.".format(
            path, saved, saved))
  if saved <= 1 and wanted > 1:
    raise ValueError(
        "{} holds a single-point optimizer (trained with one particle), "
        "which cannot run as a swarm of {}; evaluate it as one point, or "
        "meta-train a swarm (train.py --num_particle={}).".format(
            path, wanted, wanted))


def _build_l2l(problem, make_problem, net_config, net_assignments, path,
               saved, swarm_options):
  if path is None:
    logging.warning("Evaluating an untrained L2L optimizer: no --path given.")
  given = sorted(set(swarm_options) - {"num_particles"})
  net_config, net_assignments, swarm_options = saved_configuration(
      path, saved, make_problem, net_config, net_assignments, swarm_options)
  num_particles = swarm_options.get("num_particles", 1)
  if given and num_particles <= 1:
    logging.warning("Swarm options %s have no effect: the optimizer runs "
                    "one point (a swarm needs num_particles > 1).",
                    ", ".join(given))
  elif ("hop_noise" in given and
        swarm_options.get("attraction_gain", "off") != "hop"):
    logging.warning("Swarm option hop_noise has no effect: the swarm's "
                    "attraction gain is %r, not 'hop'.",
                    swarm_options.get("attraction_gain", "off"))
  if lois_released.is_released_model(path):
    if num_particles <= 1:
      raise ValueError(
          "{} is LOIS's released swarm model: give num_particles of 2 or "
          "more (LOIS evaluated it with 4).".format(path))
    # LOIS's released files run as LOIS's code ran them.
    logging.info("%s is a LOIS released model: running it as released.",
                 path)
    if given:
      logging.warning("Swarm options %s have no effect: a LOIS released "
                      "model runs as LOIS's code ran it.", ", ".join(given))
    released = lois_released.build(problem, num_particles, path)
    return _Runner(released.setup, released.reset, released.step,
                   released.row_losses, positions=released.positions,
                   options={"num_particles": num_particles,
                            "lois_released": True})
  # The posterior entropy only shapes meta-training; evaluation skips it.
  options = dict(swarm_options, use_entropy=False) if swarm_options else {}
  optimizer = meta.MetaOptimizer(**dict(net_config, **options))
  info = optimizer.meta_loss(problem, 1, net_assignments=net_assignments,
                             model_path=path)
  positions = None
  # Where the step starts, with a particle axis, for the per-row losses.
  points = optimizer.x_initial
  if optimizer.swarm.active:
    positions = particles.flatten(points)
  else:
    points = [tf.expand_dims(v, 0) for v in points]
  losses = tf.reshape(optimizer.fx_history[0], [-1])
  rows = _observed_rows(problem, points, info.subproblem_constants, losses)
  # The optimizer is initialised once; each epoch re-draws only the problem
  # and the optimizer's state, so every optimizer sees the same instances.
  setup = tf.compat.v1.variables_initializer(optimizer.variables())
  return _Runner(setup, info.reset, info.update, rows, positions=positions,
                 options=dict(swarm_options) if num_particles > 1 else {})


def _build_pso(problem, swarm_options):
  swarm = pso.build(problem, **swarm_options)
  return _Runner(tf.no_op(), swarm.reset, swarm.step, swarm.row_losses,
                 positions=particles.flatten(swarm.positions),
                 options=dict(swarm_options))


def _pso_options(swarm_options):
  options = {"num_particles": PSO_PARTICLES}
  options.update(swarm_options or {})
  return options


def evaluate(optimizer, problem_name, num_steps=100, num_epochs=100, seed=0,
             learning_rate=0.001, path=None, mode="test", swarm_options=None,
             data_dir=None, record_positions=1, show_progress=True):
  """Runs one optimizer on `num_epochs` fresh instances of a problem.

  Args:
    optimizer: "L2L", "PSO" or a name in `BASELINES`.
    problem_name: a name `util.get_config` knows.
    num_steps: optimization steps per instance.
    num_epochs: number of instances.
    seed: graph-level seed; the same seed gives the same instances to every
      optimizer.
    learning_rate: the baseline's learning rate (ignored for L2L and PSO).
    path: directory of a saved L2L optimizer.
    mode: "test" (held-out instances), "train" or "validation" (instances
      to pick settings on; `util.get_config`).
    swarm_options: options of the swarm, e.g. {"num_particles": 4}: LOIS's
      for L2L, `pso.build`'s for PSO; a baseline runs from that many starts
      (the swarms' starts) and is scored by the best.
    data_dir: directory of mnist/cifar files.
    record_positions: how many epochs' swarm positions to keep.
    show_progress: show a progress bar (or log lines off a terminal).

  Returns:
    An `Evaluation`.

  Raises:
    ValueError: for an unknown optimizer or problem, or a checkpoint that
      does not fit the problem.
  """
  if optimizer not in OPTIMIZERS:
    raise ValueError("Unknown optimizer {!r}; expected one of {}.".format(
        optimizer, ", ".join(OPTIMIZERS)))

  def build():
    # Read once: it checks every file's digest.
    saved = None
    if optimizer == "L2L" and path is not None:
      saved = manifest.read(path)
      # Validation instances with the training seed would replay
      # training's too (a data problem's are the train split's).
      if mode != "train":
        _check_held_out(path, saved, problem_name, seed, data_dir)
    return _build_graph(optimizer, problem_name, seed, learning_rate, path,
                        saved, mode, swarm_options, data_dir) + (saved,)

  if optimizer == "L2L" and path is not None:
    graph, runner, saved = manifest.read_unsaved(path, build)
  else:
    graph, runner, saved = build()
  row_losses = []
  seconds = []
  positions = []
  with tf.compat.v1.Session(graph=graph) as sess:
    sess.run(runner.setup)
    epochs = progress.bar(range(num_epochs), desc="{} on {}".format(
        optimizer, problem_name), enabled=show_progress)
    for epoch in epochs:
      start = timeit.default_timer()
      epoch_rows, epoch_positions = runner.run_epoch(
          sess, num_steps, epoch < record_positions)
      seconds.append(timeit.default_timer() - start)
      row_losses.append(epoch_rows)
      if epoch_positions is not None:
        positions.append(epoch_positions)
  row_losses = np.stack(row_losses)
  positions = np.stack(positions) if positions else None
  _warn_if_one_start(row_losses if positions is None else positions,
                     optimizer, problem_name)
  return Evaluation(np.mean(row_losses, axis=3), np.asarray(seconds),
                    positions, row_losses,
                    runner.options, _lstm_step(graph, optimizer), saved)


def _build_graph(optimizer, problem_name, seed, learning_rate, path, saved,
                 mode, swarm_options, data_dir):
  """The graph `evaluate` runs, finalized, and its `_Runner` (`saved`: the
  manifest read from `path`, or None).

  Returns:
    `(graph, runner)`.
  """
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(seed)
    def configuration():
      return util.get_config(problem_name,
                             path if optimizer == "L2L" else None,
                             mode=mode, data_dir=data_dir)
    problem, net_config, net_assignments = configuration()
    if optimizer == "L2L":
      with manifest.explaining_a_missing_manifest(
          path, "the configuration of problem {!r} (pass --problem, the "
          "problem it was trained on, if it is another)".format(
              problem_name)):
        # The same problem again, for the throwaway build of its variables.
        runner = _build_l2l(
            problem, lambda: configuration()[0], net_config, net_assignments,
            path, saved, swarm_options or {})
    elif optimizer == "PSO":
      runner = _build_pso(problem, _pso_options(swarm_options))
    else:
      runner = _build_baseline(
          optimizer, problem, learning_rate,
          (swarm_options or {}).get("num_particles", 1))
    runner.problem = problem
    graph.finalize()
  return graph, runner


def _warn_if_one_start(trajectories, optimizer, problem_name):
  """Warns when several particles or restarts all started at one point.

  A problem whose variables start at a fixed point (the task family's
  `delta` starts at zero) gives every particle the same start: the best of
  them then differs from one run only by the noise of its minibatches.

  Args:
    trajectories: the recorded positions, [epochs, steps + 1, particles,
      n]; or, with none recorded, the row losses [epochs, steps + 1,
      particles, rows] (equal starts give equal losses, bar minibatches).
    optimizer: its name, for the message.
    problem_name: the problem's, for the message.
  """
  starts = trajectories[:, 0]
  if starts.shape[1] > 1 and np.all(starts == starts[:, :1]):
    logging.warning(
        "All %d particles of %s started at the same point on %s: the "
        "problem starts from a fixed point, so the best of them differs "
        "from one start only by the noise of its minibatches.",
        starts.shape[1], optimizer, problem_name)


def _lstm_step(graph, optimizer):
  """How `graph`'s LSTM steps run (`Evaluation.lstm_step`)."""
  if optimizer != "L2L":
    return None
  if native.runs_in(graph):
    return "native kernel"
  return "TensorFlow ops"


def final_error(result):
  """The per-start-set mean final loss (`scores`), as a ranking key.

  A diverged run (`scores.diverged`) ranks last: inf, never NaN, so `min`
  over learning rates stays correct.

  Args:
    result: an `Evaluation`, or losses as `scores` takes them.

  Returns:
    A float.
  """
  losses = scored_losses(result) if isinstance(result, Evaluation) else result
  value = scores.mean_final(losses)
  return float("inf") if scores.diverged(value) else value


def tune(optimizer, problem_name, seed=0, grid=LEARNING_RATE_GRID,
         **kwargs):
  """Picks a baseline's learning rate on tuning instances.

  The tuning instances are validation instances (`util.get_config`: a data
  problem's train split) drawn from `seed + TUNING_SEED_OFFSET`, never from
  the evaluation seed.

  Args:
    optimizer: a name in `BASELINES`.
    problem_name: the problem.
    seed: the evaluation seed.
    grid: learning rates to try.
    **kwargs: passed to `evaluate` (num_steps, num_epochs, ...); `mode`
      defaults to "validation".

  Returns:
    `(best learning rate, {learning rate: final error})`.

  Raises:
    ValueError: if `optimizer` has no learning rate to tune.
  """
  if optimizer not in BASELINES:
    raise ValueError("Only {} have a learning rate to tune, not {!r}.".format(
        ", ".join(BASELINES), optimizer))
  kwargs.setdefault("mode", "validation")
  # Compared in test mode only where validation is drawn so: a data
  # problem's test split is never read here.
  if (kwargs["mode"] == "validation" and
      util.validation_mode(problem_name) == "test" and
      _draws_alike((problem_name, tuning_seed(seed), "test"),
                   (problem_name, seed, "test"), kwargs.get("data_dir"))):
    logging.warning(
        "%s draws the same instance at every seed, so the learning rate is "
        "picked on the instance it is then evaluated on: nothing is held "
        "out.", problem_name)
  scores = {}
  for learning_rate in grid:
    result = evaluate(optimizer, problem_name, seed=tuning_seed(seed),
                      learning_rate=learning_rate, **kwargs)
    scores[learning_rate] = final_error(result)
    logging.info("%s lr=%g: mean final loss %g", optimizer, learning_rate,
                 scores[learning_rate])
  best = min(scores, key=scores.get)
  if not np.isfinite(scores[best]):
    logging.warning(
        "%s diverged at every learning rate tried on the tuning instances "
        "(%g to %g); the first, %g, is kept.", optimizer, min(grid),
        max(grid), best)
  return best, scores


def tuning_seed(seed):
  """The seed whose instances tune the learning rate for evaluation `seed`."""
  return seed + TUNING_SEED_OFFSET
