"""Tests for training.py: the meta-training loop behind train.py."""

import logging
import os
import signal

import numpy as np
import pytest
import tensorflow as tf

from l2l import files
from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.core import native
from l2l.experiment import training
from l2l.experiment import training_state
import meta
import problems
import util

from conftest import SMALL_FAMILY
from conftest import TRAIN_ARGS
from conftest import linear_optimizer_positions


def test_train_saves_the_best_optimizer(trained_simple):
  directory, result = trained_simple
  assert sorted(os.listdir(directory)) == [".lock", "cw.l2l", "manifest.json",
                                           "notes.txt", "training_state"]
  assert (directory / "notes.txt").read_text() == "keep me"
  saved = manifest.read(directory)
  assert saved["problem"] == "simple"
  assert saved["training"]["num_epochs"] == TRAIN_ARGS["num_epochs"]
  assert saved["training"]["unroll_length"] == TRAIN_ARGS["unroll_length"]
  assert saved["training"]["epochs_done"] in (2, 4)
  assert saved["nets"] == {"cw": {"net": "CoordinateWiseDeepLSTM",
                                  "net_options": {"layers": [],
                                                  "initializer": "zeros"}}}
  values = l2l_file.load(directory / "cw.l2l")
  assert {m: sorted(v) for m, v in values.items()} == {"linear": ["b", "w"]}
  assert values["linear"]["w"].shape == (1, 1)
  # Meta-training moved the zero-initialised update rule.
  assert np.abs(values["linear"]["w"]).max() > 1e-4
  # The returned value is the saved optimizer's evaluation: f after 4 steps.
  expected = linear_optimizer_positions(values, 4)[-1]**2
  np.testing.assert_allclose(result.best_evaluation, expected, rtol=1e-5)
  assert result.best_evaluation < 1.0
  assert result.saved and not result.diverged and not result.interrupted
  assert result.epochs == TRAIN_ARGS["num_epochs"]


def test_recompute_trains_the_same_optimizer(tmp_path):
  saved = []
  for recompute in (False, True):
    directory = tmp_path / str(recompute)
    result = training.train("quadratic", save_path=str(directory),
                            recompute=recompute, handle_signals=False,
                            **TRAIN_ARGS)
    assert result.saved
    saved.append(l2l_file.load(str(directory / "cw.l2l")))
  for module, values in saved[0].items():
    for name, value in values.items():
      np.testing.assert_allclose(saved[1][module][name], value, rtol=1e-6,
                                 atol=1e-8)


def test_train_refuses_to_overwrite(tmp_path):
  saved = tmp_path / "cw.l2l"
  saved.write_bytes(b"earlier optimizer")
  with pytest.raises(ValueError, match="--overwrite"):
    training.train("simple", save_path=str(tmp_path), **TRAIN_ARGS)
  assert saved.read_bytes() == b"earlier optimizer"
  training.train("simple", save_path=str(tmp_path), overwrite=True, **TRAIN_ARGS)
  assert sorted(l2l_file.load(saved)) == ["linear"]


def test_train_refuses_a_directory_holding_another_optimizer_s_manifest(
    tmp_path):
  # Its nets are named otherwise than the run's (cw): the manifest alone
  # says an optimizer is saved there, and replacing it would orphan its
  # files.
  theirs = tmp_path / "theirs"
  with tf.Graph().as_default():
    optimizer = meta.MetaOptimizer(mine={"net": "Sgd"})
    optimizer.meta_loss(problems.simple(), 1)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      optimizer.save(sess, str(theirs), problem="simple")
  before = (theirs / manifest.FILENAME).read_bytes()
  with pytest.raises(ValueError, match=r"already holds a saved optimizer "
                     r"\(manifest.json\); choose another --save_path or pass "
                     "--overwrite"):
    training.train("simple", save_path=str(theirs), **TRAIN_ARGS)
  assert (theirs / manifest.FILENAME).read_bytes() == before
  assert sorted(os.listdir(theirs)) == [".lock", "manifest.json", "mine.l2l"]


