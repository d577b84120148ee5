"""Particle Swarm Optimization, the gradient-free baseline LOIS compared with.

Standard constriction PSO (Clerc & Kennedy, 2002) built as a TF-1.x graph over
any problem of `problems.py`. Each particle is one full point of the problem,
every trainable variable of it; the swarm is drawn exactly as the learned
swarm draws it (`l2l.core.particles.draw_particles`): the first particle is
the problem's own variables and each other particle a fresh draw of its
initialisers on the same problem instance. So, built first in a graph with a given seed, the first particle
starts where single-point optimizers start.

One iteration (`step`), for particles j = 1..k:

    f_j = mean over the batch of make_loss(x_j)
          (per batch row, each row with its own bests, when the problem is a
          batch of independent instances: one [batch, d] variable and one
          loss per row, as `quadratic`'s rows or Rastrigin's)
    pbest_j <- x_j if f_j < f(pbest_j)                (strict improvement)
    gbest   <- the pbest with the lowest loss         (first on ties)
    v_j     <- w v_j + c1 r1 (pbest_j - x_j) + c2 r2 (gbest - x_j)
    x_j     <- x_j + v_j

with r1, r2 ~ U[0, 1) drawn per coordinate and w = 0.7298, c1 = c2 = 1.49618
by default. Each step evaluates every particle once, as k learned particles
do; no gradient is computed anywhere.

Typical use:

    pso_opt = pso.build(problems.square_cos(mode="test"), num_particles=8)
    sess.run(tf.compat.v1.global_variables_initializer())
    for _ in range(100):
      sess.run(pso_opt.step)
    best = sess.run(pso_opt.state.global_best_loss)
"""

import collections

from absl import logging
import numpy as np
import tensorflow as tf

from l2l import checks
from l2l.core import interception
from l2l.core import particles

PSOState = collections.namedtuple(
    "PSOState",
    "particles, velocities, best_positions, best_losses, "
    "global_best_position, global_best_loss, evaluated")
PSOState.__doc__ = """The persistent variables of a PSO swarm.

Attributes:
  particles: for each particle, its list of variables, one per problem
    variable (in creation order). These are the positions the step moves.
  velocities: one [k, ...] variable per problem variable.
  best_positions: one [k, ...] variable per problem variable: each particle's
    personal best point.
  best_losses: [k] variable, the personal best losses (+inf after reset).
  global_best_position: one [...] variable per problem variable.
  global_best_loss: scalar variable (+inf after reset).
  evaluated: boolean scalar variable, False after reset until the first step
    has evaluated the starting points.
"""

_PSOFields = collections.namedtuple(
    "PSO", "reset, step, losses, positions, constants")


class PSO(_PSOFields):
  """What `build` returns; unpacks to exactly five.

  Attributes:
    reset: op re-initialising the particles (fresh draws), the problem
      constants (a fresh instance) and every piece of PSO state.
    step: op running one PSO iteration.
    losses: [k] tensor, each particle's mean loss at its current position.
    positions: one [k, ...] tensor per problem variable, the current
      positions.
    constants: the problem's non-trainable variables (the instance).
    state: a `PSOState` with the persistent variables (not part of the five).
    row_losses: [k, rows] tensor, each particle's loss on every batch row
      ([k, 1] for a scalar loss), read with `losses` (not part of the five).

  `losses` and `positions` read the particles once and `step` uses those very
  reads, so running `[losses, step]` (or `[positions, step]`) in one
  `sess.run` gives the values at the positions the step started from: the
  evaluations the step itself used, with no extra function evaluation. To
  read the state after the move, run `step` and then `losses` (that second
  run evaluates the particles once more).
  """

  def __new__(cls, reset, step, losses, positions, constants, state=None,
              row_losses=None):
    self = super().__new__(cls, reset, step, losses, positions, constants)
    self._state = state
    self._row_losses = row_losses
    return self

  @property
  def state(self):
    """The `PSOState` of persistent variables."""
    return getattr(self, "_state", None)

  @property
  def row_losses(self):
    """[k, rows]: each particle's loss on every batch row."""
    return getattr(self, "_row_losses", None)


def _default_random_uniform(shape, dtype):
  return tf.random.uniform(shape, dtype=dtype)


def _broadcastable(mask, rank):
  """Appends unit axes to `mask` ([k] or [k, rows]) up to `rank`."""
  return tf.reshape(mask, mask.shape.as_list() + [1] * (rank - mask.shape.rank))


def _leader_values(values, leader):
  """Each row's leader's entry of `values` [k, ...]; leader scalar or [rows]."""
  if leader.shape.rank == 0:
    return tf.gather(values, leader)
  rows_first = tf.transpose(values, [1, 0] + list(range(2, values.shape.rank)))
  return tf.gather(rows_first, leader, axis=1, batch_dims=1)


