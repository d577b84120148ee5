"""A trained optimizer's update rule, outside the unroll it was trained in.

`UpdateRule` holds what a saved optimizer is: its nets (factory configs
with their weights) and the rule that gives each variable of a model to one
of them. `LearnedOptimizer` (graph mode) and the Keras optimizer both apply
it with `unroll.net_updates`, the step the meta-training unroll takes.
"""

import contextlib
import numbers
import os

from absl import logging
import numpy as np
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.core import interception
from l2l.swarm import config as swarm_config
from l2l.swarm import lois_released
import networks

# Keyword names under which optimizer APIs take a learning rate.
_LEARNING_RATE_NAMES = ("learning_rate", "lr")


def refuse_learning_rate(kwargs, what):
  """Raises ValueError if `kwargs` passes a learning rate.

  A learned optimizer's step size is part of what it learned; a learning
  rate given to it would be ignored, so it is refused instead.

  Args:
    kwargs: the keyword arguments given.
    what: the optimizer's name, for the message.

  Raises:
    ValueError: naming the argument.
  """
  for name in _LEARNING_RATE_NAMES:
    if name in kwargs:
      raise ValueError(
          "{}: {}={!r} is not accepted: a learned optimizer has no learning "
          "rate (its nets produce the whole update). Remove the argument; to "
          "change the step size, meta-train another optimizer.".format(
              what, name, kwargs[name]))


def check_arguments(what, name, update_rule=None, instead=None):
  """Raises ValueError unless an optimizer is given a name and, where the
  caller takes one, an `UpdateRule`.

  TensorFlow's and Keras's optimizers take a learning rate first: a path or
  a number given where a learned optimizer takes its rule, or a number
  where it takes its name, would otherwise fail at the first step, far from
  here.

  Args:
    what: the optimizer's name, for the message.
    name: what was given as the name.
    update_rule: what was given as the rule, or None when the caller makes
      the rule itself.
    instead: how to make the optimizer from a saved directory, for the
      message about a rule.

  Raises:
    ValueError: naming what was given and what is expected.
  """
  if update_rule is not None and not isinstance(update_rule, UpdateRule):
    given = ("a learned optimizer takes no learning rate"
             if isinstance(update_rule, numbers.Number) else
             "for the directory of a saved optimizer use " + instead)
    raise ValueError("{} takes an UpdateRule, got {!r}: {}.".format(
        what, update_rule, given))
  if not isinstance(name, str):
    raise ValueError("{}: name must be a string, got {!r}; a learned "
                     "optimizer takes no learning rate.".format(what, name))


@contextlib.contextmanager
def _untrainable_variables():
  """Creates every variable non-trainable inside the block.

  The nets' weights are fixed: kept out of the trainable variables, they are
  never handed to the optimizer that trains the user's model.
  """
  def creator(next_creator, **kwargs):
    kwargs["trainable"] = False
    return next_creator(**kwargs)
  with tf.variable_creator_scope(creator):
    yield


def _swarm_refusal(source):
  return ValueError(
      "{} is a LOIS swarm optimizer (num_particles > 1); it cannot be used "
      "as a single-point drop-in optimizer: its LSTM was trained on the "
      "swarm's attention-weighted features (momentum, personal best, "
      "attraction to other particles), which one point does not have. Use "
      "it with MetaOptimizer(num_particles=...).meta_loss instead.".format(
          source))


