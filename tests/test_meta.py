"""Tests for meta.py: the unrolled graph, its ops, training and saving."""

import os
import re

import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.core import interception
from l2l.core import unroll
from l2l.swarm import config as swarm_config
import meta
import problems
import util

from conftest import write_lois_released

LR = 0.1
# A fixed quadratic instance ||W x - y||^2 with a fixed start, for runs that
# must see the same problem in two graphs whatever the seeds.
FIXED_W = np.array([[2.0, 0.5], [-0.3, 1.0]], np.float32)
FIXED_Y = np.array([0.7, -1.2], np.float32)
FIXED_X0 = np.array([0.1, 0.3], np.float32)


def _sgd_config(learning_rate=LR):
  return {"sgd": {"net": "Sgd",
                  "net_options": {"learning_rate": learning_rate}}}


def _small_lstm_config(**options):
  net_options = {"layers": (4, 4), "preprocess_name": "LogAndSign",
                 "preprocess_options": {"k": 5}, "scale": 0.01}
  net_options.update(options)
  return {"cw": {"net": "CoordinateWiseDeepLSTM", "net_options": net_options}}


def _fixed_quadratic(dtype=np.float32):
  def build():
    x = tf.compat.v1.get_variable("x", initializer=FIXED_X0.astype(dtype))
    w = tf.compat.v1.get_variable("w", initializer=FIXED_W.astype(dtype),
                                  trainable=False)
    y = tf.compat.v1.get_variable("y", initializer=FIXED_Y.astype(dtype),
                                  trainable=False)
    return tf.reduce_sum(tf.square(tf.linalg.matvec(w, x) - y))
  return build


def _graph_variable(name):
  (variable,) = [v for v in tf.compat.v1.global_variables()
                 if v.name == name + ":0"]
  return variable


def _sgd_positions(x, steps, learning_rate=LR):
  """SGD on f(x) = x^2 in float32: x <- x - lr * 2x."""
  positions = [np.float32(x)]
  for _ in range(steps):
    x = positions[-1]
    positions.append(x + np.float32(-learning_rate) * (np.float32(2.0) * x))
  return np.array(positions)


def _meta_gradient(fresh_session, ref, second_derivatives, recompute=False,
                   dtype=np.float32):
  """The meta-loss gradient of a fixed LSTM on a fixed problem, flattened."""
  values = ref.random_checkpoint(3, 1, (4, 4), 1)
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(
        **_small_lstm_config(initializer=values, scale=0.1,
                             preprocess_name="identity"))
    info = optimizer.meta_loss(_fixed_quadratic(dtype), 4,
                               second_derivatives=second_derivatives,
                               recompute=recompute)
    gradients = tf.gradients(info.loss, optimizer.trainable_variables())
    ref.init(sess)
    return np.concatenate([g.ravel() for g in sess.run(gradients)])


def test_sgd_net_on_simple_moves_exactly(sess, ref):
  optimizer = meta.MetaOptimizer(**_sgd_config())
  info = optimizer.meta_loss(problems.simple(), 3)
  ref.init(sess)
  expected = _sgd_positions(1.0, 6)
  loss, (x_final,), fx, history, (x_initial,) = sess.run(
      [info.loss, info.x, info.fx, optimizer.fx_history, optimizer.x_initial])
  np.testing.assert_allclose(x_final, expected[3], rtol=1e-6)
  np.testing.assert_allclose(fx, expected[3]**2, rtol=1e-6)
  np.testing.assert_allclose(history, expected[:4]**2, rtol=1e-6)
  np.testing.assert_allclose(loss, np.sum(expected[:4]**2), rtol=1e-6)
  assert x_initial == 1.0
  # `update` stores x_final: the next unroll continues the trajectory.
  sess.run(info.update)
  np.testing.assert_allclose(sess.run(info.x[0]), expected[6], rtol=1e-6)
  sess.run(info.reset)
  assert sess.run(_graph_variable("x")) == 1.0
  np.testing.assert_allclose(sess.run(info.x[0]), expected[3], rtol=1e-6)


