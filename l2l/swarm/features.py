"""Population ("swarm") features and losses for LOIS.

Implements the building blocks of "Learning to Optimize in Swarms" (Cao et
al., NeurIPS 2019) on top of the learning-to-learn optimizer:

  * `inter_particle_attention`: gradient mixing across particles.
  * `momentum`: running average of gradients.
  * `update_personal_best`: each particle's best visited point (the residual
    feature is `x - best_x`).
  * `attraction`: pull of each particle towards the better particles.
  * `FeatureAttention`: coordinate-wise intra-particle attention over the
    per-coordinate features.

Conventions: with k particles, each particle's optimizee variables are
flattened and concatenated into one row, so positions and gradients are
[k, n] tensors and per-particle losses are [k] tensors. The swarm functions
also take leading batch axes, [..., k, n] and [..., k], for a batch of
independent instances, each with its own swarm of k points. Everything here
builds `tf.compat.v1` graph-mode ops: functions take and return tensors. The
meta-loss's exploration term is in `posterior.py`.
"""

import math

from absl import logging
import numpy as np
import sonnet as snt
import tensorflow as tf

from l2l.core import graph_mode  # pylint: disable=unused-import


def _pairwise_sq_dist(x):
  """Squared Euclidean distances between the rows of `x`.

  Uses explicit differences (not the |a|^2 + |b|^2 - 2ab expansion) so the
  diagonal is exactly zero and the gradient is finite everywhere.

  Args:
    x: [..., k, n] tensor.

  Returns:
    [..., k, k] tensor, entry (j, r) is ||x_j - x_r||^2.
  """
  diff = tf.expand_dims(x, -2) - tf.expand_dims(x, -3)
  return tf.reduce_sum(tf.square(diff), axis=-1)


def inter_particle_attention(grads, positions, gamma=None, length_scale=1.0):
  """Mixes each particle's gradient with the others' (LOIS, Sec. 3.2).

  `g~_j = g_j + gamma * sum_r A_jr g_r` with
  `A = softmax_rows(G G^T) @ softmax_rows(-||x_j - x_r||^2 / (2 l))`.

  Args:
    grads: [..., k, n] tensor G, one flattened gradient per particle (leading
      axes: independent instances, each attended over separately).
    positions: [..., k, n] tensor X, one flattened position per particle.
    gamma: mixing weight; defaults to 1 / k.
    length_scale: `l` in the position kernel above.

  Returns:
    [..., k, n] tensor of attended gradients.

  Raises:
    ValueError: if `gamma` is None and the number of particles is not static.
  """
  grads = tf.convert_to_tensor(grads)
  positions = tf.convert_to_tensor(positions, dtype=grads.dtype)
  if gamma is None:
    num_particles = tf.compat.dimension_value(grads.shape[-2])
    if num_particles is None:
      raise ValueError("gamma=None needs a static number of particles; got "
                       "grads of shape {}.".format(grads.shape))
    gamma = 1.0 / num_particles
  grad_affinity = tf.nn.softmax(tf.matmul(grads, grads, transpose_b=True))
  dist_logits = -_pairwise_sq_dist(positions) / (2.0 * length_scale)
  attention = tf.matmul(grad_affinity, tf.nn.softmax(dist_logits))
  return grads + gamma * tf.matmul(attention, grads)


def momentum(m, g, beta=0.9):
  """Exponential moving average of gradients: `beta * m + (1 - beta) * g`.

  Args:
    m: previous momentum, any shape.
    g: current gradient, same shape as `m`.
    beta: decay rate.

  Returns:
    Updated momentum, same shape as `m`.
  """
  return beta * m + (1.0 - beta) * g


def update_personal_best(x, f, best_x, best_f):
  """Keeps each particle's best visited point.

  A particle's best is replaced only on strict improvement, `f < best_f`; start
  `best_f` at +inf so the first step always sets it. The residual feature fed
  to the optimizer is `x - best_x`.

  Args:
    x: [k, ...] current positions.
    f: [k] current losses, or [k, rows] for a batch of independent instances
      (x then [k, rows, ...]), each row with its own best.
    best_x: [k, ...] best positions so far.
    best_f: best losses so far, shaped like `f`.

  Returns:
    `(new_best_x, new_best_f)` with the shapes of `(best_x, best_f)`.
  """
  x = tf.convert_to_tensor(x)
  f = tf.convert_to_tensor(f)
  improved = tf.less(f, best_f)
  new_best_f = tf.where(improved, f, best_f)
  # Broadcast each decision over the coordinates it decides.
  rank = x.shape.rank
  if rank is None:
    rank = 2
  improved_x = tf.reshape(improved, tf.concat(
      [tf.shape(improved), tf.ones([rank - improved.shape.rank], tf.int32)],
      0))
  new_best_x = tf.where(improved_x, x, best_x)
  return new_best_x, new_best_f


