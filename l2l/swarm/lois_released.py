"""LOIS as released: Shen-Lab's trained swarm models, run as their code ran.

LOIS's released models (`trained_models/square_cos_<d>/`) are a directory
with `cw.l2l`, the coordinate-wise LSTM (2x20, the raw input, scale 1), and
`loss_record.pickle`, which keeps the feature-attention weights beside the
training losses. Their code differs from the paper, and the weights were
trained with that code, so this module reproduces it, quirks included,
instead of running them through the library's own swarm
(`swarm_unroll.py`). What the released code does at every step, for each
optimizee variable flattened per particle to `x` [k, n]:

1. `f_j`: particle j's loss, the mean over the batch; `g_j` its gradient.
2. Gradient attention across particles: `g~ = g + (1/k) S_g S_x g`, with
   `S_g = softmax_rows(g g^T)` and `S_x[a, b] = softmax_b(-0.5 x_b . (x_b -
   x_a))` (the code's "distance" is this product, transposed).
3. Four features: `g~`; "momentum" `0.9 m`, where `m` is fixed N(0, 0.01)
   noise that is never updated; the personal-best residual `x - x_best`,
   identically 0 because the best value is a variable that stays at inf, so
   every step takes the current point as the best; and "attraction"
   `a_i = sum_r softmax_r(-|d_ir|^2) d_ir` with `d_ir = x_i - x_r` where
   `f_i <= f_r` and 0 elsewhere, about 0 since the distances span the whole
   flattened batch.
4. Feature attention on the whole flattened vector, which ties a model to
   its batch size (128) and dimension: row `c = f k + j` (feature f,
   particle j) is `[feature_f[j] ; h[j]]`, where the "previous update" `h`
   is another fixed N(0, 0.01) noise; `s = v . tanh(W row + b[:, c mod 4])`;
   the scores are split into k groups of 4 consecutive rows, each
   softmaxed (for k = 4, over the particles within each feature); the LSTM
   input of particle j is `sum_f p[f k + j] feature_f[j]`.
5. `x <- x + LSTM(input)`, the LSTM shared by every coordinate.

Particles start at the problem's initialiser (`util.get_config`'s
`square_cos_<d>` draws LOIS's N(0, 0.2) in 2-d and N(0, 1.3) above). The
noises are drawn once per session, as the released evaluation drew them
once per run; each epoch re-draws only the particles and the LSTM state.
LOIS's evaluation recorded, after step t, the loss one unrecorded step
further on; here the loss after step t is the loss at the point reached.
"""

import collections
import os

import numpy as np
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.core import interception
from l2l.core import particles
from l2l.core import unroll
from l2l.swarm import config
import networks

# The file of LOIS's released models that holds the attention weights.
RECORD_FILE = "loss_record.pickle"
# The LSTM of LOIS's square_cos models: the raw input, scale 1.
NET_CONFIG = {"net": "CoordinateWiseDeepLSTM",
              "net_options": {"layers": (20, 20)}}
NET_ID = networks.DEFAULT_NET_ID
# LOIS's features per coordinate, and the constants of its code.
NUM_FEATURES = 4
MOMENTUM_BETA = 0.9
NOISE_STDDEV = 0.01

ReleasedSwarm = collections.namedtuple(
    "ReleasedSwarm", "setup, reset, step, losses, positions, row_losses")
ReleasedSwarm.__doc__ = """Ops running a released LOIS model.

setup: draws the fixed noises; run once per session.
reset: draws fresh particles and a fresh LSTM state.
step: moves every particle once, after `positions` and `row_losses` read the
  points: run together with them, they give where the step starts.
losses: [k] each particle's mean loss at its current point.
positions: [k, n] the particles, flattened.
row_losses: [k, rows] each particle's loss on every batch row there.
"""

Attention = collections.namedtuple("Attention", "kernel, bias, va")


