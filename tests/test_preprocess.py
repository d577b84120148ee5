"""Tests for preprocess.py: LogAndSign and Clamp against numpy."""

import os
import sys

import numpy as np
import pytest
import tensorflow as tf

import commands
import preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("k", [0, -5, float("nan"), "5", None])
def test_log_and_sign_refuses_a_k_it_cannot_scale_by(k):
  # k = 0 divided log|g| by zero; a negative k flipped the log half.
  with pytest.raises(ValueError, match=r"LogAndSign k must be a finite "
                     r"number > 0, got "):
    preprocess.LogAndSign(k)


def test_log_and_sign_matches_formula(sess, ref):
  g = np.array([0.0, 1e-30, 1e-8, -1e-3, 0.5, -2.0, 1e30, -1e30], np.float32)
  out = sess.run(preprocess.LogAndSign(5)(tf.constant(g)))
  # As DeepMind's: the log half then the sign half on the last axis.
  assert out.shape == (16,)
  np.testing.assert_allclose(out, ref.log_and_sign(g, 5), rtol=1e-6)
  log, sign = out[:8], out[8:]
  # By hand: tiny magnitudes clamp to -1, huge ones are log/k; signs saturate.
  # log(1e-3) / 5 = -1.38 clamps too.
  np.testing.assert_allclose(log[[0, 1, 2, 3]], -1.0)
  np.testing.assert_allclose(sign[0], 0.0)
  np.testing.assert_allclose(log[[4, 5]], np.log([0.5, 2.0]) / 5, rtol=1e-5)
  np.testing.assert_allclose(log[6:], np.log(1e30) / 5, rtol=1e-6)
  np.testing.assert_allclose(
      sign[[2, 3, 4, 5, 6, 7]],
      [1e-8 * np.exp(5), -1e-3 * np.exp(5), 1, -1, 1, -1], rtol=1e-5)


def test_log_and_sign_concatenates_on_the_last_axis(sess, ref):
  g = np.array([[0.5, -2.0, 1e-3], [3.0, -1e-9, 0.0]], np.float32)
  out = sess.run(preprocess.LogAndSign(2)(tf.constant(g)))
  assert out.shape == (2, 6)
  np.testing.assert_allclose(out[:, :3], np.maximum(
      np.log(np.abs(g) + np.finfo(np.float32).eps) / 2, -1), rtol=1e-6)
  np.testing.assert_allclose(out[:, 3:], np.clip(g * np.exp(2), -1, 1),
                             rtol=1e-6)


def test_preprocess_builds_in_a_graph_when_imported_alone(tmp_path):
  # A process that imports only TensorFlow, then preprocess, and builds
  # in a v1 graph: Sonnet 2 would refuse unless preprocess prepared it on
  # import.
  script = ("import tensorflow as tf\n"
            "import preprocess\n"
            "with tf.Graph().as_default(), tf.compat.v1.Session() as s:\n"
            "  out = preprocess.LogAndSign(5)(tf.constant([[0.0]]))\n"
            "  print(s.run(out).tolist())\n")
  result = commands.run([sys.executable, "-c", script], cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.strip().splitlines()[-1] == "[[-1.0, 0.0]]"


@pytest.mark.parametrize("min_value, max_value, expected", [
    (-1.0, None, [-1.0, -0.5, 0.0, 2.0, 7.0]),
    (None, 1.5, [-3.0, -0.5, 0.0, 1.5, 1.5]),
    (-0.5, 1.5, [-0.5, -0.5, 0.0, 1.5, 1.5]),
    (None, None, [-3.0, -0.5, 0.0, 2.0, 7.0]),
])
def test_clamp(sess, min_value, max_value, expected):
  clamp = preprocess.Clamp(min_value=min_value, max_value=max_value)
  out = sess.run(clamp(tf.constant([-3.0, -0.5, 0.0, 2.0, 7.0])))
  np.testing.assert_array_equal(out, expected)
