"""Optimizee problems.

A problem is a factory returning `build()`. `build()` creates its variables with
`tf.compat.v1.get_variable` or Sonnet 2 modules and returns the loss: a scalar,
or one value per batch row. Trainable variables are what the optimizer moves;
non-trainable variables are the problem instance (data, targets, weights) and
are re-sampled by `reset`.

A `build` may also have a `next_task(sess)` method, as the task family's
(`l2l.tasks.family`) has: the training and evaluation loops call it through
`draw_next_task` before every epoch's reset, to pose that epoch's task. It
may also have `epoch_unrolls(num_unrolls)`, which meta-training asks, through
`epoch_unrolls`, how many unrolls the drawn task's epoch runs (the family's
heavy-tailed unroll lengths).
"""

import math

import numpy as np
import sonnet as snt
import tensorflow as tf

from l2l import checks
from l2l.data import datasets
from l2l.core import graph_mode  # pylint: disable=unused-import
from l2l.tasks import test_functions


def simple():
  """f(x) = x^2 for a scalar x initialised at 1."""

  def build():
    x = tf.compat.v1.get_variable("x", shape=[], dtype=tf.float32,
                                  initializer=tf.compat.v1.ones_initializer())
    return tf.square(x, name="x_squared")

  return build


def simple_multi_optimizer(num_dims=2):
  """f(x) = sum_i x_i^2 over scalar variables `x_0`, `x_1`, ... set to 1."""

  def build():
    variables = [
        tf.compat.v1.get_variable("x_{}".format(i), shape=[], dtype=tf.float32,
                                  initializer=tf.compat.v1.ones_initializer())
        for i in range(num_dims)
    ]
    return tf.add_n([tf.square(x) for x in variables], name="sum_of_squares")

  return build


def _batched_residual(w, x, y):
  """Returns `W x - y` for every batch row: w [b, d, d], x and y [b, d]."""
  return tf.squeeze(tf.matmul(w, tf.expand_dims(x, -1)), -1) - y


