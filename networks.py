"""Update rules ("optimizer nets") that map gradients to parameter updates.

Every net is a Sonnet 2 module called as `update, next_state = net(gradient,
state)`. The learned nets keep their parameters in the layout of the original
Sonnet 1 code (`lstm_1/w_gates`, `lstm_1/b_gates`, ..., `linear/w`,
`linear/b`), so `.l2l` files written by DeepMind's and LOIS's code load here
and the files we write load there.
"""

import collections.abc
import math
import numbers

import numpy as np
import sonnet as snt
import tensorflow as tf

from l2l import checks
from l2l.checkpoint import l2l_file
import preprocess
from l2l.core import graph_mode  # pylint: disable=unused-import
from l2l.core import lstm_stack


# Names of initializers a net's `initializer` may give, for messages.
_INITIALIZER_EXAMPLES = ("zeros", "ones", "constant", "random_normal",
                         "truncated_normal", "random_uniform",
                         "glorot_uniform", "variance_scaling", "orthogonal")


class LoadedCheckpoint(dict):
  """Checkpoint values `{module: {variable: ndarray}}` that remember their file.

  Used as a net's `initializer`, so that a shape mismatch names the file.
  """

  def __init__(self, values, path):
    super().__init__(values)
    self.path = path


class _ArrayInitializer:
  """Initializes a variable from a fixed array.

  A checkpoint's array must have the variable's shape exactly. An array
  given in code may also hold a single value, which fills the shape, as
  DeepMind's constant initializers did.
  """

  def __init__(self, value, where, exact):
    self._value = np.asarray(value)
    self._where = where
    self._exact = exact

  def __call__(self, shape, dtype=tf.float32, **unused_kwargs):
    shape = tuple(int(d) for d in shape)
    if self._value.shape == shape:
      return tf.constant(self._value, dtype=dtype)
    if self._value.size == 1 and not self._exact:
      return tf.fill(shape, tf.constant(self._value.item(), dtype=dtype))
    if self._exact:
      raise ValueError(
          "{} has shape {} but this network needs shape {}; the checkpoint "
          "was written for a different net configuration or problem.".format(
              self._where, list(self._value.shape), list(shape)))
    raise ValueError(
        "The initializer of {} has shape {} but the variable has shape {}; "
        "give an array of that shape or a single value.".format(
            self._where, list(self._value.shape), list(shape)))


def _to_initializer(value, where, exact):
  """Converts a name, an array or a callable to an initializer callable.

  A name N is DeepMind's `tf.N_initializer` (here `tf.compat.v1`'s); the
  variable's dtype is given when it is called.
  """
  if isinstance(value, str):
    make = getattr(tf.compat.v1, value + "_initializer", None)
    if value.startswith("_") or not callable(make):
      raise ValueError(
          "Unknown initializer {!r} for {}: expected a name N of a "
          "tf.compat.v1.N_initializer, such as {}.".format(
              value, where, ", ".join(_INITIALIZER_EXAMPLES)))
    return make()
  if isinstance(value, (np.ndarray, np.generic, float, int)):
    return _ArrayInitializer(value, where, exact)
  if callable(value):
    return value
  raise ValueError(
      "Initializer for {} must be a name, an ndarray, a callable or a nested "
      "dict of those, got {!r}.".format(where, type(value).__name__))


def _check_checkpoint_layout(initializer, expected, net_name):
  """Raises unless a checkpoint file has exactly the modules a net needs.

  Only checkpoint files must fit exactly; initializers given in code may
  cover part of the net, as DeepMind's.
  """
  if not isinstance(initializer, LoadedCheckpoint):
    return
  if not initializer:
    raise ValueError("{} is empty: it holds no parameters for {}.".format(
        initializer.path, net_name))
  for module, variables in expected.items():
    got = initializer.get(module)
    if not isinstance(got, dict) or set(got) != set(variables):
      raise ValueError(
          "{} does not fit {}: expected modules {} but found {}.".format(
              initializer.path, net_name,
              {m: sorted(v) for m, v in expected.items()},
              {m: sorted(v) for m, v in initializer.items()}))
  extra = set(initializer) - set(expected)
  if extra:
    raise ValueError("{} does not fit {}: unexpected modules {}.".format(
        initializer.path, net_name, sorted(extra)))