def test_train_never_replaces_a_manifest_json_of_another_program(tmp_path):
  theirs = tmp_path / manifest.FILENAME
  theirs.write_text('{"name": "my web app"}')
  for overwrite in (False, True):
    with pytest.raises(ValueError, match="is not an l2l manifest"):
      training.train("simple", save_path=str(tmp_path), overwrite=overwrite,
                     **TRAIN_ARGS)
  assert sorted(os.listdir(tmp_path)) == [".lock", "manifest.json"]
  assert theirs.read_text() == '{"name": "my web app"}'


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


def test_tensorboard_meta_loss_is_the_runs_meta_objective(tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  training.train("simple", logdir=str(tmp_path), meta_objective="log",
                 **TRAIN_ARGS)
  events = [f for f in os.listdir(tmp_path) if "tfevents" in f]
  values = [value.simple_value for event in
            tf.compat.v1.train.summary_iterator(str(tmp_path / events[0]))
            for value in event.summary.value if value.tag == "meta_loss"]
  assert len(values) == TRAIN_ARGS["num_epochs"]
  # Under "log" it sums ln f over the unroll's points: each f = x^2 is at
  # most 1 from x = 1, so the sum is at most 0, and no f is below the floor.
  points = TRAIN_ARGS["unroll_length"] + 1
  assert all(points * np.log(1e-8) <= v <= 0 for v in values)


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
  assert np.isfinite(result.best_evaluation)
  assert result.diverged and result.saved
  assert np.all(np.isfinite(saved["linear"]["w"]))
  assert "diverged" in caplog.text
  assert str(tmp_path) in caplog.text


def test_a_loss_nan_from_the_start_is_blamed_on_the_problem(caplog):
  def make_broken(mode):
    del mode
    return lambda: tf.sqrt(tf.compat.v1.get_variable("x", [2]) - 5.0)
  util.register_problem("broken_from_the_start", make_broken)
  try:
    with caplog.at_level(logging.ERROR):
      result = training.train("broken_from_the_start", **TRAIN_ARGS)
  finally:
    util.unregister_problem("broken_from_the_start")
  assert result.diverged
  assert ("Training diverged (the optimizee loss became nan; the loss is "
          "already nan at the starting point, before any step: the problem "
          "(its build()) is at fault, not the optimizer); stopped."
          in caplog.text)


def test_train_on_the_family_reports_every_epoch():
  seen = []
  result = training.train(
      SMALL_FAMILY, epoch_callback=lambda *args: seen.append(args),
      **TRAIN_ARGS)
  assert [epoch for epoch, _, _ in seen] == [1, 2, 3, 4]
  assert all(seconds > 0 and np.isfinite(loss) for _, seconds, loss in seen)
  assert np.isfinite(result.best_evaluation) and not result.diverged


def _assert_same_saved_state(expected_path, got_path):
  """The training states and saved optimizers of two runs are equal."""
  expected, _ = training_state.read(str(expected_path))
  got, _ = training_state.read(str(got_path))
  assert sorted(got) == sorted(expected)
  for name in expected:
    np.testing.assert_allclose(got[name], expected[name], rtol=1e-5,
                               atol=1e-7, err_msg=name)
  saved = l2l_file.load(os.path.join(got_path, "cw.l2l"))
  for module, variables in l2l_file.load(
      os.path.join(expected_path, "cw.l2l")).items():
    for name, value in variables.items():
      np.testing.assert_allclose(saved[module][name], value, rtol=1e-5)


# Quadratics only: nothing random happens inside the unroll (the
# classification tasks draw minibatches there, which a resume does not
# replay), so a resumed run can repeat the uninterrupted one exactly.
QUADRATIC_FAMILY = ("family:mlp_weight=0,logistic_weight=0,datasets=iris,"
                    "max_dims=4,quadratic_batch=2,unroll_tail=1.5,"
                    "max_unroll_factor=4")


def _recording_run_epoch(monkeypatch):
  """Records the number of unrolls of every `util.run_epoch` call."""
  real_run_epoch = training.util.run_epoch
  unrolls = []

  def recording(sess, fetches, ops, reset, num_unrolls):
    unrolls.append(num_unrolls)
    return real_run_epoch(sess, fetches, ops, reset, num_unrolls)

  monkeypatch.setattr(training.util, "run_epoch", recording)
  return unrolls


def test_heavy_tailed_unrolls_vary_training_epochs_only(monkeypatch):
  unrolls = _recording_run_epoch(monkeypatch)
  seen = []
  result = training.train(
      QUADRATIC_FAMILY, epoch_callback=lambda *args: seen.append(args),
      **dict(TRAIN_ARGS, num_epochs=8, evaluation_period=4,
             evaluation_epochs=1, num_steps=8))
  assert np.isfinite(result.best_evaluation) and len(seen) == 8
  # Epochs 1-4, evaluation, epochs 5-8, evaluation; 4 unrolls usual.
  training_unrolls = unrolls[:4] + unrolls[5:9]
  assert [unrolls[4], unrolls[9]] == [4, 4]
  # Pareto of index 1.5 and mean 1, minimum 1/3, capped at 4: 1..16 unrolls.
  assert all(1 <= n <= 16 for n in training_unrolls)
  assert len(set(training_unrolls)) > 2


@pytest.mark.slow
def test_resumed_family_run_repeats_the_uninterrupted_one(tmp_path,
                                                          monkeypatch):
  args = dict(TRAIN_ARGS, num_epochs=4, evaluation_period=2, seed=5,
              checkpoint_period=1)
  unrolls = _recording_run_epoch(monkeypatch)
  whole_costs = []
  whole = training.train(
      QUADRATIC_FAMILY, save_path=str(tmp_path / "whole"),
      epoch_callback=lambda e, s, cost: whole_costs.append(cost), **args)
  whole_unrolls = list(unrolls)
  del unrolls[:]
  part = str(tmp_path / "part")
  first = training.train(QUADRATIC_FAMILY, save_path=part,
                         **dict(args, num_epochs=2))
  assert first.epochs == 2
  resumed_costs = []
  resumed = training.train(
      QUADRATIC_FAMILY, save_path=part, resume=True,
      epoch_callback=lambda e, s, cost: resumed_costs.append(cost), **args)
  assert resumed.epochs == 4
  # The family's draws replay: epochs 3 and 4 pose the same tasks (their
  # heavy-tailed unroll counts and final losses match).
  assert unrolls == whole_unrolls
  assert len(set(whole_unrolls)) > 1
  np.testing.assert_allclose(resumed_costs, whole_costs[2:], rtol=1e-5)
  assert resumed.best_evaluation == pytest.approx(whole.best_evaluation,
                                                  rel=1e-5)
  _assert_same_saved_state(tmp_path / "whole", part)


RESUME_ARGS = {"num_epochs": 9, "evaluation_period": 4, "evaluation_epochs": 2,
               "num_steps": 4, "unroll_length": 2, "seed": 3,
               "checkpoint_period": 2, "show_progress": False}


def test_training_state_cadence_and_refusals(tmp_path, monkeypatch):
  written = []
  real_write = training_state.write

  def recording_write(save_path, values, info):
    written.append(info["epoch"])
    return real_write(save_path, values, info)

  monkeypatch.setattr(training_state, "write", recording_write)
  training.train("simple", save_path=str(tmp_path), **RESUME_ARGS)
  # At the start, every checkpoint_period epochs, and at the end.
  assert written == [0, 2, 4, 6, 8, 9]
  _, info = training_state.read(str(tmp_path))
  # 9 training epochs and evaluations at 4, 8 and 9, of 2 instances each.
  assert info["epoch"] == 9 and info["resets"] == 9 + 3 * 2
  with pytest.raises(ValueError, match="pass --resume to continue it or "
                     "--overwrite"):
    training.train("simple", save_path=str(tmp_path), **RESUME_ARGS)
  with pytest.raises(ValueError, match="pass one of them"):
    training.train("simple", save_path=str(tmp_path), resume=True,
                   overwrite=True, **RESUME_ARGS)
  with pytest.raises(training_state.TrainingStateError,
                     match="--unroll_length=2, but this run has "
                     "--unroll_length=1"):
    training.train("simple", save_path=str(tmp_path), resume=True,
                   **dict(RESUME_ARGS, unroll_length=1))
  with pytest.raises(training_state.TrainingStateError,
                     match="No training state"):
    training.train("simple", save_path=str(tmp_path / "new"), resume=True,
                   **RESUME_ARGS)
  # A refused run leaves no directory it made; one it did not make stays.
  assert not os.path.exists(tmp_path / "new")
  with pytest.raises(ValueError, match="num_dims"):
    training.train("rastrigin:num_dims=0", save_path=str(tmp_path / "new"),
                   **RESUME_ARGS)
  assert not os.path.exists(tmp_path / "new")
  (tmp_path / "mine").mkdir()
  with pytest.raises(training_state.TrainingStateError):
    training.train("simple", save_path=str(tmp_path / "mine"), resume=True,
                   **RESUME_ARGS)
  assert os.listdir(tmp_path / "mine") == [training_state.LOCK_NAME]


def test_a_second_writer_is_refused_naming_the_first(tmp_path):
  with files.directory_lock(str(tmp_path), "the first run",
                            training_state.LOCK_NAME):
    with pytest.raises(files.DirectoryBusyError,
                       match=r"in use by another run \(pid {} .*: the first "
                       r"run\)".format(os.getpid())):
      training.train("simple", save_path=str(tmp_path), **RESUME_ARGS)
  assert not os.path.exists(tmp_path / "cw.l2l")
  # Released when its holder is done: training proceeds.
  assert training.train("simple", save_path=str(tmp_path),
                        **RESUME_ARGS).saved


def test_interrupted_then_resumed_run_follows_the_uninterrupted_one(
    tmp_path, monkeypatch, caplog):
  # square_cos_2 draws random instances: the resumed run must replay them.
  whole = training.train("square_cos_2", save_path=str(tmp_path / "whole"),
                         **RESUME_ARGS)
  real_run_epoch = training.util.run_epoch
  calls = []

  def interrupted_run_epoch(*args):
    calls.append(1)
    # Calls 1-4 are epochs 1-4, calls 5-6 epoch 4's evaluation: stop in 5.
    if len(calls) == 7:
      os.kill(os.getpid(), signal.SIGINT)
    return real_run_epoch(*args)

  monkeypatch.setattr(training.util, "run_epoch", interrupted_run_epoch)
  part = str(tmp_path / "part")
  stopped = training.train("square_cos_2", save_path=part, **RESUME_ARGS)
  # The epoch under way finished and its state was kept; the signal was
  # acknowledged when it came.
  assert stopped.interrupted == "SIGINT" and stopped.epochs == 5
  assert ("SIGINT received: stopping after the epoch under way (a second "
          "signal stops at once).") in caplog.messages
  assert training_state.read(part)[1]["epoch"] == 5
  monkeypatch.setattr(training.util, "run_epoch", real_run_epoch)
  resumed = training.train("square_cos_2", save_path=part, resume=True,
                           **RESUME_ARGS)
  assert resumed.epochs == 9 and resumed.interrupted is None
  assert resumed.best_evaluation == pytest.approx(whole.best_evaluation,
                                                  rel=1e-6)
  _assert_same_saved_state(tmp_path / "whole", part)


def test_a_resume_that_steps_the_lstms_otherwise_says_it_wont_repeat_exactly(
    tmp_path, monkeypatch, caplog, kernel):
  del kernel  # Built: the first run steps with it.
  path = str(tmp_path)
  args = dict(RESUME_ARGS, num_epochs=2, evaluation_period=2)
  training.train("quadratic", save_path=path, **args)
  assert training_state.read(path)[1]["lstm_steps"] == "the native kernel"
  warning = "will not repeat the uninterrupted one bit for bit"
  monkeypatch.setenv(native.ENV_VAR, "0")
  with caplog.at_level("WARNING"):
    training.train("quadratic", save_path=path, resume=True,
                   **dict(args, num_epochs=4))
  assert ("The run's epochs so far stepped its LSTMs with the native "
          "kernel; this process steps them with TensorFlow ops") in caplog.text
  assert training_state.read(path)[1]["lstm_steps"] == "TensorFlow ops"
  caplog.clear()
  with caplog.at_level("WARNING"):
    training.train("quadratic", save_path=path, resume=True,
                   **dict(args, num_epochs=6))
  assert training_state.read(path)[1]["epoch"] == 6
  assert warning not in caplog.text


@pytest.mark.parametrize("flag, value", [("evaluation_epochs", 3),
                                         ("evaluation_period", 2)])
def test_a_resume_with_other_evaluations_is_refused(tmp_path, flag, value):
  # Evaluations draw instances from training's stream: other ones would
  # move every later training draw.
  path = str(tmp_path)
  training.train("square_cos_2", save_path=path,
                 **dict(RESUME_ARGS, num_epochs=2))
  with pytest.raises(training_state.TrainingStateError,
                     match="state.npz was written with --{}={}, but this run "
                     "has --{}={}; resume with the same settings".format(
                         flag, RESUME_ARGS[flag], flag, value)):
    training.train("square_cos_2", save_path=path, resume=True,
                   **dict(RESUME_ARGS, **{flag: value}))
  # A state written before they were recorded resumes with any.
  values, info = training_state.read(path)
  settings = {k: v for k, v in info["settings"].items()
              if not k.startswith("evaluation_")}
  training_state.write(path, values, dict(info, settings=settings))
  resumed = training.train("square_cos_2", save_path=path, resume=True,
                           **dict(RESUME_ARGS, num_epochs=3, **{flag: value}))
  assert resumed.epochs == 3


def test_resuming_a_finished_run_says_nothing_is_left(tmp_path, caplog):
  path = str(tmp_path)
  training.train("simple", save_path=path, **TRAIN_ARGS)
  with caplog.at_level(logging.WARNING):
    again = training.train("simple", save_path=path, resume=True,
                           **TRAIN_ARGS)
  assert again.epochs == TRAIN_ARGS["num_epochs"]
  assert [r.getMessage() for r in caplog.records
          if r.levelno == logging.WARNING] == [
              "The run in {} has done 4 epochs, and num_epochs is 4: there is "
              "nothing left to train; give a larger num_epochs to continue "
              "it.".format(path)]


def test_a_stop_signal_ends_a_long_replay_of_draws(tmp_path, monkeypatch):
  # A state claiming a million draws would replay for hours: the first
  # SIGTERM ends the replay, before any training, naming the signal.
  path = str(tmp_path)
  training.train("simple", save_path=path, **TRAIN_ARGS)
  values, info = training_state.read(path)
  training_state.write(path, values, dict(info, resets=10**6))
  draws = []

  def draw(*args):
    del args
    draws.append(1)
    if len(draws) == 3:
      os.kill(os.getpid(), signal.SIGTERM)

  monkeypatch.setattr(training.problems, "draw_next_task", draw)
  with pytest.raises(KeyboardInterrupt, match="^SIGTERM$"):
    training.train("simple", save_path=path, resume=True,
                   **dict(TRAIN_ARGS, handle_signals=True))
  assert len(draws) == 3
  assert training_state.read(path)[1]["resets"] == 10**6


def test_resumed_swarm_must_keep_its_swarm_options(tmp_path):
  args = dict(RESUME_ARGS, num_epochs=1, num_particles=2,
              swarm_options={"use_entropy": False, "per_instance": True})
  path = str(tmp_path)
  training.train("square_cos_2", save_path=path, **args)
  other = dict(args, swarm_options=dict(args["swarm_options"],
                                        attraction_gain="learned"))
  with pytest.raises(training_state.TrainingStateError,
                     match="state.npz was written with the swarm option "
                     "attraction_gain='off'"):
    training.train("square_cos_2", save_path=path, resume=True, **other)
  # A state from before the options were recorded: the manifest decides.
  values, info = training_state.read(path)
  del info["settings"]["swarm"]
  training_state.write(path, values, info)
  with pytest.raises(training_state.TrainingStateError,
                     match="manifest.json was written with the swarm option "
                     "attraction_gain='off'"):
    training.train("square_cos_2", save_path=path, resume=True, **other)
  assert training.train("square_cos_2", save_path=path, resume=True,
                        **dict(args, num_epochs=2)).epochs == 2


# A family run started when the family's default net was another one:
# DeepMind's LSTM (another class), or the adaptive net before it took its
# hypergradient, before its LSTM stopped moving the step sizes or before it
# faded past its horizon (the same class with other options).
@pytest.mark.parametrize("started_with, message", [
    ("cw", "holds net 'cw' as CoordinateWiseDeepLSTM, but "
     "--problem=family:datasets=iris.* now builds AdaptiveStepLSTM, so the "
     "run cannot be resumed"),
    ("adaptive_nohyper", r"holds net 'cw' as AdaptiveStepLSTM\(\), but "
     r"--problem=family:datasets=iris.* now builds "
     r"AdaptiveStepLSTM\(hyper_rate=0.3, step_change=0.0\), so the run "
     r"cannot be resumed"),
    # Only the options that differ are named.
    ("adaptive_lstm_steps", r"holds net 'cw' as AdaptiveStepLSTM\(\), but "
     r"--problem=family:datasets=iris.* now builds "
     r"AdaptiveStepLSTM\(step_change=0.0\), so the run cannot be resumed"),
    ("adaptive_nohorizon", r"holds net 'cw' as AdaptiveStepLSTM\(\), but "
     r"--problem=family:datasets=iris.* now builds "
     r"AdaptiveStepLSTM\(horizon=100\), so the run cannot be resumed"),
])
def test_a_run_whose_problem_now_builds_another_net_is_refused(
    tmp_path, monkeypatch, started_with, message):
  monkeypatch.setattr(util, "DEFAULT_FAMILY_NET", started_with)
  settings = dict(num_epochs=2, evaluation_period=2, evaluation_epochs=1,
                  num_steps=4, unroll_length=2, seed=1, show_progress=False)
  assert training.train(SMALL_FAMILY, save_path=str(tmp_path),
                        **settings).saved
  monkeypatch.setattr(util, "DEFAULT_FAMILY_NET", "adaptive")
  with open(training_state.path(tmp_path), "rb") as state:
    state_before = state.read()
  with pytest.raises(training_state.TrainingStateError, match=message):
    training.train(SMALL_FAMILY, save_path=str(tmp_path), resume=True,
                   **dict(settings, num_epochs=4))
  # Nothing of the run was touched.
  with open(training_state.path(tmp_path), "rb") as state:
    assert state.read() == state_before
  if started_with == "cw":
    # With the net it was trained with, it resumes (once is enough: the
    # refusals above differ only in their message).
    monkeypatch.setattr(util, "DEFAULT_FAMILY_NET", started_with)
    assert training.train(SMALL_FAMILY, save_path=str(tmp_path), resume=True,
                          **dict(settings, num_epochs=4)).epochs == 4


def test_an_overwriting_run_killed_before_its_first_save_resumes(tmp_path):
  # --overwrite leaves the earlier run's optimizer, and its manifest, until
  # the run's first save; a run killed before then has only its training
  # state, which its resume is checked against, not the earlier manifest.
  settings = dict(num_epochs=2, evaluation_period=2, evaluation_epochs=1,
                  num_steps=4, unroll_length=2, seed=1, show_progress=False)
  earlier, killed = tmp_path / "earlier", tmp_path / "killed"
  assert training.train("quadratic", save_path=str(earlier), **settings).saved
  assert training.train("quadratic-las", save_path=str(killed),
                        **settings).saved
  values, info = training_state.read(str(killed))
  # As the --overwrite run on `earlier` kept it, killed before it saved.
  training_state.write(str(earlier), values, dict(info, saved=False))
  assert manifest.read(str(earlier))["problem"] == "quadratic"
  resumed = training.train("quadratic-las", save_path=str(earlier),
                           resume=True, **dict(settings, num_epochs=4))
  assert resumed.epochs == 4 and resumed.saved
  assert manifest.read(str(earlier))["problem"] == "quadratic-las"


def _readme_command(start):
  """The flags of the README's command line that starts with `start`."""
  readme = os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "README.md")
  with open(readme) as stream:
    (line,) = [l for l in stream if l.startswith(start)]
  return dict(arg[2:].split("=", 1) for arg in line.split()[2:])


