"""Tests for l2l/core/interception.py: swapping a problem's variables."""

import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

from l2l.core import interception


def _get_variable_problem():
  """||w x - y||^2 with x trainable and w, y the instance (get_variable)."""
  def build():
    x = tf.compat.v1.get_variable("x", initializer=[1.0, 2.0])
    w = tf.compat.v1.get_variable("w", initializer=[3.0, -1.0],
                                  trainable=False)
    y = tf.compat.v1.get_variable("y", initializer=[0.5, 0.5],
                                  trainable=False)
    return tf.reduce_sum(tf.square(w * x - y))
  return build


def _sonnet_problem():
  """A Sonnet 2 linear layer (tf.Variable) on a fixed non-trainable input."""
  def build():
    data = tf.Variable([[1.0, 2.0]], trainable=False, name="data")
    linear = snt.Linear(1, name="lin", w_init=tf.constant_initializer(0.5),
                        b_init=tf.constant_initializer(0.25))
    return tf.reduce_sum(linear(data))
  return build


def test_is_trainable_unless_explicitly_false():
  assert interception.is_trainable({})
  assert interception.is_trainable({"trainable": None})
  assert interception.is_trainable({"trainable": True})
  assert not interception.is_trainable({"trainable": False})


def test_get_variables_of_a_get_variable_problem(sess):
  variables, constants = interception.get_variables(_get_variable_problem())
  assert [interception.variable_name(v) for v in variables] == ["x"]
  assert [interception.variable_name(c) for c in constants] == ["w", "y"]
  # Every variable is created non-trainable: meta-training never moves it.
  assert not tf.compat.v1.trainable_variables()
  sess.run(tf.compat.v1.global_variables_initializer())
  np.testing.assert_array_equal(sess.run(variables[0]), [1.0, 2.0])


def test_get_variables_of_a_sonnet2_problem(sess):
  variables, constants = interception.get_variables(_sonnet_problem())
  assert [interception.variable_name(v) for v in variables] == ["lin/w",
                                                                  "lin/b"]
  assert [interception.variable_name(c) for c in constants] == ["data"]
  assert not tf.compat.v1.trainable_variables()
  sess.run(tf.compat.v1.global_variables_initializer())
  w, b = sess.run(variables)
  np.testing.assert_array_equal(w, [[0.5], [0.5]])
  np.testing.assert_array_equal(b, [0.25])


def test_get_variables_with_constants_shares_the_instance(sess):
  build = _get_variable_problem()
  x, constants = interception.get_variables(build)
  second_x, second_constants = interception.get_variables(build, constants)
  assert second_constants == constants
  assert len(second_x) == 1 and second_x[0] is not x[0]
  # Only the new start is a new variable: x, w, y, then the second x.
  assert len(tf.compat.v1.global_variables()) == 4


def test_make_with_custom_variables_replays_in_creation_order(sess):
  build = _get_variable_problem()
  _, constants = interception.get_variables(build)
  loss = interception.make_with_custom_variables(
      build, [tf.constant([2.0, 0.0])], constants)
  sess.run(tf.compat.v1.global_variables_initializer())
  # (3 * 2 - 0.5)^2 + (-1 * 0 - 0.5)^2 = 30.25 + 0.25.
  assert sess.run(loss) == pytest.approx(30.5)
  assert len(tf.compat.v1.global_variables()) == 3


def test_make_with_custom_variables_on_a_sonnet2_problem(sess):
  build = _sonnet_problem()
  _, constants = interception.get_variables(build)
  loss = interception.make_with_custom_variables(
      build, [tf.constant([[1.0], [-1.0]]), tf.constant([3.0])], constants)
  sess.run(tf.compat.v1.global_variables_initializer())
  # 1 * 1 + 2 * -1 + 3.
  assert sess.run(loss) == pytest.approx(2.0)


