"""Tests for features.py: the swarm's features and attention against numpy."""

import math

import numpy as np
import pytest
import tensorflow as tf

from l2l.swarm import features


def _np_softmax(x, axis=-1):
  e = np.exp(x - np.max(x, axis=axis, keepdims=True))
  return e / np.sum(e, axis=axis, keepdims=True)


def _np_sq_dist(x):
  return np.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)


POSITIONS = np.array([[0.0, 1.0], [1.0, -0.5], [2.0, 0.3]], np.float32)
GRADS = np.array([[0.5, -0.2], [0.1, 0.4], [-0.3, 0.2]], np.float32)


def _np_inter_particle(g, x, gamma, length_scale):
  a = _np_softmax(g @ g.T) @ _np_softmax(-_np_sq_dist(x) / (2 * length_scale))
  return g + gamma * a @ g


# --- inter_particle_attention ----------------------------------------------


def test_inter_particle_attention_explicit_gamma(run_built):
  got = run_built(lambda: features.inter_particle_attention(
      tf.constant(GRADS), tf.constant(POSITIONS), gamma=0.7, length_scale=2.0))
  want = _np_inter_particle(GRADS, POSITIONS, 0.7, 2.0)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_inter_particle_attention_default_gamma(run_built):
  got = run_built(lambda: features.inter_particle_attention(
      tf.constant(GRADS), tf.constant(POSITIONS)))
  want = _np_inter_particle(GRADS, POSITIONS, 1.0 / 3, 1.0)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_inter_particle_attention_needs_static_k_for_default_gamma():
  with tf.Graph().as_default():
    g = tf.compat.v1.placeholder(tf.float32, [None, 2])
    with pytest.raises(ValueError, match="static"):
      features.inter_particle_attention(g, g)


# --- momentum -----------------------------------------------------------------


def test_momentum(run_built):
  m = np.array([1.0, -2.0], np.float32)
  g = np.array([3.0, 4.0], np.float32)
  got = run_built(lambda: features.momentum(tf.constant(m), tf.constant(g)))
  np.testing.assert_allclose(got, 0.9 * m + 0.1 * g, rtol=1e-6)
  got = run_built(lambda: features.momentum(tf.constant(m), tf.constant(g),
                                            beta=0.5))
  np.testing.assert_allclose(got, 0.5 * m + 0.5 * g)


# --- update_personal_best -----------------------------------------------------


def test_personal_best_first_step_from_inf(run_built):
  best_x = np.zeros((3, 2), np.float32)
  best_f = np.full([3], np.inf, np.float32)
  f = np.array([1.0, 2.0, 3.0], np.float32)
  new_x, new_f = run_built(lambda: features.update_personal_best(
      POSITIONS, f, best_x, best_f))
  np.testing.assert_array_equal(new_x, POSITIONS)
  np.testing.assert_array_equal(new_f, f)


def test_personal_best_strict_improvement_only(run_built):
  best_x = np.array([[9.0, 9.0], [8.0, 8.0], [7.0, 7.0]], np.float32)
  best_f = np.array([1.0, 2.0, 3.0], np.float32)
  f = np.array([0.5, 2.0, 4.0], np.float32)  # better, tie, worse
  new_x, new_f = run_built(lambda: features.update_personal_best(
      POSITIONS, f, best_x, best_f))
  np.testing.assert_array_equal(new_f, [0.5, 2.0, 3.0])
  np.testing.assert_array_equal(new_x[0], POSITIONS[0])
  np.testing.assert_array_equal(new_x[1:], best_x[1:])
  # Residual feature.
  np.testing.assert_array_equal((POSITIONS - new_x)[0], [0.0, 0.0])


# --- attraction ---------------------------------------------------------------


def _np_attraction(x, f, alpha):
  out = np.zeros_like(x)
  for j in range(len(f)):
    better = [r for r in range(len(f)) if f[r] < f[j]]
    if not better:
      continue
    w = _np_softmax(np.array(
        [-alpha * np.sum((x[r] - x[j]) ** 2) for r in better]))
    out[j] = sum(wi * (x[r] - x[j]) for wi, r in zip(w, better))
  return out


def test_attraction_matches_numpy_and_best_is_zero(run_built):
  f = np.array([2.0, 0.5, 1.0], np.float32)
  got = run_built(lambda: features.attraction(POSITIONS, f, alpha=0.8))
  want = _np_attraction(POSITIONS, f, 0.8)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(got[1], [0.0, 0.0])
  # Particle 2 has only particle 1 better: pulled straight at it.
  np.testing.assert_allclose(got[2], POSITIONS[1] - POSITIONS[2], rtol=1e-6)


