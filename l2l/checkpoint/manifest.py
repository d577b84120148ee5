"""The manifest of a saved optimizer: what its `.l2l` files are and how to use them.

`MetaOptimizer.save` writes `manifest.json` beside the `.l2l` files, so that a
saved directory says by itself which nets it holds, how each was configured,
which variables each net drives, the swarm options, the library version and
what it was trained on. Readers (evaluation, the drop-in optimizer) use it in
place of the problem's configuration; a directory without one (DeepMind's and
LOIS's released files, older saves) loads as before.

The net assignment is kept as a rule that applies to any model's variables,
not as the training problem's variable names. It is a list of entries, the
first entry that matches a variable deciding its net:

    {"net": "cw", "match": "everything"}
    {"net": "conv", "match": "rank", "ranks": [4]}
    {"net": "fc", "match": "pattern", "pattern": "^mlp/"}
    {"net": null, "match": "pattern", "pattern": "^(?:embedding)$"}

A pattern is a regular expression searched in the variable's name (without
the `:0` suffix). An entry whose net is null (None) keeps the variables it
matches fixed: training left them out of every net's assignment, so the
evaluation and the drop-in optimizers leave them alone too.

A save writes several files, each atomically, the manifest last; the
manifest records the sha256 of each file it describes (`file_digests`), so
that a save cut short between two files (a kill, a full disk), which would
pair files of two epochs, is refused when read instead of used.
"""

import contextlib
import json
import os
import re
import time

from absl import logging

from l2l import checks
from l2l import files
from l2l.checkpoint import l2l_file
from l2l.swarm import config as swarm_config

FILENAME = "manifest.json"
# Where train.py keeps the state a run resumes from, inside its save path.
TRAINING_STATE_DIRECTORY = "training_state"
TRAINING_STATE_FILE = "state.npz"
# The layout of the manifest; readers refuse a newer one.
FORMAT_VERSION = 1

_MATCH_KINDS = ("everything", "rank", "pattern")
_REQUIRED_KEYS = ("format_version", "nets", "assignment", "swarm",
                  "library_version")


# How often `read_unsaved` reads a saved optimizer that a run keeps saving
# into, and how long it waits between reads.
READ_ATTEMPTS = 5
REREAD_SECONDS = 0.2


class ManifestError(ValueError):
  """A manifest that cannot be read or does not describe the optimizer."""


def path_in(directory):
  """The manifest's path in a saved optimizer's directory."""
  return os.path.join(os.fspath(directory), FILENAME)


