"""Optimizee problems.

A problem is a factory returning `build()`. `build()` creates its variables with
`tf.compat.v1.get_variable` or Sonnet 2 modules and returns the loss: a scalar,
or one value per batch row. Trainable variables are what the optimizer moves;
non-trainable variables are the problem instance (data, targets, weights) and
are re-sampled by `reset`.
"""

import math

import tensorflow as tf


def simple():
  """f(x) = x^2 for a scalar x initialised at 1."""

  def build():
    x = tf.compat.v1.get_variable("x", shape=[], dtype=tf.float32,
                                  initializer=tf.compat.v1.ones_initializer())
    return tf.square(x, name="x_squared")

  return build


def simple_multi_optimizer(num_dims=2):
  """f(x) = sum_i x_i^2 over scalar variables `x_0`, `x_1`, ... set to 1."""

  def build():
    variables = [
        tf.compat.v1.get_variable("x_{}".format(i), shape=[], dtype=tf.float32,
                                  initializer=tf.compat.v1.ones_initializer())
        for i in range(num_dims)
    ]
    return tf.add_n([tf.square(x) for x in variables], name="sum_of_squares")

  return build


def _batched_residual(w, x, y):
  """Returns `W x - y` for every batch row: w [b, d, d], x and y [b, d]."""
  return tf.squeeze(tf.matmul(w, tf.expand_dims(x, -1)), -1) - y


def quadratic(batch_size=128, num_dims=10, stddev=0.01, dtype=tf.float32):
  """f(x) = ||W x - y||^2 per batch row, averaged over the batch.

  Args:
    batch_size: independent instances optimised together.
    num_dims: dimension of each instance.
    stddev: standard deviation of the initial x.
    dtype: variable type.

  Returns:
    The problem's `build` function.
  """

  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(stddev=stddev))
    w = tf.compat.v1.get_variable(
        "w", shape=[batch_size, num_dims, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_uniform_initializer(), trainable=False)
    y = tf.compat.v1.get_variable(
        "y", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_uniform_initializer(), trainable=False)
    residual = _batched_residual(w, x, y)
    return tf.reduce_mean(tf.reduce_sum(tf.square(residual), 1))

  return build


def square_cos(batch_size=128, num_dims=2, stddev=0.01, mode="train",
               init_stddev=None, dtype=tf.float32):
  """Rastrigin's function (test) or LOIS's random family around it (train).

  `mode="test"`: f(x) = sum_i (x_i^2 - 10 cos(2 pi x_i)) + 10 d per batch row,
  minimum 0 at the origin. `mode="train"`:
  f(x) = ||W x - y||^2 - sum_i wcos_i 10 cos(2 pi x_i) + 10 d with
  W = I + N(0, stddev/d), y ~ N(0, stddev/d), wcos ~ N(1, stddev/d).

  Args:
    batch_size: independent instances (rows) optimised together.
    num_dims: d.
    stddev: spread of the random family in train mode.
    mode: "train" or "test".
    init_stddev: standard deviation of the initial x; defaults to `stddev`.
    dtype: variable type.

  Returns:
    The problem's `build` function; its loss has one value per batch row.

  Raises:
    ValueError: for an unknown mode.
  """
  if mode not in ("train", "test"):
    raise ValueError("square_cos mode must be 'train' or 'test', got {!r}."
                     .format(mode))
  init_stddev = stddev if init_stddev is None else init_stddev
  spread = stddev / num_dims

  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(stddev=init_stddev))
    cosine = tf.cos(2.0 * math.pi * x)
    if mode == "test":
      return tf.reduce_sum(tf.square(x) - 10.0 * cosine, 1) + 10.0 * num_dims
    w = tf.compat.v1.get_variable(
        "w", shape=[batch_size, num_dims, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(stddev=spread),
        trainable=False)
    y = tf.compat.v1.get_variable(
        "y", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(stddev=spread),
        trainable=False)
    wcos = tf.compat.v1.get_variable(
        "wcos", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(mean=1.0,
                                                           stddev=spread),
        trainable=False)
    identity = tf.eye(num_dims, batch_shape=[batch_size], dtype=dtype)
    residual = _batched_residual(identity + w, x, y)
    return (tf.reduce_sum(tf.square(residual), 1) -
            tf.reduce_sum(wcos * 10.0 * cosine, 1) + 10.0 * num_dims)

  return build


def ensemble(problems, weights=None):
  """A weighted sum of several problems, each in its own variable scope.

  Args:
    problems: list of dicts `{"name": <function in this module>,
      "options": {...}}`.
    weights: one weight per problem; defaults to 1 each.

  Returns:
    The problem's `build` function.

  Raises:
    ValueError: for an unknown problem name or mismatched weights.
  """
  if weights is None:
    weights = [1.0] * len(problems)
  if len(weights) != len(problems):
    raise ValueError("ensemble got {} problems but {} weights.".format(
        len(problems), len(weights)))
  builders = []
  for spec in problems:
    factory = globals().get(spec.get("name"))
    if not callable(factory) or spec.get("name", "").startswith("_"):
      raise ValueError("ensemble: unknown problem {!r}.".format(
          spec.get("name")))
    builders.append(factory(**spec.get("options", {})))

  def build():
    losses = []
    for i, (builder, weight) in enumerate(zip(builders, weights)):
      with tf.compat.v1.variable_scope("problem_{}".format(i)):
        losses.append(weight * tf.reduce_mean(builder()))
    return tf.add_n(losses)

  return build


def mean_loss(loss):
  """Reduces a per-row loss to the scalar the optimizer descends."""
  return tf.reduce_mean(loss) if loss.shape.rank else loss
