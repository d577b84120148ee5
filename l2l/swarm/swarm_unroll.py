"""The LOIS unroll: a swarm of particles driven by one learned optimizer.

Each optimizee variable gets a leading particle axis [k, ...]. Every step, each
particle's gradient, momentum, personal-best residual and attraction to better
particles are combined per coordinate by `features.FeatureAttention` and fed
to the (coordinate-wise) nets; with `SwarmConfig.attraction_gain` a learned
gate also moves each particle toward its instance's record (the best point
found). The meta-loss is the objective of
`SwarmConfig.objective` (`objective_loss`: LOIS's sum of every particle's
loss, or a reward for the best point found) plus the entropy of a Gaussian
process posterior over the optimum's location (`posterior.py`).

The unroll is built from small steps: `initial_swarm_state` creates the
persistent `SwarmState`, `swarm_features` computes one step's features and
the next state, `SwarmStep` applies the nets, and `swarm_meta_loss` ties them
into a `tf.while_loop`.
"""

import collections
import math

from absl import logging
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.core import interception
from l2l.core import particles
from l2l.core import unroll
from l2l.swarm import config as config_lib
from l2l.swarm import features
from l2l.swarm import posterior

# Kept here too: callers of the unroll name the reserved ids through it.
ATTENTION_ID = config_lib.ATTENTION_ID
GATE_ID = config_lib.GATE_ID
SwarmConfig = config_lib.SwarmConfig

SwarmUnroll = collections.namedtuple(
    "SwarmUnroll",
    "meta_loss, attention, gate, fx_history, x_initial, gate_learns")

SwarmState = collections.namedtuple(
    "SwarmState",
    "momentum, best_x, best_f, delta_prev, previous_f, step_size")
SwarmState.__doc__ = """The swarm's own loop state, besides positions and nets.

momentum: [k, n] running average of each particle's gradient.
best_x: [k, n] the best point each particle has visited.
best_f: its loss (inf before the first step): [k], or [k, rows] when each
  batch row is a swarm of its own (`SwarmConfig.per_instance`).
delta_prev: [k, n] the previous step's update.
previous_f: like `best_f`, each particle's loss at its previous step (inf
  before its first and, with "hop", right after a hop).
step_size: like `best_f`, each particle's factor of the nets' updates
  (`SwarmConfig.step_shrink`); a constant of ones, not a variable, when
  that is off, so swarms without it keep the variables they always had
  (and their training states resume).
"""


class Instances:
  """How a swarm's [k, n] tensors split into independent instances.

  A problem that is a batch of independent instances (one [rows, d]
  variable, one loss per row) under `SwarmConfig.per_instance` holds `rows`
  swarms of k points in R^d; anything else is one swarm of k points in R^n.
  The swarm features compare particles within each instance.

  Attributes:
    count: R, the number of instances.
    per_row: whether the instances are the batch rows.
  """

  def __init__(self, per_row, count):
    self.per_row = per_row
    self.count = count

  def points(self, flat):
    """[k, n] -> [R, k, n / R]: each instance's particles."""
    k = int(flat.shape[0])
    return tf.transpose(tf.reshape(flat, [k, self.count, -1]), [1, 0, 2])

  def flat(self, points):
    """The inverse of `points`: [R, k, d] -> [k, R * d]."""
    k = int(points.shape[1])
    return tf.reshape(tf.transpose(points, [1, 0, 2]), [k, -1])

  def losses(self, rows, means):
    """[k, R] losses: each particle's per-row losses, or its mean."""
    return rows if self.per_row else tf.expand_dims(means, 1)

  def state_shape(self, num_particles):
    """The shape of `SwarmState.best_f`."""
    return [num_particles, self.count] if self.per_row else [num_particles]


