"""Safe reading and atomic writing of ``.l2l`` optimizer checkpoints.

An ``.l2l`` file is a pickle of ``{module_name: {variable_name: ndarray}}``,
for example ``{"lstm_1": {"w_gates": ..., "b_gates": ...}, "linear": {...}}``.
The released DeepMind and Shen-Lab files were written by Python 2 or 3 with
numpy 1.x, some of them through dill.

Pickles can run arbitrary code, so `load` uses an unpickler that resolves only
a short allowlist of globals: numpy array/dtype/scalar reconstruction,
``collections.defaultdict``/``OrderedDict``, ``dict``/``list`` (defaultdict
factories), the byte-string helpers Python 3 uses at protocols 0-2, and
restricted stand-ins for the few ``dill._dill`` helpers that dill-written
checkpoints call. dill itself is never imported or needed. Everything else is
refused with a `CheckpointError` before it can be called.

`save` writes a plain protocol-2 pickle that references
``numpy.core.multiarray`` (not numpy 2's ``numpy._core``), so scripts running
numpy 1.x can read it, and replaces the target file atomically.
"""

import collections
import errno
import importlib
import io
import os
import pickle
import pickletools
import reprlib

import numpy as np

from l2l import files

__all__ = ["CheckpointError", "checkpoint_path", "load", "load_record",
           "save"]

_LAYOUT = "{module_name: {variable_name: numpy.ndarray}}"

# bool, signed/unsigned integer, float, complex (networks.factory then
# requires floating point of a net's parameters).
_NUMERIC_KINDS = "biufc"

# Protocol 2 is readable by Python 2 and every Python 3.
_PROTOCOL = 2

# Mode for newly created checkpoints (mkstemp would leave them 0600).


# Bounds checked before anything is unpickled. Real checkpoints nest about
# six deep (dict, dict, array reduction, its state tuple, shape tuple) and
# hold a few megabytes; a crafted one can nest deep enough that hashing a
# key overflows the C stack.
MAX_NESTING = 32
MAX_BYTES = 1 << 30

# Opcodes that change the container under their arguments instead of
# building a new object: the container's depth is at least one more than
# what is put in it.
_IN_PLACE = frozenset(["APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS",
                       "BUILD"])
_MARK = object()


class CheckpointError(ValueError):
  """A file (or data to be saved) is not a valid l2l checkpoint."""


class _Refused(Exception):
  """Internal: the pickle asked for something outside the allowlist."""

  def __init__(self, what):
    super().__init__(what)
    self.what = what


def _numpy_internal(name):
  """Imports numpy's private module `name` without the numpy.core alias.

  numpy 2 renamed ``numpy.core`` to ``numpy._core``; going through the old
  name there can emit DeprecationWarnings, which `load` must not do.
  """
  if int(np.__version__.split(".")[0]) >= 2:
    return importlib.import_module("numpy._core." + name)
  return importlib.import_module("numpy.core." + name)


_multiarray = _numpy_internal("multiarray")
_reconstruct = _multiarray._reconstruct  # pylint: disable=protected-access
_scalar = _multiarray.scalar


class _Shim:
  """A callable handed to the unpickler in place of a real function.

  Instances cannot be modified by the pickle: BUILD calls `__setstate__`,
  which refuses, and attribute assignment refuses too. Plain Python
  functions would instead let a file rewrite their attributes.
  """

  __slots__ = ("_name", "_func")

  def __init__(self, name, func):
    object.__setattr__(self, "_name", name)
    object.__setattr__(self, "_func", func)

  def __call__(self, *args):
    return self._func(*args)

  def __setattr__(self, key, value):
    raise _Refused(f"setting attribute {key!r} of {self._name}")

  def __setstate__(self, state):
    raise _Refused(f"setting the state of {self._name}")

  def __repr__(self):
    return f"<l2l checkpoint stand-in for {self._name}>"


class _ModuleRef:
  """Placeholder that dill's `_import_module` returns for allowed modules."""

  __slots__ = ("name",)

  def __init__(self, name):
    object.__setattr__(self, "name", name)

  def __setattr__(self, key, value):
    raise _Refused(f"setting attribute {key!r} of module {self.name!r}")

  def __setstate__(self, state):
    raise _Refused(f"setting the state of module {self.name!r}")

  def __repr__(self):
    return f"<l2l checkpoint placeholder for module {self.name!r}>"


