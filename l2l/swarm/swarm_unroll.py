"""The LOIS unroll: a swarm of particles driven by one learned optimizer.

Each optimizee variable gets a leading particle axis [k, ...]. Every step, each
particle's gradient, momentum, personal-best residual and attraction to better
particles are combined per coordinate by `features.FeatureAttention` and fed
to the (coordinate-wise) nets. The meta-loss adds the entropy of a Gaussian
process posterior over the optimum's location (`posterior.py`) to the summed
particle losses.

The unroll is built from small steps: `initial_swarm_state` creates the
persistent `SwarmState`, `swarm_features` computes one step's features and
the next state, `SwarmStep` applies the nets, and `swarm_meta_loss` ties them
into a `tf.while_loop`.
"""

import collections

from absl import logging
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.core import interception
from l2l.core import particles
from l2l.core import unroll
from l2l.swarm import config as config_lib
from l2l.swarm import features
from l2l.swarm import posterior

# Kept here too: callers of the unroll name the reserved id through it.
ATTENTION_ID = config_lib.ATTENTION_ID
SwarmConfig = config_lib.SwarmConfig

SwarmUnroll = collections.namedtuple(
    "SwarmUnroll",
    "meta_loss, attention, schedule_variables, fx_history, x_initial")

SwarmState = collections.namedtuple(
    "SwarmState", "momentum, best_x, best_f, delta_prev")
SwarmState.__doc__ = """The swarm's own loop state, besides positions and nets.

momentum: [k, n] running average of each particle's gradient.
best_x: [k, n] the best point each particle has visited.
best_f: [k] its loss (inf before the first step).
delta_prev: [k, n] the previous step's update.
"""


def initial_swarm_state(num_particles, num_coordinates):
  """Creates the swarm state's persistent variables.

  Args:
    num_particles: k.
    num_coordinates: n, the flattened size of one particle.

  Returns:
    A `SwarmState` of non-trainable variables.
  """
  zeros = tf.zeros([num_particles, num_coordinates])
  return SwarmState(
      momentum=tf.Variable(zeros, trainable=False, name="momentum"),
      best_x=tf.Variable(zeros, trainable=False, name="best_x"),
      best_f=tf.Variable(tf.fill([num_particles], float("inf")),
                         trainable=False, name="best_f"),
      delta_prev=tf.Variable(zeros, trainable=False, name="delta_prev"))


def swarm_features(config, grads, flat_x, losses, state):
  """One step's per-coordinate features and the next swarm state.

  Args:
    config: the `SwarmConfig`.
    grads: [k, n] gradients.
    flat_x: [k, n] positions.
    losses: [k] the particles' losses.
    state: the `SwarmState` before the step.

  Returns:
    `(features [k, n, F], state)`: F the enabled features in
    `config.feature_names()` order; `delta_prev` is left for the caller,
    which knows the step's update.
  """
  if config.use_gradient_attention:
    stacked = [features.inter_particle_attention(
        grads, flat_x, config.attention_gamma, config.attention_length_scale)]
  else:
    stacked = [grads]
  momentum, best_x, best_f = state.momentum, state.best_x, state.best_f
  if config.use_momentum:
    momentum = features.momentum(momentum, grads, config.momentum_beta)
    stacked.append(momentum)
  if config.use_personal_best:
    best_x, best_f = features.update_personal_best(flat_x, losses, best_x,
                                                   best_f)
    stacked.append(flat_x - best_x)
  if config.use_attraction:
    stacked.append(features.attraction(flat_x, losses,
                                       config.attraction_alpha))
  return tf.stack(stacked, axis=-1), state._replace(
      momentum=momentum, best_x=best_x, best_f=best_f)


