"""A trained optimizer as a Keras 3 optimizer, for `model.compile` / `fit`.

    model.compile(optimizer=l2l.keras_optimizer("./digits"), loss=...)
    model.fit(images, labels, batch_size=128, epochs=10)

The update is `LearnedOptimizer`'s: per variable, `delta, state = net(g,
state)` and `x <- x + delta`, with the nets' state in optimizer variables.
"""

import sys

import keras
import tensorflow as tf

from l2l.core import interception
from l2l.core import unroll
from l2l.dropin import update_rule as update_rule_lib


@keras.saving.register_keras_serializable(package="l2l")
class KerasLearnedOptimizer(keras.optimizers.Optimizer):
  """A meta-trained update rule as a `keras.optimizers.Optimizer`.

  It has no learning rate: Keras's `learning_rate` attribute exists (the
  base class requires one) but is never used, and passing one is refused.

  A model saved with it (`model.save("m.keras")`) keeps the rule's weights
  in its config, and the nets' states as optimizer variables, so
  `keras.models.load_model` restores it whole, on any machine, once this
  module is imported (`l2l.keras_optimizer` imports it).
  """

  def __init__(self, update_rule, name="learned_optimizer", **kwargs):
    """Creates the optimizer; prefer `l2l.keras_optimizer(directory)`.

    Args:
      update_rule: an `update_rule.UpdateRule`.
      name: the optimizer's name.
      **kwargs: Keras optimizer options that act on the gradients
        (`clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`, ...).

    Raises:
      ValueError: for a learning rate, or a weight decay (which Keras scales
        by the learning rate).
      RuntimeError: when TensorFlow does not execute eagerly here.
    """
    if not tf.executing_eagerly():
      # Keras 3 creates its variables eagerly and trains in tf.functions; in
      # a v1 graph it would fail later, far from the cause.
      raise RuntimeError(
          "keras_optimizer needs eager execution, as Keras 3 does, and it is "
          "off here (after tf.compat.v1.disable_eager_execution() or "
          "disable_v2_behavior(), or inside a `with tf.Graph().as_default():` "
          "block); in graph mode use l2l.LearnedOptimizer.from_path(...), "
          "a tf.compat.v1.train.Optimizer.")
    update_rule_lib.refuse_learning_rate(kwargs, "keras_optimizer")
    update_rule_lib.check_arguments("KerasLearnedOptimizer", name,
                                    update_rule,
                                    "l2l.keras_optimizer(directory)")
    if kwargs.get("weight_decay"):
      raise ValueError(
          "keras_optimizer: weight_decay={!r} is not accepted: Keras scales "
          "weight decay by the learning rate, which a learned optimizer does "
          "not have. Add the penalty to the loss instead.".format(
              kwargs["weight_decay"]))
    super().__init__(learning_rate=0.0, name=name, **kwargs)
    self._update_rule = update_rule
    self._nets = None
    self._net_ids = []
    self._state_structures = []
    self._state_variables = []

  @property
  def update_rule(self):
    """The `UpdateRule` it applies."""
    return self._update_rule

  @property
  def learning_rate(self):
    """Keras's unused learning rate, 0 (see the class doc).

    Raises:
      ValueError: when read by Keras's `ReduceLROnPlateau`, which would
        never act on it.
    """
    # ReduceLROnPlateau only lowers a rate above its min_lr (0 by default),
    # so it would never reach the setter below and would silently do
    # nothing; it reads the rate at every epoch's end, through here, or
    # through what wraps this optimizer (mixed precision's
    # LossScaleOptimizer).
    if _read_by(keras.callbacks.ReduceLROnPlateau):
      raise ValueError(_NO_LEARNING_RATE.format("ReduceLROnPlateau"))
    return self._get_current_learning_rate()

  @learning_rate.setter
  def learning_rate(self, value):
    # Keras's LearningRateScheduler sets it (to its schedule of the unused
    # 0); its schedule would silently do nothing.
    raise ValueError(_NO_LEARNING_RATE.format(
        "a callback, or code of yours, set it to {!r}".format(value)))

  def get_config(self):
    """Keras's config, with the update rule and its weights."""
    config = super().get_config()
    # The base class always has a learning rate; this optimizer takes none.
    del config["learning_rate"]
    config["update_rule"] = self._update_rule.to_config()
    return config

  @classmethod
  def from_config(cls, config, custom_objects=None):
    """The optimizer `get_config` described."""
    del custom_objects  # The config holds no Keras objects.
    config = dict(config)
    config.pop("learning_rate", None)
    if "update_rule" not in config:
      raise ValueError(
          "KerasLearnedOptimizer's config has no update_rule: make it with "
          "l2l.keras_optimizer(directory), or from a config its get_config "
          "wrote.")
    rule = update_rule_lib.UpdateRule.from_config(config.pop("update_rule"))
    return cls(rule, **config)

  def build(self, variables):
    """Creates the nets and, for every variable, its net's state.

    Args:
      variables: the model's trainable variables.

    Raises:
      ValueError: if the assignment rule covers some variable with no net.
    """
    if self.built:
      return
    # Checked before the base class marks the optimizer built, so a refused
    # model leaves it unbuilt rather than half-built. An integer variable
    # is left fixed here, as Adam leaves it: it gets no gradient, and
    # `update_step` refuses one given it by hand.
    net_ids = self._update_rule.net_ids(variables, leave_non_float=True)
    super().build(variables)
    self._net_ids = net_ids
    # The nets' own variables are created here, outside the traced train
    # step, where Sonnet 2 can create them.
    with tf.init_scope():
      self._nets = self._update_rule.make_nets()
      for variable, net_id in zip(variables, self._net_ids):
        if net_id is None:
          # Kept fixed by the rule (training left it out): no state.
          self._state_structures.append(None)
          self._state_variables.append([])
          continue
        initial = update_rule_lib.initial_state(self._nets[net_id], variable)
        # Only the structure is kept: the tensors would double the memory
        # of the state for the optimizer's whole life.
        self._state_structures.append(tf.nest.map_structure(
            lambda value: tf.TensorSpec(value.shape, value.dtype), initial))
        self._state_variables.append([
            self.add_variable(
                shape=value.shape, dtype=value.dtype,
                initializer=_constant(value.numpy()),
                name="{}_state_{}".format(
                    _clean(interception.variable_name(variable)), i))
            for i, value in enumerate(tf.nest.flatten(initial))])

  def update_step(self, gradient, variable, learning_rate):
    """Applies the learned step to one variable (the learning rate unused).

    Raises:
      ValueError: for a gradient given to a variable that is not
        floating-point.
    """
    del learning_rate  # A learned optimizer has none; see the class doc.
    index = self._get_variable_index(variable)
    if self._net_ids[index] is None:
      if not tf.as_dtype(variable.dtype).is_floating:
        raise ValueError(self._update_rule.non_float_error(
            update_rule_lib.not_float_description(
                interception.variable_name(variable), variable)))
      return  # Kept fixed by the rule.
    slots = self._state_variables[index]
    state = tf.nest.pack_sequence_as(self._state_structures[index],
                                     [tf.convert_to_tensor(s) for s in slots])
    (delta,), (next_state,) = unroll.net_updates(
        self._nets[self._net_ids[index]],
        [tf.convert_to_tensor(gradient)], [state])
    self.assign_add(variable, delta)
    for slot, value in zip(slots, tf.nest.flatten(next_state)):
      self.assign(slot, value)


