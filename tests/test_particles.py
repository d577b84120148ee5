"""Tests for l2l/core/particles.py: several points on one instance."""

import numpy as np
import pytest
import tensorflow as tf

from l2l.core import interception
from l2l.core import particles


def _shifted_squares():
  """sum((x - c)^2) per row: x [2, 3] trainable, c [2, 3] the instance."""
  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=[2, 3], initializer=tf.random_normal_initializer())
    c = tf.compat.v1.get_variable(
        "c", initializer=np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]],
                                  np.float32), trainable=False)
    return tf.reduce_sum(tf.square(x - c), axis=1)
  return build


def test_flatten_and_unflatten_round_trip(sess):
  first = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
  second = np.array([[7.0], [8.0]], np.float32)
  flat = particles.flatten([tf.constant(first), tf.constant(second)])
  assert flat.shape.as_list() == [2, 7]
  flat_value = sess.run(flat)
  np.testing.assert_array_equal(flat_value[0], [0, 1, 2, 3, 4, 5, 7])
  np.testing.assert_array_equal(flat_value[1], [6, 7, 8, 9, 10, 11, 8])
  back = sess.run(particles.unflatten(flat, [[2, 2, 3], [2, 1]]))
  np.testing.assert_array_equal(back[0], first)
  np.testing.assert_array_equal(back[1], second)


@pytest.mark.parametrize("x_shape, loss_shape, expected", [
    ([4, 3], [4], True),
    ([4, 3], [], False),
    ([4, 3], [3], False),
    ([12], [12], False),
])
def test_is_per_row(graph, x_shape, loss_shape, expected):
  del graph  # The fresh default graph.
  x = [tf.zeros(x_shape)]
  assert particles.is_per_row(x, tf.zeros(loss_shape)) == expected


def test_is_per_row_needs_one_variable(graph):
  del graph  # The fresh default graph.
  x = [tf.zeros([4, 3]), tf.zeros([4, 3])]
  assert not particles.is_per_row(x, tf.zeros([4]))


def test_draw_particles_count_and_order(sess):
  build = _shifted_squares()
  x, constants = interception.get_variables(build)
  starts = particles.draw_particles(build, x, constants, 3)
  assert len(starts) == 3
  assert starts[0] == x
  assert all(len(start) == 1 for start in starts)
  # Three starts, one shared instance.
  assert len(tf.compat.v1.global_variables()) == 4
  sess.run(tf.compat.v1.global_variables_initializer())
  values = sess.run([start[0] for start in starts])
  assert not np.array_equal(values[0], values[1])
  assert not np.array_equal(values[1], values[2])


def test_one_particle_is_the_first_point(graph):
  del graph  # The fresh default graph.
  build = _shifted_squares()
  x, constants = interception.get_variables(build)
  assert particles.draw_particles(build, x, constants, 1) == [x]


def test_particle_losses_values(sess):
  build = _shifted_squares()
  _, constants = interception.get_variables(build)
  points = [tf.constant([
      [[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]],  # On the instance: loss 0.
      [[1.0, 1.0, 2.0], [1.0, 3.0, 1.0]],  # Off by 1, then by 2.
  ], tf.float32)]
  rows, means = particles.particle_losses(build, points, constants)
  sess.run(tf.compat.v1.global_variables_initializer())
  rows_value, means_value = sess.run([rows, means])
  np.testing.assert_allclose(rows_value, [[0.0, 0.0], [1.0, 4.0]])
  np.testing.assert_allclose(means_value, [0.0, 2.5])


def test_row_losses_of_a_scalar_loss(sess):
  def build():
    x = tf.compat.v1.get_variable("x", initializer=[3.0, 4.0])
    return tf.reduce_sum(tf.square(x))

  _, constants = interception.get_variables(build)
  losses = particles.row_losses(build, [tf.constant([1.0, 2.0])], constants)
  assert losses.shape.as_list() == [1]
  np.testing.assert_allclose(sess.run(losses), [5.0])
