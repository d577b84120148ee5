"""Meta-training replicated over the workers of a TensorFlow cluster.

Between-graph replication: every worker builds the whole meta-training graph,
with the meta-optimizer's parameters and Adam's slots on the ps tasks and its
own problem instances and unroll state at home (see cluster.py). Two modes:

- synchronous (default): `tf.compat.v1.train.SyncReplicasOptimizer` averages
  one meta-gradient from each of the N workers per meta-step, which is one
  Adam step on the mean of N unrolls' meta-gradients. Training lasts
  `ceil(num_epochs * unrolls per epoch / N)` meta-steps.
- asynchronous: every worker applies its own meta-steps to the shared
  parameters; training lasts `num_epochs * unrolls per epoch` meta-steps.

Either way `num_epochs` counts the epochs of all workers together. The chief
(worker 0) initialises the parameters, evaluates every `evaluation_period`
of those epochs and at the end, and saves the best optimizer; the other
workers only train.

Failures. A worker keeps nothing of its own that others need, so a worker
that dies corrupts nothing. In asynchronous mode the others go on. In
synchronous mode each meta-step waits for the missing worker's meta-gradient:
the others wait, and a worker that has waited `timeout` seconds for one
meta-step stops with an error that says so. A restarted worker (same flags)
finds the parameters initialised, draws fresh instances and rejoins the
current meta-step.

Training state. The chief keeps the training state of `training.train`
(training_state.py) in `save_path`, variable for variable the one a
one-machine run keeps (the cluster's `global_step` is left out), so either
resumes the other's run. With `resume`, a chief that finds the ps variables
uninitialised (a new cluster) assigns them the state's values and sets
`global_step` to the state's epochs, rounded down to a whole meta-step; one
that finds them initialised (only the chief died) keeps their newer values.
Either way it takes the state's best evaluation and so never saves a worse
optimizer over a better one; it keeps a state after every save for the same
reason. Instance draws are not replayed: the workers draw with seeds of
their own, so a resumed cluster run continues the epoch count, parameters,
slots and best evaluation exactly but not the instances the uninterrupted
run would have drawn.
"""

import collections
import contextlib
import json
import math
import os
import threading
import time

from absl import logging
import numpy as np
import tensorflow as tf

from l2l import files
from l2l.checkpoint import manifest
from l2l.experiment import cluster as cluster_lib
from l2l.experiment import progress
from l2l.experiment import training
from l2l.experiment import training_state
import meta
import problems
import util

# How long the chief waits, at the end, for the other workers to report
# (they end with the same meta-step, so a live one reports at once).
_FINISH_GRACE_SECONDS = 10.0

Replica = collections.namedtuple(
    "Replica", "optimizer, fetches, update, step, reset, position, "
    "global_step, gradients, "
    "parameter_variables, init_parameters, init_local, not_ready, "
    "aggregate, init_sync, init_tokens, close_tokens, shared_settings")
Replica.__doc__ = """One worker's meta-training graph.

optimizer: the `meta.MetaOptimizer`.
fetches: `(final loss, summed optimizee losses)` of one unroll.
update: ops that carry the unroll on (`MetaLoss.update`).
step: the meta-step op (applies or, in sync mode, contributes a
  meta-gradient).
reset: ops that draw a fresh instance.
position: run with `step`, the meta-steps applied when it returned.
global_step: the meta-steps applied.
gradients: `[(meta-gradient, parameter)]` of this worker's unroll.
parameter_variables: every variable on the ps tasks.
init_parameters: initialises them (the chief, once per cluster).
init_local: initialises this worker's own variables.
not_ready: names of the ps variables not initialised yet.
aggregate: sync mode: the op the chief runs over and over, which waits for
  N meta-gradients, applies their mean and hands out the next tokens; None
  in async mode.
init_sync: sync mode: initialises this worker's step (the chief: also the
  accumulators); a no-op in async mode.
init_tokens: sync mode: the first meta-step's tokens (run once, by the
  chief); a no-op in async mode.
close_tokens: sync mode: closes the token queue, releasing every worker
  that waits for a meta-step; a no-op in async mode.
shared_settings: the `SharedSettings` every task compares with the
  chief's, or None.
"""


