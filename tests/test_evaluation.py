"""Tests for evaluation.py: optimizers on fresh problem instances."""

import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.core import native
from l2l.data import datasets
from l2l.experiment import evaluation
from l2l.experiment import records
from l2l.experiment import training
import meta
import problems
import util

from conftest import SMALL_FAMILY
from conftest import TRAIN_ARGS
from conftest import linear_optimizer_positions
from conftest import save_after_first_call
from conftest import save_x0_only_sgd
from conftest import write_lois_released

EVAL_ARGS = {"num_epochs": 2, "show_progress": False}


def _losses(result, num_steps):
  """The losses of a single-point `Evaluation`, [epochs, num_steps + 1]."""
  assert result.losses.shape == (EVAL_ARGS["num_epochs"], num_steps + 1, 1)
  return result.losses[:, :, 0]


def test_evaluate_trained_optimizer_follows_its_update_rule(trained_simple):
  directory, _ = trained_simple
  result = evaluation.evaluate("L2L", "simple", num_steps=5,
                               path=str(directory), **EVAL_ARGS)
  values = l2l_file.load(directory / "cw.l2l")
  expected = linear_optimizer_positions(values, 5)**2
  np.testing.assert_allclose(_losses(result, 5), [expected, expected],
                             rtol=1e-5)
  assert result.seconds.shape == (2,)


def test_a_net_file_without_its_manifest_that_does_not_fit_says_so(
    trained_simple, tmp_path):
  # simple's net (a linear layer) mailed without its manifest: read with
  # quadratic's configuration, its modules do not fit, and the error says
  # why it was read so.
  directory, _ = trained_simple
  shutil.copy(directory / "cw.l2l", tmp_path / "cw.l2l")
  with pytest.raises(ValueError, match=(
      r"does not fit CoordinateWiseDeepLSTM.* \(There is no manifest.json "
      r"in .*, so it was "
      r"read as the configuration of problem 'quadratic' \(pass --problem, "
      r"the problem it was trained on, if it is another\): copy "
      r"manifest.json along with the .l2l files.\)")):
    evaluation.evaluate("L2L", "quadratic", num_epochs=1, num_steps=1,
                        path=str(tmp_path), show_progress=False)


def test_a_saved_optimizer_is_not_evaluated_on_its_training_instances(
    trained_simple, tmp_path):
  directory, _ = trained_simple  # meta-trained on simple, seed 1
  with pytest.raises(ValueError, match=(
      r"was meta-trained on simple with seed 1, and evaluating with that "
      r"seed replays its training's random draws")):
    evaluation.evaluate("L2L", "simple", num_epochs=1, num_steps=1, seed=1,
                        path=str(directory), show_progress=False)
  with pytest.raises(ValueError, match="replays its training's random "
                     "draws"):
    evaluation.evaluate("L2L", "simple", num_epochs=1, num_steps=1, seed=1,
                        path=str(directory), mode="validation",
                        show_progress=False)
  # Another seed, another problem, or training's own split: held out, or
  # asked for.
  evaluation.check_held_out(str(directory), "simple", 0)
  evaluation.check_held_out(str(directory), "simple-multi", 1)
  result = evaluation.evaluate("L2L", "simple", num_epochs=1, num_steps=1,
                               seed=1, path=str(directory), mode="train",
                               show_progress=False)
  assert result.losses.shape[:2] == (1, 2)
  # Files without a manifest (DeepMind's) say nothing of their training.
  shutil.copy(directory / "cw.l2l", tmp_path / "cw.l2l")
  evaluation.check_held_out(str(tmp_path), "simple", 1)


def test_another_name_of_the_training_problem_is_refused_too(fresh_session,
                                                            tmp_path):
  # quadratic and quadratic-las differ in their nets only: at the training
  # seed they draw the same instances and starts.
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(cw={"net": "Sgd"})
    optimizer.meta_loss(problems.simple(), 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, tmp_path, problem="quadratic", training={"seed": 3})
  with pytest.raises(ValueError, match=(
      r"was meta-trained on quadratic \(which draws what quadratic-las "
      r"draws\) with seed 3, and evaluating with that seed replays")):
    evaluation.check_held_out(str(tmp_path), "quadratic-las", 3)
  evaluation.check_held_out(str(tmp_path), "quadratic-las", 4)
  evaluation.check_held_out(str(tmp_path), "rastrigin:num_dims=10", 3)


