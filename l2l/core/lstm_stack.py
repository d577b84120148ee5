"""A stack of LSTM cells and its output layer, fused, over many coordinates.

The learned optimizers apply one small LSTM stack (DeepMind's 2x20) to every
coordinate of every variable. Laid out the usual way, one row per coordinate
([coordinates, hidden]), each cell concatenates its inputs column-wise and
splits its gates column-wise: strided copies that cost about as much as
the matmul. Laid out feature-major, [hidden, coordinates], concatenating
the cell's input and hidden state and splitting the gates are whole-row
copies or slices, and each layer is one matmul with the weights transposed
in the matmul itself. An unroll carries a feature-major state over all the
coordinates a net drives; a single step on the nets' per-variable states
runs coordinate-major rather than transposing them (`step`'s `layout`).

The gradient is written by hand (`tf.custom_gradient`), with one kernel per
activation gradient (SigmoidGrad, TanhGrad). With `recompute`, the backward
pass keeps only the step's inputs (the input rows and each layer's previous
hidden and cell state) and recomputes the gates from them: an unroll then
stores (width + 2 * sum(layers)) floats per coordinate and step for the
stack instead of every gate activation, which is what bounds how many
coordinates fit in memory during meta-training (docs/design.md §4, "The
fused LSTM stack").

Where it can be built, the native kernels (`native.py`,
`lstm_stack_kernel.cc`) run the forward pass as one op and its gradient as
another, which recomputes the gates block by block in cache, so keeps
nothing but the step's inputs (`step`'s `use_kernel`). The gradient written
here as ops is the reference they are tested against, and what runs
without them.

The formula is Sonnet 1's LSTM, so `.l2l` files keep their meaning: with
`gates = w_gates^T [x; h] + b_gates` split as (i, j, f, o),
`c' = sigmoid(f + 1) * c + sigmoid(i) * tanh(j)`, `h' = sigmoid(o) * tanh(c')`,
and the output `w^T h_top + b`.
"""

import tensorflow as tf

from l2l.core import native

# Sonnet 1's forget bias, added to the forget gate at run time.
FORGET_BIAS = 1.0


class _Layout:
  """Where the features are: axis 0 (feature-major) or 1 (coordinate-major).

  Weights keep the Sonnet 1 layout [inputs, outputs] in both.
  """

  def __init__(self, feature_axis):
    self.axis = feature_axis

  def matmul(self, weights, rows):
    """`rows @ weights` over the features."""
    if self.axis == 0:
      return tf.matmul(weights, rows, transpose_a=True)
    return tf.matmul(rows, weights)

  def linear(self, weights, bias, rows):
    """`rows @ weights + bias` over the features."""
    if self.axis == 0:
      return self.matmul(weights, rows) + tf.reshape(bias, [-1, 1])
    return self.matmul(weights, rows) + bias

  def ones(self, rows):
    """One feature of ones for each coordinate of `rows`."""
    if self.axis == 0:
      return tf.ones([1, tf.shape(rows)[1]], rows.dtype)
    return tf.ones([tf.shape(rows)[0], 1], rows.dtype)

  def weight_gradient(self, rows, d_outputs):
    """The gradient of `matmul`'s weights."""
    if self.axis == 0:
      return tf.matmul(rows, d_outputs, transpose_b=True)
    return tf.matmul(rows, d_outputs, transpose_a=True)

  def input_gradient(self, weights, d_outputs):
    if self.axis == 0:
      return tf.matmul(weights, d_outputs)
    return tf.matmul(d_outputs, weights, transpose_b=True)

  def weight_gradients(self, rows, d_outputs):
    """The gradients of `linear`'s weights and bias."""
    return (self.weight_gradient(rows, d_outputs),
            tf.reduce_sum(d_outputs, 1 - self.axis))

  def features(self, tensor, start, stop=None):
    """Features `start:stop` of `tensor`."""
    if self.axis == 0:
      return tensor[start:stop]
    return tensor[:, start:stop]


# [features, coordinates]: an unroll's joint state over many variables.
FEATURE_MAJOR = _Layout(0)
# [coordinates, features]: the nets' per-variable states.
COORDINATE_MAJOR = _Layout(1)


