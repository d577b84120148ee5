"""Tests for l2l_file.py, using pickle streams assembled opcode by opcode.

The legacy (numpy 1.x, Python 2, dill) streams are written by hand so that
the tests need neither dill nor old numpy, and do not depend on how the code
under test writes files.
"""

import collections
import os
import pickle
import pickletools
import struct
import sys
import warnings

import numpy as np
import pytest


from l2l.checkpoint import l2l_file

W_GATES = np.arange(12, dtype=np.float32).reshape(3, 4) / 8 - 0.5
B_GATES = np.array([0.25, -1.5, 3.0, 1e-3], dtype=np.float32)
LINEAR_W = np.array([[1.5], [-2.0]], dtype=np.float64)
LINEAR_B = np.array([7], dtype=np.int64)


def _expected():
  return {
      "lstm_1": {
          "w_gates": W_GATES,
          "b_gates": B_GATES
      },
      "linear": {
          "w": LINEAR_W,
          "b": LINEAR_B
      },
  }


def _assert_same(actual, expected):
  assert actual.__class__ is dict  # plain, not a defaultdict
  assert sorted(actual) == sorted(expected)
  for module, variables in expected.items():
    assert actual[module].__class__ is dict
    assert sorted(actual[module]) == sorted(variables)
    for name, value in variables.items():
      got = actual[module][name]
      assert isinstance(got, np.ndarray)
      assert got.dtype == np.asarray(value).dtype
      np.testing.assert_array_equal(got, value)


def _write(tmp_path, data, name="net.l2l"):
  path = tmp_path / name
  path.write_bytes(data)
  return str(path)


# ------------------------------------------------ pickle stream assembly ---
# Just enough of the pickle opcode set to hand-write the streams that old
# numpy, Python 2 and dill produce.

PROTO2 = b"\x80\x02"
PROTO4 = b"\x80\x04"
MARK = b"("
STOP = b"."
REDUCE = b"R"
BUILD = b"b"
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
TUPLE3 = b"\x87"
EMPTY_DICT = b"}"
SETITEM = b"s"
SETITEMS = b"u"
NONE = b"N"
NEWFALSE = b"\x89"
NEWTRUE = b"\x88"
STACK_GLOBAL = b"\x93"


def _global(module, name):
  return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _unicode(text):
  data = text.encode("utf-8")
  return b"X" + struct.pack("<I", len(data)) + data


def _py2_str(data):
  # Python 2 byte strings: SHORT_BINSTRING / BINSTRING.
  if len(data) < 256:
    return b"U" + bytes([len(data)]) + data
  return b"T" + struct.pack("<i", len(data)) + data


def _py3_bytes(data):
  return b"B" + struct.pack("<I", len(data)) + data


def _int(value):
  return b"J" + struct.pack("<i", value)


def _call(func, *args):
  return func + MARK + b"".join(args) + TUPLE + REDUCE


def _dict(items):
  """A dict literal from (key ops, value ops) pairs."""
  body = b"".join(key + value for key, value in items)
  return EMPTY_DICT + (MARK + body + SETITEMS if items else b"")


def _array(arr, reconstruct, flavor="py3"):
  """Ops rebuilding `arr` the way numpy.ndarray.__reduce__ describes it.

  Args:
   arr: array to encode (native byte order).
   reconstruct: ops pushing numpy's `_reconstruct` function.
   flavor: "py3" (bytes via _codecs.encode, as Python 3 writes protocol 2),
    "py2" (Python 2 byte strings) or "bytes" (protocol 3+ BINBYTES).
  """
  arr = np.ascontiguousarray(arr)

  def raw(data):
    if flavor == "py2":
      return _py2_str(data)
    if flavor == "bytes":
      return _py3_bytes(data)
    return _call(
        _global("_codecs", "encode"), _unicode(data.decode("latin1")),
        _unicode("latin1"))

  if flavor == "py2":
    text = lambda s: _py2_str(s.encode())
    dtype_args = text(arr.dtype.str[1:]) + _int(0) + _int(1)
  else:
    text = _unicode
    dtype_args = text(arr.dtype.str[1:]) + NEWFALSE + NEWTRUE
  dtype = (
      _call(_global("numpy", "dtype"), dtype_args) + MARK + _int(3) +
      text(arr.dtype.str[0]) + NONE * 3 + _int(-1) + _int(-1) + _int(0) +
      TUPLE + BUILD)
  shape = MARK + b"".join(_int(d) for d in arr.shape) + TUPLE
  return (_call(reconstruct, _global("numpy", "ndarray"),
                MARK + _int(0) + TUPLE, raw(b"b")) + MARK + _int(1) + shape +
          dtype + NEWFALSE + raw(arr.tobytes()) + TUPLE + BUILD)