def quadratic(batch_size=128, num_dims=10, stddev=0.01, dtype=tf.float32):
  """f(x) = ||W x - y||^2 per batch row, averaged over the batch.

  Args:
    batch_size: independent instances optimised together.
    num_dims: dimension of each instance.
    stddev: standard deviation of the initial x.
    dtype: variable type.

  Returns:
    The problem's `build` function.
  """

  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(stddev=stddev))
    w = tf.compat.v1.get_variable(
        "w", shape=[batch_size, num_dims, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_uniform_initializer(), trainable=False)
    y = tf.compat.v1.get_variable(
        "y", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_uniform_initializer(), trainable=False)
    residual = _batched_residual(w, x, y)
    return tf.reduce_mean(tf.reduce_sum(tf.square(residual), 1))

  return build


def square_cos(batch_size=128, num_dims=2, stddev=0.01, mode="train",
               init_stddev=None, dtype=tf.float32):
  """Rastrigin's function (test) or LOIS's random family around it (train).

  `mode="test"`: f(x) = sum_i (x_i^2 - 10 cos(2 pi x_i)) + 10 d per batch row,
  minimum 0 at the origin. `mode="train"`:
  f(x) = ||W x - y||^2 - sum_i wcos_i 10 cos(2 pi x_i) + 10 d with
  W = I + N(0, stddev/d), y ~ N(0, stddev/d), wcos ~ N(1, stddev/d).

  Args:
    batch_size: independent instances (rows) optimised together.
    num_dims: d.
    stddev: spread of the random family in train mode.
    mode: "train" or "test".
    init_stddev: standard deviation of a normal initial x; None starts x
      uniform in [-3, 3], as LOIS's problem did (LOIS's swarm drew its
      particles' starts itself: `util.get_config`'s `square_cos_<d>` start
      N(0, 0.2) in 2-d, N(0, 1.3) above, as it did).
    dtype: variable type.

  Returns:
    The problem's `build` function; its loss has one value per batch row.

  Raises:
    ValueError: for an unknown mode, or a `batch_size` or `num_dims` that
      is not an integer of at least 1.
  """
  if mode not in ("train", "test"):
    raise ValueError("square_cos mode must be 'train' or 'test', got {!r}."
                     .format(mode))
  checks.check_integer("square_cos batch_size", batch_size)
  checks.check_integer("square_cos num_dims", num_dims)
  if init_stddev is None:
    start = tf.compat.v1.random_uniform_initializer(-3.0, 3.0)
  else:
    start = tf.compat.v1.random_normal_initializer(stddev=init_stddev)
  spread = stddev / num_dims

  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=[batch_size, num_dims], dtype=dtype, initializer=start)
    cosine = tf.cos(2.0 * math.pi * x)
    if mode == "test":
      return tf.reduce_sum(tf.square(x) - 10.0 * cosine, 1) + 10.0 * num_dims
    w = tf.compat.v1.get_variable(
        "w", shape=[batch_size, num_dims, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(stddev=spread),
        trainable=False)
    y = tf.compat.v1.get_variable(
        "y", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(stddev=spread),
        trainable=False)
    wcos = tf.compat.v1.get_variable(
        "wcos", shape=[batch_size, num_dims], dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(mean=1.0,
                                                           stddev=spread),
        trainable=False)
    identity = tf.eye(num_dims, batch_shape=[batch_size], dtype=dtype)
    residual = _batched_residual(identity + w, x, y)
    return (tf.reduce_sum(tf.square(residual), 1) -
            tf.reduce_sum(wcos * 10.0 * cosine, 1) + 10.0 * num_dims)

  return build


def test_function(name, mode="test", batch_size=128, num_dims=10,
                  init_stddev=1.3, shift=0.0, random_shift=0.0, rotate=False,
                  scale_range=1.0, dtype=tf.float32):
  """A classic test function of global optimization, one instance per row.

  One [batch_size, num_dims] trainable variable `x`, drawn N(0,
  `init_stddev`), and one loss per row: `test_functions.objective`, the
  function (a key of `l2l.tasks.test_functions.FUNCTIONS`) with its
  minimum, 0, moved to each row's optimum: the function's usual minimizer
  plus the row's `offset`, `shift` plus a per-coordinate draw from
  U(-random_shift, random_shift). The instance (the offset, and the
  rotation and scales below) is drawn anew by every reset, like
  `square_cos`'s. Names joined with "+" ("rastrigin+ellipsoid") make a
  mixture: each row draws one of the functions, uniformly, with its
  instance.

  Args:
    name: the function, or functions joined with "+".
    mode: "train" or "test"; both give the same distribution of instances.
    batch_size: independent instances (rows) optimised together.
    num_dims: d.
    init_stddev: standard deviation of the starting points.
    shift: a fixed offset of the optimum, on every coordinate.
    random_shift: half-width of each row's uniform random offset (0: none).
    rotate: when True, each row's function is rotated about its optimum by
      a random rotation (Haar-distributed).
    scale_range: when above 1, each row's coordinates are scaled about the
      optimum by factors log-uniform in [1 / scale_range, scale_range].
    dtype: variable type.

  Returns:
    The problem's `build` function; its loss has one value per batch row.

  Raises:
    ValueError: for an unknown function or mode, sizes that are not
      integers of at least 1 (2 for rosenbrock), a spread, shift or scale
      range that is not a finite number (a negative spread or shift range,
      a scale range below 1), a `rotate` other than True or False, or a
      dtype that is not floating-point.
  """
  names = str(name).split("+")
  if mode not in ("train", "test"):
    raise ValueError("test_function mode must be 'train' or 'test', got "
                     "{!r}.".format(mode))
  checks.check_integer("{} batch_size".format(name), batch_size)
  checks.check_integer("{} num_dims".format(name), num_dims)
  for each in names:
    test_functions.check_name(each, num_dims)
  checks.check_number("{} init_stddev".format(name), init_stddev, 0)
  checks.check_number("{} shift".format(name), shift)
  checks.check_number("{} random_shift".format(name), random_shift, 0)
  checks.check_bool("{} rotate".format(name), rotate)
  checks.check_number("{} scale_range".format(name), scale_range, 1)
  dtype = _floating_dtype(name, dtype)
  shape = [batch_size, num_dims]

  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=shape, dtype=dtype,
        initializer=tf.compat.v1.random_normal_initializer(
            stddev=init_stddev))
    if random_shift:
      initializer = tf.compat.v1.random_uniform_initializer(
          shift - random_shift, shift + random_shift)
    else:
      initializer = tf.compat.v1.constant_initializer(shift)
    offset = tf.compat.v1.get_variable(
        "offset", shape=shape, dtype=dtype, initializer=initializer,
        trainable=False)
    rotation = scales = None
    if rotate:
      rotation = tf.compat.v1.get_variable(
          "rotation", shape=shape + [num_dims], dtype=dtype,
          initializer=_random_rotations, trainable=False)
    if scale_range > 1:
      log_range = math.log(scale_range)
      scales = tf.exp(tf.compat.v1.get_variable(
          "log_scales", shape=shape, dtype=dtype,
          initializer=tf.compat.v1.random_uniform_initializer(
              -log_range, log_range), trainable=False))
    losses = [test_functions.objective(
        test_functions.TENSORFLOW, each, x,
        offset + test_functions.MINIMA[each], rotation, scales)
              for each in names]
    if len(names) == 1:
      return losses[0]
    choice = tf.compat.v1.get_variable(
        "function", shape=[batch_size, len(names)], dtype=dtype,
        initializer=_random_one_hot, trainable=False)
    # Selected, not multiplied: 0 * inf is NaN, and a row whose own
    # function is finite must not read NaN where another one overflows.
    stacked = tf.stack(losses, axis=1)
    return tf.reduce_sum(tf.where(choice > 0, stacked,
                                  tf.zeros_like(stacked)), axis=1)

  return build