def json_safe(value):
  """A copy of `value` that `json` writes and reads back unchanged.

  Tuples become lists and numpy scalars plain numbers.

  Args:
    value: nested dicts, lists, tuples, strings, numbers, booleans, None.

  Returns:
    The converted value.

  Raises:
    ValueError: for anything else (an array, an initializer object...).
  """
  if isinstance(value, dict):
    return {str(key): json_safe(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [json_safe(item) for item in value]
  if value is None or isinstance(value, (bool, str)):
    return value
  if isinstance(value, int):
    return int(value)
  if isinstance(value, float):
    return float(value)
  if hasattr(value, "item") and getattr(value, "shape", None) == ():
    return json_safe(value.item())
  raise ValueError("{!r} cannot be written to a manifest.".format(value))


def net_entry(config):
  """A net's factory config as the manifest keeps it.

  The checkpoint path is left out (the weights are the `.l2l` file beside
  the manifest), and so is an initializer given as values or an object: the
  saved weights replace it.

  Args:
    config: `{"net": ..., "net_options": {...}, "net_path": ...}`.

  Returns:
    `{"net": ..., "net_options": {...}}`, JSON-safe.
  """
  options = dict(config.get("net_options") or {})
  if not isinstance(options.get("initializer", ""), str):
    del options["initializer"]
  return {"net": config["net"], "net_options": json_safe(options)}


def rule_from_assignments(net_ids, names, ranks, assigned):
  """Turns one problem's net assignment into a rule for any model.

  One net drives everything. Several nets are told apart by tensor rank when
  their ranks do not overlap (DeepMind's cifar-multi: the rank-4 convolution
  kernels on one net, the rest on another), and otherwise by the exact
  variable names.

  Variables the assignment leaves out stay fixed in training; the rule
  names them first, in a fixed entry, so that they stay fixed wherever it
  is applied.

  Args:
    net_ids: the net ids, in assignment order.
    names: every optimizee variable's name.
    ranks: every optimizee variable's rank.
    assigned: for each net id, the indices of its variables.

  Returns:
    The rule: a list of entries (see the module docstring).

  Raises:
    ValueError: if a variable is assigned to several nets (training moves
      it by the sum of their steps, which a rule of one net per variable
      cannot say).
  """
  owners = {}
  for net_id, subset in zip(net_ids, assigned):
    for i in subset:
      owners.setdefault(i, []).append(net_id)
  shared = {i: ids for i, ids in owners.items() if len(ids) > 1}
  if shared:
    i, ids = next(iter(shared.items()))
    raise ValueError(
        "net_assignments put variable {} under nets {}: it moves by the sum "
        "of their steps, which a saved optimizer cannot record (its rule "
        "gives each variable one net); assign each variable to one "
        "net.".format(names[i], " and ".join(repr(n) for n in ids)))
  left_out = [i for i in range(len(names)) if i not in owners]
  fixed = ([{"net": None, "match": "pattern", "pattern": _exact(names,
                                                                  left_out)}]
           if left_out else [])
  if len(net_ids) == 1:
    return fixed + [{"net": net_ids[0], "match": "everything"}]
  rank_sets = [sorted({ranks[i] for i in subset}) for subset in assigned]
  all_ranks = [rank for rank_set in rank_sets for rank in rank_set]
  if len(all_ranks) == len(set(all_ranks)):
    return fixed + [{"net": net_id, "match": "rank", "ranks": rank_set}
                    for net_id, rank_set in zip(net_ids, rank_sets)]
  return fixed + [{"net": net_id, "match": "pattern",
                   "pattern": _exact(names, subset)}
                  for net_id, subset in zip(net_ids, assigned) if subset]


def _exact(names, indices):
  """A pattern matching exactly the names at `indices`."""
  return "^(?:{})$".format("|".join(re.escape(names[i]) for i in indices))


def _entry_matches(entry, name, rank):
  kind = entry["match"]
  if kind == "everything":
    return True
  if kind == "rank":
    return rank in entry["ranks"]
  return re.search(entry["pattern"], name) is not None


def assign(rule, names, ranks, where="the optimizer"):
  """Applies a rule to a model's variables.

  Args:
    rule: a list of entries (see the module docstring).
    names: the variables' names.
    ranks: their ranks.
    where: what the rule belongs to, for the error message.

  Returns:
    `(net_assignments, net_of)`: DeepMind's `[(net_id, [names])]`, one entry
    per net the variables use, and for each variable its net id (None for
    a variable the rule keeps fixed, which no assignment names).

  Raises:
    ValueError: if no entry covers some variable, naming them all.
  """
  net_of = []
  uncovered = []
  for name, rank in zip(names, ranks):
    entry = next((entry for entry in rule
                  if _entry_matches(entry, name, rank)), None)
    if entry is None:
      uncovered.append("{} (rank {})".format(name, rank))
    net_of.append(None if entry is None else entry["net"])
  if uncovered:
    raise ValueError(
        "No net of {} covers the variables {}; its assignment rule is {}."
        .format(where, ", ".join(uncovered), json.dumps(rule)))
  assignments = {}
  for name, net_id in zip(names, net_of):
    if net_id is not None:
      assignments.setdefault(net_id, []).append(name)
  return list(assignments.items()), net_of


def build(nets, assignment, swarm, library_version, problem=None,
          training=None):
  """The manifest of a saved optimizer.

  Args:
    nets: `{net_id: factory config}`.
    assignment: the assignment rule.
    swarm: the swarm options as a dict.
    library_version: `l2l.__version__`.
    problem: the problem name it was trained on, or None.
    training: the training settings (a JSON-safe dict), or None.

  Returns:
    A JSON-safe dict.
  """
  return {
      "format_version": FORMAT_VERSION,
      "library_version": library_version,
      "nets": {net_id: net_entry(config) for net_id, config in nets.items()},
      "assignment": json_safe(assignment),
      "swarm": json_safe(swarm),
      "problem": problem,
      "training": json_safe(training or {}),
  }


def write(directory, manifest, saved_files=()):
  """Writes `manifest` to `<directory>/manifest.json`, atomically.

  Args:
    directory: the saved optimizer's directory.
    manifest: the dict `build` returns.
    saved_files: paths of the files just saved beside it, whose digests it
      records (`file_digests`): write it after them.

  Returns:
    The path written.
  """
  manifest = dict(manifest)
  if saved_files:
    manifest["file_digests"] = {os.path.basename(path): files.sha256_of(path)
                                for path in saved_files}
  check_writable(directory, manifest)
  text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
  return files.write_atomic(path_in(directory), text.encode("utf-8"))


def check_writable(directory, manifest):
  """Raises ManifestError unless `write(directory, manifest)` may go ahead:
  the manifest is one `read` takes back, and what it would replace is
  this library's (`check_replaceable`).

  `MetaOptimizer.save` checks before it writes any file, since nets left
  without their manifest would load as DeepMind's default net.

  Args:
    directory: where the manifest would be written.
    manifest: the dict `build` returns.

  Raises:
    ManifestError: (a ValueError) naming the file and what is wrong.
  """
  _validate(manifest, path_in(directory))
  check_replaceable(directory)


def check_replaceable(directory):
  """Raises ManifestError unless a manifest may be written in `directory`.

  It may where there is none, or where the one there is this library's (an
  optimizer saved earlier, which the caller chose to replace). A file of
  that name that is not, a user's own `manifest.json` for instance, is
  never replaced.

  Args:
    directory: where the manifest would be written.

  Raises:
    ManifestError: (a ValueError) naming the file and why it stays.
  """
  path = path_in(directory)
  if not os.path.lexists(path):
    return
  if not os.path.isfile(path):
    raise ManifestError("{} is not a file, so it is no l2l manifest, and l2l "
                        "will not replace it: save into another "
                        "directory.".format(path))
  try:
    existing = _parsed(path)
  except ManifestError:
    existing = None
  if not (isinstance(existing, dict) and "format_version" in existing and
          "nets" in existing):
    raise ManifestError("{} is not an l2l manifest (no JSON object with "
                        "format_version and nets), and l2l will not replace "
                        "it: save into another directory.".format(path))


def assignment_problem(rule, net_ids):
  """What is wrong with an assignment rule, or None.

  Args:
    rule: the rule, a list of entries (see the module docstring).
    net_ids: the ids of the nets it may name.

  Returns:
    A sentence naming the first entry at fault and what it needs, or None
    for a rule `assign` can apply.
  """
  if not isinstance(rule, list) or not rule:
    return "'assignment' must be a non-empty list of rule entries."
  for entry in rule:
    if not isinstance(entry, dict) or "net" not in entry or not (
        entry["net"] is None or
        (isinstance(entry["net"], str) and entry["net"] in net_ids)):
      return ("assignment entry {!r} must name one of the nets {}, or null "
              "for variables that stay fixed.".format(
                  entry, ", ".join(sorted(net_ids))))
    kind = entry.get("match")
    if kind not in _MATCH_KINDS:
      return "assignment entry {!r}: 'match' must be one of {}.".format(
          entry, ", ".join(_MATCH_KINDS))
    if kind == "rank" and not (
        isinstance(entry.get("ranks"), list) and
        all(isinstance(r, int) for r in entry["ranks"])):
      return "assignment entry {!r} needs 'ranks', a list of integers.".format(
          entry)
    if kind == "pattern":
      try:
        re.compile(entry.get("pattern"))
      except (TypeError, re.error) as error:
        return ("assignment entry {!r} needs 'pattern', a regular expression "
                "({}).".format(entry, error))
  return None


@contextlib.contextmanager
def explaining_a_missing_manifest(directory, read_as):
  """Names a missing manifest in a ValueError raised within.

  Such an error says a directory's files do not fit the configuration they
  were read with; without a manifest that configuration was a guess, which
  the message then names. A directory with a manifest, and a file that is
  no checkpoint (`l2l_file.CheckpointError`, which says so itself), leave
  the error unchanged.

  Args:
    directory: the directory read, or None (nothing was).
    read_as: what its files are read as when it has no manifest.

  Yields:
    Nothing.

  Raises:
    ValueError: the error raised within, with the missing manifest named.
  """
  try:
    yield
  except l2l_file.CheckpointError:
    raise
  except ValueError as error:
    # Read only now: the manifest is checked against its files' digests.
    if directory is None or read(directory) is not None:
      raise
    raise ValueError("{} (There is no {} in {}, so it was read as {}: copy "
                     "{} along with the .l2l files.)".format(
                         error, FILENAME, directory, read_as,
                         FILENAME)) from error


def _parsed(path):
  """The JSON in the file `path`; ManifestError if it holds none."""
  try:
    with open(path, "rb") as stream:
      return json.loads(stream.read().decode("utf-8"))
  except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
    raise ManifestError("{}: not a JSON manifest ({}).".format(
        path, error or "nested too deep")) from error


def _fail(path, message):
  raise ManifestError("{}: {}".format(path, message))


def _validate(manifest, path):
  """Raises ManifestError unless `manifest` has the layout `build` writes."""
  if not isinstance(manifest, dict):
    _fail(path, "expected a JSON object, got {}.".format(
        type(manifest).__name__))
  missing = [key for key in _REQUIRED_KEYS if key not in manifest]
  if missing:
    _fail(path, "missing keys {}.".format(", ".join(missing)))
  version = manifest["format_version"]
  if not checks.is_integer(version, 1):
    _fail(path, "format_version must be an integer >= 1, got {}.".format(
        json.dumps(version)[:60]))
  if version > FORMAT_VERSION:
    _fail(path, "format_version {!r} is not one this library reads (up to "
          "{}); upgrade l2l.".format(version, FORMAT_VERSION))
  nets = manifest["nets"]
  if not isinstance(nets, dict) or not nets:
    _fail(path, "'nets' must map net ids to configs.")
  for net_id, config in nets.items():
    if (not isinstance(config, dict) or not isinstance(config.get("net"), str)
        or not isinstance(config.get("net_options", {}), dict)):
      _fail(path, "net {!r} must be {{'net': name, 'net_options': {{...}}}}, "
            "got {!r}.".format(net_id, config))
  problem = assignment_problem(manifest["assignment"], nets)
  if problem:
    _fail(path, problem)
  if not isinstance(manifest["swarm"], dict):
    _fail(path, "'swarm' must be a JSON object of swarm options.")
  unknown = sorted(set(manifest["swarm"]) -
                   swarm_config.SwarmConfig.option_names())
  if unknown:
    _fail(path, "'swarm' has options this library does not know: {}.".format(
        ", ".join(unknown)))
  problem = manifest.get("problem")
  if problem is not None and not isinstance(problem, str):
    _fail(path, "'problem' must be a problem name, got {}.".format(
        json.dumps(problem)[:60]))
  training = manifest.get("training")
  if training is not None and not isinstance(training, dict):
    _fail(path, "'training' must be a JSON object of training settings, got "
          "{}.".format(json.dumps(training)[:60]))
  seed = (training or {}).get("seed")
  if seed is not None and not checks.is_integer(seed):
    _fail(path, "training's 'seed' must be an integer, got {}.".format(
        json.dumps(seed)[:60]))
  module = (training or {}).get("problem_module")
  if module is not None and not isinstance(module, str):
    _fail(path, "training's 'problem_module' must be the path of a Python "
          "file, got {}.".format(json.dumps(module)[:60]))
  digests = manifest.get("file_digests", {})
  if not isinstance(digests, dict) or not all(
      isinstance(name, str) and os.path.basename(name) == name and
      isinstance(digest, str) for name, digest in digests.items()):
    _fail(path, "'file_digests' must map file names to sha256 digests.")


def _check_files(manifest, directory, path):
  """Raises ManifestError unless each file the manifest describes is the
  one it was written with (a save cut short leaves files of two saves)."""
  for name, digest in sorted(manifest.get("file_digests", {}).items()):
    try:
      intact = files.sha256_of(os.path.join(directory, name)) == digest
    except OSError:
      intact = False
    if not intact:
      _fail(path, "{} is missing or not the file this manifest was saved "
            "with: the save was cut short (a kill, a full disk) or the file "
            "was changed since. Resume the run that wrote it (its train.py "
            "command with --resume) or save again; for a file replaced on "
            "purpose, delete 'file_digests' from the manifest.".format(name))


def file_identities(directory):
  """What tells a directory's saved files from those of a later save.

  A save replaces each file it writes by a rename (`files.atomic_writer`),
  so a file read while its identity stayed the same is the file that was
  there before and after; a reader compares these before and after it
  reads, to tell whether a run saved into the directory meanwhile.

  Args:
    directory: a saved optimizer's directory.

  Returns:
    `{file name: (device, inode, size, modification time)}` of the
    manifest and each `.l2l` file there.
  """
  identities = {}
  with contextlib.suppress(OSError):
    for name in sorted(os.listdir(directory)):
      if name == FILENAME or name.endswith(".l2l"):
        with contextlib.suppress(OSError):
          info = os.stat(os.path.join(directory, name))
          identities[name] = (info.st_dev, info.st_ino, info.st_size,
                              info.st_mtime_ns)
  return identities


def read_unsaved(path, read):
  """`read()`, which reads the saved optimizer in `path`, done again until
  no save landed in `path` while it ran.

  A run saving into the directory (train.py with its --save_path there)
  replaces the `.l2l` files one by one, then the manifest: a read across a
  save could pair the nets of two saves, or the files of one with the
  manifest of another, so a read that saw the files change is done again.
  One caught between a save's files and its manifest reads as a save cut
  short (`ManifestError`): it is done again if the files changed
  within a moment, and raised if not.

  Args:
    path: the saved optimizer's directory.
    read: reads it (every file and the manifest) and returns what it read.

  Returns:
    What `read()` returned on a read no save landed in.

  Raises:
    ManifestError: for files that stay as a save cut short left them.
    ValueError: if a save landed in each of `READ_ATTEMPTS` reads.
  """
  for _ in range(READ_ATTEMPTS):
    before = file_identities(path)
    try:
      result = read()
    except ManifestError:
      time.sleep(REREAD_SECONDS)
      if file_identities(path) == before:
        raise
    else:
      if file_identities(path) == before:
        return result
    logging.warning("%s was saved into while it was read (a run is saving "
                    "there); reading it again.", path)
    time.sleep(REREAD_SECONDS)
  raise ValueError(
      "{} was saved into during each of {} reads: a run is saving there "
      "faster than it can be read. Copy the optimizer's files elsewhere (or "
      "wait for the run to end) and use the copy.".format(
          path, READ_ATTEMPTS))


def read(directory, whole=True):
  """Reads and checks the manifest of a saved optimizer's directory.

  Args:
    directory: a directory written by `MetaOptimizer.save`.
    whole: whether the optimizer is to be used, so must be whole (the two
      checks below); a run resuming in the directory reads its manifest
      without them, since its next save rewrites every file.

  Returns:
    The manifest dict, or None when the directory has none (DeepMind's and
    LOIS's files, older saves).

  Raises:
    ManifestError: (a ValueError) if the file is not valid JSON or not a
      manifest, naming the file and what is wrong; if a file it describes
      is not the one saved with it; or if there is none but a train.py run
      left its training state there (it stopped before its first save
      was whole).
  """
  path = path_in(directory)
  if os.path.lexists(path) and not os.path.isfile(path):
    raise ManifestError("{} is not a file; expected the JSON manifest of the "
                        "optimizer saved in {}.".format(path, directory))
  if not os.path.isfile(path):
    state_directory = os.path.join(directory, TRAINING_STATE_DIRECTORY)
    if whole and os.path.isdir(state_directory):
      # Killed while it wrote its first state (or that write failed), a
      # run has no state to resume from.
      remedy = ("Resume it (its train.py command with --resume) to save one"
                if os.path.isfile(os.path.join(state_directory,
                                              TRAINING_STATE_FILE))
                else "It had not yet kept a training state either: start it "
                "again (its train.py command, without --resume)")
      raise ManifestError(
          "{} holds a train.py run's {}/ but no {}: the run stopped before "
          "it first saved a whole optimizer. {}.".format(
              directory, TRAINING_STATE_DIRECTORY, FILENAME, remedy))
    return None
  manifest = _parsed(path)
  _validate(manifest, path)
  if whole:
    _check_files(manifest, directory, path)
  manifest.setdefault("problem", None)
  if manifest.get("training") is None:
    manifest["training"] = {}
  return manifest


def net_configs(manifest, directory):
  """The `networks.factory` configs of a manifest's nets, with their files.

  Args:
    manifest: the dict `read` returns.
    directory: where its `.l2l` files are.

  Returns:
    `{net_id: {"net": ..., "net_options": ..., "net_path": ...}}`.

  Raises:
    ValueError: if a net's `.l2l` file is missing.
  """
  return {net_id: dict(config, net_options=dict(config.get("net_options", {})),
                       net_path=l2l_file.find(directory, net_id))
          for net_id, config in manifest["nets"].items()}