def _numpy1_stream(expected,
                   reconstruct=None,
                   key=_unicode,
                   flavor="py3",
                   proto=PROTO2):
  reconstruct = reconstruct or _global("numpy.core.multiarray", "_reconstruct")
  modules = []
  for module, variables in expected.items():
    inner = [(key(name), _array(value, reconstruct, flavor))
             for name, value in variables.items()]
    modules.append((key(module), _dict(inner)))
  return proto + _dict(modules) + STOP


def _dill_reconstruct(module="numpy.core.multiarray"):
  import_module = _call(
      _global("dill._dill", "_import_module"), _unicode(module))
  return _call(
      _global("dill._dill", "_get_attr"), import_module,
      _unicode("_reconstruct"))


def legacy_checkpoint_stream(values, style):
  """A checkpoint's bytes as DeepMind's or LOIS's code pickled them.

  Other test files (test_networks.py) use it to load legacy files.

  Args:
    values: `{module: {variable: array}}`.
    style: "python2" (DeepMind: Python 2 byte strings) or "dill" (LOIS: a
      dill defaultdict with dill's array reconstructor).

  Returns:
    The pickle stream.
  """
  if style == "python2":
    return _numpy1_stream(values, key=lambda text: _py2_str(text.encode()),
                          flavor="py2")
  factory = _call(_global("collections", "defaultdict"),
                  _call(_global("dill._dill", "_load_type"), _unicode("dict")))
  body = _numpy1_stream(values, reconstruct=_dill_reconstruct())
  # Swap the plain top-level dict for the defaultdict.
  assert body.startswith(PROTO2 + EMPTY_DICT)
  return PROTO2 + factory + body[len(PROTO2 + EMPTY_DICT):]


def _marker_command(marker):
  return _unicode(f"touch {marker}")


# ------------------------------------------------------ save then load ---


def test_round_trip_preserves_values_dtypes_and_plain_types(tmp_path):
  data = collections.defaultdict(dict)
  for module, variables in _expected().items():
    data[module].update(variables)
  data["extra"]["scalar"] = np.float16(2.5)
  data["extra"]["flag"] = np.array([True, False])
  data["extra"]["cplx"] = np.array([1 + 2j], dtype=np.complex64)
  data["extra"]["fortran"] = np.asfortranarray(W_GATES)
  data["extra"]["strided"] = W_GATES[:, ::2]
  data["extra"]["empty"] = np.zeros((0, 3), dtype=np.float32)
  path = str(tmp_path / "cw.l2l")

  assert l2l_file.save(data, path) == path
  loaded = l2l_file.load(path)

  expected = _expected()
  expected["extra"] = {
      "scalar": np.array(2.5, dtype=np.float16),
      "flag": np.array([True, False]),
      "cplx": np.array([1 + 2j], dtype=np.complex64),
      "fortran": W_GATES,
      "strided": W_GATES[:, ::2],
      "empty": np.zeros((0, 3), dtype=np.float32),
  }
  _assert_same(loaded, expected)
  assert loaded["extra"]["scalar"].shape == ()
  assert loaded["extra"]["empty"].shape == (0, 3)
  assert all(isinstance(k, str) for k in loaded)
  assert loaded["linear"]["w"].flags.writeable


