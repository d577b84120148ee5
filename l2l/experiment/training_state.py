"""The state of a meta-training run, kept so that it can be resumed.

train.py keeps it in `<save_path>/training_state/state.npz`, beside the saved
optimizer and never mixed with it: evaluation reads only `<net_id>.l2l` files.
The file is an `.npz` (no pickles) written atomically, holding

- `variables/<name>`: every variable of the training graph, i.e. the
  optimizer's parameters, the meta-optimizer's Adam slots and powers, and the
  recurrent and swarm state;
- `info`: a JSON string with the epoch reached, the best evaluation so far,
  the number of problem instances drawn (`resets`), and the settings that
  shape the trajectory (problem, steps, unroll, learning rate, seed...).

Random numbers: TensorFlow's seeded random ops are stateful per session, so
a new session starts their sequences over. A seeded run resumes exactly by
replaying the instance draws it made (running the reset op `resets` times);
random ops that run inside the unroll (minibatches, the swarm's posterior
candidates) cannot be replayed that cheaply, and `unreplayed_random_ops`
names them so the resumed run can say it continues with fresh draws.
"""

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from l2l import checks
from l2l import files
from l2l.checkpoint import manifest
from l2l.core import interception
from l2l.core import meta_objective
from l2l.swarm import config as swarm_config

DIRECTORY = manifest.TRAINING_STATE_DIRECTORY
FILE_NAME = manifest.TRAINING_STATE_FILE
# train.py's directory lock, beside the state (see files.directory_lock).
LOCK_NAME = ".lock"
VERSION = 1
_VARIABLE_PREFIX = "variables/"
# Settings a resumed run must share with the run that wrote the state.
TRAJECTORY_SETTINGS = ("problem", "num_steps", "unroll_length",
                       "learning_rate", "second_derivatives", "seed",
                       "num_particles", "meta_objective",
                       "evaluation_period", "evaluation_epochs")
# What a state written before a setting existed ran with.
_SETTING_DEFAULTS = {"meta_objective": meta_objective.DEFAULT}
# Settings checked only where both runs record them: a one-machine run's
# evaluations draw instances from the stream training draws from, so they
# shape its trajectory; states written before they were recorded, and
# cluster runs (whose draws are not replayed), leave them out.
_CHECKED_IF_RECORDED = ("evaluation_period", "evaluation_epochs")


class TrainingStateError(ValueError):
  """A training state is missing, unreadable or does not fit the run."""


def path(save_path):
  """The training state file of a save directory."""
  return os.path.join(os.fspath(save_path), DIRECTORY, FILE_NAME)


def exists(save_path):
  """True if `save_path` holds a training state."""
  return os.path.isfile(path(save_path))


class Variables:
  """Reads and restores every variable of a graph (built before finalize)."""

  def __init__(self, variables):
    """Builds the assign ops.

    Args:
      variables: the graph's variables.
    """
    self._variables = {v.op.name: v for v in variables}
    self._placeholders = {}
    assigns = []
    for name, variable in sorted(self._variables.items()):
      placeholder = tf.compat.v1.placeholder(
          variable.dtype.base_dtype, variable.shape,
          name="restore_" + name.replace("/", "_"))
      self._placeholders[name] = placeholder
      assigns.append(variable.assign(placeholder))
    self._restore = tf.group(*assigns, name="restore_training_state")

  def read(self, sess):
    """Returns {variable name: ndarray}."""
    return sess.run(self._variables)

  def restore(self, sess, values, where):
    """Assigns `values` (as `read` returns) to the variables.

    An assignment also initialises a variable, so the variables need not be
    initialised first.

    Args:
      sess: the session.
      values: {variable name: ndarray}.
      where: the state file, for errors.

    Raises:
      TrainingStateError: if the names or shapes differ from the graph's.
    """
    sess.run(self._restore, feed_dict=self.check(values, where))

  def check(self, values, where):
    """Checks that `values` fit the variables, before any session.

    Args:
      values: {variable name: ndarray}.
      where: the state file, for errors.

    Returns:
      The feed dict that restores them.

    Raises:
      TrainingStateError: if the names or shapes differ from the graph's.
    """
    missing = sorted(set(self._variables) - set(values))
    unknown = sorted(set(values) - set(self._variables))
    if missing or unknown:
      raise TrainingStateError(
          "{} does not fit this run's graph (missing {}, unexpected {}); was "
          "it written by another version or problem?".format(
              where, missing[:3] or "none", unknown[:3] or "none"))
    feed = {}
    for name, placeholder in self._placeholders.items():
      value = values[name]
      if not placeholder.shape.is_compatible_with(value.shape):
        raise TrainingStateError(
            "{}: variable {} has shape {}, but this run's has {}.".format(
                where, name, list(value.shape), placeholder.shape.as_list()))
      feed[placeholder] = value
    return feed


def write(save_path, values, info):
  """Writes the training state atomically.

  Args:
    save_path: the save directory.
    values: {variable name: ndarray}.
    info: JSON-serialisable dict (epoch, best evaluation, resets, settings).

  Returns:
    The path written.
  """
  arrays = {_VARIABLE_PREFIX + name: np.asarray(value)
            for name, value in values.items()}
  arrays["info"] = np.asarray(json.dumps(dict(info, version=VERSION),
                                         sort_keys=True, allow_nan=False))
  with files.atomic_writer(path(save_path)) as stream:
    np.savez(stream, **arrays)
  return path(save_path)