def is_released_model(path):
  """Whether `path` is a LOIS released model directory.

  Args:
    path: a directory, or None.

  Returns:
    True when it holds `cw.l2l` and `loss_record.pickle` but none of this
    library's attention checkpoints.
  """
  if path is None or not os.path.isdir(path):
    return False
  return (os.path.isfile(os.path.join(path, RECORD_FILE)) and
          os.path.isfile(l2l_file.checkpoint_path(path, NET_ID)) and
          not os.path.exists(l2l_file.checkpoint_path(path,
                                                      config.ATTENTION_ID)))


def load_attention(path, sizes):
  """Reads the feature-attention weights of each variable from the record.

  Args:
    path: the released model's directory.
    sizes: n, the flattened size of each optimizee variable.

  Returns:
    One `Attention` of float32 arrays per variable.

  Raises:
    ValueError: if the record lacks the weights or they do not fit.
  """
  record_path = os.path.join(path, RECORD_FILE)
  record = l2l_file.load_record(record_path)
  names = ("fc_weights", "fc_bias", "fc_va")
  missing = [name for name in names if name not in record]
  if missing:
    raise ValueError("{} has no {}: it is not a LOIS released model's "
                     "record.".format(record_path, ", ".join(missing)))
  lists = [record[name] if isinstance(record[name], list) else [record[name]]
           for name in names]
  if any(len(values) != len(sizes) for values in lists):
    raise ValueError(
        "{} holds attention weights for {} variables but the problem has {}."
        .format(record_path, len(lists[0]), len(sizes)))
  result = []
  for size, kernel, bias, va in zip(sizes, *lists):
    kernel, bias, va = (np.asarray(a, np.float32) for a in (kernel, bias, va))
    if kernel.ndim != 2 or kernel.shape[1] != 2 * size:
      raise ValueError(
          "{}: fc_weights has shape {} but this problem needs [{}, {}] "
          "(twice the flattened variable: LOIS's attention is tied to its "
          "batch size, 128, and dimension).".format(
              record_path, list(kernel.shape),
              kernel.shape[0] if kernel.ndim else "?", 2 * size))
    hidden = kernel.shape[0]
    if bias.shape != (hidden, NUM_FEATURES) or va.size != hidden:
      raise ValueError("{}: fc_bias {} and fc_va {} do not fit fc_weights {}; "
                       "expected [{}, {}] and [1, {}].".format(
                           record_path, list(bias.shape), list(va.shape),
                           list(kernel.shape), hidden, NUM_FEATURES, hidden))
    result.append(Attention(kernel, bias, va.reshape([1, hidden])))
  return result


def gradient_attention(grads, positions):
  """Step 2: the released code's attention across particles.

  Args:
    grads: [k, n] gradients.
    positions: [k, n] positions.

  Returns:
    [k, n] attended gradients.
  """
  k = int(grads.shape[0])
  by_gradient = tf.nn.softmax(tf.matmul(grads, grads, transpose_b=True))
  # products[i, r] = x_i . (x_i - x_r).
  squares = tf.reduce_sum(tf.square(positions), axis=1, keepdims=True)
  products = squares - tf.matmul(positions, positions, transpose_b=True)
  by_position = tf.nn.softmax(tf.transpose(-0.5 * products))
  return grads + (1.0 / k) * tf.matmul(
      tf.matmul(by_gradient, by_position), grads)


def attraction(positions, losses):
  """Step 3's attraction: the released code's masked pull.

  Args:
    positions: [k, n].
    losses: [k] the particles' losses.

  Returns:
    [k, n].
  """
  # differences[i, r] = x_i - x_r, zeroed where particle r is better.
  differences = positions[:, None, :] - positions[None, :, :]
  worse_or_equal = tf.logical_not(losses[:, None] > losses[None, :])
  differences = differences * tf.cast(worse_or_equal, differences.dtype)[
      :, :, None]
  weights = tf.nn.softmax(-tf.reduce_sum(tf.square(differences), -1))
  return tf.reduce_sum(weights[:, :, None] * differences, axis=1)