def _codecs_encode(text, encoding="utf-8", *rest):
  # Python 3 pickles bytes at protocols 0-2 as _codecs.encode(str, "latin1").
  normalized = str(encoding).lower().replace("_", "-")
  if (not isinstance(text, str) or rest or
      normalized not in ("latin1", "latin-1", "iso-8859-1")):
    raise _Refused(f"_codecs.encode with encoding {encoding!r}")
  return text.encode("latin1")


def _bytes(*args):
  # Python 3 pickles b"" at protocols 0-2 as bytes(); refuse bytes(n),
  # which would only be a way to allocate memory.
  if not args:
    return b""
  if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
    return bytes(args[0])
  raise _Refused("builtins.bytes with arguments other than a byte string")


def _frombuffer(buf, dtype, shape, order, axis_order=None):
  # numpy's protocol-5 array reduction; re-implemented so that no numpy
  # Python function is exposed to the pickle.
  transposed = order == "K" and isinstance(axis_order, tuple)
  if (not isinstance(buf,
                     (bytes, bytearray)) or not isinstance(dtype, np.dtype) or
      not isinstance(shape, tuple) or not (transposed or order in ("C", "F"))):
    raise _Refused("numpy._frombuffer with unexpected arguments")
  array = np.frombuffer(buf, dtype=dtype)
  if transposed:
    return array.reshape(shape, order="C").transpose(axis_order)
  return array.reshape(shape, order=order)


# Spellings of each module across Python 2/3, numpy 1/2 and dill versions,
# mapped to one canonical name used by `_ALLOWED`.
_MODULES = {
    "numpy": "numpy",
    "numpy.core.multiarray": "numpy.multiarray",
    "numpy._core.multiarray": "numpy.multiarray",
    "numpy.core._multiarray_umath": "numpy.multiarray",
    "numpy._core._multiarray_umath": "numpy.multiarray",
    "numpy.core.numeric": "numpy.numeric",
    "numpy._core.numeric": "numpy.numeric",
    "collections": "collections",
    "builtins": "builtins",
    "__builtin__": "builtins",
    "_codecs": "_codecs",
    "dill._dill": "dill",
    "dill.dill": "dill",
}

# Type names dill's `_load_type` may ask for, old ("DictType") and new style.
_DILL_TYPES = {
    "dict": dict,
    "DictType": dict,
    "list": list,
    "ListType": list,
    "tuple": tuple,
    "TupleType": tuple,
    "set": set,
    "SetType": set,
    "frozenset": frozenset,
    "FrozenSetType": frozenset,
}


def _dill_load_type(name, *rest):
  if rest or not isinstance(name, str) or name not in _DILL_TYPES:
    raise _Refused(f"dill type {name!r}")
  return _DILL_TYPES[name]


def _dill_import_module(name, *rest):
  # dill passes an optional `safe` flag; anything more is not dill.
  if len(rest) > 1 or not isinstance(name, str) or name not in _MODULES:
    raise _Refused(f"dill module import {name!r}")
  return _ModuleRef(name)


def _dill_get_attr(obj, name, *rest):
  if rest or not isinstance(obj, _ModuleRef) or not isinstance(name, str):
    raise _Refused(f"dill attribute lookup {name!r} on a {type(obj).__name__}")
  return _resolve(obj.name, name)


def _dill_create_array(func, args, state, npdict=None):
  # dill pickles arrays as _create_array(_reconstruct, args, state, None).
  if func is not _reconstruct or not isinstance(args, tuple) or npdict:
    raise _Refused("dill _create_array with unexpected arguments")
  array = func(*args)
  array.__setstate__(state)
  return array


_ALLOWED = {
    ("numpy.multiarray", "_reconstruct"):
        _reconstruct,
    ("numpy.multiarray", "scalar"):
        _scalar,
    ("numpy.numeric", "_frombuffer"):
        _Shim("numpy._frombuffer", _frombuffer),
    ("numpy", "ndarray"):
        np.ndarray,
    ("numpy", "dtype"):
        np.dtype,
    ("collections", "defaultdict"):
        collections.defaultdict,
    ("collections", "OrderedDict"):
        collections.OrderedDict,
    ("builtins", "dict"):
        dict,
    ("builtins", "list"):
        list,
    ("builtins", "bytes"):
        _Shim("builtins.bytes", _bytes),
    ("_codecs", "encode"):
        _Shim("_codecs.encode", _codecs_encode),
    ("dill", "_load_type"):
        _Shim("dill._dill._load_type", _dill_load_type),
    ("dill", "_import_module"):
        _Shim("dill._dill._import_module", _dill_import_module),
    ("dill", "_get_attr"):
        _Shim("dill._dill._get_attr", _dill_get_attr),
    ("dill", "_create_array"):
        _Shim("dill._dill._create_array", _dill_create_array),
}

