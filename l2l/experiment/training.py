"""The meta-training loop behind train.py, usable from scripts and benchmarks.

Importing this module defines no command-line flags.
"""

import collections
import contextlib
import dataclasses
import math
import os
import signal
import sys
import threading
import timeit

from absl import logging
import numpy as np
import tensorflow as tf

from l2l import files
from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.core import meta_objective as meta_objectives
from l2l.core import native
import meta
from l2l.experiment import progress
from l2l.experiment import scores
from l2l.experiment import training_state
import problems
from l2l.swarm import swarm_unroll
import util


# The documented recipe that trains a swarm on Rastrigin (`square_cos_<d>`):
# docs/design.md, "Training a swarm", gives the reasons and the command.
SWARM_RECIPE = {
    "num_epochs": 100,
    "num_steps": 100,
    "unroll_length": 20,
    "learning_rate": 0.01,
    "swarm_options": {"objective": "final_best", "per_instance": True,
                      "use_entropy": False, "attraction_gain": "learned"},
}

# The documented recipe that meta-trains the task family's optimizer
# (`--problem=family`): what bench/generalization.py runs for each seed and
# README's "The task family" command passes to train.py. One unroll over
# the whole horizon (with DeepMind's 20 the trained net fell behind the
# untrained one) and 3x the other problems' meta learning rate
# (bench/README.md, "Attempts").
FAMILY_RECIPE = {
    "num_epochs": 300,
    "num_steps": 100,
    "unroll_length": 100,
    "learning_rate": 0.003,
    "evaluation_period": 50,
    "evaluation_epochs": 20,
}


class TrainingDiverged(RuntimeError):
  """The meta-loss became NaN or infinite."""


def check_save_path(save_path, net_ids, overwrite):
  """Creates `save_path` if needed and refuses to replace a saved optimizer.

  Args:
    save_path: the directory, or None.
    net_ids: the ids whose `<id>.l2l` files training will write.
    overwrite: allow replacing existing files.

  Raises:
    ValueError: if the directory already holds a saved optimizer (a
      manifest, or one of those files), or, even with `overwrite`, a
      `manifest.json` that is not this library's.
  """
  if save_path is None:
    return
  if os.path.exists(save_path) and not os.path.isdir(save_path):
    raise ValueError("--save_path {} exists and is not a directory.".format(
        save_path))
  # Before training, not at its first save hours later.
  manifest.check_replaceable(save_path)
  files = [manifest.path_in(save_path)] + [
      l2l_file.checkpoint_path(save_path, i) for i in net_ids]
  existing = [os.path.basename(f) for f in files if os.path.lexists(f)]
  if existing and not overwrite:
    raise ValueError(
        "{} already holds a saved optimizer ({}); choose another --save_path "
        "or pass --overwrite to replace it.".format(save_path,
                                                    ", ".join(existing)))
  os.makedirs(save_path, exist_ok=True)


class _Summaries:
  """TensorBoard scalars of training, written when a log directory is set."""

  def __init__(self, logdir):
    self._writer = (None if logdir is None else
                    tf.compat.v1.summary.FileWriter(logdir))

  def add(self, step, **scalars):
    if self._writer is None:
      return
    summary = tf.compat.v1.Summary(value=[
        tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value))
        for tag, value in sorted(scalars.items())])
    self._writer.add_summary(summary, step)

  def close(self):
    if self._writer is not None:
      self._writer.close()