def make_attention(config, attention_path):
  """The feature attention, restored from `attention_path` when given.

  Args:
    config: the `SwarmConfig`.
    attention_path: an `attention.l2l` file, or None for a fresh module.

  Returns:
    A `features.FeatureAttention`, or None when it is switched off.

  Raises:
    ValueError: if the file is not an attention checkpoint that fits.
  """
  if not config.use_feature_attention:
    return None
  initializer = None
  if attention_path is not None:
    values = l2l_file.load(attention_path)
    if list(values) != [features.FeatureAttention.MODULE_NAME]:
      raise ValueError("{} is not a swarm attention checkpoint: expected the "
                       "module {!r}, found {}.".format(
                           attention_path, features.FeatureAttention.MODULE_NAME,
                           sorted(values)))
    initializer = values[features.FeatureAttention.MODULE_NAME]
  try:
    return features.FeatureAttention(
        num_features=len(config.feature_names()),
        hidden_size=config.attention_hidden_size, initializer=initializer)
  except ValueError as error:
    raise ValueError("{} does not fit this swarm configuration: {}".format(
        attention_path, error)) from error


class SwarmStep:
  """One step of the swarm: features, attention, nets, move.

  Attributes:
    config: the `SwarmConfig`.
    shapes: each variable's [k, ...] shape.
  """

  def __init__(self, config, make_loss, constants, names, shapes, nets,
               net_keys, subsets, attention, second_derivatives):
    """Keeps what every step uses.

    Args:
      config: the `SwarmConfig`.
      make_loss: the problem's `build` function.
      constants: the problem instance.
      names: the optimizee variables' names.
      shapes: each variable's [k, ...] shape.
      nets: the nets by id.
      net_keys: the ids in assignment order.
      subsets: the indices of each id's variables.
      attention: the feature attention, or None (features are averaged).
      second_derivatives: let the meta-gradient flow through gradients.
    """
    self.config = config
    self.shapes = shapes
    self._make_loss = make_loss
    self._constants = constants
    self._names = names
    self._nets = nets
    self._net_keys = net_keys
    self._subsets = subsets
    self._attention = attention
    self._second_derivatives = second_derivatives

  def losses(self, x):
    """Per-row losses [k, rows] and per-particle mean losses [k] at `x`."""
    return particles.particle_losses(self._make_loss, x, self._constants)

  def move(self, x, losses, net_state, state):
    """Moves every particle once.

    Args:
      x: one [k, ...] tensor per variable.
      losses: [k] the particles' losses at `x`.
      net_state: the nets' states.
      state: the `SwarmState`.

    Returns:
      `(x_next, net_state_next, state_next)`.
    """
    grads = unroll.optimizee_gradients(tf.reduce_sum(losses), x, self._names,
                                       self._second_derivatives)
    flat_x = particles.flatten(x)
    stacked, state = swarm_features(self.config, particles.flatten(grads),
                                    flat_x, losses, state)
    if self._attention is None:
      combined = tf.reduce_mean(stacked, axis=-1)
    else:
      combined = self._attention(stacked, state.delta_prev)
    inputs = particles.unflatten(combined, self.shapes)
    x_next = list(x)
    net_state_next = []
    for subset, key, net_states in zip(self._subsets, self._net_keys,
                                       net_state):
      outputs = [self._nets[key](inputs[j], s) for j, s in zip(subset,
                                                               net_states)]
      for j, (delta, _) in zip(subset, outputs):
        x_next[j] = x_next[j] + delta
      net_state_next.append([s for _, s in outputs])
    delta = particles.flatten([a - b for a, b in zip(x_next, x)])
    return x_next, net_state_next, state._replace(delta_prev=delta)


