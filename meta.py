"""Learning to learn by gradient descent by gradient descent, and LOIS.

`MetaOptimizer` unrolls a learned optimizer on an optimizee problem as a static
TF-1.x graph: the problem's variables are swapped for tensors, a `tf.while_loop`
applies the optimizer nets `len_unroll` times, and the summed optimizee loss (or
the sum of its logs, `l2l.core.meta_objective`) is the meta-loss that trains
the nets (Andrychowicz et al., 2016). With
`num_particles > 1` the optimizer drives a swarm of points that share one
coordinate-wise LSTM and see each other through attention (Cao et al., 2019);
see `l2l/swarm/swarm_unroll.py`.
"""

import collections
import dataclasses
import numbers
import os

from absl import logging
import tensorflow as tf

import l2l
from l2l import checks
from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.core import interception
from l2l.core import meta_objective
from l2l.core import unroll
from l2l.swarm import config as swarm_config
from l2l.swarm import lois_released
from l2l.swarm import swarm_unroll
import networks
import problems

class MetaLoss(collections.namedtuple(
    "MetaLoss", "loss, update, reset, fx, x, subproblem_constants")):
  """What `meta_loss` builds; it unpacks to six values.

  `fx` and `x` are the field names of DeepMind's `MetaLoss`; `fx_final`,
  `x_final` and `sub_constants`, the names the seed's design gives the last
  three, read the same values.
  """

  __slots__ = ()

  @property
  def fx_final(self):
    """The optimizee loss at `x_final` (the same as `fx`)."""
    return self.fx

  @property
  def x_final(self):
    """The optimizee variables after the unroll (the same as `x`)."""
    return self.x

  @property
  def sub_constants(self):
    """The problem's non-trainable variables (`subproblem_constants`)."""
    return self.subproblem_constants


MetaStep = collections.namedtuple("MetaStep", "step, update, reset, fx, x")

# The id of the default net, used by MetaOptimizer(), util and both CLIs:
# DeepMind's util and LOIS's released models name their one net "cw".
DEFAULT_NET_ID = networks.DEFAULT_NET_ID


# The seed's helper names, kept as the API they document; the shared
# implementations live in l2l.core, where the swarm unroll, PSO, the drop-in
# optimizer and evaluation use them too.
_nested_assign = unroll.nested_assign
_nested_variable = unroll.nested_variable
_wrap_variable_creation = interception.wrap_variable_creation
_make_with_custom_variables = interception.make_with_custom_variables


def _get_variables(func):
  """Calls `func` once and returns the variables it creates.

  Args:
    func: the problem's `build` function.

  Returns:
    `(variables, constants)`: the trainable variables (created
    non-trainable, so that meta-training never touches them) and the
    non-trainable ones (the problem instance).
  """
  return interception.get_variables(func)


