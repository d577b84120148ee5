"""Tests for l2l/core/unroll.py: persistent state and optimizee gradients."""

import numpy as np
import pytest
import tensorflow as tf

from l2l.core import unroll
import networks


def test_nested_variable_and_assign(sess):
  variables = unroll.nested_variable((tf.zeros([2]), [tf.ones([])]),
                                     name="state")
  assert isinstance(variables, tuple) and isinstance(variables[1], list)
  assert not tf.compat.v1.trainable_variables()
  assign = unroll.nested_assign(variables, (tf.constant([3.0, 4.0]),
                                            [tf.constant(5.0)]))
  sess.run(tf.compat.v1.global_variables_initializer())
  first, (second,) = sess.run(variables)
  np.testing.assert_array_equal(first, [0.0, 0.0])
  assert second == 1.0
  sess.run(assign)
  first, (second,) = sess.run(variables)
  np.testing.assert_array_equal(first, [3.0, 4.0])
  assert second == 5.0


def test_nested_variable_can_be_trainable(graph):
  del graph  # The fresh default graph.
  unroll.nested_variable([tf.zeros([3])], trainable=True)
  assert len(tf.compat.v1.trainable_variables()) == 1


def test_nested_assign_refuses_different_structures(graph):
  del graph  # The fresh default graph.
  variables = unroll.nested_variable((tf.zeros([2]), tf.zeros([])))
  with pytest.raises(ValueError, match="different lengths"):
    unroll.nested_assign(variables, (tf.zeros([2]),))


def test_gradients_are_dense_and_exact(sess):
  x = tf.constant([1.0, -2.0])
  y = tf.constant(3.0)
  loss = tf.reduce_sum(tf.square(x)) * y
  grad_x, grad_y = unroll.gradients(loss, [x, y], ["x", "y"])
  np.testing.assert_allclose(sess.run(grad_x), [6.0, -12.0])
  assert sess.run(grad_y) == pytest.approx(5.0)


def test_gradients_name_a_variable_created_outside_build(graph):
  del graph  # The fresh default graph.
  # A variable made outside build() is never swapped for the unrolled
  # tensor, so the loss does not depend on that tensor.
  outside = tf.Variable(1.0, name="outside")
  swapped = tf.constant(2.0)
  used = tf.constant(3.0)
  loss = tf.square(outside) + used
  with pytest.raises(ValueError, match="does not depend on the optimizee "
                     "variables outside: either it does not use them.*"
                     "inside build"):
    unroll.gradients(loss, [swapped, used], ["outside", "used"])


def test_gradients_say_an_integer_variable_has_none(graph):
  del graph  # The fresh default graph.
  # A step counter left trainable: the loss uses it, but has no gradient.
  counter = tf.constant(3)
  x = tf.constant(2.0)
  loss = tf.square(x) * tf.cast(counter, tf.float32)
  with pytest.raises(ValueError) as error:
    unroll.gradients(loss, [x, counter], ["x", "step"])
  assert str(error.value) == (
      "The optimizee variables step are not floating-point, so the loss has "
      "no gradient for them; create such a variable (a step counter, say) "
      "with trainable=False.")


def test_optimizee_gradients_stop_gradient_by_default(sess):
  x = tf.constant(2.0)
  (grad,) = unroll.optimizee_gradients(x ** 3, [x], ["x"], False)
  assert sess.run(grad) == pytest.approx(12.0)
  # Nothing flows back through the stopped gradient 3x^2.
  assert tf.gradients(grad, [x]) == [None]


def test_optimizee_gradients_with_second_derivatives(sess):
  x = tf.constant(2.0)
  (grad,) = unroll.optimizee_gradients(x ** 3, [x], ["x"], True)
  (second,) = tf.gradients(grad, [x])
  # d/dx of 3x^2 is 6x.
  assert sess.run([grad, second]) == pytest.approx([12.0, 12.0])


def test_net_updates_of_an_sgd_net(sess):
  net = networks.factory("Sgd", {"learning_rate": 0.5})
  grads = [tf.constant([2.0, 4.0]), tf.constant([-1.0])]
  state = [net.initial_state_for_inputs(g) for g in grads]
  deltas, next_state = unroll.net_updates(net, grads, state)
  assert len(next_state) == 2
  first, second = sess.run(deltas)
  np.testing.assert_allclose(first, [-1.0, -2.0])
  np.testing.assert_allclose(second, [0.5])
  assert unroll.net_updates(net, [], []) == ([], [])


def test_net_updates_step_a_float64_variable_in_float32(sess):
  net = networks.factory("Sgd", {"learning_rate": 0.1})
  grads = [tf.constant([2.0, 1.0 / 3.0], tf.float64), tf.constant([4.0])]
  state = [net.initial_state_for_inputs(tf.zeros([2])),
           net.initial_state_for_inputs(grads[1])]
  deltas, _ = unroll.net_updates(net, grads, state)
  # Each update has its gradient's type; the float64 one is the float32
  # step, cast (so 1/3 is rounded to float32 first).
  assert [d.dtype for d in deltas] == [tf.float64, tf.float32]
  first, second = sess.run(deltas)
  np.testing.assert_array_equal(
      first, (np.float32(-0.1) * np.float32([2.0, 1.0 / 3.0])).astype(
          np.float64))
  np.testing.assert_allclose(second, [-0.4])


def test_loop_updates_of_a_joined_lstm_cast_each_variable_back(sess):
  net = networks.factory("CoordinateWiseDeepLSTM", {"layers": (3,)})
  grads = [tf.constant([[0.5, -1.0]], tf.float64), tf.constant([2.0])]
  shapes = [g.shape for g in grads]
  states = [net.initial_state_for_inputs(tf.zeros(s)) for s in shapes]
  joined = unroll.loop_state(net, states, True)
  deltas, _ = unroll.loop_updates(net, grads, joined, True)
  single = unroll.loop_updates(
      net, [tf.cast(g, tf.float32) for g in grads], joined, True)[0]
  assert [d.dtype for d in deltas] == [tf.float64, tf.float32]
  sess.run(tf.compat.v1.global_variables_initializer())
  got, expected = sess.run([deltas, single])
  for a, b in zip(got, expected):
    assert a.shape == b.shape
    np.testing.assert_array_equal(a, b.astype(a.dtype))
  assert np.abs(expected[0]).max() > 0
