"""Tests for distributed_training.py on in-process localhost clusters.

Each test starts its own servers (one ps task, two workers) on free ports of
127.0.0.1; TensorFlow cannot stop a server, so they end with the test
process. The optimizer is a zero-layer coordinate-wise net (update
`w * g + b`), whose meta-gradient a one-process graph computes too.
"""

import contextlib
import os
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from l2l import files
from l2l.experiment import cluster
from l2l.experiment import distributed_training
from l2l.experiment import local_cluster
from l2l.experiment import progress
from l2l.experiment import training
from l2l.experiment import training_state
import meta
import problems

_NET = {"cw": {"net": "CoordinateWiseDeepLSTM",
               "net_options": {"layers": (), "initializer": "zeros"}}}
_UNROLL = 3
_LEARNING_RATE = 0.1
_INSTANCE = ("x", "w", "y")


def _problem():
  return problems.quadratic(batch_size=2, num_dims=3)


def _start_cluster(num_workers=2):
  hosts = set()
  while len(hosts) < num_workers + 1:
    hosts.add("127.0.0.1:{}".format(local_cluster.free_port()))
  hosts = sorted(hosts)
  jobs = {"ps": hosts[:1], "worker": hosts[1:]}
  servers = [cluster.start_server(cluster.Cluster(jobs, "worker", i))
             for i in range(num_workers)]
  cluster.start_server(cluster.Cluster(jobs, "ps", 0))
  return jobs, servers


class _Worker:
  """A worker's graph and its session, opened in `stack`."""

  def __init__(self, stack, jobs, servers, rank, sync, open_session=True,
               resume_from=None, settings=None):
    self.task = cluster.Cluster(jobs, "worker", rank)
    self.graph = tf.Graph()
    with self.graph.as_default():
      self.replica = distributed_training.build_replica(
          self.task, lambda: meta.MetaOptimizer(**_NET), _problem(), _UNROLL,
          _LEARNING_RATE, sync, seed=5, settings=settings)
      self.variables = {v.op.name: v
                        for v in tf.compat.v1.global_variables()}
      self.kept = distributed_training._KeptState(self.replica, "saved")
    initialise = None
    if resume_from is not None:
      # One unroll per epoch, one meta-step per unroll.
      initialise = self.kept.initialiser(
          resume_from, distributed_training._Schedule(100, 1, 1))
    if open_session:
      stack.enter_context(self.graph.as_default())
      self.sess = stack.enter_context(distributed_training.worker_session(
          self.task, servers[rank], self.replica, timeout=30,
          initialise=initialise))

  def read(self, names):
    return self.sess.run([self.variables[n] for n in names])

  def meta_step(self):
    """Runs one meta-step; returns this worker's meta-gradients."""
    gradients = [g for g, _ in self.replica.gradients]
    return self.sess.run([gradients, self.replica.step])[0]

  @property
  def parameters(self):
    return [v.op.name for v in self.replica.optimizer.trainable_variables()]


def _one_process_gradients(parameters, instance):
  """The meta-gradient of one unroll in an ordinary one-process graph."""
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer = meta.MetaOptimizer(**_NET)
    loss = optimizer.meta_loss(_problem(), _UNROLL).loss
    params = optimizer.trainable_variables()
    # Built before the first run: it adds outputs to the unroll's loop.
    gradients = tf.gradients(loss, params)
    sess.run(tf.compat.v1.global_variables_initializer())
    variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
    for variable, value in zip(params, parameters):
      variable.load(value, sess)
    for name, value in zip(_INSTANCE, instance):
      variables[name].load(value, sess)
    return sess.run(gradients)


def _wait_for_global_step(worker, step):
  deadline = time.monotonic() + 20
  while worker.sess.run(worker.replica.global_step) < step:
    assert time.monotonic() < deadline, "meta-step {} never applied".format(
        step)
    time.sleep(0.05)


def _adam_first_step(parameters, gradients, beta1=np.float32(0.9),
                     beta2=np.float32(0.999), epsilon=1e-8):
  """TF's Adam, first step from zero slots: new parameters, m, v.

  The constants are float32, as in TF's kernel (1 - 0.999 is 0.99998713e-3
  there).
  """
  m = [(1 - beta1) * g for g in gradients]
  v = [(1 - beta2) * np.square(g) for g in gradients]
  rate = _LEARNING_RATE * np.sqrt(1 - beta2) / (1 - beta1)
  new = [p - rate * mm / (np.sqrt(vv) + epsilon)
         for p, mm, vv in zip(parameters, m, v)]
  return new, m, v