def _initializer_for(initializer, module, variable, default):
  """Picks the initializer of `module/variable` from a net's `initializer`.

  As DeepMind's: a dict keyed by module applies its entry to that module;
  otherwise a dict keyed by variable name applies to every module (keys no
  variable has are ignored); anything else applies to every variable.
  Whatever the initializer does not cover keeps `default`.

  Args:
    initializer: None, a name, an ndarray, a callable, a dict keyed by variable
      name, or a nested dict `{module: {variable: ...}}` as `save` returns.
    module: module name, e.g. "lstm_1".
    variable: variable name, e.g. "w_gates".
    default: initializer used when `initializer` does not cover the variable.

  Returns:
    An initializer callable `(shape, dtype) -> Tensor`.
  """
  where = "{}/{}".format(module, variable)
  exact = isinstance(initializer, LoadedCheckpoint)
  if exact:
    where = "{} in {}".format(where, initializer.path)
  if isinstance(initializer, dict) and module in initializer:
    initializer = initializer[module]
  if isinstance(initializer, dict):
    initializer = initializer.get(variable)
  if initializer is None:
    return default
  return _to_initializer(initializer, where, exact)


def _make_preprocess(name, options):
  """The gradient preprocessing `preprocess_name` names, as DeepMind's rule.

  A class of `preprocess` (LogAndSign, Clamp) made with `options`, else the
  TensorFlow function of that name (identity, tanh, sign, ...), which takes
  no options: as in DeepMind's nets, they are then ignored (a config that
  switches LogAndSign to identity may keep its k).

  Raises:
    ValueError: for a name that is neither.
  """
  preprocess_class = (getattr(preprocess, name, None)
                      if isinstance(name, str) else None)
  if isinstance(preprocess_class, type):
    return preprocess_class(**(options or {}))
  function = (getattr(tf, name, None)
              if isinstance(name, str) and not name.startswith("_") else None)
  if not callable(function) or isinstance(function, type):
    raise ValueError(
        "Unknown preprocess_name {!r}; expected 'LogAndSign', 'Clamp' or the "
        "name of a TensorFlow function such as 'identity' or "
        "'tanh'.".format(name))
  return function


class Network(snt.Module):
  """Base class of update rules: `update, next_state = net(inputs, state)`."""

  # Whether the net has parameters a checkpoint restores.
  has_parameters = True

  def initial_state_for_inputs(self, inputs, **kwargs):
    """Returns the initial state for a variable shaped like `inputs`.

    Args:
      inputs: a tensor with the shape of the variable to optimise.
      **kwargs: `dtype` of the state (default tf.float32).

    Returns:
      A nested structure of tensors.
    """
    raise NotImplementedError

  def checkpoint_variables(self):
    """Returns `{module: {variable: tf.Variable}}` in the .l2l layout."""
    return {}

  def example_shape(self):
    """The shape of a small variable the net can update.

    Connecting the net to a gradient of this shape creates its variables,
    which is when a checkpoint's shapes are checked against them.

    Returns:
      A list of ints.
    """
    return [1]

  # Whether the net can step all the variables it drives in one call
  # (`joint_call`, on one state over all their coordinates, `join_states`):
  # an unroll then runs one set of ops per step instead of one per variable.
  joins_variables = False

  def join_states(self, states):
    """The states of several variables as one state (`joins_variables`).

    Args:
      states: one state per variable, each as `initial_state_for_inputs`
        gives it.

    Returns:
      The joint state `joint_call` takes.
    """
    raise NotImplementedError

  def split_state(self, state, shapes):
    """Splits a joint state back into one state per variable.

    Args:
      state: a state `join_states` or `joint_call` returned.
      shapes: the variables' static shapes, in the order joined.

    Returns:
      A list of per-variable states.
    """
    raise NotImplementedError

  def joint_call(self, inputs, state, recompute=False):
    """Steps several variables at once (`joins_variables`).

    Args:
      inputs: one gradient per variable.
      state: their joint state.
      recompute: whether the gradient recomputes what it needs of the
        forward pass instead of keeping it (less memory, more time).

    Returns:
      `(updates, next_state)`: one update per variable, shaped as its
      gradient, and the joint state.
    """
    raise NotImplementedError