def _check_options(num_particles, inertia, cognitive, social,
                   initial_velocity_stddev):
  """Raises ValueError for an option `build` cannot use."""
  checks.check_integer("PSO num_particles", num_particles)
  # Negative constants turn PSO's pulls into pushes: no PSO run uses them.
  checks.check_number("PSO inertia", inertia, 0)
  checks.check_number("PSO cognitive", cognitive, 0)
  checks.check_number("PSO social", social, 0)
  checks.check_number("PSO initial_velocity_stddev", initial_velocity_stddev,
                      0)


def _read_swarm(make_loss, particles_, constants, per_row):
  """One read of every particle, and the losses there.

  Args:
    make_loss: the problem's `build` function.
    particles_: for each particle, its list of variables.
    constants: the problem instance.
    per_row: whether each batch row is an independent instance.

  Returns:
    `(positions, step_losses, losses, row_losses)`: one [k, ...] tensor per
    variable; the losses the step compares, [k, rows] when each row is an
    instance and [k] otherwise; the [k] particle means; and every
    particle's loss on every batch row, [k, rows] ([k, 1] for a scalar
    loss).
  """
  with tf.name_scope("positions"):
    reads = [[v.read_value() for v in particle] for particle in particles_]
    positions = [tf.stack([read[i] for read in reads],
                          name="position_{}".format(i))
                 for i in range(len(reads[0]))]
  with tf.name_scope("losses"):
    row_losses = tf.stack([particles.row_losses(make_loss, read, constants)
                           for read in reads], name="row_losses")
    losses = tf.reduce_mean(row_losses, axis=1, name="losses")
  return positions, row_losses if per_row else losses, losses, row_losses


def _initial_state(particles_, shapes, dtypes, rows_shape, loss_dtype,
                   initial_velocity_stddev):
  """Creates the swarm's persistent variables.

  Args:
    particles_: for each particle, its list of variables.
    shapes: each variable's [k, ...] shape.
    dtypes: each variable's dtype.
    rows_shape: [] for one instance, [rows] for a batch of them.
    loss_dtype: the losses' dtype.
    initial_velocity_stddev: spread of the initial velocities (0: zeros).

  Returns:
    A `PSOState`.
  """
  k = len(particles_)
  velocities = []
  for i, (shape, dtype) in enumerate(zip(shapes, dtypes)):
    if initial_velocity_stddev > 0:
      initial = tf.random.normal(shape, stddev=initial_velocity_stddev,
                                 dtype=dtype)
    else:
      initial = tf.zeros(shape, dtype)
    velocities.append(tf.Variable(initial, trainable=False,
                                  name="velocity_{}".format(i)))
  best_positions = [
      tf.Variable(tf.zeros(shape, dtype), trainable=False,
                  name="best_position_{}".format(i))
      for i, (shape, dtype) in enumerate(zip(shapes, dtypes))]
  best_losses = tf.Variable(
      tf.fill([k] + rows_shape, tf.constant(np.inf, loss_dtype)),
      trainable=False, name="best_losses")
  global_best_position = [
      tf.Variable(tf.zeros(shape[1:], dtype), trainable=False,
                  name="global_best_position_{}".format(i))
      for i, (shape, dtype) in enumerate(zip(shapes, dtypes))]
  global_best_loss = tf.Variable(
      tf.fill(rows_shape, tf.constant(np.inf, loss_dtype)),
      trainable=False, name="global_best_loss")
  evaluated = tf.Variable(False, trainable=False, name="evaluated")
  return PSOState(particles_, velocities, best_positions, best_losses,
                  global_best_position, global_best_loss, evaluated)


