"""Tests for update_rule.py: a saved optimizer's nets and assignment rule."""

import numpy as np
import pytest
import tensorflow as tf

from l2l.dropin import update_rule
import networks


def test_a_learning_rate_is_refused_naming_the_argument():
  update_rule.refuse_learning_rate({}, "LearnedOptimizer")
  for name in ("learning_rate", "lr"):
    with pytest.raises(ValueError, match=name + "=0.1 is not accepted"):
      update_rule.refuse_learning_rate({name: 0.1}, "LearnedOptimizer")


def test_a_directory_without_manifest_holds_the_default_net(tmp_path):
  with tf.Graph().as_default():
    net = networks.factory(**networks.default_config())
    net(tf.zeros([3]), net.initial_state_for_inputs(tf.zeros([3]),
                                                    dtype=tf.float32))
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      networks.save(net, sess, str(tmp_path / "cw.l2l"))
  rule = update_rule.UpdateRule.from_path(str(tmp_path))
  assert sorted(rule.net_configs) == ["cw"]
  variables = [tf.Variable(np.zeros([2, 3], np.float32), name="kernel"),
               tf.Variable(np.zeros([3], np.float32), name="bias")]
  assert rule.net_ids(variables) == ["cw", "cw"]


def test_a_missing_directory_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="is not a directory"):
    update_rule.UpdateRule.from_path(str(tmp_path / "missing"))
