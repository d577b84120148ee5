"""Tests for local_cluster.py: a whole 1-ps/2-worker run as subprocesses."""

import json
import os
import subprocess
import sys
import time

import numpy as np

from l2l.checkpoint import l2l_file
from l2l.experiment import evaluation
from l2l.experiment import local_cluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _local_cluster(*args, timeout=240):
  return subprocess.run(
      [sys.executable, "-m", "l2l.experiment.local_cluster"] + list(args),
      cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def test_two_workers_train_an_optimizer_that_beats_its_untrained_start(
    tmp_path):
  save_path = tmp_path / "quadratic"
  logs = tmp_path / "logs"
  done = _local_cluster(
      "--workers=2", "--log_dir=" + str(logs), "--timeout=200",
      "--problem=quadratic", "--save_path=" + str(save_path),
      "--num_epochs=16", "--evaluation_period=8", "--evaluation_epochs=2",
      "--num_steps=20", "--unroll_length=10", "--learning_rate=0.01",
      "--seed=1")
  assert done.returncode == 0, done.stderr[-3000:]
  assert sorted(os.listdir(logs)) == ["ps0.log", "worker0.log",
                                      "worker1.log"]
  chief_log = (logs / "worker0.log").read_text()
  assert "Worker 0 of 2 (synchronous mode): training until meta-step 16" in (
      chief_log)
  assert "Saved the meta-optimizer" in chief_log
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


def test_without_save_path_the_launcher_refuses_in_one_line():
  done = _local_cluster("--workers=2", "--problem=quadratic", timeout=60)
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].startswith(
      "Error: local_cluster needs --save_path")


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


def test_stopping_a_task_ends_its_process(tmp_path):
  task = local_cluster._Task(  # pylint: disable=protected-access
      "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"],
      str(tmp_path / "sleeper.log"), dict(os.environ))
  start = time.monotonic()
  task.stop()
  assert task.poll() is not None
  assert time.monotonic() - start < 10