# Globals a protocol-2 pickle written by `save` may contain.
_WRITTEN_GLOBALS = frozenset([
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("__builtin__", "bytes"),
])


def _resolve(module, name):
  """Returns the allowed object for `module.name`, or raises `_Refused`."""
  canonical = _MODULES.get(module)
  found = _ALLOWED.get((canonical, name)) if canonical else None
  if found is None:
    raise _Refused(f"global '{module}.{name}'")
  return found


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that resolves only allowlisted globals."""

  def find_class(self, module, name):
    return _resolve(module, name)


def _check_nesting(data, context):
  """Refuses a pickle whose objects would nest deeper than `MAX_NESTING`.

  Walks the opcodes (nothing is built) and tracks, for each stack entry and
  memo slot, how deep the object it stands for nests.

  Args:
    data: the pickle's bytes.
    context: message prefix naming the file.

  Raises:
    CheckpointError: for deep nesting or a stream that is not a pickle.
  """
  stack = []
  memo = {}
  try:
    for opcode, arg, _ in pickletools.genops(data):
      before = opcode.stack_before
      popped = []
      if pickletools.markobject in before:
        while stack and stack[-1] is not _MARK:
          popped.append(stack.pop())
        if not stack:
          raise ValueError("{} without a MARK".format(opcode.name))
        stack.pop()
        fixed = before.index(pickletools.markobject)
      else:
        fixed = len(before)
      for _ in range(fixed):
        if not stack or stack[-1] is _MARK:
          raise ValueError("{} on a short stack".format(opcode.name))
        popped.append(stack.pop())
      if opcode.name in _IN_PLACE:
        container, items = popped[-1], popped[:-1]
        depth = max([container] + [d + 1 for d in items])
      else:
        depth = max(popped) + 1 if popped else 0
      if depth > MAX_NESTING:
        raise CheckpointError(
            "{}: its objects nest more than {} deep (a checkpoint nests "
            "about 6)".format(context, MAX_NESTING))
      for item in opcode.stack_after:
        stack.append(_MARK if item is pickletools.markobject else depth)
      if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[arg] = stack[-1]
      elif opcode.name == "MEMOIZE":
        memo[len(memo)] = stack[-1]
      elif opcode.name in ("GET", "BINGET", "LONG_BINGET"):
        stack[-1] = memo.get(arg, 0)
      elif opcode.name == "DUP":
        stack[-1] = stack[-2]
  except CheckpointError:
    raise
  except (ValueError, TypeError, IndexError) as error:
    raise CheckpointError("{}: cannot unpickle it ({})".format(
        context, error)) from None


def _describe(value):
  kind = type(value)
  if kind.__module__ == "builtins":
    return f"a {kind.__name__}"
  return f"a {kind.__module__}.{kind.__qualname__}"


def _as_name(key, context, what):
  """Returns `key` as a str; Python 3 pickles may hold bytes keys."""
  if isinstance(key, bytes):
    try:
      return key.decode("utf-8")
    except UnicodeDecodeError:
      return key.decode("latin1")
  if isinstance(key, str):
    return key
  raise CheckpointError(
      f"{context}: {what} {reprlib.repr(key)} is {_describe(key)}, expected "
      f"a string (layout {_LAYOUT})")


def _as_array(value, context, name):
  """Returns `value` as a numeric ndarray or raises CheckpointError."""
  if isinstance(value, (np.ndarray, np.generic, bool, int, float, complex)):
    array = np.asarray(value)
    if array.dtype.kind in _NUMERIC_KINDS:
      return array
    what = f"an array of dtype {array.dtype}"
  else:
    what = _describe(value)
  raise CheckpointError(
      f"{context}: variable {name!r} is {what}, expected a numeric numpy "
      f"array (layout {_LAYOUT})")


def _named_entries(data, context, expected, what):
  """The `(str name, value)` pairs of an unpickled dict.

  Args:
   data: the unpickled object.
   context: message prefix naming the file, for errors.
   expected: what the file should hold, for the error.
   what: what its keys name, for the error.

  Returns:
   A list of pairs, in the dict's order.

  Raises:
   CheckpointError: if `data` is not a dict with string keys.
  """
  if not isinstance(data, dict):
    raise CheckpointError(f"{context}: expected {expected}, got "
                          f"{_describe(data)}")
  return [(_as_name(key, context, what), value) for key, value in data.items()]


def _normalize(data, context):
  """Validates a checkpoint structure and copies it into plain dicts.

  Args:
   data: the candidate ``{module: {variable: array}}`` mapping.
   context: message prefix naming the file, for errors.

  Returns:
   A plain ``dict`` of plain ``dict`` of numeric ``np.ndarray``.

  Raises:
   CheckpointError: if `data` does not have the checkpoint layout.
  """
  result = {}
  for module, variables in _named_entries(
      data, context, f"a dict of the form {_LAYOUT}", "module name"):
    if module in result:
      raise CheckpointError(f"{context}: duplicate module {module!r}")
    if not isinstance(variables, dict):
      raise CheckpointError(
          f"{context}: module {module!r} holds {_describe(variables)}, "
          f"expected a dict of variable name to numpy array "
          f"(layout {_LAYOUT})")
    arrays = {}
    for variable_key, value in variables.items():
      variable = _as_name(variable_key, context, "variable name")
      full_name = f"{module}/{variable}"
      if variable in arrays:
        raise CheckpointError(f"{context}: duplicate variable {full_name!r}")
      arrays[variable] = _as_array(value, context, full_name)
    result[module] = arrays
  return result


def checkpoint_path(directory, net_id):
  """Returns the checkpoint file name used for optimizer net `net_id`.

  Args:
   directory: directory holding the checkpoints.
   net_id: name of the optimizer net, e.g. "cw".

  Returns:
   ``os.path.join(directory, net_id + ".l2l")``.
  """
  return os.path.join(os.fspath(directory), net_id + ".l2l")


def find(directory, net_id):
  """The checkpoint of net `net_id` in a saved optimizer's directory.

  Args:
    directory: a directory written by `MetaOptimizer.save` (or train.py's
      `--save_path`, or DeepMind's and LOIS's released files).
    net_id: the net id, e.g. "cw".

  Returns:
    The path of `<directory>/<net_id>.l2l`.

  Raises:
    ValueError: if the directory or the file is missing, naming what was
      found instead.
  """
  path = checkpoint_path(directory, net_id)
  if os.path.isfile(path):
    return path
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    raise ValueError("{} is not a directory; expected a directory written by "
                     "MetaOptimizer.save (train.py --save_path).".format(
                         directory))
  if os.path.exists(path):
    raise ValueError("{} is not a file; expected the .l2l checkpoint of "
                     "optimizer {!r}.".format(path, net_id))
  found = sorted(f for f in os.listdir(directory) if f.endswith(".l2l") and
                 os.path.isfile(os.path.join(directory, f)))
  raise ValueError(
      "No checkpoint {!r} for optimizer {!r} in {}; found: {}. Expected a "
      "directory written by MetaOptimizer.save (train.py --save_path).".format(
          os.path.basename(path), net_id, directory,
          ", ".join(found) or "no .l2l files"))


def _unpickle(path):
  """Unpickles a user's file through the restricted unpickler.

  The file's size and the nesting of its objects are bounded
  (`MAX_BYTES`, `MAX_NESTING`) before anything is built.

  Args:
   path: the file (str or os.PathLike).

  Returns:
   The unpickled object, built only from allowlisted globals.

  Raises:
   FileNotFoundError: if `path` does not exist.
   CheckpointError: if the file is a directory, empty, too large, nested too
    deep or not a pickle, or references any global outside the allowlist.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    raise CheckpointError(f"{path} is a directory, not an l2l checkpoint "
                          f"file")
  try:
    stream = open(path, "rb")
  except FileNotFoundError:
    raise FileNotFoundError(errno.ENOENT, "l2l checkpoint file not found",
                            path) from None
  with stream:
    size = os.fstat(stream.fileno()).st_size
    if size == 0:
      raise CheckpointError(
          f"{path} is not an l2l checkpoint: the file is empty")
    if size > MAX_BYTES:
      raise CheckpointError(
          f"{path} is not an l2l checkpoint: it has {size} bytes, more than "
          f"the {MAX_BYTES} a checkpoint may have")
    raw = stream.read(MAX_BYTES + 1)
  if len(raw) > MAX_BYTES:
    raise CheckpointError(f"{path} is not an l2l checkpoint: it has more "
                          f"than {MAX_BYTES} bytes")
  _check_nesting(raw, f"{path} is not an l2l checkpoint")
  try:
    # latin1 turns Python 2 byte strings (array data included) into
    # str that numpy accepts as array state.
    return _RestrictedUnpickler(io.BytesIO(raw), encoding="latin1").load()
  except _Refused as refused:
    raise CheckpointError(
        f"{path} is not a trusted l2l checkpoint: refused "
        f"{refused.what}; a checkpoint may only contain numpy arrays "
        f"in nested dicts") from None
  except Exception as err:  # pylint: disable=broad-except
    # Corrupt input surfaces as many exception types.
    raise CheckpointError(
        f"{path} is not an l2l checkpoint: cannot unpickle it "
        f"({type(err).__name__}: {err})") from err


