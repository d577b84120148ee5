"""Tests for local_cluster.py: a whole 1-ps/2-worker run as subprocesses."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from l2l import files
from l2l.checkpoint import l2l_file
from l2l.experiment import evaluation
from l2l.experiment import local_cluster
from l2l.experiment import training_state
import commands
from conftest import LAUNCHER_GONE
from conftest import fake_launcher
from conftest import flock_is_held
from conftest import train_in_process
from conftest import wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _local_cluster(*args, timeout=240):
  """Runs the launcher; it and its tasks fork from tests/commands.py's
  server, which saves each task TensorFlow's import."""
  return commands.run_patched(
      "l2l.experiment.local_cluster", ["local_cluster"] + list(args),
      commands.fork_subprocesses_patch(), cwd=ROOT, timeout=timeout)


_QUADRATIC = ("--problem=quadratic", "--evaluation_period=8",
              "--evaluation_epochs=2", "--num_steps=20", "--unroll_length=10",
              "--learning_rate=0.01", "--seed=1", "--checkpoint_period=4")


def _beta1_power(save_path):
  return float(training_state.read(str(save_path))[0]["beta1_power"])


@pytest.mark.slow
def test_a_run_moves_between_one_machine_and_two_workers_both_ways(tmp_path):
  """One machine trains 2 epochs, two workers resume to 16, a restarted
  cluster to 20, one machine to 24. Meta-steps: 2 unrolls per epoch on one
  machine; one per epoch on 2 synchronous workers (2 unrolls each)."""
  save_path = tmp_path / "quadratic"
  common = ("--save_path=" + str(save_path),) + _QUADRATIC
  assert train_in_process(_QUADRATIC, save_path=str(save_path),
                          num_epochs=2).saved
  beta1_power = _beta1_power(save_path)
  # TF's Adam keeps beta1^(t + 1) after t meta-steps: here 4.
  assert beta1_power == pytest.approx(0.9**5, rel=1e-5)
  logs = tmp_path / "logs"
  done = _local_cluster(
      "--workers=2", "--log_dir=" + str(logs), "--timeout=200",
      "--num_epochs=16", "--resume", *common)
  assert done.returncode == 0, done.stderr[-3000:]
  assert sorted(os.listdir(logs)) == ["ps0.log", "worker0.log",
                                      "worker1.log"]
  chief_log = (logs / "worker0.log").read_text()
  assert "Worker 0 of 2 (synchronous mode): training until meta-step 16" in (
      chief_log)
  assert "the cluster starts at meta-step 2." in chief_log
  assert "Saving meta-optimizer to " + str(save_path) in chief_log
  assert "parameter server /job:ps/task:0 stops" in (
      logs / "ps0.log").read_text()
  manifest = json.loads((save_path / "manifest.json").read_text())
  assert manifest["problem"] == "quadratic"
  assert manifest["training"]["cluster"] == {
      "workers": 2, "ps_tasks": 1, "sync_replicas": True}
  assert manifest["training"]["epochs_done"] == 16
  values = l2l_file.load(save_path / "cw.l2l")
  assert values["linear"]["w"].shape == (20, 1)
  trained, untrained = (
      evaluation.final_error(evaluation.evaluate(
          "L2L", "quadratic", num_steps=20, num_epochs=4, seed=0, path=path,
          show_progress=False).losses)
      for path in (str(save_path), None))
  assert np.isfinite(trained)
  assert trained < 0.8 * untrained
  state, on_cluster = training_state.read(str(save_path))
  assert on_cluster["epoch"] == 16 and on_cluster["saved"]
  assert on_cluster["resets"] == 0
  assert on_cluster["cluster"] == {"workers": 2, "sync_replicas": True}
  # Adam's step count carried over: 14 epochs of one meta-step.
  assert _beta1_power(save_path) == pytest.approx(beta1_power * 0.9**14,
                                                  rel=1e-5)
  # Pretend the best so far was far better than anything the restarted
  # cluster will reach: its chief must keep that optimizer.
  training_state.write(str(save_path), state,
                       dict(on_cluster, best_evaluation=1e-12))
  kept = (save_path / "cw.l2l").read_bytes()
  logs = tmp_path / "restarted"
  again = _local_cluster("--workers=2", "--log_dir=" + str(logs),
                         "--timeout=200", "--num_epochs=20", "--resume",
                         *common)
  assert again.returncode == 0, again.stderr[-3000:]
  chief_log = (logs / "worker0.log").read_text()
  assert "the cluster starts at meta-step 16." in chief_log
  assert "EVALUATION (all workers: 20 epochs)" in chief_log
  assert "Saving meta-optimizer" not in chief_log
  assert (save_path / "cw.l2l").read_bytes() == kept
  _, restarted = training_state.read(str(save_path))
  assert restarted["epoch"] == 20 and restarted["best_evaluation"] == 1e-12
  assert _beta1_power(save_path) == pytest.approx(
      float(state["beta1_power"]) * 0.9**4, rel=1e-5)
  # One machine goes on: 4 more epochs, an evaluation of 2 at the end.
  beta1_power = _beta1_power(save_path)
  # (One machine's runs here are in-process; the cluster's are commands.)
  assert train_in_process(_QUADRATIC, save_path=str(save_path),
                          num_epochs=24, resume=True).epochs == 24
  _, on_one = training_state.read(str(save_path))
  assert on_one["epoch"] == 24 and "cluster" not in on_one
  # Draws counted from the resume: the cluster's are not replayable.
  assert on_one["resets"] == 4 + 2
  assert on_one["best_evaluation"] == 1e-12
  assert (save_path / "cw.l2l").read_bytes() == kept
  assert _beta1_power(save_path) == pytest.approx(beta1_power * 0.9**8,
                                                  rel=1e-5)


