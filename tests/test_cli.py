"""Tests for train.py, evaluation.py and evaluate.py."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from l2l.checkpoint import l2l_file
from l2l.experiment import evaluation
from l2l.experiment import training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A short run on `simple`: 4 epochs of 2 unrolls of 2 steps, evaluated twice.
TRAIN_ARGS = {"num_epochs": 4, "evaluation_period": 2, "evaluation_epochs": 1,
              "num_steps": 4, "unroll_length": 2, "seed": 1,
              "show_progress": False}
EVAL_ARGS = {"num_epochs": 2, "show_progress": False}


def _losses(result, num_steps):
  """The losses of a single-point `Evaluation`, [epochs, num_steps + 1]."""
  assert result.losses.shape == (EVAL_ARGS["num_epochs"], num_steps + 1, 1)
  return result.losses[:, :, 0]


def _linear_optimizer_positions(values, steps):
  """Positions on f = x^2 from 1 under `simple`'s learned update w g + b.

  `simple` meta-trains a coordinate-wise LSTM with no layers: the update of a
  gradient g is the linear layer `w g + b` (scale 1, no preprocessing).
  """
  w = float(values["linear"]["w"][0, 0])
  b = float(values["linear"]["b"][0])
  positions = [1.0]
  for _ in range(steps):
    x = positions[-1]
    positions.append(x + w * 2 * x + b)
  return np.array(positions)


@pytest.fixture(scope="module")
def trained_simple(tmp_path_factory):
  """Meta-trains on `simple` into a directory that also holds a user file.

  Returns:
    `(directory, train's return value)`.
  """
  directory = tmp_path_factory.mktemp("simple")
  (directory / "notes.txt").write_text("keep me")
  result = training.train("simple", save_path=str(directory), **TRAIN_ARGS)
  return directory, result


def test_train_saves_the_best_optimizer(trained_simple):
  directory, result = trained_simple
  assert sorted(os.listdir(directory)) == ["cw.l2l", "notes.txt"]
  assert (directory / "notes.txt").read_text() == "keep me"
  values = l2l_file.load(directory / "cw.l2l")
  assert {m: sorted(v) for m, v in values.items()} == {"linear": ["b", "w"]}
  assert values["linear"]["w"].shape == (1, 1)
  # Meta-training moved the zero-initialised update rule.
  assert np.abs(values["linear"]["w"]).max() > 1e-4
  # The returned value is the saved optimizer's evaluation: f after 4 steps.
  expected = _linear_optimizer_positions(values, 4)[-1]**2
  np.testing.assert_allclose(result, expected, rtol=1e-5)
  assert result < 1.0


def test_evaluate_trained_optimizer_follows_its_update_rule(trained_simple):
  directory, _ = trained_simple
  result = evaluation.evaluate("L2L", "simple", num_steps=5,
                               path=str(directory), **EVAL_ARGS)
  values = l2l_file.load(directory / "cw.l2l")
  expected = _linear_optimizer_positions(values, 5)**2
  np.testing.assert_allclose(_losses(result, 5), [expected, expected],
                             rtol=1e-5)
  assert result.seconds.shape == (2,)


def test_train_refuses_to_overwrite(tmp_path):
  saved = tmp_path / "cw.l2l"
  saved.write_bytes(b"earlier optimizer")
  with pytest.raises(ValueError, match="--overwrite"):
    training.train("simple", save_path=str(tmp_path), **TRAIN_ARGS)
  assert saved.read_bytes() == b"earlier optimizer"
  training.train("simple", save_path=str(tmp_path), overwrite=True, **TRAIN_ARGS)
  assert sorted(l2l_file.load(saved)) == ["linear"]


def test_train_save_path_must_be_a_directory(tmp_path):
  path = tmp_path / "file"
  path.write_text("x")
  with pytest.raises(ValueError, match="is not a directory"):
    training.train("simple", save_path=str(path), **TRAIN_ARGS)


def test_train_num_steps_must_be_a_multiple_of_unroll_length():
  with pytest.raises(ValueError,
                     match=r"num_steps \(5\) must be a multiple of "
                     r"unroll_length \(2\)"):
    training.train("simple", **dict(TRAIN_ARGS, num_steps=5))


def test_evaluate_trained_simple_multi(tmp_path):
  training.train("simple-multi", save_path=str(tmp_path), **TRAIN_ARGS)
  result = evaluation.evaluate("L2L", "simple-multi", num_steps=2,
                               path=str(tmp_path), **EVAL_ARGS)
  assert np.all(np.isfinite(result.losses))


def test_optimizers_see_the_same_instances():
  losses = {name: _losses(evaluation.evaluate(
      name, "quadratic", num_steps=2, seed=3, learning_rate=0.01, **EVAL_ARGS),
                           2)
            for name in ("L2L", "Adam", "SGD")}
  for name, value in losses.items():
    np.testing.assert_allclose(value[:, 0], losses["SGD"][:, 0], rtol=1e-5,
                               err_msg=name)
  # Each epoch is a fresh instance.
  assert abs(losses["SGD"][0, 0] - losses["SGD"][1, 0]) > 1e-3
  np.testing.assert_array_less(losses["SGD"][:, 1:], losses["SGD"][:, :-1])


def test_sgd_baseline_matches_numpy():
  result = evaluation.evaluate("SGD", "simple", num_steps=6,
                               learning_rate=0.1, **EVAL_ARGS)
  expected = 0.8**(2 * np.arange(7))  # x <- x - 0.1 * 2x from 1; f = x^2.
  np.testing.assert_allclose(_losses(result, 6), [expected, expected],
                             rtol=1e-5)


def test_evaluate_checkpoint_of_another_shape(tmp_path, ref):
  # Input width 1 (DeepMind's quadratic): quadratic-las's LogAndSign gives
  # the LSTM 2 inputs.
  path = l2l_file.save(ref.random_checkpoint(0, 1, (20, 20), 1),
                         tmp_path / "cw.l2l")
  with pytest.raises(ValueError) as error:
    evaluation.evaluate("L2L", "quadratic-las", num_steps=1,
                        path=str(tmp_path), **EVAL_ARGS)
  message = str(error.value)
  assert "lstm_1/w_gates" in message and path in message
  assert "[21, 80]" in message and "[22, 80]" in message


def test_evaluate_untrained_l2l_warns(caplog):
  with caplog.at_level(logging.WARNING):
    result = evaluation.evaluate("L2L", "simple", num_steps=2, **EVAL_ARGS)
  assert any(record.levelno == logging.WARNING and
             "untrained L2L optimizer" in record.getMessage()
             for record in caplog.records)
  # The zero-initialised update rule does not move x.
  np.testing.assert_array_equal(_losses(result, 2), np.ones([2, 3]))


def test_evaluate_unknown_optimizer():
  with pytest.raises(ValueError, match="Unknown optimizer 'Lion'"):
    evaluation.evaluate("Lion", "simple")


def test_evaluate_command_line(ref, tmp_path):
  command = [sys.executable, "evaluate.py", "--problem=simple",
             "--optimizer=Adam", "--num_epochs=2", "--num_steps=3",
             "--records_dir=" + str(tmp_path)]
  done = subprocess.run(command, cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.returncode == 0, done.stderr
  final = ref.adam(lambda x, t: 2 * x, 1.0, 3, learning_rate=0.001)[-1]
  assert "Epoch 2\n" in done.stdout
  assert "Log Mean Final Error: {:.2f}\n".format(
      np.log10(final**2)) in done.stdout
  (records,) = os.listdir(tmp_path)
  assert "Records: {}\n".format(tmp_path / records) in done.stdout


def test_train_writes_tensorboard_summaries(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  training.train("simple", logdir=str(tmp_path), **TRAIN_ARGS)
  events = [f for f in os.listdir(tmp_path) if "tfevents" in f]
  assert len(events) == 1
  tags = {}
  for event in tf.compat.v1.train.summary_iterator(
      str(tmp_path / events[0])):
    for value in event.summary.value:
      tags.setdefault(value.tag, []).append((event.step, value.simple_value))
  epochs = TRAIN_ARGS["num_epochs"]
  assert sorted(tags) == ["epoch_seconds", "evaluation_final_loss",
                          "final_loss", "meta_loss"]
  assert [step for step, _ in tags["meta_loss"]] == list(range(1, epochs + 1))
  # simple starts at x = 1: the meta-loss sums f over an unroll's points,
  # and each point's f = x^2 is at most 1 for a descending optimizer.
  assert all(0 < v <= TRAIN_ARGS["unroll_length"] + 1
             for _, v in tags["meta_loss"])
  assert all(v > 0 for _, v in tags["epoch_seconds"])


def test_train_stops_on_divergence_and_keeps_the_saved_optimizer(
    tmp_path, monkeypatch, caplog):
  real_run_epoch = training.util.run_epoch
  calls = []

  def diverging_run_epoch(*args):
    calls.append(1)
    seconds, (cost, meta_loss) = real_run_epoch(*args)
    if len(calls) > 3:
      cost = float("nan")
    return seconds, (cost, meta_loss)

  monkeypatch.setattr(training.util, "run_epoch", diverging_run_epoch)
  args = dict(TRAIN_ARGS, num_epochs=10, evaluation_period=1,
              evaluation_epochs=1)
  with caplog.at_level(logging.ERROR):
    result = training.train("simple", save_path=str(tmp_path), **args)
  saved = l2l_file.load(tmp_path / "cw.l2l")
  # Epoch 1 and its evaluation ran (calls 1-2), epoch 2 (call 3), then its
  # evaluation diverged: the optimizer saved after epoch 1 is kept.
  assert len(calls) == 4
  assert np.isfinite(result)
  assert np.all(np.isfinite(saved["linear"]["w"]))
  assert "diverged" in caplog.text
  assert str(tmp_path) in caplog.text


def test_baseline_restarts_start_where_the_swarms_start():
  swarm = {"num_particles": 3}
  args = dict(num_steps=4, num_epochs=2, show_progress=False)
  restarts = evaluation.evaluate("Adam", "square_cos_2", learning_rate=0.03,
                                 swarm_options=swarm, **args)
  single = evaluation.evaluate("Adam", "square_cos_2", learning_rate=0.03,
                               **args)
  pso = evaluation.evaluate("PSO", "square_cos_2", swarm_options=swarm, **args)
  assert restarts.losses.shape == (2, 5, 3)
  assert restarts.positions.shape == (1, 5, 3, 256)
  # Adam is elementwise: the first start moves exactly as a lone Adam does.
  np.testing.assert_array_equal(restarts.losses[..., 0], single.losses[..., 0])
  np.testing.assert_array_equal(restarts.losses[:, 0], pso.losses[:, 0])
  np.testing.assert_array_equal(restarts.positions[:, 0],
                                pso.positions[:, 0])
  # The other starts are other points.
  assert np.all(restarts.losses[:, 0, 1] != restarts.losses[:, 0, 0])