def test_the_readme_family_command_is_the_family_recipe():
  flags = _readme_command("python train.py --problem=family ")
  assert flags.pop("problem") == "family"
  assert flags.pop("save_path") == "./family"
  assert flags.pop("seed") == "1"  # The seed the bench picked.
  assert {k: float(v) for k, v in flags.items()} == {
      k: float(v) for k, v in training.FAMILY_RECIPE.items()}


class _StoppedRun(training.Run):
  """A stopped `training.Run` at epoch 7 that records its states."""

  def __init__(self, save_path="saved", saved=False, saved_on_stop=None):
    super().__init__(save_path, {}, None)
    self.epoch = 7
    self.saved = saved
    self.saved_on_stop = saved_on_stop
    self.kept = []

  def checkpoint(self, sess):
    del sess
    self.kept.append(dict(self.saved_on_stop or {}))


def _keep(run, evaluation):
  """Runs `keep_an_optimizer`; returns (evaluations run, saves made)."""
  evaluated, saves = [], []

  def evaluate():
    evaluated.append(run.epoch)
    if isinstance(evaluation, Exception):
      raise evaluation
    return evaluation

  training.keep_an_optimizer(run, None, evaluate,
                             lambda epoch, **notes: saves.append(
                                 (epoch, notes)))
  return evaluated, saves