class SharedSettings:
  """The chief's training flags, kept on the first ps task, which every
  task compares its own with when it joins.

  A task started with other flags (another learning rate, unroll or
  problem) would train the shared parameters its own way, unseen by the
  manifest the chief writes. The value lives outside every collection, so
  it is no parameter and no part of the training state.
  """

  def __init__(self, settings):
    """Builds the value in the current graph.

    Args:
      settings: this task's settings, a JSON-safe dict (flag names to
        values).
    """
    text = json.dumps(settings, sort_keys=True)
    # As the chief's will read back: JSON's types (lists for tuples).
    self._settings = json.loads(text)
    with tf.compat.v1.device("/job:{}/task:0".format(cluster_lib.PS_JOB)):
      variable = tf.compat.v1.Variable(text, trainable=False, collections=[],
                                       name="cluster_settings")
    self.initialise = variable.initializer
    self._read = variable.read_value()

  def check(self, sess):
    """Raises RuntimeError if the chief's settings differ from this task's.

    Args:
      sess: a session on the cluster, the chief's settings set.
    """
    chiefs = json.loads(sess.run(self._read).decode("utf-8"))
    for name in sorted(set(chiefs) | set(self._settings)):
      if chiefs.get(name) != self._settings.get(name):
        raise RuntimeError(
            "started with --{}={}, but the cluster's chief has --{}={}: "
            "every task of a cluster needs the chief's training flags (only "
            "--job_name and --task_index differ).".format(
                name, self._settings.get(name), name, chiefs.get(name)))


def _parameter_names(make_optimizer, make_problem, unroll_length,
                     meta_loss_args):
  """Op names of the meta-optimizer's variables, from a throwaway graph.

  The device function must know them before `meta_loss` creates them.
  """
  with tf.Graph().as_default():
    optimizer = make_optimizer()
    optimizer.meta_loss(make_problem(), unroll_length, **meta_loss_args)
    return [v.op.name for v in optimizer.variables()]


def build_replica(cluster, make_optimizer, problem, unroll_length,
                  learning_rate, sync_replicas, seed=None, make_problem=None,
                  settings=None, **meta_loss_args):
  """Builds a worker's graph in the current default graph.

  Args:
    cluster: the worker's `cluster.Cluster`.
    make_optimizer: returns a fresh `meta.MetaOptimizer`.
    problem: the problem's `build` function.
    unroll_length: steps per unroll.
    learning_rate: Adam's learning rate for the meta-steps.
    sync_replicas: average the workers' meta-gradients in each meta-step.
    seed: the run's seed (each worker derives its own), or None.
    make_problem: makes the problem afresh in the current graph, for the
      throwaway build that names the variables; needed when `problem`
      holds variables of its own graph (the task family). None: `problem`
      serves there too.
    settings: this task's training settings (JSON-safe), compared with the
      chief's when the session opens (`SharedSettings`); None compares
      nothing.
    **meta_loss_args: passed to `MetaOptimizer.meta_loss`.

  Returns:
    A `Replica`.

  Raises:
    RuntimeError: if the optimizer's variables came out named differently
      from the throwaway build (the placement would be wrong).
  """
  names = _parameter_names(make_optimizer, make_problem or (lambda: problem),
                           unroll_length, meta_loss_args)
  own_seed = cluster_lib.worker_seed(seed, cluster.rank)
  if own_seed is not None:
    tf.compat.v1.set_random_seed(own_seed)
  with tf.compat.v1.device(cluster_lib.device_function(cluster,
                                             names + ["global_step"])):
    global_step = tf.compat.v1.train.get_or_create_global_step()
    optimizer = make_optimizer()
    with _cached_on(cluster.device, names):
      info = optimizer.meta_loss(problem, unroll_length, **meta_loss_args)
    built = [v.op.name for v in optimizer.variables()]
    if sorted(built) != sorted(names):
      raise RuntimeError("The meta-optimizer's variables are named {} here "
                         "but {} in the throwaway graph.".format(built, names))
    adam = tf.compat.v1.train.AdamOptimizer(learning_rate)
    sync_optimizer = None
    if sync_replicas:
      sync_optimizer = tf.compat.v1.train.SyncReplicasOptimizer(
          adam, replicas_to_aggregate=cluster.num_workers,
          total_num_replicas=cluster.num_workers)
      adam = sync_optimizer
    gradients = adam.compute_gradients(
        info.loss, var_list=optimizer.trainable_variables())
    optimizer.warn_of_untrained_parameters()
    step = adam.apply_gradients(gradients, global_step=global_step)
    if sync_replicas:
      # The step's value is its token: the meta-steps applied when it was
      # handed out.
      position = step
    else:
      with tf.control_dependencies([step]):
        position = global_step.read_value()
    fetches = (info.fx, tf.reduce_sum(optimizer.fx_history))
  parameter_variables = [v for v in tf.compat.v1.global_variables()
                         if _on_ps(v)]
  local_variables = [v for v in (tf.compat.v1.global_variables() +
                                 tf.compat.v1.local_variables())
                     if not _on_ps(v)]
  not_ready = tf.compat.v1.report_uninitialized_variables(parameter_variables)
  # Graphs built only to be inspected never run it.
  not_ready.mark_used()
  return Replica(
      optimizer=optimizer, fetches=fetches, update=info.update, step=step,
      reset=info.reset, position=position, global_step=global_step,
      gradients=gradients,
      parameter_variables=parameter_variables,
      init_parameters=tf.compat.v1.variables_initializer(parameter_variables),
      init_local=tf.compat.v1.variables_initializer(local_variables),
      not_ready=not_ready,
      shared_settings=None if settings is None else SharedSettings(settings),
      **_sync_ops(sync_optimizer, cluster.is_chief))