def test_save_accepts_pathlike_and_creates_parent_directories(tmp_path):
  path = tmp_path / "a" / "b" / "rnn.l2l"
  assert l2l_file.save(_expected(), path) == str(path)
  _assert_same(l2l_file.load(path), _expected())


def test_checkpoint_path():
  assert l2l_file.checkpoint_path("/ckpt", "cw") == "/ckpt/cw.l2l"


def test_written_file_is_plain_protocol_2_with_numpy_1_globals(tmp_path):
  path = str(tmp_path / "cw.l2l")
  data = _expected()
  data["linear"]["empty"] = np.zeros(0)
  l2l_file.save(data, path)
  raw = (tmp_path / "cw.l2l").read_bytes()

  ops = list(pickletools.genops(raw))
  assert ops[0][0].name == "PROTO" and ops[0][1] == 2
  globals_used = {arg for op, arg, _ in ops if "GLOBAL" in op.name}
  # Exactly what numpy 1.x itself writes at protocol 2 under Python 3.
  assert globals_used == {
      "numpy.core.multiarray _reconstruct",
      "numpy ndarray",
      "numpy dtype",
      "_codecs encode",
      "__builtin__ bytes",
  }
  assert b"numpy._core" not in raw
  assert b"dill" not in raw and b"defaultdict" not in raw

  # A stock unpickler (what the original numpy 1.x scripts use) reads it.
  with open(path, "rb") as stream:
    stock = pickle.load(stream)
  assert stock.__class__ is dict
  np.testing.assert_array_equal(stock["lstm_1"]["w_gates"], W_GATES)


# ------------------------------------------------------------ atomicity ---


def test_save_keeps_unrelated_files_and_leaves_no_temp_files(tmp_path):
  (tmp_path / "notes.txt").write_text("keep me")
  (tmp_path / "other.l2l").write_bytes(b"not touched")
  path = str(tmp_path / "cw.l2l")

  l2l_file.save(_expected(), path)
  l2l_file.save({"linear": {"w": LINEAR_W}}, path)  # overwrite

  assert sorted(os.listdir(tmp_path)) == ["cw.l2l", "notes.txt", "other.l2l"]
  assert (tmp_path / "notes.txt").read_text() == "keep me"
  assert (tmp_path / "other.l2l").read_bytes() == b"not touched"
  _assert_same(l2l_file.load(path), {"linear": {"w": LINEAR_W}})


def test_overwrite_keeps_file_mode(tmp_path):
  path = str(tmp_path / "cw.l2l")
  l2l_file.save(_expected(), path)
  assert os.stat(path).st_mode & 0o777 == 0o644
  os.chmod(path, 0o600)
  l2l_file.save(_expected(), path)
  assert os.stat(path).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_save_keeps_old_file_and_removes_temp(tmp_path, monkeypatch,
                                                     failing):
  path = str(tmp_path / "cw.l2l")
  l2l_file.save(_expected(), path)
  before = (tmp_path / "cw.l2l").read_bytes()

  def boom(*args):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(os, failing, boom)
  with pytest.raises(OSError, match="No space left"):
    l2l_file.save({"linear": {"w": LINEAR_W * 2}}, path)
  monkeypatch.undo()

  assert os.listdir(tmp_path) == ["cw.l2l"]
  assert (tmp_path / "cw.l2l").read_bytes() == before
  _assert_same(l2l_file.load(path), _expected())