def _run_epochs(sess, fetches, ops, reset, num_unrolls, num_epochs,
                problem=None, vary_unrolls=False):
  """Runs epochs of `num_unrolls` unrolls from a fresh instance each.

  Args:
    sess: the session.
    fetches: `(final loss, meta-loss)` tensors of one unroll.
    ops: ops run with every unroll (update, and the meta-step in training).
    reset: op drawing a fresh instance.
    num_unrolls: unrolls per epoch.
    num_epochs: epochs to run.
    problem: the problem's `build`; one that draws a task per epoch (the
      task family) draws it first, and the draw counts in the seconds.
    vary_unrolls: let the problem scale each epoch's `num_unrolls`
      (`problems.epoch_unrolls`: the family's heavy-tailed unroll lengths);
      training epochs do, evaluations keep the fixed horizon.

  Returns:
    `(total seconds, total final loss, mean meta-loss per unroll)`.

  Raises:
    TrainingDiverged: if a loss is not finite.
  """
  total_time = 0.0
  total_cost = 0.0
  meta_losses = []
  for _ in range(num_epochs):
    start = timeit.default_timer()
    problems.draw_next_task(problem, sess)
    unrolls = (problems.epoch_unrolls(problem, num_unrolls) if vary_unrolls
               else num_unrolls)
    _, (cost, meta_loss) = util.run_epoch(sess, fetches, ops, reset, unrolls)
    seconds = timeit.default_timer() - start
    cost = float(np.mean(cost))
    if not (math.isfinite(cost) and math.isfinite(meta_loss)):
      raise TrainingDiverged("the optimizee loss became {}".format(cost))
    total_time += seconds
    total_cost += cost
    meta_losses.append(meta_loss)
  return total_time, total_cost, float(np.mean(meta_losses))


TrainingResult = collections.namedtuple(
    "TrainingResult", "best_evaluation, epochs, saved, diverged, interrupted, "
    "state_path, saved_on_stop")
TrainingResult.__doc__ = """What a `train` run achieved.

best_evaluation: the best evaluation's mean final loss (inf if none
  completed).
epochs: epochs completed (counting those of the run resumed from).
saved: True if the best optimizer is in `save_path`.
diverged: True if training stopped because a loss became NaN or infinite.
interrupted: the name of the signal that stopped training ("SIGINT",
  "SIGTERM"), or None.
state_path: the training state file to resume from, or None.
saved_on_stop: None, or `{"epoch": e, "evaluation": mean final loss}` of
  the optimizer a stopped run evaluated and saved because no evaluation had
  saved one (`keep_an_optimizer`); it is in `save_path` until an evaluation
  of a resumed run replaces it.
"""

# Epochs between training states when not told otherwise.
DEFAULT_CHECKPOINT_PERIOD = 100


class _StopSignals:
  """Turns the first SIGINT/SIGTERM into a request to stop after the epoch.

  A second signal interrupts at once (KeyboardInterrupt). Handlers are only
  installed in the main thread (Python allows no other) and are restored on
  exit.
  """

  SIGNALS = (signal.SIGINT, signal.SIGTERM)

  def __init__(self, enabled):
    self.received = None
    self._enabled = (enabled and threading.current_thread() is
                     threading.main_thread())
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.received is not None:
      raise KeyboardInterrupt
    self.received = signal.Signals(signum).name
    # An epoch can take long: say at once that the signal was heard.
    logging.warning("%s received: stopping after the epoch under way (a "
                    "second signal stops at once).", self.received)

  def __enter__(self):
    if self._enabled:
      for signum in self.SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


def _trajectory_settings(problem_name, num_steps, unroll_length,
                         learning_rate, second_derivatives, seed,
                         num_particles, swarm_options=None,
                         meta_objective=meta_objectives.DEFAULT,
                         evaluation_period=None, evaluation_epochs=None):
  """The settings a resumed run must share (`training_state.check_settings`).

  The evaluation settings are given by one-machine runs only: there the
  evaluations draw from the instance stream training draws from.
  """
  # The swarm's options decide what its saved variables mean: a resumed run
  # checks them too (`_check_resumed_swarm`).
  swarm = dataclasses.asdict(swarm_unroll.SwarmConfig(
      num_particles=num_particles, **dict(swarm_options or {})))
  settings = {"problem": problem_name, "num_steps": num_steps,
              "unroll_length": unroll_length,
              "learning_rate": float(learning_rate),
              "second_derivatives": bool(second_derivatives), "seed": seed,
              "num_particles": num_particles, "swarm": swarm,
              "meta_objective": meta_objective}
  if evaluation_period is not None:
    settings.update(evaluation_period=evaluation_period,
                    evaluation_epochs=evaluation_epochs)
  return settings