def test_the_training_problem_with_other_options_is_refused_too(
    fresh_session, tmp_path):
  # family:datasets=iris draws the quadratics family:... drew at that
  # seed, though its first draw differs (other parameter counts).
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(cw={"net": "Sgd"})
    optimizer.meta_loss(problems.simple(), 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, tmp_path, problem="family:mlp_weight=0",
                   training={"seed": 1})
  with pytest.raises(ValueError, match=(
      r"was meta-trained on family:mlp_weight=0 \(the problem "
      r"family:mlp_weight=0,datasets=iris with other options\) with seed 1, "
      r"and evaluating with that seed replays")):
    evaluation.check_held_out(str(tmp_path),
                              "family:mlp_weight=0,datasets=iris", 1)
  evaluation.check_held_out(str(tmp_path),
                            "family:mlp_weight=0,datasets=iris", 2)


def test_particles_that_all_start_at_one_point_are_warned_of(caplog):
  # The family's delta starts at zero: three restarts are one start.
  name = ("family:datasets=iris,max_width=4,min_width=2,max_dims=3,"
          "quadratic_batch=2,batch_size=8")
  with caplog.at_level(logging.WARNING):
    evaluation.evaluate("Adam", name, num_steps=2, learning_rate=0.1,
                        num_epochs=2, swarm_options={"num_particles": 3},
                        show_progress=False)
  assert ("All 3 particles of Adam started at the same point on {}".format(
      name)) in caplog.text
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    evaluation.evaluate("Adam", "square_cos_2", num_steps=2,
                        learning_rate=0.1, num_epochs=2,
                        swarm_options={"num_particles": 3},
                        show_progress=False)
  assert "started at the same point" not in caplog.text


def test_evaluation_keeps_fixed_what_training_left_out(tmp_path):
  # Trained driving x_0 only: evaluated on the same problem, x_1 stays at
  # 1, so the loss after one SGD step (x_0 to 0) is 1, not 0.
  save_x0_only_sgd(tmp_path)
  result = evaluation.evaluate("L2L", "simple-multi", num_epochs=1,
                               num_steps=1, path=str(tmp_path),
                               show_progress=False)
  np.testing.assert_allclose(result.losses[0, :, 0], [2.0, 1.0], rtol=1e-6)


def test_evaluate_trained_simple_multi(tmp_path):
  training.train("simple-multi", save_path=str(tmp_path), **TRAIN_ARGS)
  result = evaluation.evaluate("L2L", "simple-multi", num_steps=2,
                               path=str(tmp_path), **EVAL_ARGS)
  assert np.all(np.isfinite(result.losses))


def test_evaluate_reads_the_manifest_not_the_problem_config(tmp_path):
  # An Sgd net under an id util's `simple` config does not know: only the
  # manifest says what the directory holds.
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer = meta.MetaOptimizer(
        mine={"net": "Sgd", "net_options": {"learning_rate": 0.5}})
    optimizer.meta_loss(problems.simple(), 1)
    optimizer.save(sess, tmp_path)
  result = evaluation.evaluate("L2L", "simple", num_steps=3,
                               path=str(tmp_path), **EVAL_ARGS)
  # x <- x - 0.5 * 2x: x = 0 after one step.
  np.testing.assert_allclose(_losses(result, 3), np.tile([1, 0, 0, 0], [2, 1]))
  (tmp_path / manifest.FILENAME).unlink()
  with pytest.raises(ValueError, match="No checkpoint 'cw.l2l'"):
    evaluation.evaluate("L2L", "simple", num_steps=1, path=str(tmp_path),
                        **EVAL_ARGS)


def test_a_saved_optimizer_runs_only_as_many_points_as_it_can(tmp_path,
                                                              caplog):
  swarm_path, point_path = tmp_path / "swarm", tmp_path / "point"
  for path, options in ((swarm_path, {"num_particles": 2}),
                        (point_path, {})):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
      optimizer = meta.MetaOptimizer(**options)
      optimizer.meta_loss(util.get_config("square_cos_2")[0], 1)
      sess.run(tf.compat.v1.global_variables_initializer())
      optimizer.save(sess, path)
  with pytest.raises(ValueError, match="holds a swarm optimizer of 2 "
                     "particles, which cannot run as one point"):
    evaluation.evaluate("L2L", "square_cos_2", num_steps=1, path=str(
        swarm_path), swarm_options={"num_particles": 1}, **EVAL_ARGS)
  with pytest.raises(ValueError, match="holds a single-point optimizer.*"
                     "cannot run as a swarm of 3"):
    evaluation.evaluate("L2L", "square_cos_2", num_steps=1, path=str(
        point_path), swarm_options={"num_particles": 3}, **EVAL_ARGS)
  # Each runs as saved, and says so to the records.
  for path, points in ((swarm_path, 2), (point_path, 1)):
    result = evaluation.evaluate("L2L", "square_cos_2", num_steps=1,
                                 path=str(path), **EVAL_ARGS)
    assert result.losses.shape[-1] == points
    assert result.swarm_options.get("num_particles") == (
        2 if points == 2 else None)
  assert result.swarm_options == {}
  # The saved swarm does not hop: a hop noise given is named as unused.
  with caplog.at_level(logging.WARNING):
    evaluation.evaluate("L2L", "square_cos_2", num_steps=1,
                        path=str(swarm_path), swarm_options={"hop_noise": 0.3},
                        **EVAL_ARGS)
  assert ("Swarm option hop_noise has no effect: the swarm's attraction gain "
          "is 'off', not 'hop'." in caplog.text)


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