def test_without_save_path_the_launcher_refuses_in_one_line():
  done = _local_cluster("--workers=2", "--problem=quadratic", timeout=60)
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].startswith(
      "Error: local_cluster needs --save_path")


def test_a_busy_save_path_is_refused_before_any_task_starts(
    tmp_path, monkeypatch, capsys):
  def start(*args, **kwargs):
    raise AssertionError("a task was started: {} {}".format(args, kwargs))

  monkeypatch.setattr(local_cluster, "start", start)
  save_path = tmp_path / "busy"
  with files.directory_lock(str(save_path), "python train.py --seed=3",
                            training_state.LOCK_NAME):
    with pytest.raises(SystemExit) as exited:
      local_cluster.main(["launcher", "--save_path=" + str(save_path),
                          "--log_dir=" + str(tmp_path / "logs")])
  assert exited.value.code == 1
  error = capsys.readouterr().err
  assert error.startswith("Error: {} is in use by another run (pid {} on "
                          .format(save_path, os.getpid()))
  assert error.endswith(": python train.py --seed=3); wait for it to finish "
                        "or choose another directory.\n")


def test_cluster_flags_are_the_launchers_own(tmp_path):
  done = _local_cluster("--save_path=" + str(tmp_path), "--job_name=ps",
                        timeout=60)
  assert done.returncode == 1
  assert "--job_name is set by local_cluster" in done.stderr


def test_flag_value_reads_both_spellings():
  args = ["--problem=quadratic", "--save_path", "a", "--seed=2"]
  assert local_cluster.flag_value(args, "save_path") == "a"
  assert local_cluster.flag_value(args, "problem") == "quadratic"
  assert local_cluster.flag_value(args, "logdir") is None


@pytest.mark.parametrize("args, expected", [
    ([], False), (["--resume"], True), (["--resume=true"], True),
    (["--resume=1"], True), (["--resume=False"], False),
    (["--resume", "--noresume"], False), (["--noresume", "--resume=t"], True),
    (["--resume_path=x"], False),
])
def test_boolean_flag_reads_every_spelling_absl_takes(args, expected):
  assert local_cluster.boolean_flag(["--seed=2"] + args, "resume") is expected