def _assert_all_close(actual, wanted, atol=0.0):
  assert len(actual) == len(wanted)
  for a, w in zip(actual, wanted):
    np.testing.assert_allclose(a, w, rtol=1e-5, atol=atol)


def test_sync_meta_step_is_adam_on_the_mean_of_the_two_workers_gradients():
  jobs, servers = _start_cluster()
  with contextlib.ExitStack() as stack:
    workers = [_Worker(stack, jobs, servers, rank, sync=True)
               for rank in (0, 1)]
    chief = workers[0]
    names = chief.parameters
    start = chief.read(names)
    instances = [w.read(_INSTANCE) for w in workers]
    gradients = [None, None]

    def step(rank):
      gradients[rank] = workers[rank].meta_step()
    threads = [threading.Thread(target=step, args=(r,)) for r in (0, 1)]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join(timeout=60)
    _wait_for_global_step(chief, 1)
    after = chief.read(names)
    slots = chief.read([n + "/Adam" for n in names])
    slots_squared = chief.read([n + "/Adam_1" for n in names])
  # Each worker drew its own instance and computed the one-process
  # meta-gradient on it.
  assert not np.allclose(instances[0][1], instances[1][1])
  for instance, worker_gradients in zip(instances, gradients):
    _assert_all_close(worker_gradients,
                      _one_process_gradients(start, instance))
  assert not np.allclose(gradients[0][1], gradients[1][1], rtol=0.01)
  # One meta-step: Adam on their mean, on the ps task.
  mean = [(a + b) / 2 for a, b in zip(*gradients)]
  new, m, v = _adam_first_step(start, mean)
  _assert_all_close(slots, m)
  _assert_all_close(slots_squared, v)
  _assert_all_close(after, new, atol=1e-7)


def test_async_meta_step_applies_one_workers_gradient_alone():
  jobs, servers = _start_cluster()
  with contextlib.ExitStack() as stack:
    workers = [_Worker(stack, jobs, servers, rank, sync=False)
               for rank in (0, 1)]
    names = workers[1].parameters
    start = workers[1].read(names)
    gradients = workers[1].meta_step()
    after = workers[0].read(names)
    assert workers[0].sess.run(workers[0].replica.global_step) == 1
    workers[0].meta_step()
    assert workers[1].sess.run(workers[1].replica.global_step) == 2
  _assert_all_close(after, _adam_first_step(start, gradients)[0], atol=1e-7)


@pytest.mark.slow
def test_restarted_workers_rejoin_without_reinitialising_the_parameters():
  jobs, servers = _start_cluster()
  with contextlib.ExitStack() as stack:
    first = [_Worker(stack, jobs, servers, rank, sync=False)
             for rank in (0, 1)]
    first[1].meta_step()
    trained = first[0].read(first[0].parameters)
    # A new chief and a new worker 1 (fresh graphs and sessions).
    again = [_Worker(stack, jobs, servers, rank, sync=False)
             for rank in (0, 1)]
    rejoined = again[0].read(again[0].parameters)
    again[1].meta_step()
    assert again[0].sess.run(again[0].replica.global_step) == 2
  assert np.abs(trained[1]).max() > 0
  for before, now in zip(trained, rejoined):
    np.testing.assert_array_equal(before, now)


def test_a_task_started_with_other_flags_than_the_chiefs_is_refused():
  # It would train the shared parameters its own way, unseen by the
  # chief's manifest.
  jobs, servers = _start_cluster()
  chiefs = {"learning_rate": 0.001, "unroll_length": 5, "problem": "q"}
  with contextlib.ExitStack() as stack:
    _Worker(stack, jobs, servers, 0, sync=False, settings=chiefs)
    with pytest.raises(RuntimeError, match=(
        r"^started with --learning_rate=0.5, but the cluster's chief has "
        r"--learning_rate=0.001: every task of a cluster needs the chief's "
        r"training flags")):
      _Worker(stack, jobs, servers, 1, sync=False,
              settings=dict(chiefs, learning_rate=0.5))
    # The same flags join; so does a chief rejoining with them.
    _Worker(stack, jobs, servers, 1, sync=False, settings=dict(chiefs))
    _Worker(stack, jobs, servers, 0, sync=False, settings=dict(chiefs))