def test_failed_encoding_writes_nothing(tmp_path, monkeypatch):

  def boom(*args, **kwargs):
    raise pickle.PicklingError("boom")

  monkeypatch.setattr(pickle, "dumps", boom)
  with pytest.raises(pickle.PicklingError):
    l2l_file.save(_expected(), str(tmp_path / "cw.l2l"))
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("data, message", [
    ([1, 2], "expected a dict of the form"),
    ({
        "lstm": [np.zeros(2)]
    }, "module 'lstm' holds a list"),
    ({
        "lstm": {
            "w": [1.0, 2.0]
        }
    }, "variable 'lstm/w' is a list"),
    ({
        "lstm": {
            "w": np.array(["a"])
        }
    }, "an array of dtype <U1"),
    ({
        1: {
            "w": np.zeros(2)
        }
    }, "module name 1 is a int, expected a string"),
])
def test_save_rejects_bad_layout_without_writing(tmp_path, data, message):
  path = str(tmp_path / "cw.l2l")
  with pytest.raises(l2l_file.CheckpointError) as err:
    l2l_file.save(data, path)
  assert message in str(err.value)
  assert f"cannot save l2l checkpoint {path}" in str(err.value)
  assert not os.listdir(tmp_path)


# ------------------------------------------------------ legacy streams ---


def test_loads_numpy1_python3_protocol2_stream_without_warnings(tmp_path):
  path = _write(tmp_path, _numpy1_stream(_expected()))
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    loaded = l2l_file.load(path)
  _assert_same(loaded, _expected())


def test_loads_numpy2_spelling(tmp_path):
  stream = _numpy1_stream(
      _expected(),
      reconstruct=_global("numpy._core.multiarray", "_reconstruct"))
  _assert_same(l2l_file.load(_write(tmp_path, stream)), _expected())


def test_loads_python2_stream_with_byte_string_keys_and_data(tmp_path):
  stream = legacy_checkpoint_stream(_expected(), "python2")
  assert b"_codecs" not in stream and b"X\x01" not in stream
  loaded = l2l_file.load(_write(tmp_path, stream))
  _assert_same(loaded, _expected())
  assert all(isinstance(k, str) for k in loaded["lstm_1"])


def test_bytes_keys_become_str(tmp_path):
  stream = _numpy1_stream(
      _expected(),
      key=lambda s: _py3_bytes(s.encode()),
      flavor="bytes",
      proto=b"\x80\x03")
  _assert_same(l2l_file.load(_write(tmp_path, stream)), _expected())


def test_loads_defaultdict_with_numpy_scalar(tmp_path):
  # collections.defaultdict(dict) holding a numpy 1.x scalar.
  scalar = _call(
      _global("numpy.core.multiarray", "scalar"),
      _call(_global("numpy", "dtype"), _unicode("f8"), NEWFALSE, NEWTRUE) +
      MARK + _int(3) + _unicode("<") + NONE * 3 + _int(-1) + _int(-1) +
      _int(0) + TUPLE + BUILD,
      _call(
          _global("_codecs", "encode"),
          _unicode(np.float64(0.75).tobytes().decode("latin1")),
          _unicode("latin1")))
  factory = _call(
      _global("collections", "defaultdict"), _global("__builtin__", "dict"))
  stream = (
      PROTO2 + factory + MARK + _unicode("linear") +
      _dict([(_unicode("lr"), scalar)]) + SETITEMS + STOP)
  loaded = l2l_file.load(_write(tmp_path, stream))
  _assert_same(loaded, {"linear": {"lr": np.array(0.75)}})


def test_loads_dill_stream_without_dill(tmp_path):
  assert "dill" not in sys.modules
  # defaultdict(dill._dill._load_type('dict')), arrays rebuilt through
  # dill._dill._get_attr(dill._dill._import_module(...), '_reconstruct').
  stream = legacy_checkpoint_stream(_expected(), "dill")
  _assert_same(l2l_file.load(_write(tmp_path, stream)), _expected())
  assert "dill" not in sys.modules


