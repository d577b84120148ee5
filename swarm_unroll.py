"""The LOIS unroll: a swarm of particles driven by one learned optimizer.

Each optimizee variable gets a leading particle axis [k, ...]. Every step, each
particle's gradient, momentum, personal-best residual and attraction to better
particles are combined per coordinate by `swarm.FeatureAttention` and fed to
the (coordinate-wise) nets. The meta-loss adds the entropy of a Gaussian
process posterior over the optimum's location to the summed particle losses.
See `swarm.py` for the formulas.
"""

import collections
import dataclasses
import numbers

from absl import logging
import numpy as np
import tensorflow as tf

import checkpoint
import meta
import swarm

ATTENTION_ID = "attention"

SwarmUnroll = collections.namedtuple(
    "SwarmUnroll",
    "meta_loss, attention, schedule_variables, fx_history, x_initial")
_FEATURES = ("gradient", "momentum", "personal_best", "attraction")


@dataclasses.dataclass(frozen=True)
class SwarmConfig:
  """Options of LOIS swarm mode; each default is the paper's.

  Attributes:
    num_particles: k; swarm mode is on when k > 1.
    momentum_beta: decay of the momentum feature.
    attraction_alpha: inverse temperature of the attraction weights.
    attention_gamma: weight of inter-particle gradient attention (None: 1/k).
    attention_length_scale: length `l` of its position kernel.
    attention_hidden_size: width of the feature attention.
    gp_length_scale: RBF length of the posterior's Gaussian process.
    gp_nugget: added to the GP kernel's diagonal.
    entropy_weight: lambda, the weight of the posterior entropy.
    num_posterior_samples: M, candidate points of the posterior.
    posterior_sample_stddev: spread of candidates around visited points.
    entropy_scale: h of `rho = exp(sqrt(n) / h)`; None follows LOIS's
      schedule (d ln 5, then the first meta-iteration's entropy).
    use_gradient_attention, use_momentum, use_personal_best, use_attraction,
    use_feature_attention, use_entropy: switches for ablations. Without
      feature attention the enabled features are averaged.
  """
  num_particles: int = 1
  momentum_beta: float = 0.9
  attraction_alpha: float = 1.0
  attention_gamma: float = None
  attention_length_scale: float = 1.0
  attention_hidden_size: int = 10
  gp_length_scale: float = 1.0
  gp_nugget: float = 2.1
  entropy_weight: float = 0.001
  num_posterior_samples: int = 1000
  posterior_sample_stddev: float = 1.0
  entropy_scale: float = None
  use_gradient_attention: bool = True
  use_momentum: bool = True
  use_personal_best: bool = True
  use_attraction: bool = True
  use_feature_attention: bool = True
  use_entropy: bool = True

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if field.name.startswith("use_"):
        valid = isinstance(value, bool)
      elif field.default is None:
        valid = value is None or isinstance(value, numbers.Real)
      else:
        valid = (isinstance(value, numbers.Real) and
                 not isinstance(value, bool))
      if not valid:
        raise ValueError("Swarm option {}={!r} must be {}.".format(
            field.name, value, "True or False" if field.name.startswith(
                "use_") else "a number"))
    if (not isinstance(self.num_particles, numbers.Integral) or
        isinstance(self.num_particles, bool) or self.num_particles < 1):
      raise ValueError("Swarm option num_particles must be a positive "
                       "integer, got {!r}.".format(self.num_particles))

  @classmethod
  def option_names(cls):
    """The keyword names reserved for swarm options."""
    return {field.name for field in dataclasses.fields(cls)}

  @property
  def active(self):
    return self.num_particles > 1

  def feature_names(self):
    """The enabled features, in the order they are stacked."""
    return tuple(name for name in _FEATURES
                 if name == "gradient" or getattr(self, "use_" + name))


def _flatten(tensors, num_particles):
  """Concatenates per-variable tensors [k, ...] into one [k, n] tensor."""
  return tf.concat([tf.reshape(t, [num_particles, -1]) for t in tensors], 1)


def _unflatten(flat, shapes):
  """Splits a [k, n] tensor back into tensors of the given [k, ...] shapes."""
  sizes = [int(np.prod(shape[1:])) for shape in shapes]
  return [tf.reshape(part, shape)
          for part, shape in zip(tf.split(flat, sizes, axis=1), shapes)]