def _sync_ops(sync_optimizer, is_chief):
  if sync_optimizer is None:
    return dict(aggregate=None, init_sync=tf.no_op(),
                init_tokens=tf.no_op(), close_tokens=tf.no_op())
  queue_runner = sync_optimizer.get_chief_queue_runner()
  # Its readiness check covers every global variable, this worker's own
  # too, which the chief never initialises; `worker_session` checks the ps
  # variables instead.
  sync_optimizer.ready_for_local_init_op.mark_used()
  return dict(
      aggregate=queue_runner.enqueue_ops[0],
      init_sync=(sync_optimizer.chief_init_op if is_chief else
                 sync_optimizer.local_step_init_op),
      init_tokens=sync_optimizer.get_init_tokens_op(),
      close_tokens=queue_runner.queue.close(cancel_pending_enqueues=True))


def _cached_on(device, names):
  """Reads the variables named `names` once per session run, on `device`.

  The unroll's loop uses the optimizer's parameters at every step; without
  a caching device each step would fetch them from the ps task again. With
  one, a run (one unroll and its meta-step) fetches them once, so the whole
  unroll sees the same parameters.
  """
  names = frozenset(names)

  def creator(next_creator, **kwargs):
    scope = tf.compat.v1.get_default_graph().get_name_scope()
    name = "/".join(part for part in (scope, kwargs.get("name")) if part)
    if name in names:
      kwargs["caching_device"] = device
    return next_creator(**kwargs)
  return tf.variable_creator_scope(creator)


def _on_ps(variable):
  return tf.DeviceSpec.from_string(variable.device).job == cluster_lib.PS_JOB


def _wait_until_ready(sess, replica, timeout):
  """Waits for the chief to initialise the ps variables."""
  deadline = time.monotonic() + timeout
  while True:
    missing = sess.run(replica.not_ready)
    if not len(missing):  # pylint: disable=g-explicit-length-test
      return
    if time.monotonic() > deadline:
      raise TimeoutError(
          "The meta-optimizer's parameters were not initialised within {:.0f} "
          "s (still missing: {}); is the chief (worker 0) running?".format(
              timeout, ", ".join(m.decode() for m in missing[:3])))
    time.sleep(1.0)


@contextlib.contextmanager
def worker_session(cluster, server, replica, timeout, initialise=None):
  """A session on this worker's server, ready for training.

  The chief initialises the ps variables unless a previous chief did (it then
  rejoins) and, in sync mode, runs the token queue; other workers wait for
  the parameters. Every worker initialises its own variables.

  Args:
    cluster: the worker's `cluster.Cluster`.
    server: its running `tf.distribute.Server`.
    replica: its `Replica`, built in the graph that is default here.
    timeout: seconds to wait for the parameters.
    initialise: None, or the chief's `initialise(sess)` that gives every ps
      variable its value instead of its initializer (a resumed run's),
      `global_step` last: the other workers start once that is set.

  Yields:
    The session.
  """
  deadline = time.monotonic() + timeout
  # The first run waits until the ps tasks are up.
  sess = tf.compat.v1.Session(server.target,
                              config=cluster_lib.session_config(cluster))
  stopping = threading.Event()
  try:
    if cluster.is_chief:
      if len(sess.run(replica.not_ready)):  # pylint: disable=g-explicit-length-test
        if replica.shared_settings is not None:
          # Before the parameters: a worker joins once they are set.
          sess.run(replica.shared_settings.initialise)
        if initialise is None:
          sess.run(replica.init_parameters)
        else:
          initialise(sess)
        fresh = True
      else:
        logging.info("The parameters are already initialised: the chief "
                     "rejoins a running cluster.")
        fresh = False
      sess.run([replica.init_local, replica.init_sync])
      if fresh:
        sess.run(replica.init_tokens)
      if replica.aggregate is not None:
        threading.Thread(target=_aggregate, name="meta_step_aggregation",
                         args=(sess, replica.aggregate, stopping),
                         daemon=True).start()
    else:
      _wait_until_ready(sess, replica, max(0.0, deadline - time.monotonic()))
      sess.run([replica.init_local, replica.init_sync])
    if replica.shared_settings is not None:
      replica.shared_settings.check(sess)
    yield sess
  finally:
    stopping.set()
    _close(sess)