def manifest_settings(problem_name, **settings):
  """What a saved optimizer's manifest records about its training.

  Args:
    problem_name: the problem it trains on.
    **settings: the run's settings (epochs, steps, seed...).

  Returns:
    `settings`, with the `--problem_module` that registered the problem
    (`util.problem_module`) as "problem_module" if one did: evaluating the
    optimizer needs that module again, and a registration may replace a
    built-in name.
  """
  module = util.problem_module(problem_name)
  return dict(settings, **({"problem_module": module} if module else {}))


def _lock_save_path(stack, save_path):
  """Holds `save_path`'s lock until `stack` closes (`files.directory_lock`).

  A directory the lock creates and the run leaves holding nothing but the
  lock (it was refused before it kept anything) is removed on the way out,
  still under the lock.

  Raises:
    files.DirectoryBusyError: if another run holds it.
  """
  created = not os.path.exists(save_path)
  stack.enter_context(files.directory_lock(
      save_path, " ".join(sys.argv), training_state.LOCK_NAME))
  if created:
    stack.callback(files.remove_if_only, save_path, training_state.LOCK_NAME)


def _check_resume(save_path, resume, overwrite):
  """Refuses to start over a training state, or to resume from none."""
  if resume and overwrite:
    raise ValueError("--resume continues the training state in --save_path "
                     "and --overwrite starts over; pass one of them.")
  if resume and save_path is None:
    raise ValueError("--resume needs the --save_path of the run to "
                     "continue.")
  if save_path is None or resume or overwrite:
    return
  if training_state.exists(save_path):
    raise ValueError(
        "{} holds the training state of an earlier run ({}); pass --resume "
        "to continue it or --overwrite to start over.".format(
            save_path, training_state.path(save_path)))


def _check_resumed_swarm(save_path, saved, options, saved_manifest):
  """Refuses to resume with swarm options other than the run's.

  Args:
    save_path: the save directory.
    saved: the swarm options the training state records, or None (a state
      written before it recorded them: the manifest's are checked instead).
    options: this run's, as `dataclasses.asdict` of its `SwarmConfig`.
    saved_manifest: the manifest in `save_path`, or None.

  Raises:
    training_state.TrainingStateError: naming the first differing option.
  """
  where = training_state.path(save_path)
  if saved is None:
    if saved_manifest is None:
      logging.warning("%s does not record the swarm options and no manifest "
                      "is beside it: they are not checked.", where)
      return
    saved, where = saved_manifest["swarm"], manifest.path_in(save_path)
  training_state.check_swarm_options(saved, options, where)


def _check_resumed_nets(save_path, problem_name, net_config,
                        saved_manifest):
  """Refuses to resume with other nets than the saved ones.

  A problem's name can build another net than it did when the run started
  (the task family's default net became `AdaptiveStepLSTM`, then took the
  hypergradient option), and the state's variables would then not fit, or
  fit a net that steps differently; this says so in one line.

  Args:
    save_path: the save directory.
    problem_name: this run's problem.
    net_config: this run's `{net_id: factory config}`.
    saved_manifest: the manifest in `save_path`, or None.

  Raises:
    training_state.TrainingStateError: naming the net and both versions.
  """
  if saved_manifest is None:
    return
  for net_id, config in sorted(net_config.items()):
    saved = saved_manifest["nets"].get(net_id)
    if saved is None:
      continue
    saved = manifest.net_entry(saved)
    wanted = manifest.net_entry(config)
    if saved != wanted:
      saved_text, wanted_text = _net_texts(saved, wanted)
      raise training_state.TrainingStateError(
          "{} holds net {!r} as {}, but --problem={} now builds {}, so the "
          "run cannot be resumed; evaluate the saved optimizer as it is "
          "(evaluate.py --path reads its manifest) or start over with "
          "--overwrite.".format(manifest.path_in(save_path), net_id,
                                saved_text, problem_name, wanted_text))


def _net_texts(first, second):
  """Two differing manifest net entries, as short as tells them apart.

  Returns:
    Two strings: the classes when they differ, else each class with the
    options whose values differ (`AdaptiveStepLSTM(hyper_rate=0.3)`; an
    option one side does not set is left out).
  """
  if first["net"] != second["net"]:
    return first["net"], second["net"]
  keys = sorted(set(first["net_options"]) | set(second["net_options"]))
  differing = [key for key in keys if first["net_options"].get(key)
               != second["net_options"].get(key)]
  return tuple("{}({})".format(entry["net"], ", ".join(
      "{}={!r}".format(key, entry["net_options"][key])
      for key in differing if key in entry["net_options"]))
               for entry in (first, second))