def feature_attention(stacked, previous, weights):
  """Step 4: the released code's attention over the flattened features.

  Args:
    stacked: [F, k, n] the features.
    previous: [k, n] the "previous update".
    weights: the variable's `Attention`.

  Returns:
    [k, n] the LSTM's input.
  """
  num_features, k, n = (int(d) for d in stacked.shape)
  rows = tf.concat([tf.reshape(stacked, [num_features * k, n]),
                    tf.tile(previous, [num_features, 1])], axis=1)
  bias = tf.tile(weights.bias, [1, k])
  hidden = tf.tanh(tf.matmul(weights.kernel, rows, transpose_b=True) + bias)
  scores = tf.matmul(weights.va, hidden)
  probabilities = tf.reshape(
      tf.nn.softmax(tf.reshape(scores, [k, num_features])),
      [num_features, k, 1])
  return tf.reduce_sum(probabilities * stacked, axis=0)


def build(problem, num_particles, path):
  """Builds a released LOIS model on a problem, for evaluation.

  Args:
    problem: the problem's `build` function (LOIS's: `square_cos_<d>`).
    num_particles: k.
    path: the released model's directory (`is_released_model`).

  Returns:
    A `ReleasedSwarm`.

  Raises:
    ValueError: if the files do not fit the problem.
  """
  x, constants = interception.get_variables(problem)
  names = [interception.variable_name(v) for v in x]
  starts = particles.draw_particles(problem, x, constants, num_particles)
  shapes = [[num_particles] + v.shape.as_list() for v in x]
  sizes = [int(np.prod(shape[1:])) for shape in shapes]
  weights = [Attention(*(tf.constant(a) for a in w))
             for w in load_attention(path, sizes)]
  net = networks.factory(net_path=l2l_file.find(path, NET_ID), **NET_CONFIG)
  with tf.name_scope("lois_released"):
    points = [tf.Variable(tf.stack(p), trainable=False, name="x")
              for p in zip(*starts)]
    noise = [[tf.Variable(tf.random.normal([num_particles, size],
                                           stddev=NOISE_STDDEV),
                          trainable=False, name=name) for size in sizes]
             for name in ("momentum_noise", "previous_update_noise")]
    (state,) = unroll.net_states({NET_ID: net}, [NET_ID],
                                 [list(range(len(x)))], shapes)
  row_losses, losses = particles.particle_losses(problem, points, constants)
  grads = unroll.gradients(tf.reduce_sum(losses), points, names)
  new_points = []
  new_state = []
  for i, (point, grad) in enumerate(zip(points, grads)):
    flat_x = tf.reshape(point, [num_particles, -1])
    flat_g = gradient_attention(tf.reshape(grad, [num_particles, -1]), flat_x)
    stacked = tf.stack([flat_g, MOMENTUM_BETA * noise[0][i],
                        flat_x - flat_x, attraction(flat_x, losses)])
    inputs = feature_attention(stacked, noise[1][i], weights[i])
    delta, net_state = net(tf.reshape(inputs, shapes[i]), state[i])
    new_points.append(point + delta)
    new_state.append(net_state)
  positions = particles.flatten(points)
  # `positions` reads the points by ops of its own: the step's assignments
  # wait for those reads (and for `row_losses`'), so a run of
  # [positions, row_losses, step] gives the points the step starts from.
  with tf.control_dependencies([positions, row_losses]):
    step = tf.group(unroll.nested_assign(points, new_points) +
                    tf.nest.flatten(unroll.nested_assign(state, new_state)))
  with tf.control_dependencies(
      [tf.compat.v1.variables_initializer(sum(starts, []) + constants)]):
    fresh = [tf.compat.v1.assign(p, tf.stack(s))
             for p, s in zip(points, zip(*starts))]
  reset = tf.group(fresh + [tf.compat.v1.variables_initializer(
      tf.nest.flatten(state))])
  setup = tf.compat.v1.variables_initializer(sum(noise, []) +
                                             list(net.variables))
  return ReleasedSwarm(setup, reset, step, losses, positions, row_losses)