class _LSTMCell(snt.Module):
  """One LSTM cell's parameters, in the Sonnet 1 layout, forget bias 1.0.

  `gates = [x, h] @ w_gates + b_gates` split as (i, j, f, o);
  `c' = sigmoid(f + 1) * c + sigmoid(i) * tanh(j)`, `h' = sigmoid(o) * tanh(c')`.
  The cells of a net run together, fused, in `l2l.core.lstm_stack`.
  """

  def __init__(self, hidden_size, initializer, name, bias_default=None):
    """Creates the cell (its variables come with its first input's width).

    Args:
      hidden_size: its hidden units.
      initializer: the net's `initializer` (see `StandardDeepLSTM`).
      name: module name, "lstm_<i>".
      bias_default: the initializer of `b_gates` where `initializer` does
        not cover it; None is Sonnet 1's (the weights' own, below).
    """
    super().__init__(name=name)
    self._hidden_size = hidden_size
    self._initializer = initializer
    self._bias_default = bias_default

  @snt.once
  def create_variables(self, input_size, dtype):
    """Creates `w_gates` [input_size + hidden, 4 hidden] and `b_gates`."""
    # Sonnet 1's default for both: truncated normal scaled by the
    # concatenated width (DeepMind's nets passed no initializer of their
    # own, so their gate biases started random, not at zero).
    default = tf.compat.v1.truncated_normal_initializer(
        stddev=1.0 / math.sqrt(input_size + self._hidden_size))
    w_init = _initializer_for(self._initializer, self.name, "w_gates",
                              default)
    b_init = _initializer_for(self._initializer, self.name, "b_gates",
                              self._bias_default or default)
    self.w_gates = tf.Variable(
        w_init([input_size + self._hidden_size, 4 * self._hidden_size],
               dtype=dtype), name="w_gates")
    self.b_gates = tf.Variable(
        b_init([4 * self._hidden_size], dtype=dtype), name="b_gates")


def _coordinate_rows(inputs):
  """A variable as one row per coordinate, [size, 1]."""
  return tf.reshape(inputs, [-1, 1])


def _layer_sizes(layers):
  """`layers` as a tuple of hidden sizes, each an integer >= 1."""
  if isinstance(layers, (str, bytes)) or not isinstance(
      layers, collections.abc.Iterable):
    raise ValueError("layers must be a sequence of hidden sizes such as "
                     "(20, 20), got {!r}.".format(layers))
  sizes = tuple(layers)
  if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and
             s >= 1 for s in sizes):
    raise ValueError("layers must hold integers >= 1 (hidden sizes such as "
                     "(20, 20)), got {!r}.".format(layers))
  return tuple(int(s) for s in sizes)


class StandardDeepLSTM(Network):
  """A deep LSTM followed by a linear layer, scaled by `scale`."""

  def __init__(self, output_size, layers, preprocess_name="identity",
               preprocess_options=None, scale=1.0, initializer=None,
               name="deep_lstm"):
    """Creates the net.

    Args:
      output_size: width of the update each row of the input produces.
      layers: hidden sizes of the stacked LSTM cells, e.g. (20, 20).
      preprocess_name: a class of `preprocess` ("LogAndSign", "Clamp"), or
        else a TensorFlow function's name ("identity", "tanh", ...), as
        DeepMind's nets took it.
      preprocess_options: keyword arguments of the preprocessing module.
      scale: factor applied to the linear layer's output.
      initializer: a name N of a `tf.compat.v1.N_initializer` ("zeros",
        "variance_scaling", ...), an ndarray (a single value fills the
        shape), an initializer, a dict of those by variable name (applied to
        every module; unknown names are ignored), or a nested dict
        `{module: {variable: ...}}` as `save` returns. What it does not
        cover keeps the default; a checkpoint file (`factory`'s
        `net_path`) must fit exactly.
      name: module name.

    Raises:
      ValueError: if `initializer` is a checkpoint file of another layout,
        or `scale` is not a finite number.
    """
    super().__init__(name=name)
    self._output_size = output_size
    self._layers = _layer_sizes(layers)
    # A NaN scale stepped every variable to NaN without a word.
    checks.check_number("{} scale".format(type(self).__name__), scale)
    self._scale = scale
    self._preprocess = _make_preprocess(preprocess_name, preprocess_options)
    _check_checkpoint_layout(initializer, self._checkpoint_layout(),
                             type(self).__name__)
    with self.name_scope:
      self._cores = [_LSTMCell(size, initializer, "lstm_{}".format(i + 1),
                               self._gate_bias_default_init())
                     for i, size in enumerate(self._layers)]
      self._linear = snt.Linear(
          output_size,
          w_init=_initializer_for(initializer, "linear", "w",
                                  self._linear_default_init()),
          b_init=_initializer_for(initializer, "linear", "b", None),
          name="linear")

  def _checkpoint_layout(self):
    """`{module: variable names}` that a checkpoint of this net holds."""
    layout = {"lstm_{}".format(i + 1): ("w_gates", "b_gates")
              for i in range(len(self._layers))}
    layout["linear"] = ("w", "b")
    return layout

  def _linear_default_init(self):
    """The output layer's default weights: None is Sonnet's default."""
    return None

  def _gate_bias_default_init(self):
    """The LSTM cells' default `b_gates`: None is Sonnet 1's default."""
    return None

  @snt.once
  def _create_variables(self, width, dtype):
    """Creates every parameter, for inputs `width` features wide."""
    for core, size in zip(self._cores, self._layers):
      core.create_variables(width, dtype)
      width = size
    # snt.Linear creates its variables on its first call.
    self._linear(tf.zeros([1, width], dtype))

  def _lstm(self, rows, prev_state):
    """Runs the stacked cells on `rows` [rows, width]: `(output, state)`.

    One variable's step, laid out as the nets keep their states.
    """
    return self._fused_lstm(rows, prev_state, lstm_stack.COORDINATE_MAJOR)

  def _fused_lstm(self, rows, prev_state, layout, recompute=False):
    """The stacked cells and the linear layer (unscaled), laid out so.

    `recompute` is `lstm_stack.step`'s; the native kernel runs the step
    where it can.
    """
    self._create_variables(int(rows.shape[layout.axis]), rows.dtype)
    cells = [(core.w_gates, core.b_gates) for core in self._cores]
    return lstm_stack.step(rows, prev_state, cells,
                           (self._linear.w, self._linear.b), layout,
                           recompute, use_kernel=True)

  def _rows(self, inputs):
    """Preprocesses `inputs` [rows, ...] into the LSTM's input [rows, width]."""
    inputs = self._preprocess(tf.expand_dims(inputs, -1))
    # The width from the static shape: with no rows, -1 would leave it
    # unknown.
    return tf.reshape(inputs, [int(inputs.shape[0]),
                               inputs.shape[1:].num_elements()])

  def __call__(self, inputs, prev_state):
    output, next_state = self._lstm(self._rows(inputs), prev_state)
    return output * self._scale, next_state

  def initial_state_for_inputs(self, inputs, **kwargs):
    rows = int(self._reshape_inputs(inputs).shape[0])
    return self._initial_lstm_state(rows, kwargs.get("dtype", tf.float32))

  def _initial_lstm_state(self, rows, dtype):
    return tuple((tf.zeros([rows, size], dtype), tf.zeros([rows, size], dtype))
                 for size in self._layers)

  def _reshape_inputs(self, inputs):
    return inputs

  def example_shape(self):
    return [1, self._output_size]

  def checkpoint_variables(self):
    values = {core.name: {"w_gates": core.w_gates, "b_gates": core.b_gates}
              for core in self._cores}
    values["linear"] = {"w": self._linear.w, "b": self._linear.b}
    return values