def _resumed_state(save_path, resume, settings, net_config):
  """The training state to resume from (None when not resuming).

  Raises:
    training_state.TrainingStateError: if there is none, or it was written
      with other trajectory `settings`, swarm options or net classes.
  """
  if not resume:
    return None
  saved_state = training_state.read(save_path)
  saved_settings = saved_state[1].get("settings", {})
  compared = dict(saved_settings)
  if util.same_problem(saved_settings.get("problem"), settings["problem"]):
    # Another spelling of the same problem and options.
    compared["problem"] = settings["problem"]
  training_state.check_settings(compared, settings,
                                training_state.path(save_path))
  info = saved_state[1]
  # The manifest is this run's once it has saved. Before that, a manifest
  # there is an earlier run's, which a run started with --overwrite
  # replaces only at its first save: checked against it, a run killed
  # before that save could not be resumed.
  ours = info.get("saved") or info.get("saved_on_stop") is not None
  # Not `whole`: a save cut short is what a resumed run's next save mends.
  saved_manifest = manifest.read(save_path, whole=False) if ours else None
  _check_resumed_swarm(save_path, saved_settings.get("swarm"),
                       settings["swarm"], saved_manifest)
  _check_resumed_nets(save_path, settings["problem"], net_config,
                      saved_manifest)
  return saved_state


def train(problem_name, save_path=None, num_epochs=10000, log_period=100,
          evaluation_period=1000, evaluation_epochs=20, num_steps=100,
          unroll_length=20, learning_rate=0.001, second_derivatives=False,
          seed=None, num_particles=1, overwrite=False, data_dir=None,
          logdir=None, show_progress=True,
          checkpoint_period=DEFAULT_CHECKPOINT_PERIOD, resume=False,
          handle_signals=True, swarm_options=None, epoch_callback=None,
          meta_objective=meta_objectives.DEFAULT, recompute=False,
          stats_stream=None):
  """Meta-trains an optimizer and saves the best one by periodic evaluation.

  An evaluation also runs after the last epoch, so a short run saves too.
  With a `save_path`, the run holds the directory's lock (one writer at a
  time) and keeps a training state there (see training_state.py) at the
  start, every `checkpoint_period` epochs, at the end and when stopped by
  SIGINT/SIGTERM; `resume=True` continues from it. A seeded run that is
  resumed follows the uninterrupted run's trajectory.

  Args:
    problem_name: a name `util.get_config` knows.
    save_path: directory for the best optimizer, or None.
    num_epochs: training epochs (in all, counting those resumed from).
    log_period: epochs between logged statistics.
    evaluation_period: epochs between evaluations.
    evaluation_epochs: epochs per evaluation.
    num_steps: optimizer steps per epoch.
    unroll_length: steps per unroll; must divide `num_steps`.
    learning_rate: meta-optimizer learning rate.
    second_derivatives: backpropagate through optimizee gradients.
    seed: graph-level seed.
    num_particles: LOIS swarm size (1: plain L2L).
    overwrite: allow replacing an optimizer (and a training state) already in
      `save_path`.
    data_dir: directory of mnist/cifar files.
    logdir: directory for TensorBoard summaries (meta-loss, final loss and
      seconds per epoch, evaluation loss), or None.
    show_progress: show a progress readout.
    checkpoint_period: epochs between training states.
    resume: continue from the training state in `save_path`.
    handle_signals: on SIGINT/SIGTERM, finish the epoch, keep the state and
      return (a second signal stops at once).
    swarm_options: other `SwarmConfig` options of the swarm (objective,
      per_instance, ...), e.g. {"objective": "best_so_far"}.
    epoch_callback: None, or a function called after every training epoch
      as `epoch_callback(epoch, seconds, final_loss)` (epochs from 1).
    meta_objective: what the meta-loss sums over an unroll, one of
      `l2l.core.meta_objective.OBJECTIVES`: "sum" (the losses, as DeepMind)
      or "log" (their logs). The swarm takes "sum" and its own
      `swarm_options` objective.
    recompute: `MetaOptimizer.meta_loss`'s: recompute the LSTM's gates in
      the backward pass (less memory, more time, the same training).
    stats_stream: where the statistics blocks ("Epoch 100", "EVALUATION")
      and the "Saving meta-optimizer to" lines go: a text stream (train.py
      passes stdout, as DeepMind's printed them), or None to log them.

  Returns:
    A `TrainingResult`.

  Raises:
    ValueError: for bad settings.
    files.DirectoryBusyError: if another run holds `save_path`.
    training_state.TrainingStateError: if the state to resume from is
      missing or does not fit.
  """
  if swarm_options and "num_particles" in swarm_options:
    raise ValueError("swarm_options must not hold num_particles; pass "
                     "num_particles={} instead.".format(
                         swarm_options["num_particles"]))
  for name, value in (("num_epochs", num_epochs), ("log_period", log_period),
                      ("evaluation_period", evaluation_period),
                      ("evaluation_epochs", evaluation_epochs),
                      ("num_steps", num_steps),
                      ("unroll_length", unroll_length),
                      ("checkpoint_period", checkpoint_period),
                      ("num_particles", num_particles)):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError("{} must be an integer >= 1, got {!r}.".format(
          name, value))
  if num_steps % unroll_length:
    raise ValueError(
        "num_steps ({}) must be a multiple of unroll_length ({}).".format(
            num_steps, unroll_length))
  meta_objectives.check(meta_objective)
  with contextlib.ExitStack() as stack:
    if save_path is not None:
      if os.path.exists(save_path) and not os.path.isdir(save_path):
        raise ValueError("--save_path {} exists and is not a directory."
                         .format(save_path))
      # The lock first: a run in progress is what a second one must hear
      # about, not the state it keeps.
      _lock_save_path(stack, save_path)
    _check_resume(save_path, resume, overwrite)
    return _train_locked(
        problem_name, save_path, num_epochs, log_period, evaluation_period,
        evaluation_epochs, num_steps, unroll_length, learning_rate,
        second_derivatives, seed, num_particles, overwrite or resume,
        data_dir, logdir, show_progress, checkpoint_period, resume,
        handle_signals, swarm_options, epoch_callback, meta_objective,
        recompute, progress.Report(stats_stream, num_particles))