def attraction(positions, losses, alpha=1.0):
  """Pull of each particle towards the strictly better particles.

  `a_j = sum_{r: f_r < f_j} w_jr (x_r - x_j)` where `w_j.` is a softmax of
  `-alpha ||x_r - x_j||^2` over those better particles only. The best particle
  (and any particle tied with it) has no better particle and gets exactly
  zero.

  Args:
    positions: [..., k, n] tensor (leading axes: independent instances).
    losses: [..., k] tensor of per-particle losses.
    alpha: inverse temperature of the distance softmax.

  Returns:
    [..., k, n] tensor.
  """
  positions = tf.convert_to_tensor(positions)
  losses = tf.convert_to_tensor(losses, dtype=positions.dtype)
  # better[j, r] is True when particle r is strictly better than particle j.
  better = tf.less(tf.expand_dims(losses, -2), tf.expand_dims(losses, -1))
  logits = -alpha * _pairwise_sq_dist(positions)
  weights = _masked_softmax(logits, better)
  # sum_r w_jr (x_r - x_j) = (W X)_j - (sum_r w_jr) x_j.
  total = tf.reduce_sum(weights, axis=-1, keepdims=True)
  return tf.matmul(weights, positions) - total * positions


def _masked_softmax(logits, mask):
  """Row softmax over the entries where `mask` holds; all-masked rows are 0.

  Every `tf.where` chooses between finite values on both branches, so neither
  the output nor its gradient can become NaN (a plain softmax over -inf
  entries yields NaN for empty rows).

  Args:
    logits: [..., k, k] tensor.
    mask: [..., k, k] boolean tensor.

  Returns:
    [..., k, k] tensor of weights.
  """
  zeros = tf.zeros_like(logits)
  has_any = tf.reduce_any(mask, axis=-1, keepdims=True)
  # Shift by the row max over valid entries for stability; softmax is shift
  # invariant so the shift needs no gradient.
  row_max = tf.reduce_max(tf.where(mask, logits, zeros + logits.dtype.min),
                          axis=-1, keepdims=True)
  row_max = tf.stop_gradient(tf.where(has_any, row_max, tf.zeros_like(row_max)))
  shifted = tf.where(mask, logits - row_max, zeros)
  exps = tf.where(mask, tf.exp(shifted), zeros)
  norm = tf.reduce_sum(exps, axis=-1, keepdims=True)
  # Rows with a valid entry have norm >= 1 (the max contributes exp(0)).
  safe_norm = tf.where(has_any, norm, tf.ones_like(norm))
  return exps / safe_norm


class FeatureAttention(snt.Module):
  """Coordinate-wise intra-particle attention over optimizer features.

  For one coordinate with features `feature_1..F` and previous update
  `delta_prev`, the score of feature f is
  `s_f = v . tanh(W [feature_f ; delta_prev] + b[:, f])`, and the output is
  `sum_f softmax(s)_f * feature_f`.

  Variables are created in `__init__` (not lazily) so that the module can be
  called for the first time inside a `tf.while_loop` body.
  """

  # The module's name in `.l2l` checkpoints.
  MODULE_NAME = "feature_attention"

  def __init__(self, num_features=4, hidden_size=10, initializer=None,
               name="feature_attention"):
    """Creates the module and its three variables.

    Args:
      num_features: F, the number of features per coordinate.
      hidden_size: size of the hidden layer.
      initializer: None for the default (normal with stddev 0.1 for `w` and
        `v`, zeros for `b`; randomness follows the graph-level seed), or a
        dict with any of the keys "w" [hidden, 2], "b" [hidden, num_features]
        and "v" [hidden] holding arrays; missing keys take the default.
      name: module name.

    Raises:
      ValueError: if `initializer` has an unknown key or a wrongly shaped
        array.
    """
    super().__init__(name=name)
    self._num_features = num_features
    self._hidden_size = hidden_size
    shapes = {
        "w": (hidden_size, 2),
        "b": (hidden_size, num_features),
        "v": (hidden_size,),
    }
    values = _attention_initial_values(shapes, initializer)
    with self.name_scope:
      self.w = tf.Variable(values["w"], name="w")
      self.b = tf.Variable(values["b"], name="b")
      self.v = tf.Variable(values["v"], name="v")
    logging.vlog(1, "FeatureAttention %s: hidden=%d, features=%d", name,
                 hidden_size, num_features)

  def checkpoint_variables(self):
    """Returns `{module: {variable: tf.Variable}}` in the .l2l layout."""
    return {self.MODULE_NAME: {"w": self.w, "b": self.b, "v": self.v}}

  @property
  def num_features(self):
    return self._num_features

  @property
  def hidden_size(self):
    return self._hidden_size

  def __call__(self, features, delta_prev):
    """Attends over the features of every coordinate.

    Args:
      features: [..., num_features] tensor, one row per coordinate (e.g.
        [k, n, F] or [N, F]).
      delta_prev: [...] tensor, the previous update of each coordinate.

    Returns:
      [...] tensor, the attention-weighted sum of the features.
    """
    features = tf.convert_to_tensor(features, dtype=self.w.dtype)
    delta_prev = tf.convert_to_tensor(delta_prev, dtype=self.w.dtype)
    # Hidden pre-activations, [..., F, hidden].
    pre = (tf.expand_dims(features, -1) * self.w[:, 0]
           + tf.expand_dims(tf.expand_dims(delta_prev, -1), -1) * self.w[:, 1]
           + tf.transpose(self.b))
    scores = tf.reduce_sum(tf.tanh(pre) * self.v, axis=-1)
    probs = tf.nn.softmax(scores, axis=-1)
    return tf.reduce_sum(probs * features, axis=-1)