class CoordinateWiseDeepLSTM(StandardDeepLSTM):
  """A deep LSTM applied to every coordinate independently, sharing weights."""

  def __init__(self, name="cw_deep_lstm", **kwargs):
    super().__init__(1, name=name, **kwargs)

  joins_variables = True

  def _reshape_inputs(self, inputs):
    return _coordinate_rows(inputs)

  def __call__(self, inputs, prev_state):
    output, next_state = super().__call__(self._reshape_inputs(inputs),
                                          prev_state)
    return tf.reshape(output, tf.shape(inputs)), next_state

  def join_states(self, states):
    """Per-variable states as one feature-major state [size, coordinates].

    The coordinates of the variables follow each other in the given order.
    """
    def joined(tensors):
      return tf.transpose(tf.concat(list(tensors), 0))
    return tuple((joined(h for h, _ in layer), joined(c for _, c in layer))
                 for layer in zip(*states))

  def split_state(self, state, shapes):
    sizes = [tf.TensorShape(shape).num_elements() for shape in shapes]
    layers = [(tf.split(tf.transpose(h), sizes, 0),
               tf.split(tf.transpose(c), sizes, 0)) for h, c in state]
    return [tuple((h[i], c[i]) for h, c in layers) for i in range(len(sizes))]

  def joint_call(self, inputs, state, recompute=False):
    gradients = tf.concat([tf.reshape(g, [1, -1]) for g in inputs], 1)
    coordinates = int(gradients.shape[1])
    # Preprocessing a [1, n] row concatenates its features on the last axis,
    # feature after feature: reshaped, one row per feature.
    rows = tf.reshape(self._preprocess(gradients), [-1, coordinates])
    output, state = self._fused_lstm(rows, state, lstm_stack.FEATURE_MAJOR,
                                     recompute)
    output = tf.reshape(output * self._scale, [-1])
    sizes = [g.shape.num_elements() for g in inputs]
    updates = [tf.reshape(u, tf.shape(g))
               for u, g in zip(tf.split(output, sizes, 0), inputs)]
    return updates, state