def _train_locked(problem_name, save_path, num_epochs, log_period,
                  evaluation_period, evaluation_epochs, num_steps,
                  unroll_length, learning_rate, second_derivatives, seed,
                  num_particles, overwrite, data_dir, logdir, show_progress,
                  checkpoint_period, resume, handle_signals, swarm_options,
                  epoch_callback, meta_objective, recompute, report):
  """`train`'s work, with `save_path` (if any) locked."""
  num_unrolls = num_steps // unroll_length
  settings = _trajectory_settings(problem_name, num_steps, unroll_length,
                                  learning_rate, second_derivatives, seed,
                                  num_particles, swarm_options,
                                  meta_objective, evaluation_period,
                                  evaluation_epochs)
  saved_settings = manifest_settings(
      problem_name, num_epochs=num_epochs, num_steps=num_steps,
      unroll_length=unroll_length, learning_rate=learning_rate,
      second_derivatives=second_derivatives, seed=seed,
      num_particles=num_particles, evaluation_period=evaluation_period,
      evaluation_epochs=evaluation_epochs, meta_objective=meta_objective)
  graph = tf.Graph()
  with graph.as_default():
    if seed is not None:
      tf.compat.v1.set_random_seed(seed)
    problem, net_config, net_assignments = util.get_config(
        problem_name, data_dir=data_dir)
    saved_state = _resumed_state(save_path, resume, settings, net_config)
    check_save_path(save_path, _saved_ids(net_config, num_particles,
                                          swarm_options), overwrite)
    optimizer = meta.MetaOptimizer(num_particles=num_particles,
                                   **dict(swarm_options or {}), **net_config)
    step, update, reset, cost_op, _ = optimizer.meta_minimize(
        problem, unroll_length, learning_rate=learning_rate,
        net_assignments=net_assignments,
        second_derivatives=second_derivatives, objective=meta_objective,
        recompute=recompute)
    # Refused now, not at the first save after training.
    optimizer.manifest()
    # The unroll's meta-loss under `meta_objective`, less the swarm's
    # entropy term.
    fetches = (cost_op, meta_objectives.meta_objective(optimizer.fx_history,
                                                       meta_objective))
    # Read only when training diverges, to tell whose fault it was.
    start_loss = optimizer.fx_history[0]
    init = tf.compat.v1.global_variables_initializer()
    state_variables = (training_state.Variables(
        tf.compat.v1.global_variables()) if save_path is not None else None)
    unreplayed = training_state.unreplayed_random_ops(graph, [init, reset])
    # FileWriter refuses eager mode, so it is made inside the graph.
    summaries = _Summaries(logdir)
    graph.finalize()

  run = _Run(save_path, settings, state_variables)
  with tf.compat.v1.Session(graph=graph) as sess, \
      _StopSignals(handle_signals) as signals:

    def evaluate():
      """Evaluates the current optimizer; returns its mean final loss."""
      eval_time, eval_cost, _ = _run_epochs(
          sess, fetches, [update], reset, num_unrolls, evaluation_epochs,
          problem)
      report.stats("EVALUATION", eval_cost, eval_time, evaluation_epochs)
      return eval_cost / evaluation_epochs

    def save(epoch, **notes):
      files.check_still_locked(save_path)
      report.saving(save_path)
      optimizer.save(sess, save_path, problem=problem_name,
                     training=dict(saved_settings, epochs_done=epoch,
                                   **notes))

    sess.run(init)
    if saved_state is not None:
      run.restore(sess, saved_state, reset, seed, unreplayed, problem,
                  stop_requested=lambda: signals.received)
      if run.epoch >= num_epochs:
        logging.warning(
            "The run in %s has done %d epochs, and num_epochs is %d: there is "
            "nothing left to train; give a larger num_epochs to continue it.",
            save_path, run.epoch, num_epochs)
    else:
      run.checkpoint(sess)
    total_time = 0.0
    total_cost = 0.0
    # Epochs behind the totals: fewer than log_period after a resume.
    logged_epochs = 0
    epochs = progress.bar(range(run.epoch, num_epochs),
                          "Training on " + problem_name,
                          enabled=show_progress)
    try:
      for e in epochs:
        seconds, cost, meta_loss = _run_epochs(
            sess, fetches, [update, step], reset, num_unrolls, 1, problem,
            vary_unrolls=True)
        run.resets += 1
        if epoch_callback is not None:
          epoch_callback(e + 1, seconds, cost)
        summaries.add(e + 1, meta_loss=meta_loss, final_loss=cost,
                      epoch_seconds=seconds)
        total_time += seconds
        total_cost += cost
        logged_epochs += 1
        if (e + 1) % log_period == 0:
          report.stats("Epoch {}".format(e + 1), total_cost, total_time,
                       logged_epochs)
          total_time = total_cost = 0.0
          logged_epochs = 0
        if (e + 1) % evaluation_period == 0 or e + 1 == num_epochs:
          evaluation = evaluate()
          run.resets += evaluation_epochs
          summaries.add(e + 1, evaluation_final_loss=evaluation)
          if evaluation < run.best_evaluation:
            run.best_evaluation = evaluation
            if save_path is not None:
              save(e + 1)
              run.saved = True
              run.saved_on_stop = None
        run.epoch = e + 1
        if signals.received:
          run.checkpoint(sess)
          run.interrupted = signals.received
          keep_an_optimizer(run, sess, evaluate, save)
          break
        if run.epoch % checkpoint_period == 0 or run.epoch == num_epochs:
          run.checkpoint(sess)
    except TrainingDiverged as error:
      run.diverged = True
      logging.error(
          "Training diverged (%s%s); stopped. The last good optimizer%s.",
          error, _broken_at_start(sess, reset, start_loss),
          (" is in " + save_path) if run.saved else " was never saved")
    except KeyboardInterrupt:
      # A second signal: the last training state stands.
      run.interrupted = signals.received or "SIGINT"
      run.epoch = run.checkpointed_epoch
    finally:
      summaries.close()
  return run.result()