def test_log_objective_sums_the_logs_of_the_same_losses(fresh_session, ref):
  expected = _sgd_positions(1.0, 3)**2
  for objective, meta_loss in (("sum", np.sum(expected)),
                               ("log", np.sum(np.log(expected)))):
    with fresh_session() as sess:
      optimizer = meta.MetaOptimizer(**_sgd_config())
      info = optimizer.meta_loss(problems.simple(), 3, objective=objective)
      ref.init(sess)
      loss, history = sess.run([info.loss, optimizer.fx_history])
    # The objective changes the meta-loss, never the trajectory.
    np.testing.assert_allclose(history, expected, rtol=1e-6)
    np.testing.assert_allclose(loss, meta_loss, rtol=1e-5)


@pytest.mark.usefixtures("graph")
def test_an_unknown_or_swarm_log_objective_is_refused():
  with pytest.raises(ValueError, match="Unknown meta-objective 'mean'"):
    meta.MetaOptimizer(**_sgd_config()).meta_loss(problems.simple(), 2,
                                                  objective="mean")
  with pytest.raises(ValueError, match="objective='log' is for the "
                     "single-point unroll; the swarm's meta-objective is its "
                     "`objective` option"):
    meta.MetaOptimizer(num_particles=2).meta_loss(
        problems.square_cos(batch_size=1, num_dims=2), 1, objective="log")


def test_simple_multi_each_net_moves_only_its_variable(sess, ref):
  problem, net_config, assignments = util.get_config("simple-multi")
  optimizer = meta.MetaOptimizer(**net_config)
  info = optimizer.meta_loss(problem, 3, net_assignments=assignments)
  ref.init(sess)
  (x_0, x_1), fx = sess.run([info.x, info.fx])
  adam = ref.adam(lambda x, t: 2 * x, 1.0, 3, learning_rate=0.1)
  assert x_0 == 1.0  # The zero-initialised LSTM outputs 0.
  np.testing.assert_allclose(x_1, adam[3], rtol=1e-5)
  np.testing.assert_allclose(fx, 1.0 + adam[3]**2, rtol=1e-5)


