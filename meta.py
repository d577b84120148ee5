"""Learning to learn by gradient descent by gradient descent, and LOIS.

`MetaOptimizer` unrolls a learned optimizer on an optimizee problem as a static
TF-1.x graph: the problem's variables are swapped for tensors, a `tf.while_loop`
applies the optimizer nets `len_unroll` times, and the summed optimizee loss is
the meta-loss that trains the nets (Andrychowicz et al., 2016). With
`num_particles > 1` the optimizer drives a swarm of points that share one
coordinate-wise LSTM and see each other through attention (Cao et al., 2019);
see `swarm_unroll.py`.
"""

import collections
import os

from absl import logging
import tensorflow as tf

import checkpoint
import networks
import problems
import swarm_unroll

MetaLoss = collections.namedtuple(
    "MetaLoss", "loss, update, reset, fx, x, subproblem_constants")
MetaStep = collections.namedtuple("MetaStep", "step, update, reset, fx, x")

_DEFAULT_NET_CONFIG = {"coordinatewise": networks.default_config()}


def _nested_assign(ref, value):
  """Returns ops assigning each tensor of `value` to the variable in `ref`.

  Args:
    ref: a variable, or a list/tuple nesting of variables.
    value: a tensor, or a nesting of tensors of the same structure.

  Returns:
    An op, or the same nesting of ops.

  Raises:
    ValueError: if the structures differ.
  """
  if isinstance(ref, (list, tuple)):
    if len(ref) != len(value):
      raise ValueError("ref and value have different lengths.")
    return type(ref)(_nested_assign(r, v) for r, v in zip(ref, value))
  return tf.compat.v1.assign(ref, value)


def _nested_variable(init, name=None, trainable=False):
  """Returns a nesting of variables initialised from a nesting of tensors.

  Args:
    init: a tensor, or a list/tuple nesting of tensors.
    name: variable name.
    trainable: whether the variables are trainable.

  Returns:
    A variable, or the same nesting of variables.
  """
  if isinstance(init, (list, tuple)):
    return type(init)(_nested_variable(i, name, trainable) for i in init)
  return tf.Variable(init, name=name, trainable=trainable)


def _is_trainable(kwargs):
  # Both creation paths leave `trainable` as None when the caller did not set
  # it, which means trainable.
  return kwargs.get("trainable") is not False


def _wrap_variable_creation(func, custom_getter):
  """Calls `func` with every variable creation routed through `custom_getter`.

  Problems written with `tf.compat.v1.get_variable` and problems written with
  Sonnet 2 (`tf.Variable`) are both covered. Each creation calls
  `custom_getter(getter, **kwargs)` once, where `getter(**kwargs)` creates the
  real variable and `kwargs` holds at least `name` and `trainable`.

  Args:
    func: a function with no arguments that creates variables.
    custom_getter: the interception, which may return a tensor in place of
      the variable.

  Returns:
    What `func` returns.
  """
  inside_get_variable = [False]

  def creator(next_creator, **kwargs):
    if inside_get_variable[0]:
      return next_creator(**kwargs)
    return custom_getter(next_creator, **kwargs)

  def get_variable_getter(getter, *args, **kwargs):
    def real_getter(**real_kwargs):
      inside_get_variable[0] = True
      try:
        return getter(*args, **real_kwargs)
      finally:
        inside_get_variable[0] = False
    return custom_getter(real_getter, **kwargs)

  scope = tf.compat.v1.get_variable_scope()
  with tf.compat.v1.variable_scope(scope, custom_getter=get_variable_getter,
                                   auxiliary_name_scope=False):
    with tf.variable_creator_scope(creator):
      return func()


class _Replay:
  """Hands out the items of a sequence in order, one per variable creation."""

  def __init__(self, items, kind):
    self._items = list(items)
    self._kind = kind
    self._next = 0

  def __call__(self):
    if self._next >= len(self._items):
      raise ValueError(
          "The problem created more {} variables than on its first call ({}); "
          "build() must create the same variables on every call.".format(
              self._kind, len(self._items)))
    self._next += 1
    return self._items[self._next - 1]