def test_loads_dill_protocol4_create_array_stream(tmp_path):
  # Newer dill: protocol 4, STACK_GLOBAL, old 'dill.dill' and 'DictType'
  # spellings, arrays via _create_array(f, args, state, None), and numpy's
  # C module as dill names it.
  def stack_global(module, name):
    return _unicode(module) + _unicode(name) + STACK_GLOBAL

  reconstruct = _call(
      stack_global("dill.dill", "_get_attr"),
      _call(
          stack_global("dill.dill", "_import_module"),
          _unicode("numpy.core._multiarray_umath"), NEWFALSE),
      _unicode("_reconstruct"))
  arr = W_GATES
  dtype = (
      _call(stack_global("numpy", "dtype"), _unicode("f4"), NEWFALSE, NEWTRUE) +
      MARK + _int(3) + _unicode("<") + NONE * 3 + _int(-1) + _int(-1) +
      _int(0) + TUPLE + BUILD)
  array = _call(
      stack_global("dill.dill", "_create_array"), reconstruct,
      MARK + stack_global("numpy", "ndarray") + MARK + _int(0) + TUPLE +
      _py3_bytes(b"b") + TUPLE, MARK + _int(1) + MARK + _int(3) + _int(4) +
      TUPLE + dtype + NEWFALSE + _py3_bytes(arr.tobytes()) + TUPLE, NONE)
  factory = _call(
      stack_global("collections", "defaultdict"),
      _call(stack_global("dill.dill", "_load_type"), _unicode("DictType")))
  stream = (
      PROTO4 + factory + MARK + _unicode("lstm_1") +
      _dict([(_unicode("w_gates"), array)]) + SETITEMS + STOP)
  loaded = l2l_file.load(_write(tmp_path, stream))
  _assert_same(loaded, {"lstm_1": {"w_gates": W_GATES}})


def test_loads_protocol5_frombuffer_stream(tmp_path):
  data = {"lstm_1": {"w_gates": np.asfortranarray(W_GATES)}}
  path = _write(tmp_path, pickle.dumps(data, protocol=5))
  loaded = l2l_file.load(path)
  _assert_same(loaded, {"lstm_1": {"w_gates": W_GATES}})
  assert loaded["lstm_1"]["w_gates"].flags.writeable


# -------------------------------------------------- malicious streams ---


def _malicious_streams(marker):
  touch = _marker_command(marker)
  numpy_module = _call(
      _global("dill._dill", "_import_module"), _unicode("numpy"))
  return {
      "os.system":
          PROTO2 + _call(_global("os", "system"), touch) + STOP,
      "posix.system":
          (PROTO2 + _call(_global("posix", "system"), touch) + STOP),
      "builtins.eval": (PROTO2 + _call(
          _global("builtins", "eval"), _unicode(f"open({str(marker)!r}, 'w')"))
                        + STOP),
      "__builtin__.getattr": (PROTO2 + _call(
          _global("__builtin__", "getattr"), _global("numpy", "ndarray"),
          _unicode("tofile")) + STOP),
      "subprocess.Popen": (PROTO2 + _call(
          _global("subprocess", "Popen"),
          MARK + _unicode("touch") + _unicode(str(marker)) + TUPLE) + STOP),
      "dill module import 'os'": (PROTO2 + _call(
          _call(
              _global("dill._dill", "_get_attr"),
              _call(_global("dill._dill", "_import_module"), _unicode("os")),
              _unicode("system")), touch) + STOP),
      "numpy.load": (PROTO2 + _call(
          _call(
              _global("dill._dill", "_get_attr"), numpy_module,
              _unicode("load")), _unicode(str(marker))) + STOP),
      "dill type 'FunctionType'": (
          PROTO2 +
          _call(_global("dill._dill", "_load_type"), _unicode("FunctionType")) +
          STOP),
      "dill attribute lookup 'tofile' on a type": (PROTO2 + _call(
          _global("dill._dill", "_get_attr"), _global("numpy", "ndarray"),
          _unicode("tofile")) + STOP),
      "numpy.core.multiarray.fromfile": (PROTO2 + _call(
          _global("numpy.core.multiarray", "fromfile"), _unicode(str(marker))) +
                                         STOP),
      "_codecs.encode with encoding 'rot13'": (PROTO2 + _call(
          _global("_codecs", "encode"), _unicode("x"), _unicode("rot13")) + STOP
                                              ),
      "setting the state of dill._dill._load_type":
          (PROTO2 + _global("dill._dill", "_load_type") + EMPTY_DICT + BUILD +
           STOP),
      "setting the state of module 'numpy'":
          (PROTO2 +
           _call(_global("dill._dill", "_import_module"), _unicode("numpy")) +
           NONE + _dict([(_unicode("name"), _unicode("os"))]) + TUPLE2 + BUILD +
           STOP),
      "builtins.bytes with arguments":
          (PROTO2 + _call(_global("builtins", "bytes"), _int(10**9)) + STOP),
  }