def _writeable(array):
  # Arrays rebuilt from immutable bytes can be read-only.
  return array if array.flags.writeable else array.copy()


def load(path):
  """Loads an ``.l2l`` checkpoint without executing code from the file.

  Args:
   path: the checkpoint file (str or os.PathLike).

  Returns:
   A plain ``dict`` ``{module_name: {variable_name: np.ndarray}}`` with str
   keys; defaultdicts become dicts and numpy scalars 0-d arrays.

  Raises:
   FileNotFoundError: if `path` does not exist.
   CheckpointError: if the file is empty or not a pickle, references any
    global outside the allowlist, or does not have the layout above.
  """
  path = os.fspath(path)
  result = _normalize(_unpickle(path), f"{path} is not an l2l checkpoint")
  for arrays in result.values():
    for name, array in arrays.items():
      arrays[name] = _writeable(array)
  return result


def _record_value(value, context, name):
  """A record entry as numeric arrays, in lists as stored."""
  if isinstance(value, (list, tuple)):
    return [_record_value(item, context, f"{name}[{i}]")
            for i, item in enumerate(value)]
  return _writeable(_as_array(value, context, name))


def load_record(path):
  """Loads a pickled record of arrays, as LOIS's `loss_record.pickle`.

  Such a file is a dict from names to numeric arrays, numbers, or lists of
  those (LOIS keeps its feature-attention weights there, one array per
  optimizee variable, beside its training losses). It goes through the same
  restricted unpickler as `load`.

  Args:
   path: the file (str or os.PathLike).

  Returns:
   A plain ``dict`` with str keys; numbers and numpy scalars become 0-d
   arrays, lists stay lists.

  Raises:
   FileNotFoundError: if `path` does not exist.
   CheckpointError: if the file is empty or not a pickle, references any
    global outside the allowlist, or is not a dict of arrays and lists.
  """
  path = os.fspath(path)
  context = f"{path} is not a record of arrays"
  return {name: _record_value(value, context, name)
          for name, value in _named_entries(
              _unpickle(path), context, "a dict of arrays", "entry name")}