@pytest.mark.parametrize("name, nesterov", [("Momentum", False),
                                            ("NAG", True)])
def test_momentum_baselines_match_numpy(name, nesterov):
  # Momentum 0.9 on f = x^2 from 1: a <- 0.9 a + g, and the step is
  # lr * a (classical) or lr * (g + 0.9 a) (Nesterov, the paper's NAG).
  result = evaluation.evaluate(name, "simple", num_steps=6,
                               learning_rate=0.1, **EVAL_ARGS)
  x, accumulator, expected = 1.0, 0.0, [1.0]
  for _ in range(6):
    gradient = 2 * x
    accumulator = 0.9 * accumulator + gradient
    x -= 0.1 * (gradient + 0.9 * accumulator if nesterov else accumulator)
    expected.append(x * x)
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


def test_evaluate_on_the_family_draws_a_task_per_epoch():
  name = ("family:datasets=iris,max_width=4,min_width=2,max_dims=3,"
          "quadratic_batch=2,batch_size=8")
  runs = [evaluation.evaluate("Adam", name, num_steps=3, learning_rate=0.1,
                              num_epochs=4, show_progress=False)
          for _ in range(2)]
  # The same seed poses the same tasks, so every optimizer sees them.
  np.testing.assert_array_equal(runs[0].losses, runs[1].losses)
  first_losses = runs[0].losses[:, 0, 0]
  assert len(set(first_losses.round(5))) == 4
  assert np.all(runs[0].losses[:, -1] < runs[0].losses[:, 0])


@pytest.mark.slow
def test_a_family_trained_optimizer_evaluates_on_family_problems(tmp_path):
  # Reading the manifest builds the problem in a throwaway graph first, and
  # the family's task variables belong to the graph it was made in: the
  # throwaway build needs a family of its own (it once failed with "must be
  # from the same graph").
  assert training.train(SMALL_FAMILY, save_path=str(tmp_path),
                        **TRAIN_ARGS).saved
  wider = SMALL_FAMILY.replace("max_width=4", "max_width=5")
  for name in (SMALL_FAMILY, wider):
    learned = evaluation.evaluate("L2L", name, num_steps=20, num_epochs=3,
                                  path=str(tmp_path), show_progress=False)
    assert learned.losses.shape == (3, 21, 1)
    assert np.all(np.isfinite(learned.losses))
    assert np.mean(learned.losses[:, -1]) < 0.9 * np.mean(
        learned.losses[:, 0])


def test_evaluation_uses_the_test_split(monkeypatch):
  splits = []
  real_load = datasets.load_digits

  def recording_load(split="train", **kwargs):
    splits.append(split)
    return real_load(split, **kwargs)

  monkeypatch.setattr(datasets, "load_digits", recording_load)
  evaluation.evaluate("SGD", "digits", num_steps=1, num_epochs=1,
                      show_progress=False)
  assert splits == ["test"]


def test_evaluate_runs_a_released_directory_as_released(tmp_path):
  write_lois_released(str(tmp_path), 128 * 2)
  result = evaluation.evaluate(
      "L2L", "square_cos_2", num_steps=2, num_epochs=1, path=str(tmp_path),
      swarm_options={"num_particles": 4}, show_progress=False)
  assert result.losses.shape == (1, 3, 4)
  assert np.all(np.isfinite(result.losses))
  positions = result.positions[0].reshape(3, 4, 128, 2).astype(np.float64)
  rastrigin = np.mean(np.sum(positions**2 - 10 * np.cos(2 * np.pi *
                                                        positions), -1) +
                      10 * 2, -1)
  np.testing.assert_allclose(result.losses[0], rastrigin, rtol=1e-4)
  assert result.row_losses.shape == (1, 3, 4, 128)
  np.testing.assert_allclose(
      result.row_losses[0],
      np.sum(positions**2 - 10 * np.cos(2 * np.pi * positions), -1) + 20,
      rtol=1e-4)
  assert result.swarm_options == {"num_particles": 4, "lois_released": True}


