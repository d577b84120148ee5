"""Tests for l2l/core/meta_objective.py."""

import numpy as np
import pytest
import tensorflow as tf

from l2l.core import meta_objective


def _value_and_gradient(losses, objective):
  with tf.Graph().as_default():
    fx_history = tf.constant(losses, tf.float32)
    loss = meta_objective.meta_objective(fx_history, objective)
    (gradient,) = tf.gradients(loss, [fx_history])
    with tf.compat.v1.Session() as sess:
      return sess.run([loss, gradient])


def test_sum_adds_the_losses_and_weighs_every_step_alike():
  value, gradient = _value_and_gradient([3.0, 1.0, 0.5], "sum")
  assert value == pytest.approx(4.5)
  np.testing.assert_allclose(gradient, [1.0, 1.0, 1.0])


def test_log_adds_the_logs_so_a_small_loss_weighs_more():
  value, gradient = _value_and_gradient([3.0, 1.0, 0.5], "log")
  assert value == pytest.approx(np.log(1.5), rel=1e-6)
  # d log f / d f = 1 / f: halving 0.5 is worth as much as halving 3.
  np.testing.assert_allclose(gradient, [1 / 3.0, 1.0, 2.0], rtol=1e-6)


def test_log_floors_zero_and_negative_losses_without_nans():
  value, gradient = _value_and_gradient([0.0, -1.0, 1e-12, 1.0], "log")
  assert value == pytest.approx(3 * np.log(meta_objective.LOG_FLOOR),
                                rel=1e-6)
  np.testing.assert_allclose(gradient, [0.0, 0.0, 0.0, 1.0])


def test_an_unknown_objective_names_the_known_ones():
  with pytest.raises(ValueError, match="Unknown meta-objective 'mean': "
                     "expected one of sum, log."):
    meta_objective.check("mean")
  with tf.Graph().as_default(), pytest.raises(ValueError, match="'mean'"):
    meta_objective.meta_objective(tf.ones([3]), "mean")