def test_attraction_ties_are_not_better(run_built):
  f = np.array([1.0, 1.0, 2.0], np.float32)
  got = run_built(lambda: features.attraction(POSITIONS, f))
  np.testing.assert_array_equal(got[0], [0.0, 0.0])
  np.testing.assert_array_equal(got[1], [0.0, 0.0])
  np.testing.assert_allclose(got[2], _np_attraction(POSITIONS, f, 1.0)[2],
                             rtol=1e-5)


def test_attraction_all_tied_is_zero(run_built):
  f = np.ones([3], np.float32)
  np.testing.assert_array_equal(
      run_built(lambda: features.attraction(POSITIONS, f)), np.zeros((3, 2)))


def test_attraction_no_nan_in_value_or_gradient(run_built):
  def build():
    x = tf.constant(POSITIONS * 30.0)  # far apart: large negative logits
    f = tf.constant([2.0, 0.5, 0.5])
    a = features.attraction(x, f)
    return a, tf.gradients(tf.reduce_sum(a * a), x)[0]
  value, grad = run_built(build)
  assert np.all(np.isfinite(value))
  assert np.all(np.isfinite(grad))
  np.testing.assert_array_equal(value[1:], np.zeros((2, 2)))


# --- FeatureAttention ---------------------------------------------------------


def _attention_init(hidden=3, num_features=4, seed=0):
  rng = np.random.RandomState(seed)
  return {
      "w": rng.randn(hidden, 2).astype(np.float32),
      "b": rng.randn(hidden, num_features).astype(np.float32),
      "v": rng.randn(hidden).astype(np.float32),
  }


def _np_feature_attention(init, stacked, delta):
  w, b, v = init["w"], init["b"], init["v"]
  flat_f = stacked.reshape(-1, stacked.shape[-1])
  flat_d = delta.reshape(-1)
  out = np.zeros(flat_d.shape, np.float64)
  for i in range(flat_f.shape[0]):
    scores = np.array([
        v @ np.tanh(w @ np.array([flat_f[i, f], flat_d[i]]) + b[:, f])
        for f in range(flat_f.shape[1])])
    out[i] = _np_softmax(scores) @ flat_f[i]
  return out.reshape(delta.shape)


@pytest.mark.parametrize("shape", [(2, 3), (5,)])
def test_feature_attention_matches_numpy(shape, run_built):
  init = _attention_init()
  rng = np.random.RandomState(1)
  stacked = rng.randn(*(shape + (4,))).astype(np.float32)
  delta = rng.randn(*shape).astype(np.float32)

  def build():
    module = features.FeatureAttention(hidden_size=3, initializer=init)
    return module(stacked, delta)

  got = run_built(build)
  assert got.shape == shape
  np.testing.assert_allclose(got, _np_feature_attention(init, stacked, delta),
                             rtol=1e-5, atol=1e-6)


def test_feature_attention_variables_and_default_init():
  with tf.Graph().as_default():
    module = features.FeatureAttention(num_features=4, hidden_size=10)
    shapes = sorted(tuple(v.shape.as_list()) for v in module.variables)
    assert shapes == [(10,), (10, 2), (10, 4)]
    assert len(tf.compat.v1.global_variables()) == 3
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      values = features.attention_values(module, sess)
  assert set(values) == {"w", "b", "v"}
  np.testing.assert_array_equal(values["b"], np.zeros((10, 4)))
  assert 0.0 < np.std(values["w"]) < 0.3


def test_feature_attention_values_round_trip():
  init = _attention_init()
  with tf.Graph().as_default():
    module = features.FeatureAttention(hidden_size=3, initializer=init)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      values = features.attention_values(module, sess)
  for key in init:
    np.testing.assert_array_equal(values[key], init[key])


def test_feature_attention_wrong_shape_initializer():
  init = _attention_init()
  init["b"] = np.zeros((3, 5), np.float32)
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match=r"'b'.*\(3, 5\).*\(3, 4\)"):
      features.FeatureAttention(hidden_size=3, initializer=init)


def test_feature_attention_unknown_initializer_key():
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match="Unknown"):
      features.FeatureAttention(initializer={"u": np.zeros(3)})


def test_feature_attention_inside_while_loop(run_built):
  init = _attention_init()
  rng = np.random.RandomState(2)
  stacked = rng.randn(2, 3, 4).astype(np.float32)
  delta = rng.randn(2, 3).astype(np.float32)

  def build():
    module = features.FeatureAttention(hidden_size=3, initializer=init)

    def body(i, acc):
      return i + 1, acc + module(stacked, delta)

    _, acc = tf.while_loop(lambda i, _: i < 3, body,
                           (tf.constant(0), tf.zeros([2, 3])))
    return acc

  got = run_built(build)
  np.testing.assert_allclose(
      got, 3 * _np_feature_attention(init, stacked, delta), rtol=1e-5)


# --- posterior_entropy --------------------------------------------------------


# --- a batch of independent swarms ---------------------------------------