class KernelDeepLSTM(StandardDeepLSTM):
  """A deep LSTM over convolution kernels: one row per (in, out) channel pair.

  A kernel of shape `kernel_shape + [in, out]` is seen as `in * out` rows of
  `prod(kernel_shape)` coordinates, each row updated together.
  """

  def __init__(self, kernel_shape, name="kernel_deep_lstm", **kwargs):
    self._kernel_shape = tuple(int(d) for d in kernel_shape)
    super().__init__(int(np.prod(self._kernel_shape)), name=name, **kwargs)

  def _reshape_inputs(self, inputs):
    if inputs.shape.rank != len(self._kernel_shape) + 2:
      raise ValueError(
          "KernelDeepLSTM with kernel_shape {} expects variables of shape "
          "{} + [in_channels, out_channels], got {}.".format(
              list(self._kernel_shape), list(self._kernel_shape),
              inputs.shape.as_list()))
    rank = inputs.shape.rank
    channels_first = list(range(rank - 2, rank)) + list(range(rank - 2))
    transposed = tf.transpose(inputs, channels_first)
    return tf.reshape(transposed, [-1] + list(self._kernel_shape))

  def example_shape(self):
    return list(self._kernel_shape) + [1, 1]

  def __call__(self, inputs, prev_state):
    output, next_state = super().__call__(self._reshape_inputs(inputs),
                                          prev_state)
    output = tf.transpose(output, [1, 0])
    return tf.reshape(output, tf.shape(inputs)), next_state


