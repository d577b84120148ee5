"""Tests for pso.py: exact steps against numpy, bests, convergence, reset."""


import numpy as np
import pytest
import tensorflow as tf

import meta
import problems
from l2l.baselines import pso

W, C1, C2 = 0.7298, 1.49618, 1.49618


class _FedUniform:
  """A `random_uniform` hook handing out placeholders, in call order."""

  def __init__(self):
    self.placeholders = []

  def __call__(self, shape, dtype):
    placeholder = tf.compat.v1.placeholder(dtype, shape)
    self.placeholders.append(placeholder)
    return placeholder

  def feed(self, *values):
    assert len(values) == len(self.placeholders)
    return dict(zip(self.placeholders, values))


def _zero_uniform(shape, dtype):
  return tf.zeros(shape, dtype)


def _load(sess, variable, value):
  variable.load(np.asarray(value, variable.dtype.base_dtype.as_numpy_dtype),
                sess)


def _load_positions(sess, pso_opt, positions):
  """Sets every particle's (single) variable from a [k, ...] array."""
  for particle, value in zip(pso_opt.state.particles, positions):
    _load(sess, particle[0], value)


def _square_problem():
  """f(x) = sum x^2 over a [1] variable initialised at 1."""

  def build():
    x = tf.compat.v1.get_variable("x", shape=[1],
                                  initializer=tf.compat.v1.ones_initializer())
    return tf.reduce_sum(tf.square(x))

  return build


def _np_quadratic_losses(x, w, y):
  """Mean over the batch of ||W x - y||^2, per particle: x [k, b, d]."""
  residual = np.einsum("bij,kbj->kbi", w, x) - y[None]
  return np.mean(np.sum(residual ** 2, axis=-1), axis=-1)


def _np_pso_step(x, v, best_x, best_f, first, losses_fn, r1, r2):
  """Numpy reference of one constriction-PSO iteration."""
  f = losses_fn(x)
  improved = (f < best_f) | first
  best_f = np.where(improved, f, best_f)
  mask = improved.reshape([-1] + [1] * (x.ndim - 1))
  best_x = np.where(mask, x, best_x)
  leader = int(np.argmin(best_f))
  global_x = best_x[leader]
  v = W * v + C1 * r1 * (best_x - x) + C2 * r2 * (global_x[None] - x)
  return dict(x=x + v, v=v, best_x=best_x, best_f=best_f, global_x=global_x,
              global_f=best_f[leader], f=f, improved=improved)


def _read_state(sess, pso_opt):
  state = pso_opt.state
  values = sess.run(dict(
      x=pso_opt.positions[0], v=state.velocities[0],
      best_x=state.best_positions[0], best_f=state.best_losses,
      global_x=state.global_best_position[0],
      global_f=state.global_best_loss, evaluated=state.evaluated))
  return values


def _assert_state(got, want):
  for key in ("x", "v", "best_x", "best_f", "global_x", "global_f"):
    np.testing.assert_allclose(got[key], want[key], rtol=1e-5, atol=1e-6,
                               err_msg=key)


def test_two_steps_match_numpy_pso():
  k, batch, dims = 3, 2, 3
  rng = np.random.RandomState(0)
  x0 = rng.normal(size=[k, batch, dims]).astype(np.float32)
  v0 = (0.3 * rng.normal(size=[k, batch, dims])).astype(np.float32)
  randoms = rng.uniform(size=[4, k, batch, dims]).astype(np.float32)
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(0)
    hook = _FedUniform()
    pso_opt = pso.build(problems.quadratic(batch_size=batch, num_dims=dims),
                        num_particles=k, random_uniform=hook)
    assert len(hook.placeholders) == 2
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      w, y = sess.run(pso_opt.constants)
      _load_positions(sess, pso_opt, x0)
      _load(sess, pso_opt.state.velocities[0], v0)

      def losses_fn(x):
        return _np_quadratic_losses(x.astype(np.float64), w, y)

      # Step 1: the starting points are evaluated and become the bests.
      losses, _ = sess.run([pso_opt.losses, pso_opt.step],
                           hook.feed(randoms[0], randoms[1]))
      want = _np_pso_step(x0, v0, np.zeros_like(x0), np.full([k], np.inf),
                          True, losses_fn, randoms[0], randoms[1])
      np.testing.assert_allclose(losses, want["f"], rtol=1e-5)
      got = _read_state(sess, pso_opt)
      assert got["evaluated"]
      _assert_state(got, want)

      # Step 2 from a hand-set point: particle 0 thrown far away (no
      # improvement), the others where step 1 left them.
      x1 = got["x"].copy()
      x1[0] = 10.0
      _load_positions(sess, pso_opt, x1)
      sess.run(pso_opt.step, hook.feed(randoms[2], randoms[3]))
      want = _np_pso_step(x1, want["v"], want["best_x"], want["best_f"],
                          False, losses_fn, randoms[2], randoms[3])
      assert not want["improved"][0]
      _assert_state(_read_state(sess, pso_opt), want)


