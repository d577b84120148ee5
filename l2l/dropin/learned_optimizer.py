"""`LearnedOptimizer`: a trained optimizer as a `tf.compat.v1.train.Optimizer`.

    optimizer = l2l.LearnedOptimizer.from_path("./digits")
    train_op = optimizer.minimize(loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    for _ in range(1000):
      sess.run(train_op)

Each step is the step of the meta-training unroll: for every variable x with
gradient g, `delta, state = net(g, state)` and `x <- x + delta`. The nets'
recurrent state lives in slot variables, so it carries over from one
`session.run` to the next; `reset_ops()` starts it afresh.
"""

import tensorflow as tf

from l2l.core import unroll
from l2l.dropin import update_rule as update_rule_lib


# How a saved optimizer's directory becomes one, for messages.
_FROM_PATH = "l2l.LearnedOptimizer.from_path(directory)"


class LearnedOptimizer(tf.compat.v1.train.Optimizer):
  """Applies a meta-trained optimizer's update rule to any graph-mode model."""

  def __init__(self, update_rule, use_locking=False, name="LearnedOptimizer",
               **kwargs):
    """Creates the optimizer; prefer `from_path` or `from_meta_optimizer`.

    Args:
      update_rule: an `update_rule.UpdateRule`.
      use_locking: unused (the updates are plain assignments); kept for the
        `Optimizer` signature.
      name: name scope of the ops it creates.
      **kwargs: accepted only to refuse a learning rate clearly.

    Raises:
      ValueError: for a learning rate or any other unknown argument.
    """
    update_rule_lib.refuse_learning_rate(kwargs, "LearnedOptimizer")
    if kwargs:
      raise ValueError("LearnedOptimizer got unknown arguments {}.".format(
          ", ".join(sorted(kwargs))))
    update_rule_lib.check_arguments("LearnedOptimizer", name, update_rule,
                                    _FROM_PATH)
    # tf.compat.v1.train optimizers take the learning rate second: a number
    # there would land in use_locking and fail far from here.
    if not isinstance(use_locking, bool):
      raise ValueError(
          "LearnedOptimizer: use_locking must be a bool, got {!r}; a learned "
          "optimizer takes no learning rate.".format(use_locking))
    super().__init__(use_locking, name)
    self._update_rule = update_rule
    # Nets belong to the graph they were built in; one set per graph.
    self._nets_by_graph = {}
    # For each variable key: (variable, net id, state structure, slots).
    self._states = {}
    # Per graph: (the ids of the state slots it resets, the op), made once.
    self._reset_by_graph = {}

  @classmethod
  def from_path(cls, directory, name="LearnedOptimizer", assignment=None,
                **kwargs):
    """The optimizer saved in `directory` by `MetaOptimizer.save` / train.py.

    The manifest beside the `.l2l` files gives the nets and which variables
    each drives. Without one the directory must hold the default net,
    `cw.l2l` (DeepMind's files and older saves).

    Args:
      directory: the saved optimizer's directory.
      name: name scope of the ops it creates.
      assignment: optionally, a rule giving the model's variables to the
        saved nets in place of the saved one (see `UpdateRule.from_path`).
      **kwargs: accepted only to refuse a learning rate clearly.

    Returns:
      A `LearnedOptimizer`.

    Raises:
      ValueError: for a learning rate, a missing or bad save, a bad
        `assignment`, or a swarm (LOIS) optimizer, which has no
        single-point update rule.
    """
    update_rule_lib.refuse_learning_rate(kwargs, "LearnedOptimizer")
    update_rule_lib.check_arguments("LearnedOptimizer.from_path", name)
    return cls(update_rule_lib.UpdateRule.from_path(directory, assignment),
               name=name, **kwargs)

  @classmethod
  def from_meta_optimizer(cls, meta_optimizer, sess, name="LearnedOptimizer",
                          **kwargs):
    """The update rule of a `MetaOptimizer` with its current values in `sess`.

    Args:
      meta_optimizer: a `meta.MetaOptimizer` whose `meta_loss` was built.
      sess: the session holding its values.
      name: name scope of the ops it creates.
      **kwargs: accepted only to refuse a learning rate clearly.

    Returns:
      A `LearnedOptimizer`.

    Raises:
      ValueError: for a learning rate, an unbuilt or a swarm optimizer.
    """
    update_rule_lib.refuse_learning_rate(kwargs, "LearnedOptimizer")
    update_rule_lib.check_arguments("LearnedOptimizer.from_meta_optimizer",
                                    name)
    return cls(update_rule_lib.UpdateRule.from_meta_optimizer(
        meta_optimizer, sess), name=name, **kwargs)

  @property
  def update_rule(self):
    """The `UpdateRule` it applies."""
    return self._update_rule

  def _nets(self):
    graph = tf.compat.v1.get_default_graph()
    if graph not in self._nets_by_graph:
      with tf.name_scope(self._name + "_nets"):
        self._nets_by_graph[graph] = self._update_rule.make_nets()
    return self._nets_by_graph[graph]

  def _state(self, variable, net_id, nets):
    """The slot variables holding the net's state for `variable`."""
    key = id(variable)
    if key not in self._states:
      with tf.init_scope():
        initial = update_rule_lib.initial_state(nets[net_id], variable)
        slots = [self._get_or_make_slot(variable, value, "state_{}".format(i),
                                        self._name)
                 for i, value in enumerate(tf.nest.flatten(initial))]
      self._states[key] = (variable, net_id, initial, slots)
    return self._states[key]

  def apply_gradients(self, grads_and_vars, global_step=None, name=None,
                      skip_gradients_aggregation=False):
    """Applies one learned step to each variable with a gradient.

    Args:
      grads_and_vars: `(gradient, variable)` pairs; pairs whose gradient is
        None are skipped.
      global_step: optional variable incremented after the update.
      name: name of the returned op.
      skip_gradients_aggregation: unused; kept for the `Optimizer` signature.

    Returns:
      The op applying the step.

    Raises:
      ValueError: if no variable has a gradient, or the assignment rule
        covers some variable with no net.
    """
    del skip_gradients_aggregation  # No cross-replica aggregation here.
    _refuse_eager()
    grads_and_vars = list(grads_and_vars)  # It may be a zip, read twice.
    pairs = [(g, v) for g, v in grads_and_vars if g is not None]
    if not pairs:
      raise ValueError("No gradients provided for any variable: {}.".format(
          [v.name for _, v in grads_and_vars]))
    net_ids = self._update_rule.net_ids([v for _, v in pairs])
    # Variables the rule keeps fixed (training left them out) stay so.
    pairs, net_ids = _driven(pairs, net_ids)
    variables = [v for _, v in pairs]
    nets = self._nets()
    states = [self._state(v, net_id, nets)
              for v, net_id in zip(variables, net_ids)]
    self._reset_op(tf.compat.v1.get_default_graph())
    updates = []
    with tf.name_scope(name or self._name):
      for (gradient, variable), (_, net_id, structure, slots) in zip(pairs,
                                                                      states):
        state = tf.nest.pack_sequence_as(
            structure, [slot.read_value() for slot in slots])
        (delta,), (next_state,) = unroll.net_updates(
            nets[net_id], [tf.convert_to_tensor(gradient)], [state])
        update = tf.compat.v1.assign_add(variable, delta)
        if getattr(variable, "constraint", None) is not None:
          # As TensorFlow's own optimizers: the constraint after the step.
          with tf.control_dependencies([update]):
            update = tf.compat.v1.assign(
                variable, variable.constraint(variable.read_value()))
        updates.append(update)
        updates.extend(unroll.nested_assign(list(slots),
                                            tf.nest.flatten(next_state)))
      if global_step is None:
        return tf.group(*updates)
      with tf.control_dependencies(updates):
        return tf.compat.v1.assign_add(global_step, 1).op

  def reset_ops(self):
    """Ops that put every net state back to its initial value.

    Run them to start the optimizer afresh on a new problem instance, as
    `MetaOptimizer.meta_loss`'s `reset` does.

    Returns:
      A list of ops for the states of the current graph (empty before
      `minimize` / `apply_gradients` in it). The same op comes back until
      new states are made, so calling this once per run adds nothing to a
      graph (or to a finalized one).
    """
    _refuse_eager()
    op = self._reset_op(tf.compat.v1.get_default_graph())
    return [] if op is None else [op]

  def _reset_op(self, graph):
    """The op resetting `graph`'s states, made when they are (or None).

    `apply_gradients` makes it with the states, before a session runs
    them: made afterwards, TensorFlow warns that the initializers it
    reuses were changed after they ran.
    """
    slots = [slot for _, _, _, state_slots in self._states.values()
             for slot in state_slots if slot.graph is graph]
    if not slots:
      return None
    # By identity: a variable's == may build a comparison op.
    slot_ids = [id(slot) for slot in slots]
    made_for, op = self._reset_by_graph.get(graph, (None, None))
    if made_for != slot_ids:
      op = tf.compat.v1.variables_initializer(slots)
      self._reset_by_graph[graph] = (slot_ids, op)
    return op

  def variables(self):
    """The optimizer's variables in the current graph: states and nets.

    `tf.compat.v1.train.Optimizer.variables` lists the slots (the nets'
    states); the nets' own weights, which it makes too, are added, so
    `tf.compat.v1.variables_initializer(optimizer.variables())` readies
    everything the optimizer runs.

    Returns:
      A list of variables.
    """
    graph = tf.compat.v1.get_default_graph()
    nets = self._nets_by_graph.get(graph, {})
    return super().variables() + [variable for _, net in sorted(nets.items())
                                  for variable in net.variables]


def _driven(pairs, net_ids):
  """The `(gradient, variable)` pairs a net drives, and their nets."""
  kept = [(pair, net_id) for pair, net_id in zip(pairs, net_ids)
          if net_id is not None]
  return [pair for pair, _ in kept], [net_id for _, net_id in kept]


def _refuse_eager():
  """Raises RuntimeError when run eagerly or inside a `tf.function`.

  The nets and states are made per graph and their ops run by a session; in
  a `tf.function` each trace would make new ones.
  """
  with tf.init_scope():
    eager = tf.executing_eagerly()
  if eager:
    raise RuntimeError(
        "LearnedOptimizer is a graph-mode tf.compat.v1.train.Optimizer and "
        "eager execution is on here (or this is a tf.function); in eager "
        "code use l2l.keras_optimizer(path), which applies the same steps.")