# How long a session's close may take before it is left behind.
_CLOSE_SECONDS = 10.0


def _close(sess):
  """Closes `sess`, unless that blocks: closing a session whose ps tasks
  died waits on them forever, and the task would then never exit (nor
  free the save path's lock). A close still under way after
  `_CLOSE_SECONDS` is left to a daemon thread."""
  closing = threading.Thread(target=sess.close, name="session_close",
                             daemon=True)
  closing.start()
  closing.join(_CLOSE_SECONDS)
  if closing.is_alive():
    logging.warning("The session did not close within %.0f s (its ps tasks "
                    "are gone); left behind.", _CLOSE_SECONDS)


def _aggregate(sess, aggregate, stopping):
  """The chief's aggregation loop: one synchronous meta-step per run.

  It is the sync optimizer's queue-runner op (wait for N meta-gradients,
  apply their mean, hand out the next tokens), run until the session closes.
  """
  while not stopping.is_set():
    try:
      sess.run(aggregate)
    except tf.errors.OpError as error:
      if not stopping.is_set():
        logging.error("The meta-step aggregation stopped: %s",
                      cluster_lib.error_reason(error))
      return


class _Finished(Exception):
  """The cluster has run all its meta-steps."""


class _Interrupted(Exception):
  """The chief was asked to stop (SIGINT/SIGTERM) and kept its state."""


_Periods = collections.namedtuple(
    "_Periods", "evaluation, evaluation_epochs, checkpoint")


class _Schedule:
  """Converts between global meta-steps and epochs of all workers."""

  def __init__(self, num_epochs, num_unrolls, unrolls_per_step):
    self.num_unrolls = num_unrolls
    self.unrolls_per_step = unrolls_per_step
    self.total_steps = int(math.ceil(num_epochs * num_unrolls /
                                     unrolls_per_step))

  def epochs(self, position):
    return position * self.unrolls_per_step // self.num_unrolls

  def position(self, epochs):
    """The meta-steps of `epochs` epochs, rounded down to a whole step."""
    return epochs * self.num_unrolls // self.unrolls_per_step


def _train_epoch(sess, replica, schedule, options, problem=None):
  """Draws an instance and runs one epoch of meta-steps.

  Args:
    sess: the worker's session.
    replica: its `Replica`.
    schedule: the `_Schedule`.
    options: the `RunOptions` of every meta-step.
    problem: the problem's `build`; one that draws a task per epoch (the
      task family) draws it here, and may set the epoch's unrolls.

  Returns:
    `(seconds, final loss, summed losses, position reached)`.

  Raises:
    _Finished: (after the meta-step) when the cluster has run its last one.
    training.TrainingDiverged: for a loss that is not finite.
  """
  start = time.monotonic()
  problems.draw_next_task(problem, sess)
  sess.run(replica.reset)
  for _ in range(problems.epoch_unrolls(problem, schedule.num_unrolls)):
    (cost, losses), position, _ = sess.run(
        [replica.fetches, replica.position, replica.update], options=options)
    cost = float(np.mean(cost))
    if not (math.isfinite(cost) and math.isfinite(losses)):
      raise training.TrainingDiverged(
          "the optimizee loss became {}".format(cost))
    if position >= schedule.total_steps:
      raise _Finished(position)
  return time.monotonic() - start, cost, float(losses), int(position)