def read(save_path):
  """Reads a training state.

  Args:
    save_path: the save directory.

  Returns:
    `(values, info)` as `write` took them.

  Raises:
    TrainingStateError: if there is none or it is unreadable.
  """
  where = path(save_path)
  if not os.path.isfile(where):
    # Absolute: a run moved, or a command pasted in another directory,
    # looks where the user did not mean to.
    raise TrainingStateError(
        "No training state in {} (expected {}); if the run is elsewhere, "
        "give its directory, else run without --resume to start "
        "training.".format(os.path.abspath(save_path),
                           os.path.abspath(where)))
  try:
    arrays = files.read_npz(where)
    if "info" not in arrays:
      raise ValueError("it has no 'info' array (the run's settings)")
    info = json.loads(str(arrays.pop("info")))
  except (ValueError, OSError) as error:
    raise TrainingStateError("{} is not a readable training state: {}".format(
        where, error)) from error
  if not isinstance(info, dict) or info.get("version") != VERSION:
    raise TrainingStateError("{} is a training state of another version "
                             "({!r}).".format(where, info.get("version") if
                                              isinstance(info, dict) else
                                              info))
  values = {key[len(_VARIABLE_PREFIX):]: value
            for key, value in arrays.items()
            if key.startswith(_VARIABLE_PREFIX)}
  problem = _info_problem(info) or _values_problem(values)
  if problem:
    raise TrainingStateError("{} is not a readable training state: {}; "
                             "resume from an intact state, or start "
                             "afresh.".format(where, problem))
  return values, info


def _values_problem(values):
  """What is wrong with a state's variables (text or complex numbers where
  a variable holds reals), or None."""
  for name, value in values.items():
    if not (np.issubdtype(value.dtype, np.floating) or
            np.issubdtype(value.dtype, np.integer) or
            value.dtype == np.bool_):
      return "variable {} holds {} values, not real numbers".format(
          name, value.dtype)
  return None


def _info_problem(info):
  """What is wrong with a state's info (one written by hand, or damaged),
  or None."""
  for name in ("epoch", "resets"):
    if not checks.is_integer(info.get(name), 0):
      return "its {} is {}, expected a count (an integer >= 0)".format(
          name, json.dumps(info.get(name))[:40])
  best = info.get("best_evaluation")
  if best is not None and not checks.is_finite_number(best):
    return ("its best_evaluation is {}, expected a finite number or "
            "null".format(json.dumps(best)[:40]))
  if not isinstance(info.get("settings", {}), dict):
    return "its settings are {}, expected an object".format(
        json.dumps(info.get("settings"))[:40])
  cluster = info.get("cluster")
  if cluster is not None and not (isinstance(cluster, dict) and
                                  checks.is_integer(cluster.get("workers"),
                                                    0)):
    return ("its cluster is {}, expected an object with a count of "
            "workers".format(json.dumps(cluster)[:40]))
  return None


def check_settings(saved, settings, where):
  """Refuses to resume with settings that change the trajectory.

  Args:
    saved: the settings in the state.
    settings: this run's.
    where: the state file, for errors.

  Raises:
    TrainingStateError: naming the first differing flag.
  """
  for name in TRAJECTORY_SETTINGS:
    if name in _CHECKED_IF_RECORDED and not (name in saved and
                                              name in settings):
      continue
    saved_value = saved.get(name, _SETTING_DEFAULTS.get(name))
    value = settings.get(name, _SETTING_DEFAULTS.get(name))
    if saved_value != value:
      raise TrainingStateError(
          "{} was written with --{}={}, but this run has --{}={}; resume "
          "with the same settings.".format(where, name, saved_value, name,
                                           value))


def check_swarm_options(saved, options, where):
  """Refuses to resume a run with other swarm options.

  The swarm's options decide what its saved variables mean (the features
  the attention weighs, the gate, the objective being minimised), so a
  resumed run must have the same.

  Args:
    saved: the swarm options the state (or the manifest beside it) records,
      as `dataclasses.asdict` of a `SwarmConfig`; an option it lacks (an
      older version's) counts as its default.
    options: this run's, alike.
    where: the file `saved` was read from, for errors.

  Raises:
    TrainingStateError: naming the first differing option.
  """
  defaults = dataclasses.asdict(swarm_config.SwarmConfig())
  saved = dict(defaults, **saved)
  options = dict(defaults, **options)
  for name in sorted(set(saved) | set(options)):
    if saved.get(name) != options.get(name):
      raise TrainingStateError(
          "{} was written with the swarm option {}={!r}, but this run has "
          "{}={!r}; resume with the same swarm options.".format(
              where, name, saved.get(name), name, options.get(name)))


_RANDOM_OP_TYPES = frozenset([
    "RandomUniform", "RandomUniformInt", "RandomStandardNormal",
    "TruncatedNormal", "RandomShuffle", "Multinomial", "RandomGamma",
    "RandomPoisson", "RandomPoissonV2", "ParameterizedTruncatedNormal",
    "RandomCrop", "RandomShuffleQueueV2",
])


def unreplayed_random_ops(graph, replayed):
  """The stateful random ops that replaying `replayed` does not advance.

  Args:
    graph: the training graph.
    replayed: ops (or tensors) a resume runs again: the initializer and the
      reset op.

  Returns:
    Sorted names of the other random ops (empty for e.g. `quadratic`).
  """
  roots = [getattr(r, "op", r) for r in tf.nest.flatten(replayed)]
  reached = interception.upstream_ops(roots)
  return sorted(op.name for op in graph.get_operations()
                if op.type in _RANDOM_OP_TYPES and op not in reached)