def test_stopping_a_task_ends_its_process(tmp_path):
  task = local_cluster._Task(  # pylint: disable=protected-access
      "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
      str(tmp_path / "sleeper.log"), dict(os.environ))
  start = time.monotonic()
  task.stop()
  assert task.poll() is not None
  assert time.monotonic() - start < 10


def _all_workers_epochs(log):
  """The cluster's epoch counts a worker's log reports, in order."""
  try:
    text = log.read_text()
  except FileNotFoundError:
    return []
  return [int(n) for n in re.findall(r"\(all workers: (\d+) of", text)]


@pytest.mark.slow
def test_async_cluster_survives_a_killed_worker_which_rejoins(
    tmp_path, monkeypatch):
  """1 ps + 2 async workers as processes: kill -9 worker 1; the chief goes on
  and keeps its state; worker 1 restarted joins the running count. Then
  kill -9 of the launcher: the chief stops itself as on SIGTERM, keeping
  the state and ending the run, and every task ends with it."""
  # The tasks fork from tests/commands.py's server (no TensorFlow import).
  monkeypatch.setattr(subprocess, "Popen", commands.Popen)
  save_path = tmp_path / "quadratic"
  args = ["--save_path=" + str(save_path), "--num_epochs=1000000",
          "--nosync_replicas", "--log_period=1", "--evaluation_period=4",
          "--evaluation_epochs=1", "--checkpoint_period=2", "--num_steps=20",
          "--unroll_length=10", "--learning_rate=0.01", "--seed=1",
          "--problem=quadratic"]
  launcher = fake_launcher(tmp_path)
  chief_log = tmp_path / "worker0.log"
  tasks = []
  again = None
  try:
    tasks = local_cluster.start(
        2, args, str(tmp_path),
        launcher_lock=str(tmp_path / local_cluster.LAUNCHER_LOCK_NAME))
    ps, chief, worker = tasks[:3]
    wait_for(lambda: _all_workers_epochs(tmp_path / "worker1.log"),
              "worker 1's first epoch")
    worker.process.kill()
    assert worker.process.wait(timeout=30) == -signal.SIGKILL
    at_kill = max(_all_workers_epochs(chief_log) +
                  _all_workers_epochs(tmp_path / "worker1.log"))
    # The chief goes on alone, evaluating and keeping its state. The
    # worker restarts only then: started earlier, on a loaded machine it
    # could join before the chief's 4 epochs, and the check below would
    # not tell a join from a start over.
    wait_for(lambda: training_state.read(str(save_path))[1]["epoch"] >
              at_kill + 4, "the chief's state after the kill")
    with open(tmp_path / "worker1-again.log", "xb") as log:
      again = subprocess.Popen(worker.process.args, cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    wait_for(lambda: _all_workers_epochs(tmp_path / "worker1-again.log"),
              "the restarted worker's first epoch")
    # It joined the running count: it did not start the parameters over.
    joined_at = _all_workers_epochs(tmp_path / "worker1-again.log")[0]
    assert joined_at > at_kill + 4
    launcher.kill()
    killed = time.monotonic()
    assert chief.process.wait(timeout=60) == 128 + signal.SIGTERM
    said = [line for line in chief_log.read_text().splitlines()
            if line.startswith("Interrupted")]
    # The chief ended the run early: the workers and the ps end with it,
    # long before their own grace ran out (it would end them with SIGTERM).
    assert again.wait(timeout=60) == 0
    assert ps.process.wait(timeout=60) == 0
    ended_in = time.monotonic() - killed
    ended = (tmp_path / "worker1-again.log").read_text()
  finally:
    if again is not None and again.poll() is None:
      again.kill()
      again.wait()
    local_cluster.stop_all(tasks)
    launcher.kill()
    launcher.wait()
  assert ended_in < (local_cluster.END_GRACE_SECONDS +
                     local_cluster.KILL_GRACE_SECONDS)
  ps_log = (tmp_path / "ps0.log").read_text()
  assert "parameter server /job:ps/task:0 stops" in ps_log
  for log in (ps_log, chief_log.read_text()):
    assert log.count(LAUNCHER_GONE) == 1
  # Started by hand, the restarted worker watched nothing.
  assert LAUNCHER_GONE not in ended
  # The save directory is free for the next run.
  with files.directory_lock(save_path, "next run", training_state.LOCK_NAME):
    pass
  # 1000000 epochs of 2 meta-steps each: the end the chief skipped to.
  assert re.search(r"The cluster reached meta-step 200000\d: training ends",
                   ended)
  _, info = training_state.read(str(save_path))
  assert info["epoch"] >= joined_at
  assert info["cluster"] == {"workers": 2, "sync_replicas": False}
  assert len(said) == 1 and said[0].startswith(
      "Interrupted (SIGTERM): the training state of epoch {} is in {}, the "
      "best optimizer beside it;".format(info["epoch"],
                                         training_state.path(save_path)))
  assert info["saved"] and np.isfinite(info["best_evaluation"])
  assert l2l_file.load(save_path / "cw.l2l")["linear"]["w"].shape == (20, 1)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_an_interrupted_launcher_exits_as_its_signal_and_says_how_to_resume(
    tmp_path, monkeypatch, caplog, name):
  given = []

  def interrupted(num_workers, train_args, log_dir, launcher_lock):
    del num_workers, train_args, log_dir
    # The tasks would watch the lock, which the launcher holds meanwhile.
    given.append((launcher_lock, flock_is_held(launcher_lock)))
    raise KeyboardInterrupt(name if name == "SIGTERM" else "")
  monkeypatch.setattr(local_cluster, "start", interrupted)
  with caplog.at_level("ERROR"):
    status = local_cluster.main(
        ["launcher", "--save_path=" + str(tmp_path),
         "--log_dir=" + str(tmp_path / "logs")])
  assert status == 128 + signal.Signals[name]
  assert "Interrupted ({}); stopping the cluster".format(name) in caplog.text
  # Its log directory holds this run's logs: the resumed run needs another.
  assert " --save_path={} --resume\n".format(tmp_path) in caplog.text
  assert "continue with:" in caplog.text and "--log_dir" not in caplog.text
  lock = tmp_path / "logs" / local_cluster.LAUNCHER_LOCK_NAME
  assert given == [(str(lock), True)]
  # Released, and removed, once the tasks were stopped.
  assert not lock.exists()


def test_a_log_dir_a_launcher_died_in_is_refused(tmp_path, capsys):
  logs = tmp_path / "logs"
  logs.mkdir()
  (logs / local_cluster.LAUNCHER_LOCK_NAME).touch()
  with pytest.raises(SystemExit) as exited:
    local_cluster.main(["launcher", "--save_path=" + str(tmp_path),
                        "--log_dir=" + str(logs)])
  assert exited.value.code == 1
  assert capsys.readouterr().err == (
      "Error: --log_dir {} already holds logs (launcher.lock); choose "
      "another directory.\n".format(logs))


@pytest.mark.parametrize("log_dir, message", [
    ("", "--log_dir= is invalid: expected a path, got an empty value."),
    ("a_file", "--log_dir={} is invalid: it is a file, expected a directory "
     "for the tasks' logs."),
])
def test_a_log_dir_that_is_no_directory_names_the_flag(tmp_path, capsys,
                                                       log_dir, message):
  # It was a bare Errno ("File exists", "No such file or directory: ''").
  (tmp_path / "a_file").write_text("mine")
  path = str(tmp_path / log_dir) if log_dir else ""
  with pytest.raises(SystemExit) as exited:
    local_cluster.main(["launcher", "--save_path=" + str(tmp_path / "run"),
                        "--log_dir=" + path])
  assert exited.value.code == 1
  assert capsys.readouterr().err == "Error: " + message.format(path) + "\n"
  assert (tmp_path / "a_file").read_text() == "mine"