def train(cluster, problem_name, save_path=None, num_epochs=10000,
          log_period=100, evaluation_period=1000, evaluation_epochs=20,
          num_steps=100, unroll_length=20, learning_rate=0.001,
          second_derivatives=False, seed=None, num_particles=1,
          overwrite=False, data_dir=None, logdir=None, sync_replicas=True,
          timeout=600.0, swarm_options=None,
          checkpoint_period=training.DEFAULT_CHECKPOINT_PERIOD, resume=False,
          handle_signals=True, stats_stream=None):
  """Runs this task's part of a cluster meta-training.

  A ps task serves until the chief has finished. A worker trains; the chief
  also evaluates, saves the best optimizer and keeps the training state in
  `save_path`, as `training.train` does: the same file, so either can resume
  the other's run.

  Args:
    cluster: this task's `cluster.Cluster`.
    problem_name: a name `util.get_config` knows.
    save_path: directory for the best optimizer and the training state (the
      chief writes them).
    num_epochs: training epochs, of all workers together.
    log_period: this worker's epochs between logged statistics.
    evaluation_period: epochs (of all workers) between evaluations.
    evaluation_epochs: epochs per evaluation.
    num_steps: optimizer steps per epoch.
    unroll_length: steps per unroll; must divide `num_steps`.
    learning_rate: meta-optimizer learning rate.
    second_derivatives: backpropagate through optimizee gradients.
    seed: base seed; worker r uses `cluster.worker_seed(seed, r)`.
    num_particles: LOIS swarm size (1: plain L2L).
    overwrite: allow the chief to replace an optimizer (and a training
      state) in `save_path`.
    data_dir: directory of mnist/cifar files.
    logdir: TensorBoard directory (the chief's summaries), or None.
    sync_replicas: synchronous (True) or asynchronous meta-steps.
    timeout: seconds to wait for the parameters at start, for one meta-step,
      and (the chief) for the other workers at the end.
    swarm_options: other `SwarmConfig` options of the swarm, as
      `training.train` takes them.
    checkpoint_period: epochs (of all workers) between training states; the
      chief also keeps one at the start, after every save, at the end and
      when stopped by SIGINT/SIGTERM.
    resume: the chief continues the run whose training state is in
      `save_path` (written by a cluster or by one machine); other workers
      ignore it.
    handle_signals: the chief, on SIGINT/SIGTERM, finishes its epoch, keeps
      the state and ends the cluster's run (a second signal stops at once).
    stats_stream: where this task's statistics blocks (and the chief's
      "Saving meta-optimizer to" lines) go, as `training.train`'s.

  Returns:
    The chief: a `training.TrainingResult`; other workers and ps tasks:
    None.

  Raises:
    ValueError: for bad settings.
    files.DirectoryBusyError: if another run holds `save_path`.
    training_state.TrainingStateError: if the state to resume from is
      missing or does not fit.
    RuntimeError: when a synchronous meta-step waited `timeout` seconds.
  """
  if num_steps % unroll_length:
    raise ValueError(
        "num_steps ({}) must be a multiple of unroll_length ({}).".format(
            num_steps, unroll_length))
  if cluster.is_ps:
    cluster_lib.serve(cluster)
    return None
  graph = tf.Graph()
  with graph.as_default():
    own_seed = cluster_lib.worker_seed(seed, cluster.rank)
    if own_seed is not None:
      tf.compat.v1.set_random_seed(own_seed)
    # In the graph it trains in: the task family makes its task variables
    # there, and seeds its task draws with the worker's own seed.
    problem, net_config, net_assignments = util.get_config(
        problem_name, data_dir=data_dir)
  trajectory = training.trajectory_settings(
      problem_name, num_steps, unroll_length, learning_rate,
      second_derivatives, seed, num_particles, swarm_options)
  report = progress.Report(stats_stream, num_particles)
  with contextlib.ExitStack() as held:
    saved_state = None
    if cluster.is_chief:
      if save_path is not None:
        # The chief is the save directory's one writer, as a one-machine
        # run.
        training.lock_save_path(held, save_path)
      training.check_resume(save_path, resume, overwrite)
      saved_state = training.resumed_state(save_path, resume, trajectory,
                                           net_config)
      training.check_save_path(
          save_path, training.saved_ids(net_config, num_particles,
                                        swarm_options), overwrite or resume)
    server = cluster_lib.start_server(cluster)
    with graph.as_default():
      replica = build_replica(
          cluster, lambda: meta.MetaOptimizer(
              num_particles=num_particles, **dict(swarm_options or {}),
              **net_config),
          problem, unroll_length, learning_rate, sync_replicas, seed=seed,
          make_problem=lambda: util.get_config(problem_name,
                                               data_dir=data_dir)[0],
          net_assignments=net_assignments,
          second_derivatives=second_derivatives,
          settings=manifest.json_safe(dict(
              trajectory, num_epochs=num_epochs,
              sync_replicas=sync_replicas)))
      schedule = _Schedule(num_epochs, num_steps // unroll_length,
                           cluster.num_workers if sync_replicas else 1)
      ending = _Ending(cluster, replica.close_tokens, replica.global_step,
                       schedule.total_steps)
      summaries = training.Summaries(logdir if cluster.is_chief else None)
      kept = (_KeptState(replica, save_path) if cluster.is_chief and
              save_path is not None else None)
      graph.finalize()
    initialise = None
    if saved_state is not None:
      initialise = kept.initialiser(saved_state, schedule)
    logging.info("Worker %d of %d (%s mode): training until meta-step %d.",
                 cluster.rank, cluster.num_workers,
                 "synchronous" if sync_replicas else "asynchronous",
                 schedule.total_steps)
    with graph.as_default(), worker_session(
        cluster, server, replica, timeout, initialise) as sess, \
        training.StopSignals(handle_signals and cluster.is_chief) as signals:
      chief = None
      if cluster.is_chief:
        # What the saved manifest records about this training.
        workers = {"workers": cluster.num_workers,
                   "sync_replicas": sync_replicas}
        settings = training.manifest_settings(
            problem_name, num_epochs=num_epochs, num_steps=num_steps,
            unroll_length=unroll_length, learning_rate=learning_rate,
            second_derivatives=second_derivatives, seed=seed,
            num_particles=num_particles, evaluation_period=evaluation_period,
            evaluation_epochs=evaluation_epochs,
            cluster=dict(workers, ps_tasks=cluster.num_ps))
        run = training.Run(save_path, trajectory,
                           None if kept is None else kept.variables,
                           cluster=workers)
        if saved_state is not None:
          run.restore_progress(saved_state[1])
        run.epoch = schedule.epochs(int(sess.run(replica.global_step)))
        chief = _Chief(sess, replica, schedule, summaries, run, signals,
                       (problem_name, settings),
                       _Periods(evaluation_period, evaluation_epochs,
                                checkpoint_period), report)
        if saved_state is None:
          run.checkpoint(sess)
      interrupted = False
      try:
        _train_worker(sess, replica, schedule, log_period, timeout, chief,
                      report, problem)
        if chief is not None:
          ending.wait_for_workers(sess)
          _wait_until_settled(sess, replica.global_step)
          chief.evaluate(final=True)
          run.checkpoint(sess)
      except _Interrupted:
        interrupted = True
      except KeyboardInterrupt:
        if chief is None:
          raise
        # A second signal: the last training state stands.
        interrupted = True
        run.interrupted = signals.received or "SIGINT"
        run.epoch = run.checkpointed_epoch
      finally:
        summaries.close()
        ending.finish(sess, early=interrupted)
    return None if chief is None else run.result()