def _broken_at_start(sess, reset, start_loss):
  """`scores.broken_at_start` of a fresh start's loss (the unroll is run,
  not its update), or "" if that cannot be run."""
  try:
    sess.run(reset)
    return scores.broken_at_start(sess.run(start_loss))
  except tf.errors.OpError:
    return ""


def keep_an_optimizer(run, sess, evaluate, save):
  """Leaves an optimizer to use in a stopped run's save path, if none is.

  A run stopped (SIGINT/SIGTERM) before its first evaluation has saved
  nothing; this evaluates the current optimizer and saves it, unless an
  earlier stop saved one that evaluated better. A second signal stops the
  evaluation at once (KeyboardInterrupt), leaving nothing new.

  What a resumed run does stays exactly what the uninterrupted run would:
  the evaluation's instance draws are not counted in the training state
  (so they are not replayed), and its result is kept apart from the best
  evaluation, so the resumed run's first evaluation saves over it as the
  uninterrupted run's would have saved.

  Args:
    run: the `_Run`, stopped, its state just kept.
    sess: the session.
    evaluate: `evaluate()` runs an evaluation, returns its mean final loss.
    save: `save(epoch, **notes)` saves the optimizer in `run.save_path`.
  """
  if run.save_path is None or run.saved:
    return
  logging.warning("Stopping: evaluating the optimizer of epoch %d, so that "
                  "%s holds one to use (signal again to stop at once).",
                  run.epoch, run.save_path)
  try:
    evaluation = evaluate()
  except TrainingDiverged as error:
    logging.warning("The optimizer of epoch %d diverged on its evaluation "
                    "(%s); it was not saved.", run.epoch, error)
    return
  earlier = run.saved_on_stop
  if earlier is not None and not evaluation < earlier["evaluation"]:
    logging.warning("The optimizer of epoch %d evaluated at %g, no better "
                    "than that of epoch %d (%g), which stays.", run.epoch,
                    evaluation, earlier["epoch"], earlier["evaluation"])
    return
  save(run.epoch, saved_on_stop=True)
  run.saved_on_stop = {"epoch": run.epoch, "evaluation": evaluation}
  run.checkpoint(sess)


