"""Tests for LOIS swarm mode: swarm_unroll.py through meta.MetaOptimizer.

The unroll is compared with an independent numpy re-statement of docs/design.md's
"LOIS swarm mode" section (features, inter-particle attention, feature
attention, the personal-best rule), run from the particles and the problem
instance the session drew.
"""

import logging
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.experiment import evaluation
import meta
import problems
from l2l.swarm import swarm_unroll
import util

K = 3          # Particles.
B, D = 4, 3    # Batch rows and dimension of the test quadratic.
LR = 0.1
ALL_OFF = dict(use_gradient_attention=False, use_momentum=False,
               use_personal_best=False, use_attraction=False,
               use_feature_attention=False, use_entropy=False)
# Every feature and the feature attention on; the entropy term stays off.
FEATURES_ON = dict(use_gradient_attention=True, use_momentum=True,
                   use_personal_best=True, use_attraction=True,
                   use_feature_attention=True)

# One xdist worker runs this file, so its module fixtures run once.
pytestmark = pytest.mark.xdist_group("swarm_unroll")


def _sgd(learning_rate=LR):
  return {"sgd": {"net": "Sgd", "net_options": {"learning_rate":
                                                 learning_rate}}}


def _swarm(num_particles=K, learning_rate=LR, **options):
  kwargs = dict(ALL_OFF, **options)
  return meta.MetaOptimizer(num_particles=num_particles, **kwargs,
                            **_sgd(learning_rate))


def _shifted_quadratic(batch=B, dims=D, stddev=1.0):
  """f(x) = sum_i (x_i - c_i)^2 per batch row; c is the (random) instance."""

  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=[batch, dims],
        initializer=tf.compat.v1.random_normal_initializer(stddev=stddev))
    c = tf.compat.v1.get_variable(
        "c", shape=[batch, dims],
        initializer=tf.compat.v1.random_uniform_initializer(), trainable=False)
    return tf.reduce_sum(tf.square(x - c), 1)

  return build


def _small_lstm():
  return {"net": "CoordinateWiseDeepLSTM",
          "net_options": {"layers": (3,), "preprocess_name": "LogAndSign",
                          "preprocess_options": {"k": 5}, "scale": 0.01}}


def _graph_variable(name):
  found = [v for v in tf.compat.v1.global_variables()
           if v.name == name + ":0"]
  assert len(found) == 1, (name, [v.name for v in
                                  tf.compat.v1.global_variables()])
  return found[0]


def _init(sess):
  sess.run(tf.compat.v1.global_variables_initializer())


# ---------------------------------------------------------------------------
# numpy reference of the swarm step of docs/design.md section 6 (float64).


def _softmax_rows(z):
  z = z - z.max(axis=-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=-1, keepdims=True)


def _sq_dist(x):
  return ((x[:, None, :] - x[None, :, :])**2).sum(-1)


def _np_gradient_attention(g, x, gamma=None, length=1.0):
  gamma = 1.0 / g.shape[0] if gamma is None else gamma
  a = _softmax_rows(g @ g.T) @ _softmax_rows(-_sq_dist(x) / (2.0 * length))
  return g + gamma * a @ g


def _np_attraction(x, f, alpha=1.0):
  out = np.zeros_like(x)
  for j in range(x.shape[0]):
    better = [r for r in range(x.shape[0]) if f[r] < f[j]]
    if not better:
      continue
    w = _softmax_rows(np.array([-alpha * np.sum((x[r] - x[j])**2)
                                for r in better]))
    out[j] = sum(w_r * (x[r] - x[j]) for w_r, r in zip(w, better))
  return out


def _np_feature_attention(params, features, delta_prev):
  """features [k, n, F], delta_prev [k, n] -> [k, n]."""
  w, b, v = (np.asarray(params[key], np.float64) for key in ("w", "b", "v"))
  pre = (features[..., None] * w[:, 0] + delta_prev[..., None, None] * w[:, 1]
         + b.T)
  p = _softmax_rows(np.tanh(pre) @ v)
  return (p * features).sum(-1)


def _np_swarm(x0, c, steps, lr=LR, use_gradient_attention=False,
              use_momentum=False, use_personal_best=False,
              use_attraction=False, attention=None, beta=0.9, gamma=None,
              length=1.0, alpha=1.0):
  """The swarm on `_shifted_quadratic` with an Sgd net.

  Returns:
    dict: losses [steps + 1, k], positions [steps + 1, k, B, D], net inputs
    of every step [steps, k, n], and the final loop state.
  """
  x = np.asarray(x0, np.float64).copy()
  c = np.asarray(c, np.float64)
  k = x.shape[0]
  n = x[0].size
  m, bx, dp = np.zeros([k, n]), np.zeros([k, n]), np.zeros([k, n])
  bf = np.full([k], np.inf)
  losses, positions, inputs = [], [x.copy()], []
  for _ in range(steps):
    f = np.square(x - c).sum(-1).mean(-1)
    losses.append(f)
    g = (2.0 * (x - c) / x.shape[1]).reshape(k, n)
    flat = x.reshape(k, n)
    features = [_np_gradient_attention(g, flat, gamma, length)
                if use_gradient_attention else g]
    if use_momentum:
      m = beta * m + (1.0 - beta) * g
      features.append(m)
    if use_personal_best:
      improved = f < bf
      bx = np.where(improved[:, None], flat, bx)
      bf = np.where(improved, f, bf)
      features.append(flat - bx)
    if use_attraction:
      features.append(_np_attraction(flat, f, alpha))
    features = np.stack(features, -1)
    if attention is None:
      net_input = features.mean(-1)
    else:
      net_input = _np_feature_attention(attention, features, dp)
    inputs.append(net_input)
    dp = -lr * net_input
    x = x + dp.reshape(x.shape)
    positions.append(x.copy())
  losses.append(np.square(x - c).sum(-1).mean(-1))
  return dict(losses=np.array(losses), positions=np.array(positions),
              inputs=np.array(inputs), momentum=m, best_x=bx, best_f=bf,
              delta_prev=dp)


# ---------------------------------------------------------------------------
# 1. Plumbing with an exact net.