def _floating_dtype(name, dtype):
  """`dtype` as a floating-point `tf.DType` ("float64" is read as one).

  Raises:
    ValueError: for anything that is not a floating-point type.
  """
  try:
    as_dtype = tf.as_dtype(dtype)
  except TypeError:
    as_dtype = None
  if as_dtype is None or not as_dtype.is_floating:
    raise ValueError("{} dtype must be a floating-point type such as "
                     "float32, got {!r}.".format(name, dtype))
  return as_dtype


def _random_one_hot(shape, dtype=tf.float32, partition_info=None):
  """[rows, n] rows of one-hot choices, uniform (a variable initializer)."""
  del partition_info  # Unused.
  return tf.one_hot(tf.random.uniform(shape[:1], 0, shape[1], tf.int32),
                    shape[1], dtype=dtype)


def _random_rotations(shape, dtype=tf.float32, partition_info=None):
  """[..., d, d] Haar-random orthogonal matrices (a variable initializer)."""
  del partition_info  # Unused.
  q, r = tf.linalg.qr(tf.random.normal(shape, dtype=dtype))
  # The signs of R's diagonal make Q uniformly distributed.
  return q * tf.expand_dims(tf.sign(tf.linalg.diag_part(r)), -2)


def ensemble(problems, weights=None):
  """A weighted sum of several problems, each in its own variable scope.

  Args:
    problems: list of dicts `{"name": <function in this module>,
      "options": {...}}`.
    weights: one weight per problem; defaults to 1 each.

  Returns:
    The problem's `build` function.

  Raises:
    ValueError: for an unknown problem name or mismatched weights.
  """
  if weights is None:
    weights = [1.0] * len(problems)
  if len(weights) != len(problems):
    raise ValueError("ensemble got {} problems but {} weights.".format(
        len(problems), len(weights)))
  builders = []
  for spec in problems:
    factory = globals().get(spec.get("name"))
    if not callable(factory) or spec.get("name", "").startswith("_"):
      raise ValueError("ensemble: unknown problem {!r}.".format(
          spec.get("name")))
    builders.append(factory(**spec.get("options", {})))

  def build():
    losses = []
    for i, (builder, weight) in enumerate(zip(builders, weights)):
      with tf.compat.v1.variable_scope("problem_{}".format(i)):
        losses.append(weight * tf.reduce_mean(builder()))
    return tf.add_n(losses)

  return build


_ACTIVATIONS = {
    "sigmoid": tf.sigmoid,
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
    "linear": tf.identity,
}


def _weight_init(initializer="original"):
  """Initialisers `(w_init, b_init)` of a problem's layers.

  Args:
    initializer: "original", the L2L code's small normal weights and biases
      (N(0, 0.01) both); or "fan_in", Sonnet's default (truncated normal
      weights scaled by 1/sqrt(fan-in), zero biases).

  Returns:
    The pair; None stands for Sonnet's default.

  Raises:
    ValueError: for another name.
  """
  if initializer == "original":
    return (tf.compat.v1.random_normal_initializer(stddev=0.01),
            tf.compat.v1.random_normal_initializer(stddev=0.01))
  if initializer == "fan_in":
    return None, None
  raise ValueError("initializer must be 'original' or 'fan_in', got {!r}."
                   .format(initializer))


