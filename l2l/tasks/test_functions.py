"""Classic test functions of global optimization, for TensorFlow and numpy.

Each function is written once, against a tiny namespace of array operations
(`ArrayOps`), and instantiated for TensorFlow (`TENSORFLOW`, the problems of
`problems.test_function`) and for numpy (`NUMPY`, the scipy and CMA-ES
baselines of bench/swarm.py), so both sides compute the same loss. Every
function maps z [..., d] to [...], one value per batch row. Their minima,
as usually stated (`MINIMA`: each coordinate of the minimizer; the minimum
value is 0 for all of them):

| name | f(z) | minimizer |
| --- | --- | --- |
| rastrigin | 10 d + sum (z^2 - 10 cos 2 pi z) | 0 |
| ackley | -20 exp(-0.2 sqrt(mean z^2)) - exp(mean cos 2 pi z) + 20 + e | 0 |
| griewank | 1 + sum z^2 / 4000 - prod cos(z_i / sqrt i) | 0 |
| levy | sin^2(pi w_1) + sum_{i<d} (w_i - 1)^2 (1 + 10 sin^2(pi w_i + 1)) + (w_d - 1)^2 (1 + sin^2(2 pi w_d)), w = 1 + (z - 1) / 4 | 1 |
| styblinski_tang | sum (z^4 - 16 z^2 + 5 z) / 2 + 39.166... d | -2.9035... |
| rosenbrock | sum_{i<d} 100 (z_{i+1} - z_i^2)^2 + (1 - z_i)^2 | 1 |
| salomon | 1 - cos(2 pi ||z||) + 0.1 ||z|| | 0 |
| alpine | sum abs(z sin z + 0.1 z) | 0 |
| ellipsoid | sum 10^(4 (i - 1) / (d - 1)) z_i^2 | 0 |
| schwefel_222 | sum abs(z) + prod abs(z) | 0 |

Styblinski-Tang's usual form has the minimum -39.166... d; the constant
added here moves it to 0, so every function's minimum is 0. Rosenbrock
needs d >= 2.

`objective` poses an instance: the minimizer moved to `optimum` (each row's
own point), and optionally a rotation and per-coordinate scales around it,

    f_instance(x) = f(z* + s * (Q (x - optimum)))

(z* the function's usual minimizer, Q a rotation, s the scales), whose
minimum is 0 at x = optimum. `gradient` is its gradient in numpy, for the
baselines that need one (TensorFlow differentiates the loss itself).
"""

import collections
import math

import numpy as np
import tensorflow as tf

ArrayOps = collections.namedtuple(
    "ArrayOps",
    "sum, mean, prod, cos, sin, exp, abs, sqrt, matvec, constant")
ArrayOps.__doc__ = """The array operations the test functions use.

sum, mean, prod: reductions over the last axis.
cos, sin, exp, abs: elementwise.
sqrt: elementwise, with a zero gradient at 0 (Ackley's sqrt(mean z^2) at its
  minimizer would otherwise give NaN gradients).
matvec: `matvec(m [..., d, d], v [..., d])` -> [..., d].
constant: `constant(values, like)`, a numpy array as an array of `like`'s
  type.
"""

# sqrt reads max(a, _TINY): its gradient is 0 where a is 0, and the value
# differs from sqrt(a) by at most 1e-15.
_TINY = 1e-30

NUMPY = ArrayOps(
    sum=lambda a: np.sum(a, axis=-1),
    mean=lambda a: np.mean(a, axis=-1),
    prod=lambda a: np.prod(a, axis=-1),
    cos=np.cos, sin=np.sin, exp=np.exp, abs=np.abs,
    sqrt=lambda a: np.sqrt(np.maximum(a, _TINY)),
    matvec=lambda m, v: np.einsum("...ij,...j->...i", m, v),
    constant=lambda values, like: np.asarray(values, like.dtype))

TENSORFLOW = ArrayOps(
    sum=lambda a: tf.reduce_sum(a, axis=-1),
    mean=lambda a: tf.reduce_mean(a, axis=-1),
    prod=lambda a: tf.reduce_prod(a, axis=-1),
    cos=tf.cos, sin=tf.sin, exp=tf.exp, abs=tf.abs,
    sqrt=lambda a: tf.sqrt(tf.maximum(a, tf.cast(_TINY, a.dtype))),
    matvec=tf.linalg.matvec,
    constant=lambda values, like: tf.constant(values, like.dtype))

