"""Records files: what one evaluation measured, in a form a paper can use.

A record is an `.npz` file (no pickles) with the arrays `losses` [epochs,
steps + 1, particles] (each particle's mean over the batch rows) and
`seconds` [epochs]; `final_row_losses` [epochs, particles, rows], every
particle's final loss on each batch row (start set), and `best_curve`
[epochs, steps + 1], the mean over start sets of their best particle's loss
at every step (scores.py's rule; records written before these existed score
as one row); optionally `positions` [recorded epochs, steps + 1, particles,
coordinates]; and `settings`, a JSON string with the optimizer, problem,
learning rate, seeds, step and epoch counts, tuning results, the versions of
everything that produced it and `final_status` ("diverged", "negative" or
"finite"; see scores.py).
"""

import datetime
import io
import json
import os
import platform
import re
import sys

import numpy as np

import l2l
from l2l import checks
from l2l import files
from l2l.experiment import scores

EXTENSION = ".npz"


class RecordsError(ValueError):
  """A file is not a records file."""


def versions():
  """Versions of Python and the libraries that shape the numbers."""
  import sonnet  # pylint: disable=g-import-not-at-top
  import tensorflow  # pylint: disable=g-import-not-at-top
  return {
      "l2l": l2l.__version__,
      "python": platform.python_version(),
      "tensorflow": tensorflow.__version__,
      "sonnet": sonnet.__version__,
      "numpy": np.__version__,
  }


def machine():
  """The machine an evaluation's seconds were measured on."""
  return {
      "cpus": os.cpu_count(),
      "platform": platform.platform(),
      "processor": (files.cpuinfo_field("model name") or
                    platform.processor()),
  }


def _slug(text):
  return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-.")


