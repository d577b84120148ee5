"""Tests for train_command.py through train.py, as a user runs it."""

import json
import os
import random
import re
import signal
import sys
import time
import types

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from l2l import files
from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.experiment import distributed_training
from l2l.experiment import evaluation
from l2l.experiment import records
from l2l.experiment import train_command
from l2l.experiment import training
from l2l.experiment import training_state
import commands
import util
from conftest import bowl_losses
from conftest import interrupt_after
from conftest import linear_optimizer_positions
from conftest import train_in_process
from conftest import validate
from conftest import write_problem_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(*args, cwd=ROOT):
  return commands.run([sys.executable, "train.py"] + list(args), cwd=cwd,
                        capture_output=True, text=True, timeout=300,
                        check=False)


def test_train_command_saves_an_optimizer_evaluate_reads(tmp_path):
  save_path = tmp_path / "simple"
  done = _train("--problem=simple", "--save_path=" + str(save_path),
                "--num_epochs=2", "--evaluation_period=2",
                "--evaluation_epochs=1", "--num_steps=4",
                "--unroll_length=2", "--seed=1", "--log_period=1")
  assert done.returncode == 0, done.stderr
  # DeepMind's train.py printed these blocks on stdout, where scripts read
  # them; the log (stderr) holds the rest.
  blocks = re.findall(r"(Epoch \d|EVALUATION)\nLog Mean Final Error: "
                      r"(-?\d+\.\d\d)\nMean epoch time: \d+\.\d\d s\n",
                      done.stdout)
  assert [header for header, _ in blocks] == ["Epoch 1", "Epoch 2",
                                               "EVALUATION"]
  assert all(np.isfinite(float(error)) for _, error in blocks)
  assert done.stdout.endswith(
      "Saving meta-optimizer to {}\n".format(save_path))
  assert "Log Mean Final Error" not in done.stderr
  values = l2l_file.load(save_path / "cw.l2l")
  assert values["linear"]["w"].shape == (1, 1)
  evaluated = commands.run(
      [sys.executable, "evaluate.py", "--problem=simple", "--optimizer=L2L",
       "--path=" + str(save_path), "--num_epochs=1", "--num_steps=2"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert evaluated.returncode == 0, evaluated.stderr
  assert "Log Mean Final Error" in evaluated.stdout


def test_train_help_lists_every_flag_and_the_problems():
  done = _train("--help")
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(
      "Usage: python train.py [flags]\n\nMeta-trains a learned optimizer")
  for flag in ("--problem", "--save_path", "--num_epochs", "--num_particle",
               "--data_dir", "--unroll_length", "--[no]overwrite",
               "--ps_hosts", "--worker_hosts", "--job_name", "--task_index",
               "--[no]sync_replicas", "--cluster_timeout"):
    assert flag in done.stdout, flag
  for problem in ("simple", "quadratic", "quadratic-las", "digits",
                  "square_cos_<d>"):
    assert problem in done.stdout, problem
  # The flags train shares with evaluate are the command's own too.
  assert "--problem_module" in done.stdout
  assert "--swarm_hop_noise" in done.stdout
  # -h and --helpfull: test_compare_command (the same help flags, cli.run).


# A cluster description: this process is worker 0 of one worker.
CLUSTER_ARGS = ("--ps_hosts=127.0.0.1:1", "--worker_hosts=127.0.0.1:2",
                "--job_name=worker")


def test_a_flag_absl_cannot_parse_is_one_line_too():
  # A value of the wrong type, outside the choices, or an unknown flag:
  # absl's own report is two lines.
  cases = {
      "--meta_objective=mean": "Error: flag --meta_objective=mean: value "
                               "should be one of <sum|log>; --helpfull "
                               "lists every flag.\n",
      "--num_epochs=abc": "Error: flag --num_epochs=abc: invalid literal for "
                          "int() with base 10: 'abc'; --helpfull lists every "
                          "flag.\n",
      "--nonsense=1": "Error: Unknown command line flag 'nonsense'; "
                      "--helpfull lists every flag.\n",
      # TensorFlow reduces seeds modulo 2^31 - 1: 2^31 would draw what 1
      # draws, and pass for another seed than the training's.
      "--seed=2147483648": "Error: flag --seed=2147483648: 2147483648 is not "
                           "an integer in the range [0, 2147483646]; "
                           "--helpfull lists every flag.\n",
  }
  for flag, expected in cases.items():
    done = _train(flag)
    assert done.returncode == 1, flag
    assert done.stderr.endswith(expected), done.stderr[-500:]
    assert done.stderr.count("Error") == 1, done.stderr[-500:]


def test_every_bad_train_flag_is_one_line_before_any_work(tmp_path):
  read_only = tmp_path / "a_file"
  read_only.write_text("not a directory")
  cases = {
      ("--num_epochs=0",): "--num_epochs=0 is invalid: expected an integer "
                           ">= 1.",
      ("--num_epochs=-3",): "--num_epochs=-3 is invalid",
      # Its progress readout overflowed on a range that long.
      ("--num_epochs=99999999999999999999999",):
          "--num_epochs=99999999999999999999999 is invalid: expected at most "
          "2147483647 (TensorFlow's sizes and counts are 32-bit integers).",
      ("--num_steps=4294967296", "--unroll_length=4294967296"):
          "--num_steps=4294967296 is invalid: expected at most 2147483647",
      ("--log_period=0",): "--log_period=0 is invalid",
      ("--evaluation_period=0",): "--evaluation_period=0 is invalid",
      ("--evaluation_epochs=-1",): "--evaluation_epochs=-1 is invalid",
      ("--num_steps=0",): "--num_steps=0 is invalid",
      ("--unroll_length=0",): "--unroll_length=0 is invalid",
      ("--checkpoint_period=0",): "--checkpoint_period=0 is invalid",
      ("--num_particle=0",): "--num_particle=0 is invalid",
      ("--learning_rate=0",): "--learning_rate=0.0 is invalid: expected a "
                              "finite number > 0.",
      ("--learning_rate=nan",): "--learning_rate=nan is invalid",
      ("--cluster_timeout=-1",): "--cluster_timeout=-1.0 is invalid: "
                                 "expected a finite number > 0.",
      ("--num_steps=10", "--unroll_length=3"):
          "--num_steps=10 is invalid: expected a multiple of "
          "--unroll_length=3.",
      ("--problem=square_cos_0",):
          "--problem=square_cos_0 is invalid: Problem 'square_cos_0' has 0 "
          "dimensions; square_cos_<d> needs d >= 1.",
      ("--problem=nonsense",): "--problem=nonsense is invalid: Unknown "
                               "problem 'nonsense'",
      ("--problem=family:nonsense=1",): "--problem=family:nonsense=1 is "
                                        "invalid: Bad family option "
                                        "'nonsense=1'",
      ("--problem=quadratik",):
          "--problem=quadratik is invalid: Unknown problem 'quadratik'. "
          "Did you mean 'quadratic' or 'quadratic-las' or 'quadratic-100'? "
          "Known problems: ",
      ("--resume", "--overwrite", "--save_path=" + str(tmp_path)):
          "--resume continues the run in --save_path and --overwrite starts "
          "over",
      ("--resume",): "--resume needs the --save_path",
      ("--save_path=" + str(read_only / "sub"),):
          "cannot be created: {} is not a directory.".format(read_only),
      ("--save_path=" + str(read_only),):
          "it exists and is not a directory",
      ("--save_path=/proc/l2l-test",): "--save_path=/proc/l2l-test is not "
                                       "writable",
      ("--logdir=/proc/l2l-test",): "--logdir=/proc/l2l-test is not "
                                    "writable",
      ("--save_path=",): "--save_path= is invalid: expected a path, got an "
                         "empty value.",
      ("--logdir=",): "--logdir= is invalid: expected a path",
      ("--data_dir=",): "--data_dir= is invalid: expected a path",
      ("--problem_module=",): "--problem_module= is invalid: expected a "
                              "path",
      ("--swarm_hop_noise=0",): "--swarm_hop_noise=0.0 is invalid: expected "
                                "a finite number > 0.",
      ("--swarm_step_scale=-1",): "--swarm_step_scale=-1.0 is invalid: "
                                  "expected a finite number > 0.",
      ("--swarm_step_shrink=2",): "--swarm_step_shrink=2.0 is invalid: "
                                  "Swarm option step_shrink must be in (0, "
                                  "1], got 2.0.",
      # Checked whether or not the run uses them.
      ("--swarm_step_noise=nan",): "--swarm_step_noise=nan is invalid: "
                                   "expected a finite number >= 0.",
      ("--swarm_entropy_weight=inf",): "--swarm_entropy_weight=inf is "
                                       "invalid: expected a finite number "
                                       ">= 0.",
      # What a swarm does not take, named before the save path is touched.
      ("--num_particle=4", "--meta_objective=log"):
          "--meta_objective=log is for plain L2L; a swarm (--num_particle=4) "
          "meta-trains on --swarm_objective instead.",
      ("--num_particle=4", "--recompute"):
          "--recompute is for plain L2L; a swarm (--num_particle=4) does not "
          "take it.",
      CLUSTER_ARGS[:2] + ("--job_name=chief",):
          "--job_name must be one of ps, worker, got 'chief'.",
      # What one machine alone can do.
      CLUSTER_ARGS + ("--meta_objective=log",):
          "--meta_objective=log is not available to cluster training, which "
          "sums the losses; drop the flag or train on one machine.",
      CLUSTER_ARGS + ("--recompute",):
          "--recompute is not available to cluster training; drop the flag "
          "or train on one machine.",
  }
  # Values absl's parsing refuses (train.py then exits 1 naming the flag,
  # as test_bad_choices_name_the_flag_and_the_choices runs).
  refused_by_absl = {
      "--swarm_time_weighting=late": "flag --swarm_time_weighting=late: "
                                     "value should be one of <uniform|",
      "--swarm_step_noise=-1": "flag --swarm_step_noise=-1: -1.0 is not a "
                               "non-negative number",
      "--swarm_attraction_gain=always": "flag --swarm_attraction_gain=always"
                                        ": value should be one of <off|",
      "--swarm_entropy_weight=-0.5": "flag --swarm_entropy_weight=-0.5: "
                                     "-0.5 is not a non-negative number",
      "--meta_objective=mean": "flag --meta_objective=mean: value should be "
                               "one of <sum|log>"}
  results = validate("train_command", list(cases) + [
      ("--save_path=" + str(tmp_path / "new"), "--seed=1")] + [
          ("--num_particle=2", flag) for flag in refused_by_absl])
  for argv, expected in cases.items():
    code, err = results[argv]
    assert code == 1, argv
    assert err.startswith("Error: ") and err.count("\n") == 1, (argv, err)
    assert expected in err, (argv, err)
  for flag, message in refused_by_absl.items():
    code, err = results[("--num_particle=2", flag)]
    assert code == "parse" and message in err, (flag, code, err)
  assert results[("--save_path=" + str(tmp_path / "new"), "--seed=1")] == (
      0, "")
  # Validation creates nothing.
  assert not (tmp_path / "new").exists()


def test_a_zero_flag_through_train_py_is_one_line():
  done = _train("--num_steps=0")
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: --num_steps=0 is invalid: expected an integer >= 1.")
  assert "Traceback" not in done.stderr


def test_an_unwritable_training_state_is_found_before_training(tmp_path):
  # As a read-only state directory would (root writes anywhere, so the
  # refusal is simulated where the check asks).
  (tmp_path / "training_state").mkdir()
  done = commands.run_patched(
      "l2l.experiment.train_command",
      ["train.py", "--problem=simple", "--save_path=" + str(tmp_path),
       "--resume"],
      "import tempfile\n"
      "real = tempfile.TemporaryFile\n"
      "def refuse(*args, dir=None, **kwargs):\n"
      "  if dir and dir.endswith('training_state'):\n"
      "    raise PermissionError(13, 'Permission denied')\n"
      "  return real(*args, dir=dir, **kwargs)\n"
      "tempfile.TemporaryFile = refuse\n", cwd=ROOT)
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: --save_path={0}/training_state is not writable: Permission "
      "denied ({0}/training_state); the run keeps its training state "
      "there.".format(tmp_path))


def test_a_save_path_in_the_home_directory_is_expanded(tmp_path):
  # The shell leaves "~" alone after "=": taken as is it would make a
  # directory named "~" in the working directory.
  home, work = tmp_path / "home", tmp_path / "work"
  home.mkdir()
  work.mkdir()
  env = dict(os.environ, HOME=str(home),
             **{files.CACHE_ENV_VAR: os.path.dirname(files.cache_dir())})
  done = commands.run(
      [sys.executable, os.path.join(ROOT, "train.py"), "--problem=simple",
       "--save_path=~/simple", "--num_epochs=1", "--evaluation_period=1",
       "--evaluation_epochs=1", "--num_steps=2", "--unroll_length=2"],
      cwd=str(work), env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert done.returncode == 0, done.stderr
  assert "Saving meta-optimizer to {}\n".format(home / "simple") in (
      done.stdout)
  assert (home / "simple" / "cw.l2l").is_file()
  assert os.listdir(work) == []


def _state_epoch(save_path):
  try:
    return training_state.read(str(save_path))[1]["epoch"]
  except (training_state.TrainingStateError, OSError):
    return None


def _wait_for_state(process, save_path, after):
  """Waits until the run keeps a state past epoch `after`; returns it."""
  while True:
    epoch = _state_epoch(save_path)
    if epoch is not None and epoch > after:
      return epoch
    assert process.poll() is None, process.communicate()
    time.sleep(0.05)


KILL_ARGS = ("--problem=square_cos_2", "--num_epochs=300",
             "--evaluation_period=100", "--evaluation_epochs=2",
             "--num_steps=4", "--unroll_length=2", "--seed=5",
             "--checkpoint_period=10")


@pytest.mark.slow
def test_interrupted_and_killed_runs_resume_to_the_uninterrupted_result(
    tmp_path):
  whole = tmp_path / "whole"
  train_in_process(KILL_ARGS, save_path=str(whole))
  part = tmp_path / "part"
  command = [sys.executable, "train.py", "--save_path=" + str(part)]
  command += list(KILL_ARGS)
  rng = random.Random(0)
  # Ctrl-C: the epoch under way finishes, its state is kept, one line says
  # how to resume.
  process = commands.Popen(command, cwd=ROOT, stdout=commands.PIPE,
                             stderr=commands.PIPE, text=True)
  epoch = _wait_for_state(process, part, 0)
  time.sleep(rng.uniform(0, 0.2))
  process.send_signal(signal.SIGINT)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 128 + signal.SIGINT, stderr
  assert "Traceback" not in stderr
  last = stderr.strip().splitlines()[-1]
  epoch = _state_epoch(part)
  # Stopped before its first evaluation, it evaluated and saved the
  # optimizer it had; the resumed runs below still end as the whole run.
  assert last.startswith(
      "Interrupted (SIGINT): the training state of epoch {0} is in {1}, an "
      "optimizer evaluated on stopping (epoch {0}, mean final loss ".format(
          epoch, training_state.path(part)))
  assert " continue with: python train.py " in last
  assert last.endswith(" --resume")
  assert manifest.read(part)["training"]["epochs_done"] == epoch
  # SIGKILL at random moments, twice: the last kept state stands.
  for _ in range(2):
    process = commands.Popen(command + ["--resume"], cwd=ROOT,
                               stdout=commands.DEVNULL,
                               stderr=commands.DEVNULL)
    epoch = _wait_for_state(process, part, epoch)
    time.sleep(rng.uniform(0, 0.2))
    process.kill()
    process.wait()
    epoch = _state_epoch(part)
    assert 0 < epoch < 300
  done = commands.run(command + ["--resume"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr
  assert _state_epoch(part) == 300
  expected = l2l_file.load(whole / "cw.l2l")
  got = l2l_file.load(part / "cw.l2l")
  for module, variables in expected.items():
    for name, value in variables.items():
      np.testing.assert_allclose(got[module][name], value, rtol=1e-5,
                                 atol=1e-7)
  # Nothing but the optimizer, its manifest, its lock and its state.
  assert sorted(os.listdir(part)) == [".lock", "cw.l2l", "manifest.json",
                                      "training_state"]
  assert os.listdir(part / "training_state") == ["state.npz"]


def _stoppable_run(save_path, *args):
  """Starts train.py on `simple`, no evaluation due for a long time."""
  command = [sys.executable, "train.py", "--save_path=" + str(save_path),
             "--problem=simple", "--num_epochs=1000000", "--num_steps=4",
             "--unroll_length=2", "--checkpoint_period=10",
             "--evaluation_period=1000000", "--seed=1"] + list(args)
  return commands.Popen(command, cwd=ROOT, stdout=commands.PIPE,
                          stderr=commands.PIPE, text=True)


def test_a_run_stopped_before_evaluating_leaves_an_optimizer(tmp_path):
  process = _stoppable_run(tmp_path, "--evaluation_epochs=3")
  _wait_for_state(process, tmp_path, 0)
  process.send_signal(signal.SIGTERM)
  stdout, stderr = process.communicate(timeout=300)
  assert process.returncode == 128 + signal.SIGTERM, stderr
  assert "Traceback" not in stderr
  # The save on stopping is announced as every save is.
  assert stdout.endswith("Saving meta-optimizer to {}\n".format(tmp_path))
  epoch = _state_epoch(tmp_path)
  values = l2l_file.load(tmp_path / "cw.l2l")
  # `simple`'s instances are all x = 1: its evaluation is the closed form.
  final = linear_optimizer_positions(values, 4)[-1]**2
  last = stderr.strip().splitlines()[-1]
  match = re.fullmatch(
      re.escape("Interrupted (SIGTERM): the training state of epoch {0} is "
                "in {1}, an optimizer evaluated on stopping (epoch {0}, mean "
                "final loss ".format(epoch, training_state.path(tmp_path))) +
      r"(\S+)" +
      re.escape(") in {} until the resumed run's first evaluation replaces "
                "it; continue with: python train.py ".format(tmp_path)) +
      ".*", last)
  assert match, last
  # The run evaluates in float32; the closed form here is in float64.
  assert float(match.group(1)) == pytest.approx(final, rel=1e-5)
  saved = manifest.read(tmp_path)["training"]
  assert saved["epochs_done"] == epoch and saved["saved_on_stop"]
  # The state's best evaluation stays the evaluations' (none yet).
  info = training_state.read(str(tmp_path))[1]
  assert info["best_evaluation"] is None and not info["saved"]
  assert info["saved_on_stop"]["epoch"] == epoch
  # It is an optimizer evaluation loads (evaluate.py's evaluation; that
  # command reads what train.py saves in the first test here).
  evaluated = evaluation.evaluate("L2L", "simple", num_steps=4, num_epochs=2,
                                  seed=0, path=str(tmp_path),
                                  show_progress=False)
  assert evaluation.final_error(evaluated.losses) == pytest.approx(
      final, rel=1e-5)


def test_a_second_signal_stops_the_evaluation_on_stopping_at_once(tmp_path):
  # An evaluation of 10^6 epochs: only the second signal can end it.
  process = _stoppable_run(tmp_path, "--evaluation_epochs=1000000")
  _wait_for_state(process, tmp_path, 0)
  process.send_signal(signal.SIGINT)
  interrupt_after(process, "Stopping: evaluating the optimizer of epoch",
                  signal.SIGINT)
  _, stderr = process.communicate(timeout=60)
  assert process.returncode == 128 + signal.SIGINT, stderr
  last = stderr.strip().splitlines()[-1]
  assert last.startswith(
      "Interrupted (SIGINT): the training state of epoch {} is in {}, no "
      "optimizer (none was evaluated); continue with: "
      .format(_state_epoch(tmp_path), training_state.path(tmp_path))), last
  assert not (tmp_path / "cw.l2l").exists()


@pytest.mark.slow
def test_a_second_run_on_a_save_path_is_refused_naming_the_first(tmp_path):
  command = [sys.executable, "train.py", "--save_path=" + str(tmp_path),
             "--problem=simple", "--num_epochs=1000000", "--num_steps=2",
             "--unroll_length=2", "--checkpoint_period=10",
             "--evaluation_period=1000000"]
  first = commands.Popen(command, cwd=ROOT, stdout=commands.DEVNULL,
                           stderr=commands.DEVNULL)
  try:
    _wait_for_state(first, tmp_path, 0)
    second = _train(*command[2:])
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1].startswith(
        "Error: {} is in use by another run (pid {} on ".format(
            tmp_path, first.pid))
    assert "train.py --save_path=" + str(tmp_path) in second.stderr
  finally:
    first.kill()
    first.wait()
  # The killed run's lock is gone with it: its state can be resumed (here
  # to an end it had already passed, before any evaluation: nothing saved).
  third = _train(*(command[2:] + ["--resume", "--num_epochs=1"]))
  assert third.returncode == 1, third.stderr
  assert third.stderr.strip().splitlines()[-1].startswith(
      "Error: no optimizer was saved in {}: training ended at epoch ".format(
          tmp_path))


@pytest.mark.slow
def test_a_problem_of_ones_own_trains_resumes_and_evaluates(tmp_path):
  module = write_problem_module(tmp_path)
  problem = "--problem=bowl:num_dims=3,scale=0.5"
  common = ["--problem_module=" + module, problem, "--num_steps=4",
            "--unroll_length=2", "--evaluation_period=4",
            "--evaluation_epochs=1", "--seed=1"]
  # Half the run, then resumed to the end: the same optimizer as the
  # whole run (trained here in-process, on the module's problem).
  part = str(tmp_path / "part")
  first = _train(*common, "--save_path=" + part, "--num_epochs=2")
  assert first.returncode == 0, first.stderr
  # Resumed with the options in another order: the same problem.
  resumed = _train(*([common[0], "--problem=bowl:scale=0.5,num_dims=3"] +
                     common[2:]),
                   "--save_path=" + part, "--num_epochs=4", "--resume")
  assert resumed.returncode == 0, resumed.stderr
  assert training_state.read(part)[1]["epoch"] == 4
  util.load_problem_module(module)
  try:
    train_in_process(common[1:], num_epochs=4,
                     save_path=str(tmp_path / "whole"))
  finally:
    util.unregister_problem("bowl")
  values = l2l_file.load(os.path.join(part, "cw.l2l"))
  expected = l2l_file.load(tmp_path / "whole" / "cw.l2l")
  for name in ("w", "b"):
    np.testing.assert_allclose(values["linear"][name],
                               expected["linear"][name], rtol=1e-6)
  w = float(values["linear"]["w"][0, 0])
  b = float(values["linear"]["b"][0])
  assert w < 0  # Meta-training moved the net from zero.
  saved = manifest.read(part)
  assert saved["problem"] == "bowl:scale=0.5,num_dims=3"
  # The module that registered it, which evaluating it needs again.
  assert saved["training"]["problem_module"] == module
  # evaluate.py runs the saved rule on it: x <- x + w g + b per step.
  evaluated = commands.run(
      [sys.executable, "evaluate.py", "--problem_module=" + module, problem,
       "--optimizer=L2L", "--path=" + part, "--num_epochs=2",
       "--num_steps=6", "--records_dir=" + str(tmp_path / "records")],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert evaluated.returncode == 0, evaluated.stderr
  (name,) = os.listdir(tmp_path / "records")
  arrays, _ = records.read(str(tmp_path / "records" / name))
  closed_form = bowl_losses(6, 3, 0.5, lambda x, g: x + w * g + b)
  np.testing.assert_allclose(arrays["losses"][:, :, 0],
                             [closed_form, closed_form], rtol=1e-5)


def test_a_cluster_chief_refuses_a_state_of_other_settings_in_one_line(
    tmp_path):
  settings = training.trajectory_settings("quadratic", 4, 2, 0.001, False,
                                          None, 1)
  training_state.write(str(tmp_path), {}, {"epoch": 3, "resets": 0,
                                           "settings": settings})
  chief = ("--ps_hosts=127.0.0.1:1", "--worker_hosts=127.0.0.1:2",
           "--job_name=worker", "--num_steps=4", "--unroll_length=2",
           "--save_path=" + str(tmp_path))
  # Refused before the chief starts its server (no ps task is needed).
  other_problem = _train("--problem=simple", "--resume", *chief)
  assert other_problem.returncode == 1
  assert other_problem.stderr.strip().splitlines()[-1] == (
      "Error: {} was written with --problem=quadratic, but this run has "
      "--problem=simple; resume with the same settings.".format(
          training_state.path(tmp_path)))
  # A save path the refused chief created is not left behind.
  new = tmp_path / "new"
  no_state = _train("--problem=quadratic", "--resume",
                    *(chief[:-1] + ("--save_path=" + str(new),)))
  assert no_state.returncode == 1
  assert "No training state" in no_state.stderr.strip().splitlines()[-1]
  assert not new.exists()


@pytest.mark.slow
def test_train_command_swarm_objective_flags(tmp_path):
  save_path = tmp_path / "swarm"
  done = _train("--problem=square_cos_2", "--save_path=" + str(save_path),
                "--num_particle=2", "--swarm_objective=best_so_far",
                "--swarm_time_weighting=increasing",
                "--swarm_normalise_entropy", "--swarm_entropy_weight=0.1",
                "--swarm_entropy",
                "--swarm_per_instance", "--swarm_step_noise=0.01",
                "--swarm_attraction_gain=jump",
                "--num_epochs=1", "--evaluation_epochs=1", "--num_steps=4",
                "--unroll_length=2", "--seed=1")
  assert done.returncode == 0, done.stderr
  attention = l2l_file.load(save_path / "attention.l2l")
  assert attention["feature_attention"]["b"].shape == (10, 4)
  gate = l2l_file.load(save_path / "gate.l2l")["attraction_gate"]
  assert gate["w"].shape == (2,) and gate["b"].shape == ()
  with open(save_path / "manifest.json") as stream:
    swarm = json.load(stream)["swarm"]
  assert swarm["objective"] == "best_so_far"
  assert swarm["time_weighting"] == "increasing"
  assert swarm["entropy_weight"] == 0.1 and swarm["normalise_entropy"]
  assert swarm["per_instance"] and swarm["step_noise"] == 0.01
  assert swarm["attraction_gain"] == "jump"
  evaluated = commands.run(
      [sys.executable, "evaluate.py", "--problem=square_cos_2",
       "--optimizer=L2L", "--path=" + str(save_path), "--num_particle=2",
       "--num_epochs=1", "--num_steps=2",
       "--records_dir=" + str(tmp_path / "records")],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert evaluated.returncode == 0, evaluated.stderr
  assert "Best particle per start set: mean final loss" in evaluated.stdout


def test_swarm_flags_without_a_swarm_are_named(tmp_path):
  done = _train("--problem=simple", "--save_path=" + str(tmp_path / "one"),
                "--num_epochs=1", "--evaluation_epochs=1", "--num_steps=2",
                "--unroll_length=2", "--swarm_hop_noise=0.3",
                "--swarm_objective=final_best")
  assert done.returncode == 0, done.stderr
  assert ("--swarm_hop_noise, --swarm_objective have no effect: "
          "--num_particle=1 trains one point, not a swarm." in done.stderr)
  with open(tmp_path / "one" / "manifest.json") as stream:
    assert json.load(stream)["swarm"]["num_particles"] == 1


@pytest.mark.parametrize("flags, warning", [
    (("--swarm_hop_noise=0.3",), "--swarm_hop_noise has no effect: the "
     "swarm's attraction gain is 'off', not 'hop'."),
    (("--noswarm_entropy", "--swarm_entropy_weight=0.1",
      "--swarm_normalise_entropy"),
     "--swarm_entropy_weight, --swarm_normalise_entropy have no effect: "
     "--noswarm_entropy leaves the entropy term out."),
    (("--swarm_objective=final_best", "--swarm_time_weighting=final"),
     "--swarm_time_weighting has no effect: --swarm_objective=final_best "
     "scores the last step only."),
])
def test_swarm_flags_a_swarm_does_not_use_are_named(monkeypatch, flags,
                                                   warning):
  warnings = []
  monkeypatch.setattr(train_command.cli.logging, "warning",
                      lambda fmt, *args: warnings.append(fmt % args))
  with flagsaver.flagsaver():
    flags_ = train_command.FLAGS
    flags_.unparse_flags()
    flags_(["train.py", "--num_particle=2"] + list(flags))
    options = train_command.swarm_options()
  assert warnings == [warning]
  # Accepted all the same, as the originals accepted such flags.
  assert options["use_entropy"] == ("--noswarm_entropy" not in flags)


def test_train_command_hop_swarm_flags(tmp_path):
  save_path = tmp_path / "hop"
  done = _train("--problem=rastrigin:num_dims=3,batch_size=4",
                "--save_path=" + str(save_path), "--num_particle=2",
                "--swarm_per_instance", "--swarm_attraction_gain=hop",
                "--swarm_hop_noise=0.3", "--swarm_step_shrink=0.8",
                "--noswarm_entropy", "--num_epochs=1", "--evaluation_epochs=1",
                "--num_steps=4", "--unroll_length=2", "--seed=1")
  assert done.returncode == 0, done.stderr
  with open(save_path / "manifest.json") as stream:
    swarm = json.load(stream)["swarm"]
  assert swarm["attraction_gain"] == "hop" and swarm["hop_noise"] == 0.3
  assert swarm["step_shrink"] == 0.8
  # The fresh hop gate is the stall rule, one meta-step from its start.
  gate = l2l_file.load(save_path / "gate.l2l")["attraction_gate"]
  np.testing.assert_allclose(gate["w"], [0.0, 4.0], atol=0.05)


@pytest.mark.slow
def test_train_command_log_meta_objective_is_recorded_and_kept(tmp_path):
  save_path = tmp_path / "log"
  common = ["--problem=quadratic", "--save_path=" + str(save_path),
            "--num_epochs=1", "--evaluation_epochs=1", "--num_steps=4",
            "--unroll_length=2", "--seed=1"]
  done = _train(*common, "--meta_objective=log")
  assert done.returncode == 0, done.stderr
  assert manifest.read(save_path)["training"]["meta_objective"] == "log"
  # Resuming without the flag would change what the run minimises.
  resumed = _train(*common, "--resume", "--num_epochs=2")
  assert resumed.returncode == 1
  assert resumed.stderr.strip().splitlines()[-1] == (
      "Error: {} was written with --meta_objective=log, but this run has "
      "--meta_objective=sum; resume with the same settings.".format(
          training_state.path(str(save_path))))
  assert training_state.read(str(save_path))[1]["epoch"] == 1


def test_bad_choices_name_the_flag_and_the_choices(tmp_path):
  # One through train.py: absl's parse error exits 1 naming the flag.
  done = _train("--problem=square_cos_2", "--num_particle=2",
                "--swarm_objective=greedy",
                "--save_path=" + str(tmp_path / "x"))
  assert done.returncode == 1
  assert ("flag --swarm_objective=greedy: value should be one of "
          "<sum|best_so_far|final_best>") in done.stderr, done.stderr
  assert not (tmp_path / "x").exists()
  # The other choices: test_every_bad_train_flag_is_one_line_before_any_work.


@pytest.mark.slow
def test_train_command_on_the_family(tmp_path):
  save_path = tmp_path / "family"
  done = _train("--problem=family:datasets=iris,max_width=4,max_dims=3",
                "--save_path=" + str(save_path), "--num_epochs=2",
                "--evaluation_period=2", "--evaluation_epochs=1",
                "--num_steps=4", "--unroll_length=2", "--seed=1")
  assert done.returncode == 0, done.stderr
  values = l2l_file.load(save_path / "cw.l2l")
  # The family's default net: a 2x20 LSTM with two outputs per coordinate
  # (a correction and a step-size change) and its global step factor.
  assert values["linear"]["w"].shape == (20, 2)
  assert set(values) == {"lstm_1", "lstm_2", "linear", "step_size"}
  assert manifest.read(save_path)["nets"]["cw"]["net"] == "AdaptiveStepLSTM"


def test_a_diverged_cluster_task_exits_as_a_diverged_run(monkeypatch, capsys):
  def diverge(*args, **kwargs):
    del args, kwargs
    raise training.TrainingDiverged("the optimizee loss became nan")

  monkeypatch.setattr(distributed_training, "train", diverge)
  task = types.SimpleNamespace(job_name="worker", task_index=0)
  with flagsaver.flagsaver():
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    status = train_command._train_on_cluster(task, {})
  assert status == train_command.EXIT_DIVERGED == 2
  assert capsys.readouterr().err == (
      "Error: worker 0: training diverged: the optimizee loss became nan\n")


# train.py whose third training-state write finds the disk full.
_FULL_DISK_AT_THIRD_STATE = """
import errno, sys
from l2l.experiment import train_command, training_state
real_write, writes = training_state.write, []
def write(*args, **kwargs):
  writes.append(1)
  if len(writes) == 3:
    raise OSError(errno.ENOSPC, "No space left on device")
  return real_write(*args, **kwargs)
training_state.write = write
sys.argv = ["train.py"] + sys.argv[1:]
train_command.run()
"""


def test_a_full_disk_says_which_state_is_kept_and_how_to_go_on(tmp_path):
  save_path = tmp_path / "run"
  args = ["--problem=quadratic", "--save_path=" + str(save_path),
          "--num_epochs=4", "--num_steps=20", "--unroll_length=10",
          "--evaluation_period=100", "--evaluation_epochs=1",
          "--checkpoint_period=1", "--seed=1"]
  done = commands.run([sys.executable, "-c", _FULL_DISK_AT_THIRD_STATE] + args,
                      cwd=ROOT, capture_output=True, text=True, timeout=300,
                      check=False)
  assert done.returncode == 1
  # The states of epochs 0 and 1 were written; epoch 2's was not.
  assert training_state.read(str(save_path))[1]["epoch"] == 1
  assert done.stderr.splitlines()[-1] == (
      "Error: [Errno 28] No space left on device. The training state of "
      "epoch 1 is kept in {}: once that is mended, continue with: python "
      "train.py {} --resume".format(training_state.path(str(save_path)),
                                    " ".join(args)))