def test_personal_best_needs_strict_improvement():
  with tf.Graph().as_default():
    pso_opt = pso.build(_square_problem(), num_particles=3,
                        random_uniform=_zero_uniform)
    state = pso_opt.state
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      _load_positions(sess, pso_opt, [[1.0], [2.0], [3.0]])
      sess.run(pso_opt.step)
      np.testing.assert_array_equal(sess.run(state.best_losses), [1, 4, 9])
      np.testing.assert_array_equal(sess.run(state.best_positions[0]),
                                    [[1], [2], [3]])
      # A tie (particle 0 at -1), an improvement, a worse point.
      _load_positions(sess, pso_opt, [[-1.0], [1.5], [4.0]])
      sess.run(pso_opt.step)
      np.testing.assert_array_equal(sess.run(state.best_losses),
                                    [1, 2.25, 9])
      np.testing.assert_array_equal(sess.run(state.best_positions[0]),
                                    [[1], [1.5], [3]])
      # The global best is the best personal best (+1), not particle 0's
      # current point (-1) with the same loss.
      np.testing.assert_array_equal(
          sess.run(state.global_best_position[0]), [1.0])
      assert sess.run(state.global_best_loss) == 1.0
      # Zero velocity and zero random factors: nobody moved.
      np.testing.assert_array_equal(sess.run(pso_opt.positions[0]),
                                    [[-1], [1.5], [4]])
      # Particle 2 now improves and becomes the leader.
      _load_positions(sess, pso_opt, [[-1.0], [1.5], [0.5]])
      sess.run(pso_opt.step)
      np.testing.assert_array_equal(sess.run(state.best_losses),
                                    [1, 2.25, 0.25])
      np.testing.assert_array_equal(
          sess.run(state.global_best_position[0]), [0.5])
      assert sess.run(state.global_best_loss) == 0.25


def test_losses_read_current_positions_and_step_uses_them():
  calls = [0]
  square = _square_problem()

  def counting_build():
    calls[0] += 1
    return square()

  k = 3
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(1)
    pso_opt = pso.build(counting_build, num_particles=k,
                        initial_velocity_stddev=0.5)
    # k draws of the particles, one probe of the loss's shape, then one
    # evaluation per particle, shared by `losses` and `step`; no gradient
    # anywhere.
    assert calls[0] == 2 * k + 1
    graph = tf.compat.v1.get_default_graph()
    assert not [op for op in graph.get_operations()
                if "gradients" in op.name]
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      before = sess.run(pso_opt.positions[0])
      losses, positions, _ = sess.run(
          [pso_opt.losses, pso_opt.positions[0], pso_opt.step])
      np.testing.assert_array_equal(positions, before)
      np.testing.assert_allclose(losses, np.sum(before ** 2, axis=1),
                                 rtol=1e-6)
      after = sess.run(pso_opt.positions[0])
      assert np.all(after != before)
      np.testing.assert_allclose(sess.run(pso_opt.losses),
                                 np.sum(after ** 2, axis=1), rtol=1e-6)
      # Reading does not move the swarm.
      np.testing.assert_array_equal(sess.run(pso_opt.positions[0]), after)


_RASTRIGIN = problems.square_cos(batch_size=8, num_dims=2, mode="test",
                                 init_stddev=0.2)