def test_sync_worker_waiting_for_a_dead_chief_stops_with_a_clear_error():
  jobs, servers = _start_cluster()
  with contextlib.ExitStack() as stack:
    chief = _Worker(stack, jobs, servers, 0, sync=True, open_session=False)
    sess = tf.compat.v1.Session(servers[0].target, graph=chief.graph,
                                config=cluster.session_config(chief.task))
    stack.callback(sess.close)
    replica = chief.replica
    # Initialised as a chief does, but its aggregating queue runner never
    # runs: the chief "died" after starting the cluster.
    sess.run([replica.init_parameters, replica.init_local])
    sess.run(replica.init_sync)
    sess.run(replica.init_tokens)
    worker = _Worker(stack, jobs, servers, 1, sync=True)
    schedule = distributed_training._Schedule(100, 1, 2)
    with pytest.raises(RuntimeError, match="waited more than 1 s.*died"):
      distributed_training._train_worker(worker.sess, worker.replica,
                                         schedule, log_period=100,
                                         timeout=1.0, chief=None,
                                         report=progress.Report())


def test_the_chief_is_the_save_directorys_one_writer(tmp_path):
  chief = cluster.Cluster(
      {"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"]},
      "worker", 0)
  with files.directory_lock(str(tmp_path), "the other run",
                            training_state.LOCK_NAME):
    with pytest.raises(files.DirectoryBusyError, match="the other run"):
      distributed_training.train(chief, "simple", save_path=str(tmp_path))


def _one_machine_state(net, meta_steps):
  """The variables a one-machine run keeps after `meta_steps` meta-steps."""
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(1)
    optimizer = meta.MetaOptimizer(**net)
    step, update, _, _, _ = optimizer.meta_minimize(
        _problem(), _UNROLL, learning_rate=_LEARNING_RATE)
    kept = training_state.Variables(tf.compat.v1.global_variables())
    sess.run(tf.compat.v1.global_variables_initializer())
    for _ in range(meta_steps):
      sess.run([step, update])
    return kept.read(sess)


def test_a_resumed_chief_starts_the_cluster_from_a_one_machine_state():
  values = _one_machine_state(_NET, meta_steps=3)
  jobs, servers = _start_cluster()
  with contextlib.ExitStack() as stack:
    chief = _Worker(stack, jobs, servers, 0, sync=False,
                    resume_from=(values, {"epoch": 6}))
    worker = _Worker(stack, jobs, servers, 1, sync=False)
    on_ps = sorted(v.op.name for v in chief.replica.parameter_variables
                   if v.op.name != "global_step")
    restored = dict(zip(on_ps, chief.read(on_ps)))
    seen_by_worker = dict(zip(on_ps, worker.read(on_ps)))
    meta_steps = chief.sess.run(chief.replica.global_step)
    # The state the chief keeps is again a one-machine state.
    kept = chief.kept.variables.read(chief.sess)
  # Parameters, Adam's slots and powers: the state's, bit for bit.
  assert sorted(on_ps) == sorted(
      n for n in values if n.startswith("vars_optimizer") or "power" in n)
  assert np.abs(values["vars_optimizer/cw_deep_lstm/linear/w"]).max() > 0
  assert float(values["beta1_power"]) == pytest.approx(0.9**4, rel=1e-6)
  for name in on_ps:
    np.testing.assert_array_equal(restored[name], values[name], name)
    np.testing.assert_array_equal(seen_by_worker[name], values[name], name)
  # Epoch 6 at one meta-step per epoch.
  assert meta_steps == 6
  assert sorted(kept) == sorted(values)
  for name in on_ps:
    np.testing.assert_array_equal(kept[name], values[name], name)


