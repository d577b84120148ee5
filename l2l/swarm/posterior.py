"""The meta-loss's exploration term: entropy of a posterior over the optimum.

LOIS adds to the summed particle losses `lambda * H`, where H is the entropy
of where the optimum lies given everything the unroll visited. Per
independent instance, a Gaussian-process posterior mean `mu` (RBF kernel,
nugget on the diagonal) is fitted to every (x, f) of the unroll; M candidates
are drawn around the visited points (never around the origin, which would
leak Rastrigin's optimum); `p(s) = softmax(-rho mu(s))` and
`H = -sum p log p`, with `rho = exp(sqrt(n) / h)`. LOIS's schedule, in every
meta-loss: a first pass at `h = d ln 5`, and h the entropy it measures.
"""

import math

import numpy as np
import tensorflow as tf

from l2l.core import particles


# The largest log rho LOIS's schedule gives: its h is kept at least
# sqrt(n) / 50 (a first pass of entropy 0, one candidate or one dominant
# one, would otherwise make rho infinite and the entropy NaN).
MAX_LOG_TEMPERATURE = 50.0


class PosteriorPoints:
  """Where the posterior term gets its points: per batch row, or whole x.

  A problem with one [batch, d] variable and one loss per batch row holds
  `batch` independent instances, each with its own optimum in R^d; anything
  else is one instance whose points are the flattened variables.
  """

  def __init__(self, x, rows):
    """Decides the layout from the problem's variables and loss.

    Args:
      x: the problem's trainable variables.
      rows: what its `build()` returns.
    """
    self.per_row = particles.is_per_row(x, rows)
    self.dims = (int(x[0].shape[1]) if self.per_row else
                 sum(int(np.prod(v.shape)) for v in x))

  def points(self, x, flat_x):
    """[rows, k, d] points of one step."""
    if self.per_row:
      return tf.transpose(x[0], [1, 0, 2])
    return tf.expand_dims(flat_x, 0)

  def values(self, rows, losses):
    """[rows, k] values of one step."""
    if self.per_row:
      return tf.transpose(rows)
    return tf.expand_dims(losses, 0)


def _rbf(a, b, length_scale):
  """Batched RBF kernel `exp(-||a - b||^2 / (2 l^2))`.

  Args:
    a: [R, M, d] tensor.
    b: [R, N, d] tensor.
    length_scale: `l`.

  Returns:
    [R, M, N] tensor.
  """
  # The expansion avoids an [R, M, N, d] difference tensor; the clamp removes
  # tiny negative distances from rounding.
  sq_a = tf.reduce_sum(tf.square(a), axis=-1, keepdims=True)
  sq_b = tf.reduce_sum(tf.square(b), axis=-1, keepdims=True)
  cross = tf.matmul(a, b, transpose_b=True)
  sq_dist = tf.maximum(sq_a + tf.linalg.matrix_transpose(sq_b) - 2.0 * cross,
                       0.0)
  return tf.exp(-sq_dist / (2.0 * length_scale ** 2))


def sample_candidates(points, num_samples=1000, sample_stddev=1.0):
  """Draws candidate points around visited points, without gradient.

  Each candidate picks one of its row's visited points uniformly at random
  and adds N(0, sample_stddev^2) noise to every coordinate.

  Args:
    points: [R, N, d] visited points.
    num_samples: M, candidates per row.
    sample_stddev: noise standard deviation.

  Returns:
    [R, M, d] tensor of candidates (gradient stopped).
  """
  points = tf.stop_gradient(tf.convert_to_tensor(points))
  shape = tf.shape(points)
  num_rows, num_points = shape[0], shape[1]
  idx = tf.random.uniform([num_rows, num_samples], maxval=num_points,
                          dtype=tf.int32)
  centres = tf.gather(points, idx, batch_dims=1)
  noise = tf.random.normal(tf.shape(centres), stddev=sample_stddev,
                           dtype=points.dtype)
  return tf.stop_gradient(centres + noise)