def test_sonnet2_problem_gets_exact_sgd_steps(sess, ref):
  inputs = np.array([[1.0, 2.0, -1.0]], np.float32)
  target = np.array([[0.5, -1.0]], np.float32)

  def build():
    data = tf.compat.v1.get_variable("data", initializer=inputs,
                                     trainable=False)
    return tf.reduce_sum(tf.square(snt.Linear(2, name="lin")(data) - target))

  optimizer = meta.MetaOptimizer(**_sgd_config())
  info = optimizer.meta_loss(build, 2)
  ref.init(sess)
  assert [c.name for c in info.subproblem_constants] == ["data:0"]
  w, b = sess.run([_graph_variable("lin/w"), _graph_variable("lin/b")])
  for _ in range(2):
    residual = inputs @ w + b - target
    w, b = w - LR * 2 * inputs.T @ residual, b - LR * 2 * residual[0]
  w_final, b_final = sess.run(info.x)
  np.testing.assert_allclose(w_final, w, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(b_final, b, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("graph")
def test_problem_whose_variables_escape_interception_is_refused():
  module = snt.Linear(2, name="lin")

  def build():
    data = tf.compat.v1.get_variable("data", initializer=[[1.0, 2.0]],
                                     trainable=False)
    return tf.reduce_sum(tf.square(module(data)))

  with pytest.raises(ValueError):
    meta.MetaOptimizer(**_sgd_config()).meta_loss(build, 2)


def test_reset_draws_a_new_instance_and_update_keeps_it(sess, ref):
  info = meta.MetaOptimizer(**_sgd_config(0.01)).meta_loss(
      problems.quadratic(batch_size=3, num_dims=2), 2)
  ref.init(sess)
  first = sess.run(info.subproblem_constants)
  sess.run(info.update)
  for before, after in zip(first, sess.run(info.subproblem_constants)):
    np.testing.assert_array_equal(after, before)
  x_moved = sess.run(_graph_variable("x"))
  sess.run(info.reset)
  for before, after in zip(first, sess.run(info.subproblem_constants)):
    assert np.abs(after - before).min() > 0.0
  assert np.abs(sess.run(_graph_variable("x")) - x_moved).min() > 0.0


@pytest.mark.parametrize("learning_rate", [float("nan"), -0.01, 0, True])
def test_meta_minimize_refuses_a_learning_rate_that_cannot_train(
    sess, learning_rate):
  # NaN trained to NaN and a negative rate ascended, without a word.
  del sess
  optimizer = meta.MetaOptimizer(**_small_lstm_config())
  with pytest.raises(ValueError, match=r"meta_minimize learning_rate must be "
                     r"a finite number > 0, got "):
    optimizer.meta_minimize(_fixed_quadratic(), 3, learning_rate=learning_rate)


def test_meta_minimize_takes_a_learning_rate_tensor(sess, ref):
  optimizer = meta.MetaOptimizer(**_small_lstm_config())
  step = optimizer.meta_minimize(_fixed_quadratic(), 3,
                                 learning_rate=tf.constant(0.01))
  ref.init(sess)
  before = sess.run(optimizer.trainable_variables())
  sess.run(step.step)
  after = sess.run(optimizer.trainable_variables())
  assert max(np.abs(a - b).max() for a, b in zip(after, before)) > 0


def test_meta_minimize_steps_only_the_net_parameters(sess, ref):
  optimizer = meta.MetaOptimizer(**_small_lstm_config())
  step = optimizer.meta_minimize(_fixed_quadratic(), 3, learning_rate=0.01)
  ref.init(sess)
  parameters = optimizer.trainable_variables()
  assert len(parameters) == 6  # lstm_1, lstm_2, linear: weights and biases.
  before, x_before = sess.run([parameters, step.x])
  sess.run(step.step)
  after, x_after = sess.run([parameters, step.x])
  # A first Adam step moves each parameter by lr |g| / (|g| + 1e-8): mostly
  # by the rate, less for tiny gradients, never more.
  change = np.concatenate([np.abs(new - old).ravel()
                           for old, new in zip(before, after)])
  assert change.min() > 0.0 and change.max() < 0.01 * (1 + 1e-4)
  assert np.median(change) > 0.009
  assert sess.run(_graph_variable("x")).tolist() == FIXED_X0.tolist()
  assert np.abs(x_after[0] - x_before[0]).max() > 0.0  # A new update rule.


def test_meta_loss_and_meta_minimize_arity(fresh_session):
  with fresh_session():
    info = meta.MetaOptimizer(**_small_lstm_config()).meta_loss(
        problems.quadratic(batch_size=4, num_dims=3), 2)
    loss, _, _, fx, x, constants = info
    assert loss.shape == () and fx.shape == ()
    assert [v.shape for v in x] == [(4, 3)]
    assert [c.name for c in constants] == ["w:0", "y:0"]
    assert not any(c.trainable for c in constants)
  with fresh_session():
    step = meta.MetaOptimizer(**_small_lstm_config()).meta_minimize(
        problems.quadratic(batch_size=4, num_dims=3), 2)
    _, _, _, fx, (x,) = step
    assert fx.shape == () and x.shape == (4, 3)


def test_second_derivatives_train_and_change_the_gradient(fresh_session, ref):
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(**_small_lstm_config())
    step = optimizer.meta_minimize(problems.quadratic(batch_size=4, num_dims=3),
                                   3, second_derivatives=True)
    ref.init(sess)
    before = sess.run(optimizer.trainable_variables())
    fxs = [sess.run([step.fx, step.step, step.update])[0] for _ in range(3)]
    after = sess.run(optimizer.trainable_variables())
  assert np.all(np.isfinite(fxs))
  assert all(np.abs(a - b).max() > 1e-5 for a, b in zip(after, before))
  first = _meta_gradient(fresh_session, ref, False)
  second = _meta_gradient(fresh_session, ref, True)
  np.testing.assert_allclose(_meta_gradient(fresh_session, ref, False), first,
                             rtol=1e-5, atol=1e-7)
  assert np.all(np.isfinite(second))
  # 1.4% here; the repeat above agrees to 1e-5.
  assert np.abs(first - second).max() > 5e-3 * np.abs(first).max()


@pytest.mark.parametrize("second_derivatives", [False, True])
def test_recompute_gives_the_same_meta_gradient(fresh_session, ref,
                                                second_derivatives):
  kept = _meta_gradient(fresh_session, ref, second_derivatives)
  recomputed = _meta_gradient(fresh_session, ref, second_derivatives,
                              recompute=True)
  np.testing.assert_allclose(recomputed, kept, rtol=1e-6, atol=1e-9)


def test_a_float64_problem_meta_trains_as_its_float32_copy(fresh_session,
                                                          ref):
  # The nets step a float64 variable in float32 (`unroll.as_float32`): the
  # unroll joins the variables into one LSTM call, casts, and the meta-loss
  # sums float32 losses, so only the problem's own arithmetic differs.
  single = _meta_gradient(fresh_session, ref, False)
  double = _meta_gradient(fresh_session, ref, False, dtype=np.float64)
  assert np.abs(single).max() > 1e-3
  np.testing.assert_allclose(double, single, rtol=1e-4, atol=1e-6)


def test_sgd_net_steps_a_float64_variable_in_its_type(sess, ref):
  def build():
    x = tf.compat.v1.get_variable("x", initializer=np.float64(1.0))
    return tf.square(x)

  optimizer = meta.MetaOptimizer(**_sgd_config())
  info = optimizer.meta_loss(build, 3)
  assert info.x[0].dtype == tf.float64
  assert optimizer.fx_history.dtype == tf.float32
  ref.init(sess)
  (x_final,), history = sess.run([info.x, optimizer.fx_history])
  expected = _sgd_positions(1.0, 3)
  np.testing.assert_allclose(x_final, expected[3], rtol=1e-6)
  np.testing.assert_allclose(history, expected**2, rtol=1e-6)


def test_swarm_refuses_a_float64_problem_in_one_line(graph):
  del graph  # The fresh default graph.
  with pytest.raises(ValueError) as error:
    meta.MetaOptimizer(num_particles=2).meta_loss(
        problems.test_function("rastrigin", batch_size=1, num_dims=2,
                               dtype="float64"), 2)
  assert str(error.value) == (
      "The swarm steps float32 variables only; x is float64. Build the "
      "problem in float32, or run one particle.")


@pytest.mark.parametrize("make_loss", ["quadratic", None])
def test_a_make_loss_that_is_no_function_is_one_line(graph, make_loss):
  del graph  # The fresh default graph.
  with pytest.raises(ValueError, match="make_loss must be the problem's "
                     "build function, a callable that returns the loss; got "
                     "{!r}".format(make_loss)):
    meta.MetaOptimizer().meta_loss(make_loss, 2)


def test_swarm_refuses_recompute():
  with pytest.raises(ValueError, match="recompute is for the single-point "
                     "unroll"):
    meta.MetaOptimizer(num_particles=2).meta_loss(
        problems.square_cos(batch_size=1, num_dims=2), 2, recompute=True)


def test_lstm_meta_training_lowers_the_loss(sess, ref):
  """300 meta-iterations (5 unrolls of 20 per instance) on a 32x10 quadratic.

  Untrained (meta learning rate 0), the ratio below stays near 1 (0.94-1.02
  over graph seeds 0-3); trained it is 0.17-0.31. The `sess` graph has seed 0.
  """
  step = meta.MetaOptimizer().meta_minimize(problems.quadratic(batch_size=32),
                                            20, learning_rate=0.01)
  ref.init(sess)
  fxs = []
  for i in range(300):
    if i % 5 == 0:
      sess.run(step.reset)
    fxs.append(sess.run([step.fx, step.step, step.update])[0])
  assert np.all(np.isfinite(fxs))
  assert np.mean(fxs[-20:]) < 0.5 * np.mean(fxs[:20])


def test_save_then_model_path_restores_the_optimizer(fresh_session, ref,
                                                     tmp_path):
  (tmp_path / "notes.txt").write_text("mine")
  (tmp_path / "other.l2l").write_bytes(b"not ours")
  with fresh_session(seed=1) as sess:
    optimizer = meta.MetaOptimizer(**_small_lstm_config())
    step = optimizer.meta_minimize(_fixed_quadratic(), 3, learning_rate=0.05)
    ref.init(sess)
    for _ in range(3):
      sess.run([step.step, step.update])
    sess.run(step.reset)
    expected = sess.run([step.x, step.fx])
    saved = optimizer.save(sess, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ["cw.l2l", "manifest.json",
                                          "notes.txt", "other.l2l"]
  assert (tmp_path / "notes.txt").read_text() == "mine"
  assert (tmp_path / "other.l2l").read_bytes() == b"not ours"
  # Keyed by each written file, as DeepMind's save.
  assert list(saved) == [str(tmp_path / "cw.l2l")]
  ref.assert_nested_equal(l2l_file.load(tmp_path / "cw.l2l"),
                          saved[str(tmp_path / "cw.l2l")])
  with fresh_session(seed=2) as sess:
    info = meta.MetaOptimizer(**_small_lstm_config()).meta_loss(
        _fixed_quadratic(), 3, model_path=str(tmp_path))
    ref.init(sess)
    actual = sess.run([info.x, info.fx])
  np.testing.assert_allclose(actual[0], expected[0], rtol=1e-6)
  np.testing.assert_allclose(actual[1], expected[1], rtol=1e-6)


def test_save_returns_values_without_a_path(sess, ref):
  optimizer = meta.MetaOptimizer(**_small_lstm_config(initializer="ones"))
  optimizer.meta_loss(problems.simple(), 1)
  ref.init(sess)
  saved = optimizer.save(sess)
  assert sorted(saved["cw"]) == ["linear", "lstm_1", "lstm_2"]
  np.testing.assert_array_equal(saved["cw"]["lstm_2"]["w_gates"],
                                np.ones([8, 16]))


def test_save_then_restore_with_a_hand_designed_net(fresh_session, ref,
                                                    tmp_path):
  problem, net_config, assignments = util.get_config("simple-multi")
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(**net_config)
    optimizer.meta_loss(problem, 2, net_assignments=assignments)
    ref.init(sess)
    optimizer.save(sess, str(tmp_path))
  with fresh_session() as sess:
    info = meta.MetaOptimizer(**net_config).meta_loss(
        problem, 2, net_assignments=assignments, model_path=str(tmp_path))
    ref.init(sess)
    x_1 = sess.run(info.x[1])
  np.testing.assert_allclose(
      x_1, ref.adam(lambda x, t: 2 * x, 1.0, 2, learning_rate=0.1)[2],
      rtol=1e-5)


def test_net_config_must_be_a_dict():
  with pytest.raises(ValueError, match="Net config 'cw' must be a dict"):
    meta.MetaOptimizer(cw="CoordinateWiseDeepLSTM")


def _multi_meta_loss(net_assignments, **kwargs):
  problem, net_config, _ = util.get_config("simple-multi")
  return meta.MetaOptimizer(**net_config).meta_loss(
      problem, 2, net_assignments=net_assignments, **kwargs)


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("assignments, match", [
    ([("cw", ["x_0"]), ("adam", ["x_9"])],
     r"variable 'x_9'.*trainable variables are: x_0, x_1"),
    ([("cw", ["x_0"]), ("rms", ["x_1"])], r"net 'rms'.*\(cw, adam\)"),
    ([("cw", ["x_0"]), ("cw", ["x_1"])], r"net 'cw' appears twice"),
    ([("cw", []), ("adam", [])],
     r"^net_assignments give no net any variable, so nothing would move; "
     r"the problem's trainable variables are: x_0, x_1\.$"),
    ([("cw", ["x_0", "x_1", "x_0"]), ("adam", [])],
     r"^net_assignments names variable 'x_0' twice for net 'cw'\.$"),
    (None, r"net_assignments is required with more than one net"),
])
def test_bad_net_assignments(assignments, match):
  with pytest.raises(ValueError, match=match):
    _multi_meta_loss(assignments)


def _two_sgd_nets():
  return {"slow": {"net": "Sgd", "net_options": {"learning_rate": 0.1}},
          "fast": {"net": "Sgd", "net_options": {"learning_rate": 0.2}}}


def test_unassigned_variable_stays_and_shared_variable_sums_updates(sess,
                                                                    ref):
  # As DeepMind's: x_1 is given to no net, x_0 to both.
  optimizer = meta.MetaOptimizer(**_two_sgd_nets())
  info = optimizer.meta_loss(
      problems.simple_multi_optimizer(num_dims=2), 2,
      net_assignments=[("slow", ["x_0"]), ("fast", ["x_0"])])
  ref.init(sess)
  (x_0, x_1), history = sess.run([info.x, optimizer.fx_history])
  # Each step moves x_0 by -(0.1 + 0.2) * 2 x_0.
  np.testing.assert_allclose(x_0, 0.4**2, rtol=1e-6)
  assert x_1 == 1.0
  np.testing.assert_allclose(history, [2.0, 1.16, 1.0256], rtol=1e-6)


def test_a_shared_variable_is_refused_on_saving_before_any_file(sess, ref,
                                                               tmp_path):
  # The unroll runs (above); a saved rule could not say that x_0 moves by
  # the sum of two nets' steps, so saving says so and writes nothing.
  optimizer = meta.MetaOptimizer(**_two_sgd_nets())
  optimizer.meta_loss(
      problems.simple_multi_optimizer(num_dims=2), 2,
      net_assignments=[("slow", ["x_0"]), ("fast", ["x_0"])])
  ref.init(sess)
  with pytest.raises(ValueError, match=(
      r"^net_assignments put variable x_0 under nets 'slow' and 'fast'")):
    optimizer.save(sess, str(tmp_path / "saved"))
  assert not (tmp_path / "saved").exists()
  # Without a path nothing is written, and the values still come back.
  assert set(optimizer.save(sess)) == {"slow", "fast"}


@pytest.mark.usefixtures("graph")
def test_swarm_option_names_are_never_net_ids():
  # pylint: disable=protected-access
  defaults = swarm_config.SwarmConfig()
  for name in swarm_config.SwarmConfig.option_names():
    optimizer = meta.MetaOptimizer(**{name: getattr(defaults, name)})
    assert name not in optimizer._config


@pytest.mark.usefixtures("graph")
def test_model_path_without_checkpoint_names_the_directory(tmp_path):
  with pytest.raises(ValueError, match="No checkpoint 'cw.l2l'") as error:
    meta.MetaOptimizer(**_small_lstm_config()).meta_loss(
        problems.simple(), 2, model_path=str(tmp_path))
  assert str(tmp_path) in str(error.value)


@pytest.mark.usefixtures("graph")
def test_swarm_model_path_of_a_lois_released_model_points_to_evaluate(
    tmp_path):
  write_lois_released(str(tmp_path), 2)
  with pytest.raises(ValueError, match="is a LOIS released model.*"
                     "evaluate.py --path"):
    meta.MetaOptimizer(num_particles=2).meta_loss(
        problems.square_cos(batch_size=1, num_dims=2), 1,
        model_path=str(tmp_path))


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("len_unroll", [0, -1, 2.7, "2", True])
def test_len_unroll_must_be_a_positive_integer(len_unroll):
  with pytest.raises(ValueError, match=r"len_unroll must be an integer >= 1, "
                     r"got {}\.".format(re.escape(repr(len_unroll)))):
    meta.MetaOptimizer(**_sgd_config()).meta_loss(problems.simple(),
                                                  len_unroll)


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("returned", [None, "loss"])
def test_make_loss_must_return_a_loss(returned):
  def make_loss():
    tf.compat.v1.get_variable("x", initializer=1.0)
    return returned

  with pytest.raises(ValueError,
                     match=r"make_loss \(the problem's build\(\)\) returned"):
    meta.MetaOptimizer(**_sgd_config()).meta_loss(make_loss, 2)


def test_get_variables_and_make_with_custom_variables(sess, ref):
  # pylint: disable=protected-access
  build = problems.quadratic(batch_size=2, num_dims=3)
  variables, constants = meta._get_variables(build)
  assert [v.name for v in variables] == ["x:0"]
  assert [c.name for c in constants] == ["w:0", "y:0"]
  assert not tf.compat.v1.trainable_variables()  # The optimizee stays fixed.
  point = np.arange(6, dtype=np.float32).reshape(2, 3) / 4
  loss = meta._make_with_custom_variables(build, [tf.constant(point)],
                                          constants)
  ref.init(sess)
  (w, y), value = sess.run([constants, loss])
  residual = np.einsum("bij,bj->bi", w, point) - y
  np.testing.assert_allclose(value, np.mean(np.sum(residual**2, 1)),
                             rtol=1e-5)


def test_seed_helper_names_are_the_l2l_core_functions():
  # pylint: disable=protected-access
  # Their own behaviour is tested in test_unroll.py and test_interception.py.
  assert meta._nested_assign is unroll.nested_assign
  assert meta._nested_variable is unroll.nested_variable
  assert meta._wrap_variable_creation is interception.wrap_variable_creation
  assert (meta._make_with_custom_variables is
          interception.make_with_custom_variables)


def test_torch_regression_figures(sess, ref):
  # DeepMind's reproduction of the original Torch code: a layer-less,
  # zero-initialised coordinate-wise LSTM on `simple`, unroll 5, one epoch of
  # two unrolls.
  optimizer = meta.MetaOptimizer(net={
      "net": "CoordinateWiseDeepLSTM",
      "net_options": {"layers": (), "initializer": "zeros"}})
  step = optimizer.meta_minimize(problems.simple(), 5)
  ref.init(sess)
  sess.run(step.reset)
  for _ in range(2):
    cost, x, _, _ = sess.run([step.fx, step.x, step.update, step.step])
  assert round(float(cost), 4) == round(0.7325327, 4)
  assert round(float(x[0]), 4) == 0.8559


def test_deepminds_positional_second_derivatives_is_named(graph):
  del graph  # The fresh default graph.
  # DeepMind's meta_loss(make_loss, len_unroll, net_assignments,
  # second_derivatives): True lands on model_path here.
  with pytest.raises(ValueError, match=re.escape(
      "model_path must be a directory written by MetaOptimizer.save, or "
      "None; got True (DeepMind's meta_loss took second_derivatives fourth; "
      "give it by name: second_derivatives=True).")):
    meta.MetaOptimizer().meta_loss(problems.simple(), 2, None, True)
  with pytest.raises(ValueError, match="got 3.5.$"):
    meta.MetaOptimizer().meta_loss(problems.simple(), 2, model_path=3.5)


def test_meta_loss_fields_answer_to_the_designs_names_too(graph):
  del graph  # The fresh default graph.
  info = meta.MetaOptimizer().meta_loss(problems.quadratic(batch_size=2,
                                                           num_dims=3), 2)
  *_, fx, x, constants = info
  assert info.fx_final is fx and info.fx is fx
  assert info.x_final is x and info.x is x
  assert info.sub_constants is constants
  assert [interception.variable_name(c) for c in constants] == ["w", "y"]


def test_a_problem_of_empty_variables_is_one_line(graph):
  del graph  # The fresh default graph.

  def build():
    x = tf.compat.v1.get_variable("x", [0, 3])
    return tf.reduce_sum(tf.square(x))

  with pytest.raises(ValueError, match=re.escape(
      "The problem's trainable variables hold no values (x of shape [0, 3]): "
      "there is nothing to optimise")):
    meta.MetaOptimizer().meta_loss(build, 2)


def test_an_unroll_built_while_executing_eagerly_says_how_to_build_a_graph():
  # A TF-1.x script ported without disable_eager_execution(): TensorFlow
  # itself would fail deep inside, on tf.gradients.
  assert tf.executing_eagerly()
  with pytest.raises(RuntimeError, match=(
      r"meta_loss builds a TF-1.x graph, but TensorFlow is executing "
      r"eagerly .* `with tf.Graph\(\).as_default\(\):`, or call "
      r"tf.compat.v1.disable_eager_execution\(\) first")):
    meta.MetaOptimizer().meta_minimize(problems.simple(), 1)