_NO_LEARNING_RATE = (
    "keras_optimizer has no learning rate to schedule ({}): the learned "
    "update rule sets its own steps. Remove the learning-rate callback "
    "(LearningRateScheduler, ReduceLROnPlateau).")


# How many callers up `_read_by` looks: a callback, then the wrappers of
# this optimizer between it and here.
_CALLERS_LOOKED_AT = 6


def _read_by(kind):
  """Whether an object of `kind` is among the few callers of our caller."""
  frame = sys._getframe(2)  # pylint: disable=protected-access
  for _ in range(_CALLERS_LOOKED_AT):
    if frame is None:
      return False
    if isinstance(frame.f_locals.get("self"), kind):
      return True
    frame = frame.f_back
  return False


def _clean(path):
  return path.replace("/", "_").replace(":", "_")


def _constant(array):
  """A Keras initializer returning a fixed array (the nets' initial state)."""
  def initializer(shape, dtype=None):
    del shape  # The array has it.
    return tf.constant(array, dtype=dtype)
  return initializer


def keras_optimizer(directory, name="learned_optimizer", assignment=None,
                    **kwargs):
  """The optimizer saved in `directory`, for `model.compile(optimizer=...)`.

  Args:
    directory: a directory written by `MetaOptimizer.save` or train.py.
    name: the optimizer's name.
    assignment: optionally, a rule giving the model's variables to the
      saved nets in place of the saved one (see `UpdateRule.from_path`).
    **kwargs: Keras options acting on the gradients (`clipnorm`, ...).

  Returns:
    A `keras.optimizers.Optimizer`.

  Raises:
    ValueError: for a learning rate (`learning_rate`, `lr`) or weight decay,
      a missing or bad save, a bad `assignment`, or a swarm (LOIS)
      optimizer.
    RuntimeError: when eager execution is off (Keras 3 needs it).
  """
  update_rule_lib.refuse_learning_rate(kwargs, "keras_optimizer")
  update_rule_lib.check_arguments("keras_optimizer", name)
  return KerasLearnedOptimizer(
      update_rule_lib.UpdateRule.from_path(directory, assignment), name=name,
      **kwargs)