def _get_variables(func, constants=None):
  """Calls `func` once and returns the variables it creates.

  The variables are created non-trainable, so that a meta-optimizer's own
  training never touches the optimizee.

  Args:
    func: the problem's `build` function.
    constants: if given, the problem instance of an earlier call, handed to
      `func` in place of new non-trainable variables (so the new trainable
      variables are another starting point on the same instance).

  Returns:
    `(variables, constants)`: the variables `func` asked to be trainable, and
    the others (the problem instance).
  """
  variables = []
  created_constants = []
  replay = None if constants is None else _Replay(constants, "non-trainable")

  def custom_getter(getter, **kwargs):
    trainable = _is_trainable(kwargs)
    if not trainable and replay is not None:
      return replay()
    kwargs["trainable"] = False
    variable = getter(**kwargs)
    (variables if trainable else created_constants).append(variable)
    return variable

  if replay is None:
    # No name scope here: the variables keep the names net_assignments use.
    _wrap_variable_creation(func, custom_getter)
    return variables, created_constants
  # Another draw of the same problem: a fresh variable scope keeps
  # `get_variable` from refusing the names the first call took.
  with tf.compat.v1.variable_scope(None, default_name="another_start"):
    _wrap_variable_creation(func, custom_getter)
  return variables, list(constants)


def _make_with_custom_variables(func, variables, constants=None):
  """Calls `func`, handing it `variables` in place of its trainable variables.

  Trainable creations receive the tensors of `variables` in creation order.
  Non-trainable creations receive `constants` in creation order, so that every
  call sees the same problem instance; with `constants=None` they are created
  anew.

  Args:
    func: the problem's `build` function, already passed to `_get_variables`.
    variables: one tensor per trainable variable, in creation order.
    constants: the non-trainable variables `_get_variables` returned.

  Returns:
    What `func` returns.

  Raises:
    ValueError: if `func` creates more variables than on its first call.
  """
  next_variable = _Replay(variables, "trainable")
  next_constant = None if constants is None else _Replay(constants,
                                                         "non-trainable")

  def custom_getter(getter, **kwargs):
    if _is_trainable(kwargs):
      return next_variable()
    if next_constant is None:
      kwargs["trainable"] = False
      return getter(**kwargs)
    return next_constant()

  return _wrap_variable_creation(func, custom_getter)


def _make_nets(variables, config, net_assignments):
  """Builds the optimizer nets and assigns the optimizee variables to them.

  Args:
    variables: the optimizee's variables.
    config: `{net_id: {"net": ..., "net_options": ..., "net_path": ...}}`.
    net_assignments: None (one net for all variables) or a list of
      `(net_id, [variable names])`.

  Returns:
    `(nets, keys, subsets)`: the nets by id, the ids in assignment order, and
    for each id the indices of its variables.

  Raises:
    ValueError: if the assignment does not fit the config or the variables.
  """
  names = [_variable_name(v) for v in variables]
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
  assigned = {}
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
      if name in assigned:
        raise ValueError("Variable {!r} is assigned to both {!r} and {!r}."
                         .format(name, assigned[name], key))
      assigned[name] = key
      subset.append(name_to_index[name])
    with tf.compat.v1.variable_scope("vars_optimizer"):
      nets[key] = networks.factory(**config[key])
    keys.append(key)
    subsets.append(subset)
  missing = [name for name in names if name not in assigned]
  if missing:
    raise ValueError("Variables {} are not assigned to any net.".format(
        ", ".join(missing)))
  return nets, keys, subsets


def _variable_name(variable):
  return variable.name.split(":")[0]