class _KeptState:
  """The chief's training state: every variable but the cluster's counter.

  Leaving out `global_step` (the cluster's meta-steps) makes the state the
  one a one-machine run of the same problem keeps, variable for variable.
  """

  def __init__(self, replica, save_path):
    self.save_path = save_path
    counter = replica.global_step.op.name
    self.variables = training_state.Variables(
        [v for v in tf.compat.v1.global_variables()
         if v.op.name != counter])
    self._position = tf.compat.v1.placeholder(tf.int64, [],
                                              name="resumed_meta_steps")
    self._set_position = replica.global_step.assign(self._position)

  def initialiser(self, saved_state, schedule):
    """The `worker_session` initialiser that restores `saved_state`.

    Raises:
      training_state.TrainingStateError: at once, if the state does not fit
        this graph.
    """
    values, info = saved_state
    where = training_state.path(self.save_path)
    self.variables.check(values, where)
    position = schedule.position(int(info["epoch"]))

    def initialise(sess):
      self.variables.restore(sess, values, where)
      sess.run(self._set_position, {self._position: position})
      logging.info("Restored the parameters and slots of %s; the cluster "
                   "starts at meta-step %d.", where, position)
    return initialise


def _wait_until_settled(sess, global_step, quiet_seconds=0.5):
  """Waits until no meta-step has been applied for `quiet_seconds`.

  In sync mode the chief's queue runner applies the meta-step that the
  workers' last meta-gradients complete after their runs have returned; the
  final evaluation should see it.
  """
  deadline = time.monotonic() + _FINISH_GRACE_SECONDS
  last = sess.run(global_step)
  while time.monotonic() < deadline:
    time.sleep(quiet_seconds)
    now = sess.run(global_step)
    if now == last:
      return
    last = now