class _Run:
  """The progress of one training run, and its training state on disk."""

  def __init__(self, save_path, settings, state_variables, cluster=None):
    """Starts at epoch 0.

    Args:
      save_path: the save directory, or None (nothing is kept).
      settings: the trajectory settings (`_trajectory_settings`).
      state_variables: a `training_state.Variables`, or None.
      cluster: for a cluster's chief, `{"workers": N, "sync_replicas":
        bool}`, recorded in the state; None on one machine.
    """
    self.save_path = save_path
    self.settings = settings
    self.state_variables = state_variables
    self.cluster = cluster
    self.epoch = 0
    self.checkpointed_epoch = 0
    self.resets = 0
    self.best_evaluation = math.inf
    self.saved = False
    # The optimizer `keep_an_optimizer` saved, while no evaluation has.
    self.saved_on_stop = None
    self.diverged = False
    self.interrupted = None

  def checkpoint(self, sess):
    """Writes the training state (if there is a save path)."""
    if self.save_path is None:
      return
    info = {"epoch": self.epoch, "resets": self.resets,
            "best_evaluation": (self.best_evaluation if
                                math.isfinite(self.best_evaluation) else None),
            "saved": self.saved, "settings": self.settings}
    if self.saved_on_stop is not None:
      info["saved_on_stop"] = self.saved_on_stop
    if self.cluster is not None:
      info["cluster"] = self.cluster
    info["lstm_steps"] = _lstm_steps(sess.graph)
    files.check_still_locked(self.save_path)
    training_state.write(self.save_path,
                         self.state_variables.read(sess), info)
    self.checkpointed_epoch = self.epoch

  def restore(self, sess, saved_state, reset, seed, unreplayed,
              problem=None, stop_requested=lambda: None):
    """Continues from a training state (`problem`: to replay its tasks).

    `stop_requested()` names a stop signal received during the replay of
    the instance draws (which may be long), or returns None; the replay
    then ends with KeyboardInterrupt(that name), before any training.
    """
    values, info = saved_state
    where = training_state.path(self.save_path)
    if info.get("cluster"):
      # Its workers drew with seeds of their own: there is nothing to replay.
      logging.info("The state was written by a cluster of %d workers; this "
                   "run draws its instances afresh.",
                   info["cluster"]["workers"])
    elif seed is not None:
      # A new session restarts every seeded random sequence: draw the
      # instances the run drew, so the next one is the one it would draw.
      logging.info("Replaying %d instance draws of the seeded run.",
                   info["resets"])
      for _ in range(info["resets"]):
        if stop_requested():
          raise KeyboardInterrupt(stop_requested())
        problems.draw_next_task(problem, sess)
        sess.run(reset)
      if unreplayed:
        logging.warning(
            "This problem also draws random numbers during the unroll (%s); "
            "the resumed run continues with fresh draws, so it will not "
            "repeat the uninterrupted run exactly.", ", ".join(unreplayed[:3]))
    _warn_if_steps_ran_otherwise(info.get("lstm_steps"),
                                 _lstm_steps(sess.graph))
    self.state_variables.restore(sess, values, where)
    self.restore_progress(info)

  def restore_progress(self, info):
    """Takes the epoch, instance draws and best evaluation of a state."""
    where = training_state.path(self.save_path)
    self.epoch = self.checkpointed_epoch = int(info["epoch"])
    # Instance draws replay only from one machine to one machine: a
    # cluster's workers draw with seeds of their own.
    self.resets = (int(info["resets"]) if self.cluster is None and
                   not info.get("cluster") else 0)
    best = info.get("best_evaluation")
    self.best_evaluation = math.inf if best is None else float(best)
    self.saved = bool(info.get("saved"))
    self.saved_on_stop = info.get("saved_on_stop")
    logging.info("Resuming from %s at epoch %d.", where, self.epoch)

  def result(self):
    return TrainingResult(
        best_evaluation=self.best_evaluation, epochs=self.epoch,
        saved=self.saved, diverged=self.diverged,
        interrupted=self.interrupted,
        state_path=(training_state.path(self.save_path)
                    if self.save_path is not None else None),
        saved_on_stop=self.saved_on_stop)