def _with_bias(w_gates, b_gates):
  """`w_gates` with a last row of biases, the forget bias included.

  Stacking a feature of ones under a cell's inputs then adds the biases in
  the matmul: no pass over the gates for them, and their gradient is the
  last row of the weights' gradient.
  """
  size = int(b_gates.shape[0]) // 4
  forget = tf.constant([0.0] * (2 * size) + [FORGET_BIAS] * size +
                       [0.0] * size, b_gates.dtype)
  return tf.concat([w_gates, tf.reshape(b_gates + forget, [1, -1])], 0)


def _cell_forward(layout, inputs, hidden, cell, weights):
  """One cell; `weights` as `_with_bias` gives them.

  Returns:
    `(next_hidden, next_cell, stacked, activations, next_cell_tanh)`: the
    new state, then what the backward pass needs: the stacked input
    [x; h; 1] and the gate activations (sigmoid(i), tanh(j), sigmoid(f + 1),
    sigmoid(o)).
  """
  stacked = tf.concat([inputs, hidden, layout.ones(inputs)], layout.axis)
  gates = layout.matmul(weights, stacked)
  input_gate, candidate, forget_gate, output_gate = tf.split(
      gates, 4, axis=layout.axis)
  activations = (tf.sigmoid(input_gate), tf.tanh(candidate),
                 tf.sigmoid(forget_gate), tf.sigmoid(output_gate))
  next_cell = activations[2] * cell + activations[0] * activations[1]
  next_cell_tanh = tf.tanh(next_cell)
  next_hidden = activations[3] * next_cell_tanh
  return next_hidden, next_cell, stacked, activations, next_cell_tanh


def _cell_backward(layout, d_hidden, d_cell, cell, w_gates, stacked,
                   activations, next_cell_tanh):
  """The gradient of one cell from its output gradients.

  Returns:
    `(d_stacked, d_prev_cell, d_w_gates, d_b_gates)`.
  """
  input_act, candidate_act, forget_act, output_act = activations
  # SigmoidGrad(y, dy) = dy * y * (1 - y) and TanhGrad(y, dy) = dy * (1 - y^2)
  # from the outputs y, each one kernel (and differentiable).
  d_next_cell = d_cell + tf.raw_ops.TanhGrad(y=next_cell_tanh,
                                             dy=d_hidden * output_act)
  d_gates = tf.concat([
      tf.raw_ops.SigmoidGrad(y=input_act, dy=d_next_cell * candidate_act),
      tf.raw_ops.TanhGrad(y=candidate_act, dy=d_next_cell * input_act),
      tf.raw_ops.SigmoidGrad(y=forget_act, dy=d_next_cell * cell),
      tf.raw_ops.SigmoidGrad(y=output_act, dy=d_hidden * next_cell_tanh),
  ], layout.axis)
  d_weights = layout.weight_gradient(stacked, d_gates)
  return (layout.input_gradient(w_gates, d_gates), d_next_cell * forget_act,
          d_weights[:-1], d_weights[-1])


def _stack_forward(layout, inputs, state, cells, output_layer):
  """The stack and its output layer.

  Returns:
    `(output, next_state, (internals, top))`: what the backward pass needs,
    each cell's `_cell_forward` internals and the output layer's input.
  """
  rows, next_state, internals = inputs, [], []
  for (hidden, cell), (w_gates, b_gates) in zip(state, cells):
    next_hidden, next_cell, *rest = _cell_forward(
        layout, rows, hidden, cell, _with_bias(w_gates, b_gates))
    next_state.append((next_hidden, next_cell))
    internals.append(rest)
    rows = next_hidden
  output = layout.linear(*output_layer, rows)
  return output, tuple(next_state), (internals, rows)


def _zeros_if_none(gradients, like):
  return [tf.zeros_like(t) if g is None else g
          for g, t in zip(gradients, like)]