class _Ending:
  """How a worker leaves: the others report to the chief, which then
  releases any worker still waiting for a meta-step and stops the ps tasks.
  """

  def __init__(self, cluster, close_tokens, global_step, total_steps):
    self._cluster = cluster
    done = cluster_lib.done_queue()
    self._report = done.enqueue(cluster.rank)
    self._reported = done.size()
    self._close_tokens = close_tokens
    # Ends the run early: an asynchronous worker stops when a meta-step
    # returns a count at the end.
    self._skip_to_end = global_step.assign(
        tf.maximum(global_step.read_value(),
                   tf.constant(total_steps, global_step.dtype.base_dtype)))
    self._stop_ps = [cluster_lib.shutdown_queue(i).enqueue(0)
                     for i in range(cluster.num_ps)]

  def wait_for_workers(self, sess, warn=False):
    """The chief: waits (briefly) for the other workers to report."""
    expected = self._cluster.num_workers - 1
    deadline = time.monotonic() + _FINISH_GRACE_SECONDS
    while (sess.run(self._reported) < expected and
           time.monotonic() < deadline):
      time.sleep(0.2)
    missing = expected - sess.run(self._reported)
    if missing > 0 and warn:
      logging.warning("%d of %d other workers did not report the end of "
                      "training within %.0f s.", missing, expected,
                      _FINISH_GRACE_SECONDS)

  def finish(self, sess, early=False):
    """Reports (a worker) or ends the cluster's run (the chief).

    Errors are logged, not raised: the ps tasks may already be gone.

    Args:
      sess: the session.
      early: the chief was interrupted: the other workers are told to stop
        (they have not reached the end), and are waited for as usual.
    """
    try:
      if not self._cluster.is_chief:
        sess.run(self._report)
        return
      # A worker still waiting for a meta-step is released and told that
      # training has ended.
      if early:
        sess.run(self._skip_to_end)
      sess.run(self._close_tokens)
      self.wait_for_workers(sess, warn=True)
      sess.run(self._stop_ps)
    except tf.errors.OpError as error:
      logging.warning("Could not end the run cleanly: %s",
                      cluster_lib.error_reason(error))


def _train_worker(sess, replica, schedule, log_period, timeout, chief,
                  report, problem=None):
  """Runs epochs until the cluster has run its meta-steps."""
  options = tf.compat.v1.RunOptions(timeout_in_ms=int(timeout * 1000))
  own_epochs = 0
  total_time = total_cost = 0.0
  try:
    if sess.run(replica.global_step) >= schedule.total_steps:
      # A run resumed at (or past) its end.
      raise _Finished(int(sess.run(replica.global_step)))
    while True:
      seconds, cost, losses, position = _train_epoch(sess, replica, schedule,
                                                     options, problem)
      own_epochs += 1
      total_time += seconds
      total_cost += cost
      if chief is not None:
        chief.after_epoch(own_epochs, position, cost, losses, seconds)
      if own_epochs % log_period == 0:
        report.stats(
            "Epoch {} (all workers: {} of {})".format(
                own_epochs, schedule.epochs(position),
                schedule.epochs(schedule.total_steps)),
            total_cost, total_time, log_period)
        total_time = total_cost = 0.0
  except _Finished as finished:
    logging.info("The cluster reached meta-step %d: training ends.",
                 finished.args[0])
  except tf.errors.DeadlineExceededError as error:
    kept = "" if chief is None else chief.keep_state_after_a_stall()
    raise RuntimeError(
        "A meta-step waited more than {:.0f} s. In synchronous mode every "
        "meta-step needs one meta-gradient from each worker and the chief's "
        "aggregation: a worker or the chief has probably died, or stopped "
        "(its log says why: a diverged run stops, for one). Restart it with "
        "the same flags, or raise --cluster_timeout.{}".format(
            timeout, kept)) from error
  except (tf.errors.CancelledError, tf.errors.OutOfRangeError) as error:
    # The chief closes the synchronisation queue when training has ended.
    logging.info("The chief has ended training (%s).",
                 cluster_lib.error_reason(error))
  except (tf.errors.UnavailableError, tf.errors.AbortedError) as error:
    message = ("Lost the parameter servers ({}): a ps task died or the run "
               "was stopped; restart the cluster with --resume to continue "
               "from the chief's last training state.".format(
                   cluster_lib.error_reason(error)))
    # Said here too: closing a session whose ps tasks are gone can hang.
    logging.error("%s", message)
    raise RuntimeError(message) from error