def initial_swarm_state(num_particles, num_coordinates, instances=None,
                        adaptive_steps=False):
  """Creates the swarm state's persistent variables.

  Args:
    num_particles: k.
    num_coordinates: n, the flattened size of one particle.
    instances: the `Instances` (None: one).
    adaptive_steps: whether the step sizes change (`step_shrink` < 1).

  Returns:
    A `SwarmState` of non-trainable variables (`step_size` a constant
    without `adaptive_steps`).
  """
  instances = instances or Instances(False, 1)
  zeros = tf.zeros([num_particles, num_coordinates])
  unseen = tf.fill(instances.state_shape(num_particles), float("inf"))
  ones = tf.ones(instances.state_shape(num_particles))
  return SwarmState(
      momentum=tf.Variable(zeros, trainable=False, name="momentum"),
      best_x=tf.Variable(zeros, trainable=False, name="best_x"),
      best_f=tf.Variable(unseen, trainable=False, name="best_f"),
      delta_prev=tf.Variable(zeros, trainable=False, name="delta_prev"),
      previous_f=tf.Variable(unseen, trainable=False, name="previous_f"),
      step_size=(tf.Variable(ones, trainable=False, name="step_size")
                 if adaptive_steps else ones))


def swarm_features(config, grads, flat_x, losses, state, instances=None):
  """One step's per-coordinate features and the next swarm state.

  Args:
    config: the `SwarmConfig`.
    grads: [k, n] gradients.
    flat_x: [k, n] positions.
    losses: [k, R] the particles' losses on each instance.
    state: the `SwarmState` before the step.
    instances: the `Instances` (None: one, `losses` [k, 1]).

  Returns:
    `(features [k, n, F], state)`: F the enabled features in
    `config.feature_names()` order; `delta_prev` is left for the caller,
    which knows the step's update. Personal bests are kept whether or not
    their feature is on: the "best_so_far" objective reads them.
  """
  instances = instances or Instances(False, 1)
  points = instances.points(flat_x)
  instance_losses = tf.transpose(losses)
  if config.use_gradient_attention:
    stacked = [instances.flat(features.inter_particle_attention(
        instances.points(grads), points, config.attention_gamma,
        config.attention_length_scale))]
  else:
    stacked = [grads]
  momentum = state.momentum
  if config.use_momentum:
    momentum = features.momentum(momentum, grads, config.momentum_beta)
    stacked.append(momentum)
  best_shape = state.best_f.shape
  best_x, best_f = features.update_personal_best(
      tf.transpose(points, [1, 0, 2]), losses,
      tf.transpose(instances.points(state.best_x), [1, 0, 2]),
      tf.reshape(state.best_f, [-1, instances.count]))
  best_x = tf.reshape(best_x, tf.shape(flat_x))
  best_f = tf.reshape(best_f, best_shape)
  if config.use_personal_best:
    stacked.append(flat_x - best_x)
  if config.use_attraction:
    stacked.append(instances.flat(features.attraction(
        points, instance_losses, config.attraction_alpha)))
  return tf.stack(stacked, axis=-1), state._replace(
      momentum=momentum, best_x=best_x, best_f=best_f)


def _make_module(make, module_name, what, path):
  """A swarm module, its variables restored from `path` when given.

  Args:
    make: builds the module from an `initializer` dict (or None).
    module_name: the module's name in its `.l2l` file.
    what: what the file holds, for errors ("attention").
    path: the module's `.l2l` file, or None for a fresh module.

  Returns:
    The module.

  Raises:
    ValueError: if the file is not such a checkpoint, or does not fit.
  """
  initializer = None
  if path is not None:
    values = l2l_file.load(path)
    if list(values) != [module_name]:
      raise ValueError("{} is not a swarm {} checkpoint: expected the module "
                       "{!r}, found {}.".format(path, what, module_name,
                                               sorted(values)))
    initializer = values[module_name]
  try:
    return make(initializer)
  except ValueError as error:
    raise ValueError("{} does not fit this swarm configuration: {}".format(
        path, error)) from error


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
  return _make_module(
      lambda initializer: features.FeatureAttention(
          num_features=len(config.feature_names()),
          hidden_size=config.attention_hidden_size, initializer=initializer),
      features.FeatureAttention.MODULE_NAME, "attention", attention_path)