def _attention_initial_values(shapes, initializer):
  """Initial values of `FeatureAttention`'s variables.

  Args:
    shapes: dict from variable key to expected shape tuple.
    initializer: None or dict from variable key to array.

  Returns:
    dict from key to a float32 tensor or array of the expected shape.

  Raises:
    ValueError: on an unknown key or a shape mismatch.
  """
  return _initial_values("FeatureAttention", {
      "w": (shapes["w"], lambda: tf.random.normal(shapes["w"], stddev=0.1)),
      "b": (shapes["b"], lambda: tf.zeros(shapes["b"])),
      "v": (shapes["v"], lambda: tf.random.normal(shapes["v"], stddev=0.1)),
  }, initializer)


def _initial_values(kind, defaults, initializer):
  """Initial values of a swarm module's variables.

  Args:
    kind: the module's class name, for errors.
    defaults: dict from variable key to `(shape, make_default_value)`.
    initializer: None or dict from variable key to array; missing keys
      take the default.

  Returns:
    dict from key to a float32 tensor or array of the expected shape.

  Raises:
    ValueError: on an unknown key or a shape mismatch.
  """
  initializer = dict(initializer or {})
  unknown = sorted(set(initializer) - set(defaults))
  if unknown:
    raise ValueError("Unknown {} initializer keys {}; expected a subset of "
                     "{}.".format(kind, unknown, list(defaults)))
  out = {}
  for key, (shape, make_default) in defaults.items():
    if key not in initializer:
      out[key] = make_default()
      continue
    value = np.asarray(initializer[key], dtype=np.float32)
    if value.shape != tuple(shape):
      raise ValueError(
          "{} initializer for variable '{}' has shape {}; expected shape "
          "{}.".format(kind, key, value.shape, tuple(shape)))
    out[key] = value
  return out


def attention_values(module, sess):
  """Reads a `FeatureAttention`'s variables in the checkpoint layout.

  Args:
    module: a `FeatureAttention`.
    sess: a `tf.compat.v1.Session` whose graph holds the module.

  Returns:
    dict {"w": ndarray, "b": ndarray, "v": ndarray}, usable as the
    `initializer` of a new `FeatureAttention`.
  """
  return sess.run({"w": module.w, "b": module.b, "v": module.v})


def record_point(best_points, best_losses):
  """Each instance's record: the best point any of its particles has found.

  Args:
    best_points: [..., k, n] each particle's personal best point.
    best_losses: [..., k] its loss.

  Returns:
    `(point [..., n], loss [...])`: the personal best with the lowest loss
    (the first one on a tie).
  """
  best_points = tf.convert_to_tensor(best_points)
  best_losses = tf.convert_to_tensor(best_losses, dtype=best_points.dtype)
  num_particles = tf.compat.dimension_value(best_points.shape[-2])
  choice = tf.one_hot(tf.argmin(best_losses, axis=-1), num_particles,
                      dtype=best_points.dtype)
  point = tf.reduce_sum(tf.expand_dims(choice, -1) * best_points, axis=-2)
  return point, tf.reduce_min(best_losses, axis=-1)