# Styblinski-Tang's minimizer: the root of 2 z^3 - 16 z + 2.5 = 0 below -2,
# and the usual minimum per coordinate, which the function here subtracts.
_ST_MINIMIZER = -2.903534027771178
_ST_MINIMUM = 0.5 * (_ST_MINIMIZER ** 4 - 16.0 * _ST_MINIMIZER ** 2 +
                     5.0 * _ST_MINIMIZER)


def rastrigin(ops, z):
  d = z.shape[-1]
  return ops.sum(z * z - 10.0 * ops.cos(2.0 * math.pi * z)) + 10.0 * d


def ackley(ops, z):
  radius = ops.sqrt(ops.mean(z * z))
  return (-20.0 * ops.exp(-0.2 * radius) -
          ops.exp(ops.mean(ops.cos(2.0 * math.pi * z))) + 20.0 + math.e)


def griewank(ops, z):
  roots = ops.constant(np.sqrt(np.arange(1, z.shape[-1] + 1)), z)
  return 1.0 + ops.sum(z * z) / 4000.0 - ops.prod(ops.cos(z / roots))


def levy(ops, z):
  w = 1.0 + (z - 1.0) / 4.0
  first = ops.sin(math.pi * w[..., 0]) ** 2
  inner = w[..., :-1]
  middle = ops.sum((inner - 1.0) ** 2 *
                   (1.0 + 10.0 * ops.sin(math.pi * inner + 1.0) ** 2))
  last = w[..., -1]
  return first + middle + (last - 1.0) ** 2 * (
      1.0 + ops.sin(2.0 * math.pi * last) ** 2)


def styblinski_tang(ops, z):
  return 0.5 * ops.sum(z ** 4 - 16.0 * z * z + 5.0 * z) - (
      _ST_MINIMUM * z.shape[-1])


def salomon(ops, z):
  radius = ops.sqrt(ops.sum(z * z))
  return 1.0 - ops.cos(2.0 * math.pi * radius) + 0.1 * radius


def alpine(ops, z):
  return ops.sum(ops.abs(z * ops.sin(z) + 0.1 * z))


def _ellipsoid_weights(d):
  return 10.0 ** (4.0 * np.arange(d) / max(d - 1, 1))


def ellipsoid(ops, z):
  return ops.sum(ops.constant(_ellipsoid_weights(z.shape[-1]), z) * z * z)


def schwefel_222(ops, z):
  magnitudes = ops.abs(z)
  return ops.sum(magnitudes) + ops.prod(magnitudes)


def rosenbrock(ops, z):
  head, tail = z[..., :-1], z[..., 1:]
  return ops.sum(100.0 * (tail - head * head) ** 2 + (1.0 - head) ** 2)


FUNCTIONS = collections.OrderedDict([
    ("rastrigin", rastrigin), ("ackley", ackley), ("griewank", griewank),
    ("levy", levy), ("styblinski_tang", styblinski_tang),
    ("rosenbrock", rosenbrock), ("salomon", salomon), ("alpine", alpine),
    ("ellipsoid", ellipsoid), ("schwefel_222", schwefel_222)])
# Each function's usual minimizer, per coordinate; every minimum value is 0.
MINIMA = {"rastrigin": 0.0, "ackley": 0.0, "griewank": 0.0, "levy": 1.0,
          "styblinski_tang": _ST_MINIMIZER, "rosenbrock": 1.0,
          "salomon": 0.0, "alpine": 0.0, "ellipsoid": 0.0,
          "schwefel_222": 0.0}
# The fewest dimensions each function is defined in.
MIN_DIMS = {"rosenbrock": 2}


def _product_of_others(values):
  """[..., d] -> [..., d]: the product of every entry but the i-th."""
  ones = np.ones_like(values[..., :1])
  before = np.cumprod(np.concatenate([ones, values[..., :-1]], -1), -1)
  after = np.cumprod(np.concatenate([ones, values[..., :0:-1]], -1),
                     -1)[..., ::-1]
  return before * after