def test_a_released_model_says_what_it_runs_and_needs(tmp_path, caplog):
  write_lois_released(str(tmp_path), 128 * 2)
  with pytest.raises(ValueError, match="is LOIS's released swarm model: "
                     "give num_particles of 2 or more"):
    evaluation.evaluate("L2L", "square_cos_2", num_steps=1, num_epochs=1,
                        path=str(tmp_path), show_progress=False)
  with caplog.at_level(logging.WARNING):
    given = evaluation.evaluate(
        "L2L", "square_cos_2", num_steps=2, num_epochs=1, path=str(tmp_path),
        swarm_options={"num_particles": 4, "step_scale": 0.01,
                       "attraction_gain": "hop"}, show_progress=False)
  assert ("Swarm options attraction_gain, step_scale have no effect: a LOIS "
          "released model runs as LOIS's code ran it." in caplog.text)
  plain = evaluation.evaluate(
      "L2L", "square_cos_2", num_steps=2, num_epochs=1, path=str(tmp_path),
      swarm_options={"num_particles": 4}, show_progress=False)
  np.testing.assert_array_equal(given.losses, plain.losses)
  assert given.swarm_options == {"num_particles": 4, "lois_released": True}


def _rastrigin_rows(positions, dims):
  """Rastrigin's loss on every row of recorded positions [..., k, n]."""
  points = np.asarray(positions, np.float64).reshape(
      positions.shape[:-1] + (-1, dims))
  return np.sum(points**2 - 10 * np.cos(2 * np.pi * points), -1) + 10 * dims


@pytest.mark.parametrize("optimizer, swarm", [
    ("Adam", {"num_particles": 3}), ("PSO", {"num_particles": 3}),
    ("L2L", {"num_particles": 3, "use_entropy": False})])
