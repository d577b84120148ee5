"""Tests for l2l/core/lstm_stack.py: the fused stack against plain cells."""

import numpy as np
import pytest
import tensorflow as tf

from l2l.core import lstm_stack
from l2l.core import native
import meta
import networks

LAYERS = (5, 4)
WIDTH = 2
OUTPUT = 3
COORDINATES = 7


def _values(seed=0, coordinates=COORDINATES):
  """Random inputs, states, cell weights and output layer, as numpy."""
  rng = np.random.RandomState(seed)
  inputs = rng.randn(coordinates, WIDTH).astype(np.float32)
  state, cells, width = [], [], WIDTH
  for size in LAYERS:
    state.append((rng.randn(coordinates, size).astype(np.float32),
                  rng.randn(coordinates, size).astype(np.float32)))
    cells.append((0.5 * rng.randn(width + size, 4 * size).astype(np.float32),
                  0.5 * rng.randn(4 * size).astype(np.float32)))
    width = size
  output = (rng.randn(width, OUTPUT).astype(np.float32),
            rng.randn(OUTPUT).astype(np.float32))
  return inputs, state, cells, output


def _plain_step(inputs, state, cells, output_layer):
  """The unfused Sonnet 1 cells, coordinate-major, left to tf.gradients."""
  rows, next_state = inputs, []
  for (hidden, cell), (w_gates, b_gates) in zip(state, cells):
    gates = tf.matmul(tf.concat([rows, hidden], 1), w_gates) + b_gates
    i, j, f, o = tf.split(gates, 4, axis=1)
    cell = tf.sigmoid(f + 1.0) * cell + tf.sigmoid(i) * tf.tanh(j)
    rows = tf.sigmoid(o) * tf.tanh(cell)
    next_state.append((rows, cell))
  return tf.matmul(rows, output_layer[0]) + output_layer[1], next_state


def _fused_step(layout, inputs, state, cells, output_layer, recompute=False,
                use_kernel=False):
  """`lstm_stack.step` on coordinate-major tensors, in `layout`."""
  def laid_out(tensor):
    return tensor if layout is lstm_stack.COORDINATE_MAJOR else tf.transpose(
        tensor)
  output, next_state = lstm_stack.step(
      laid_out(inputs), [(laid_out(h), laid_out(c)) for h, c in state],
      cells, output_layer, layout, recompute, use_kernel)
  return laid_out(output), [(laid_out(h), laid_out(c)) for h, c in next_state]


def _tensors(values):
  inputs, state, cells, output = values
  return (tf.constant(inputs), [(tf.constant(h), tf.constant(c))
                                for h, c in state],
          [(tf.constant(w), tf.constant(b)) for w, b in cells],
          (tf.constant(output[0]), tf.constant(output[1])))


def _flat(inputs, state, cells, output):
  return ([inputs] + [t for pair in state for t in pair] +
          [t for pair in cells for t in pair] + list(output))


def _weighted_sum(output, state, seed=1):
  """A scalar that weighs every output and state entry differently."""
  rng = np.random.RandomState(seed)
  total = 0.0
  for tensor in [output] + [t for pair in state for t in pair]:
    total += tf.reduce_sum(tensor * rng.randn(*tensor.shape.as_list()).astype(
        np.float32))
  return total


LAYOUTS = [lstm_stack.FEATURE_MAJOR, lstm_stack.COORDINATE_MAJOR]


@pytest.mark.parametrize("layout", LAYOUTS, ids=["feature", "coordinate"])
def test_forward_equals_the_plain_cells(sess, layout):
  args = _tensors(_values())
  expected = sess.run(_plain_step(*args))
  actual = sess.run(_fused_step(layout, *args))
  np.testing.assert_allclose(actual[0], expected[0], rtol=1e-6, atol=1e-6)
  for got, want in zip(actual[1], expected[1]):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["feature", "coordinate"])