def test_a_stopped_run_saves_the_optimizer_it_has_when_none_is_saved():
  run = _StoppedRun()
  assert _keep(run, 0.25) == ([7], [(7, {"saved_on_stop": True})])
  assert run.saved_on_stop == {"epoch": 7, "evaluation": 0.25}
  # Kept in the state, apart from the best evaluation.
  assert run.kept == [{"epoch": 7, "evaluation": 0.25}]
  assert run.best_evaluation == float("inf") and not run.saved
  assert run.result().saved_on_stop == {"epoch": 7, "evaluation": 0.25}


def test_a_stopped_run_keeps_what_is_saved_unless_it_is_worse():
  # An evaluated optimizer is saved: nothing is evaluated.
  assert _keep(_StoppedRun(saved=True), 0.25) == ([], [])
  # No save path: nothing to keep it in.
  assert _keep(_StoppedRun(save_path=None), 0.25) == ([], [])
  # An earlier stop's optimizer stays unless this one is better.
  earlier = {"epoch": 3, "evaluation": 0.5}
  run = _StoppedRun(saved_on_stop=dict(earlier))
  assert _keep(run, 0.5) == ([7], [])
  assert run.saved_on_stop == earlier and run.kept == []
  assert _keep(run, 0.125)[1] == [(7, {"saved_on_stop": True})]
  assert run.saved_on_stop == {"epoch": 7, "evaluation": 0.125}
  # A diverging optimizer is not saved, and the stop goes on.
  run = _StoppedRun()
  assert _keep(run, training.TrainingDiverged("nan")) == ([7], [])
  assert run.saved_on_stop is None and run.kept == []


def test_a_save_path_moved_during_training_is_not_written_again(tmp_path):
  # Written on at the old path, the run would make a second, unlocked copy
  # of itself there, while its lock and states went with the directory.
  save_path, moved = tmp_path / "run", tmp_path / "moved"

  def move_after_epoch_3(epoch, *unused):
    if epoch == 3:
      os.rename(save_path, moved)

  with pytest.raises(files.DirectoryMovedError, match="no longer the "
                     "directory this run locked"):
    training.train("simple", save_path=str(save_path),
                   **dict(TRAIN_ARGS, num_epochs=8, evaluation_period=100,
                          handle_signals=False, checkpoint_period=2),
                   epoch_callback=move_after_epoch_3)
  assert not save_path.exists()
  _, info = training_state.read(str(moved))
  assert info["epoch"] == 2