def posterior_mean(points, values, num_samples=1000, length_scale=1.0,
                   nugget=2.1, sample_stddev=1.0, candidates=None):
  """A GP posterior mean at candidate points, per row.

  Per row: `mu(s) = k(s, X) (k(X, X) + nugget I)^{-1} f` with the RBF kernel.
  Differentiable w.r.t. `points` and `values`; candidates carry no gradient.

  Args:
    points: [R, N, d] visited points (R independent rows).
    values: [R, N] function values at `points`.
    num_samples: M, the number of candidates drawn when `candidates` is None.
    length_scale: RBF length scale.
    nugget: added to the kernel diagonal.
    sample_stddev: noise stddev of the sampled candidates.
    candidates: optional [R, M, d] explicit candidates; when None they are
      drawn around the visited points by `sample_candidates`.

  Returns:
    [R, M] tensor, `mu` at each row's candidates.
  """
  points = tf.convert_to_tensor(points)
  dtype = points.dtype
  values = tf.convert_to_tensor(values, dtype=dtype)
  if candidates is None:
    candidates = sample_candidates(points, num_samples, sample_stddev)
  candidates = tf.stop_gradient(tf.convert_to_tensor(candidates, dtype=dtype))
  # The kernel is translation invariant; centring keeps the squared-distance
  # expansion accurate for points far from the origin.
  centre = tf.stop_gradient(tf.reduce_mean(points, axis=1, keepdims=True))
  points = points - centre
  candidates = candidates - centre
  num_points = tf.shape(points)[1]
  gram = _rbf(points, points, length_scale)
  gram += nugget * tf.eye(num_points, dtype=dtype)
  chol = tf.linalg.cholesky(gram)
  weights = tf.linalg.cholesky_solve(chol, tf.expand_dims(values, -1))
  return tf.squeeze(tf.matmul(_rbf(candidates, points, length_scale),
                              weights), axis=-1)


def boltzmann_entropy(mean, rho):
  """`H = -sum_s p(s) log p(s)` with `p(s) = softmax_s(-rho mean(s))`.

  Args:
    mean: [R, M] posterior means (`posterior_mean`).
    rho: inverse temperature (see `entropy_temperature`).

  Returns:
    Scalar, the mean entropy over the R rows.
  """
  log_probs = tf.nn.log_softmax(-tf.cast(rho, mean.dtype) * mean, axis=-1)
  entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)
  return tf.reduce_mean(entropy)


def posterior_entropy(points, values, rho, **options):
  """Entropy of the Boltzmann distribution over a GP posterior mean.

  Args:
    points: [R, N, d] visited points (R independent rows).
    values: [R, N] function values at `points`.
    rho: inverse temperature (see `entropy_temperature`).
    **options: `posterior_mean`'s (num_samples, length_scale, nugget,
      sample_stddev, candidates).

  Returns:
    Scalar, the mean entropy over the R rows.
  """
  return boltzmann_entropy(posterior_mean(points, values, **options), rho)


def entropy_temperature(num_points, h):
  """Inverse temperature `rho = exp(sqrt(num_points) / h)`.

  Args:
    num_points: number of visited points (python number or tensor).
    h: entropy scale; `initial_entropy_scale(d)` for LOIS's first pass,
      then the entropy that pass measured.

  Returns:
    A python float if both arguments are python/numpy numbers, else a tensor.
  """
  if not (tf.is_tensor(num_points) or tf.is_tensor(h)):
    return math.exp(math.sqrt(num_points) / h)
  h = tf.convert_to_tensor(h)
  return tf.exp(tf.sqrt(tf.cast(num_points, h.dtype)) / h)


def initial_entropy_scale(d):
  """The entropy scale of LOIS's first pass, `h = d * ln 5`.

  Args:
    d: problem dimensionality.

  Returns:
    Python float.
  """
  return d * math.log(5.0)


def entropy_term(config, dims, points, values):
  """The posterior entropy H at LOIS's temperature.

  With `config.entropy_scale` None, LOIS's schedule, in every meta-loss: a
  first pass at `h = d ln 5` measures H0, and H is measured at `h = H0`
  (kept from 0: `rho` stays at most `exp(MAX_LOG_TEMPERATURE)`, finite in
  float32 times any loss below 1e16). Both passes read one posterior
  mean (one GP solve, one set of candidates). The temperature carries no
  gradient: through H0, LOIS's let it flow, and `rho` grows as
  `exp(sqrt(n) / H0)`, so its gradient overflows as H0 nears 0.

  Args:
    config: the `SwarmConfig` (GP and sampling options, `entropy_scale`).
    dims: d, the dimension of one instance's points.
    points: [T+1, rows, k, d] visited points.
    values: [T+1, rows, k] their losses.

  Returns:
    H, a scalar.
  """
  steps, rows, k, num_dims = points.shape.as_list()
  points = tf.reshape(tf.transpose(points, [1, 0, 2, 3]),
                      [rows, steps * k, num_dims])
  values = tf.reshape(tf.transpose(values, [1, 0, 2]), [rows, steps * k])
  mean = posterior_mean(
      points, values, num_samples=config.num_posterior_samples,
      length_scale=config.gp_length_scale, nugget=config.gp_nugget,
      sample_stddev=config.posterior_sample_stddev)
  num_points = float(steps * k)
  if config.entropy_scale is not None:
    scale = float(config.entropy_scale)
  else:
    first = boltzmann_entropy(
        mean, entropy_temperature(num_points, initial_entropy_scale(dims)))
    scale = tf.maximum(tf.stop_gradient(first),
                       math.sqrt(num_points) / MAX_LOG_TEMPERATURE)
  rho = tf.stop_gradient(entropy_temperature(num_points, scale))
  return boltzmann_entropy(mean, rho)
