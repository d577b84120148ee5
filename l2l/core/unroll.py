"""The unroll scaffolding shared by the L2L unroll, the swarm unroll and
the drop-in optimizer: persistent state, nets' states and their updates.

An unroll keeps its loop state in non-trainable variables so that the next
`session.run` continues the same trajectory: `nested_variable` creates them
from initial tensors, and `nested_assign` writes a loop's final values back.
"""

import tensorflow as tf


def nested_assign(ref, value):
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
    return type(ref)(nested_assign(r, v) for r, v in zip(ref, value))
  return tf.compat.v1.assign(ref, value)


def nested_variable(init, name=None, trainable=False):
  """Returns a nesting of variables initialised from a nesting of tensors.

  Args:
    init: a tensor, or a list/tuple nesting of tensors.
    name: variable name.
    trainable: whether the variables are trainable.

  Returns:
    A variable, or the same nesting of variables.
  """
  if isinstance(init, (list, tuple)):
    return type(init)(nested_variable(i, name, trainable) for i in init)
  return tf.Variable(init, name=name, trainable=trainable)


def net_states(nets, net_keys, subsets, shapes, name="state"):
  """Creates the nets' persistent states, one per assigned variable.

  Each net is also connected once, to a dummy input: Sonnet 2 creates
  variables on the first call, which cannot happen inside a while loop.

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
      if subset:
        net(tf.zeros(shapes[subset[0]]), initial[0])
      states.append(nested_variable(initial, name=name))
  return states


def gradients(loss, points, names):
  """Dense gradients of `loss` with respect to each of `points`.

  Args:
    loss: a scalar tensor.
    points: the tensors standing for the optimizee variables.
    names: their variable names, for the error below.

  Returns:
    One dense tensor per point.

  Raises:
    ValueError: if the loss does not depend on some of them, which happens
      when a problem creates variables outside `build()`: those are never
      swapped for the unrolled tensors, and would silently never move.
  """
  grads = tf.gradients(loss, points)
  without = [(name, point) for name, point, g in zip(names, points, grads)
             if g is None]
  integers = [name for name, point in without
              if not point.dtype.is_floating]
  if integers:
    raise ValueError(
        "The optimizee variables {} are not floating-point, so the loss has "
        "no gradient for them; create such a variable (a step counter, "
        "say) with trainable=False.".format(", ".join(integers)))
  if without:
    raise ValueError(
        "The loss does not depend on the optimizee variables {}: either it "
        "does not use them (create them with trainable=False, or not at "
        "all), or they were created outside the problem's build() function, "
        "so that the unroll never swaps them (create every variable, and "
        "Sonnet module, inside build()).".format(
            ", ".join(name for name, _ in without)))
  return [tf.convert_to_tensor(g) for g in grads]


def optimizee_gradients(loss, points, names, second_derivatives):
  """`gradients`, stopped unless second derivatives are asked for.

  DeepMind's unroll stops gradients through the optimizee gradient by
  default: the meta-gradient then needs no second derivatives of the
  problem.

  Args:
    loss: a scalar tensor.
    points: the tensors standing for the optimizee variables.
    names: their variable names.
    second_derivatives: let the meta-gradient flow through them.

  Returns:
    One tensor per point.
  """
  with tf.name_scope("gradients"):
    grads = gradients(loss, points, names)
    if not second_derivatives:
      grads = [tf.stop_gradient(g) for g in grads]
  return grads


def net_updates(net, grads, state):
  """Applies one net to one gradient per variable.

  Args:
    net: the optimizer net.
    grads: the gradients of the variables it drives.
    state: the net's state for each of them.

  Returns:
    `(deltas, next_state)`, one entry per variable.
  """
  if not grads:
    return [], []
  deltas, next_state = zip(*[net(g, s) for g, s in zip(_in_float32(grads),
                                                          state)])
  return _as_variables(deltas, grads), list(next_state)


def as_float32(tensor):
  """`tensor`, cast to float32 unless it is float32 already.

  The nets compute in float32: their weights and states are float32, as
  DeepMind's were, and so are the unroll's losses. A variable of another
  floating-point type (a float64 model's) is stepped by casting its
  gradient to float32 on the way in and the update back to the variable's
  type; float32 tensors get no cast, so their graphs are as before.
  """
  return tensor if tensor.dtype == tf.float32 else tf.cast(tensor,
                                                           tf.float32)


def _in_float32(grads):
  return [as_float32(g) for g in grads]


def _as_variables(deltas, grads):
  return [d if d.dtype == g.dtype else tf.cast(d, g.dtype)
          for d, g in zip(deltas, grads)]


def joins(net, num_variables, len_unroll):
  """Whether an unroll steps the variables of `net` jointly.

  A net that `joins_variables` steps them all in one call, on one joint
  state that the loop carries; joining and splitting the persistent
  per-variable states costs a copy of them per unroll, which a single step
  does not earn back.

  Args:
    net: the optimizer net.
    num_variables: how many variables it drives.
    len_unroll: the unroll's steps.

  Returns:
    A bool.
  """
  return net.joins_variables and num_variables > 0 and len_unroll > 1


def loop_state(net, states, joined):
  """The state an unroll's loop carries for the variables one net drives.

  Args:
    net: the optimizer net.
    states: its state for each of its variables.
    joined: `joins(...)` for it.

  Returns:
    The joint state, or `states` itself.
  """
  return net.join_states(states) if joined else states


def per_variable_state(net, state, shapes, joined):
  """Undoes `loop_state`: one state per variable, to assign or carry on.

  Args:
    net: the optimizer net.
    state: what `loop_state` or `loop_updates` returned for it.
    shapes: the static shapes of its variables.
    joined: `joins(...)` for it.

  Returns:
    One state per variable.
  """
  return net.split_state(state, shapes) if joined else state


def loop_updates(net, grads, state, joined, recompute=False):
  """`net_updates` on a `loop_state`: one call for a joint state.

  Args:
    net: the optimizer net.
    grads: the gradients of the variables it drives.
    state: its `loop_state`.
    joined: `joins(...)` for it.
    recompute: `Network.joint_call`'s, for a joint state.

  Returns:
    `(deltas, next_state)`: one delta per variable and the next loop state.
  """
  if joined:
    deltas, next_state = net.joint_call(_in_float32(grads), state,
                                        recompute=recompute)
    return _as_variables(deltas, grads), next_state
  return net_updates(net, grads, state)