def make_gate(config, gate_path):
  """The attraction gate, restored from `gate_path` when given.

  Args:
    config: the `SwarmConfig`.
    gate_path: a `gate.l2l` file, or None for a fresh module.

  Returns:
    A `features.AttractionGate`, or None when `attraction_gain` is "off".

  Raises:
    ValueError: if the file is not a gate checkpoint that fits.
  """
  if not config.gated:
    return None
  default = None
  if config.attraction_gain == "hop":
    default = features.AttractionGate.stall_rule(config.hop_threshold)
  return _make_module(
      lambda initializer: features.AttractionGate(
          initializer=default if initializer is None else initializer),
      features.AttractionGate.MODULE_NAME, "gate", gate_path)


class SwarmStep:
  """One step of the swarm: features, attention, nets, move.

  Attributes:
    config: the `SwarmConfig`.
    shapes: each variable's [k, ...] shape.
  """

  def __init__(self, config, make_loss, constants, names, shapes, nets,
               net_keys, subsets, attention, second_derivatives,
               instances=None, gate=None):
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
      instances: the `Instances` the features compare particles within
        (None: one).
      gate: the `features.AttractionGate`, or None (no move toward the
        record).
    """
    self.config = config
    self.instances = instances or Instances(False, 1)
    self.shapes = shapes
    self._make_loss = make_loss
    self._constants = constants
    self._names = names
    self._nets = nets
    self._net_keys = net_keys
    self._subsets = subsets
    self._attention = attention
    self._second_derivatives = second_derivatives
    self._gate = gate

  def losses(self, x):
    """Per-row losses [k, rows] and per-particle mean losses [k] at `x`."""
    return particles.particle_losses(self._make_loss, x, self._constants)

  def move(self, x, losses, net_state, state, rows=None):
    """Moves every particle once.

    Args:
      x: one [k, ...] tensor per variable.
      losses: [k] the particles' losses at `x`.
      net_state: the nets' states.
      state: the `SwarmState`.
      rows: [k, rows] the per-row losses at `x`; needed when the instances
        are the batch rows.

    Returns:
      `(x_next, net_state_next, state_next, log_prob)`: `log_prob` [k, R]
      is the log-probability of each particle's jump decision on each
      instance ("jump" and "hop" gains), else zeros.
    """
    grads = unroll.optimizee_gradients(tf.reduce_sum(losses), x, self._names,
                                       self._second_derivatives)
    flat_x = particles.flatten(x)
    previous_best = state.best_f
    instance_losses = self.instances.losses(rows, losses)
    stacked, state = swarm_features(
        self.config, particles.flatten(grads), flat_x, instance_losses,
        state, self.instances)
    if self._attention is None:
      combined = tf.reduce_mean(stacked, axis=-1)
    else:
      combined = self._attention(stacked, state.delta_prev)
    inputs = particles.unflatten(combined, self.shapes)
    # A variable no net is assigned to stays where it is; one assigned to
    # several nets moves by the sum of their updates (as DeepMind's).
    moves = [tf.zeros_like(v) for v in x]
    net_state_next = []
    for subset, key, net_states in zip(self._subsets, self._net_keys,
                                       net_state):
      outputs = [self._nets[key](inputs[j], s) for j, s in zip(subset,
                                                               net_states)]
      for j, (delta, _) in zip(subset, outputs):
        if self.config.step_scale != 1:
          delta *= self.config.step_scale
        if self.config.step_noise:
          delta += tf.random.normal(tf.shape(delta),
                                    stddev=self.config.step_noise)
        moves[j] += delta
      net_state_next.append([s for _, s in outputs])
    step_size = self._step_sizes(instance_losses, state)
    if self.config.step_shrink != 1:
      moves = particles.unflatten(self.instances.flat(
          self.instances.points(particles.flatten(moves)) *
          tf.expand_dims(tf.transpose(step_size), -1)), self.shapes)
    x_next = [a + b for a, b in zip(x, moves)]
    log_prob = tf.zeros_like(instance_losses)
    previous_f = instance_losses
    if self._gate is not None:
      pull, log_prob, hopped = self._pull(flat_x, instance_losses,
                                          previous_best, state)
      x_next = [a + b for a, b in zip(x_next, particles.unflatten(
          pull, self.shapes))]
      # A particle that has just hopped starts afresh: no previous loss,
      # and its full step size.
      previous_f = tf.where(hopped, tf.fill(tf.shape(previous_f),
                                            float("inf")), previous_f)
      if self.config.step_shrink != 1:
        step_size = tf.where(hopped, tf.ones_like(step_size), step_size)
    delta = particles.flatten([a - b for a, b in zip(x_next, x)])
    return x_next, net_state_next, state._replace(
        delta_prev=delta,
        previous_f=tf.reshape(previous_f, state.previous_f.shape),
        step_size=tf.reshape(step_size, state.step_size.shape)), log_prob

  def _step_sizes(self, instance_losses, state):
    """Each particle's step size on each instance for this step, [k, R].

    The "bold driver" rule of `SwarmConfig.step_shrink`: shrunk after a step
    that made the particle's loss worse, grown back toward 1 after one that
    did not. The sizes are constants to the meta-gradient, as the gate's
    inputs are.
    """
    size = tf.reshape(state.step_size, tf.shape(instance_losses))
    shrink = self.config.step_shrink
    if shrink == 1:
      return size
    previous = tf.reshape(state.previous_f, tf.shape(instance_losses))
    return tf.stop_gradient(tf.where(
        instance_losses > previous, size * shrink,
        tf.minimum(1.0, size / math.sqrt(shrink))))

  def _pull(self, flat_x, instance_losses, previous_best, state):
    """The gated move toward each instance's record.

    Args:
      flat_x: [k, n] positions.
      instance_losses: [k, R] the particles' losses on each instance.
      previous_best: `SwarmState.best_f` before this step.
      state: the `SwarmState` after this step's personal-best update.

    Returns:
      `(pull [k, n], log_prob [k, R], hopped [k, R])`: `c (x_record - x)`
      per instance ("hop": `c (x_record + u - x)`, u the hop's noise), the
      log-probability of each jump decision (zeros unless the gate jumps)
      and whether each particle hopped (all False unless "hop").
    """
    k = int(flat_x.shape[0])
    points = self.instances.points(flat_x)
    record, record_loss = features.record_point(
        self.instances.points(state.best_x),
        tf.transpose(tf.reshape(state.best_f, [k, self.instances.count])))
    # The gate reads the swarm's state; the meta-gradient reaches its
    # weights through the gate's value (or its jumps' log-probabilities),
    # not through what it reads.
    hop = self.config.attraction_gain == "hop"
    # A hopping particle's stillness is its progress since its last step
    # (since its last hop, the first step after one counting as progress);
    # otherwise, on its own best.
    reference = state.previous_f if hop else previous_best
    inputs = tf.stop_gradient(features.gate_inputs(
        tf.transpose(instance_losses), record_loss,
        tf.transpose(tf.reshape(reference, [k, self.instances.count]))))
    coefficient = self._gate(inputs)
    log_prob = tf.zeros_like(coefficient)
    if self.config.jumps:
      coefficient = tf.cast(
          tf.random.uniform(tf.shape(coefficient)) < coefficient, tf.float32)
      log_prob = -tf.nn.sigmoid_cross_entropy_with_logits(
          labels=coefficient, logits=self._gate.logits(inputs))
      if hop and self.config.step_shrink != 1:
        # Each instance's record holder refines the record instead of
        # hopping (`SwarmConfig.step_shrink`): it takes no decision.
        holder = tf.equal(
            tf.transpose(tf.reshape(state.best_f, [k, self.instances.count])),
            tf.expand_dims(record_loss, -1))
        coefficient = tf.where(holder, tf.zeros_like(coefficient),
                               coefficient)
        log_prob = tf.where(holder, tf.zeros_like(log_prob), log_prob)
    target = tf.expand_dims(record, -2)
    if hop:
      target += tf.random.uniform(tf.shape(points), -1.0, 1.0) * tf.reshape(
          hop_widths(self.config), [1, k, 1])
    pull = tf.expand_dims(coefficient, -1) * (target - points)
    hopped = tf.logical_and(tf.constant(hop), coefficient > 0)
    return (self.instances.flat(pull), tf.transpose(log_prob),
            tf.transpose(hopped))


def hop_widths(config):
  """Each particle's hop half-width: [k], geometric around `hop_noise`."""
  k = config.num_particles
  exponents = (tf.range(k, dtype=tf.float32) / max(k - 1, 1) -
               (0.5 if k > 1 else 0.0))
  return config.hop_noise * tf.pow(float(config.hop_noise_range), exponents)


def time_weights(config, num_steps):
  """The weight of each of an unroll's `num_steps` + 1 losses (mean 1).

  Args:
    config: the `SwarmConfig` (`time_weighting`).
    num_steps: T, the unroll's length.

  Returns:
    A [T + 1] float32 tensor: ones; 2 (t + 1) / (T + 2) for "increasing";
    T + 1 at the last step and 0 before for "final".
  """
  steps = tf.range(num_steps + 1, dtype=tf.float32)
  if config.time_weighting == "increasing":
    return 2.0 * (steps + 1.0) / (num_steps + 2.0)
  if config.time_weighting == "final":
    return tf.one_hot(num_steps, num_steps + 1) * (num_steps + 1.0)
  return tf.ones_like(steps)


def objective_terms(config, instance_history, prior_best):
  """What each step, particle and instance adds to the meta-objective.

  docs/design.md ("What the swarm is trained to do") states each objective.
  Terms shared by an instance's particles (a record, the best particle) are
  split evenly between them.

  Args:
    config: the `SwarmConfig` (`objective`, `time_weighting`,
      `final_weight`).
    instance_history: [T + 1, k, R] each particle's loss on each instance at
      every step.
    prior_best: [R] each instance's best loss before the unroll (inf at the
      start of a trajectory).

  Returns:
    [T + 1, k, R] terms C; the objective is `sum_t sum_j mean_i C`.
  """
  num_steps = int(instance_history.shape[0]) - 1
  k = int(instance_history.shape[1])
  weights = tf.reshape(time_weights(config, num_steps), [-1, 1, 1])
  last = tf.reshape(tf.one_hot(num_steps, num_steps + 1), [-1, 1, 1])
  if config.objective == "sum":
    return weights * instance_history
  if config.objective == "final_best":
    best = tf.reduce_min(instance_history[-1], axis=0)
    return last * tf.ones_like(instance_history) * best / k
  best_now = tf.reduce_min(instance_history, axis=1)
  record = tf.scan(tf.minimum, best_now, initializer=prior_best)
  terms = weights * tf.ones_like(instance_history) * tf.expand_dims(
      record, 1) / k
  if config.final_weight:
    terms += last * config.final_weight * (num_steps + 1) * (
        instance_history / k)
  return terms


def objective_loss(config, instance_history, prior_best):
  """The meta-objective of one unroll, before the entropy term.

  Args:
    config: the `SwarmConfig` (`objective`, `time_weighting`,
      `final_weight`).
    instance_history: [T + 1, k, R] each particle's loss on each instance
      (R = 1 and the particle's mean loss when the instances are not rows).
    prior_best: [R] each instance's best loss before the unroll.

  Returns:
    A scalar: `sum_t sum_j mean_i` of `objective_terms`.
  """
  return objective_from_terms(
      objective_terms(config, instance_history, prior_best))


def objective_from_terms(terms):
  """The meta-objective `sum_t sum_j mean_i C` of `objective_terms` C."""
  return tf.reduce_sum(tf.reduce_mean(terms, axis=-1))


def score_function_loss(terms, log_probs):
  """The REINFORCE surrogate that trains the "jump" gate.

  The decision at step t pays for what follows it: its reward is
  `G[t, j, i] = sum_{s > t} C[s, j, i]` (the objective terms after the
  move). Its advantage is G standardised over the instances (the batch is
  the baseline), and the surrogate `sum_t sum_j mean_i A log p` has the
  expected objective's gradient in the gate's weights.

  Args:
    terms: [T + 1, k, R] `objective_terms`.
    log_probs: [T, k, R] each decision's log-probability.

  Returns:
    A scalar whose value is about 0 and whose gradient is the estimate.
  """
  future = tf.cumsum(terms, axis=0, exclusive=True, reverse=True)[:-1]
  mean, variance = tf.nn.moments(future, axes=[-1], keepdims=True)
  advantage = tf.stop_gradient((future - mean) / (tf.sqrt(variance) + 1e-8))
  return tf.reduce_sum(tf.reduce_mean(advantage * log_probs, axis=-1))


def entropy_weight(config, objective, entropy):
  """The factor of the entropy term in the meta-loss.

  Args:
    config: the `SwarmConfig` (`entropy_weight`, `normalise_entropy`).
    objective: the scalar objective the entropy is added to.
    entropy: the scalar entropy.

  Returns:
    `entropy_weight`, or with `normalise_entropy`
    `entropy_weight * |objective| / max(entropy, 1e-8)`, its factors held
    constant, so the term is `entropy_weight` times the objective's size.
  """
  if not config.normalise_entropy:
    return config.entropy_weight
  return config.entropy_weight * tf.stop_gradient(
      tf.abs(objective) / tf.maximum(tf.abs(entropy), 1e-8))


def swarm_meta_loss(config, make_loss, len_unroll, x, constants, nets,
                    net_keys, subsets, attention_path, second_derivatives,
                    gate_path=None):
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
    gate_path: `.l2l` file of the attraction gate's weights, or None.

  Returns:
    A `SwarmUnroll`: the six fields of `meta.MetaLoss`, the attention module
    (None when switched off), the attraction gate (None when off), the
    per-step, per-particle losses [len_unroll + 1, k], the starting
    points (one [k, ...] tensor per variable) and whether meta-training
    reaches the jump gate's weights (False when the gate jumps and the
    unroll has one instance: its meta-gradient is the spread of rewards
    across instances).
  """
  k = config.num_particles
  starts = particles.draw_particles(make_loss, x, constants, k)
  shapes = [[k] + v.shape.as_list() for v in x]
  attention = make_attention(config, attention_path)
  gate = make_gate(config, gate_path)
  with tf.name_scope("fx_probe"):
    probe_rows = interception.make_with_custom_variables(make_loss, x,
                                                         constants)
  points = posterior.PosteriorPoints(x, probe_rows)
  per_row = points.per_row and config.per_instance
  instances = Instances(per_row, int(x[0].shape[0]) if per_row else 1)
  step = SwarmStep(config, make_loss, constants,
                   [interception.variable_name(v) for v in x], shapes, nets,
                   net_keys, subsets, attention, second_derivatives,
                   instances, gate)
  x_initial = [tf.stack(p) for p in zip(*starts)]
  with tf.name_scope("swarm_state"):
    net_states = unroll.net_states(nets, net_keys, subsets, shapes,
                                   name="net_state")
    swarm_state = initial_swarm_state(k, int(particles.flatten(
        x_initial).shape[1]), instances, config.step_shrink != 1)
    # What persists from one unroll to the next.
    persistent = [(i, v) for i, v in enumerate(swarm_state)
                  if isinstance(v, tf.Variable)]

  def time_step(t, fx_array, instance_array, points_array, values_array,
                log_prob_array, x, net_state, state):
    rows, losses = step.losses(x)
    fx_array = fx_array.write(t, losses)
    instance_array = instance_array.write(t, instances.losses(rows, losses))
    if config.use_entropy:
      # The posterior's points; evaluation switches the entropy off.
      points_array = points_array.write(
          t, points.points(x, particles.flatten(x)))
      values_array = values_array.write(t, points.values(rows, losses))
    x, net_state, state, log_prob = step.move(x, losses, net_state, state,
                                              rows)
    log_prob_array = log_prob_array.write(t, log_prob)
    return (t + 1, fx_array, instance_array, points_array, values_array,
            log_prob_array, x, net_state, state)

  arrays = [tf.TensorArray(tf.float32, size=len_unroll + 1,
                           clear_after_read=False) for _ in range(4)]
  arrays.append(tf.TensorArray(tf.float32, size=len_unroll))
  loop_vars = (0, *arrays, x_initial,
               tf.nest.map_structure(tf.identity, net_states),
               SwarmState(*[tf.identity(v) for v in swarm_state]))
  (_, fx_array, instance_array, points_array, values_array, log_prob_array,
   x_final, net_state_final, swarm_state_final) = tf.while_loop(
       cond=lambda t, *_: t < len_unroll, body=time_step, loop_vars=loop_vars,
       parallel_iterations=1, name="swarm_unroll")

  with tf.name_scope("fx_final"):
    rows_final, fx_final = step.losses(x_final)
  fx_array = fx_array.write(len_unroll, fx_final)
  fx_history = fx_array.stack()
  instance_array = instance_array.write(
      len_unroll, instances.losses(rows_final, fx_final))
  prior_best = tf.reduce_min(tf.reshape(loop_vars[-1].best_f,
                                        [k, instances.count]), axis=0)
  # Built once: the jump gate's surrogate reads the same terms.
  terms = objective_terms(config, instance_array.stack(), prior_best)
  loss = objective_from_terms(terms)
  if config.jumps:
    loss += score_function_loss(terms, log_prob_array.stack())
  update = []
  if config.use_entropy:
    points_array = points_array.write(
        len_unroll, points.points(x_final, particles.flatten(x_final)))
    values_array = values_array.write(
        len_unroll, points.values(rows_final, fx_final))
    entropy = posterior.entropy_term(
        config, points.dims, points_array.stack(), values_array.stack())
    loss += entropy_weight(config, loss, entropy) * entropy
  loss = tf.identity(loss, name="loss")

  with tf.name_scope("reset"):
    variables = (sum(starts, []) + list(constants) +
                 tf.nest.flatten(net_states) + [v for _, v in persistent])
    reset = [tf.compat.v1.variables_initializer(variables)]
  with tf.name_scope("update"):
    for j, start in enumerate(starts):
      update.extend(tf.compat.v1.assign(v, x_final[i][j])
                    for i, v in enumerate(start))
    update.extend(tf.nest.flatten(unroll.nested_assign(net_states,
                                                       net_state_final)))
    update.extend(unroll.nested_assign(
        [v for _, v in persistent],
        [swarm_state_final[i] for i, _ in persistent]))
  logging.info("Swarm of %d particles, features %s, feature attention %s, "
               "entropy %s, attraction gain %s", k,
               ", ".join(config.feature_names()),
               "on" if attention else "off",
               "on" if config.use_entropy else "off", config.attraction_gain)
  return SwarmUnroll((loss, update, reset, fx_final, x_final, constants),
                     attention, gate, fx_history,
                     x_initial, not config.jumps or instances.count >= 2)