def draw_particles(make_loss, x, constants, num_particles):
  """The starting points of a swarm on one problem instance.

  Args:
    make_loss: the problem's `build` function.
    x: its variables from `meta._get_variables`: the first particle.
    constants: the instance, shared by every particle.
    num_particles: k.

  Returns:
    k lists of variables: `x`, then fresh draws of the problem's
    initialisers (in this order, so that PSO and the learned swarm start
    alike under one seed).
  """
  return [list(x)] + [
      list(meta._get_variables(make_loss, constants)[0])  # pylint: disable=protected-access
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


class _Posterior:
  """Where the posterior term gets its points: per batch row, or whole x.

  A problem with one [batch, d] variable and one loss per batch row holds
  `batch` independent instances, each with its own optimum in R^d; anything
  else is one instance whose points are the flattened variables.
  """

  def __init__(self, x, rows):
    self.per_row = is_per_row(x, rows)
    self.dims = (int(x[0].shape[1]) if self.per_row else
                 sum(int(np.prod(v.shape)) for v in x))

  def points(self, x, flat_x):
    """[rows, k, d] points of one step."""
    if self.per_row:
      return tf.transpose(x[0], [1, 0, 2])
    return tf.expand_dims(flat_x, 0)

  def values(self, rows, losses):
    """[rows, k] values of one step."""
    if self.per_row:
      return tf.transpose(rows)
    return tf.expand_dims(losses, 0)


def _make_attention(config, attention_path):
  if not config.use_feature_attention:
    return None
  initializer = None
  if attention_path is not None:
    values = checkpoint.load(attention_path)
    if list(values) != [swarm.FeatureAttention.MODULE_NAME]:
      raise ValueError("{} is not a swarm attention checkpoint: expected the "
                       "module {!r}, found {}.".format(
                           attention_path, swarm.FeatureAttention.MODULE_NAME,
                           sorted(values)))
    initializer = values[swarm.FeatureAttention.MODULE_NAME]
  try:
    return swarm.FeatureAttention(
        num_features=len(config.feature_names()),
        hidden_size=config.attention_hidden_size, initializer=initializer)
  except ValueError as error:
    raise ValueError("{} does not fit this swarm configuration: {}".format(
        attention_path, error)) from error


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
  particles = [list(v) for v in zip(*draw_particles(make_loss, x, constants,
                                                    k))]
  shapes = [[k] + v.shape.as_list() for v in x]
  attention = _make_attention(config, attention_path)

  def losses_at(point):
    """Per-row losses [k, rows] and per-particle mean losses [k]."""
    rows = []
    for j in range(k):
      with tf.name_scope("particle_{}".format(j)):
        row = meta._make_with_custom_variables(  # pylint: disable=protected-access
            make_loss, [p[j] for p in point], constants)
        rows.append(tf.reshape(row, [-1]))
    rows = tf.stack(rows)
    return rows, tf.reduce_mean(rows, axis=1)

  x_initial = [tf.stack(p) for p in particles]
  names = [meta._variable_name(v) for v in x]  # pylint: disable=protected-access
  with tf.name_scope("fx_probe"):
    probe_rows = meta._make_with_custom_variables(  # pylint: disable=protected-access
        make_loss, x, constants)
  posterior = _Posterior(x, probe_rows)
  num_coordinates = sum(int(np.prod(shape[1:])) for shape in shapes)

  with tf.name_scope("swarm_state"):
    net_states = meta._net_states(nets, net_keys, subsets, shapes,  # pylint: disable=protected-access
                                  name="net_state")
    zeros = tf.zeros([k, num_coordinates])
    momentum = tf.Variable(zeros, trainable=False, name="momentum")
    best_x = tf.Variable(zeros, trainable=False, name="best_x")
    best_f = tf.Variable(tf.fill([k], np.inf), trainable=False, name="best_f")
    delta_prev = tf.Variable(zeros, trainable=False, name="delta_prev")
  swarm_state = [momentum, best_x, best_f, delta_prev]

  def features_of(grads, flat_x, losses, state):
    """The per-coordinate features [k, n, F] and the next swarm state."""
    m, bx, bf, dp = state
    features = [swarm.inter_particle_attention(
        grads, flat_x, config.attention_gamma, config.attention_length_scale)
                if config.use_gradient_attention else grads]
    if config.use_momentum:
      m = swarm.momentum(m, grads, config.momentum_beta)
      features.append(m)
    if config.use_personal_best:
      bx, bf = swarm.update_personal_best(flat_x, losses, bx, bf)
      features.append(flat_x - bx)
    if config.use_attraction:
      features.append(swarm.attraction(flat_x, losses,
                                       config.attraction_alpha))
    return tf.stack(features, axis=-1), [m, bx, bf, dp]

  def time_step(t, fx_array, points_array, values_array, x, net_state,
                state):
    rows, losses = losses_at(x)
    flat_x = _flatten(x, k)
    fx_array = fx_array.write(t, losses)
    if config.use_entropy:
      # The posterior's points; evaluation switches the entropy off.
      points_array = points_array.write(t, posterior.points(x, flat_x))
      values_array = values_array.write(t, posterior.values(rows, losses))
    grads = meta._gradients(  # pylint: disable=protected-access
        tf.reduce_sum(losses), x, names)
    if not second_derivatives:
      grads = [tf.stop_gradient(g) for g in grads]
    features, state = features_of(_flatten(grads, k), flat_x, losses, state)
    if attention is None:
      combined = tf.reduce_mean(features, axis=-1)
    else:
      combined = attention(features, state[3])
    inputs = _unflatten(combined, shapes)
    x_next = list(x)
    net_state_next = []
    for subset, key, s in zip(subsets, net_keys, net_state):
      outputs = [nets[key](inputs[j], s_j) for j, s_j in zip(subset, s)]
      for j, (delta, _) in zip(subset, outputs):
        x_next[j] = x[j] + delta
      net_state_next.append([s_j for _, s_j in outputs])
    state[3] = _flatten([a - b for a, b in zip(x_next, x)], k)
    return t + 1, fx_array, points_array, values_array, x_next, \
        net_state_next, state

  arrays = [tf.TensorArray(tf.float32, size=len_unroll + 1,
                           clear_after_read=False) for _ in range(3)]
  loop_vars = (0, *arrays, x_initial,
               tf.nest.map_structure(tf.identity, net_states),
               [tf.identity(v) for v in swarm_state])
  (_, fx_array, points_array, values_array, x_final, net_state_final,
   swarm_state_final) = tf.while_loop(
       cond=lambda t, *_: t < len_unroll, body=time_step, loop_vars=loop_vars,
       parallel_iterations=1, name="swarm_unroll")

  with tf.name_scope("fx_final"):
    rows_final, fx_final = losses_at(x_final)
  fx_array = fx_array.write(len_unroll, fx_final)
  fx_history = fx_array.stack()
  loss = tf.reduce_sum(fx_history)
  update = []
  entropy_variables = []
  if config.use_entropy:
    points_array = points_array.write(
        len_unroll, posterior.points(x_final, _flatten(x_final, k)))
    values_array = values_array.write(
        len_unroll, posterior.values(rows_final, fx_final))
    entropy, entropy_update, entropy_variables = _entropy_term(
        config, posterior, points_array.stack(), values_array.stack())
    loss += config.entropy_weight * entropy
    update.append(entropy_update)
  loss = tf.identity(loss, name="loss")

  with tf.name_scope("reset"):
    variables = (sum(particles, []) + list(constants) +
                 tf.nest.flatten(net_states) + swarm_state)
    reset = [tf.compat.v1.variables_initializer(variables)]
  with tf.name_scope("update"):
    for i, particle_vars in enumerate(particles):
      update.extend(tf.compat.v1.assign(v, x_final[i][j])
                    for j, v in enumerate(particle_vars))
    update.extend(tf.nest.flatten(meta._nested_assign(  # pylint: disable=protected-access
        net_states, net_state_final)))
    update.extend(meta._nested_assign(swarm_state, list(swarm_state_final)))  # pylint: disable=protected-access
  logging.info("Swarm of %d particles, features %s, feature attention %s, "
               "entropy %s", k, ", ".join(config.feature_names()),
               "on" if attention else "off",
               "on" if config.use_entropy else "off")
  return SwarmUnroll((loss, update, reset, fx_final, x_final, constants),
                     attention, entropy_variables, fx_history, x_initial)


def _entropy_term(config, posterior, points, values):
  """The posterior entropy H and the op that advances LOIS's h schedule.

  Args:
    config: the `SwarmConfig`.
    posterior: where the points come from.
    points: [T+1, rows, k, d] visited points.
    values: [T+1, rows, k] their losses.

  Returns:
    `(H, update op, variables of the schedule)`.
  """
  steps, rows, k, dims = points.shape.as_list()
  points = tf.reshape(tf.transpose(points, [1, 0, 2, 3]),
                      [rows, steps * k, dims])
  values = tf.reshape(tf.transpose(values, [1, 0, 2]), [rows, steps * k])
  fixed = config.entropy_scale is not None
  scale = tf.Variable(
      float(config.entropy_scale) if fixed else
      swarm.initial_entropy_scale(posterior.dims),
      trainable=False, name="entropy_scale")
  scale_set = tf.Variable(fixed, trainable=False, name="entropy_scale_set")
  rho = swarm.entropy_temperature(float(steps * k), scale)
  entropy = swarm.posterior_entropy(
      points, values, tf.stop_gradient(rho),
      num_samples=config.num_posterior_samples,
      length_scale=config.gp_length_scale, nugget=config.gp_nugget,
      sample_stddev=config.posterior_sample_stddev)
  # LOIS's schedule: after the first pass h becomes that pass's entropy (kept
  # away from 0, where rho would overflow).
  first_entropy = tf.maximum(tf.stop_gradient(entropy), 1e-2)
  new_scale = tf.where(scale_set, scale, first_entropy)
  assign_scale = tf.compat.v1.assign(scale, new_scale)
  with tf.control_dependencies([assign_scale]):
    update = tf.compat.v1.assign(scale_set, True)
  return entropy, update, [scale, scale_set]
