"""Tests for train_command.py through train.py, as a user runs it."""

import json
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
               "--data_dir", "--unroll_length", "--[no]overwrite"):
    assert flag in done.stdout, flag
  for problem in ("simple", "quadratic", "quadratic-las", "digits",
                  "square_cos_<d>"):
    assert problem in done.stdout, problem


def test_train_command_unknown_problem_is_one_line(tmp_path):
  done = _train("--problem=nonsense", "--save_path=" + str(tmp_path / "x"))
  assert done.returncode == 1
  lines = done.stderr.strip().splitlines()
  assert lines[-1].startswith("Error: Unknown problem 'nonsense'")


def test_train_command_swarm_objective_flags(tmp_path):
  save_path = tmp_path / "swarm"
  done = _train("--problem=square_cos_2", "--save_path=" + str(save_path),
                "--num_particle=2", "--swarm_objective=best_so_far",
                "--swarm_time_weighting=increasing",
                "--swarm_normalise_entropy", "--swarm_entropy_weight=0.1",
                "--swarm_entropy",
                "--swarm_per_instance", "--swarm_step_noise=0.01",
                "--num_epochs=1", "--evaluation_epochs=1", "--num_steps=4",
                "--unroll_length=2", "--seed=1")
  assert done.returncode == 0, done.stderr
  attention = l2l_file.load(save_path / "attention.l2l")
  assert attention["feature_attention"]["b"].shape == (10, 4)
  with open(save_path / "manifest.json") as stream:
    swarm = json.load(stream)["swarm"]
  assert swarm["objective"] == "best_so_far"
  assert swarm["time_weighting"] == "increasing"
  assert swarm["entropy_weight"] == 0.1 and swarm["normalise_entropy"]
  assert swarm["per_instance"] and swarm["step_noise"] == 0.01
  evaluated = subprocess.run(
      [sys.executable, "evaluate.py", "--problem=square_cos_2",
       "--optimizer=L2L", "--path=" + str(save_path), "--num_particle=2",
       "--num_epochs=1", "--num_steps=2",
       "--records_dir=" + str(tmp_path / "records")],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert evaluated.returncode == 0, evaluated.stderr
  assert "Best particle mean final loss" in evaluated.stdout


def test_train_command_bad_swarm_flags_name_the_flag(tmp_path):
  for flag, name in (("--swarm_objective=greedy", "swarm_objective"),
                     ("--swarm_time_weighting=late", "swarm_time_weighting"),
                     ("--swarm_step_noise=-1", "swarm_step_noise"),
                     ("--swarm_entropy_weight=-0.5", "swarm_entropy_weight")):
    done = _train("--problem=square_cos_2", "--num_particle=2", flag,
                  "--save_path=" + str(tmp_path / "x"))
    assert done.returncode == 1, flag
    assert name in done.stderr, (flag, done.stderr)
    assert not (tmp_path / "x").exists()