def test_row_losses_are_each_start_sets_losses(optimizer, swarm):
  result = evaluation.evaluate(
      optimizer, "square_cos_2", num_steps=3, num_epochs=2,
      learning_rate=0.03, swarm_options=swarm, show_progress=False)
  assert result.row_losses.shape == (2, 4, 3, 128)
  np.testing.assert_allclose(result.row_losses[:1],
                             _rastrigin_rows(result.positions, 2), rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(np.mean(result.row_losses, 3), result.losses,
                             rtol=1e-5)
  # Ranked per start set: each row's best restart, not one restart for all.
  per_row = np.mean(np.min(result.row_losses[:, -1], axis=1))
  by_mean = np.mean(np.min(result.losses[:, -1], axis=1))
  assert evaluation.final_error(result) == pytest.approx(per_row)
  assert per_row < by_mean


def test_single_point_row_losses():
  # L2L's unroll records batch means; the rows come from a second look.
  result = evaluation.evaluate("L2L", "square_cos_2", num_steps=2,
                               num_epochs=1, show_progress=False)
  assert result.row_losses.shape == (1, 3, 1, 128)
  np.testing.assert_allclose(np.mean(result.row_losses, 3), result.losses,
                             rtol=1e-5)
  # A scalar loss is one row, the loss itself.
  result = evaluation.evaluate("Adam", "quadratic", num_steps=2,
                               num_epochs=1, show_progress=False)
  assert result.row_losses.shape == (1, 3, 1, 1)
  np.testing.assert_array_equal(result.row_losses[..., 0], result.losses)


def test_first_steps_cuts_every_per_step_array_alike():
  losses = np.arange(2 * 5 * 3, dtype=np.float64).reshape(2, 5, 3)
  rows = np.stack([losses, losses + 100], axis=3)
  result = evaluation.Evaluation(losses, np.ones(2), None, rows)
  cut = evaluation.first_steps(result, 2)
  np.testing.assert_array_equal(cut.losses, losses[:, :3])
  np.testing.assert_array_equal(cut.row_losses, rows[:, :3])
  assert cut.positions is None
  np.testing.assert_array_equal(cut.seconds, np.ones(2))
  # A hand-made Evaluation without row losses is scored as one row.
  plain = evaluation.Evaluation(losses, np.ones(2), None)
  assert evaluation.scored_losses(plain) is losses
  assert evaluation.scored_losses(cut) is cut.row_losses
  # Its final losses are those of step 2: per start set, the best particle.
  assert evaluation.final_error(cut) == pytest.approx(
      np.mean([[losses[e, 2].min(), losses[e, 2].min() + 100]
                for e in range(2)]))


def test_tuning_never_reads_a_data_problems_test_split(monkeypatch):
  # A learning rate picked on the test split's images would be picked on
  # the evaluation's data; tuning reads the train split instead.
  splits = []
  real_load = datasets.load_digits

  def recording_load(split="train"):
    splits.append(split)
    return real_load(split)

  monkeypatch.setattr(datasets, "load_digits", recording_load)
  evaluation.tune("Adam", "digits", seed=3, grid=(0.01,), num_steps=2,
                  num_epochs=1, show_progress=False)
  assert splits == ["train"]
  # Validation instances: the train split's data, the evaluation's kind of
  # instance otherwise (the test mode's for a problem without data).
  final = {}
  for name in ("digits", "quadratic-las"):
    for mode in ("train", "validation", "test"):
      result = evaluation.evaluate("Adam", name, num_steps=3, seed=5,
                                   mode=mode, **EVAL_ARGS)
      final[name, mode] = _losses(result, 3)[:, -1]
  np.testing.assert_array_equal(final["digits", "validation"],
                                final["digits", "train"])
  assert not np.allclose(final["digits", "validation"],
                         final["digits", "test"])
  np.testing.assert_array_equal(final["quadratic-las", "validation"],
                                final["quadratic-las", "test"])


def test_an_evaluation_says_how_its_lstm_steps_ran(kernel, monkeypatch,
                                                    tmp_path):
  # Its seconds depend on it: the native kernel is 1.2-2x faster.
  del kernel  # Built, so the first evaluation runs it.
  args = dict(num_steps=2, num_epochs=1, show_progress=False)
  fused = evaluation.evaluate("L2L", "quadratic-las", **args)
  assert fused.lstm_step == "native kernel"
  monkeypatch.setenv(native.ENV_VAR, "0")
  as_ops = evaluation.evaluate("L2L", "quadratic-las", **args)
  assert as_ops.lstm_step == "TensorFlow ops"
  # The same numbers either way, to float32 rounding.
  np.testing.assert_allclose(as_ops.losses, fused.losses, rtol=1e-5)
  assert evaluation.evaluate("Adam", "quadratic-las", **args).lstm_step is None
  _, settings = records.read(records.write(
      str(tmp_path), fused, {"optimizer": "L2L", "problem": "quadratic-las"}))
  assert settings["lstm_step"] == "native kernel"


def test_tuning_says_when_it_cannot_hold_anything_out(caplog):
  # simple draws nothing: its tuning instance is the evaluated one.
  with caplog.at_level(logging.WARNING):
    evaluation.tune("SGD", "simple", grid=[0.1], num_steps=1, num_epochs=1,
                    show_progress=False)
    evaluation.tune("SGD", "quadratic", grid=[0.1], num_steps=1,
                    num_epochs=1, show_progress=False)
  warned = [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING]
  assert warned == [
      "simple draws the same instance at every seed, so the learning rate is "
      "picked on the instance it is then evaluated on: nothing is held out."]


def test_tuning_says_when_every_learning_rate_diverged(caplog):
  with caplog.at_level(logging.WARNING):
    best, scores = evaluation.tune("SGD", "quadratic", grid=[1e19, 1e20],
                                   num_steps=2, num_epochs=1,
                                   show_progress=False)
  assert best == 1e19 and scores == {1e19: np.inf, 1e20: np.inf}
  assert ("SGD diverged at every learning rate tried on the tuning instances "
          "(1e+19 to 1e+20); the first, 1e+19, is kept.") in caplog.messages


def test_an_optimizer_saved_into_while_read_is_read_again(
    saved_and_later_save, monkeypatch, caplog):
  live, late = saved_and_later_save
  args = {"num_steps": 5, "num_epochs": 2, "seed": 4, "show_progress": False}
  wanted = evaluation.evaluate("L2L", "simple", path=str(late), **args)
  # The run saves after the nets were read, before the manifest is kept for
  # the records.
  builds = save_after_first_call(monkeypatch, evaluation, "_build_graph",
                                 late, live)
  with caplog.at_level(logging.WARNING):
    result = evaluation.evaluate("L2L", "simple", path=str(live), **args)
  assert len(builds) == 2
  assert "was saved into while it was read" in caplog.text
  # The numbers and the manifest are both the late save's.
  np.testing.assert_array_equal(result.losses, wanted.losses)
  assert result.optimizer_manifest == manifest.read(str(late))
  assert result.optimizer_manifest["training"]["epochs_done"] == 6