class _Chief:
  """The chief's evaluations, saves and training states, at global-epoch
  boundaries."""

  def __init__(self, sess, replica, schedule, summaries, run, signals,
               manifest, periods, report):
    """Takes over the run's progress.

    Args:
      sess: the chief's session.
      replica: its `Replica`.
      schedule: the `_Schedule`.
      summaries: its `training.Summaries`.
      run: the `training.Run`, at the cluster's epoch.
      signals: the `training.StopSignals`.
      manifest: `(problem name, training settings)` for saved optimizers.
      periods: the `_Periods`.
      report: the `progress.Report` of its statistics and saves.
    """
    self._sess = sess
    self._replica = replica
    self._schedule = schedule
    self._summaries = summaries
    self._run = run
    self._signals = signals
    self._problem, self._settings = manifest
    self._periods = periods
    self._report = report
    self._evaluated_period = run.epoch // periods.evaluation
    self._checkpointed_period = run.epoch // periods.checkpoint
    self._evaluated_at = None

  def after_epoch(self, own_epochs, position, cost, losses, seconds):
    """Logs the epoch; evaluates and keeps the state when the cluster
    crossed a period.

    Raises:
      _Interrupted: after keeping the state, when a signal asked to stop.
    """
    del own_epochs
    run = self._run
    run.epoch = self._schedule.epochs(position)
    self._summaries.add(run.epoch, meta_loss=losses, final_loss=cost,
                        epoch_seconds=seconds)
    period = run.epoch // self._periods.evaluation
    if period > self._evaluated_period:
      self._evaluated_period = period
      self.evaluate()
    if self._signals.received:
      run.interrupted = self._signals.received
      run.checkpoint(self._sess)
      training.keep_an_optimizer(run, self._sess, self._measure, self._save)
      raise _Interrupted()
    period = run.epoch // self._periods.checkpoint
    if period > self._checkpointed_period:
      self._checkpointed_period = period
      run.checkpoint(self._sess)

  def keep_state_after_a_stall(self):
    """Keeps the training state as the cluster left it when a meta-step
    waited too long (a synchronous worker died), rather than losing the
    epochs since the last one.

    The parameters on the ps tasks are those of the last meta-step every
    worker handed in, which may lie inside an epoch: the state records the
    whole epochs those meta-steps make, so a resumed run repeats the few
    meta-steps past them, on these parameters, rather than skipping any.

    Returns:
      What was kept, a sentence for the error (empty without a save path).
    """
    run = self._run
    if run.save_path is None:
      return ""
    position = int(self._sess.run(self._replica.global_step))
    epoch = self._schedule.epochs(position)
    if epoch > run.checkpointed_epoch:
      run.epoch = epoch
      run.checkpoint(self._sess)
    return (" The chief kept the training state of epoch {} (meta-step {}) "
            "in {}: resume from it with --resume.".format(
                run.checkpointed_epoch, position,
                os.path.abspath(training_state.path(run.save_path))))

  def _measure(self):
    """Evaluates the current optimizer; returns its mean final loss."""
    evaluation_epochs = self._periods.evaluation_epochs
    eval_time, eval_cost, _ = training.run_epochs(
        self._sess, self._replica.fetches, [self._replica.update],
        self._replica.reset, self._schedule.num_unrolls, evaluation_epochs)
    self._report.stats(
        "EVALUATION (all workers: {} epochs)".format(self._run.epoch),
        eval_cost, eval_time, evaluation_epochs)
    return eval_cost / evaluation_epochs

  def _save(self, epoch, **notes):
    files.check_still_locked(self._run.save_path)
    self._report.saving(self._run.save_path)
    self._replica.optimizer.save(
        self._sess, self._run.save_path, problem=self._problem,
        training=dict(self._settings, epochs_done=epoch, **notes))

  def evaluate(self, final=False):
    """Evaluates the current optimizer; saves it if it is the best yet.

    A save is followed by a training state, so the state's best evaluation
    is always the saved optimizer's: a restarted chief never replaces it
    with a worse one.
    """
    run = self._run
    if final:
      run.epoch = self._schedule.epochs(self._schedule.total_steps)
      if self._evaluated_at == run.epoch:
        return
    self._evaluated_at = run.epoch
    evaluation = self._measure()
    self._summaries.add(run.epoch, evaluation_final_loss=evaluation)
    if evaluation < run.best_evaluation:
      run.best_evaluation = evaluation
      if run.save_path is not None:
        self._save(run.epoch)
        run.saved = True
        run.saved_on_stop = None
        run.checkpoint(self._sess)