def test_gradient_equals_tf_gradients_of_the_plain_cells(sess, layout):
  args = _tensors(_values())
  flat = _flat(*args)
  expected = tf.gradients(_weighted_sum(*_plain_step(*args)), flat)
  actual = tf.gradients(_weighted_sum(*_fused_step(layout, *args)), flat)
  expected, actual = sess.run([expected, actual])
  assert len(actual) == len(flat) and all(g is not None for g in actual)
  for got, want in zip(actual, expected):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_second_derivatives_equal_the_plain_cells(sess):
  """The hand-written gradient is itself differentiable, as tf's is."""
  args = _tensors(_values())
  flat = _flat(*args)

  def gradient_norm(step):
    grads = tf.gradients(_weighted_sum(*step), flat)
    return tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads])

  expected = tf.gradients(gradient_norm(_plain_step(*args)), flat)
  actual = tf.gradients(
      gradient_norm(_fused_step(lstm_stack.FEATURE_MAJOR, *args)), flat)
  # The output bias does not reach the gradient: None in both.
  assert [g is None for g in actual] == [g is None for g in expected] == [
      False] * (len(flat) - 1) + [True]
  expected, actual = sess.run([expected[:-1], actual[:-1]])
  for got, want in zip(actual, expected):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_stack_without_cells_is_its_output_layer(sess):
  inputs = _values()[0]
  rng = np.random.RandomState(3)
  output = (rng.randn(WIDTH, OUTPUT).astype(np.float32),
            rng.randn(OUTPUT).astype(np.float32))
  args = (tf.constant(inputs), [], [], (tf.constant(output[0]),
                                        tf.constant(output[1])))
  result, state = _fused_step(lstm_stack.FEATURE_MAJOR, *args)
  d_inputs, = tf.gradients(tf.reduce_sum(result), [args[0]])
  assert state == []
  value, d_value = sess.run([result, d_inputs])
  # atol: float32 sums of terms near 1 in another order (the kernel's).
  np.testing.assert_allclose(value, inputs @ output[0] + output[1],
                             rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(
      d_value, np.tile(output[0].sum(1), [COORDINATES, 1]), rtol=1e-6)


def _cw_net():
  return networks.CoordinateWiseDeepLSTM(
      layers=LAYERS, preprocess_name="LogAndSign",
      preprocess_options={"k": 5}, scale=0.1, initializer="random_normal")


def test_joint_call_equals_one_call_per_variable(sess):
  net = _cw_net()
  rng = np.random.RandomState(2)
  gradients = [tf.constant(np.asarray(rng.randn(*shape), np.float32))
               for shape in ([3, 2], [4], [])]
  states = [net.initial_state_for_inputs(g) for g in gradients]
  states = [tf.nest.map_structure(
      lambda t: t + np.asarray(rng.randn(*t.shape), np.float32), s)
            for s in states]
  separate = [net(g, s) for g, s in zip(gradients, states)]
  updates, joint = net.joint_call(gradients, net.join_states(states))
  joint = net.split_state(joint, [g.shape for g in gradients])
  sess.run(tf.compat.v1.global_variables_initializer())
  separate, updates, joint = sess.run([separate, updates, joint])
  for (update, state), got_update, got_state in zip(separate, updates, joint):
    assert got_update.shape == update.shape
    np.testing.assert_allclose(got_update, update, rtol=1e-6, atol=1e-7)
    for got, want in zip(tf.nest.flatten(got_state), tf.nest.flatten(state)):
      np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _two_variable_problem():
  def build():
    a = tf.compat.v1.get_variable(
        "a", shape=[3, 2],
        initializer=tf.compat.v1.random_normal_initializer(seed=3))
    b = tf.compat.v1.get_variable(
        "b", shape=[4], initializer=tf.compat.v1.random_normal_initializer(
            seed=4))
    return tf.reduce_sum(tf.square(a - 1.0)) + tf.reduce_sum(tf.cos(b))
  return build


def test_joint_unroll_equals_single_steps(fresh_session):
  """An unroll of 4 (joint state) follows the 4 single steps (per variable)."""
  config = {"cw": {"net": "CoordinateWiseDeepLSTM", "net_options": {
      "layers": LAYERS, "preprocess_name": "LogAndSign",
      "preprocess_options": {"k": 5}, "scale": 0.1,
      "initializer": "random_normal"}}}
  trajectories = []
  for len_unroll, runs in ((4, 1), (1, 4)):
    with fresh_session() as sess:
      info = meta.MetaOptimizer(**config).meta_loss(_two_variable_problem(),
                                                    len_unroll)
      sess.run(tf.compat.v1.global_variables_initializer())
      for _ in range(runs):
        x, _ = sess.run([info.x, info.update])
      trajectories.append(x)
  for got, want in zip(*trajectories):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_recompute_gives_the_same_gradient(sess):
  args = _tensors(_values())
  flat = _flat(*args)
  grads = []
  for recompute in (False, True):
    result = _fused_step(lstm_stack.FEATURE_MAJOR, *args, recompute=recompute)
    grads.append(tf.gradients(_weighted_sum(*result), flat))
  kept, recomputed = sess.run(grads)
  for got, want in zip(recomputed, kept):
    np.testing.assert_array_equal(got, want)


# The native kernel (l2l/core/native.py): the same results as the ops.
# 300 coordinates are two whole blocks of the kernel's 128 and a part.
@pytest.mark.parametrize("coordinates", [1, COORDINATES, 300])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["feature", "coordinate"])
def test_kernel_forward_equals_the_plain_cells(sess, kernel, layout,
                                               coordinates):
  del kernel
  args = _tensors(_values(coordinates=coordinates))
  step = _fused_step(layout, *args, use_kernel=True)
  assert "L2lLstmStack" in {op.type for op in tf.compat.v1.get_default_graph()
                            .get_operations()}
  expected, actual = sess.run([_plain_step(*args), step])
  np.testing.assert_allclose(actual[0], expected[0], rtol=1e-6, atol=1e-6)
  for got, want in zip(actual[1], expected[1]):
    for got_part, want_part in zip(got, want):
      np.testing.assert_allclose(got_part, want_part, rtol=1e-6, atol=1e-6)


