"""Tests of l2l/tasks/test_functions.py: the classic functions, both sides.

Each function is checked against a plain-Python restatement of its textbook
formula (loops over coordinates, float64), its minimum is checked where the
module says it is, and its numpy gradient against TensorFlow's and against
central differences of the restatement.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from l2l.tasks import test_functions


def _rastrigin(z):
  return 10 * len(z) + sum(v * v - 10 * math.cos(2 * math.pi * v) for v in z)


def _ackley(z):
  d = len(z)
  root = math.sqrt(sum(v * v for v in z) / d)
  waves = sum(math.cos(2 * math.pi * v) for v in z) / d
  return -20 * math.exp(-0.2 * root) - math.exp(waves) + 20 + math.e


def _griewank(z):
  product = 1.0
  for i, v in enumerate(z, start=1):
    product *= math.cos(v / math.sqrt(i))
  return 1 + sum(v * v for v in z) / 4000 - product


def _levy(z):
  w = [1 + (v - 1) / 4 for v in z]
  total = math.sin(math.pi * w[0]) ** 2
  for wi in w[:-1]:
    total += (wi - 1) ** 2 * (1 + 10 * math.sin(math.pi * wi + 1) ** 2)
  return total + (w[-1] - 1) ** 2 * (1 + math.sin(2 * math.pi * w[-1]) ** 2)


def _styblinski_tang(z):
  # The usual form, minimum -39.16616570377142 per coordinate, moved to 0.
  return sum(v ** 4 - 16 * v * v + 5 * v for v in z) / 2 + (
      39.16616570377142 * len(z))


def _rosenbrock(z):
  return sum(100 * (z[i + 1] - z[i] ** 2) ** 2 + (1 - z[i]) ** 2
             for i in range(len(z) - 1))


def _salomon(z):
  radius = math.sqrt(sum(v * v for v in z))
  return 1 - math.cos(2 * math.pi * radius) + 0.1 * radius


def _alpine(z):
  return sum(abs(v * math.sin(v) + 0.1 * v) for v in z)


def _ellipsoid(z):
  d = len(z)
  return sum(10 ** (4 * i / (d - 1)) * v * v for i, v in enumerate(z))


def _schwefel_222(z):
  product = 1.0
  for v in z:
    product *= abs(v)
  return sum(abs(v) for v in z) + product


REFERENCES = {"rastrigin": _rastrigin, "ackley": _ackley,
              "griewank": _griewank, "levy": _levy,
              "styblinski_tang": _styblinski_tang, "rosenbrock": _rosenbrock,
              "salomon": _salomon, "alpine": _alpine,
              "ellipsoid": _ellipsoid, "schwefel_222": _schwefel_222}
# The usual minimizers, stated independently of the module; Styblinski-Tang's
# is the root of its derivative 2 z^3 - 16 z + 2.5 below -2.
MINIMIZERS = {"rastrigin": 0.0, "ackley": 0.0, "griewank": 0.0, "levy": 1.0,
              "styblinski_tang": float(min(np.roots([2, 0, -16, 2.5]).real)),
              "rosenbrock": 1.0, "salomon": 0.0, "alpine": 0.0,
              "ellipsoid": 0.0, "schwefel_222": 0.0}
NAMES = sorted(REFERENCES)


def _points(rows=6, d=5, seed=0):
  return np.random.default_rng(seed).uniform(-3, 3, (rows, d))


def _instance(rows, d, seed=1, rotate=True, scale=True):
  rng = np.random.default_rng(seed)
  optimum = rng.uniform(-2, 2, (rows, d))
  rotation = None
  if rotate:
    rotation = np.linalg.qr(rng.normal(size=(rows, d, d)))[0]
  scales = np.exp(rng.uniform(-1, 1, (rows, d))) if scale else None
  return optimum, rotation, scales


def _reference_objective(name, x, optimum, rotation, scales):
  """The restatement at a posed instance, row by row."""
  values = []
  for row in range(x.shape[0]):
    z = x[row] - optimum[row]
    if rotation is not None:
      z = rotation[row] @ z
    if scales is not None:
      z = z * scales[row]
    values.append(REFERENCES[name](list(z + MINIMIZERS[name])))
  return np.asarray(values)


def test_every_function_has_a_reference():
  assert sorted(test_functions.FUNCTIONS) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_numpy_values_match_the_textbook_formulas(name):
  z = _points()
  expected = [REFERENCES[name](list(row)) for row in z]
  got = test_functions.FUNCTIONS[name](test_functions.NUMPY, z)
  np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_tensorflow_and_numpy_agree(name, fresh_session):
  z = _points(seed=2)
  with fresh_session() as sess:
    got = sess.run(test_functions.FUNCTIONS[name](
        test_functions.TENSORFLOW, tf.constant(z)))
  np.testing.assert_allclose(
      got, test_functions.FUNCTIONS[name](test_functions.NUMPY, z),
      rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_minimum_is_zero_at_the_stated_minimizer(name):
  for d in (2, 10):
    z = np.full((1, d), test_functions.MINIMA[name])
    assert test_functions.MINIMA[name] == pytest.approx(MINIMIZERS[name],
                                                        abs=1e-12)
    assert test_functions.FUNCTIONS[name](test_functions.NUMPY, z)[0] == (
        pytest.approx(0.0, abs=1e-9))
    # A minimum: every nearby point is higher, and the gradient vanishes.
    nearby = z + np.random.default_rng(d).normal(0, 1e-3, (20, d))
    assert np.all(test_functions.FUNCTIONS[name](test_functions.NUMPY,
                                                 nearby) > 0)
    np.testing.assert_allclose(
        test_functions.gradient(name, z, z),
        0.0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_posed_instance_matches_the_reference_with_its_minimum_at_optimum(
    name):
  x = _points(rows=4, d=4, seed=3)
  optimum, rotation, scales = _instance(4, 4)
  np.testing.assert_allclose(
      test_functions.objective(test_functions.NUMPY, name, x, optimum,
                               rotation, scales),
      _reference_objective(name, x, optimum, rotation, scales),
      rtol=1e-12, atol=1e-9)
  at_optimum = test_functions.objective(test_functions.NUMPY, name, optimum,
                                        optimum, rotation, scales)
  np.testing.assert_allclose(at_optimum, 0.0, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("posed", [False, True])
def test_numpy_gradient_matches_tensorflow_and_finite_differences(
    name, posed, fresh_session):
  rows, d = 5, 4
  x = _points(rows, d, seed=4)
  optimum, rotation, scales = (_instance(rows, d) if posed else
                               (np.full((rows, d), MINIMIZERS[name]),
                                None, None))
  grad = test_functions.gradient(name, x, optimum, rotation, scales)
  with fresh_session() as sess:
    point = tf.constant(x)
    loss = test_functions.objective(
        test_functions.TENSORFLOW, name, point, tf.constant(optimum),
        None if rotation is None else tf.constant(rotation),
        None if scales is None else tf.constant(scales))
    tf_grad = sess.run(tf.gradients(tf.reduce_sum(loss), point)[0])
  np.testing.assert_allclose(grad, tf_grad, rtol=1e-9, atol=1e-9)
  step = 1e-6
  numeric = np.zeros_like(x)
  for i in range(d):
    offset = np.zeros(d)
    offset[i] = step
    numeric[:, i] = (
        _reference_objective(name, x + offset, optimum, rotation, scales) -
        _reference_objective(name, x - offset, optimum, rotation, scales)
    ) / (2 * step)
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["ackley", "salomon"])
def test_norm_gradients_are_finite_at_the_minimizer(name, fresh_session):
  with fresh_session() as sess:
    z = tf.zeros([1, 3])
    grad = sess.run(tf.gradients(test_functions.FUNCTIONS[name](
        test_functions.TENSORFLOW, z), z)[0])
  np.testing.assert_array_equal(grad, np.zeros((1, 3)))


def test_check_name_rejects_unknown_names_and_too_few_dimensions():
  with pytest.raises(ValueError, match="Unknown test function 'sphere'; "
                     "expected one of rastrigin, ackley"):
    test_functions.check_name("sphere", 3)
  with pytest.raises(ValueError, match="rosenbrock needs num_dims >= 2, "
                     "got 1"):
    test_functions.check_name("rosenbrock", 1)
  test_functions.check_name("rastrigin", 1)
