"""Tests for train_command.py through train.py, as a user runs it."""

import os
import subprocess
import sys

from l2l.checkpoint import l2l_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(*args, cwd=ROOT):
  return subprocess.run([sys.executable, "train.py"] + list(args), cwd=cwd,
                        capture_output=True, text=True, timeout=300,
                        check=False)


def test_train_command_saves_an_optimizer_evaluate_reads(tmp_path):
  save_path = tmp_path / "simple"
  done = _train("--problem=simple", "--save_path=" + str(save_path),
                "--num_epochs=2", "--evaluation_period=2",
                "--evaluation_epochs=1", "--num_steps=4",
                "--unroll_length=2", "--seed=1")
  assert done.returncode == 0, done.stderr
  values = l2l_file.load(save_path / "cw.l2l")
  assert values["linear"]["w"].shape == (1, 1)
  evaluated = subprocess.run(
      [sys.executable, "evaluate.py", "--problem=simple", "--optimizer=L2L",
       "--path=" + str(save_path), "--num_epochs=1", "--num_steps=2"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert evaluated.returncode == 0, evaluated.stderr
  assert "Log Mean Final Error" in evaluated.stdout


def test_train_help_lists_every_flag_and_the_problems():
  # absl prints the help and exits with status 1.
  done = _train("--help")
  for flag in ("--problem", "--save_path", "--num_epochs", "--num_particle",
               "--data_dir", "--unroll_length", "--[no]overwrite",
               "--ps_hosts", "--worker_hosts", "--job_name", "--task_index",
               "--[no]sync_replicas", "--cluster_timeout"):
    assert flag in done.stdout, flag
  for problem in ("simple", "quadratic", "quadratic-las", "digits",
                  "square_cos_<d>"):
    assert problem in done.stdout, problem


def test_train_command_unknown_problem_is_one_line(tmp_path):
  done = _train("--problem=nonsense", "--save_path=" + str(tmp_path / "x"))
  assert done.returncode == 1
  lines = done.stderr.strip().splitlines()
  assert lines[-1].startswith("Error: Unknown problem 'nonsense'")


def test_train_command_bad_cluster_description_is_one_line(tmp_path):
  done = _train("--problem=simple", "--save_path=" + str(tmp_path / "x"),
                "--ps_hosts=127.0.0.1:1", "--worker_hosts=127.0.0.1:2",
                "--job_name=chief")
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: --job_name must be one of ps, worker, got 'chief'.")