class UpdateRule:
  """A trained optimizer's nets and the rule that assigns variables to them."""

  def __init__(self, net_configs, assignment_rule, source="the optimizer"):
    """Keeps the configuration; nets are built per graph by `make_nets`.

    Args:
      net_configs: `{net_id: networks.factory config}`, with the weights
        given by `net_path` or by a checkpoint dict as the `initializer`
        net option. `net_path` files are read here, once: the rule (and a
        Keras model saved with it) keeps the weights it was made with,
        whatever later happens to the files.
      assignment_rule: a list of rule entries (see
        `l2l.checkpoint.manifest`).
      source: where the rule comes from, for messages.

    A net configured without weights (an untrained one) draws them here,
    once, under the caller's seed, and keeps them.

    Raises:
      ValueError: if the rule is malformed or names a net that is not
        configured, or a net's file is unreadable or does not fit its net.
    """
    problem = manifest.assignment_problem(assignment_rule, net_configs)
    if problem:
      raise ValueError("The assignment rule of {}: {}".format(source,
                                                              problem))
    self.net_configs = {net_id: networks.read_weights(**config)
                        for net_id, config in net_configs.items()}
    self.assignment_rule = assignment_rule
    self.source = source
    # The caller's seed (graph or eager), for weights drawn below.
    seed, _ = tf.compat.v1.get_seed(None)
    # Making the nets checks each checkpoint's names against its net, and
    # connecting them to a gradient creates their variables, which checks
    # the shapes: now, not at the first step. A graph of its own keeps the
    # caller's names as they are.
    with tf.Graph().as_default():
      if seed is not None:
        tf.compat.v1.set_random_seed(seed)
      nets = self.make_nets()
      for net in nets.values():
        initial_state(net, tf.zeros(net.example_shape()))
      self._fix_drawn_weights(nets)

  def _fix_drawn_weights(self, nets):
    """Keeps the weights drawn for nets configured without any.

    Such a net (an untrained one) draws its weights when it is built; kept
    as its initializer, the same weights then serve every graph the rule
    is used in, and are saved with a model (`to_config`).

    Args:
      nets: the rule's nets, built and connected in the current graph.
    """
    drawn = [net_id for net_id, net in nets.items() if net.has_parameters and
             "initializer" not in (self.net_configs[net_id].get(
                 "net_options") or {})]
    if not drawn:
      return
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      for net_id in drawn:
        config = self.net_configs[net_id]
        options = dict(config.get("net_options") or {})
        options["initializer"] = networks.save(nets[net_id], sess)
        self.net_configs[net_id] = dict(config, net_options=options)

  @classmethod
  def from_path(cls, directory, assignment=None):
    """Reads a directory written by `MetaOptimizer.save` or train.py.

    Without a manifest (DeepMind's files, older saves) the directory must
    hold the default net, `cw.l2l`, with `networks.default_config()`.

    Args:
      directory: the saved optimizer's directory.
      assignment: a rule (a list of entries, see `l2l.checkpoint.manifest`)
        giving a model's variables to the saved nets, in place of the one
        saved with them: for an optimizer whose nets were given the
        training problem's variables by name.

    Returns:
      An `UpdateRule`.

    Raises:
      ValueError: for a missing directory or file, a bad manifest, or a
        swarm (LOIS) optimizer.
    """
    if (not isinstance(directory, (str, os.PathLike)) or
        not os.fspath(directory)):
      raise ValueError("The path must be the directory of a saved optimizer "
                       "(train.py --save_path), got {!r}.".format(directory))
    # Absolute, since the rule's source is saved with a Keras model, which
    # may be loaded from another directory or machine; "~/" as the
    # commands' path flags take it.
    directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))

    def read():
      saved = manifest.read(directory)
      if saved is None:
        # LOIS's released models have no manifest, and their cw.l2l has the
        # default net's layout: only the attention record tells them apart.
        if lois_released.is_released_model(directory):
          raise _swarm_refusal(directory + " (LOIS's released model)")
        # A swarm of this library's that lost its manifest.
        if os.path.exists(l2l_file.checkpoint_path(directory,
                                                   swarm_config.ATTENTION_ID)):
          raise _swarm_refusal(directory + " (it holds the swarm's "
                               "attention, attention.l2l)")
        path = l2l_file.find(directory, networks.DEFAULT_NET_ID)
        configs = {networks.DEFAULT_NET_ID: dict(networks.default_config(),
                                                 net_path=path)}
        rule = [{"net": networks.DEFAULT_NET_ID, "match": "everything"}]
      else:
        if saved["swarm"].get("num_particles", 1) > 1:
          raise _swarm_refusal(directory)
        configs = manifest.net_configs(saved, directory)
        rule = saved["assignment"]
      with manifest.explaining_a_missing_manifest(
          directory, "DeepMind's default net, networks.default_config()"):
        return cls(configs, rule if assignment is None else assignment,
                   source=directory)

    # A run saving there meanwhile could pair nets of two saves.
    return manifest.read_unsaved(directory, read)

  @classmethod
  def from_meta_optimizer(cls, meta_optimizer, sess):
    """Takes a `MetaOptimizer`'s nets with their current values in `sess`.

    Args:
      meta_optimizer: a `meta.MetaOptimizer` whose `meta_loss` was built.
      sess: the session holding its values.

    Returns:
      An `UpdateRule`.

    Raises:
      ValueError: if `meta_loss` was not built or it is a swarm optimizer.
    """
    if meta_optimizer.swarm.active:
      raise _swarm_refusal("This MetaOptimizer")
    values = meta_optimizer.save(sess)
    configs = {}
    for net_id, config in meta_optimizer.net_config.items():
      options = dict(config.get("net_options") or {})
      if values[net_id]:
        options["initializer"] = values[net_id]
      configs[net_id] = {"net": config["net"], "net_options": options}
    return cls(configs, meta_optimizer.assignment_rule,
               source="the MetaOptimizer")

  def to_config(self):
    """The rule as plain JSON values, weights included.

    A model saved with its optimizer (Keras's `model.save`) carries this, so
    it loads on a machine that has neither the optimizer's directory nor
    its files.

    Returns:
      `{"nets": {net_id: {"net", "net_options", "weights"}}, "assignment",
      "source"}`; "weights" are `{module: {variable: {"dtype", "shape",
      "values"}}}`, empty for nets without parameters.
    """
    nets = {}
    for net_id, config in self.net_configs.items():
      options = dict(config.get("net_options") or {})
      weights = options.pop("initializer", None)
      nets[net_id] = {"net": config["net"], "net_options": options,
                      "weights": _weights_to_json(weights or {})}
    return {"nets": nets, "assignment": list(self.assignment_rule),
            "source": self.source}

  @classmethod
  def from_config(cls, config):
    """The rule `to_config` described.

    Args:
      config: a dict `to_config` returned (or its JSON round trip).

    Returns:
      An `UpdateRule`.

    Raises:
      ValueError: if the config is not one `to_config` writes.
    """
    try:
      configs = {}
      for net_id, net in config["nets"].items():
        options = dict(net["net_options"])
        if net["weights"]:
          options["initializer"] = _weights_from_json(net["weights"])
        configs[net_id] = {"net": net["net"], "net_options": options}
      assignment, source = config["assignment"], config["source"]
    except KeyError as error:
      raise ValueError("Not a learned optimizer's update rule config: {!r} "
                       "is missing.".format(error.args[0])) from error
    except (TypeError, AttributeError, ValueError) as error:
      raise ValueError("Not a learned optimizer's update rule config: "
                       "{}".format(error)) from error
    return cls(configs, assignment, source=source)

  def net_ids(self, variables, leave_non_float=False):
    """The net of each variable, by the assignment rule.

    Args:
      variables: the model's variables (anything with `name` and `shape`).
      leave_non_float: keep variables that are not floating-point fixed,
        with a warning, instead of refusing them. For Keras, whose `build`
        gets every trainable variable, those that can have no gradient
        included (an integer counter), and which Adam leaves alone too.

    Returns:
      One net id per variable; None for a variable the rule keeps fixed
      (one training left out of every net, or with `leave_non_float` one
      that is not floating-point), which the optimizers leave alone, and
      say so in the log.

    Raises:
      ValueError: if the rule covers some variable with no net, or a
        variable is not floating-point (unless `leave_non_float`).
    """
    names = [interception.variable_name(v) for v in variables]
    stepped = [tf.as_dtype(v.dtype).is_floating for v in variables]
    if not all(stepped):
      not_float = ", ".join(
          not_float_description(name, v)
          for name, v, is_float in zip(names, variables, stepped)
          if not is_float)
      if not leave_non_float:
        raise ValueError(self.non_float_error(not_float))
      logging.warning(
          "The learned optimizer of %s keeps %s fixed: it steps "
          "floating-point variables only (a gradient given to one is "
          "refused).",
          self.source, not_float)
    kept = [(name, v) for name, v, is_float in zip(names, variables, stepped)
            if is_float]
    _, kept_nets = manifest.assign(
        self.assignment_rule, [name for name, _ in kept],
        [len(v.shape) for _, v in kept], where=self.source)
    fixed = [name for (name, _), net_id in zip(kept, kept_nets)
             if net_id is None]
    if fixed:
      logging.warning(
          "The learned optimizer of %s keeps %d variable(s) fixed, as its "
          "meta-training left variables of these names out of every net: "
          "%s.", self.source, len(fixed), ", ".join(fixed))
    kept_nets = iter(kept_nets)
    return [next(kept_nets) if is_float else None for is_float in stepped]

  def non_float_error(self, not_float):
    """The refusal of variables that are not floating-point.

    Args:
      not_float: the variables, as `not_float_description` names them.

    Returns:
      The message.
    """
    return ("The learned optimizer of {} cannot update {}: it steps "
            "floating-point variables only (float16, bfloat16, float32, "
            "float64).".format(self.source, not_float))

  def make_nets(self):
    """Builds the nets, in the current graph (or eagerly).

    Returns:
      `{net_id: networks.Network}`; their variables, created on their first
      call (see `connect`), are not trainable.
    """
    return {net_id: networks.factory(**config)
            for net_id, config in self.net_configs.items()}


