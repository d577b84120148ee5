"""Gradient preprocessing modules applied before a learned optimizer's RNN."""

import numpy as np
import sonnet as snt
import tensorflow as tf

from l2l import checks
# Lets this module's classes be built inside v1 graphs even when it is the
# first Sonnet user imported.
from l2l.core import graph_mode  # pylint: disable=unused-import


class Clamp(snt.Module):
  """Clips its input to `[min_value, max_value]`; either bound may be None."""

  def __init__(self, min_value=None, max_value=None, name="clamp"):
    super().__init__(name=name)
    self._min = min_value
    self._max = max_value

  def __call__(self, inputs):
    output = inputs
    if self._min is not None:
      output = tf.maximum(output, self._min)
    if self._max is not None:
      output = tf.minimum(output, self._max)
    return output


class LogAndSign(snt.Module):
  """The log-magnitude and sign encoding of Andrychowicz et al. (2016).

  For a gradient g of shape [..., d] the output is
  `[max(log(|g| + eps) / k, -1), clip(g * exp(k), -1, 1)]` concatenated on the
  last axis, [..., 2d], as DeepMind's: the log half, then the sign half. It
  keeps gradients of very different magnitudes in a range an LSTM can use.
  """

  def __init__(self, k, name="preprocess_log"):
    """Creates the preprocessing.

    Args:
      k: the scale of the log half (log|g| / k) and of the sign half
        (g exp(k)), a finite number > 0; DeepMind's nets use 5.
      name: the module's name.

    Raises:
      ValueError: for another k (0 divides by zero, a negative one flips
        the log half).
    """
    if not (checks.is_finite_number(k) and k > 0):
      raise ValueError("LogAndSign k must be a finite number > 0, got "
                       "{!r}.".format(k))
    super().__init__(name=name)
    self._k = k
    self._clamp_log = Clamp(min_value=-1.0)
    self._clamp_sign = Clamp(min_value=-1.0, max_value=1.0)

  def __call__(self, gradients):
    eps = np.finfo(gradients.dtype.as_numpy_dtype).eps
    log = tf.math.log(tf.abs(gradients) + eps)
    clamped_log = self._clamp_log(log / self._k)
    sign = self._clamp_sign(gradients * np.exp(self._k))
    return tf.concat([clamped_log, sign], axis=-1)