def test_sgd_swarm_moves_each_particle_by_minus_lr_gradient():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(3)
    optimizer = _swarm()
    info = optimizer.meta_loss(_shifted_quadratic(), 3)
    assert len(info) == 6
    assert info.fx.shape.as_list() == [K]
    assert [x.shape.as_list() for x in info.x] == [[K, B, D]]
    assert optimizer.fx_history.shape.as_list() == [4, K]
    _init(sess)
    out = sess.run(dict(x0=optimizer.x_initial[0], x=info.x[0], fx=info.fx,
                        loss=info.loss, history=optimizer.fx_history,
                        c=info.subproblem_constants[0]))
  x0, c = out["x0"], out["c"]
  assert x0.shape == (K, B, D)
  # The particles are distinct draws.
  assert np.min(np.abs(x0[0] - x0[1])) > 0 and np.min(np.abs(x0[1] - x0[2])) > 0
  # Exact SGD, particle by particle: x <- x - lr * d/dx mean_rows f.
  x = x0.astype(np.float64)
  expected_losses = []
  for _ in range(3):
    expected_losses.append(np.square(x - c).sum(-1).mean(-1))
    x = x - LR * 2.0 * (x - c) / B
  expected_losses.append(np.square(x - c).sum(-1).mean(-1))
  expected_losses = np.array(expected_losses)
  np.testing.assert_allclose(out["x"], x, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(out["fx"], expected_losses[-1], rtol=1e-5)
  np.testing.assert_allclose(out["history"], expected_losses, rtol=1e-5)
  # Meta-loss: every particle's loss at all 4 points, nothing else.
  np.testing.assert_allclose(out["loss"], expected_losses.sum(), rtol=1e-5)


def test_swarm_variables_are_created_non_trainable():
  with tf.Graph().as_default():
    optimizer = _swarm()
    optimizer.meta_loss(_shifted_quadratic(), 2)
    assert not tf.compat.v1.trainable_variables()
    names = [v.name for v in tf.compat.v1.global_variables()]
    # One variable per particle, the instance once, the swarm state.
    assert names.count("c:0") == 1
    assert len([n for n in names if n.split("/")[-1] == "x:0"]) == K
    for name in ("momentum", "best_x", "best_f", "delta_prev"):
      assert "swarm_state/{}:0".format(name) in names


# ---------------------------------------------------------------------------
# 2. Inter-particle gradient attention.


@pytest.mark.parametrize("options", [
    {},
    {"attention_gamma": 0.7, "attention_length_scale": 2.5},
])
def test_gradient_attention_first_step(options):
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(5)
    optimizer = _swarm(use_gradient_attention=True, **options)
    info = optimizer.meta_loss(_shifted_quadratic(stddev=0.5), 1)
    _init(sess)
    x0, x1, c = sess.run([optimizer.x_initial[0], info.x[0],
                          info.subproblem_constants[0]])
  g = (2.0 * (x0.astype(np.float64) - c) / B).reshape(K, -1)
  flat = x0.reshape(K, -1).astype(np.float64)
  gamma = options.get("attention_gamma", 1.0 / K)
  length = options.get("attention_length_scale", 1.0)
  a = (_softmax_rows(g @ g.T) @
       _softmax_rows(-_sq_dist(flat) / (2.0 * length)))
  expected_delta = -LR * (g + gamma * a @ g)
  # The attention really mixes particles here.
  assert np.max(np.abs(gamma * a @ g)) > 1e-2
  np.testing.assert_allclose((x1 - x0).reshape(K, -1), expected_delta,
                             rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------
# 3. Momentum, personal best, attraction; feature attention.


@pytest.mark.parametrize("features", [
    ("use_momentum",),
    ("use_personal_best",),
    ("use_attraction",),
    ("use_momentum", "use_personal_best", "use_attraction"),
    ("use_gradient_attention", "use_momentum", "use_personal_best",
     "use_attraction"),
])
def test_features_are_averaged_without_feature_attention(features):
  flags = {name: True for name in features}
  steps = 3
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(7)
    optimizer = _swarm(learning_rate=1.5, **flags)
    info = optimizer.meta_loss(_shifted_quadratic(), steps)
    state = {name: _graph_variable("swarm_state/" + name)
             for name in ("momentum", "best_x", "best_f", "delta_prev")}
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    out = sess.run(dict(x=info.x[0], history=optimizer.fx_history,
                        update=info.update))
    after = sess.run(state)
  expected = _np_swarm(x0, c, steps, lr=1.5, **flags)
  # Step 1 by hand: momentum (1 - beta) g, personal-best residual 0,
  # attraction per the spec, all averaged with the gradient.
  g = (2.0 * (x0.astype(np.float64) - c) / B).reshape(K, -1)
  flat = x0.reshape(K, -1).astype(np.float64)
  f0 = np.square(x0.astype(np.float64) - c).sum(-1).mean(-1)
  first = [_np_gradient_attention(g, flat)
           if "use_gradient_attention" in flags else g]
  if "use_momentum" in flags:
    first.append(0.1 * g)
  if "use_personal_best" in flags:
    first.append(np.zeros_like(g))
  if "use_attraction" in flags:
    first.append(_np_attraction(flat, f0))
    assert np.max(np.abs(first[-1])) > 1e-2  # Not trivially zero.
    assert not np.any(first[-1][np.argmin(f0)])  # The best is not pulled.
  np.testing.assert_allclose(expected["inputs"][0], np.mean(first, axis=0),
                             rtol=1e-12)
  # The whole 3-step trajectory and the loop state the update stores.
  np.testing.assert_allclose(out["history"], expected["losses"], rtol=1e-4)
  np.testing.assert_allclose(out["x"], expected["positions"][-1], rtol=1e-4,
                             atol=1e-5)
  np.testing.assert_allclose(after["delta_prev"], expected["delta_prev"],
                             rtol=1e-4, atol=1e-5)
  if "use_momentum" in flags:
    np.testing.assert_allclose(after["momentum"], expected["momentum"],
                               rtol=1e-4, atol=1e-6)
  if "use_personal_best" in flags:
    np.testing.assert_allclose(after["best_f"], expected["best_f"], rtol=1e-5)
    np.testing.assert_allclose(after["best_x"], expected["best_x"], rtol=1e-5,
                               atol=1e-6)


def test_personal_best_trajectory_keeps_the_best_point_seen():
  # With lr 5 the swarm overshoots: losses go down and up again, so the best
  # point is neither simply the first nor the last one.
  flags = dict(use_momentum=True, use_personal_best=True, use_attraction=True)
  steps = 4
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(7)
    optimizer = _swarm(learning_rate=5.0, **flags)
    info = optimizer.meta_loss(_shifted_quadratic(), steps)
    best_x = _graph_variable("swarm_state/best_x")
    best_f = _graph_variable("swarm_state/best_f")
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    history = sess.run([optimizer.fx_history, info.update])[0]
    bx, bf = sess.run([best_x, best_f])
  expected = _np_swarm(x0, c, steps, lr=5.0, **flags)
  np.testing.assert_allclose(history, expected["losses"], rtol=1e-4)
  seen = history[:steps]  # The unroll has evaluated points 0 .. steps - 1.
  best_step = np.argmin(seen, axis=0)
  assert set(best_step) - {0, steps - 1}, best_step  # A best mid-way.
  assert np.any(np.diff(seen[best_step.max():], axis=0) > 0)  # Then worse.
  np.testing.assert_allclose(bf, seen.min(0), rtol=1e-6)
  positions = expected["positions"].reshape(steps + 1, K, -1)
  np.testing.assert_allclose(bx, positions[best_step, np.arange(K)],
                             rtol=1e-4, atol=1e-5)


def test_personal_best_updates_only_on_improvement():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(9)
    optimizer = _swarm(use_personal_best=True)
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    best_x = _graph_variable("swarm_state/best_x")
    best_f = _graph_variable("swarm_state/best_f")
    particles = [_graph_variable(name) for name in
                 ("x", "another_start/x", "another_start_1/x")]
    new_points = tf.compat.v1.placeholder(tf.float32, [K, B, D])
    move = [tf.compat.v1.assign(p, new_points[j])
            for j, p in enumerate(particles)]
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    sess.run(info.update)
    f0 = np.square(x0.astype(np.float64) - c).sum(-1).mean(-1)
    np.testing.assert_allclose(sess.run(best_f), f0, rtol=1e-6)
    np.testing.assert_allclose(sess.run(best_x), x0.reshape(K, -1))
    # Particle 0 jumps to the optimum, particle 1 far away, particle 2 back
    # to exactly its best point (equal is not an improvement).
    points = np.stack([c, c + 10.0, x0[2]]).astype(np.float32)
    sess.run(move, {new_points: points})
    history = sess.run([optimizer.fx_history, info.update])[0]
    bx, bf = sess.run([best_x, best_f])
  np.testing.assert_allclose(history[0], [0.0, 300.0, f0[2]], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(bf, [0.0, f0[1], f0[2]], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(bx[0], c.ravel(), rtol=1e-6)
  np.testing.assert_allclose(bx[1:], x0[1:].reshape(2, -1), rtol=1e-6)


def test_feature_attention_matches_numpy_over_the_unroll():
  steps = 3
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(13)
    optimizer = _swarm(learning_rate=0.5, use_gradient_attention=True,
                       use_momentum=True, use_personal_best=True,
                       use_attraction=True, use_feature_attention=True)
    info = optimizer.meta_loss(_shifted_quadratic(), steps)
    rng = np.random.RandomState(1)
    larger = {name: rng.normal(size=shape).astype(np.float32)
              for name, shape in (("w", [10, 2]), ("b", [10, 4]),
                                  ("v", [10]))}
    assign = [tf.compat.v1.assign(_graph_variable("feature_attention/" + n),
                                  value) for n, value in larger.items()]
    _init(sess)
    default = optimizer.save(sess)[swarm_unroll.ATTENTION_ID]
    assert sorted(default) == ["feature_attention"]
    assert not np.any(default["feature_attention"]["b"])  # b starts at 0.
    # Larger weights than the default make the softmax far from uniform.
    sess.run(assign)
    params = optimizer.save(sess)[swarm_unroll.ATTENTION_ID][
        "feature_attention"]
    for name, value in larger.items():
      np.testing.assert_array_equal(params[name], value)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    out = sess.run(dict(x=info.x[0], history=optimizer.fx_history))
  expected = _np_swarm(x0, c, steps, lr=0.5, use_gradient_attention=True,
                       use_momentum=True, use_personal_best=True,
                       use_attraction=True, attention=params)
  mean_only = _np_swarm(x0, c, steps, lr=0.5, use_gradient_attention=True,
                        use_momentum=True, use_personal_best=True,
                        use_attraction=True)
  assert np.max(np.abs(expected["positions"][-1] -
                       mean_only["positions"][-1])) > 1e-2
  np.testing.assert_allclose(out["history"], expected["losses"], rtol=1e-4)
  np.testing.assert_allclose(out["x"], expected["positions"][-1], rtol=1e-4,
                             atol=1e-5)


# ---------------------------------------------------------------------------
# 4. The posterior entropy term.


def test_entropy_term_is_measured_afresh_in_every_meta_loss():
  # LOIS's schedule keeps no state: h comes from a first pass in the same
  # meta-loss, so nothing is saved, reset or resumed with it.
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(17)
    optimizer = _swarm(use_entropy=True, entropy_weight=1.0)
    info = optimizer.meta_loss(_shifted_quadratic(), 3)
    assert not tf.compat.v1.trainable_variables()
    assert not [v for v in tf.compat.v1.global_variables()
                if "entropy" in v.name]
    assert optimizer.variables() == optimizer.trainable_variables()
    _init(sess)
    entropies = []
    for _ in range(3):
      loss, history, _ = sess.run([info.loss, optimizer.fx_history,
                                   info.update])
      entropies.append(loss - history.sum())
  entropies = np.array(entropies)
  assert np.all(entropies > 0.0)
  assert np.all(entropies <= math.log(1000) + 1e-3)  # At most ln M.
  # Each unroll goes on from the last: other points, another entropy.
  assert len(set(entropies.tolist())) == 3


def test_entropy_default_weight_and_fixed_scale():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(19)
    optimizer = _swarm(use_entropy=True, entropy_scale=2.0)
    info = optimizer.meta_loss(_shifted_quadratic(stddev=0.1), 2)
    _init(sess)
    extra = []
    for _ in range(2):
      loss, history, _ = sess.run([info.loss, optimizer.fx_history,
                                   info.update])
      extra.append(loss - history.sum())
  extra = np.array(extra) / 0.001  # lambda = 0.001 by default.
  assert np.all(extra > 0.0) and np.all(extra < math.log(1000) + 0.1), extra


def test_entropy_with_one_candidate_is_zero():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer = _swarm(use_entropy=True, entropy_weight=1.0,
                       num_posterior_samples=1)
    info = optimizer.meta_loss(_shifted_quadratic(), 2)
    _init(sess)
    loss, history = sess.run([info.loss, optimizer.fx_history])
  assert loss == pytest.approx(float(history.sum()), rel=1e-6)


# ---------------------------------------------------------------------------
# 5. update continues, reset starts afresh.


def test_update_continues_and_reset_starts_fresh():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(23)
    optimizer = _swarm(use_momentum=True, use_personal_best=True,
                       use_attraction=True)
    info = optimizer.meta_loss(_shifted_quadratic(), 2)
    state = {name: _graph_variable("swarm_state/" + name)
             for name in ("momentum", "best_x", "best_f", "delta_prev")}
    _init(sess)
    c = sess.run(info.subproblem_constants[0])
    first = sess.run(dict(x0=optimizer.x_initial[0], x=info.x[0], fx=info.fx,
                          update=info.update))
    second = sess.run(dict(x0=optimizer.x_initial[0], x=info.x[0],
                           history=optimizer.fx_history))
    sess.run(info.reset)
    fresh = sess.run(dict(state, x0=optimizer.x_initial[0],
                          c=info.subproblem_constants[0]))
  # The second run starts where the first ended, with the stored state.
  np.testing.assert_array_equal(second["x0"], first["x"])
  np.testing.assert_allclose(second["history"][0], first["fx"], rtol=1e-6)
  expected = _np_swarm(first["x0"], c, 4, use_momentum=True,
                       use_personal_best=True, use_attraction=True)
  np.testing.assert_allclose(second["x"], expected["positions"][4],
                             rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(second["history"], expected["losses"][2:],
                             rtol=1e-4)
  # reset: new particles, a new instance, and the optimizer state zeroed.
  assert np.all(fresh["x0"] != first["x0"])
  assert np.all(fresh["c"] != c)
  assert np.all(np.isposinf(fresh["best_f"]))
  for name in ("momentum", "best_x", "delta_prev"):
    assert not np.any(fresh[name]), name


def _full_swarm_run(len_unroll, runs):
  """A full LOIS swarm with a small LSTM; x_final after `runs` unrolls."""
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(41)
    optimizer = meta.MetaOptimizer(num_particles=K, use_entropy=False,
                                   cw=_small_lstm())
    info = optimizer.meta_loss(_shifted_quadratic(), len_unroll)
    net_state = [v for v in tf.compat.v1.global_variables()
                 if v.name.startswith("swarm_state/state_0/net_state")]
    _init(sess)
    for _ in range(runs - 1):
      sess.run(info.update)
    x_final = sess.run(info.x[0])
    sess.run(info.update)
    stored = sess.run(net_state)
    sess.run(info.reset)
    after_reset = sess.run(net_state)
  return x_final, stored, after_reset


def test_update_carries_the_lstm_and_swarm_state():
  # Two unrolls of 2 steps joined by `update` are one unroll of 4 steps.
  x_joined, stored, after_reset = _full_swarm_run(2, 2)
  x_direct, _, _ = _full_swarm_run(4, 1)
  assert np.max(np.abs(x_direct)) > 0
  np.testing.assert_allclose(x_joined, x_direct, rtol=1e-5, atol=1e-7)
  # The LSTM state of every particle and coordinate is stored, then zeroed.
  assert stored and all(np.any(v) for v in stored)
  assert all(v.shape[0] == K * B * D for v in stored)
  assert not any(np.any(v) for v in after_reset)


def test_second_derivatives_reach_the_meta_gradient():
  gradients = []
  for second_derivatives in (False, True):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
      tf.compat.v1.set_random_seed(43)
      optimizer = _swarm(**FEATURES_ON)
      info = optimizer.meta_loss(_shifted_quadratic(), 3,
                                 second_derivatives=second_derivatives)
      w = _graph_variable("feature_attention/w")
      (gradient,) = tf.gradients(info.loss, [w])
      _init(sess)
      gradients.append(sess.run(gradient))
  assert all(np.all(np.isfinite(g)) and np.any(g) for g in gradients)
  assert np.max(np.abs(gradients[0] - gradients[1])) > 1e-6


def test_meta_minimize_trains_the_attention_of_an_sgd_swarm():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(47)
    optimizer = _swarm(**FEATURES_ON)
    step = optimizer.meta_minimize(_shifted_quadratic(), 3,
                                   learning_rate=0.1)
    w = _graph_variable("feature_attention/w")
    _init(sess)
    before = sess.run(w)
    sess.run(step.step)
    assert np.any(sess.run(w) != before)


def test_save_then_load_an_sgd_swarm_with_feature_attention(tmp_path):
  flags = dict(use_gradient_attention=True, use_momentum=True,
               use_personal_best=True, use_attraction=True)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(53)
    optimizer = _swarm(use_feature_attention=True, **flags)
    step = optimizer.meta_minimize(_shifted_quadratic(), 2, learning_rate=0.1)
    _init(sess)
    sess.run(step.step)
    saved = optimizer.save(sess, str(tmp_path))
  assert sorted(os.listdir(tmp_path)) == ["attention.l2l", "manifest.json",
                                          "sgd.l2l"]
  assert not saved[str(tmp_path / "sgd.l2l")]
  params = saved[str(tmp_path / "attention.l2l")]["feature_attention"]
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(59)
    optimizer = _swarm(use_feature_attention=True, **flags)
    info = optimizer.meta_loss(_shifted_quadratic(), 2,
                               model_path=str(tmp_path))
    _init(sess)
    restored = optimizer.save(sess)["attention"]["feature_attention"]
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    x = sess.run(info.x[0])
  for name, value in params.items():
    np.testing.assert_array_equal(restored[name], value)
  expected = _np_swarm(x0, c, 2, attention=params, **flags)
  np.testing.assert_allclose(x, expected["positions"][-1], rtol=1e-4,
                             atol=1e-5)


def test_evaluate_swarm_on_simple_multi():
  result = evaluation.evaluate("L2L", "simple-multi", num_steps=2,
                               num_epochs=1,
                               swarm_options={"num_particles": 2},
                               show_progress=False)
  assert result.losses.shape == (1, 3, 2)
  assert np.all(np.isfinite(result.losses))


# ---------------------------------------------------------------------------
# 6. One particle is plain L2L.


def _run_l2l(**options):
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(29)
    optimizer = meta.MetaOptimizer(**options)
    info = optimizer.meta_loss(problems.quadratic(batch_size=4, num_dims=3), 4)
    names = sorted(v.name for v in tf.compat.v1.global_variables())
    _init(sess)
    out = sess.run([info.loss, info.fx, info.x])
    sess.run(info.update)
    out.append(sess.run(info.fx))
  return names, out


def test_one_particle_is_exactly_plain_l2l():
  names, plain = _run_l2l()
  swarm_names, single = _run_l2l(num_particles=1)
  assert swarm_names == names
  assert not [n for n in names if "swarm" in n or "another_start" in n]
  assert np.shape(single[1]) == ()  # No particle axis.
  np.testing.assert_array_equal(single[0], plain[0])
  np.testing.assert_array_equal(single[1], plain[1])
  np.testing.assert_array_equal(single[2][0], plain[2][0])
  np.testing.assert_array_equal(single[3], plain[3])


# ---------------------------------------------------------------------------
# 7 and 8. Save, load, and transfer to another dimension.


@pytest.fixture(scope="module")
def trained_swarm(tmp_path_factory):
  """A 4-particle LOIS optimizer meta-trained briefly on square_cos_2.

  Returns:
    `(directory, the saved values, reference run)`: the reference run is the
    trained optimizer's `fx`/`x_final` from fixed particles and instance.
  """
  path = str(tmp_path_factory.mktemp("swarm_model"))
  with open(os.path.join(path, "notes.txt"), "w") as f:
    f.write("mine")
  _, net_config, _ = util.get_config("square_cos_2")
  problem = problems.square_cos(batch_size=8, num_dims=2, init_stddev=0.2)
  rng = np.random.RandomState(0)
  fixed = {"x": rng.normal(scale=0.3, size=[4, 8, 2]).astype(np.float32),
           "w": rng.normal(scale=0.005, size=[8, 2, 2]).astype(np.float32),
           "y": rng.normal(scale=0.005, size=[8, 2]).astype(np.float32),
           "wcos": (1 + rng.normal(scale=0.005, size=[8, 2])).astype(
               np.float32)}
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(11)
    optimizer = meta.MetaOptimizer(num_particles=4, **net_config)
    step = optimizer.meta_minimize(problem, 10, learning_rate=0.01)
    load = _fixed_instance_ops(fixed)
    before = [v.name for v in optimizer.trainable_variables()]
    _init(sess)
    initial = sess.run(optimizer.trainable_variables())
    for i in range(10):
      if i % 2 == 0:
        sess.run(step.reset)
      sess.run([step.step, step.update])
    trained = sess.run(optimizer.trainable_variables())
    saved = optimizer.save(sess, path)
    # Keyed by the written files, as DeepMind's save.
    assert sorted(saved) == [os.path.join(path, "attention.l2l"),
                             os.path.join(path, "cw.l2l")]
    saved = {os.path.basename(key)[:-len(".l2l")]: value
             for key, value in saved.items()}
    sess.run(step.reset)
    sess.run(load)
    reference = sess.run(dict(fx=step.fx, x=step.x[0]))
  assert before and any(np.any(a != b) for a, b in zip(initial, trained))
  return path, saved, fixed, reference


def _fixed_instance_ops(fixed):
  """Ops loading fixed particles and instance into a square_cos_2 swarm."""
  particles = ["x", "another_start/x", "another_start_1/x",
               "another_start_2/x"]
  ops = [tf.compat.v1.assign(_graph_variable(name), fixed["x"][j])
         for j, name in enumerate(particles)]
  ops += [tf.compat.v1.assign(_graph_variable(name), fixed[name])
          for name in ("w", "y", "wcos")]
  return ops


def test_save_writes_the_net_and_the_attention(trained_swarm):
  path, saved, _, _ = trained_swarm
  assert sorted(os.listdir(path)) == ["attention.l2l", "cw.l2l",
                                      "manifest.json", "notes.txt"]
  with open(os.path.join(path, "notes.txt")) as f:
    assert f.read() == "mine"
  assert sorted(saved) == ["attention", "cw"]
  assert sorted(saved["cw"]) == ["linear", "lstm_1", "lstm_2"]
  assert sorted(saved["attention"]) == ["feature_attention"]
  for key in saved:
    on_disk = l2l_file.load(os.path.join(path, key + ".l2l"))
    for module, variables in saved[key].items():
      assert sorted(on_disk[module]) == sorted(variables)
      for name, value in variables.items():
        np.testing.assert_array_equal(on_disk[module][name], value)


def test_model_path_restores_the_trained_swarm(trained_swarm):
  path, saved, fixed, reference = trained_swarm
  _, net_config, _ = util.get_config("square_cos_2")
  problem = problems.square_cos(batch_size=8, num_dims=2, init_stddev=0.2)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(11)
    optimizer = meta.MetaOptimizer(num_particles=4, **net_config)
    info = optimizer.meta_loss(problem, 10, model_path=path)
    load = _fixed_instance_ops(fixed)
    _init(sess)
    restored = optimizer.save(sess)
    sess.run(load)
    out = sess.run(dict(fx=info.fx, x=info.x[0]))
  for key in saved:
    for module, variables in saved[key].items():
      for name, value in variables.items():
        np.testing.assert_array_equal(restored[key][module][name], value)
  assert np.all(np.isfinite(out["fx"]))
  np.testing.assert_allclose(out["fx"], reference["fx"], rtol=1e-6)
  np.testing.assert_allclose(out["x"], reference["x"], rtol=1e-6, atol=1e-7)


def test_model_path_gives_identical_runs_from_the_same_seed(trained_swarm):
  path = trained_swarm[0]
  _, net_config, _ = util.get_config("square_cos_2")
  runs = []
  for _ in range(2):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
      tf.compat.v1.set_random_seed(31)
      optimizer = meta.MetaOptimizer(num_particles=4, **net_config)
      info = optimizer.meta_loss(
          problems.square_cos(batch_size=8, num_dims=2, init_stddev=0.2), 5,
          model_path=path)
      _init(sess)
      runs.append(sess.run([info.fx, info.x[0]]))
  np.testing.assert_array_equal(runs[0][0], runs[1][0])
  np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_saved_swarm_transfers_to_ten_dimensions(trained_swarm):
  path = trained_swarm[0]
  _, net_config, _ = util.get_config("square_cos_10")
  problem = problems.square_cos(batch_size=8, num_dims=10, mode="test",
                                init_stddev=1.3)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(5)
    optimizer = meta.MetaOptimizer(num_particles=4, **net_config)
    info = optimizer.meta_loss(problem, 20, model_path=path)
    _init(sess)
    history, fx, x = sess.run([optimizer.fx_history, info.fx, info.x[0]])
  assert x.shape == (4, 8, 10)
  assert np.all(np.isfinite(history)) and np.all(np.isfinite(fx))
  start, end = history[0].mean(), history[-1].mean()
  assert end < 0.8 * start, (start, end)


# ---------------------------------------------------------------------------
# 9. Options.


def test_bad_swarm_options_through_meta_name_the_option():
  # SwarmConfig's own validation is tested in test_config.py.
  with pytest.raises(ValueError, match="momentum_beta"):
    meta.MetaOptimizer(num_particles=2, momentum_beta="x")


@pytest.mark.parametrize("value", ["Sgd", None, ["Sgd"]])
def test_net_config_that_is_not_a_dict(value):
  with pytest.raises(ValueError, match="'cw'"):
    meta.MetaOptimizer(num_particles=3, cw=value)


def test_swarm_options_next_to_a_net_config():
  # Swarm options next to one net config: still one net, no assignment
  # needed, and the options reach the swarm.
  with tf.Graph().as_default():
    optimizer = meta.MetaOptimizer(num_particles=2, momentum_beta=0.5,
                                   entropy_weight=0.0, use_entropy=False,
                                   **_sgd())
    assert optimizer.swarm.num_particles == 2
    assert optimizer.swarm.momentum_beta == 0.5
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    assert info.fx.shape.as_list() == [2]
  # Swarm options alone keep the default net.
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer = meta.MetaOptimizer(num_particles=2)
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    assert info.fx.shape.as_list() == [2]
    _init(sess)
    saved = optimizer.save(sess)
  assert sorted(saved) == ["attention", "cw"]
  assert sorted(saved["cw"]) == ["linear", "lstm_1", "lstm_2"]
  assert saved["cw"]["lstm_1"]["w_gates"].shape == (2 + 20, 80)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_non_finite_num_particles_names_the_option(value):
  with pytest.raises(ValueError, match="num_particles"):
    meta.MetaOptimizer(num_particles=value)


def test_whole_float_num_particles_is_accepted_or_rejected_up_front():
  try:
    optimizer = meta.MetaOptimizer(num_particles=2.0, **_sgd())
  except ValueError:
    return
  with tf.Graph().as_default():
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    assert info.fx.shape.as_list() == [2]


def test_save_then_load_without_feature_attention(tmp_path):
  options = dict(num_particles=3, use_feature_attention=False,
                 use_entropy=False, cw=_small_lstm())
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(37)
    optimizer = meta.MetaOptimizer(**options)
    info = optimizer.meta_loss(_shifted_quadratic(), 2)
    _init(sess)
    optimizer.save(sess, str(tmp_path))
    expected = sess.run(info.fx)
  assert sorted(os.listdir(tmp_path)) == ["cw.l2l", "manifest.json"]
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(37)
    optimizer = meta.MetaOptimizer(**options)
    info = optimizer.meta_loss(_shifted_quadratic(), 2,
                               model_path=str(tmp_path))
    _init(sess)
    np.testing.assert_allclose(sess.run(info.fx), expected, rtol=1e-6)


def test_net_id_attention_is_rejected_or_saved(tmp_path):
  try:
    optimizer = meta.MetaOptimizer(num_particles=2, attention=_small_lstm())
  except ValueError as error:
    assert "attention" in str(error)
    return
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer.meta_loss(_shifted_quadratic(), 1)
    _init(sess)
    saved = optimizer.save(sess, str(tmp_path))
  # Both the LSTM and the feature attention must be kept.
  modules = set()
  for values in saved.values():
    modules |= set(values)
  assert {"lstm_1", "linear", "feature_attention"} <= modules


# ---------------------------------------------------------------------------
# 10. evaluation.evaluate in swarm mode.


def _rastrigin(points):
  """Mean over rows of Rastrigin, points [..., rows, d]."""
  points = np.asarray(points, np.float64)
  values = np.sum(points**2 - 10.0 * np.cos(2.0 * np.pi * points), -1)
  return np.mean(values + 10.0 * points.shape[-1], -1)


def test_evaluate_swarm_l2l_and_pso():
  l2l = evaluation.evaluate("L2L", "square_cos_2", num_steps=3, num_epochs=2,
                            swarm_options={"num_particles": 3},
                            show_progress=False)
  assert l2l.losses.shape == (2, 4, 3)
  assert l2l.positions.shape == (1, 4, 3, 256)
  assert np.all(np.isfinite(l2l.losses))
  # Every recorded loss is the loss at the recorded position.
  np.testing.assert_allclose(
      l2l.losses[0], _rastrigin(l2l.positions[0].reshape(4, 3, 128, 2)),
      rtol=1e-4)
  # Particles move, and differ from one another.
  assert np.all(l2l.positions[0, 1] != l2l.positions[0, 0])
  assert np.all(l2l.losses[:, 0, 0] != l2l.losses[:, 0, 1])
  # Epochs are different instances.
  assert np.all(l2l.losses[0, 0] != l2l.losses[1, 0])
  swarm = evaluation.evaluate("PSO", "square_cos_2", num_steps=3,
                              num_epochs=2,
                              swarm_options={"num_particles": 3},
                              show_progress=False)
  assert swarm.losses.shape == (2, 4, 3)
  assert swarm.positions.shape == (1, 4, 3, 256)
  np.testing.assert_allclose(
      swarm.losses[0], _rastrigin(swarm.positions[0].reshape(4, 3, 128, 2)),
      rtol=1e-4)
  # Same seed, same draws: the first particle starts at the same point.
  np.testing.assert_array_equal(swarm.losses[:, 0, 0], l2l.losses[:, 0, 0])
  np.testing.assert_array_equal(swarm.positions[0, 0, 0],
                                l2l.positions[0, 0, 0])


# ---------------------------------------------------------------------------
# Meta-objectives, per-instance swarms and step noise (docs/design.md, "What
# the swarm is trained to do").


def _objective(objective, per_instance, prior, time_weighting="uniform",
               final_weight=0.0):
  config = swarm_unroll.SwarmConfig(num_particles=2, objective=objective,
                                    time_weighting=time_weighting,
                                    final_weight=final_weight)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    return sess.run(swarm_unroll.objective_loss(
        config, tf.constant(per_instance), tf.constant(prior)))


# Two particles, two instances, three losses (T = 2).
_INSTANCE_LOSSES = np.array([[[5.0, 9.0], [6.0, 8.0]],
                             [[4.0, 9.5], [7.0, 3.0]],
                             [[4.5, 9.0], [6.5, 2.0]]], np.float32)
_MEANS = _INSTANCE_LOSSES.mean(-1)


def test_sum_objective_is_every_particle_every_step():
  prior = np.array([np.inf, np.inf], np.float32)
  assert _objective("sum", _INSTANCE_LOSSES, prior) == pytest.approx(
      _MEANS.sum())
  # Increasing weights 2 (t + 1) / (T + 2): 0.5, 1, 1.5.
  assert _objective("sum", _INSTANCE_LOSSES, prior,
                    "increasing") == pytest.approx(
                        (np.array([0.5, 1.0, 1.5]) * _MEANS.sum(1)).sum())
  assert _objective("sum", _INSTANCE_LOSSES, prior,
                    "final") == pytest.approx(3.0 * _MEANS[-1].sum())


def test_best_so_far_objective_keeps_each_instance_record():
  # Instance 0: best 5, 4, 4; instance 1: 8, 3, 2 (no prior).
  prior = np.array([np.inf, np.inf], np.float32)
  assert _objective("best_so_far", _INSTANCE_LOSSES,
                    prior) == pytest.approx((6.5 + 3.5 + 3.0))
  # A record from before the unroll caps instance 0 at 4.2 from the start.
  prior = np.array([4.2, np.inf], np.float32)
  assert _objective("best_so_far", _INSTANCE_LOSSES,
                    prior) == pytest.approx((4.2 + 8) / 2 + 3.5 + 3.0)
  assert _objective("best_so_far", _INSTANCE_LOSSES, prior,
                    "increasing") == pytest.approx(
                        0.5 * 6.1 + 1.0 * 3.5 + 1.5 * 3.0)
  # The final term: every particle's loss at the end, (4.5 + 9 + 6.5 + 2) / 4
  # = 5.5, times T + 1 = 3 and the weight.
  assert _objective("best_so_far", _INSTANCE_LOSSES, prior,
                    final_weight=0.5) == pytest.approx(
                        6.1 + 3.5 + 3.0 + 0.5 * 3 * 5.5)


def test_final_best_objective_is_the_best_particle_at_the_end():
  prior = np.array([0.0, 0.0], np.float32)
  assert _objective("final_best", _INSTANCE_LOSSES,
                    prior) == pytest.approx((4.5 + 2.0) / 2)


def test_best_so_far_gradient_reaches_only_the_record_holder():
  config = swarm_unroll.SwarmConfig(num_particles=2, objective="best_so_far")
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    losses = tf.constant(_INSTANCE_LOSSES)
    loss = swarm_unroll.objective_loss(
        config, losses, tf.constant([np.inf, np.inf], tf.float32))
    grad = sess.run(tf.gradients(loss, losses)[0])
  expected = np.zeros_like(_INSTANCE_LOSSES)
  # Instance 0: particle 0's loss at step 0 is the record once, at step 1
  # twice (steps 1 and 2); instance 1: particle 1's at steps 0, 1 and 2 once
  # each. Each record counts 1/2 (the mean over two instances).
  expected[0, 0, 0] = 0.5
  expected[1, 0, 0] = 1.0
  expected[0, 1, 1] = expected[1, 1, 1] = expected[2, 1, 1] = 0.5
  np.testing.assert_allclose(grad, expected)


def test_normalised_entropy_weight_is_a_share_of_the_objective():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    objective = tf.constant(-200.0)
    entropy = tf.constant(4.0)
    plain = swarm_unroll.SwarmConfig(num_particles=2, entropy_weight=0.1)
    share = swarm_unroll.SwarmConfig(num_particles=2, entropy_weight=0.1,
                                     normalise_entropy=True)
    weight = swarm_unroll.entropy_weight(share, objective, entropy)
    to_objective, to_entropy = tf.gradients(weight * entropy,
                                            [objective, entropy])
    assert swarm_unroll.entropy_weight(plain, objective, entropy) == 0.1
    # The scale is held constant: the gradient reaches only the entropy.
    assert to_objective is None
    value, grad = sess.run([weight, to_entropy])
  assert value == pytest.approx(0.1 * 200.0 / 4.0)
  assert grad == pytest.approx(5.0)


def test_best_so_far_meta_loss_of_an_sgd_swarm_over_two_unrolls():
  steps = 2
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(11)
    optimizer = _swarm(objective="best_so_far", per_instance=True)
    info = optimizer.meta_loss(_shifted_quadratic(), steps)
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    loss_1 = sess.run([info.loss, info.update])[0]
    loss_2 = sess.run(info.loss)
  expected = _np_swarm(x0, c, 2 * steps)
  rows = np.square(expected["positions"] - c).sum(-1)  # [T + 1, k, B].
  best = np.minimum.accumulate(rows.min(1), axis=0)     # [T + 1, B].
  assert loss_1 == pytest.approx(best[:steps + 1].mean(1).sum(), rel=1e-5)
  # The second unroll starts from the first one's record.
  assert loss_2 == pytest.approx(best[steps:].mean(1).sum(), rel=1e-5)


def _np_per_instance_features(x, c, f_rows, best_x, best_f):
  """Per-row gradient attention, personal best and attraction (numpy).

  x: [k, B, D]; c: [B, D]; f_rows: [k, B]; best_x [k, B, D], best_f [k, B].
  """
  g = 2.0 * (x - c) / x.shape[1]
  improved = f_rows < best_f
  best_x = np.where(improved[..., None], x, best_x)
  best_f = np.where(improved, f_rows, best_f)
  attended = np.stack([_np_gradient_attention(g[:, b], x[:, b])
                       for b in range(x.shape[1])], 1)
  pulled = np.stack([_np_attraction(x[:, b], f_rows[:, b])
                     for b in range(x.shape[1])], 1)
  return attended, x - best_x, pulled, best_x, best_f


def test_per_instance_features_compare_particles_within_each_row():
  flags = dict(use_gradient_attention=True, use_personal_best=True,
               use_attraction=True, per_instance=True)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(13)
    optimizer = _swarm(**flags)
    info = optimizer.meta_loss(_shifted_quadratic(), 2)
    best_f = _graph_variable("swarm_state/best_f")
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    history, _ = sess.run([optimizer.fx_history, info.update])
    state_best_f = sess.run(best_f)
  c = np.asarray(c, np.float64)
  x = np.asarray(x0, np.float64)
  bx, bf = np.zeros_like(x), np.full(x.shape[:2], np.inf)
  losses = []
  for _ in range(2):
    f_rows = np.square(x - c).sum(-1)
    losses.append(f_rows.mean(-1))
    attended, residual, pulled, bx, bf = _np_per_instance_features(
        x, c, f_rows, bx, bf)
    x = x - LR * (attended + residual + pulled) / 3.0
  losses.append(np.square(x - c).sum(-1).mean(-1))
  assert state_best_f.shape == (K, B)
  np.testing.assert_allclose(state_best_f, bf, rtol=1e-5)
  np.testing.assert_allclose(history, np.array(losses), rtol=1e-4)
  # Whole-particle features give another trajectory on the same instance.
  whole = _np_swarm(x0, c, 2, use_gradient_attention=True,
                    use_personal_best=True, use_attraction=True)
  assert np.abs(history[-1] - whole["losses"][-1]).max() > 1e-3


def test_step_noise_moves_every_coordinate_by_its_stddev():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(17)
    optimizer = _swarm(num_particles=4, learning_rate=0.0, step_noise=0.5)
    info = optimizer.meta_loss(_shifted_quadratic(batch=64, dims=4), 1)
    _init(sess)
    before = sess.run(optimizer.x_initial[0])
    after = sess.run(info.x[0])
  moved = (after - before).ravel()
  assert moved.size == 4 * 64 * 4
  assert np.std(moved) == pytest.approx(0.5, rel=0.1)
  assert abs(np.mean(moved)) < 0.05


def test_step_scale_multiplies_the_nets_update():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(19)
    optimizer = _swarm(step_scale=3.0)
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    _init(sess)
    x0, c, after = sess.run([optimizer.x_initial[0],
                             info.subproblem_constants[0], info.x[0]])
  expected = _np_swarm(x0, c, 1, lr=3.0 * LR)["positions"][-1]
  np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="step_scale"):
    meta.MetaOptimizer(num_particles=2, step_scale=0.0)


def test_swarm_with_unassigned_and_shared_variables():
  optimizer = meta.MetaOptimizer(
      num_particles=2, use_gradient_attention=False, use_momentum=False,
      use_personal_best=False, use_attraction=False,
      use_feature_attention=False, use_entropy=False,
      slow={"net": "Sgd", "net_options": {"learning_rate": 0.1}},
      fast={"net": "Sgd", "net_options": {"learning_rate": 0.2}})
  # As DeepMind's assignments: x_1 is given to no net, x_0 to both.
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    info = optimizer.meta_loss(
        problems.simple_multi_optimizer(num_dims=2), 1,
        net_assignments=[("slow", ["x_0"]), ("fast", ["x_0"])])
    _init(sess)
    (x_0, x_1), (start_0, start_1) = sess.run([info.x,
                                               optimizer.x_initial])
  np.testing.assert_allclose(x_0, 0.4 * start_0, rtol=1e-6)
  np.testing.assert_array_equal(x_1, start_1)


# ---------------------------------------------------------------------------
# The attraction gate (docs/design.md, "What the swarm is trained to do").


def _np_record(x, c):
  """Each row's best particle at `x` [k, B, D]: [B, D]."""
  rows = np.square(x - c).sum(-1)
  return x[rows.argmin(0), np.arange(x.shape[1])]


def test_learned_gain_pulls_every_particle_toward_its_rows_record():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(23)
    # The net's step is 0: only the gate moves the particles.
    optimizer = _swarm(learning_rate=0.0, per_instance=True,
                       attraction_gain="learned")
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    _init(sess)
    x0, c, after = sess.run([optimizer.x_initial[0],
                             info.subproblem_constants[0], info.x[0]])
    gate_grad = tf.gradients(info.loss, optimizer.trainable_variables())
    assert all(g is not None for g in gate_grad)
  # The fresh gate is sigmoid(-4) for every particle; the record after the
  # first step's personal-best update is each row's best start.
  gain = 1.0 / (1.0 + math.exp(4.0))
  expected = x0 + gain * (_np_record(x0, c)[None] - x0)
  np.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-6)
  assert np.abs(after - x0).max() > 1e-3


def test_learned_gain_on_whole_particles_pulls_toward_the_best_particle():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(31)
    optimizer = _swarm(learning_rate=0.0, attraction_gain="learned")
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    _init(sess)
    x0, c, after = sess.run([optimizer.x_initial[0],
                             info.subproblem_constants[0], info.x[0]])
  best = np.square(x0 - c).sum(-1).mean(-1).argmin()
  gain = 1.0 / (1.0 + math.exp(4.0))
  np.testing.assert_allclose(after, x0 + gain * (x0[best][None] - x0),
                             rtol=1e-5, atol=1e-6)


def _gated_swarm_dir(tmp_path, gate_bias):
  """A saved jump swarm whose gate always (b=1) or never (b=-1) opens."""
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer = _swarm(learning_rate=0.0, per_instance=True,
                       attraction_gain="jump")
    optimizer.meta_loss(_shifted_quadratic(), 1)
    _init(sess)
    saved = optimizer.save(sess, str(tmp_path))
  assert saved[str(tmp_path / "gate.l2l")]["attraction_gate"]["b"] == (
      pytest.approx(-0.4))
  l2l_file.save({"attraction_gate": {"w": np.zeros(2, np.float32),
                                     "b": np.float32(gate_bias)}},
                str(tmp_path / "gate.l2l"))
  return str(tmp_path)


@pytest.mark.parametrize("gate_bias", [1.0, -1.0])
def test_jump_gain_loaded_from_a_save_jumps_onto_the_record(tmp_path,
                                                            gate_bias):
  path = _gated_swarm_dir(tmp_path, gate_bias)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(29)
    optimizer = _swarm(learning_rate=0.0, per_instance=True,
                       attraction_gain="jump")
    info = optimizer.meta_loss(_shifted_quadratic(), 1, model_path=path)
    _init(sess)
    x0, c, after = sess.run([optimizer.x_initial[0],
                             info.subproblem_constants[0], info.x[0]])
    bias = sess.run(_graph_variable("attraction_gate/b"))
  assert bias == pytest.approx(gate_bias)
  # logit +-10: every particle jumps onto its row's record, or none moves.
  if gate_bias > 0:
    np.testing.assert_allclose(after, np.broadcast_to(_np_record(x0, c),
                                                      x0.shape), rtol=1e-6)
  else:
    np.testing.assert_array_equal(after, x0)


def test_score_function_loss_weights_each_decision_by_what_follows():
  # T = 2, one particle, two instances.
  terms = np.array([[[9.0, 9.0]], [[1.0, 3.0]], [[2.0, 6.0]]], np.float32)
  log_probs = np.array([[[-0.5, -1.0]], [[-2.0, -0.1]]], np.float32)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    log_probs_t = tf.constant(log_probs)
    loss = swarm_unroll.score_function_loss(tf.constant(terms), log_probs_t)
    value, grad = sess.run([loss, tf.gradients(loss, log_probs_t)[0]])
  # Rewards after step 0: (3, 9); after step 1: (2, 6). Standardised over
  # the instances, instance 0 is -1 (better) and instance 1 +1 at each step.
  advantage = np.array([[[-1.0, 1.0]], [[-1.0, 1.0]]])
  np.testing.assert_allclose(grad, advantage / 2, rtol=1e-5)
  assert value == pytest.approx((advantage * log_probs).mean(-1).sum(),
                                rel=1e-5)


def test_jump_gain_meta_gradient_reaches_the_gate():
  with tf.Graph().as_default():
    optimizer = _swarm(per_instance=True, attraction_gain="jump")
    info = optimizer.meta_loss(_shifted_quadratic(), 2)
    gate = optimizer.trainable_variables()
    assert sorted(v.name for v in gate) == ["attraction_gate/b:0",
                                            "attraction_gate/w:0"]
    assert all(g is not None for g in tf.gradients(info.loss, gate))


def _gate_warnings(caplog):
  return [r for r in caplog.records
          if "jump gate learns" in r.getMessage()]


@pytest.mark.parametrize("per_instance", [False, True])
def test_a_gate_without_meta_gradient_is_named_when_training_only(
    caplog, per_instance):
  with caplog.at_level(logging.WARNING):
    with tf.Graph().as_default():
      optimizer = _swarm(per_instance=per_instance, attraction_gain="jump")
      info = optimizer.meta_loss(_shifted_quadratic(), 2)
      gradients = tf.gradients(info.loss, optimizer.trainable_variables())
      with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        gate_moves = any(np.any(g != 0) for g in sess.run(gradients))
    # Building the unroll alone, as evaluation does, says nothing.
    assert not _gate_warnings(caplog)
    with tf.Graph().as_default():
      _swarm(per_instance=per_instance, attraction_gain="jump").meta_minimize(
          _shifted_quadratic(), 2)
  # The warning's claim: with one instance the gate's meta-gradient is 0.
  assert gate_moves == per_instance
  assert len(_gate_warnings(caplog)) == (0 if per_instance else 1)


def test_hop_gain_hops_stalled_particles_near_the_record(tmp_path):
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(37)
    # The net's step is 0: a particle moves only by hopping.
    optimizer = _swarm(learning_rate=0.0, per_instance=True,
                       attraction_gain="hop", hop_noise=0.25)
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    positions = []
    for _ in range(3):
      sess.run(info.update)
      positions.append(sess.run(optimizer.x_initial[0]))
    saved = optimizer.save(sess, str(tmp_path))
  # The fresh gate is the stall rule at stillness 0.4.
  np.testing.assert_allclose(
      saved[str(tmp_path / "gate.l2l")]["attraction_gate"]["w"], [0.0, 4.0])
  # Step 1, a first step, counts as progress: nobody hops.
  np.testing.assert_array_equal(positions[0], x0)
  # Step 2: nobody moved, so every particle hops into the uniform box of
  # half-width 0.25 around its row's record.
  offsets = positions[1] - _np_record(x0, c)[None]
  assert np.abs(offsets).max() <= 0.25 and np.abs(offsets).min() > 0
  assert np.abs(offsets).max() > 0.2 and np.abs(offsets.mean()) < 0.05
  # Step 3: having just hopped, nobody hops again.
  np.testing.assert_array_equal(positions[2], positions[1])


def test_hop_gain_with_step_shrink_keeps_each_rows_record_holder():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(37)
    optimizer = _swarm(learning_rate=0.0, per_instance=True,
                       attraction_gain="hop", hop_noise=0.25, step_shrink=0.5)
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    for _ in range(2):
      sess.run(info.update)
    after = sess.run(optimizer.x_initial[0])
  # Step 2: nobody moved, so every particle hops, except each row's record
  # holder, which stays to refine the record.
  holders = np.square(x0 - c).sum(-1).argmin(0)
  moved = np.abs(after - x0).max(-1) > 0
  np.testing.assert_array_equal(moved, np.arange(K)[:, None] != holders)


def _bold_driver_run(step_shrink, learning_rate, updates, per_instance=True):
  """Positions and step sizes after each of `updates` one-step unrolls."""
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(41)
    optimizer = _swarm(learning_rate=learning_rate, per_instance=per_instance,
                       step_shrink=step_shrink)
    info = optimizer.meta_loss(_shifted_quadratic(), 1)
    step_size = _graph_variable("swarm_state/step_size")
    _init(sess)
    x0, c = sess.run([optimizer.x_initial[0], info.subproblem_constants[0]])
    positions, sizes = [x0], []
    for _ in range(updates):
      sess.run(info.update)
      positions.append(sess.run(optimizer.x_initial[0]))
      sizes.append(sess.run(step_size))
  return np.array(positions), np.array(sizes), c


@pytest.mark.parametrize("per_instance", [True, False])
def test_step_shrink_shrinks_the_steps_of_particles_that_got_worse(
    per_instance):
  x, sizes, c = _bold_driver_run(0.5, 10.0, 4, per_instance)
  # The swarm descends the mean of the B = 4 rows' losses, so each row's
  # gradient is (x - c) / 2 and SGD at 10 moves by -5 s (x - c) at step
  # size s. At s = 1 and 1/2 that overshoots (the loss grows), at 1/4 not.
  # The first step has no previous loss: sizes 1, 1/2, 1/4, then grown
  # back by sqrt(2). Every row's loss grows or falls alike, so whole
  # particles (per_instance off, sizes [k]) follow the same sizes.
  steps = [1.0, 0.5, 0.25, 0.25 * math.sqrt(2.0)]
  shape = (K, B) if per_instance else (K,)
  np.testing.assert_allclose(
      sizes, np.array(steps).reshape([4] + [1] * len(shape)) *
      np.ones((4,) + shape), rtol=1e-6)
  expected = [x[0]]
  for size in steps:
    expected.append(expected[-1] - 5.0 * size * (expected[-1] - c))
  np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("step_shrink, has_variable", [(1.0, False),
                                                       (0.5, True)])
def test_step_sizes_persist_only_when_they_adapt(step_shrink, has_variable):
  # Without step_shrink a swarm keeps the variables it always had, so a
  # training state written before the option existed still resumes.
  with tf.Graph().as_default():
    _swarm(per_instance=True, step_shrink=step_shrink).meta_loss(
        _shifted_quadratic(), 1)
    names = {v.op.name for v in tf.compat.v1.global_variables()}
  assert ("swarm_state/step_size" in names) == has_variable
  assert {"swarm_state/momentum", "swarm_state/best_x", "swarm_state/best_f",
          "swarm_state/delta_prev", "swarm_state/previous_f"} <= names


def test_step_shrink_grows_the_steps_back_after_progress():
  # At 1 (moves of -(x - c) / 2) every step improves: sizes stay at 1.
  x, sizes, c = _bold_driver_run(0.5, 1.0, 3)
  losses = np.square(x - c).sum(-1)
  assert (np.diff(losses, axis=0) < 0).all()
  np.testing.assert_array_equal(sizes, np.ones_like(sizes))


@pytest.mark.parametrize("k, noise_range, expected", [
    (4, 4.0, [0.25, 0.25 * 4 ** (1 / 3), 0.25 * 4 ** (2 / 3), 1.0]),
    (3, 1.0, [0.5, 0.5, 0.5]),
    (2, 9.0, [0.5 / 3, 1.5]),
])
def test_hop_widths_are_a_geometric_portfolio(k, noise_range, expected):
  config = swarm_unroll.SwarmConfig(num_particles=k, hop_noise=0.5,
                                    hop_noise_range=noise_range)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    widths = sess.run(swarm_unroll.hop_widths(config))
  np.testing.assert_allclose(widths, expected, rtol=1e-6)


def test_hop_gain_meta_gradient_reaches_the_gate():
  with tf.Graph().as_default():
    optimizer = _swarm(per_instance=True, attraction_gain="hop")
    info = optimizer.meta_loss(_shifted_quadratic(), 2)
    gate = optimizer.trainable_variables()
    assert all(g is not None for g in tf.gradients(info.loss, gate))


def test_gate_net_id_is_reserved():
  with pytest.raises(ValueError, match="'gate' is reserved.*attraction gate"):
    meta.MetaOptimizer(num_particles=2, gate=_small_lstm())