@pytest.mark.parametrize("make_loss, ratio", [
    (_RASTRIGIN, 0.05),
    (problems.quadratic(batch_size=8, num_dims=3), 0.5),
], ids=["rastrigin", "quadratic"])
def test_hundred_steps_lower_the_best_loss(make_loss, ratio):
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(0)
    pso_opt = pso.build(make_loss, num_particles=8)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      start = sess.run(pso_opt.losses).min()
      history = []
      for _ in range(100):
        sess.run(pso_opt.step)
        history.append(sess.run(pso_opt.state.global_best_loss))
      best = sess.run(pso_opt.state.best_losses)
  # Rastrigin's rows are independent instances, each with its own swarm
  # bests; quadratic's loss is one mean, so one best per particle.
  assert best.shape == ((8, 8) if make_loss is _RASTRIGIN else (8,))
  assert start > 0.5
  assert np.mean(best.min(axis=0)) < ratio * start
  np.testing.assert_array_equal(history[-1], best.min(axis=0))
  # The global best never gets worse.
  assert np.all(np.diff(history, axis=0) <= 0)


def test_reset_draws_a_fresh_instance_and_clears_the_bests():
  k = 4
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(0)
    pso_opt = pso.build(problems.quadratic(batch_size=4, num_dims=3),
                        num_particles=k)
    state = pso_opt.state
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for _ in range(5):
        sess.run(pso_opt.step)
      constants_before = sess.run(pso_opt.constants)
      positions_before = sess.run(pso_opt.positions[0])
      assert np.all(np.isfinite(sess.run(state.best_losses)))
      assert np.any(sess.run(state.velocities[0]) != 0)

      sess.run(pso_opt.reset)
      for before, after in zip(constants_before,
                               sess.run(pso_opt.constants)):
        assert not np.allclose(before, after)
      start = sess.run(pso_opt.positions[0])
      assert not np.allclose(start, positions_before)
      # Fresh draws: distinct particles, near the problem's initial scale.
      assert len({particle.tobytes() for particle in start}) == k
      assert np.abs(start).max() < 0.1
      assert np.all(np.isinf(sess.run(state.best_losses)))
      assert np.isinf(sess.run(state.global_best_loss))
      assert not sess.run(state.evaluated)
      np.testing.assert_array_equal(sess.run(state.velocities[0]), 0)

      # The first step evaluates the new starting points.
      losses, _ = sess.run([pso_opt.losses, pso_opt.step])
      np.testing.assert_array_equal(sess.run(state.best_losses), losses)
      np.testing.assert_array_equal(sess.run(state.best_positions[0]), start)
      assert sess.run(state.global_best_loss) == losses.min()


def _single_point_start(make_loss, seed):
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(seed)
    make_loss()
    variables = tf.compat.v1.global_variables()
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      return {v.name: sess.run(v) for v in variables}


def test_first_particle_starts_at_the_single_point_start():
  make_loss = problems.quadratic(batch_size=4, num_dims=3)
  single = _single_point_start(make_loss, seed=5)
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(5)
    pso_opt = pso.build(make_loss, num_particles=4)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      positions = sess.run(pso_opt.positions[0])
      w, y = sess.run(pso_opt.constants)
  np.testing.assert_array_equal(positions[0], single["x:0"])
  np.testing.assert_array_equal(w, single["w:0"])
  np.testing.assert_array_equal(y, single["y:0"])
  assert not np.array_equal(positions[1], positions[0])


def test_swarm_starts_where_the_learned_swarm_starts():
  make_loss = problems.quadratic(batch_size=2, num_dims=3)
  k = 4
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(3)
    optimizer = meta.MetaOptimizer(num_particles=k)
    _, _, _, _, _, constants = optimizer.meta_loss(make_loss, 1)
    starts = [v for v in tf.compat.v1.global_variables()
              if v.name.split("/")[-1] == "x:0"]
    assert len(starts) == k
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      learned = np.stack(sess.run(starts))
      learned_constants = sess.run(constants)
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(3)
    pso_opt = pso.build(make_loss, num_particles=k)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      ours = sess.run(pso_opt.positions[0])
      our_constants = sess.run(pso_opt.constants)
  np.testing.assert_array_equal(ours, learned)
  for a, b in zip(our_constants, learned_constants):
    np.testing.assert_array_equal(a, b)