def swarm_meta_loss(config, make_loss, len_unroll, x, constants, nets,
                    net_keys, subsets, attention_path, second_derivatives):
  """Builds LOIS's unroll; `meta.MetaOptimizer.meta_loss` calls this.

  Args:
    config: a `SwarmConfig` with `num_particles > 1`.
    make_loss: the problem's `build` function.
    len_unroll: steps per unroll.
    x: the problem's trainable variables (the first particle).
    constants: its non-trainable variables (shared by all particles).
    nets: the nets by id.
    net_keys: the ids in assignment order.
    subsets: the indices of each id's variables.
    attention_path: `.l2l` file of the attention weights, or None.
    second_derivatives: let gradients flow through optimizee gradients.

  Returns:
    A `SwarmUnroll`: the six fields of `meta.MetaLoss`, the attention module
    (None when switched off), the entropy schedule's variables, the
    per-step, per-particle losses [len_unroll + 1, k] and the starting
    points (one [k, ...] tensor per variable).
  """
  k = config.num_particles
  starts = particles.draw_particles(make_loss, x, constants, k)
  shapes = [[k] + v.shape.as_list() for v in x]
  attention = make_attention(config, attention_path)
  step = SwarmStep(config, make_loss, constants,
                   [interception.variable_name(v) for v in x], shapes, nets,
                   net_keys, subsets, attention, second_derivatives)
  x_initial = [tf.stack(p) for p in zip(*starts)]
  with tf.name_scope("fx_probe"):
    probe_rows = interception.make_with_custom_variables(make_loss, x,
                                                         constants)
  points = posterior.PosteriorPoints(x, probe_rows)
  with tf.name_scope("swarm_state"):
    net_states = unroll.net_states(nets, net_keys, subsets, shapes,
                                   name="net_state")
    swarm_state = initial_swarm_state(k, int(particles.flatten(
        x_initial).shape[1]))

  def time_step(t, fx_array, points_array, values_array, x, net_state,
                state):
    rows, losses = step.losses(x)
    fx_array = fx_array.write(t, losses)
    if config.use_entropy:
      # The posterior's points; evaluation switches the entropy off.
      points_array = points_array.write(
          t, points.points(x, particles.flatten(x)))
      values_array = values_array.write(t, points.values(rows, losses))
    x, net_state, state = step.move(x, losses, net_state, state)
    return t + 1, fx_array, points_array, values_array, x, net_state, state

  arrays = [tf.TensorArray(tf.float32, size=len_unroll + 1,
                           clear_after_read=False) for _ in range(3)]
  loop_vars = (0, *arrays, x_initial,
               tf.nest.map_structure(tf.identity, net_states),
               SwarmState(*[tf.identity(v) for v in swarm_state]))
  (_, fx_array, points_array, values_array, x_final, net_state_final,
   swarm_state_final) = tf.while_loop(
       cond=lambda t, *_: t < len_unroll, body=time_step, loop_vars=loop_vars,
       parallel_iterations=1, name="swarm_unroll")

  with tf.name_scope("fx_final"):
    rows_final, fx_final = step.losses(x_final)
  fx_array = fx_array.write(len_unroll, fx_final)
  fx_history = fx_array.stack()
  loss = tf.reduce_sum(fx_history)
  update = []
  entropy_variables = []
  if config.use_entropy:
    points_array = points_array.write(
        len_unroll, points.points(x_final, particles.flatten(x_final)))
    values_array = values_array.write(
        len_unroll, points.values(rows_final, fx_final))
    entropy, entropy_update, entropy_variables = posterior.entropy_term(
        config, points.dims, points_array.stack(), values_array.stack())
    loss += config.entropy_weight * entropy
    update.append(entropy_update)
  loss = tf.identity(loss, name="loss")

  with tf.name_scope("reset"):
    variables = (sum(starts, []) + list(constants) +
                 tf.nest.flatten(net_states) + list(swarm_state))
    reset = [tf.compat.v1.variables_initializer(variables)]
  with tf.name_scope("update"):
    for j, start in enumerate(starts):
      update.extend(tf.compat.v1.assign(v, x_final[i][j])
                    for i, v in enumerate(start))
    update.extend(tf.nest.flatten(unroll.nested_assign(net_states,
                                                       net_state_final)))
    update.extend(unroll.nested_assign(list(swarm_state),
                                       list(swarm_state_final)))
  logging.info("Swarm of %d particles, features %s, feature attention %s, "
               "entropy %s", k, ", ".join(config.feature_names()),
               "on" if attention else "off",
               "on" if config.use_entropy else "off")
  return SwarmUnroll((loss, update, reset, fx_final, x_final, constants),
                     attention, entropy_variables, fx_history, x_initial)