def _kernel_ops():
  return sorted(op.type for op in tf.compat.v1.get_default_graph()
                .get_operations() if op.type.startswith("L2lLstmStack"))


# The gradient kernel sums the weights' gradients over chunks of blocks:
# 9,000 coordinates are 71 blocks of 128 in its at most 64 chunks.
@pytest.mark.parametrize("coordinates", [1, 300, 9000])
@pytest.mark.parametrize("layout", LAYOUTS, ids=["feature", "coordinate"])
def test_kernel_gradient_equals_tf_gradients_of_the_plain_cells(
    sess, kernel, layout, coordinates):
  del kernel
  args = _tensors(_values(coordinates=coordinates))
  flat = _flat(*args)
  expected = tf.gradients(_weighted_sum(*_plain_step(*args)), flat)
  actual = tf.gradients(_weighted_sum(*_fused_step(
      layout, *args, use_kernel=True)), flat)
  # One op forward, one backward: no gate activations kept between them.
  assert _kernel_ops() == ["L2lLstmStack", "L2lLstmStackGrad"]
  expected, actual = sess.run([expected, actual])
  for got, want in zip(actual, expected):
    # Sums over thousands of coordinates, in another order.
    np.testing.assert_allclose(got, want, rtol=1e-5,
                               atol=1e-5 * max(1.0, coordinates / 300))


def test_kernel_gradient_is_the_same_whatever_the_threads(kernel):
  """Its sums do not depend on how blocks fall on threads: training
  repeats exactly."""
  del kernel
  results = []
  for threads in (1, 2, 2):
    with tf.Graph().as_default():
      args = _tensors(_values(coordinates=20000))
      flat = _flat(*args)
      grads = tf.gradients(_weighted_sum(*_fused_step(
          lstm_stack.FEATURE_MAJOR, *args, use_kernel=True)), flat)
      config = tf.compat.v1.ConfigProto(
          intra_op_parallelism_threads=threads,
          inter_op_parallelism_threads=1)
      with tf.compat.v1.Session(config=config) as session:
        results.append(session.run(grads))
  for other in results[1:]:
    for got, want in zip(other, results[0]):
      np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("layout", LAYOUTS, ids=["feature", "coordinate"])
def test_kernel_step_and_gradient_of_no_coordinates(sess, kernel, layout):
  del kernel
  args = _tensors(_values(coordinates=0))
  flat = _flat(*args)
  output, state = _fused_step(layout, *args, use_kernel=True)
  grads = tf.gradients(_weighted_sum(output, state), flat)
  output, grads = sess.run([output, grads])
  assert output.shape == (0, OUTPUT)
  for got, tensor in zip(grads, flat):
    assert got.shape == tuple(tensor.shape.as_list())
    np.testing.assert_array_equal(got, 0.0)