def _relative_difference(a, b):
  """`(a - b) / (|a| + |b| + 1e-8)`: in [-1, 1] whatever the losses' scale."""
  return (a - b) / (tf.abs(a) + tf.abs(b) + 1e-8)


def gate_inputs(losses, record_loss, previous_best):
  """What `AttractionGate` reads about each particle of each instance.

  Args:
    losses: [..., k] each particle's loss now.
    record_loss: [...] its instance's record loss.
    previous_best: [..., k] each particle's best loss before this step (inf
      before its first).

  Returns:
    [..., k, 2]: the gap `(f - f_record) / (|f| + |f_record| + 1e-8)` (0 for
    the record holder, towards 1 for a particle far worse), and the
    stillness `log(p + 1e-8) / log(1e-8)` of the particle's progress
    `p = clip((f_best - f) / (|f| + |f_best| + 1e-8), 0, 1)` on its own best
    (1 before its first step): 0 for a particle still improving fast, 1
    for one that has stopped improving.
  """
  losses = tf.convert_to_tensor(losses)
  record_loss = tf.expand_dims(tf.convert_to_tensor(record_loss,
                                                    dtype=losses.dtype), -1)
  previous_best = tf.convert_to_tensor(previous_best, dtype=losses.dtype)
  gap = _relative_difference(losses, record_loss)
  seen = tf.math.is_finite(previous_best)
  # The inf of a particle with no best yet never reaches the arithmetic.
  previous_best = tf.where(seen, previous_best, losses)
  progress = tf.clip_by_value(_relative_difference(previous_best, losses),
                              0.0, 1.0)
  progress = tf.where(seen, progress, tf.ones_like(progress))
  stillness = tf.math.log(progress + 1e-8) / math.log(1e-8)
  return tf.stack([gap, stillness], axis=-1)


class AttractionGate(snt.Module):
  """A learned gate on each particle's move toward its instance's record.

  `g = sigmoid(LOGIT_SCALE * (w . inputs + b))` with the inputs of
  `gate_inputs`. The logit's fixed scale lets the meta-optimizer (whose Adam
  steps move a weight by about the learning rate) open or close the gate
  within tens of meta-steps instead of hundreds.
  """

  # The module's name in `.l2l` checkpoints.
  MODULE_NAME = "attraction_gate"
  NUM_INPUTS = 2
  LOGIT_SCALE = 10.0
  # The starting logit: g = sigmoid(-4) ~ 0.018.
  INITIAL_LOGIT = -4.0

  def __init__(self, initializer=None, name="attraction_gate"):
    """Creates the module and its two variables.

    Args:
      initializer: None for the default (w = 0, b = INITIAL_LOGIT /
        LOGIT_SCALE), or a dict with any of the keys "w" [NUM_INPUTS] and
        "b" [] holding arrays; missing keys take the default.
      name: module name.

    Raises:
      ValueError: if `initializer` has an unknown key or a wrongly shaped
        array.
    """
    super().__init__(name=name)
    values = _initial_values("AttractionGate", {
        "w": ((self.NUM_INPUTS,), lambda: tf.zeros([self.NUM_INPUTS])),
        "b": ((), lambda: tf.constant(self.INITIAL_LOGIT /
                                      self.LOGIT_SCALE)),
    }, initializer)
    with self.name_scope:
      self.w = tf.Variable(values["w"], name="w")
      self.b = tf.Variable(values["b"], name="b")

  @classmethod
  def stall_rule(cls, threshold, slope=4.0):
    """Initial values of a gate that opens once a particle stalls.

    Args:
      threshold: the stillness at which g = 1/2.
      slope: the weight of the stillness (the logit changes by
        `LOGIT_SCALE * slope` per unit of stillness: at 4, g is below 2e-2
        at 0.1 under the threshold and above 0.98 at 0.1 over it).

    Returns:
      An `initializer` dict: no weight on the gap, `slope` on the
      stillness.
    """
    return {"w": np.array([0.0, slope], np.float32),
            "b": np.float32(-slope * threshold)}

  def checkpoint_variables(self):
    """Returns `{module: {variable: tf.Variable}}` in the .l2l layout."""
    return {self.MODULE_NAME: {"w": self.w, "b": self.b}}

  def logits(self, inputs):
    """[..., NUM_INPUTS] inputs -> [...] logits."""
    inputs = tf.convert_to_tensor(inputs, dtype=self.w.dtype)
    return self.LOGIT_SCALE * (tf.reduce_sum(inputs * self.w, axis=-1) +
                               self.b)

  def __call__(self, inputs):
    """[..., NUM_INPUTS] inputs -> [...] gates in (0, 1)."""
    return tf.sigmoid(self.logits(inputs))