def step(inputs, state, cells, output_layer, layout=FEATURE_MAJOR,
         recompute=False, use_kernel=False):
  """One step of the stack and its output layer.

  Args:
    inputs: the preprocessed gradients, [width, coordinates] (feature-major)
      or [coordinates, width].
    state: one `(hidden, cell)` pair per layer, each [size, coordinates]
      (feature-major) or [coordinates, size].
    cells: one `(w_gates [in + size, 4 * size], b_gates [4 * size])` pair
      per layer, in the Sonnet 1 layout.
    output_layer: `(w [top size, out], b [out])`.
    layout: `FEATURE_MAJOR` or `COORDINATE_MAJOR`.
    recompute: where the step runs as ops, whether their gradient
      recomputes the gates from the step's inputs (memory: only the inputs
      are kept) rather than keeping them from the forward pass (time: one
      forward pass less). The kernel's gradient always recomputes them.
    use_kernel: whether the step and its gradient each run as one op, the
      native kernels (`native.lstm_stack_kernel`), where they are
      available. Where they are not, or for inputs other than float32, the
      step and its gradient run as TensorFlow ops. The kernel's gradient is
      not itself differentiable (second derivatives of the step need
      `use_kernel=False`).

  Returns:
    `(output, next_state)`: the output [out, coordinates] (feature-major) or
    [coordinates, out], and the state laid out as `state`.
  """
  num_layers = len(cells)
  # The kernel is float32 only; other dtypes run as ops.
  kernel = (native.lstm_stack_kernel()
            if use_kernel and inputs.dtype == tf.float32 else None)
  flat_state = [t for pair in state for t in pair]
  flat_weights = [t for pair in cells for t in pair] + list(output_layer)

  def unflatten(flat_state, flat_weights):
    layer_state = tuple(zip(flat_state[0::2], flat_state[1::2]))
    layer_weights = tuple(zip(flat_weights[0:2 * num_layers:2],
                              flat_weights[1:2 * num_layers:2]))
    return layer_state, layer_weights, tuple(flat_weights[2 * num_layers:])

  @tf.custom_gradient
  def fused(*args):
    rows, flat_state, flat_weights = (args[0], args[1:1 + 2 * num_layers],
                                      args[1 + 2 * num_layers:])
    layer_state, layer_weights, (w_out, b_out) = unflatten(flat_state,
                                                            flat_weights)
    if kernel is not None:
      return _kernel_step(kernel, layout, rows, flat_state, layer_weights,
                          (w_out, b_out))
    output, next_state, internals = _stack_forward(
        layout, rows, layer_state, layer_weights, (w_out, b_out))
    results = [output] + [t for pair in next_state for t in pair]

    def grad(*d_results):
      d_results = _zeros_if_none(d_results, results)
      if recompute:
        _, _, (cell_internals, top) = _stack_forward(
            layout, rows, layer_state, layer_weights, (w_out, b_out))
      else:
        cell_internals, top = internals
      d_output = d_results[0]
      d_w_out, d_b_out = layout.weight_gradients(top, d_output)
      d_above = layout.input_gradient(w_out, d_output)
      d_state, d_weights = [None] * (2 * num_layers), [None] * (2 * num_layers)
      for layer in reversed(range(num_layers)):
        (_, cell), (w_gates, _) = layer_state[layer], layer_weights[layer]
        d_hidden = d_results[1 + 2 * layer] + d_above
        d_stacked, d_cell, d_w, d_b = _cell_backward(
            layout, d_hidden, d_results[2 + 2 * layer], cell, w_gates,
            *cell_internals[layer])
        width = int(w_gates.shape[0]) - int(w_gates.shape[1]) // 4
        d_above = layout.features(d_stacked, 0, width)
        d_state[2 * layer] = layout.features(d_stacked, width)
        d_state[2 * layer + 1] = d_cell
        d_weights[2 * layer], d_weights[2 * layer + 1] = d_w, d_b
      return [d_above] + d_state + d_weights + [d_w_out, d_b_out]

    return results, grad

  results = fused(inputs, *flat_state, *flat_weights)
  next_state = tuple(zip(results[1::2], results[2::2]))
  return results[0], next_state


def _kernel_step(kernel, layout, rows, flat_state, layer_weights,
                 output_layer):
  """`step`'s forward pass and gradient as the native kernels.

  Returns:
    `(results, grad)` for `tf.custom_gradient`: the output and the flat
    next state, and their gradient function.
  """
  biased_weights = [_with_bias(*w) for w in layer_weights]
  feature_major = layout is FEATURE_MAJOR
  output, next_flat_state = kernel.l2l_lstm_stack(
      rows, list(flat_state), biased_weights, *output_layer,
      feature_major=feature_major)
  results = [output] + list(next_flat_state)

  def grad(*d_results):
    d_results = _zeros_if_none(d_results, results)
    gradients = kernel.l2l_lstm_stack_grad(
        rows, list(flat_state), biased_weights, output_layer[0],
        d_results[0], d_results[1:], feature_major=feature_major)
    d_weights = [t for pair in zip(gradients.d_weights, gradients.d_biases)
                 for t in pair]
    return ([gradients.d_rows] + list(gradients.d_state) + d_weights +
            [gradients.d_output_weights, gradients.d_output_bias])

  return results, grad