def _function_gradient(name, z):
  """The gradient of FUNCTIONS[name] at z [..., d], in numpy."""
  d = z.shape[-1]
  if name == "rastrigin":
    return 2.0 * z + 20.0 * math.pi * np.sin(2.0 * math.pi * z)
  if name == "ackley":
    radius = np.sqrt(np.mean(z * z, -1, keepdims=True))
    radial = np.where(radius > 0, 4.0 * np.exp(-0.2 * radius) * z / (
        d * np.maximum(radius, _TINY)), 0.0)
    waves = np.exp(np.mean(np.cos(2.0 * math.pi * z), -1, keepdims=True))
    return radial + 2.0 * math.pi * waves * np.sin(2.0 * math.pi * z) / d
  if name == "griewank":
    roots = np.sqrt(np.arange(1, d + 1))
    return z / 2000.0 + np.sin(z / roots) / roots * _product_of_others(
        np.cos(z / roots))
  if name == "levy":
    w = 1.0 + (z - 1.0) / 4.0
    grad = np.zeros_like(w)
    grad[..., 0] = math.pi * np.sin(2.0 * math.pi * w[..., 0])
    inner = w[..., :-1]
    grad[..., :-1] += (
        2.0 * (inner - 1.0) * (1.0 + 10.0 * np.sin(math.pi * inner + 1.0) ** 2)
        + 10.0 * math.pi * (inner - 1.0) ** 2 *
        np.sin(2.0 * (math.pi * inner + 1.0)))
    last = w[..., -1]
    grad[..., -1] += (
        2.0 * (last - 1.0) * (1.0 + np.sin(2.0 * math.pi * last) ** 2) +
        2.0 * math.pi * (last - 1.0) ** 2 * np.sin(4.0 * math.pi * last))
    return grad / 4.0
  if name == "styblinski_tang":
    return 2.0 * z ** 3 - 16.0 * z + 2.5
  if name == "rosenbrock":
    head, tail = z[..., :-1], z[..., 1:]
    grad = np.zeros_like(z)
    grad[..., :-1] = -400.0 * head * (tail - head * head) - 2.0 * (1.0 - head)
    grad[..., 1:] += 200.0 * (tail - head * head)
    return grad
  if name == "salomon":
    radius = np.sqrt(np.sum(z * z, -1, keepdims=True))
    slope = 2.0 * math.pi * np.sin(2.0 * math.pi * radius) + 0.1
    return np.where(radius > 0, slope * z / np.maximum(radius, _TINY), 0.0)
  if name == "alpine":
    inner = z * np.sin(z) + 0.1 * z
    return np.sign(inner) * (np.sin(z) + z * np.cos(z) + 0.1)
  if name == "ellipsoid":
    return 2.0 * _ellipsoid_weights(d) * z
  if name == "schwefel_222":
    magnitudes = np.abs(z)
    return np.sign(z) * (1.0 + _product_of_others(magnitudes))
  raise ValueError(_unknown(name))


def _unknown(name):
  return "Unknown test function {!r}; expected one of {}.".format(
      name, ", ".join(FUNCTIONS))


def check_name(name, num_dims):
  """Raises ValueError for an unknown function or too few dimensions."""
  if name not in FUNCTIONS:
    raise ValueError(_unknown(name))
  if num_dims < MIN_DIMS.get(name, 1):
    raise ValueError("{} needs num_dims >= {}, got {}.".format(
        name, MIN_DIMS.get(name, 1), num_dims))


def _argument(ops, name, x, optimum, rotation, scales):
  """z = z* + scales * (rotation (x - optimum)), the function's argument."""
  z = x - optimum
  if rotation is not None:
    z = ops.matvec(rotation, z)
  if scales is not None:
    z = z * scales
  return z + MINIMA[name]


def objective(ops, name, x, optimum, rotation=None, scales=None):
  """The loss of a test-function instance at x.

  Args:
    ops: `TENSORFLOW` or `NUMPY`.
    name: a key of `FUNCTIONS`.
    x: [..., d] points.
    optimum: [..., d] where each row's minimum (0) lies.
    rotation: None, or [..., d, d] rotations.
    scales: None, or [..., d] per-coordinate scales.

  Returns:
    [...] losses.
  """
  if name not in FUNCTIONS:
    raise ValueError(_unknown(name))
  return FUNCTIONS[name](ops, _argument(ops, name, x, optimum, rotation,
                                        scales))


def gradient(name, x, optimum, rotation=None, scales=None):
  """The gradient of `objective(NUMPY, ...)` in x, in numpy.

  Args:
    name: a key of `FUNCTIONS`.
    x: [..., d] points.
    optimum: [..., d] where each row's minimum lies.
    rotation: None, or [..., d, d] rotations.
    scales: None, or [..., d] scales.

  Returns:
    [..., d] gradients.
  """
  grad = _function_gradient(name, _argument(NUMPY, name, x, optimum,
                                            rotation, scales))
  if scales is not None:
    grad = grad * scales
  if rotation is not None:
    grad = np.einsum("...ji,...j->...i", rotation, grad)
  return grad