def _activation(name):
  if name not in _ACTIVATIONS:
    raise ValueError("Unknown activation {!r}; expected one of {}.".format(
        name, ", ".join(sorted(_ACTIVATIONS))))
  return _ACTIVATIONS[name]


def _dataset_variable(name, array):
  """Holds a dataset as a non-trainable variable: part of the instance.

  Non-trainable variables are created once and handed back on every later
  call of `build()`, so the data lives in the graph once, however many steps
  are unrolled.
  """
  return tf.compat.v1.get_variable(
      name, shape=array.shape, dtype=tf.as_dtype(array.dtype),
      initializer=tf.compat.v1.constant_initializer(array), trainable=False)


def _random_batch(images, labels, batch_size, scale):
  """Inside `build()`: the data as instance variables and a random minibatch.

  The batch is drawn inside the graph, so every step sees a new one.

  Args:
    images: array [N, ...] of stored images.
    labels: int array [N].
    batch_size: examples per batch.
    scale: factor turning stored images into [0, 1] floats.

  Returns:
    `(float32 images [batch_size, ...], labels [batch_size])`.
  """
  all_images = _dataset_variable("images", images)
  all_labels = _dataset_variable("labels", labels)
  indices = tf.random.uniform([batch_size], 0, int(images.shape[0]),
                              dtype=tf.int32)
  batch_images = tf.cast(tf.gather(all_images, indices), tf.float32) * scale
  return batch_images, tf.gather(all_labels, indices)


def _xent_loss(logits, labels):
  return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=labels, logits=logits))


def _mlp(layers, activation, initializer="original", name="mlp"):
  w_init, b_init = _weight_init(initializer)
  return snt.nets.MLP(list(layers) + [datasets.NUM_CLASSES],
                      activation=activation, w_init=w_init, b_init=b_init,
                      name=name)


def _classifier(images, labels, layers, activation, batch_size, scale,
                initializer):
  """An MLP classifier problem over in-memory arrays.

  Args:
    images: uint8 or float array [N, ...].
    labels: int array [N].
    layers: hidden layer sizes.
    activation: activation name.
    batch_size: examples per step.
    scale: factor turning the stored images into [0, 1] floats.
    initializer: "original" or "fan_in" (see `_weight_init`).

  Returns:
    The problem's `build` function.
  """
  activation_op = _activation(activation)

  def build():
    inputs, batch_labels = _random_batch(images, labels, batch_size, scale)
    inputs = tf.reshape(inputs, [batch_size, -1])
    logits = _mlp(layers, activation_op, initializer)(inputs)
    return _xent_loss(logits, batch_labels)

  return build


def _as_uint8(images):
  """Stores [0, 1] images as bytes: a quarter of the memory in the graph."""
  return np.round(images * 255.0).astype(np.uint8)


def mnist(layers, activation="sigmoid", batch_size=128, mode="train",
          data_dir=None):
  """An MLP classifying MNIST digits, softmax cross-entropy.

  Args:
    layers: hidden layer sizes, e.g. (20,).
    activation: "sigmoid", "relu", "tanh" or "linear".
    batch_size: examples per step, drawn at random every step.
    mode: "train" (training split) or "test" (test split).
    data_dir: directory of the MNIST files; defaults to $L2L_DATA_DIR.

  Returns:
    The problem's `build` function.

  Raises:
    datasets.DataError: if the files are missing or malformed.
  """
  images, labels = datasets.load_mnist(data_dir, mode)
  return _classifier(_as_uint8(images), labels, layers, activation,
                     batch_size, 1.0 / 255.0, "original")


def digits(layers=(20,), activation="sigmoid", batch_size=128, mode="train",
           initializer="fan_in"):
  """An MLP classifying scikit-learn's bundled 8x8 digits (no download).

  Args:
    layers: hidden layer sizes.
    activation: "sigmoid", "relu", "tanh" or "linear".
    batch_size: examples per step, drawn at random every step.
    mode: "train" or "test" (a fixed, seeded split).
    initializer: "fan_in" (Sonnet's default) or "original" (the MNIST
      problem's). On 64 pixels the original's tiny weights start the MLP on
      a plateau where the gradients nearly cancel across classes: Adam
      escapes it, but a learned optimizer gets no signal to meta-train on
      (measured: no progress in 2000 epochs, against a final loss of 0.06
      after 200 epochs with "fan_in").

  Returns:
    The problem's `build` function.
  """
  images, labels = datasets.load_digits(mode)
  return _classifier(images, labels, layers, activation, batch_size, 1.0,
                     initializer)