def _check_net_config(net_config):
  """Raises ValueError for a net config the factory could not use."""
  if swarm_unroll.ATTENTION_ID in net_config:
    raise ValueError(
        "Net id {!r} is reserved: the swarm's attention weights are saved "
        "under it. Choose another net id.".format(swarm_unroll.ATTENTION_ID))
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
    self._config = kwargs or _DEFAULT_NET_CONFIG
    _check_net_config(self._config)
    self._nets = None
    self._attention = None
    self._schedule = []
    self._fx_history = None
    self._x_initial = None

  @property
  def swarm(self):
    """The swarm options (a `swarm_unroll.SwarmConfig`)."""
    return self._swarm

  def save(self, sess, path=None):
    """Reads the optimizer's parameters and optionally saves them.

    Args:
      sess: the session holding the values.
      path: a directory; each net is written to `<net_id>.l2l` there (and the
        swarm attention weights to `attention.l2l`), atomically. Other files
        in it are left alone.

    Returns:
      `{net_id: {module: {variable: ndarray}}}`.

    Raises:
      ValueError: if `meta_loss` has not been built yet.
    """
    if self._nets is None:
      raise ValueError("Nothing to save: build meta_loss or meta_minimize "
                       "first.")
    if path is not None:
      os.makedirs(path, exist_ok=True)
    result = {}
    modules = dict(self._nets)
    if self._attention is not None:
      modules[swarm_unroll.ATTENTION_ID] = self._attention
    for key, module in modules.items():
      filename = (None if path is None else
                  checkpoint.checkpoint_path(path, key))
      result[key] = networks.save(module, sess, filename)
    return result

  def trainable_variables(self):
    """The meta-optimizer's own trainable variables (after `meta_loss`)."""
    modules = list(self._nets.values())
    if self._attention is not None:
      modules.append(self._attention)
    seen = set()
    result = []
    for module in modules:
      for variable in module.trainable_variables:
        if id(variable) not in seen:
          seen.add(id(variable))
          result.append(variable)
    return result

  def variables(self):
    """Every variable of the meta-optimizer (after `meta_loss`).

    Returns:
      Its parameters and, in swarm mode, the entropy schedule's state.
    """
    return self.trainable_variables() + list(self._schedule)

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
      config[key] = dict(value, net_path=_checkpoint_file(model_path, key))
    return config

  def meta_loss(self, make_loss, len_unroll, net_assignments=None,
                model_path=None, second_derivatives=False):
    """Builds the unrolled optimization graph and its meta-loss.

    Args:
      make_loss: the problem's `build` function.
      len_unroll: optimization steps per unroll.
      net_assignments: None, or a list of `(net_id, [variable names])`.
      model_path: a directory written by `save`; every meta-optimizer
        parameter starts from it.
      second_derivatives: if False, gradients do not flow through the
        optimizee gradient (as the original).

    Returns:
      `MetaLoss(loss, update, reset, fx, x, subproblem_constants)`.

    Raises:
      ValueError: for a bad assignment or a checkpoint that does not fit.
    """
    if int(len_unroll) < 1:
      raise ValueError("len_unroll must be at least 1, got {}.".format(
          len_unroll))
    x, constants = _get_variables(make_loss)
    if not x:
      raise ValueError("The problem created no trainable variables.")
    config = self._config_with_model_path(model_path)
    nets, net_keys, subsets = _make_nets(x, config, net_assignments)
    self._nets = nets
    for key in net_keys:
      logging.info("Optimizer %r: %s", key, config[key]["net"])
    if self._swarm.active:
      attention_path = None
      if model_path is not None and self._swarm.use_feature_attention:
        attention_path = _checkpoint_file(model_path, swarm_unroll.ATTENTION_ID)
      unroll = swarm_unroll.swarm_meta_loss(
          self._swarm, make_loss, len_unroll, x, constants, nets, net_keys,
          subsets, attention_path, second_derivatives)
      self._attention = unroll.attention
      self._schedule = unroll.schedule_variables
      self._fx_history = unroll.fx_history
      self._x_initial = unroll.x_initial
      return MetaLoss(*unroll.meta_loss)
    return self._l2l_meta_loss(make_loss, len_unroll, x, constants, nets,
                               net_keys, subsets, second_derivatives)

  def _l2l_meta_loss(self, make_loss, len_unroll, x, constants, nets,
                     net_keys, subsets, second_derivatives):
    """DeepMind's single-point unroll."""
    names = [_variable_name(v) for v in x]
    with tf.name_scope("states"):
      state = _net_states(nets, net_keys, subsets, [v.shape for v in x])

    def loss_at(point):
      with tf.name_scope("fx"):
        return problems.mean_loss(_make_with_custom_variables(make_loss, point, constants))

    def time_step(t, fx_array, x, state):
      fx = loss_at(x)
      fx_array = fx_array.write(t, fx)
      x_next = list(x)
      state_next = []
      with tf.name_scope("dx"):
        for subset, key, net_state in zip(subsets, net_keys, state):
          deltas, net_state_next = _net_updates(
              nets[key], fx, [x[j] for j in subset],
              [names[j] for j in subset], net_state, second_derivatives)
          for j, delta in zip(subset, deltas):
            x_next[j] = x_next[j] + delta
          state_next.append(net_state_next)
      return t + 1, fx_array, x_next, state_next

    fx_array = tf.TensorArray(tf.float32, size=len_unroll + 1,
                              clear_after_read=False)
    x_initial = [tf.identity(v) for v in x]
    state_initial = tf.nest.map_structure(tf.identity, state)
    _, fx_array, x_final, state_final = tf.while_loop(
        cond=lambda t, *_: t < len_unroll,
        body=time_step,
        loop_vars=(0, fx_array, x_initial, state_initial),
        parallel_iterations=1,
        name="unroll")
    fx_final = loss_at(x_final)
    fx_array = fx_array.write(len_unroll, fx_final)
    self._fx_history = fx_array.stack()
    self._x_initial = x_initial
    loss = tf.reduce_sum(self._fx_history, name="loss")

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
      learning_rate: the meta-optimizer's Adam learning rate.
      **kwargs: passed to `meta_loss`.

    Returns:
      `MetaStep(step, update, reset, fx, x)`.
    """
    info = self.meta_loss(make_loss, len_unroll, **kwargs)
    optimizer = tf.compat.v1.train.AdamOptimizer(learning_rate)
    step = optimizer.minimize(info.loss, var_list=self.trainable_variables())
    return MetaStep(step, *info[1:5])


def _net_states(nets, net_keys, subsets, shapes, name="state"):
  """Creates the nets' persistent states, one per assigned variable.

  Each net is also connected once, to a dummy input: Sonnet 2 creates
  variables on the first call, which cannot happen inside the while loop.

  Args:
    nets: the nets by id.
    net_keys: the ids in assignment order.
    subsets: the indices of each id's variables.
    shapes: the shape of each optimizee variable as the nets see it.
    name: name of the state variables.

  Returns:
    One nesting of state variables per net, in `net_keys` order.
  """
  states = []
  for i, (subset, key) in enumerate(zip(subsets, net_keys)):
    net = nets[key]
    with tf.name_scope("state_{}".format(i)):
      initial = [net.initial_state_for_inputs(tf.zeros(shapes[j]),
                                              dtype=tf.float32)
                 for j in subset]
      net(tf.zeros(shapes[subset[0]]), initial[0])
      states.append(_nested_variable(initial, name=name))
  return states


def _checkpoint_file(model_path, key):
  path = checkpoint.checkpoint_path(model_path, key)
  if not os.path.isfile(path):
    found = sorted(f for f in os.listdir(model_path)
                   if f.endswith(".l2l")) if os.path.isdir(model_path) else []
    raise ValueError(
        "No checkpoint {!r} for optimizer {!r} in {}; found: {}. model_path "
        "must be a directory written by MetaOptimizer.save (train.py "
        "--save_path).".format(os.path.basename(path), key, model_path,
                               ", ".join(found) or "no .l2l files"))
  return path


def _net_updates(net, fx, x, names, state, second_derivatives):
  """Applies one net to the gradients of `fx` at `x`.

  Returns:
    `(deltas, next_state)`, one entry per variable.
  """
  with tf.name_scope("gradients"):
    gradients = _gradients(fx, x, names)
    if not second_derivatives:
      gradients = [tf.stop_gradient(g) for g in gradients]
  deltas, next_state = zip(*[net(g, s) for g, s in zip(gradients, state)])
  return list(deltas), list(next_state)


def _gradients(loss, points, names):
  """Dense gradients of `loss` with respect to each of `points`.

  Raises:
    ValueError: if the loss does not depend on some of them, which happens
      when a problem creates variables outside `build()`: those are never
      swapped for the unrolled tensors, and would silently never move.
  """
  gradients = tf.gradients(loss, points)
  unused = [name for name, g in zip(names, gradients) if g is None]
  if unused:
    raise ValueError(
        "The loss does not depend on the optimizee variables {}. Create every "
        "variable (and Sonnet module) inside the problem's build() function, "
        "so that each call creates it anew.".format(", ".join(unused)))
  return [tf.convert_to_tensor(g) for g in gradients]
