"""A task family: a new optimizee every epoch, for optimizers that generalise.

Meta-training on one problem teaches an optimizer that problem. The family
draws, every epoch, one task from a configurable distribution
(`FamilyConfig`):

- an MLP of random depth (1..`max_depth` hidden layers), random width per
  layer (`min_width`..`max_width` units) and random activation, classifying
  one of scikit-learn's bundled tables (digits, wine, breast_cancer, iris)
  with features standardised on the train split;
- logistic regression on one of those tables;
- a quadratic `mean ||A x - y||^2` of random dimension (`min_dims`..
  `max_dims`) and random condition number (log10 uniform in
  [0, `max_log10_condition`]);

and, on top of every task, random parameter scaling (Lv et al., 2017): each
coordinate's parameter is `theta = theta_0 + c * delta`, the optimizer moving
`delta` from 0 and `c` drawn log-uniform in [1 / `scale_range`,
`scale_range`] per coordinate, so the gradients it sees (and the curvature)
are rescaled per coordinate. Every trick is an option and each switches off:
a kind's weight 0, `random_width`/`random_depth`/`random_activation` False
(the L2L paper's one layer of 20 sigmoid units), `scale_range` 1,
`standardize` False, `max_log10_condition` 0. One trick is off by default:
heavy-tailed unroll lengths (Wichrowska et al., 2017; `unroll_tail`), which
draw with each task how many unrolls its training epoch runs
(`TaskFamily.epoch_unrolls`).

The graph never grows with the number of tasks drawn: `TaskFamily` builds
every kind once at its largest shapes, and a task is a set of values fed into
non-trainable task variables (`TaskFamily.next_task`): masks switch off the
units, layers, features and classes a task does not have, the per-coordinate
scale is 0 on every coordinate it does not use (so those get no gradient and
move nothing), and a one-hot weight keeps only the drawn kind's loss. One
`meta_minimize` graph serves every task, and an epoch costs the same
whichever task it draws. The price: the learned optimizer runs over the
largest shapes every step (3,466 coordinates at the
defaults, against 1,510 for `digits`).

The draws come from `TaskSampler`, a numpy generator seeded with the graph's
seed, so the same seed gives the same tasks to every optimizer of an
evaluation. Task variables are in no collection: no initializer resets them,
so call `next_task` (the training and evaluation loops do, through
`problems.draw_next_task`) before reading the loss.

Names: `util.get_config("family")`, or `"family:key=value,..."` with
`FamilyConfig` fields, e.g. `family:scale_range=1,quadratic_weight=0`
(tuples are joined with `+`: `datasets=digits+wine`).
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from l2l import checks
from l2l.data import datasets

KINDS = ("mlp", "logistic", "quadratic")
ACTIVATIONS = {
    "sigmoid": tf.sigmoid,
    "relu": tf.nn.relu,
    "tanh": tf.tanh,
}
# The digits MLPs bench/generalization.py holds out: never drawn by default.
HELD_OUT_MLPS = (
    ("digits", (40,), "sigmoid"),
    ("digits", (20, 20), "sigmoid"),
    ("digits", (20,), "relu"),
)
# The largest scale_range: scales up to it, and their squares in the
# gradients, stay finite in float32.
MAX_SCALE_RANGE = 1e6
# The worst condition number, as a power of 10, float32 matrices hold.
MAX_LOG10_CONDITION = 6.0
# Added to the logits of the classes a task does not have.
_ABSENT_CLASS_LOGIT = -1e4


@dataclasses.dataclass(frozen=True)
class FamilyConfig:
  """The distribution the family draws from; every trick can be switched off.

  Attributes:
    mlp_weight: relative probability of an MLP task (0: none).
    logistic_weight: relative probability of logistic regression (0: none).
    quadratic_weight: relative probability of a quadratic (0: none).
    datasets: tables the classification tasks draw from (`datasets.TABLES`).
    random_width: draw each layer's width in [min_width, max_width]; off,
      every layer has `fixed_width` units.
    random_depth: draw 1..max_depth hidden layers; off, one.
    random_activation: draw the activation from `activations`; off, the
      first of them (sigmoid by default).
    min_width: smallest hidden layer drawn.
    max_width: largest hidden layer drawn (the graph's width).
    fixed_width: the width when `random_width` is off.
    max_depth: most hidden layers drawn (the graph's depth).
    activations: activations drawn, names in `ACTIVATIONS`.
    exclude: `(dataset, layers, activation)` MLPs never drawn; by default
      the held-out MLPs of bench/generalization.py.
    min_dims: smallest quadratic drawn.
    max_dims: largest quadratic drawn (the graph's size).
    quadratic_batch: independent quadratics per task, averaged.
    max_log10_condition: condition numbers are 10^U(0, this); 0 gives
      perfectly conditioned quadratics.
    scale_range: per-coordinate parameter scales are log-uniform in
      [1 / scale_range, scale_range]; 1 switches the trick off.
    standardize: scale the tables' features to zero mean and unit variance.
    batch_size: examples per step of the classification tasks.
    unroll_tail: heavy-tailed unroll lengths (Wichrowska et al., 2017): 0
      (off) runs every training epoch for the trainer's `num_steps`; a tail
      index > 1 multiplies each epoch's number of unrolls by a factor drawn
      from a Pareto distribution of that index with mean 1 (see
      `TaskSampler.unroll_factor`), so the meta-training budget stays the
      same on average while a few epochs run many times longer. Smaller
      indices give heavier tails.
    max_unroll_factor: the largest factor drawn (caps an epoch's length).
  """
  mlp_weight: float = 0.5
  logistic_weight: float = 0.25
  quadratic_weight: float = 0.25
  datasets: tuple = datasets.TABLES
  random_width: bool = True
  random_depth: bool = True
  random_activation: bool = True
  min_width: int = 4
  max_width: int = 32
  fixed_width: int = 20
  max_depth: int = 2
  activations: tuple = ("sigmoid", "relu", "tanh")
  exclude: tuple = HELD_OUT_MLPS
  min_dims: int = 2
  max_dims: int = 32
  quadratic_batch: int = 8
  max_log10_condition: float = 3.0
  scale_range: float = 10.0
  standardize: bool = True
  batch_size: int = 128
  unroll_tail: float = 0.0
  max_unroll_factor: float = 10.0

  def __post_init__(self):
    # Each field's type first: a NaN weight or spread passes every range
    # check below and would fail, or poison the draws, much later.
    checks.check_fields(self, "Family option ")
    weights = [self.mlp_weight, self.logistic_weight, self.quadratic_weight]
    if (min(weights) < 0 or sum(weights) <= 0 or
        not math.isfinite(sum(weights))):
      raise ValueError("The kind weights (mlp_weight, logistic_weight, "
                       "quadratic_weight) must be >= 0, not all 0, and sum "
                       "to a finite number, got {}.".format(weights))
    unknown = set(self.datasets) - set(datasets.TABLES)
    if not self.datasets or unknown:
      raise ValueError("datasets must be a non-empty subset of {}, got {}."
                       .format(", ".join(datasets.TABLES), self.datasets))
    unknown = set(self.activations) - set(ACTIVATIONS)
    if not self.activations or unknown:
      raise ValueError("activations must be a non-empty subset of {}, got {}."
                       .format(", ".join(ACTIVATIONS), self.activations))
    if not 1 <= self.min_width <= self.max_width:
      raise ValueError("Need 1 <= min_width <= max_width, got {} and {}."
                       .format(self.min_width, self.max_width))
    if not self.random_width and not 1 <= self.fixed_width <= self.max_width:
      raise ValueError("fixed_width must be in [1, max_width={}], got {}."
                       .format(self.max_width, self.fixed_width))
    if self.max_depth < 1:
      raise ValueError("max_depth must be at least 1, got {}.".format(
          self.max_depth))
    if not 1 <= self.min_dims <= self.max_dims:
      raise ValueError("Need 1 <= min_dims <= max_dims, got {} and {}."
                       .format(self.min_dims, self.max_dims))
    if not 1 <= self.scale_range <= MAX_SCALE_RANGE:
      raise ValueError("scale_range must be in [1, {:g}] (1: no scaling; "
                       "float32 parameters overflow past it), got {}."
                       .format(MAX_SCALE_RANGE, self.scale_range))
    if not 0 <= self.max_log10_condition <= MAX_LOG10_CONDITION:
      raise ValueError("max_log10_condition must be in [0, {:g}] (float32 "
                       "cannot hold a worse conditioned matrix), got {}."
                       .format(MAX_LOG10_CONDITION,
                               self.max_log10_condition))
    if self.quadratic_batch < 1 or self.batch_size < 1:
      raise ValueError("quadratic_batch and batch_size must be positive.")
    if self.unroll_tail != 0 and self.unroll_tail <= 1:
      raise ValueError("unroll_tail must be 0 (off) or a tail index > 1 (a "
                       "finite mean), got {}.".format(self.unroll_tail))
    if self.max_unroll_factor < 1:
      raise ValueError("max_unroll_factor must be >= 1, got {}.".format(
          self.max_unroll_factor))
    if self.mlp_weight > 0 and not self._drawable_mlps():
      # The draw would redraw forever.
      raise ValueError(
          "The MLP options leave only excluded (held-out) MLPs to draw: "
          "allow other widths, depths, activations or datasets, or set "
          "mlp_weight=0.")

  def _drawable_mlps(self):
    """Whether some MLP the options allow is not excluded."""
    widths = (range(self.min_width, self.max_width + 1) if self.random_width
              else (self.fixed_width,))
    depths = range(1, self.max_depth + 1) if self.random_depth else (1,)
    activations = (set(self.activations) if self.random_activation else
                   {self.activations[0]})
    allowed = len(set(self.datasets)) * len(activations) * sum(
        len(widths)**depth for depth in depths)
    excluded = {(dataset, tuple(layers), activation)
                for dataset, layers, activation in self.exclude
                if dataset in self.datasets and activation in activations
                and len(layers) in depths and all(w in widths for w in layers)}
    return allowed > len(excluded)

  def kind_probabilities(self):
    """The probability of each of `KINDS`."""
    weights = np.array([self.mlp_weight, self.logistic_weight,
                        self.quadratic_weight], np.float64)
    return weights / weights.sum()


def _parse_value(name, text, default):
  """Converts option text to the type of the field's default."""
  if isinstance(default, bool):
    if text.lower() in ("1", "true", "yes", "on"):
      return True
    if text.lower() in ("0", "false", "no", "off"):
      return False
    raise ValueError("Family option {} must be true or false, got {!r}."
                     .format(name, text))
  if isinstance(default, tuple):
    return tuple(part for part in text.split("+") if part)
  try:
    return type(default)(text)
  except ValueError:
    raise ValueError("Family option {} must be {}, got {!r}.".format(
        name, "an integer" if isinstance(default, int) else "a number",
        text)) from None


def parse_options(text):
  """Reads a `FamilyConfig` from `key=value,key=value` text.

  Args:
    text: e.g. "scale_range=1,quadratic_weight=0"; tuples are joined with
      "+" ("datasets=digits+wine"); `exclude` cannot be set here.

  Returns:
    The `FamilyConfig`.

  Raises:
    ValueError: for an unknown key, a bad value or a malformed pair.
  """
  defaults = FamilyConfig()
  fields = {f.name for f in dataclasses.fields(FamilyConfig)} - {"exclude"}
  options = {}
  for pair in filter(None, text.split(",")):
    key, separator, value = pair.partition("=")
    key = key.strip()
    if not separator or key not in fields:
      raise ValueError(
          "Bad family option {!r}: expected key=value with a key among {}."
          .format(pair, ", ".join(sorted(fields))))
    options[key] = _parse_value(key, value.strip(), getattr(defaults, key))
  return FamilyConfig(**options)


@dataclasses.dataclass(frozen=True)
class Task:
  """One draw of the family.

  Attributes:
    kind: one of `KINDS`.
    dataset: the table of a classification task, else None.
    layers: the hidden widths of an MLP (empty for logistic regression).
    activation: the MLP's activation name, else None.
    dims: the quadratic's dimension, else None.
    log10_condition: the quadratic's log10 condition number, else None.
    unroll_factor: how many times the usual number of unrolls a training
      epoch on this task runs (1 unless `unroll_tail` is on).
  """
  kind: str
  dataset: str = None
  layers: tuple = ()
  activation: str = None
  dims: int = None
  log10_condition: float = None
  unroll_factor: float = 1.0


class TaskSampler:
  """Draws tasks, and the values that pose them, from a seeded generator.

  The same config, split and seed give the same sequence of tasks and
  values.
  """

  def __init__(self, config, seed=0, split="train"):
    """Loads the tables the family uses.

    Args:
      config: a `FamilyConfig`.
      seed: seed of the numpy generator.
      split: "train" or "test": which split of the tables tasks use.
    """
    self.config = config
    self._rng = np.random.RandomState(seed)
    # A stream of its own: switching heavy-tailed unrolls on or off leaves
    # the problems drawn the same, so ablations compare like with like.
    self._unroll_rng = np.random.RandomState([seed, 1])
    self.tables = {name: datasets.load_table(name, split,
                                             standardize=config.standardize)
                   for name in config.datasets}
    self.num_features = max(x.shape[1] for x, _ in self.tables.values())
    self.num_examples = max(x.shape[0] for x, _ in self.tables.values())
    self.num_classes = max(int(y.max()) + 1 for _, y in self.tables.values())

  def draw_task(self):
    """The next `Task` (an excluded MLP is drawn again)."""
    task = self._draw_problem()
    if self.config.unroll_tail:
      task = dataclasses.replace(task, unroll_factor=self.unroll_factor())
    return task

  def unroll_factor(self):
    """A heavy-tailed factor on an epoch's unrolls, of mean 1 before the cap.

    A Pareto variable of tail index `a = unroll_tail` and minimum
    `(a - 1) / a` has mean 1; its probability of exceeding `k` is
    `((a - 1) / (a k))^a`. At `a = 2`: at least 0.5, median 0.71, above 4
    once in 64 epochs. Capped at `max_unroll_factor`.

    Returns:
      The factor, a float.
    """
    tail = self.config.unroll_tail
    factor = (tail - 1.0) / tail * (1.0 + self._unroll_rng.pareto(tail))
    return float(min(factor, self.config.max_unroll_factor))

  def _draw_problem(self):
    """The next task's problem, without its unroll factor."""
    config = self.config
    kind = KINDS[self._rng.choice(len(KINDS), p=config.kind_probabilities())]
    if kind == "quadratic":
      return Task(kind, dims=int(self._rng.randint(config.min_dims,
                                                   config.max_dims + 1)),
                  log10_condition=float(self._rng.uniform(
                      0.0, config.max_log10_condition)))
    dataset = config.datasets[self._rng.randint(len(config.datasets))]
    if kind == "logistic":
      return Task(kind, dataset=dataset)
    while True:
      depth = (self._rng.randint(1, config.max_depth + 1)
               if config.random_depth else 1)
      layers = tuple(int(self._rng.randint(config.min_width,
                                           config.max_width + 1))
                     if config.random_width else config.fixed_width
                     for _ in range(depth))
      activation = (config.activations[self._rng.randint(
          len(config.activations))] if config.random_activation
                    else config.activations[0])
      if (dataset, layers, activation) not in config.exclude:
        return Task(kind, dataset=dataset, layers=layers,
                    activation=activation)

  def scales(self, shape):
    """Per-coordinate parameter scales, log-uniform in the configured range.

    Args:
      shape: the shape of the block of coordinates a task uses.

    Returns:
      float32 array of `shape`.
    """
    log_range = math.log(self.config.scale_range)
    return np.exp(self._rng.uniform(-log_range, log_range,
                                    shape)).astype(np.float32)

  def quadratic(self, dims, log10_condition):
    """Matrices [batch, max_dims, max_dims] and targets, used block [dims].

    Each matrix is `U diag(s) V^T` with random orthogonal U, V and singular
    values log-uniform between 10^(-log10_condition) and 1 (the two ends
    included), so its condition number is 10^log10_condition.
    """
    config = self.config
    matrices = np.zeros([config.quadratic_batch, config.max_dims,
                         config.max_dims], np.float32)
    targets = np.zeros([config.quadratic_batch, config.max_dims], np.float32)
    for b in range(config.quadratic_batch):
      left, _ = np.linalg.qr(self._rng.randn(dims, dims))
      right, _ = np.linalg.qr(self._rng.randn(dims, dims))
      exponents = self._rng.uniform(-log10_condition, 0.0, dims)
      exponents[:2] = [0.0, -log10_condition][:dims]
      matrices[b, :dims, :dims] = (left * 10.0**exponents) @ right.T
      targets[b, :dims] = self._rng.randn(dims)
    return matrices, targets


class TaskFamily:
  """The family's problem: `build()` for the unroll, `next_task` per epoch.

  Every kind reads its parameters from the front of one trainable vector,
  `theta = start * init_scale + scale * delta` (see the module docstring),
  so the learned optimizer makes one call per step whatever the task.
  Creating the family adds the task variables to the default graph (outside
  any unroll, so no reset re-initialises them).
  """

  def __init__(self, config=None, seed=0, split="train"):
    """Creates the task variables and the ops that set them.

    Args:
      config: a `FamilyConfig`; defaults to `FamilyConfig()`.
      seed: seed of the task sampler.
      split: "train" or "test": which split of the tables tasks use.
    """
    self.config = config or FamilyConfig()
    self.sampler = TaskSampler(self.config, seed, split)
    self.task = None
    self.layouts = self._layouts()
    self.num_parameters = max(
        offset + int(np.prod(shape))
        for layout in self.layouts.values()
        for offset, shape in layout.values())
    self._variables = {}
    self._placeholders = {}
    with tf.name_scope("task_family"):
      for name, (shape, dtype) in self._task_shapes().items():
        placeholder = tf.compat.v1.placeholder(dtype, shape, name=name)
        self._placeholders[name] = placeholder
        # In no collection: set only by `next_task`, never by an initializer.
        self._variables[name] = tf.compat.v1.Variable(
            tf.zeros(shape, dtype), trainable=False, collections=[],
            name=name)
      self._assign = tf.group(*[
          tf.compat.v1.assign(self._variables[n], self._placeholders[n])
          for n in self._variables])

  def _layouts(self):
    """`{kind: {parameter: (offset, largest shape)}}` in the one vector."""
    config = self.config
    sampler = self.sampler

    def pack(shapes):
      layout = {}
      offset = 0
      for name, shape in shapes:
        layout[name] = (offset, shape)
        offset += int(np.prod(shape))
      return layout

    mlp = []
    fan_in = sampler.num_features
    for layer in range(config.max_depth):
      mlp.append(("w{}".format(layer), (fan_in, config.max_width)))
      mlp.append(("b{}".format(layer), (config.max_width,)))
      fan_in = config.max_width
    mlp.append(("w_out", (fan_in, sampler.num_classes)))
    mlp.append(("b_out", (sampler.num_classes,)))
    return {
        "mlp": pack(mlp),
        "logistic": pack([
            ("w", (sampler.num_features, sampler.num_classes)),
            ("b", (sampler.num_classes,))]),
        "quadratic": pack([
            ("x", (config.quadratic_batch, config.max_dims))]),
    }

  def _task_shapes(self):
    """Every task variable's `(shape, dtype)`, by name."""
    config = self.config
    sampler = self.sampler
    shapes = {
        "kind": ([len(KINDS)], tf.float32),
        "features": ([sampler.num_examples, sampler.num_features],
                     tf.float32),
        "labels": ([sampler.num_examples], tf.int32),
        "num_examples": ([], tf.int32),
        "class_offsets": ([sampler.num_classes], tf.float32),
        "activation": ([len(ACTIVATIONS)], tf.float32),
        "quadratic_matrices": ([config.quadratic_batch, config.max_dims,
                                config.max_dims], tf.float32),
        "quadratic_targets": ([config.quadratic_batch, config.max_dims],
                              tf.float32),
        "quadratic_dims": ([], tf.float32),
        "scale": ([self.num_parameters], tf.float32),
        "init_scale": ([self.num_parameters], tf.float32),
    }
    for layer in range(config.max_depth):
      shapes["unit_mask{}".format(layer)] = ([config.max_width], tf.float32)
      shapes["layer_on{}".format(layer)] = ([], tf.float32)
    return shapes

  def _zero_values(self):
    """Every task variable at 0 (one example, one quadratic dimension)."""
    values = {name: np.zeros(shape, dtype.as_numpy_dtype)
              for name, (shape, dtype) in self._task_shapes().items()}
    values["num_examples"] = np.int32(1)
    values["quadratic_dims"] = np.float32(1)
    return values

  def _view(self, vector, kind, name):
    """The part of a [num_parameters] array or tensor holding a parameter."""
    offset, shape = self.layouts[kind][name]
    part = vector[offset:offset + int(np.prod(shape))]
    if isinstance(part, np.ndarray):
      return part.reshape(shape)
    return tf.reshape(part, shape)

  def _set_parameter(self, values, kind, name, used, init_scale=0.0):
    """Draws the scales of the used block of a parameter; 0 elsewhere."""
    scale = self._view(values["scale"], kind, name)
    scale[used] = self.sampler.scales(scale[used].shape)
    self._view(values["init_scale"], kind, name)[used] = init_scale

  def task_values(self, task):
    """The value of every task variable that poses `task`.

    Args:
      task: a `Task`.

    Returns:
      `{name: ndarray}` with every name of the task variables.
    """
    values = self._zero_values()
    values["kind"][KINDS.index(task.kind)] = 1.0
    if task.dataset is not None:
      features, labels = self.sampler.tables[task.dataset]
      num_features = features.shape[1]
      num_classes = int(labels.max()) + 1
      values["features"][:len(features), :num_features] = features
      values["labels"][:len(labels)] = labels
      values["num_examples"] = np.int32(len(labels))
      values["class_offsets"][num_classes:] = _ABSENT_CLASS_LOGIT
    if task.kind == "logistic":
      self._set_parameter(values, "logistic", "w",
                          np.s_[:num_features, :num_classes])
      self._set_parameter(values, "logistic", "b", np.s_[:num_classes])
    if task.kind == "mlp":
      values["activation"][list(ACTIVATIONS).index(task.activation)] = 1.0
      fan_in = num_features
      for layer, width in enumerate(task.layers):
        values["unit_mask{}".format(layer)][:width] = 1.0
        values["layer_on{}".format(layer)] = np.float32(1)
        self._set_parameter(values, "mlp", "w{}".format(layer),
                            np.s_[:fan_in, :width], 1 / math.sqrt(fan_in))
        self._set_parameter(values, "mlp", "b{}".format(layer),
                            np.s_[:width])
        fan_in = width
      self._set_parameter(values, "mlp", "w_out", np.s_[:fan_in,
                                                        :num_classes],
                          1 / math.sqrt(fan_in))
      self._set_parameter(values, "mlp", "b_out", np.s_[:num_classes])
    if task.kind == "quadratic":
      matrices, targets = self.sampler.quadratic(task.dims,
                                                 task.log10_condition)
      values["quadratic_matrices"] = matrices
      values["quadratic_targets"] = targets
      values["quadratic_dims"] = np.float32(task.dims)
      self._set_parameter(values, "quadratic", "x", np.s_[:, :task.dims],
                          1.0)
    return values

  def next_task(self, sess):
    """Draws the next task and sets the task variables to pose it.

    Args:
      sess: the session of the graph the family was made in.

    Returns:
      The `Task`.
    """
    self.set_task(sess, self.sampler.draw_task())
    return self.task

  def set_task(self, sess, task):
    """Makes `task` the current one and sets the task variables to pose it.

    Args:
      sess: the session of the graph the family was made in.
      task: a `Task`.

    Returns:
      The values fed (`task_values`, whose random parts, such as the
      parameter scales, are drawn anew each call), by task variable name.
    """
    self.task = task
    values = self.task_values(task)
    sess.run(self._assign, feed_dict={self._placeholders[n]: v
                                      for n, v in values.items()})
    return values

  def epoch_unrolls(self, num_unrolls):
    """The unrolls a training epoch on the current task runs.

    Args:
      num_unrolls: the trainer's usual number (`num_steps / unroll_length`).

    Returns:
      `num_unrolls` scaled by the task's `unroll_factor` and rounded, at
      least 1; `num_unrolls` itself before any task is drawn.
    """
    if self.task is None:
      return num_unrolls
    return max(1, int(round(num_unrolls * self.task.unroll_factor)))

  def _mlp_logits(self, theta, inputs):
    """The MLP's logits: masked units, skipped layers, mixed activation."""
    task = self._variables
    hidden = inputs
    for layer in range(self.config.max_depth):
      pre_activation = (
          tf.matmul(hidden, self._view(theta, "mlp", "w{}".format(layer))) +
          self._view(theta, "mlp", "b{}".format(layer)))
      activated = tf.add_n([task["activation"][i] * function(pre_activation)
                            for i, function in enumerate(
                                ACTIVATIONS.values())])
      activated *= task["unit_mask{}".format(layer)]
      if layer == 0:
        hidden = activated
      else:
        # A layer the task does not have passes its input through.
        on = task["layer_on{}".format(layer)]
        hidden = on * activated + (1.0 - on) * hidden
    return (tf.matmul(hidden, self._view(theta, "mlp", "w_out")) +
            self._view(theta, "mlp", "b_out"))

  def _classification_loss(self, logits, labels):
    logits += self._variables["class_offsets"]
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=labels, logits=logits))

  def __call__(self):
    """The loss of the current task (the `build()` of the unroll)."""
    task = self._variables
    with tf.compat.v1.variable_scope("family"):
      delta = tf.compat.v1.get_variable(
          "delta", shape=[self.num_parameters], dtype=tf.float32,
          initializer=tf.compat.v1.zeros_initializer())
      start = tf.compat.v1.get_variable(
          "start", shape=[self.num_parameters], dtype=tf.float32,
          initializer=tf.compat.v1.truncated_normal_initializer(),
          trainable=False)
      theta = start * task["init_scale"] + task["scale"] * delta
      indices = tf.random.uniform([self.config.batch_size], 0,
                                  task["num_examples"], dtype=tf.int32)
      inputs = tf.gather(task["features"], indices)
      labels = tf.gather(task["labels"], indices)
      mlp_loss = self._classification_loss(self._mlp_logits(theta, inputs),
                                           labels)
      logistic_logits = (
          tf.matmul(inputs, self._view(theta, "logistic", "w")) +
          self._view(theta, "logistic", "b"))
      logistic_loss = self._classification_loss(logistic_logits, labels)
      x = self._view(theta, "quadratic", "x")
      residual = tf.squeeze(tf.matmul(task["quadratic_matrices"],
                                      tf.expand_dims(x, -1)), -1)
      residual -= task["quadratic_targets"]
      quadratic_loss = tf.reduce_mean(
          tf.reduce_sum(tf.square(residual), 1) / task["quadratic_dims"])
      losses = tf.stack([mlp_loss, logistic_loss, quadratic_loss])
      return tf.reduce_sum(task["kind"] * losses)


def family(config=None, seed=None, split="train"):
  """The task family as a problem (see the module docstring).

  Args:
    config: a `FamilyConfig`, or None for the defaults.
    seed: seed of the task sampler; None takes the default graph's seed,
      so a graph seed gives the same tasks every time. A graph without one
      draws a seed, as TensorFlow's own random ops do: its tasks then
      differ from run to run, and never replay a seeded run's.
    split: "train" or "test": which split of the tables tasks use.

  Returns:
    A `TaskFamily`: call it to build the loss, `next_task(sess)` to draw.
  """
  if seed is None:
    seed = tf.compat.v1.get_default_graph().seed
  if seed is None:
    seed = int(np.random.SeedSequence().generate_state(1)[0])
  return TaskFamily(config, seed, split)