class _BatchNormalization(snt.Module):
  """Normalises with the batch's own statistics and learns an offset `beta`.

  As the original's (Sonnet 1) batch norm in training mode: no scale,
  epsilon 1e-3, and no moving averages to carry through an unroll.
  """

  def __init__(self, epsilon=1e-3, name="batch_norm"):
    super().__init__(name=name)
    self._epsilon = epsilon

  @snt.once
  def _create_variables(self, inputs):
    self.beta = tf.Variable(tf.zeros([inputs.shape[-1]], inputs.dtype),
                            name="beta")

  def __call__(self, inputs):
    self._create_variables(inputs)
    axes = list(range(inputs.shape.rank - 1))
    mean, variance = tf.nn.moments(inputs, axes=axes, keepdims=True)
    return (inputs - mean) * tf.math.rsqrt(variance + self._epsilon) + \
        self.beta


def _batch_norm_relu(inputs):
  """The original's MLP activation with batch norm: relu(BatchNorm(x)).

  Called inside the MLP, so the batch norm is named `mlp/batch_norm`.
  """
  return tf.nn.relu(_BatchNormalization()(inputs))


class _ConvNet(snt.Module):
  """Blocks of 5x5 convolution, optional batch norm, relu and 2x2 max-pool.

  Named as the original's Sonnet 1 ConvNet2D (`conv_net_2d/conv_2d_<i>`,
  `conv_net_2d/batch_norm_<i>`), so DeepMind's net assignments apply.
  """

  def __init__(self, channels, batch_norm, initializer="original",
               name="conv_net_2d"):
    super().__init__(name=name)
    w_init, b_init = _weight_init(initializer)
    self._convs = [snt.Conv2D(c, 5, w_init=w_init, b_init=b_init,
                              name="conv_2d_{}".format(i))
                   for i, c in enumerate(channels)]
    self._norms = [_BatchNormalization(name="batch_norm_{}".format(i))
                   for i in range(len(channels))] if batch_norm else None

  def __call__(self, images):
    output = images
    for i, conv in enumerate(self._convs):
      output = conv(output)
      if self._norms is not None:
        output = self._norms[i](output)
      output = tf.nn.max_pool2d(tf.nn.relu(output), 2, 2, "SAME")
    return output


def cifar10(path=None, conv_channels=(16, 16, 16), linear_layers=(32,),
            batch_norm=True, batch_size=128, num_threads=4,
            min_queue_examples=1000, mode="train"):
  """A small convnet classifying CIFAR-10 (binary version), cross-entropy.

  As the original: relu convolution blocks (with batch norm), then an MLP
  whose hidden layers are relu(BatchNorm(x)) (relu without batch norm),
  every weight and bias drawn from N(0, 0.01).

  Args:
    path: directory of the CIFAR-10 binary files; defaults to $L2L_DATA_DIR.
    conv_channels: output channels of each convolution block.
    linear_layers: hidden sizes of the MLP after the convolutions.
    batch_norm: normalise each block and hidden layer with batch statistics.
    batch_size: examples per step, drawn at random every step.
    num_threads: DeepMind's queue runners' threads; accepted, in its place
      among the arguments, so that its calls still work, but the batches are
      drawn inside the graph, so it changes nothing.
    min_queue_examples: the same, for the queue's size.
    mode: "train" (data_batch_1..5) or "test" (test_batch).

  Returns:
    The problem's `build` function.

  Raises:
    datasets.DataError: if the files are missing or malformed.
  """
  del num_threads, min_queue_examples  # No queue runners (see Args).
  images, labels = datasets.load_cifar10(path, mode)
  images = _as_uint8(images)
  activation = _batch_norm_relu if batch_norm else tf.nn.relu

  def build():
    inputs, batch_labels = _random_batch(images, labels, batch_size,
                                         1.0 / 255.0)
    features = snt.Flatten()(_ConvNet(conv_channels, batch_norm)(inputs))
    logits = _mlp(linear_layers, activation)(features)
    return _xent_loss(logits, batch_labels)

  return build