def test_kernel_gradient_of_the_output_layer_alone(sess, kernel):
  del kernel
  inputs = tf.constant(_values(coordinates=300)[0])
  rng = np.random.RandomState(3)
  output = (tf.constant(rng.randn(WIDTH, OUTPUT).astype(np.float32)),
            tf.constant(rng.randn(OUTPUT).astype(np.float32)))
  flat = [inputs] + list(output)
  result, _ = _fused_step(lstm_stack.COORDINATE_MAJOR, inputs, [], [],
                          output, use_kernel=True)
  weights = np.random.RandomState(2).randn(300, OUTPUT).astype(np.float32)
  actual = tf.gradients(tf.reduce_sum(result * weights), flat)
  expected = tf.gradients(tf.reduce_sum(
      (tf.matmul(inputs, output[0]) + output[1]) * weights), flat)
  for got, want in zip(*sess.run([actual, expected])):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_kernel_refuses_a_state_of_the_wrong_shape(sess, kernel):
  inputs, state, cells, output = _tensors(_values())
  biased = [tf.concat([w, b[None]], 0) for w, b in cells]
  flat_state = [t for pair in state for t in pair]
  flat_state[1] = flat_state[1][:-1]
  result = kernel.l2l_lstm_stack(inputs, flat_state, biased, *output,
                                 feature_major=False)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"layer 0's state has shape \[6,5\], expected "
                     r"\[7,5\]"):
    sess.run(result)


def test_kernel_stack_without_cells_is_its_output_layer(sess, kernel):
  del kernel
  inputs = _values()[0]
  output = (np.full([WIDTH, OUTPUT], 0.5, np.float32),
            np.arange(OUTPUT, dtype=np.float32))
  result, _ = _fused_step(lstm_stack.COORDINATE_MAJOR, tf.constant(inputs),
                          [], [], (tf.constant(output[0]),
                                   tf.constant(output[1])), use_kernel=True)
  np.testing.assert_allclose(sess.run(result),
                             inputs @ output[0] + output[1], rtol=1e-6,
                             atol=1e-6)


def test_a_nets_step_on_one_variable_runs_the_kernel(sess, kernel,
                                                     monkeypatch):
  del kernel
  net = _cw_net()
  gradient = tf.constant(np.random.RandomState(4).randn(30, 11).astype(
      np.float32))
  state = net.initial_state_for_inputs(gradient, dtype=tf.float32)
  with_kernel = net(gradient, state)
  monkeypatch.setenv(native.ENV_VAR, "0")
  with_ops = net(gradient, state)
  kernels = [op for op in tf.compat.v1.get_default_graph().get_operations()
             if op.type == "L2lLstmStack"]
  assert len(kernels) == 1
  sess.run(tf.compat.v1.global_variables_initializer())
  got, want = sess.run([with_kernel, with_ops])
  np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-7)
  for got_pair, want_pair in zip(got[1], want[1]):
    for got_part, want_part in zip(got_pair, want_pair):
      np.testing.assert_allclose(got_part, want_part, rtol=1e-5, atol=1e-6)


def test_a_float64_step_runs_as_ops_even_when_the_kernel_is_asked_for(
    sess, kernel):
  del kernel
  values = _values()
  args = (tf.constant(values[0].astype(np.float64)),
          [(tf.constant(h.astype(np.float64)), tf.constant(c.astype(
              np.float64))) for h, c in values[1]],
          [(tf.constant(w.astype(np.float64)), tf.constant(b.astype(
              np.float64))) for w, b in values[2]],
          (tf.constant(values[3][0].astype(np.float64)),
           tf.constant(values[3][1].astype(np.float64))))
  step = _fused_step(lstm_stack.COORDINATE_MAJOR, *args, use_kernel=True)
  assert "L2lLstmStack" not in {
      op.type for op in tf.compat.v1.get_default_graph().get_operations()}
  expected, actual = sess.run([_plain_step(*args), step])
  assert actual[0].dtype == np.float64
  np.testing.assert_allclose(actual[0], expected[0], rtol=1e-12)