def _encode(data):
  """Pickles plain checkpoint data so that numpy 1.x can read it.

  numpy 2 names its array reconstructor ``numpy._core.multiarray``, which
  numpy 1.x cannot import; numpy 2 still resolves ``numpy.core.multiarray``,
  so GLOBAL opcodes are rewritten to that spelling. Protocol 2 has no
  frames or offsets, so splicing opcodes keeps the stream valid.

  Args:
   data: output of `_normalize`.

  Returns:
   The pickle as bytes.
  """
  raw = pickle.dumps(data, protocol=_PROTOCOL)
  pieces = []
  start = 0
  for opcode, arg, pos in pickletools.genops(raw):
    if opcode.name == "STACK_GLOBAL":
      raise RuntimeError("unexpected STACK_GLOBAL in a protocol 2 pickle")
    if opcode.name != "GLOBAL":
      continue
    module, name = arg.split(" ", 1)
    if module.startswith("numpy._core."):
      module = "numpy.core." + module[len("numpy._core."):]
      end = raw.index(b"\n", raw.index(b"\n", pos) + 1) + 1
      pieces.append(raw[start:pos])
      pieces.append(b"c" + f"{module}\n{name}\n".encode("ascii"))
      start = end
    if (module, name) not in _WRITTEN_GLOBALS:
      # Would not be readable by `load` or by numpy 1.x.
      raise RuntimeError(
          f"numpy pickled an array via unexpected global {module}.{name}")
  pieces.append(raw[start:])
  return b"".join(pieces)


def save(data, path):
  """Writes `data` to `path` as an ``.l2l`` checkpoint, atomically.

  The pickle is written to a temporary file in the same directory, synced,
  and renamed over `path`, so readers see either the old or the new file.

  Args:
   data: mapping ``{module_name: {variable_name: array}}`` with str keys
    and numeric numpy arrays (or scalars) as values.
   path: destination file (str or os.PathLike); missing parent
    directories are created.

  Returns:
   `path` as a str.

  Raises:
   CheckpointError: if `data` does not have the checkpoint layout.
   OSError: if writing fails; `path` is then left unchanged.
  """
  path = os.fspath(path)
  payload = _encode(_normalize(data, f"cannot save l2l checkpoint {path}"))
  return files.write_atomic(path, payload)