class AdaptiveStepLSTM(StandardDeepLSTM):
  """A coordinate-wise LSTM that steers an Adam step and its step size.

  Built for optimizers that must work on problems they never saw, after the
  "nominal" Adam term of Harrison et al. (2022), the multiplicative step
  sizes of Wichrowska et al. (2017) and the hypergradient step sizes of
  Baydin et al. (2018). Per coordinate, with Adam's bias-corrected moments m
  (beta 0.9) and v (beta2 0.999):

      features = clip([g, m_0.5, m_0.9, m_0.99] / sqrt(v), +-10), the
                 current log step size (relative to its start, in decades)
                 and, with `hyper_rate` > 0, the variable's agreement rho
      (c, s)   = linear(LSTM(features))
      log_step = clip(log_step + step_change * tanh(s) + hyper_rate * rho,
                      log(min_step), log(max_step))
      update   = -exp(log_step + log_scale) * (m_0.9 / sqrt(v) + correction * c)

  where rho = sum(-g * u) / sum(|g * u|) over the variable's coordinates, u
  being their last updates: in [-1, 1], the sign-normalised derivative of
  the loss with respect to a log step size shared by the variable. It is
  positive while the gradient keeps pointing where the last step went (the
  steps were too short) and negative once they overshoot.

  With a `horizon` H, the steps of the runs the net is meta-trained on,
  step t > H scales `hyper_rate` by f = H / t and both of the LSTM's
  outputs (`correction * c` and `step_change * tanh(s)`) by f**2; the first
  H steps are untouched. Past the runs it learned on, the net falls back to
  the optimizer it corrects: what the LSTM adds after step H sums to at
  most one horizon's worth. The hypergradient's rates then sum to infinity
  but their squares do not (Robbins and Monro's condition), so the step
  sizes can still follow a trend while their wander on noise stays bounded.
  Without it, the meta-trained net and the untrained one alike threw some
  converged held-out nets back to a chance-level loss between steps 220
  and 610 (bench/README.md, "Attempts: the climb at 1,000 steps").

  The inputs do not depend on the gradient's scale, and the step size can
  grow or shrink geometrically, so one net has the range for the 1e-2 steps
  of a convnet and the steps of 10 a separable logistic regression takes.
  The output layer starts at zero, so the untrained net is Adam at
  `initial_step`, its step sizes moved by the hypergradient alone when
  `hyper_rate` > 0; `log_scale` is one learned scalar, a global step-size
  factor that meta-training sets.

  The state of a variable is `(lstm states, (m_0.5, m_0.9, m_0.99, v,
  log_step), t)`, with the last update `u` after `log_step` when
  `hyper_rate` > 0; rows are the variable's coordinates.
  """

  # Decay rates of the momenta fed to the LSTM; 0.9 is also Adam's.
  MOMENTUM_DECAYS = (0.5, 0.9, 0.99)
  _ADAM_MOMENTUM = 1
  _RMS_DECAY = 0.999
  _EPSILON = 1e-8
  _FEATURE_BOUND = 10.0

  def __init__(self, layers=(20, 20), initial_step=0.01, step_change=0.3,
               correction=0.1, min_step=1e-6, max_step=10.0, hyper_rate=0.0,
               horizon=None, initializer=None, name="adaptive_step_lstm"):
    """Creates the net.

    Args:
      layers: hidden sizes of the stacked LSTM cells.
      initial_step: every coordinate's step size at the first step.
      step_change: the largest change of the log step size per step.
      correction: scale of the LSTM's correction to Adam's direction.
      min_step, max_step: bounds of each coordinate's step size.
      hyper_rate: how far the agreement rho moves the log step sizes per
        step, and whether the LSTM sees it; 0 (the default, which older
        checkpoints were saved with) switches both off.
      horizon: the steps after which the LSTM's outputs and the
        hypergradient fade; None (the default, which older checkpoints were
        saved with) never fades them.
      initializer: as `StandardDeepLSTM`'s; the output layer's weights
        default to zero.
      name: module name.

    Raises:
      ValueError: for an option that is no finite number, bounds that do
        not hold `initial_step`, or a checkpoint of another layout.
    """
    for what, value in (("initial_step", initial_step),
                        ("step_change", step_change),
                        ("correction", correction), ("min_step", min_step),
                        ("max_step", max_step), ("hyper_rate", hyper_rate)):
      checks.check_number("AdaptiveStepLSTM " + what, value)
    if horizon is not None:
      checks.check_number("AdaptiveStepLSTM horizon", horizon)
    if not 0 < min_step <= initial_step <= max_step:
      raise ValueError(
          "AdaptiveStepLSTM needs 0 < min_step <= initial_step <= max_step, "
          "got {}, {}, {}.".format(min_step, initial_step, max_step))
    if not hyper_rate >= 0:
      raise ValueError("AdaptiveStepLSTM needs hyper_rate >= 0, got "
                       "{}.".format(hyper_rate))
    if horizon is not None and not horizon > 0:
      raise ValueError("AdaptiveStepLSTM needs a horizon > 0 (steps) or "
                       "None, got {}.".format(horizon))
    super().__init__(2, layers, initializer=initializer, name=name)
    self._initial_log_step = math.log(initial_step)
    self._step_change = step_change
    self._correction = correction
    self._log_step_bounds = (math.log(min_step), math.log(max_step))
    self._hyper_rate = hyper_rate
    self._horizon = horizon
    with self.name_scope:
      init = _initializer_for(initializer, "step_size", "log_scale",
                              tf.compat.v1.zeros_initializer())
      self._log_scale = tf.Variable(init([], dtype=tf.float32),
                                    name="log_scale")

  def _checkpoint_layout(self):
    layout = super()._checkpoint_layout()
    layout["step_size"] = ("log_scale",)
    return layout

  def _linear_default_init(self):
    return tf.compat.v1.zeros_initializer()

  def _gate_bias_default_init(self):
    # This library's own net, tuned (bench/README.md) with zero gate biases.
    return tf.compat.v1.zeros_initializer()

  def _reshape_inputs(self, inputs):
    return _coordinate_rows(inputs)

  def __call__(self, inputs, prev_state):
    lstm_state, slots, step = prev_state
    count = len(self.MOMENTUM_DECAYS)
    momenta = slots[:count]
    second_moment, log_step = slots[count:count + 2]
    gradient = self._reshape_inputs(inputs)
    step = step + 1.0
    momenta = [decay * m + (1.0 - decay) * gradient
               for decay, m in zip(self.MOMENTUM_DECAYS, momenta)]
    second_moment = (self._RMS_DECAY * second_moment +
                     (1.0 - self._RMS_DECAY) * tf.square(gradient))
    rms = tf.sqrt(second_moment / (1.0 - self._RMS_DECAY**step))
    rms += self._EPSILON
    normalised = [gradient / rms] + [
        m / (1.0 - decay**step) / rms
        for decay, m in zip(self.MOMENTUM_DECAYS, momenta)]
    features = [tf.clip_by_value(tf.concat(normalised, axis=1),
                                 -self._FEATURE_BOUND, self._FEATURE_BOUND),
                (log_step - self._initial_log_step) / math.log(10.0)]
    if self._hyper_rate:
      agreement = _update_agreement(gradient, last_update=slots[-1])
      features.append(tf.ones_like(log_step) * agreement)
    output, lstm_state = self._lstm(tf.concat(features, axis=1), lstm_state)
    correction, step_signal = tf.split(output, 2, axis=1)
    hyper_fade = learned_fade = 1.0
    if self._horizon is not None:
      hyper_fade = tf.minimum(1.0, self._horizon / step)
      learned_fade = tf.square(hyper_fade)
    log_step += self._step_change * tf.tanh(step_signal) * learned_fade
    if self._hyper_rate:
      log_step += self._hyper_rate * agreement * hyper_fade
    log_step = tf.clip_by_value(log_step, *self._log_step_bounds)
    direction = normalised[1 + self._ADAM_MOMENTUM]
    direction += self._correction * correction * learned_fade
    update = -tf.exp(log_step + self._log_scale) * direction
    slots = tuple(momenta) + (second_moment, log_step)
    if self._hyper_rate:
      slots += (update,)
    return tf.reshape(update, tf.shape(inputs)), (lstm_state, slots, step)

  def initial_state_for_inputs(self, inputs, **kwargs):
    dtype = kwargs.get("dtype", tf.float32)
    rows = int(self._reshape_inputs(inputs).shape[0])
    zeros = tf.zeros([rows, 1], dtype)
    moments = (zeros,) * (len(self.MOMENTUM_DECAYS) + 1)
    log_step = tf.fill([rows, 1], tf.constant(self._initial_log_step, dtype))
    slots = moments + (log_step,)
    if self._hyper_rate:
      slots += (zeros,)
    return (self._initial_lstm_state(rows, dtype), slots,
            tf.zeros([], dtype))

  def checkpoint_variables(self):
    values = super().checkpoint_variables()
    values["step_size"] = {"log_scale": self._log_scale}
    return values