def _make_nets(variables, config, net_assignments):
  """Builds the optimizer nets and assigns the optimizee variables to them.

  Args:
    variables: the optimizee's variables.
    config: `{net_id: {"net": ..., "net_options": ..., "net_path": ...}}`.
    net_assignments: None (one net for all variables) or a list of
      `(net_id, [variable names])`.

  As DeepMind's: a variable no net is given stays where it is, and a
  variable given to several nets moves by the sum of their updates.

  Returns:
    `(nets, keys, subsets)`: the nets by id, the ids in assignment order, and
    for each id the indices of its variables.

  Raises:
    ValueError: if the assignment does not fit the config or the variables.
  """
  names = [interception.variable_name(v) for v in variables]
  name_to_index = {name: i for i, name in enumerate(names)}
  if net_assignments is None:
    if len(config) != 1:
      raise ValueError(
          "net_assignments is required with more than one net ({}); give a "
          "list of (net_id, [variable names]).".format(", ".join(config)))
    net_assignments = [(next(iter(config)), names)]
  nets = {}
  keys = []
  subsets = []
  assigned = set()
  for entry in net_assignments:
    if not (isinstance(entry, (list, tuple)) and len(entry) == 2):
      raise ValueError("Each net assignment must be (net_id, [variable "
                       "names]), got {!r}.".format(entry))
    key, assigned_names = entry
    if key not in config:
      raise ValueError("net_assignments names net {!r}, which is not in the "
                       "net config ({}).".format(key, ", ".join(config)))
    if key in nets:
      raise ValueError("net {!r} appears twice in net_assignments.".format(key))
    if isinstance(assigned_names, str):
      raise ValueError("net_assignments for {!r} must be a list of variable "
                       "names, got the string {!r}.".format(key,
                                                            assigned_names))
    subset = []
    for name in assigned_names:
      if name not in name_to_index:
        raise ValueError(
            "net_assignments names variable {!r}, which the problem does not "
            "have; its trainable variables are: {}.".format(
                name, ", ".join(names)))
      if name_to_index[name] in subset:
        # It would be stepped twice by the one net, with two states.
        raise ValueError("net_assignments names variable {!r} twice for net "
                         "{!r}.".format(name, key))
      assigned.add(name)
      subset.append(name_to_index[name])
    with tf.compat.v1.variable_scope("vars_optimizer"):
      nets[key] = networks.factory(**config[key])
    keys.append(key)
    subsets.append(subset)
  if not assigned:
    raise ValueError("net_assignments give no net any variable, so nothing "
                     "would move; the problem's trainable variables are: "
                     "{}.".format(", ".join(names)))
  fixed = [name for name in names if name not in assigned]
  if fixed:
    logging.info("Variables no net is assigned to stay fixed: %s",
                 ", ".join(fixed))
  return nets, keys, subsets


def _check_net_config(net_config):
  """Raises ValueError for a net config the factory could not use."""
  for reserved, saved in swarm_config.RESERVED_IDS.items():
    if reserved in net_config:
      raise ValueError(
          "Net id {!r} is reserved: the swarm's {} weights are saved under "
          "it. Choose another net id.".format(reserved, saved))
  for key, value in net_config.items():
    if not isinstance(value, dict) or "net" not in value:
      raise ValueError(
          "Net config {!r} must be a dict like {{'net': "
          "'CoordinateWiseDeepLSTM', 'net_options': {{...}}}}, got {!r}."
          .format(key, value))
    unknown = set(value) - {"net", "net_options", "net_path"}
    if unknown:
      raise ValueError("Net config {!r} has unknown keys {}; expected net, "
                       "net_options, net_path.".format(key, sorted(unknown)))


def _check_float32(variables):
  """Raises ValueError for a variable the swarm cannot step (not float32).

  The single-point unroll and the drop-in optimizers step any
  floating-point variable (`unroll.as_float32`); the swarm keeps its
  particles' positions, records and features in float32.
  """
  for variable in variables:
    if variable.dtype.base_dtype != tf.float32:
      raise ValueError(
          "The swarm steps float32 variables only; {} is {}. Build the "
          "problem in float32, or run one particle.".format(
              interception.variable_name(variable),
              variable.dtype.base_dtype.name))


