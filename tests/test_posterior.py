"""Tests for posterior.py against a numpy statement of the entropy term."""

import math

import numpy as np
import pytest
import tensorflow as tf

from l2l.swarm import posterior
from l2l.swarm.config import SwarmConfig


def _np_posterior_entropy(points, values, rho, candidates, length_scale,
                          nugget):
  entropies = []
  for x, f, s in zip(points, values, candidates):
    def kern(a, b):
      d2 = np.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
      return np.exp(-d2 / (2 * length_scale ** 2))
    gram = kern(x, x) + nugget * np.eye(len(x))
    mu = kern(s, x) @ np.linalg.solve(gram, f)
    logits = -rho * mu
    log_p = logits - np.max(logits)
    log_p -= np.log(np.sum(np.exp(log_p)))
    entropies.append(-np.sum(np.exp(log_p) * log_p))
  return np.mean(entropies)


def _entropy_inputs():
  rng = np.random.RandomState(3)
  points = rng.randn(2, 5, 2)
  values = rng.randn(2, 5)
  candidates = rng.randn(2, 7, 2) * 1.5
  return points, values, candidates


def test_posterior_entropy_matches_numpy(run_built):
  points, values, candidates = _entropy_inputs()
  got = run_built(lambda: posterior.posterior_entropy(
      tf.constant(points, tf.float32), tf.constant(values, tf.float32),
      rho=3.0, length_scale=0.8, nugget=0.5, candidates=candidates))
  want = _np_posterior_entropy(points, values, 3.0, candidates, 0.8, 0.5)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_posterior_entropy_default_constants_float64(run_built):
  points, values, candidates = _entropy_inputs()
  got = run_built(lambda: posterior.posterior_entropy(
      points, values, rho=10.0, candidates=candidates))
  want = _np_posterior_entropy(points, values, 10.0, candidates, 1.0, 2.1)
  np.testing.assert_allclose(got, want, atol=1e-10)


def test_posterior_entropy_uniform_mean_is_log_m(run_built):
  points, _, candidates = _entropy_inputs()
  values = np.zeros((2, 5))
  got = run_built(lambda: posterior.posterior_entropy(
      points, values, rho=5.0, candidates=candidates))
  np.testing.assert_allclose(got, math.log(7), atol=1e-6)


def test_posterior_entropy_gradients_finite(run_built):
  points, values, candidates = _entropy_inputs()

  def build():
    x = tf.constant(points, tf.float32)
    f = tf.constant(values, tf.float32)
    h = posterior.posterior_entropy(x, f, rho=3.0, num_samples=50)
    h_explicit = posterior.posterior_entropy(x, f, rho=3.0,
                                             candidates=candidates)
    return tf.gradients(h, [x, f]) + tf.gradients(h_explicit, [x, f])

  grads = run_built(build)
  for g in grads:
    assert np.all(np.isfinite(g))
  assert np.any(grads[1] != 0.0)
  assert np.any(grads[2] != 0.0)


def test_sampled_candidates_lie_near_visited_points(run_built):
  rng = np.random.RandomState(4)
  points = (100.0 + rng.randn(2, 6, 2)).astype(np.float32)

  def build():
    return posterior.sample_candidates(points, num_samples=500,
                                   sample_stddev=1.0)

  cands = run_built(build)
  assert cands.shape == (2, 500, 2)
  np.testing.assert_allclose(np.mean(cands, axis=(0, 1)), [100.0, 100.0],
                             atol=0.5)
  # Every candidate is within a few stddevs of some visited point.
  d2 = np.sum((cands[:, :, None, :] - points[:, None, :, :]) ** 2, axis=-1)
  assert np.max(np.min(d2, axis=-1)) < 6.0 ** 2


def test_posterior_entropy_far_from_origin_is_finite(run_built):
  rng = np.random.RandomState(5)
  points = (100.0 + rng.randn(1, 6, 2)).astype(np.float32)
  values = rng.randn(1, 6).astype(np.float32)
  got = run_built(lambda: posterior.posterior_entropy(points, values, rho=2.0,
                                             num_samples=200))
  assert np.isfinite(got)
  # Candidates near the data see a non-constant mean: entropy below log(M).
  assert 0.0 < got < math.log(200)


def test_entropy_temperature_and_initial_scale(run_built):
  assert posterior.initial_entropy_scale(2) == pytest.approx(2 * math.log(5))
  assert posterior.entropy_temperature(16, 2.0) == pytest.approx(math.exp(2.0))
  got = run_built(lambda: posterior.entropy_temperature(tf.constant(16), 2.0))
  np.testing.assert_allclose(got, math.exp(2.0), rtol=1e-6)


def _np_entropy(mean, rho):
  logits = -rho * mean
  log_p = logits - logits.max(axis=-1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(axis=-1, keepdims=True))
  return np.mean(-np.sum(np.exp(log_p) * log_p, axis=-1))


@pytest.mark.parametrize("entropy_scale", [None, 0.7])
def test_entropy_term_follows_lois_two_passes(run_built, monkeypatch,
                                              entropy_scale):
  # LOIS's entropy_loss: H0 at h = d ln 5, then H at h = H0, in every
  # meta-loss; a fixed scale is one pass.
  mean = np.random.RandomState(5).randn(3, 40) * 0.3
  monkeypatch.setattr(posterior, "posterior_mean",
                      lambda *args, **kwargs: tf.constant(mean))
  config = SwarmConfig(num_particles=2, entropy_scale=entropy_scale)
  steps, rows, k, dims = 6, 3, 2, 4
  got = run_built(lambda: posterior.entropy_term(
      config, dims, tf.zeros([steps, rows, k, dims], tf.float64),
      tf.zeros([steps, rows, k], tf.float64)))
  sqrt_n = math.sqrt(steps * k)
  if entropy_scale is None:
    first = _np_entropy(mean, math.exp(sqrt_n / (dims * math.log(5.0))))
    scale = max(first, sqrt_n / posterior.MAX_LOG_TEMPERATURE)
  else:
    scale = entropy_scale
  expected = _np_entropy(mean, math.exp(sqrt_n / scale))
  # rho is a float32 tensor.
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  assert 0.0 < got < math.log(40)