def not_float_description(name, variable):
  """"name (dtype)", as the refusal of a variable not floating-point reads."""
  return "{} ({})".format(name, tf.as_dtype(variable.dtype).name)


def _weights_to_json(values):
  """`{module: {variable: ndarray}}` as JSON values."""
  return {module: {name: {"dtype": str(np.asarray(array).dtype),
                          "shape": list(np.shape(array)),
                          "values": np.ravel(array).tolist()}
                   for name, array in variables.items()}
          for module, variables in values.items()}


def _weights_from_json(values):
  """The inverse of `_weights_to_json`."""
  return {module: {name: np.asarray(array["values"], array["dtype"]).reshape(
      array["shape"]) for name, array in variables.items()}
          for module, variables in values.items()}


def initial_state(net, variable):
  """The net's initial state for `variable`, created variables untrainable.

  The net is also connected once to a zero gradient of the variable's
  shape: Sonnet 2 creates a net's variables on its first call, which must
  happen here, outside any `tf.function` or control-flow body.

  Args:
    net: a `networks.Network`.
    variable: the variable it will update.

  Returns:
    The state, a nested structure of tensors.
  """
  zeros = tf.zeros(variable.shape, tf.float32)
  state = net.initial_state_for_inputs(zeros, dtype=tf.float32)
  with _untrainable_variables():
    net(zeros, state)
  return state
