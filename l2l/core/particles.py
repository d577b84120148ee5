"""Several points on one problem instance: the swarm's and PSO's particles.

With k particles, each particle's optimizee variables are flattened and
concatenated into one row, so positions and gradients are [k, n] tensors and
per-particle losses are [k] tensors.
"""

import numpy as np
import tensorflow as tf

from l2l.core import interception


def draw_particles(make_loss, x, constants, num_particles):
  """The starting points of k particles on one problem instance.

  Args:
    make_loss: the problem's `build` function.
    x: its variables from `interception.get_variables`: the first particle.
    constants: the instance, shared by every particle.
    num_particles: k.

  Returns:
    k lists of variables: `x`, then fresh draws of the problem's
    initialisers (in this order, so that PSO, the learned swarm and
    restarted baselines start alike under one seed).
  """
  return [list(x)] + [
      list(interception.get_variables(make_loss, constants)[0])
      for _ in range(num_particles - 1)]


def is_per_row(x, loss):
  """Whether a problem is a batch of independent instances.

  Args:
    x: the problem's trainable variables.
    loss: what its `build()` returns.

  Returns:
    True for one [batch, d] variable and one loss per batch row.
  """
  return (len(x) == 1 and x[0].shape.rank == 2 and loss.shape.rank == 1 and
          loss.shape[0] == x[0].shape[0])


def flatten(tensors):
  """Concatenates per-variable tensors [k, ...] into one [k, n] tensor."""
  k = int(tensors[0].shape[0])
  return tf.concat([tf.reshape(t, [k, -1]) for t in tensors], 1)


def unflatten(flat, shapes):
  """Splits a [k, n] tensor back into tensors of the given [k, ...] shapes."""
  sizes = [int(np.prod(shape[1:])) for shape in shapes]
  return [tf.reshape(part, shape)
          for part, shape in zip(tf.split(flat, sizes, axis=1), shapes)]


def row_losses(make_loss, point, constants):
  """The problem's loss at one point, flattened to one value per batch row.

  Args:
    make_loss: the problem's `build` function.
    point: one tensor per trainable variable.
    constants: the problem instance.

  Returns:
    A [rows] tensor ([1] for a scalar loss).
  """
  return tf.reshape(
      interception.make_with_custom_variables(make_loss, point, constants),
      [-1])


def particle_losses(make_loss, points, constants):
  """Each particle's per-row losses and mean loss.

  Args:
    make_loss: the problem's `build` function.
    points: one tensor per trainable variable, each [k, ...].
    constants: the problem instance.

  Returns:
    `(rows [k, rows], means [k])`.
  """
  k = int(points[0].shape[0])
  rows = []
  for j in range(k):
    with tf.name_scope("particle_{}".format(j)):
      rows.append(row_losses(make_loss, [p[j] for p in points], constants))
  rows = tf.stack(rows)
  return rows, tf.reduce_mean(rows, axis=1)