def build(make_loss, num_particles=4, inertia=0.7298, cognitive=1.49618,
          social=1.49618, initial_velocity_stddev=0.0, random_uniform=None):
  """Builds a PSO swarm over a problem.

  Creates the k particles (see the module docstring for the draw order) and
  the non-trainable state: velocities (zeros, or normal with
  `initial_velocity_stddev`), personal best positions (zeros) and losses
  (+inf), the global best position (zeros) and loss (+inf), and a flag saying
  whether the current starting points have been evaluated. The first `step`
  after initialisation or `reset` evaluates the starting points and takes
  them as personal bests whatever their loss (a NaN loss is stored as +inf);
  later steps replace a personal best only on strict improvement.

  Args:
    make_loss: the problem's `build` function (a `problems.py` factory's
      result); its loss is a scalar or one value per batch row.
    num_particles: k, a positive integer.
    inertia: w, the weight of the previous velocity.
    cognitive: c1, the pull towards the particle's own best.
    social: c2, the pull towards the swarm's best.
    initial_velocity_stddev: standard deviation of the initial velocities;
      0 starts them at zero.
    random_uniform: for tests, a callable `(shape, dtype) -> tensor` giving
      the U[0, 1) factors; it is called at build time twice per problem
      variable, in variable order, r1 then r2, each with shape [k, ...].
      Defaults to `tf.random.uniform` (new draws every run).

  Returns:
    A `PSO(reset, step, losses, positions, constants)`, with the persistent
    variables under its `state` attribute.

  Raises:
    ValueError: for a bad option or a problem without trainable variables.
  """
  _check_options(num_particles, inertia, cognitive, social,
                 initial_velocity_stddev)
  k = int(num_particles)
  random_uniform = random_uniform or _default_random_uniform

  # The same draws, in the same order, as the learned swarm.
  x, constants = interception.get_variables(make_loss)
  if not x:
    raise ValueError("The problem created no trainable variables.")
  starts = particles.draw_particles(make_loss, x, constants, k)
  with tf.name_scope("pso_probe"):
    probe = interception.make_with_custom_variables(make_loss, x, constants)
  # A batch of independent instances gets one swarm per instance.
  per_row = particles.is_per_row(x, probe)
  rows_shape = [int(x[0].shape[0])] if per_row else []

  with tf.name_scope("pso"):
    positions, step_losses, losses, row_losses = _read_swarm(
        make_loss, starts, constants, per_row)
    with tf.name_scope("state"):
      state = _initial_state(
          starts, [[k] + v.shape.as_list() for v in x],
          [v.dtype.base_dtype for v in x], rows_shape,
          step_losses.dtype.base_dtype, initial_velocity_stddev)
    with tf.name_scope("step"):
      step = _step(state, positions, step_losses, inertia, cognitive, social,
                   random_uniform)
    with tf.name_scope("reset"):
      variables = (sum(starts, []) + list(constants) +
                   tf.nest.flatten(state[1:]))
      reset = tf.compat.v1.variables_initializer(variables, name="reset")

  logging.info("PSO: %d particles over %d variable(s), w=%g, c1=%g, c2=%g, "
               "initial velocity stddev %g", k, len(x), inertia,
               cognitive, social, initial_velocity_stddev)
  return PSO(reset, step, losses, positions, list(constants), state,
             row_losses)


def _step(state, positions, losses, inertia, cognitive, social,
          random_uniform):
  """One PSO iteration as a single op.

  Every new value is computed from one read of each variable; all assignments
  wait for every new value, so no assignment can race a read.

  Args:
    state: the `PSOState`.
    positions: [k, ...] reads of the particles, one per problem variable.
    losses: [k] losses at `positions`, or [k, rows] for a batch of
      independent instances (each row then has its own bests).
    inertia: w.
    cognitive: c1.
    social: c2.
    random_uniform: `(shape, dtype) -> tensor` of U[0, 1) factors.

  Returns:
    The step op.
  """
  old_best_losses = state.best_losses.read_value()
  first = tf.logical_not(state.evaluated.read_value())
  improved = tf.logical_or(losses < old_best_losses, first, name="improved")
  finite = tf.where(tf.math.is_nan(losses),
                    tf.fill(tf.shape(losses),
                            tf.constant(np.inf, losses.dtype)), losses)
  best_losses = tf.where(improved, finite, old_best_losses)
  best_positions = []
  for position, variable in zip(positions, state.best_positions):
    mask = _broadcastable(improved, position.shape.rank)
    best_positions.append(tf.where(mask, position, variable.read_value()))

  leader = tf.argmin(best_losses, axis=0, output_type=tf.int32, name="leader")
  global_best_loss = _leader_values(best_losses, leader)
  global_best = [_leader_values(best, leader) for best in best_positions]

  velocities = []
  new_positions = []
  for i, position in enumerate(positions):
    shape = position.shape.as_list()
    dtype = position.dtype.base_dtype
    r1 = random_uniform(shape, dtype)
    r2 = random_uniform(shape, dtype)
    velocity = (inertia * state.velocities[i].read_value() +
                cognitive * r1 * (best_positions[i] - position) +
                social * r2 * (tf.expand_dims(global_best[i], 0) - position))
    velocities.append(velocity)
    new_positions.append(position + velocity)

  new_values = ([best_losses, global_best_loss] + best_positions +
                global_best + velocities + new_positions)
  with tf.control_dependencies(new_values):
    assigns = [tf.compat.v1.assign(state.best_losses, best_losses),
               tf.compat.v1.assign(state.global_best_loss, global_best_loss),
               tf.compat.v1.assign(state.evaluated, True)]
    assigns.extend(tf.compat.v1.assign(v, value) for v, value in
                   zip(state.best_positions, best_positions))
    assigns.extend(tf.compat.v1.assign(v, value) for v, value in
                   zip(state.global_best_position, global_best))
    assigns.extend(tf.compat.v1.assign(v, value) for v, value in
                   zip(state.velocities, velocities))
    for j, particle in enumerate(state.particles):
      assigns.extend(tf.compat.v1.assign(v, new_positions[i][j])
                     for i, v in enumerate(particle))
  return tf.group(*assigns, name="step")