def digits_convnet(conv_channels=(8, 16), batch_size=128, mode="train",
                   initializer="fan_in"):
  """A small convnet classifying scikit-learn's 8x8 digits, cross-entropy.

  Blocks of 5x5 convolution, relu and 2x2 max-pool (8x8 -> 4x4 -> 2x2), then
  a linear layer to the 10 classes. A held-out task of
  bench/generalization.py: the task family draws no convnet.

  Args:
    conv_channels: output channels of each convolution block.
    batch_size: examples per step, drawn at random every step.
    mode: "train" or "test" (the fixed, seeded split of `load_digits`).
    initializer: "fan_in" or "original" (see `_weight_init`).

  Returns:
    The problem's `build` function.
  """
  images, labels = datasets.load_digits(mode)
  images = images.reshape([-1, 8, 8, 1])

  def build():
    inputs, batch_labels = _random_batch(images, labels, batch_size, 1.0)
    features = snt.Flatten()(_ConvNet(conv_channels, False, initializer)(
        inputs))
    logits = _mlp((), tf.identity, initializer)(features)
    return _xent_loss(logits, batch_labels)

  return build


def logistic_regression(dataset="breast_cancer", batch_size=128,
                        mode="train"):
  """Multinomial logistic regression on a bundled scikit-learn table.

  Features are standardised with the train split's statistics; the weights
  start at 0. `logistic_regression("breast_cancer", mode="test")` is a
  held-out task of bench/generalization.py.

  Args:
    dataset: a name in `datasets.TABLES`.
    batch_size: examples per step, drawn at random every step.
    mode: "train" or "test" (a fixed, seeded split).

  Returns:
    The problem's `build` function.
  """
  features, labels = datasets.load_table(dataset, mode)
  # Counted on the train split, which every class is in.
  num_classes = int(datasets.load_table(dataset)[1].max()) + 1
  zeros = tf.compat.v1.zeros_initializer()

  def build():
    inputs, batch_labels = _random_batch(features, labels, batch_size, 1.0)
    logits = snt.Linear(num_classes, w_init=zeros, b_init=zeros,
                        name="logistic")(inputs)
    return _xent_loss(logits, batch_labels)

  return build


def draw_next_task(problem, sess):
  """Lets a problem that draws a task per epoch draw it (else nothing).

  Args:
    problem: a problem's `build`.
    sess: the session of its graph.
  """
  next_task = getattr(problem, "next_task", None)
  if next_task is not None:
    next_task(sess)


def epoch_unrolls(problem, num_unrolls):
  """The unrolls of a training epoch on the problem's current task.

  Args:
    problem: a problem's `build`.
    num_unrolls: the usual number, `num_steps / unroll_length`.

  Returns:
    The problem's `epoch_unrolls(num_unrolls)` if it has one, else
    `num_unrolls`.
  """
  unrolls = getattr(problem, "epoch_unrolls", None)
  return num_unrolls if unrolls is None else unrolls(num_unrolls)


# What returned the loss, as the messages name it: `meta_minimize`'s
# argument, which the commands call with a problem's `build`.
_LOSS_FUNCTION = "make_loss (the problem's build())"


def mean_loss(loss):
  """Reduces a per-row loss to the scalar the optimizer descends.

  Args:
    loss: what a problem's `make_loss` (its `build`) returned.

  Returns:
    A scalar tensor.

  Raises:
    ValueError: naming `make_loss` if it returned no tensor (e.g. None).
  """
  if loss is None:
    raise ValueError(_LOSS_FUNCTION + " returned None; it must return the loss, a "
                     "scalar tensor or one value per batch row.")
  try:
    loss = tf.convert_to_tensor(loss)
  except (TypeError, ValueError) as error:
    raise ValueError(_LOSS_FUNCTION + " returned {!r}, which is not a tensor: it "
                     "must return the loss, a scalar tensor or one value per "
                     "batch row.".format(loss)) from error
  if not loss.dtype.is_floating:
    raise ValueError(_LOSS_FUNCTION + " returned a loss of type {}; the loss must be "
                     "floating point.".format(loss.dtype.name))
  if loss.shape.rank is not None and loss.shape.rank > 1:
    # Each row is scored as a start set of its own: a matrix of losses has
    # no rows that could be.
    raise ValueError(_LOSS_FUNCTION + " returned a loss of shape {}; it must return "
                     "the loss, a scalar tensor or one value per batch row "
                     "(an independent instance).".format(
                         loss.shape.as_list()))
  return tf.reduce_mean(loss) if loss.shape.rank else loss