def _update_agreement(gradient, last_update):
  """sum(-g * u) / sum(|g * u|) over a variable's coordinates (0 if all 0).

  The derivative of the loss after an update u with respect to a log step
  size shared by the coordinates is sum(g * u) (Baydin et al., 2018);
  dividing by its absolute terms makes it scale-free, in [-1, 1], and
  blind to coordinates that get no gradient (the family's masked units).
  """
  agreement = -gradient * last_update
  return tf.math.divide_no_nan(tf.reduce_sum(agreement),
                               tf.reduce_sum(tf.abs(agreement)))


@snt.allow_empty_variables
class Sgd(Network):
  """Gradient descent: `update = -learning_rate * gradient`."""

  has_parameters = False

  def __init__(self, learning_rate=0.001, name="sgd"):
    """Creates the net.

    Args:
      learning_rate: the step's factor, a finite number >= 0.
      name: module name.

    Raises:
      ValueError: for a learning rate that is no finite number >= 0.
    """
    super().__init__(name=name)
    checks.check_number("Sgd learning_rate", learning_rate, 0)
    self._learning_rate = float(learning_rate)

  def __call__(self, inputs, prev_state):
    return -self._learning_rate * inputs, prev_state

  def initial_state_for_inputs(self, inputs, **kwargs):
    return ()


@snt.allow_empty_variables
class Adam(Network):
  """Adam (Kingma & Ba, 2015) as a net, for mixing with learned nets."""

  has_parameters = False

  def __init__(self, learning_rate=1e-3, beta1=0.9, beta2=0.999, epsilon=1e-8,
               name="adam"):
    """Creates the net.

    Args:
      learning_rate: the step's factor, a finite number >= 0.
      beta1, beta2: the moments' decay rates, in [0, 1).
      epsilon: added to the second moment's root, >= 0.
      name: module name.

    Raises:
      ValueError: for an option out of its range, or no finite number.
    """
    super().__init__(name=name)
    checks.check_number("Adam learning_rate", learning_rate, 0)
    checks.check_number("Adam epsilon", epsilon, 0)
    for what, beta in (("Adam beta1", beta1), ("Adam beta2", beta2)):
      checks.check_number(what, beta, 0)
      if not beta < 1:
        raise ValueError("{} must be < 1, got {!r}.".format(what, beta))
    self._learning_rate = float(learning_rate)
    self._beta1 = float(beta1)
    self._beta2 = float(beta2)
    self._epsilon = float(epsilon)

  def __call__(self, inputs, prev_state):
    m, v, t = prev_state
    t_next = t + 1
    m_next = self._beta1 * m + (1.0 - self._beta1) * inputs
    v_next = self._beta2 * v + (1.0 - self._beta2) * tf.square(inputs)
    m_hat = m_next / (1.0 - tf.pow(self._beta1, t_next))
    v_hat = v_next / (1.0 - tf.pow(self._beta2, t_next))
    update = -self._learning_rate * m_hat / (tf.sqrt(v_hat) + self._epsilon)
    return update, (m_next, v_next, t_next)

  def initial_state_for_inputs(self, inputs, dtype=tf.float32, **kwargs):
    """`(m, v, t)`, zeros; `dtype` may come second, as in DeepMind's."""
    del kwargs  # Taken as the base class's.
    return (tf.zeros(tf.shape(inputs), dtype), tf.zeros(tf.shape(inputs), dtype),
            tf.zeros([], dtype))


_NETWORKS = {
    cls.__name__: cls
    for cls in (StandardDeepLSTM, CoordinateWiseDeepLSTM, KernelDeepLSTM,
                AdaptiveStepLSTM, Sgd, Adam)
}


# The id under which the default net is configured and saved (`cw.l2l`), as
# in DeepMind's util and LOIS's released models.
DEFAULT_NET_ID = "cw"