def _lstm_steps(graph):
  """How `graph` runs its LSTM stacks: "the native kernel" or "TensorFlow
  ops"."""
  return "the native kernel" if native.runs_in(graph) else "TensorFlow ops"


def _warn_if_steps_ran_otherwise(before, now):
  """Warns when a resumed run steps its LSTMs otherwise than the run did.

  The kernel and TensorFlow's ops agree to float32 rounding, not bit for
  bit, so the resumed run drifts from the uninterrupted one by a little
  (states written before this was recorded say nothing, and get nothing).

  Args:
    before: what the training state records, or None.
    now: `_lstm_steps` of this run's graph.
  """
  if before is not None and before != now:
    logging.warning(
        "The run's epochs so far stepped its LSTMs with %s; this process "
        "steps them with %s (%s=0 turns the kernel off, and it is not built "
        "without a compiler). The two agree to float32 rounding, so the "
        "resumed run will not repeat the uninterrupted one bit for bit.",
        before, now, native.ENV_VAR)


def _saved_ids(net_config, num_particles, swarm_options=None):
  ids = list(net_config)
  if num_particles > 1:
    ids.append(swarm_unroll.ATTENTION_ID)
    if swarm_unroll.SwarmConfig(num_particles=num_particles,
                                **dict(swarm_options or {})).gated:
      ids.append(swarm_unroll.GATE_ID)
  return ids


# The pieces of `train` that cluster training (distributed_training.py)
# shares.
run_epochs = _run_epochs
saved_ids = _saved_ids
Summaries = _Summaries
Run = _Run
StopSignals = _StopSignals
trajectory_settings = _trajectory_settings
lock_save_path = _lock_save_path
check_resume = _check_resume
resumed_state = _resumed_state