@pytest.mark.parametrize("offender", list(_malicious_streams("m")))
def test_refuses_malicious_stream_without_running_it(tmp_path, offender):
  marker = tmp_path / "pwned"
  stream = _malicious_streams(marker)[offender]
  path = _write(tmp_path, stream, name="evil.l2l")

  with pytest.raises(l2l_file.CheckpointError) as err:
    l2l_file.load(path)

  message = str(err.value)
  assert path in message
  assert offender in message
  assert "not a trusted l2l checkpoint" in message
  assert not marker.exists()


def test_refusal_is_raised_before_later_opcodes_run(tmp_path):
  # The refused global comes first; a harmless-looking tail never matters.
  stream = (PROTO2 + _global("os", "system") + _dict([]) + STOP)
  with pytest.raises(l2l_file.CheckpointError, match=r"'os\.system'"):
    l2l_file.load(_write(tmp_path, stream))


# ------------------------------------------------------- bad files ---


def test_missing_file(tmp_path):
  path = str(tmp_path / "nope.l2l")
  with pytest.raises(FileNotFoundError) as err:
    l2l_file.load(path)
  assert "l2l checkpoint file not found" in str(err.value)
  assert path in str(err.value)


def test_empty_file(tmp_path):
  path = _write(tmp_path, b"")
  with pytest.raises(l2l_file.CheckpointError) as err:
    l2l_file.load(path)
  assert str(
      err.value) == (f"{path} is not an l2l checkpoint: the file is empty")


def test_random_bytes(tmp_path):
  path = _write(
      tmp_path,
      bytes(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8)))
  with pytest.raises(l2l_file.CheckpointError) as err:
    l2l_file.load(path)
  assert str(err.value).startswith(
      f"{path} is not an l2l checkpoint: cannot unpickle it")


def test_text_file(tmp_path):
  path = _write(tmp_path, b"hello, world\n")
  with pytest.raises(
      l2l_file.CheckpointError,
      match="is not an l2l checkpoint: cannot unpickle"):
    l2l_file.load(path)