def test_initial_velocity_moves_a_collapsed_swarm():
  # simple_multi_optimizer starts every particle at 1: a swarm with zero
  # velocity never moves; initial velocities make it search.
  make_loss = problems.simple_multi_optimizer(num_dims=2)
  k = 6
  for stddev in (0.0, 0.5):
    with tf.Graph().as_default():
      tf.compat.v1.set_random_seed(0)
      pso_opt = pso.build(make_loss, num_particles=k,
                          initial_velocity_stddev=stddev)
      assert [p.shape.as_list() for p in pso_opt.positions] == [[k], [k]]
      with tf.compat.v1.Session() as sess:
        sess.run(tf.compat.v1.global_variables_initializer())
        velocity = sess.run(pso_opt.state.velocities[0])
        for _ in range(30):
          sess.run(pso_opt.step)
        best = sess.run(pso_opt.state.global_best_loss)
    if stddev == 0.0:
      np.testing.assert_array_equal(velocity, 0)
      assert best == 2.0
    else:
      assert 0.1 < np.std(velocity) < 2.0
      assert best < 0.5


def test_result_unpacks_to_five():
  with tf.Graph().as_default():
    pso_opt = pso.build(problems.simple(), num_particles=2)
    reset, step, losses, positions, constants = pso_opt
    assert isinstance(reset, tf.Operation) and isinstance(step, tf.Operation)
    assert losses.shape.as_list() == [2]
    assert [p.shape.as_list() for p in positions] == [[2]]
    assert constants == []
    assert len(pso_opt.state.particles) == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_particles=0), "PSO num_particles must be a positive integer"),
    (dict(num_particles=2.5), "PSO num_particles must be a positive integer"),
    (dict(num_particles=True), "PSO num_particles must be a positive integer"),
    (dict(inertia="fast"),
     "PSO inertia must be a finite number >= 0, got 'fast'"),
    (dict(social=float("nan")),
     "PSO social must be a finite number >= 0, got nan"),
    # Negative constants push particles apart: a blow-up, not PSO.
    (dict(inertia=-5.0), "PSO inertia must be >= 0, got -5.0"),
    (dict(cognitive=-1.0),
     "PSO cognitive must be >= 0, got -1.0"),
    (dict(initial_velocity_stddev=-1.0),
     "PSO initial_velocity_stddev must be >= 0, got -1.0"),
])
def test_bad_options_are_rejected(kwargs, message):
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match=message):
      pso.build(problems.simple(), **kwargs)


def test_problem_without_trainable_variables_is_rejected():
  def build():
    c = tf.compat.v1.get_variable("c", shape=[], trainable=False)
    return tf.square(c)

  with tf.Graph().as_default():
    with pytest.raises(ValueError, match="no trainable variables"):
      pso.build(build)


def _rows_problem():
  """Two independent 1-d instances: one [2, 1] variable, f = x^2 per row."""

  def build():
    x = tf.compat.v1.get_variable("x", shape=[2, 1],
                                  initializer=tf.compat.v1.ones_initializer())
    return tf.reduce_sum(tf.square(x), axis=1)

  return build


def test_each_batch_row_has_its_own_leader():
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    pso_opt = pso.build(_rows_problem(), num_particles=2,
                        random_uniform=_zero_uniform)
    sess.run(tf.compat.v1.global_variables_initializer())
    # Particle 0 is best on row 0, particle 1 on row 1.
    _load_positions(sess, pso_opt, [[[0.5], [3.0]], [[2.0], [-1.0]]])
    losses, _ = sess.run([pso_opt.losses, pso_opt.step])
    state = pso_opt.state
    np.testing.assert_allclose(losses, [(0.25 + 9.0) / 2, (4.0 + 1.0) / 2])
    np.testing.assert_array_equal(sess.run(state.best_losses),
                                  [[0.25, 9.0], [4.0, 1.0]])
    np.testing.assert_array_equal(sess.run(state.global_best_loss),
                                  [0.25, 1.0])
    np.testing.assert_array_equal(
        sess.run(state.global_best_position[0]), [[0.5], [-1.0]])