def test_a_state_of_another_net_is_refused_before_the_session(tmp_path):
  other_net = {"cw": {"net": "CoordinateWiseDeepLSTM",
                      "net_options": {"layers": (2,)}}}
  values = _one_machine_state(other_net, meta_steps=0)
  task = cluster.Cluster({"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]},
                         "worker", 0)
  with tf.Graph().as_default():
    replica = distributed_training.build_replica(
        task, lambda: meta.MetaOptimizer(**_NET), _problem(), _UNROLL,
        _LEARNING_RATE, False)
    kept = distributed_training._KeptState(replica, str(tmp_path))
    with pytest.raises(training_state.TrainingStateError,
                       match=r"state.npz does not fit this run's graph "
                       r"\(missing none, unexpected \['states/state_0/state',"):
      kept.initialiser((values, {"epoch": 1}),
                       distributed_training._Schedule(10, 1, 1))


class _RecordingRun(training.Run):
  """A `training.Run` that records the epochs of its training states."""

  def __init__(self, epoch):
    super().__init__(None, {}, None)
    self.epoch = epoch
    self.kept = []

  def checkpoint(self, sess):
    del sess
    self.kept.append(self.epoch)
    self.checkpointed_epoch = self.epoch


def test_the_chief_keeps_states_every_period_of_all_workers_epochs():
  run = _RecordingRun(epoch=6)
  signals = training.StopSignals(enabled=False)
  # 2 unrolls per epoch, 2 workers in sync: one meta-step is one epoch.
  schedule = distributed_training._Schedule(100, 2, 2)
  chief = distributed_training._Chief(
      None, None, schedule, training.Summaries(None), run, signals,
      ("quadratic", {}), distributed_training._Periods(
          evaluation=1000, evaluation_epochs=1, checkpoint=4),
      progress.Report())
  for position in (7, 8, 9, 11, 13, 17):
    chief.after_epoch(1, position, 1.0, 2.0, 0.1)
  # Resumed at 6: the next period ends at 8; a skipped boundary counts once.
  assert run.kept == [8, 13, 17]
  signals.received = "SIGTERM"
  with pytest.raises(distributed_training._Interrupted):
    chief.after_epoch(1, 18, 1.0, 2.0, 0.1)
  assert run.kept == [8, 13, 17, 18] and run.interrupted == "SIGTERM"


def test_a_stopped_chief_saves_the_optimizer_it_has_when_none_is_saved():
  run = _RecordingRun(epoch=6)
  run.save_path = "saved"
  signals = training.StopSignals(enabled=False)
  chief = distributed_training._Chief(
      None, None, distributed_training._Schedule(100, 2, 2),
      training.Summaries(None), run, signals, ("quadratic", {}),
      distributed_training._Periods(evaluation=1000, evaluation_epochs=1,
                                    checkpoint=4), progress.Report())
  saves = []

  def save(epoch, **notes):
    saves.append((epoch, notes))

  # pylint: disable=protected-access
  chief._measure = lambda: 0.5
  chief._save = save
  # pylint: enable=protected-access
  signals.received = "SIGINT"
  with pytest.raises(distributed_training._Interrupted):
    chief.after_epoch(1, 7, 1.0, 2.0, 0.1)
  # The state at the stop, then again with the optimizer saved on it.
  assert run.kept == [7, 7] and saves == [(7, {"saved_on_stop": True})]
  assert run.saved_on_stop == {"epoch": 7, "evaluation": 0.5}


class _FakeSession:
  """Records what `_train_epoch` runs; every meta-step reports `position`."""

  def __init__(self, position):
    self.ran = []
    self.position = position

  def run(self, fetches, options=None):
    del options
    self.ran.append(fetches)
    if isinstance(fetches, list):  # A meta-step: fetches, position, update.
      return (0.5, 2.0), self.position, None
    return None


class _FakeFamily:
  """A problem that draws a task per epoch and sets the epoch's unrolls."""

  def __init__(self):
    self.drawn = 0

  def next_task(self, sess):
    sess.run("draw task")
    self.drawn += 1

  def epoch_unrolls(self, num_unrolls):
    return 3 * num_unrolls


class _StallingSession(_FakeSession):
  """Meta-steps that reach `position` one by one, until one waits too long
  (a synchronous worker died)."""

  def __init__(self, position, stall_at):
    super().__init__(position)
    self.stall_at = stall_at

  def run(self, fetches, options=None):
    if fetches == "global_step":
      return self.position
    if isinstance(fetches, list):
      if self.position == self.stall_at:
        raise tf.errors.DeadlineExceededError(None, None, "timed out")
      self.position += 1
    return super().run(fetches, options)


@pytest.mark.parametrize("save_path", ["saved", None])
def test_a_stalled_chief_keeps_the_state_the_cluster_reached(save_path):
  replica = distributed_training.Replica(
      *[None] * len(distributed_training.Replica._fields))._replace(
          reset="reset", fetches="fetches", position="position",
          update="update", global_step="global_step")
  run = _RecordingRun(epoch=6)
  run.save_path = save_path
  run.checkpointed_epoch = 6
  # 4 unrolls per epoch, 2 synchronous workers: an epoch is 2 meta-steps.
  schedule = distributed_training._Schedule(100, 4, 2)
  sess = _StallingSession(position=12, stall_at=17)
  chief = distributed_training._Chief(
      sess, replica, schedule, training.Summaries(None), run,
      training.StopSignals(enabled=False), ("quadratic", {}),
      distributed_training._Periods(evaluation=1000, evaluation_epochs=1,
                                    checkpoint=100), progress.Report())
  with pytest.raises(RuntimeError, match="waited more than 3 s") as raised:
    distributed_training._train_worker(sess, replica, schedule, log_period=100,
                                       timeout=3.0, chief=chief,
                                       report=progress.Report())
  if save_path is None:
    assert run.kept == [] and "kept" not in str(raised.value)
    return
  # Meta-step 17 is 8 whole epochs and one step into the ninth; the last
  # periodic state (epoch 6) would have lost two.
  assert run.kept == [8]
  assert str(raised.value).endswith(
      "The chief kept the training state of epoch 8 (meta-step 17) in "
      "{}: resume from it with --resume.".format(
          os.path.abspath(training_state.path("saved"))))


def test_each_epoch_draws_the_familys_task_and_runs_its_unrolls():
  replica = distributed_training.Replica(
      *[None] * len(distributed_training.Replica._fields))._replace(
          reset="reset", fetches="fetches", position="position",
          update="update")
  schedule = distributed_training._Schedule(100, 2, 1)
  sess = _FakeSession(position=7)
  family = _FakeFamily()
  _, cost, losses, position = distributed_training._train_epoch(
      sess, replica, schedule, None, family)
  assert family.drawn == 1
  assert sess.ran == ["draw task", "reset"] + [
      ["fetches", "position", "update"]] * 6
  assert (cost, losses, position) == (0.5, 2.0, 7)
  # An ordinary problem: the schedule's unrolls, no draw.
  sess = _FakeSession(position=7)
  distributed_training._train_epoch(sess, replica, schedule, None,
                                    _problem())
  assert sess.ran == ["reset"] + [["fetches", "position", "update"]] * 2


def test_a_family_replica_names_its_variables_in_a_family_of_its_own():
  from l2l.tasks import family  # pylint: disable=g-import-not-at-top
  config = family.parse_options("quadratic_weight=1,mlp_weight=0,"
                                "logistic_weight=0,max_dims=4")
  task = cluster.Cluster({"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]},
                         "worker", 0)

  def build(make_problem):
    with tf.Graph().as_default():
      return distributed_training.build_replica(
          task, lambda: meta.MetaOptimizer(**_NET), family.family(config),
          _UNROLL, _LEARNING_RATE, False, seed=5, make_problem=make_problem)

  # The family's task variables belong to the graph it was made in, so the
  # throwaway build that names the optimizer's variables needs its own.
  with pytest.raises(ValueError, match="must be from the same graph"):
    build(None)
  replica = build(lambda: family.family(config))
  names = sorted(v.op.name for v in replica.parameter_variables)
  assert "global_step" in names
  assert all(v.device.startswith("/job:ps") for v in
             replica.parameter_variables)
  assert not any("family" in name for name in names)


def test_a_session_that_never_closes_is_left_behind(monkeypatch, caplog):
  # Closing a session whose ps tasks died blocks forever: the task must
  # still exit (and free the save path's lock).
  class DeadPsSession:
    closed = threading.Event()

    def close(self):
      self.closed.wait()

  monkeypatch.setattr(distributed_training, "_CLOSE_SECONDS", 0.2)
  start = time.monotonic()
  with caplog.at_level("WARNING"):
    distributed_training._close(DeadPsSession())  # pylint: disable=protected-access
  assert time.monotonic() - start < 5
  assert "The session did not close within 0 s" in caplog.text
  DeadPsSession.closed.set()
