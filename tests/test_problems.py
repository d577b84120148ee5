"""Tests for problems.py: each loss against numpy on the variables' values."""

import numpy as np
import pytest
import tensorflow as tf

import problems


def _evaluate(sess, build, values=None):
  """Builds a problem, optionally sets variables, and evaluates it.

  Args:
    sess: session of the default graph.
    build: the problem's `build` function.
    values: `{variable name: value}` assigned after initialisation.

  Returns:
    `(loss, {name: value} of every variable, names of trainable variables)`.
  """
  loss = build()
  variables = {v.name.split(":")[0]: v
               for v in tf.compat.v1.global_variables()}
  sess.run(tf.compat.v1.global_variables_initializer())
  for name, value in (values or {}).items():
    sess.run(variables[name].assign(value))
  trainable = sorted(v.name.split(":")[0]
                     for v in tf.compat.v1.trainable_variables())
  return sess.run(loss), sess.run(variables), trainable


def _batched_square_norm(w, x, y):
  return np.sum(np.square(np.einsum("bij,bj->bi", w, x) - y), axis=1)


def _rastrigin_cos_term(x):
  return 10.0 * np.cos(2 * np.pi * x)


@pytest.mark.parametrize("values, expected", [(None, 1.0), ({"x": -3.0}, 9.0)])
def test_simple(sess, values, expected):
  loss, _, trainable = _evaluate(sess, problems.simple(), values)
  assert trainable == ["x"]
  assert loss == expected


def test_simple_multi_optimizer(sess):
  loss, values, trainable = _evaluate(
      sess, problems.simple_multi_optimizer(num_dims=3),
      {"x_1": 2.0, "x_2": -0.5})
  assert trainable == ["x_0", "x_1", "x_2"]
  assert values["x_0"] == 1.0
  np.testing.assert_allclose(loss, 1.0 + 4.0 + 0.25)


def test_quadratic_is_mean_squared_residual(sess):
  loss, values, trainable = _evaluate(
      sess, problems.quadratic(batch_size=5, num_dims=4, stddev=0.5))
  assert trainable == ["x"]
  w, x, y = values["w"], values["x"], values["y"]
  assert w.shape == (5, 4, 4) and x.shape == (5, 4) and y.shape == (5, 4)
  assert 0.0 <= w.min() and w.max() < 1.0 and 0.0 <= y.min() and y.max() < 1.0
  assert 0.1 < x.std() < 1.5  # Drawn with stddev 0.5, not uniform.
  np.testing.assert_allclose(loss, np.mean(_batched_square_norm(w, x, y)),
                             rtol=1e-5)


def test_square_cos_test_mode_is_rastrigin(sess):
  build = problems.square_cos(batch_size=3, num_dims=2, mode="test",
                              init_stddev=1.0)
  point = np.array([[0.0, 0.0], [0.5, -1.25], [2.0, 0.1]], np.float32)
  loss, values, trainable = _evaluate(sess, build, {"x": point})
  assert trainable == ["x"] and sorted(values) == ["x"]
  expected = np.sum(point**2 - _rastrigin_cos_term(point), axis=1) + 20.0
  assert loss.shape == (3,)
  np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss[0], 0.0, atol=1e-5)
  assert loss[1:].min() > 1.0


def test_square_cos_train_mode_formula(sess):
  build = problems.square_cos(batch_size=64, num_dims=3, stddev=0.3,
                              mode="train")
  loss, values, trainable = _evaluate(sess, build)
  assert trainable == ["x"]
  w, x, y, wcos = values["w"], values["x"], values["y"], values["wcos"]
  identity = np.eye(3)[None]
  expected = (_batched_square_norm(identity + w, x, y) -
              np.sum(wcos * _rastrigin_cos_term(x), axis=1) + 30.0)
  np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-4)
  # The random family: spread stddev / d around 0 (w, y) and 1 (wcos).
  for value, mean in ((w, 0.0), (y, 0.0), (wcos, 1.0)):
    assert abs(value.mean() - mean) < 0.03
    assert 0.07 < value.std() < 0.13


def test_square_cos_unknown_mode():
  with pytest.raises(ValueError, match="'eval'"):
    problems.square_cos(mode="eval")


def test_ensemble_weights_each_problem(sess):
  build = problems.ensemble(
      [{"name": "simple"},
       {"name": "simple_multi_optimizer", "options": {"num_dims": 2}}],
      weights=[2.0, 0.5])
  loss, _, trainable = _evaluate(
      sess, build, {"problem_0/x": 3.0, "problem_1/x_1": -2.0})
  assert trainable == ["problem_0/x", "problem_1/x_0", "problem_1/x_1"]
  np.testing.assert_allclose(loss, 2.0 * 9.0 + 0.5 * (1.0 + 4.0))


def test_ensemble_default_weights_average_batched_losses(sess):
  build = problems.ensemble([
      {"name": "simple"},
      {"name": "square_cos", "options": {"batch_size": 2, "mode": "test"}}])
  point = np.array([[0.5, 0.0], [0.0, 0.0]], np.float32)
  loss, _, _ = _evaluate(sess, build, {"problem_1/x": point})
  rastrigin = np.sum(point**2 - _rastrigin_cos_term(point), axis=1) + 20.0
  np.testing.assert_allclose(loss, 1.0 + np.mean(rastrigin), rtol=1e-5)


@pytest.mark.parametrize("specs, weights, match", [
    ([{"name": "nope"}], None, "unknown problem 'nope'"),
    ([{"name": "_batched_residual"}], None, "unknown problem"),
    ([{"name": "simple"}], [1.0, 2.0], "1 problems but 2 weights"),
])
def test_ensemble_errors(specs, weights, match):
  with pytest.raises(ValueError, match=match):
    problems.ensemble(specs, weights)


def test_mean_loss(sess):
  scalar = tf.constant(3.0)
  assert problems.mean_loss(scalar) is scalar
  np.testing.assert_allclose(
      sess.run(problems.mean_loss(tf.constant([1.0, 2.0, 6.0]))), 3.0)


@pytest.mark.parametrize("argument", ["batch_size", "num_dims"])
def test_square_cos_needs_positive_sizes(argument):
  with pytest.raises(ValueError, match="square_cos {} must be >= 1, got "
                     "0".format(argument)):
    problems.square_cos(**{argument: 0})
