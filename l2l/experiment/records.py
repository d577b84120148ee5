"""Records files: what one evaluation measured, in a form a paper can use.

A record is an `.npz` file (no pickles) with the arrays `losses` [epochs,
steps + 1, particles] and `seconds` [epochs], optionally `positions`
[recorded epochs, steps + 1, particles, coordinates], and `settings`, a JSON
string with the optimizer, problem, learning rate, seeds, step and epoch
counts, tuning results, the versions of everything that produced it and
`final_status` ("diverged", "negative" or "finite"; see scores.py).
"""

import datetime
import io
import json
import os
import platform
import re
import sys
import zipfile
import zlib

import numpy as np

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
      "python": platform.python_version(),
      "tensorflow": tensorflow.__version__,
      "sonnet": sonnet.__version__,
      "numpy": np.__version__,
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
      name the file. Versions, the command line and the time are added.
      Non-finite floats are kept as the text "inf", "-inf" or "nan".

  Returns:
    The path written.
  """
  os.makedirs(directory, exist_ok=True)
  settings = dict(settings)
  if "versions" not in settings:
    settings["versions"] = versions()
  settings.setdefault("command", " ".join(sys.argv))
  created = datetime.datetime.now(datetime.timezone.utc)
  settings.setdefault("created", created.isoformat(timespec="seconds"))
  # The verdict travels with the numbers, so no reader mistakes a diverged
  # run's NaN for a score.
  settings["final_status"] = summary(evaluation.losses)["status"]
  arrays = {"losses": np.asarray(evaluation.losses, np.float64),
            "seconds": np.asarray(evaluation.seconds, np.float64),
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
    with zipfile.ZipFile(path):
      pass  # np.load reads other formats too; a records file is a zip.
    with np.load(path, allow_pickle=False) as data:
      arrays = {key: data[key] for key in data.files}
  except (ValueError, OSError, EOFError, zipfile.BadZipFile,
          zlib.error) as error:
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
  try:
    settings = json.loads(str(arrays.pop("settings")))
  except ValueError as error:
    raise RecordsError("{} is not a records file: its settings are not "
                       "JSON: {}".format(path, error))
  if not isinstance(settings, dict):
    raise RecordsError("{} is not a records file: its settings are a JSON "
                       "{}, not an object.".format(path,
                                                   type(settings).__name__))
  return arrays, settings


def summary(losses):
  """Final-loss figures of a records file's `losses`.

  Args:
    losses: array [epochs, steps + 1, particles].

  Returns:
    A dict: `final` (mean over epochs of the best particle's final loss),
    `log_final` (its log10 under `scores.log_final`: NaN when diverged or
    negative, -inf for 0), `status` (`scores.status` of `final`: a run whose
    `final` is NaN or infinite is "diverged"), `particle_means` (each
    particle's mean final loss) and `final_std`.
  """
  best = scores.best_final_losses(losses)
  mean = scores.mean_final(losses)
  with np.errstate(invalid="ignore"):  # inf - inf in a diverged run's std.
    final_std = float(np.std(best))
  return {
      "final": mean,
      "log_final": scores.log_final(mean),
      "status": scores.status(mean),
      "final_std": final_std,
      "particle_means": [float(v) for v in np.mean(
          np.asarray(losses, np.float64)[:, -1, :], 0)],
  }