def default_config():
  """The optimizer of Andrychowicz et al.: a 2x20 coordinate-wise LSTM.

  Returns:
    A new `factory` config dict (LogAndSign preprocessing, k=5, scale 0.01).
  """
  return {
      "net": "CoordinateWiseDeepLSTM",
      "net_options": {
          "layers": (20, 20),
          "preprocess_name": "LogAndSign",
          "preprocess_options": {"k": 5},
          "scale": 0.01,
      },
  }


def library_config():
  """This library's configuration of the default optimizer.

  `default_config()` with the LSTM's gate biases starting at zero instead of
  Sonnet 1's random ones (DeepMind's nets start them random). It
  meta-trains faster: on quadratic-las, 300 epochs reach a log mean final
  error of -1.14 against -0.93 with random biases (tuned Adam: -1.02; the
  README's first command, seed 1). The problems
  this library names (quadratic-las, digits, square_cos_<d>, the test
  functions, problems of one's own) use it; DeepMind's names keep
  `default_config()`.

  Returns:
    A new `factory` config dict.
  """
  config = default_config()
  config["net_options"]["initializer"] = {"b_gates": "zeros"}
  return config


def _options_dict(net_options):
  """`net_options` (a mapping or (name, value) pairs) as a dict."""
  if isinstance(net_options, collections.abc.Mapping):
    return dict(net_options)
  try:
    options = dict(net_options)
  except (TypeError, ValueError):
    options = None
  if options is None or not all(isinstance(k, str) for k in options):
    raise ValueError("net_options must be a dict of constructor keyword "
                     "arguments (or (name, value) pairs), got {!r}.".format(
                         net_options))
  return options


def _check_float_parameters(values, net_path):
  """Refuses a checkpoint whose parameters are not finite floating point
  numbers (a NaN weight would turn every variable it steps into NaN)."""
  for module, variables in sorted(values.items()):
    for name, value in sorted(variables.items()):
      if value.dtype.kind != "f":
        raise l2l_file.CheckpointError(
            "{}: parameter {}/{} is {}, expected floating point.".format(
                net_path, module, name, value.dtype))
      if not np.all(np.isfinite(value)):
        raise l2l_file.CheckpointError(
            "{}: parameter {}/{} holds {} NaN or infinite value(s) of {}, "
            "expected finite weights (the file is damaged, or was saved "
            "from a diverged run).".format(
                net_path, module, name, int(np.sum(~np.isfinite(value))),
                value.size))


def read_weights(net, net_options=(), net_path=None):
  """A `factory` config with `net_path`'s values read into its options.

  The values become the `initializer` option (remembering their file, for
  messages), so the config no longer depends on the file: a drop-in
  optimizer reads its files once, when it is made.

  Args:
    net: the net's class name, as `factory` takes it.
    net_options: its options (dict or pairs).
    net_path: optional `.l2l` file whose values initialise the net.

  Returns:
    `{"net": net, "net_options": options}`.

  Raises:
    ValueError: if the name is unknown, or the file is unreadable or holds
      parameters the net does not have.
  """
  if net not in _NETWORKS:
    raise ValueError("Unknown net {!r}; expected one of {}.".format(
        net, ", ".join(sorted(_NETWORKS))))
  options = _options_dict(net_options)
  if net_path is not None:
    values = l2l_file.load(net_path)
    if _NETWORKS[net].has_parameters:
      _check_float_parameters(values, net_path)
      options["initializer"] = LoadedCheckpoint(values, net_path)
    elif values:
      raise ValueError("{} holds parameters {}, but {} has none: it was "
                       "saved from another net.".format(
                           net_path, sorted(values), net))
  return {"net": net, "net_options": options}


def factory(net, net_options=(), net_path=None):
  """Builds a net by class name.

  Args:
    net: one of "StandardDeepLSTM", "CoordinateWiseDeepLSTM", "KernelDeepLSTM",
      "AdaptiveStepLSTM", "Sgd", "Adam".
    net_options: keyword arguments of the net's constructor (dict or pairs).
    net_path: optional `.l2l` file whose values initialise the net.

  Returns:
    The net, a `Network`.

  Raises:
    ValueError: if the name is unknown, the options do not fit the net, or the
      checkpoint does not fit it.
  """
  options = read_weights(net, net_options, net_path)["net_options"]
  try:
    return _NETWORKS[net](**options)
  except TypeError as error:
    raise ValueError("net_options {} do not fit {}: {}".format(
        sorted(options), net, error)) from error


def save(network, sess, filename=None):
  """Reads a net's parameters and optionally writes them as a `.l2l` file.

  Args:
    network: a `Network`.
    sess: the session holding the values.
    filename: where to write, atomically; None to only return the values.

  Returns:
    `{module: {variable: ndarray}}`.
  """
  values = sess.run(network.checkpoint_variables())
  if filename is not None:
    l2l_file.save(values, filename)
  return values
