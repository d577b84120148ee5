"""Variable interception: how an unroll swaps an optimizee's variables.

A problem is a `build()` function that creates its variables, with
`tf.compat.v1.get_variable` or Sonnet 2 modules (`tf.Variable`), and returns
its loss. Trainable variables are what is optimised; non-trainable ones are
the problem instance. An unroll calls `build()` once through `get_variables`
to create the real variables, then again through
`make_with_custom_variables` at every point it visits, handing it tensors in
place of the trainable variables and the same instance each time.
"""

import tensorflow as tf


def is_trainable(kwargs):
  """Whether a variable creation asks for a trainable variable.

  Args:
    kwargs: the keyword arguments of the creation.

  Returns:
    True unless `trainable` is explicitly False: both creation paths leave it
    None when the caller did not set it, which means trainable.
  """
  return kwargs.get("trainable") is not False


def variable_name(variable):
  """The variable's name without the `:0` output suffix.

  A Keras 3 variable's `name` is its last part only ("kernel"); its `path`
  ("dense_1/kernel") is the name that tells it from the others, as a graph
  variable's full name does.
  """
  path = getattr(variable, "path", None)
  if isinstance(path, str) and path:
    return path
  return variable.name.split(":")[0]


def wrap_variable_creation(func, custom_getter):
  """Calls `func` with every variable creation routed through `custom_getter`.

  Problems written with `tf.compat.v1.get_variable` and problems written with
  Sonnet 2 (`tf.Variable`) are both covered. Each creation calls
  `custom_getter(getter, **kwargs)` once, where `getter(**kwargs)` creates the
  real variable and `kwargs` holds at least `name` and `trainable`. A
  `get_variable` call that reuses an earlier call's name is no creation:
  it returns what the earlier call returned.

  Args:
    func: a function with no arguments that creates variables.
    custom_getter: the interception, which may return a tensor in place of
      the variable.

  Returns:
    What `func` returns.
  """
  # `get_variable` also goes through the creator scope; the flag keeps such a
  # creation from being intercepted twice.
  inside_get_variable = [False]
  # A `get_variable` that reuses a name (`reuse=True` or `AUTO_REUSE`, as
  # in a siamese network) is the variable of the first call, not a
  # creation: it gets what that call got, so a shared variable stays one.
  by_name = {}

  def creator(next_creator, **kwargs):
    if inside_get_variable[0]:
      return next_creator(**kwargs)
    return custom_getter(next_creator, **kwargs)

  def get_variable_getter(getter, *args, **kwargs):
    if kwargs.get("partitioner") is not None:
      # Its parts are separate variables behind one object, which the
      # unroll could neither swap nor reset.
      raise ValueError(
          "Variable {} is partitioned (get_variable's partitioner): an "
          "optimizee variable must be whole; create it without a "
          "partitioner.".format(kwargs.get("name")))
    def real_getter(**real_kwargs):
      inside_get_variable[0] = True
      try:
        return getter(*args, **real_kwargs)
      finally:
        inside_get_variable[0] = False
    name = kwargs.get("name")
    if kwargs.get("reuse") and name in by_name:
      return by_name[name]
    by_name[name] = custom_getter(real_getter, **kwargs)
    return by_name[name]

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


def get_variables(func, constants=None):
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
    trainable = is_trainable(kwargs)
    if not trainable and replay is not None:
      return replay()
    kwargs["trainable"] = False
    variable = getter(**kwargs)
    (variables if trainable else created_constants).append(variable)
    return variable

  if replay is None:
    # No name scope here: the variables keep the names net_assignments use.
    _refuse_outside_variables(wrap_variable_creation(func, custom_getter))
    return variables, created_constants
  # Another draw of the same problem: a fresh variable scope keeps
  # `get_variable` from refusing the names the first call took.
  with tf.compat.v1.variable_scope(None, default_name="another_start"):
    wrap_variable_creation(func, custom_getter)
  return variables, list(constants)


def upstream_ops(roots):
  """Every op that `roots` (ops) depend on, through inputs and control
  inputs, the roots included: a set.

  The graph is only read; nothing is added to it.
  """
  seen = set()
  pending = list(roots)
  while pending:
    op = pending.pop()
    if op in seen:
      continue
    seen.add(op)
    pending.extend(tensor.op for tensor in op.inputs)
    pending.extend(op.control_inputs)
  return seen


def _refuse_outside_variables(loss):
  """Raises ValueError if `loss` reads trainable variables made elsewhere.

  The variables a problem's `build` creates are made non-trainable and
  swapped for the unroll's tensors; a trainable variable the loss reads but
  `build` did not create (one made in `make_problem`, outside `build`)
  would never be swapped: a learned optimizer would leave it where it is
  while a baseline moved it, and the two would solve different problems.
  """
  try:
    loss = tf.convert_to_tensor(loss)
  except (TypeError, ValueError):
    return  # Not a tensor: `problems.mean_loss` says what is wrong.
  candidates = {variable.op: variable
                for variable in tf.compat.v1.trainable_variables()
                if variable.graph is loss.graph}
  if not candidates:
    return
  used = [candidates[op].name.split(":")[0]
          for op in upstream_ops([loss.op]) if op in candidates]
  if used:
    raise ValueError(
        "The loss reads trainable variables {} that the problem's build() "
        "did not create: a learned optimizer steps only the variables build() "
        "creates, so these would never move under it (a baseline would move "
        "them). Create every variable, and Sonnet module, inside build(), or "
        "create these with trainable=False.".format(", ".join(sorted(used))))


def make_with_custom_variables(func, variables, constants=None):
  """Calls `func`, handing it `variables` in place of its trainable variables.

  Trainable creations receive the tensors of `variables` in creation order.
  Non-trainable creations receive `constants` in creation order, so that every
  call sees the same problem instance; with `constants=None` they are created
  anew.

  Args:
    func: the problem's `build` function, already passed to `get_variables`.
    variables: one tensor per trainable variable, in creation order.
    constants: the non-trainable variables `get_variables` returned.

  Returns:
    What `func` returns.

  Raises:
    ValueError: if `func` creates more variables than on its first call.
  """
  next_variable = _Replay(variables, "trainable")
  next_constant = None if constants is None else _Replay(constants,
                                                         "non-trainable")

  def custom_getter(getter, **kwargs):
    if is_trainable(kwargs):
      return next_variable()
    if next_constant is None:
      kwargs["trainable"] = False
      return getter(**kwargs)
    return next_constant()

  return wrap_variable_creation(func, custom_getter)
