"""Tests for graph_mode.py: Sonnet 2 modules inside TF-1.x graphs."""

import subprocess
import sys

import numpy as np
import sonnet as snt
import tensorflow as tf

from l2l.core import graph_mode  # pylint: disable=unused-import


def test_a_sonnet_module_builds_and_runs_in_a_v1_graph():
  with tf.Graph().as_default():
    linear = snt.Linear(2, w_init=tf.ones_initializer(),
                        b_init=tf.zeros_initializer())
    out = linear(tf.constant([[1.0, 2.0, 3.0]]))
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      np.testing.assert_array_equal(sess.run(out), [[6.0, 6.0]])


def test_without_the_probe_sonnet_refuses_graph_mode():
  # The fact graph_mode.py works around, checked in a process of its own.
  code = ("import tensorflow as tf, sonnet as snt\n"
          "with tf.Graph().as_default():\n"
          "  try:\n"
          "    snt.Linear(2)\n"
          "  except AssertionError as e:\n"
          "    print('refused:', e)\n")
  done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=120, check=False)
  assert "refused: Sonnet v2 requires TensorFlow 2" in done.stdout, (
      done.stdout + done.stderr[-1000:])