def test_truncated_file(tmp_path):
  path = str(tmp_path / "cw.l2l")
  l2l_file.save(_expected(), path)
  raw = (tmp_path / "cw.l2l").read_bytes()
  (tmp_path / "cw.l2l").write_bytes(raw[:len(raw) // 2])
  with pytest.raises(l2l_file.CheckpointError) as err:
    l2l_file.load(path)
  assert str(err.value).startswith(
      f"{path} is not an l2l checkpoint: cannot unpickle it")


@pytest.mark.parametrize("data, message", [
    ([np.zeros(2)], "expected a dict of the form {module_name: {variable_name: "
     "numpy.ndarray}}, got a list"),
    ({
        "lstm": np.zeros(2)
    }, "module 'lstm' holds a numpy.ndarray, expected a dict of variable name "
     "to numpy array"),
    ({
        "lstm": {
            "w": "weights"
        }
    }, "variable 'lstm/w' is a str, expected a numeric numpy array"),
    ({
        "lstm": {
            "w": np.array([None], dtype=object)
        }
    }, "variable 'lstm/w' is an array of dtype object"),
    ({
        "lstm": {
            3: np.zeros(2)
        }
    }, "variable name 3 is a int, expected a string"),
])
def test_wrong_structure(tmp_path, data, message):
  path = _write(tmp_path, pickle.dumps(data, protocol=2))
  with pytest.raises(l2l_file.CheckpointError) as err:
    l2l_file.load(path)
  assert str(err.value).startswith(f"{path} is not an l2l checkpoint: ")
  assert message in str(err.value)


def test_checkpoint_error_is_value_error():
  assert issubclass(l2l_file.CheckpointError, ValueError)


@pytest.mark.parametrize("depth", [50, 200000])
def test_deeply_nested_key_is_refused_before_unpickling(tmp_path, depth):
  # {1-tuple of 1-tuple of ... of 1: {}}: unpickling would hash the key,
  # which recurses once per level in C and overflows the stack.
  path = _write(tmp_path, b"\x80\x02}K\x01" + b"\x85" * depth + b"}s.")
  with pytest.raises(l2l_file.CheckpointError,
                     match="its objects nest more than {} deep".format(
                         l2l_file.MAX_NESTING)):
    l2l_file.load(path)


def test_nesting_through_the_memo_is_counted(tmp_path):
  # A 20-deep tuple memoized, then fetched and wrapped twice more: 60 deep.
  chunk = b"\x85" * 20 + b"q\x00"  # TUPLE1 x 20, BINPUT 0
  data = (b"\x80\x02}K\x01" + chunk + b"h\x00" + chunk.replace(b"q\x00", b"") +
          b"\x85" * 20 + b"}s.")
  with pytest.raises(l2l_file.CheckpointError, match="nest more than"):
    l2l_file.load(_write(tmp_path, data))


def test_a_shallow_non_string_key_is_named_briefly(tmp_path):
  path = _write(tmp_path, b"\x80\x02}K\x01" + b"\x85" * 10 + b"}s.")
  with pytest.raises(l2l_file.CheckpointError,
                     match=r"module name \(\(\(\(\(\(.*\.\.\..*is a tuple"):
    l2l_file.load(path)


def test_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
  path = str(tmp_path / "cw.l2l")
  l2l_file.save(_expected(), path)
  monkeypatch.setattr(l2l_file, "MAX_BYTES", 16)
  with pytest.raises(l2l_file.CheckpointError,
                     match=r"bytes, more than the 16 a checkpoint may have"):
    l2l_file.load(path)


def test_a_directory_named_like_a_checkpoint(tmp_path):
  (tmp_path / "cw.l2l").mkdir()
  with pytest.raises(l2l_file.CheckpointError,
                     match="cw.l2l is a directory, not an l2l checkpoint"):
    l2l_file.load(tmp_path / "cw.l2l")
  with pytest.raises(ValueError, match=r"cw.l2l is not a file; expected the "
                     r"\.l2l checkpoint of optimizer 'cw'"):
    l2l_file.find(tmp_path, "cw")
  with pytest.raises(ValueError, match="found: no .l2l files"):
    l2l_file.find(tmp_path, "adam")


def test_load_record_of_arrays_lists_and_floats(tmp_path):
  # LOIS's loss_record.pickle: lists of arrays (one per variable) and of
  # numpy floats, written by Python 3 pickle.
  path = tmp_path / "loss_record.pickle"
  kernel = np.arange(8, dtype=np.float32).reshape(2, 4)
  with open(path, "wb") as stream:
    pickle.dump({"fc_weights": [kernel], "loss_record": [np.float64(2.5), 1.0],
                 "constant": []}, stream, protocol=3)
  record = l2l_file.load_record(path)
  assert sorted(record) == ["constant", "fc_weights", "loss_record"]
  np.testing.assert_array_equal(record["fc_weights"][0], kernel)
  assert record["fc_weights"][0].dtype == np.float32
  assert [float(v) for v in record["loss_record"]] == [2.5, 1.0]
  assert record["constant"] == []


@pytest.mark.parametrize("data, message", [
    ([1.0], "expected a dict of arrays, got a list"),
    ({"fc_weights": ["text"]}, r"variable 'fc_weights\[0\]' is a str"),
])
def test_load_record_refuses_other_structures(tmp_path, data, message):
  path = tmp_path / "loss_record.pickle"
  with open(path, "wb") as stream:
    pickle.dump(data, stream, protocol=3)
  with pytest.raises(l2l_file.CheckpointError, match=message):
    l2l_file.load_record(path)