def test_make_with_custom_variables_refuses_extra_variables(graph):
  del graph  # The fresh default graph.
  calls = [0]

  def build():
    calls[0] += 1
    variables = [tf.compat.v1.get_variable("x{}".format(i), initializer=1.0)
                 for i in range(calls[0])]
    return tf.add_n(variables)

  interception.get_variables(build)
  with pytest.raises(ValueError, match="created more trainable variables "
                     r"than on its first call \(1\)"):
    interception.make_with_custom_variables(build, [tf.constant(1.0)])


def test_wrap_variable_creation_intercepts_each_creation_once(graph):
  del graph  # The fresh default graph.
  seen = []

  def custom_getter(getter, **kwargs):
    seen.append(kwargs["name"])
    return getter(**kwargs)

  def build():
    tf.compat.v1.get_variable("a", initializer=1.0)
    tf.Variable(2.0, name="b")
    return 7

  assert interception.wrap_variable_creation(build, custom_getter) == 7
  assert seen == ["a", "b"]


def _siamese_problem():
  """One layer, its weight shared by two calls (AUTO_REUSE), on 2 inputs."""
  def layer(inputs):
    with tf.compat.v1.variable_scope("shared",
                                     reuse=tf.compat.v1.AUTO_REUSE):
      w = tf.compat.v1.get_variable("w", initializer=[1.0, 1.0])
    return tf.reduce_sum(w * inputs)

  def build():
    return tf.square(layer(tf.constant([1.0, 2.0])) - 1.0) + tf.square(
        layer(tf.constant([3.0, 0.0])) - 2.0)
  return build


def test_a_reused_variable_is_one_variable_and_gets_one_tensor(sess):
  build = _siamese_problem()
  x, _ = interception.get_variables(build)
  assert [interception.variable_name(v) for v in x] == ["shared/w"]
  # Both calls of the layer see the one tensor handed in.
  loss = interception.make_with_custom_variables(build,
                                                 [tf.constant([0.5, 0.25])])
  sess.run(tf.compat.v1.global_variables_initializer())
  # (0.5 + 0.5 - 1)^2 + (1.5 - 2)^2.
  assert sess.run(loss) == pytest.approx(0.25)


def test_a_name_taken_without_reuse_is_still_refused(graph):
  del graph  # The fresh default graph.

  def build():
    tf.compat.v1.get_variable("x", initializer=1.0)
    return tf.compat.v1.get_variable("x", initializer=2.0)

  with pytest.raises(ValueError, match="Variable x already exists"):
    interception.get_variables(build)


def test_a_partitioned_variable_is_refused_by_name(graph):
  del graph  # The fresh default graph.

  def build():
    return tf.reduce_sum(tf.compat.v1.get_variable(
        "parts", [4, 2],
        partitioner=tf.compat.v1.fixed_size_partitioner(2)))

  with pytest.raises(ValueError) as error:
    interception.get_variables(build)
  assert str(error.value) == (
      "Variable parts is partitioned (get_variable's partitioner): an "
      "optimizee variable must be whole; create it without a partitioner.")


def test_a_trainable_variable_made_outside_build_is_refused(graph):
  # Made in make_problem, outside build(): never swapped, so a learned
  # optimizer would leave it while a baseline moved it.
  del graph
  outside = tf.compat.v1.get_variable("x_out", [3])
  frozen = tf.compat.v1.get_variable("data", [3], trainable=False)

  def build():
    y = tf.compat.v1.get_variable("y", [3])
    return tf.reduce_sum(tf.square(y)) + tf.reduce_sum(frozen)

  # Not read by the loss, or not trainable: nothing to refuse.
  variables, _ = interception.get_variables(build)
  assert [v.name for v in variables] == ["y:0"]

  def build_reading_it():
    y = tf.compat.v1.get_variable("z", [3])
    return tf.reduce_sum(tf.square(y)) + 100.0 * tf.reduce_sum(outside)

  with pytest.raises(ValueError, match=(
      r"The loss reads trainable variables x_out that the problem's build\(\) "
      r"did not create: a learned optimizer steps only")):
    interception.get_variables(build_reading_it)