class MetaOptimizer:
  """A learned optimizer: one or more nets that turn gradients into updates."""

  def __init__(self, **kwargs):
    """Creates the meta-optimizer.

    Args:
      **kwargs: net ids mapped to `networks.factory` configs; with none, one
        coordinate-wise 2x20 LSTM with LogAndSign preprocessing. The swarm
        (LOIS) options of `swarm_unroll.SwarmConfig` (`num_particles`, ...) are
        also keywords here and are never taken as net ids.

    Raises:
      ValueError: for a net config that is not a dict, or bad swarm options.
    """
    swarm_options = {key: kwargs.pop(key) for key in list(kwargs)
                     if key in swarm_unroll.SwarmConfig.option_names()}
    self._swarm = swarm_unroll.SwarmConfig(**swarm_options)
    self._config = kwargs or {DEFAULT_NET_ID: networks.default_config()}
    _check_net_config(self._config)
    self._nets = None
    self._attention = None
    self._gate = None
    self._fx_history = None
    self._x_initial = None
    self._assignment_rule = None
    self._unsaveable = None
    self._gate_learns = True

  @property
  def swarm(self):
    """The swarm options (a `swarm_unroll.SwarmConfig`)."""
    return self._swarm

  def save(self, sess, path=None, problem=None, training=None):
    """Reads the optimizer's parameters and optionally saves them.

    Args:
      sess: the session holding the values.
      path: a directory; each net is written to `<net_id>.l2l` there (and the
        swarm attention weights to `attention.l2l` and its attraction gate
        to `gate.l2l`), atomically, then the
        manifest `manifest.json` that describes them (see
        `l2l.checkpoint.manifest`). Other files in it are left alone.
      problem: the problem name the manifest records, or None.
      training: the training settings the manifest records (a JSON-safe
        dict), or None.

    Returns:
      `{key: {module: {variable: ndarray}}}`, keyed as DeepMind's: by each
      written file's path (`<path>/<net_id>.l2l`) when `path` is given, by
      net id without one.

    Raises:
      ValueError: if `meta_loss` has not been built yet, or (with `path`)
        its net assignment cannot be saved, `path` is empty or not a
        directory, or it holds a `manifest.json` that is not this
        library's.
    """
    if self._nets is None:
      raise ValueError("Nothing to save: build meta_loss or meta_minimize "
                       "first.")
    if path is not None:
      if not os.fspath(path).strip():
        raise ValueError("save's path is empty; expected the directory to "
                         "save the optimizer's files in.")
      if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError("save's path {} is not a directory; expected the "
                         "directory to save the optimizer's files in.".format(
                             path))
      # Before any file: a directory of nets without their manifest would
      # load as DeepMind's default net.
      saved_manifest = self.manifest(problem, training)
      manifest.check_writable(path, saved_manifest)
      os.makedirs(path, exist_ok=True)
    result = {}
    modules = dict(self._nets)
    if self._attention is not None:
      modules[swarm_unroll.ATTENTION_ID] = self._attention
    if self._gate is not None:
      modules[swarm_unroll.GATE_ID] = self._gate
    for key, module in modules.items():
      filename = (None if path is None else
                  l2l_file.checkpoint_path(path, key))
      result[filename or key] = networks.save(module, sess, filename)
    if path is not None:
      # Last, with the files' digests: a save cut short before it is found.
      manifest.write(path, saved_manifest, [f for f in result if f])
    return result

  def manifest(self, problem=None, training=None):
    """The manifest `save` writes: nets, assignment rule, swarm, version.

    Args:
      problem: the problem name it records, or None.
      training: the training settings it records, or None.

    Returns:
      A JSON-safe dict (see `l2l.checkpoint.manifest.build`).

    Raises:
      ValueError: if `meta_loss` has not been built yet, or its net
        assignment cannot be saved (a variable under several nets).
    """
    if self._nets is None:
      raise ValueError("No manifest yet: build meta_loss or meta_minimize "
                       "first.")
    if self._unsaveable is not None:
      raise ValueError(self._unsaveable)
    return manifest.build(self.net_config, self._assignment_rule,
                          dataclasses.asdict(self._swarm), l2l.__version__,
                          problem=problem, training=training)

  @property
  def net_config(self):
    """`{net_id: factory config}` of the nets the last unroll built."""
    return {key: self._config[key] for key in (self._nets or self._config)}

  @property
  def assignment_rule(self):
    """The last unroll's net assignment as a rule for any model's variables.

    None before `meta_loss`; see `l2l.checkpoint.manifest`.
    """
    return self._assignment_rule

  def trainable_variables(self):
    """The meta-optimizer's own trainable variables (after `meta_loss`)."""
    modules = list(self._nets.values())
    modules.extend(m for m in (self._attention, self._gate) if m is not None)
    seen = set()
    result = []
    for module in modules:
      for variable in module.trainable_variables:
        if id(variable) not in seen:
          seen.add(id(variable))
          result.append(variable)
    return result

  def warn_of_untrained_parameters(self):
    """Logs a warning when meta-training the last unroll leaves some of the
    optimizer's parameters as they are.

    A training op built on `meta_loss` calls this (`meta_minimize` does);
    evaluation has no use for it.
    """
    if not self._gate_learns:
      logging.warning(
          "The jump gate learns from the spread of rewards across "
          "instances; with one instance (per_instance off, or no batch) its "
          "weights get no meta-gradient.")

  def variables(self):
    """Every variable of the meta-optimizer (after `meta_loss`).

    Returns:
      Its parameters.
    """
    return self.trainable_variables()

  @property
  def fx_history(self):
    """The optimizee loss at every point of the last unroll built.

    A tensor [len_unroll + 1] (swarm mode: [len_unroll + 1, num_particles]);
    entry 0 is the loss where the unroll starts, the last entry `fx`.
    """
    return self._fx_history

  @property
  def x_initial(self):
    """The optimizee variables where the last unroll built starts.

    A list of tensors shaped like `x_final` (swarm mode: with the particle
    axis).
    """
    return self._x_initial

  def _config_with_model_path(self, model_path):
    if model_path is None:
      return self._config
    config = {}
    for key, value in self._config.items():
      config[key] = dict(value, net_path=l2l_file.find(model_path, key))
    return config

  def meta_loss(self, make_loss, len_unroll, net_assignments=None,
                model_path=None, second_derivatives=False,
                objective=meta_objective.DEFAULT, recompute=False):
    """Builds the unrolled optimization graph and its meta-loss.

    Args:
      make_loss: the problem's `build` function.
      len_unroll: optimization steps per unroll.
      net_assignments: None, or a list of `(net_id, [variable names])`; a
        variable left out stays fixed, one listed under several nets moves
        by the sum of their updates.
      model_path: a directory written by `save`; every meta-optimizer
        parameter starts from it.
      second_derivatives: if False, gradients do not flow through the
        optimizee gradient (as the original).
      objective: what the meta-loss sums over the unroll: "sum" (the
        losses, as the original) or "log" (their logs; see
        `l2l.core.meta_objective`). The swarm has its own objectives, in
        its options; it takes only the default here.
      recompute: if True, the meta-gradient recomputes each step's LSTM
        gates from the step's inputs instead of keeping them: as TensorFlow
        ops, meta-training then needs about a third of the memory per
        coordinate and unrolled step and about a quarter more time
        (docs/design.md §4, "The fused LSTM stack"). The native kernels,
        where they run, always recompute (in cache, at no cost in time),
        so it changes nothing there. It applies to the nets that step
        their variables jointly (the coordinate-wise LSTMs, in unrolls
        longer than one step); the meta-loss and its gradient are the same
        either way. The swarm takes only the default.

    Returns:
      `MetaLoss(loss, update, reset, fx, x, subproblem_constants)`.

    Raises:
      ValueError: for a `make_loss` that is not callable, a `model_path`
        that is not a path, a bad assignment,
        a checkpoint that does not fit, an unknown objective (or one other
        than "sum" for the swarm), or a swarm on variables other than
        float32.
      RuntimeError: when called while TensorFlow executes eagerly (its
        default): the unroll is a graph.
    """
    meta_objective.check(objective)
    if model_path is not None and not isinstance(model_path,
                                                 (str, os.PathLike)):
      hint = (" (DeepMind's meta_loss took second_derivatives fourth; give "
              "it by name: second_derivatives={!r})".format(model_path)
              if isinstance(model_path, bool) else "")
      raise ValueError(
          "model_path must be a directory written by MetaOptimizer.save, or "
          "None; got {!r}{}.".format(model_path, hint))
    if not callable(make_loss):
      raise ValueError("make_loss must be the problem's build function, a "
                       "callable that returns the loss; got {!r}.".format(
                           make_loss))
    if self._swarm.active and recompute:
      raise ValueError("recompute is for the single-point unroll; the swarm "
                       "does not take it.")
    if self._swarm.active and objective != meta_objective.DEFAULT:
      raise ValueError(
          "objective={!r} is for the single-point unroll; the swarm's "
          "meta-objective is its `objective` option ({}).".format(
              objective, ", ".join(swarm_config.OBJECTIVES)))
    if (isinstance(len_unroll, bool) or
        not isinstance(len_unroll, numbers.Integral) or len_unroll < 1):
      raise ValueError("len_unroll must be an integer >= 1, got {!r}.".format(
          len_unroll))
    if tf.executing_eagerly():
      # TensorFlow would fail later, deep inside, on tf.gradients.
      raise RuntimeError(
          "meta_loss builds a TF-1.x graph, but TensorFlow is executing "
          "eagerly (TensorFlow 2's default). Build it inside `with "
          "tf.Graph().as_default():`, or call "
          "tf.compat.v1.disable_eager_execution() first, as a script "
          "written for TensorFlow 1 would run.")
    x, constants = _get_variables(make_loss)
    if not x:
      raise ValueError("The problem created no trainable variables.")
    if all(v.shape.num_elements() == 0 for v in x):
      raise ValueError(
          "The problem's trainable variables hold no values ({}): there is "
          "nothing to optimise; expected at least one of size 1 or "
          "more.".format(", ".join(
              "{} of shape {}".format(interception.variable_name(v),
                                      v.shape.as_list()) for v in x)))
    config = self._config_with_model_path(model_path)
    nets, net_keys, subsets = _make_nets(x, config, net_assignments)
    self._nets = nets
    try:
      self._assignment_rule = manifest.rule_from_assignments(
          net_keys, [interception.variable_name(v) for v in x],
          [v.shape.rank for v in x], subsets)
      self._unsaveable = None
    except ValueError as error:
      # The unroll runs as DeepMind's did; only saving it is refused.
      self._assignment_rule = None
      self._unsaveable = str(error)
      logging.warning("This optimizer cannot be saved: %s", error)
    for key in net_keys:
      logging.info("Optimizer %r: %s", key, config[key]["net"])
    if self._swarm.active:
      _check_float32(x)
      attention_path = gate_path = None
      if lois_released.is_released_model(model_path):
        raise ValueError(
            "{} is a LOIS released model, whose attention this swarm cannot "
            "run: evaluate it with evaluate.py --path (or "
            "l2l.swarm.lois_released.build), which runs it as LOIS's code "
            "did.".format(model_path))
      if model_path is not None and self._swarm.use_feature_attention:
        attention_path = l2l_file.find(model_path,
                                        swarm_unroll.ATTENTION_ID)
      if model_path is not None and self._swarm.gated:
        gate_path = l2l_file.find(model_path, swarm_unroll.GATE_ID)
      swarm = swarm_unroll.swarm_meta_loss(
          self._swarm, make_loss, len_unroll, x, constants, nets, net_keys,
          subsets, attention_path, second_derivatives, gate_path)
      self._attention = swarm.attention
      self._gate = swarm.gate
      self._fx_history = swarm.fx_history
      self._x_initial = swarm.x_initial
      self._gate_learns = swarm.gate_learns
      return MetaLoss(*swarm.meta_loss)
    return self._l2l_meta_loss(make_loss, len_unroll, x, constants, nets,
                               net_keys, subsets, second_derivatives,
                               objective, recompute)

  def _l2l_meta_loss(self, make_loss, len_unroll, x, constants, nets,
                     net_keys, subsets, second_derivatives, objective,
                     recompute):
    """DeepMind's single-point unroll."""
    names = [interception.variable_name(v) for v in x]
    with tf.name_scope("states"):
      state = unroll.net_states(nets, net_keys, subsets, [v.shape for v in x])

    def loss_at(point):
      with tf.name_scope("fx"):
        return problems.mean_loss(
            _make_with_custom_variables(make_loss, point, constants))

    def time_step(t, fx_array, x, state):
      fx = loss_at(x)
      fx_array = fx_array.write(t, unroll.as_float32(fx))
      x_next = list(x)
      state_next = []
      with tf.name_scope("dx"):
        for subset, key, net_state, net_joined in zip(subsets, net_keys,
                                                      state, joined):
          grads = unroll.optimizee_gradients(
              fx, [x[j] for j in subset], [names[j] for j in subset],
              second_derivatives)
          deltas, net_state_next = unroll.loop_updates(
              nets[key], grads, net_state, net_joined, recompute)
          for j, delta in zip(subset, deltas):
            x_next[j] = x_next[j] + delta
          state_next.append(net_state_next)
      return t + 1, fx_array, x_next, state_next

    fx_array = tf.TensorArray(tf.float32, size=len_unroll + 1,
                              clear_after_read=False)
    x_initial = [tf.identity(v) for v in x]
    # Each net's variables step jointly where that pays (`unroll.joins`).
    joined = [unroll.joins(nets[key], len(subset), len_unroll)
              for key, subset in zip(net_keys, subsets)]
    state_initial = [
        tf.nest.map_structure(
            tf.identity, unroll.loop_state(nets[key], net_state, net_joined))
        for key, net_state, net_joined in zip(net_keys, state, joined)]
    _, fx_array, x_final, state_final = tf.while_loop(
        cond=lambda t, *_: t < len_unroll,
        body=time_step,
        loop_vars=(0, fx_array, x_initial, state_initial),
        parallel_iterations=1,
        name="unroll")
    state_final = [
        unroll.per_variable_state(nets[key], net_state,
                                  [x[j].shape for j in subset], net_joined)
        for key, net_state, subset, net_joined in zip(net_keys, state_final,
                                                      subsets, joined)]
    fx_final = loss_at(x_final)
    fx_array = fx_array.write(len_unroll, unroll.as_float32(fx_final))
    self._fx_history = fx_array.stack()
    self._x_initial = x_initial
    loss = meta_objective.meta_objective(self._fx_history, objective)

    with tf.name_scope("reset"):
      variables = tf.nest.flatten(state) + x + constants
      reset = [tf.compat.v1.variables_initializer(variables)]
    with tf.name_scope("update"):
      update = (tf.nest.flatten(_nested_assign(x, x_final)) +
                tf.nest.flatten(_nested_assign(state, state_final)))
    return MetaLoss(loss, update, reset, fx_final, x_final, constants)

  def meta_minimize(self, make_loss, len_unroll, learning_rate=0.01, **kwargs):
    """Builds the meta-loss and an Adam step on the optimizer's parameters.

    Args:
      make_loss: the problem's `build` function.
      len_unroll: optimization steps per unroll.
      learning_rate: the meta-optimizer's Adam learning rate (a number, or a
        tensor, e.g. a decaying one).
      **kwargs: passed to `meta_loss`.

    Returns:
      `MetaStep(step, update, reset, fx, x)`.

    Raises:
      ValueError: for a learning rate that is a number but not a finite one
        > 0 (NaN trains to NaN, a negative one ascends), or as `meta_loss`.
    """
    if isinstance(learning_rate, numbers.Real) and not (
        checks.is_finite_number(learning_rate) and learning_rate > 0):
      raise ValueError("meta_minimize learning_rate must be a finite number "
                       "> 0, got {!r}.".format(learning_rate))
    info = self.meta_loss(make_loss, len_unroll, **kwargs)
    optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate)
    step = optimizer.minimize(info.loss, var_list=self.trainable_variables())
    self.warn_of_untrained_parameters()
    return MetaStep(step, *info[1:5])