def _strict_json(value):
  """`value` with every non-finite float written as text ("inf", "nan").

  Python's json would write them as Infinity and NaN, which are not JSON:
  jq, JavaScript and most other readers refuse the whole settings then. A
  diverged learning rate's tuning score is such a float.

  Args:
    value: JSON-serialisable settings (dicts, lists, scalars).

  Returns:
    The same structure, strictly JSON.
  """
  if isinstance(value, dict):
    return {key: _strict_json(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [_strict_json(item) for item in value]
  if isinstance(value, (float, np.floating)):
    return float(value) if np.isfinite(value) else str(float(value))
  return value


def write(directory, evaluation, settings):
  """Writes a new records file; never replaces an existing one.

  Args:
    directory: where to write (created if missing).
    evaluation: an `evaluation.Evaluation`.
    settings: dict of JSON-serialisable settings; "optimizer" and "problem"
      name the file. Versions, the machine, how the LSTM steps ran (as
      `evaluation.lstm_step` says), the command line and the time are
      added.
      Non-finite floats are kept as the text "inf", "-inf" or "nan".

  Returns:
    The path written.
  """
  os.makedirs(directory, exist_ok=True)
  settings = dict(settings)
  if "versions" not in settings:
    settings["versions"] = versions()
  settings.setdefault("machine", machine())
  if evaluation.lstm_step is not None:
    settings.setdefault("lstm_step", evaluation.lstm_step)
  settings.setdefault("command", " ".join(sys.argv))
  created = datetime.datetime.now(datetime.timezone.utc)
  settings.setdefault("created", created.isoformat(timespec="seconds"))
  row_losses = (evaluation.losses if evaluation.row_losses is None else
                evaluation.row_losses)
  # The verdict travels with the numbers, so no reader mistakes a diverged
  # run's NaN for a score.
  settings["final_status"] = summary(row_losses)["status"]
  arrays = {"losses": np.asarray(evaluation.losses, np.float64),
            "seconds": np.asarray(evaluation.seconds, np.float64),
            "final_row_losses": scores.as_row_losses(row_losses)[:, -1],
            "best_curve": scores.best_curve(row_losses),
            "settings": np.asarray(json.dumps(_strict_json(settings),
                                              sort_keys=True,
                                              allow_nan=False))}
  if evaluation.positions is not None:
    arrays["positions"] = np.asarray(evaluation.positions, np.float32)
  buffer = io.BytesIO()
  np.savez_compressed(buffer, **arrays)
  stem = "{}_{}_{}".format(_slug(settings.get("problem", "problem")),
                           _slug(settings.get("optimizer", "optimizer")),
                           created.strftime("%Y%m%d-%H%M%S"))
  return files.write_new(directory, stem, EXTENSION, buffer.getvalue())


def read(path):
  """Reads a records file.

  Args:
    path: the `.npz` file.

  Returns:
    `(arrays, settings)`: a dict of ndarrays and the settings dict.

  Raises:
    RecordsError: if the file is not a records file.
    FileNotFoundError: if it does not exist.
  """
  if not os.path.exists(path):
    raise FileNotFoundError("No records file {}.".format(path))
  try:
    arrays = files.read_npz(path)
  except (ValueError, OSError) as error:
    raise RecordsError("{} is not a records file: {}".format(path, error))
  if "losses" not in arrays or "settings" not in arrays:
    raise RecordsError("{} is not a records file: it has {} but needs losses "
                       "and settings.".format(path, sorted(arrays)))
  losses = arrays["losses"]
  if (losses.ndim != 3 or 0 in losses.shape or
      not np.issubdtype(losses.dtype, np.number)):
    raise RecordsError(
        "{} is not a records file: its losses are {} of shape {}, not numbers "
        "[epochs, steps + 1, particles] with none of them 0.".format(
            path, losses.dtype, list(losses.shape)))
  epochs, points, particles = losses.shape
  for name, shape in (("final_row_losses", [epochs, particles, None]),
                      ("best_curve", [epochs, points])):
    if name in arrays and (
        arrays[name].ndim != len(shape) or any(
            want not in (None, got)
            for want, got in zip(shape, arrays[name].shape)) or
        not np.issubdtype(arrays[name].dtype, np.number)):
      raise RecordsError(
          "{} is not a records file: its {} are {} of shape {}, which does "
          "not fit its losses of shape {}.".format(
              path, name, arrays[name].dtype, list(arrays[name].shape),
              list(losses.shape)))
  try:
    settings = json.loads(str(arrays.pop("settings")))
  except (ValueError, RecursionError) as error:
    raise RecordsError("{} is not a records file: its settings are not "
                       "JSON: {}".format(path, error or "nested too deep"))
  if not isinstance(settings, dict):
    raise RecordsError("{} is not a records file: its settings are a JSON "
                       "{}, not an object.".format(path,
                                                   type(settings).__name__))
  _check_settings(path, settings)
  return arrays, settings


# The settings the tables and plots read, and what each may be (or None).
_SETTING_TYPES = {
    "optimizer": (str, "a name"), "problem": (str, "a problem name"),
    "seed": (int, "an integer"), "num_steps": (int, "an integer"),
    "num_epochs": (int, "an integer"),
    "learning_rate": ((int, float), "a number"),
    "swarm_options": (dict, "an object of swarm options"),
}


def _check_settings(path, settings):
  """Raises RecordsError for a setting of another type than evaluate.py
  writes, naming it."""
  for name, (kinds, expected) in _SETTING_TYPES.items():
    value = settings.get(name)
    if value is not None and (isinstance(value, bool) or
                              not isinstance(value, kinds)):
      raise RecordsError("{} is not a records file: its settings' {} is {}, "
                         "expected {}.".format(path, name,
                                               json.dumps(value)[:60],
                                               expected))
  particles = (settings.get("swarm_options") or {}).get("num_particles")
  if particles is not None and not checks.is_integer(particles, 1):
    raise RecordsError("{} is not a records file: its settings' "
                       "swarm_options.num_particles is {}, expected a "
                       "positive integer.".format(path,
                                                  json.dumps(particles)))


def scored_losses(arrays):
  """What a records file's figures are computed from.

  Args:
    arrays: the arrays of `read`.

  Returns:
    Losses as `scores` takes them: [epochs, 1, particles, rows] from
    `final_row_losses`, or the per-particle `losses` of a record written
    before it existed (one row).
  """
  if "final_row_losses" in arrays:
    return np.asarray(arrays["final_row_losses"], np.float64)[:, np.newaxis]
  return np.asarray(arrays["losses"], np.float64)


def best_curve(arrays):
  """A records file's curve: `scores.best_curve` at every step.

  Args:
    arrays: the arrays of `read`.

  Returns:
    float64 array [epochs, steps + 1]: `best_curve`, or for a record written
    before it existed, its per-particle `losses` scored as one row.
  """
  if "best_curve" in arrays:
    return np.asarray(arrays["best_curve"], np.float64)
  return scores.best_curve(arrays["losses"])


def summary(losses):
  """Final-loss figures of an evaluation, under `scores`' rule.

  Args:
    losses: an `Evaluation`'s `row_losses` [epochs, steps + 1, particles,
      rows], `scored_losses` of a records file, or per-particle losses
      [epochs, steps + 1, particles] (one row).

  Returns:
    A dict: `final` (mean over start sets of the best particle's final
    loss), `final_std` (its standard deviation over start sets),
    `start_sets` (how many), `log_final` (log10 of `final` under
    `scores.log_final`: NaN when diverged or negative, -inf for 0),
    `status` (`scores.status` of `final`: a run whose `final` is NaN or
    infinite is "diverged"), `final_by_mean` (`scores.best_particle_by_mean`,
    the older figure) and `particle_means` (each particle's mean final
    loss over epochs and rows).
  """
  losses = scores.as_row_losses(losses)
  mean = scores.mean_final(losses)
  return {
      "final": mean,
      "log_final": scores.log_final(mean),
      "status": scores.status(mean),
      "final_std": scores.final_std(losses),
      "start_sets": int(scores.start_set_finals(losses).size),
      "final_by_mean": scores.best_particle_by_mean(losses),
      "particle_means": [float(v) for v in np.mean(losses[:, -1],
                                                   axis=(0, 2))],
  }