def test_swarm_features_take_a_batch_of_instances(run_built):
  # Two instances of three particles: each is computed on its own.
  positions = np.stack([POSITIONS, POSITIONS[::-1] * 2.0])
  grads = np.stack([GRADS, -GRADS])
  losses = np.array([[2.0, 0.5, 1.0], [0.1, 3.0, 2.0]], np.float32)
  attended = run_built(lambda: features.inter_particle_attention(
      tf.constant(grads), tf.constant(positions), length_scale=2.0))
  pulled = run_built(lambda: features.attraction(positions, losses, alpha=0.8))
  for i in range(2):
    np.testing.assert_allclose(
        attended[i], _np_inter_particle(grads[i], positions[i], 1.0 / 3, 2.0),
        rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        pulled[i], _np_attraction(positions[i], losses[i], 0.8), rtol=1e-5,
        atol=1e-6)
  assert np.abs(pulled[1, 0]).max() == 0.0  # Instance 1's best particle.


def test_personal_best_per_row(run_built):
  # Three particles, two rows each of two coordinates: each row keeps its
  # own best.
  x = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
  best_x = np.full((3, 2, 2), -1.0, np.float32)
  best_f = np.array([[1.0, 1.0], [5.0, 0.0], [2.0, 2.0]], np.float32)
  f = np.array([[0.5, 3.0], [6.0, -1.0], [2.0, 1.0]], np.float32)
  new_x, new_f = run_built(lambda: features.update_personal_best(
      x, f, best_x, best_f))
  np.testing.assert_array_equal(new_f, [[0.5, 1.0], [5.0, -1.0], [2.0, 1.0]])
  improved = np.array([[True, False], [False, True], [False, True]])
  np.testing.assert_array_equal(new_x, np.where(improved[..., None], x,
                                                best_x))


# --- the attraction gate -----------------------------------------------------


def test_record_point_is_each_instances_best_personal_best(run_built):
  # Two instances of three particles in 2-d.
  points = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
  losses = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, 0.5]], np.float32)
  point, loss = run_built(lambda: features.record_point(points, losses))
  # Instance 0: particle 1; instance 1: a tie, the first (particle 0).
  np.testing.assert_array_equal(point, [[2.0, 3.0], [6.0, 7.0]])
  np.testing.assert_array_equal(loss, [1.0, 0.5])


def test_gate_inputs_are_the_gap_to_the_record_and_the_stillness(run_built):
  losses = np.array([[3.0, 1.0, 2.0]], np.float32)
  previous_best = np.array([[3.0 + 6e-4, 1.0, np.inf]], np.float32)
  got = run_built(lambda: features.gate_inputs(losses, np.array([1.0]),
                                               previous_best))
  assert got.shape == (1, 3, 2)
  # Gaps (3 - 1) / (3 + 1) = 0.5, 0 and 1 / 3. Progress 6e-4 / 6 = 1e-4:
  # stillness log(1e-4) / log(1e-8) = 0.5; no progress: 1; no best yet: 0.
  np.testing.assert_allclose(got[0], [[0.5, 0.5], [0.0, 1.0], [1 / 3, 0.0]],
                             atol=1e-4)


def test_stall_rule_gate_opens_at_its_threshold(run_built):
  stillness = np.array([0.0, 0.3, 0.4, 0.5, 1.0], np.float32)
  inputs = np.stack([np.full(5, 0.7, np.float32), stillness], -1)
  gate = run_built(lambda: features.AttractionGate(
      initializer=features.AttractionGate.stall_rule(0.4))(inputs))
  # logit = 10 * 4 * (stillness - 0.4); the gap is ignored.
  np.testing.assert_allclose(
      gate, 1 / (1 + np.exp(-40.0 * (stillness - 0.4))), rtol=1e-5)
  assert gate[1] < 0.02 and gate[2] == pytest.approx(0.5) and gate[3] > 0.98


def test_attraction_gate_starts_nearly_shut_and_reads_its_weights(run_built):
  inputs = np.array([[0.5, 0.25], [0.0, 1.0]], np.float32)
  fresh = run_built(lambda: features.AttractionGate()(inputs))
  np.testing.assert_allclose(fresh, [1 / (1 + math.exp(4.0))] * 2, rtol=1e-5)
  # logit = 10 (w . u + b): 10 (0.5 + 0.5 - 0.3) = 7 and 10 (2 - 0.3) = 17.
  gate = run_built(lambda: features.AttractionGate(initializer={
      "w": [1.0, 2.0], "b": -0.3})(inputs))
  np.testing.assert_allclose(gate, [1 / (1 + math.exp(-7.0)),
                                    1 / (1 + math.exp(-17.0))], rtol=1e-5)
  with pytest.raises(ValueError, match=r"AttractionGate.*'w'.*\(3,\).*\(2,\)"):
    features.AttractionGate(initializer={"w": [1.0, 2.0, 3.0]})
