"""The fused LSTM stack's native kernels, built on first use.

`lstm_stack_kernel.cc` holds two TensorFlow ops, one for the stack's
forward pass and one for its gradient (docs/design.md, "The fused LSTM
stack"); `lstm_stack_products.cc`, their matrix products. The two files
are compiled side by side against the installed TensorFlow the first time
a process asks for them, for this machine's CPU, and linked into one
library in the cache (`files.cache_dir()/kernels/<key>/`, the key a hash of
everything the build depends on), which later processes load. Building
needs a C++ compiler (`$CXX`, else `c++`) and takes about 25 seconds on 2
cores (30 on one); where it fails, or with `L2L_NATIVE_KERNEL=0`, the stack
runs as TensorFlow ops, with the same results to float32 rounding (1e-6).

A cache may travel (a home directory shared between machines, or copied),
so what is in it is checked before it is loaded: a build whose digest no
longer matches is built again, and so is one that does not load here. A
build that failed is recorded beside it, so that later processes do not
spend the compile again; deleting the record retries.
"""

import functools
import hashlib
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from absl import logging
import tensorflow as tf
# TensorFlow has no public test of whether a trace is XLA-compiled; this
# internal module's has stayed the same through the 2.x releases.
from tensorflow.python.ops import control_flow_util

from l2l import files

try:
  import fcntl  # pylint: disable=g-import-not-at-top
except ImportError:  # Windows has none: concurrent builds each compile.
  fcntl = None

# Set to 0 to run the stack as TensorFlow ops only.
ENV_VAR = "L2L_NATIVE_KERNEL"
_HERE = os.path.dirname(os.path.abspath(__file__))
# Compiled each on its own, side by side: the products are most of the
# compile time, and the TensorFlow headers the kernel includes most of the
# rest.
SOURCES = tuple(os.path.join(_HERE, name) for name in (
    "lstm_stack_kernel.cc", "lstm_stack_products.cc"))
HEADERS = (os.path.join(_HERE, "lstm_stack_products.h"),)
# Optimised for the CPU it is built on (the key names the CPU's features).
CXX_FLAGS = ("-std=c++17", "-fPIC", "-O3", "-march=native", "-w")
BUILD_TIMEOUT_SECONDS = 600
# How often a build looks in on its compilers.
_POLL_SECONDS = 0.05
# Beside a build: its sha256 (written after it), or why it failed.
DIGEST_SUFFIX = ".sha256"
FAILED_SUFFIX = ".failed"
# The ops the library defines, as a graph's op types name them, and as the
# loaded module names its functions (TensorFlow's snake case of the type).
OP_TYPES = ("L2lLstmStack", "L2lLstmStackGrad")
OPS = tuple(re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower() for op in OP_TYPES)


class BuildError(RuntimeError):
  """The kernel could not be built or loaded."""


def _cpu_features():
  """The CPU's feature flags (Linux), so a shared cache keeps one build per
  kind of CPU."""
  return files.cpuinfo_field("flags") or platform.processor()


def compiler():
  """The C++ compiler's command: `$CXX`, else `c++`."""
  return shlex.split(os.environ.get("CXX") or "c++")


def compile_command(source, object_file):
  """The compiler's command line that compiles `source` into `object_file`."""
  return (compiler() + list(CXX_FLAGS) + ["-c", source, "-o", object_file] +
          tf.sysconfig.get_compile_flags())


def link_command(object_files, target):
  """The compiler's command line that links `object_files` into the
  library `target`."""
  return (compiler() + ["-shared"] + list(object_files) + ["-o", target] +
          tf.sysconfig.get_link_flags())


def library_path():
  """Where the kernel built for these sources, TensorFlow and CPU lives."""
  commands = " ".join(compile_command("", "") + link_command([], ""))
  # Not where TensorFlow is installed (its version is in the key): a cache
  # shared by machines or environments at other paths keeps one build.
  commands = commands.replace(os.path.dirname(os.path.abspath(tf.__file__)),
                              "<tensorflow>")
  return os.path.join(files.cache_dir(), "kernels", _key(commands),
                      "lstm_stack_kernel.so")


@functools.lru_cache(maxsize=None)
def _key(commands):
  """The hash naming a build by `commands` (every LSTM step asks for it)."""
  key = hashlib.sha256()
  for path in SOURCES + HEADERS:
    with open(path, "rb") as stream:
      key.update(stream.read())
    key.update(b"\0")
  for part in (tf.__version__, commands, _cpu_features(), platform.machine()):
    key.update(part.encode())
    key.update(b"\0")
  return key.hexdigest()[:16]


def is_intact(target):
  """Whether `target` is a whole build: the digest that `build` wrote
  beside it still matches it (a cache copied in part, or cut short, is
  not loaded: a truncated library can crash the process that maps it)."""
  try:
    with open(target + DIGEST_SUFFIX) as stream:
      return files.sha256_of(target) == stream.read().strip()
  except OSError:
    return False


def build(target):
  """Compiles the kernel into `target`, atomically, with its digest beside.

  The sources compile side by side, each into an object file, and are then
  linked. A concurrent build of the same target is harmless: each compiles
  into a directory of its own and renames its result into place. A
  compiler that runs and fails (or times out) is remembered in
  `target + ".failed"`, which later processes read instead of compiling
  again; a compiler that cannot be started is not (nothing was spent on
  it).

  Raises:
    BuildError: if the compiler is missing or fails.
  """
  directory = os.path.dirname(target)
  os.makedirs(directory, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix=".build-", dir=directory)
  try:
    deadline = time.monotonic() + BUILD_TIMEOUT_SECONDS
    objects = [os.path.join(scratch, os.path.basename(source)[:-len(".cc")] +
                            ".o") for source in SOURCES]
    _run_side_by_side(
        [compile_command(source, object_file)
         for source, object_file in zip(SOURCES, objects)],
        target, scratch, deadline)
    built = os.path.join(scratch, os.path.basename(target))
    _run_side_by_side([link_command(objects, built)], target, scratch,
                      deadline)
    digest = files.sha256_of(built)
    os.replace(built, target)
    files.write_atomic(target + DIGEST_SUFFIX, digest.encode())
  finally:
    shutil.rmtree(scratch, ignore_errors=True)


def _run_side_by_side(commands, target, scratch, deadline):
  """Runs the compiler `commands` at once and waits for them all.

  Raises:
    BuildError: one could not start or failed; those still running are
      stopped.
  """
  running = []
  try:
    for command in commands:
      # Into a file: the compilers' messages can fill a pipe nobody reads
      # while another compiler is waited for.
      log = tempfile.TemporaryFile("w+", dir=scratch, errors="replace")
      try:
        # A process group of its own, so that stopping it stops the
        # compiler proper too.
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
      except OSError as error:
        log.close()
        reason = "{} could not run: {}".format(command[0], error)
        if isinstance(error, FileNotFoundError):
          # No compiler here: nothing to record, one may be installed.
          raise BuildError(reason) from None
        raise _failed(target, reason)
      running.append((command, process, log))
    # The first to fail ends the build; the others are stopped below.
    waiting = list(running)
    while waiting:
      for command, process, log in list(waiting):
        returncode = process.poll()
        if returncode is None:
          continue
        waiting.remove((command, process, log))
        if returncode != 0:
          log.seek(0)
          messages = log.read()
          reason = "{} failed (exit {}): {}".format(
              command[0], returncode,
              " ".join(messages.split())[-500:] or "it printed nothing")
          if _killed(returncode, messages):
            # Killed from outside (the OOM killer, a stopped job): the
            # next process may well build it, so nothing is recorded.
            raise BuildError(reason)
          raise _failed(target, reason)
      if not waiting:
        break
      if time.monotonic() > deadline:
        raise _failed(target, "{} could not run: timed out after {} s".format(
            waiting[0][0][0], BUILD_TIMEOUT_SECONDS))
      time.sleep(_POLL_SECONDS)
  finally:
    for _, process, log in running:
      if process.poll() is None:
        _stop(process)
      log.close()


def _stop(process):
  """Stops a compiler: the driver and the compiler proper it runs (its
  process group, where there are groups)."""
  try:
    if hasattr(os, "killpg"):
      os.killpg(process.pid, signal.SIGKILL)
    else:
      process.kill()
  except ProcessLookupError:
    pass  # It ended meanwhile.
  process.wait()


def _killed(returncode, messages):
  """Whether a finished compile was killed by a signal, itself or (as the
  driver reports) the compiler proper it ran."""
  return returncode < 0 or "terminated program" in messages


def _failed(target, reason):
  """Records a failed build beside `target`; the error to raise."""
  files.write_atomic(target + FAILED_SUFFIX, (reason + "\n").encode())
  return BuildError(reason)


def lstm_stack_kernel():
  """The loaded kernel module (its ops: `l2l_lstm_stack` and
  `l2l_lstm_stack_grad`), or None.

  None when `L2L_NATIVE_KERNEL=0` (read at each call), while TensorFlow
  traces a function that XLA compiles (`jit_compile=True`, which Keras sets
  on some devices by default: the ops have no XLA implementation), or when
  the kernel cannot be built or loaded here; that last is logged once, with
  the reason. The stack then runs as TensorFlow ops.
  """
  if os.environ.get(ENV_VAR, "1").strip() == "0":
    return None
  if control_flow_util.GraphOrParentsInXlaContext(
      tf.compat.v1.get_default_graph()):
    return None
  return _load_once(library_path())


def ensure_built(target, rebuild=False):
  """Builds `target` unless an intact build is there (or `rebuild`).

  Processes that start together (a local cluster's workers) wait for one
  build, under a lock beside the target, rather than each compiling.

  Returns:
    Whether this call built it.

  Raises:
    BuildError: the build failed, now or (per its record) before.
  """
  if not rebuild and is_intact(target):
    # Without the lock, which a cache shared read-only would not give.
    return False
  os.makedirs(os.path.dirname(target), exist_ok=True)
  with open(target + ".lock", "a") as lock:
    if fcntl is not None:
      fcntl.flock(lock, fcntl.LOCK_EX)
    if not rebuild and is_intact(target):
      return False
    # Under the lock no other build runs: scratch directories left here
    # are those of builds that were killed. (Without locks, on Windows,
    # they may be another process's, and stay.)
    directory = os.path.dirname(target)
    for name in os.listdir(directory) if fcntl is not None else ():
      if name.startswith(".build-"):
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    if os.path.exists(target + FAILED_SUFFIX):
      with open(target + FAILED_SUFFIX) as stream:
        reason = stream.read().strip()
      raise BuildError("its build failed here before: {}; delete {} to try "
                       "again".format(reason, target + FAILED_SUFFIX))
    if not rebuild and os.path.exists(target):
      logging.warning(
          "The cached LSTM kernel %s does not match the digest written beside "
          "it when it was built (a copy cut short, or changed since), or has "
          "none: building it again.", target)
    logging.info("Building the fused LSTM kernel into %s (once per "
                 "TensorFlow version and CPU).", target)
    build(target)
    return True


def runs_in(graph):
  """Whether `graph` steps an LSTM stack with the native kernel's ops."""
  return any(op.type in OP_TYPES for op in graph.get_operations())


def _load_ops(target):
  """Loads the library at `target`; its module, holding both ops."""
  module = tf.load_op_library(target)
  if not all(hasattr(module, op) for op in OPS):
    raise BuildError("{} holds no {} ops".format(target, " and ".join(OPS)))
  return module


# The kernel this process loaded, if any. TensorFlow registers an op's
# kernel once per process: a second build (the cache directory changed
# under a running process) would clash with the first at every step.
_loaded = []


@functools.lru_cache(maxsize=None)
def _load_once(target):
  """`load`, once per process and target (every LSTM step asks); once a
  kernel has loaded, every later target gets that one."""
  if _loaded:
    return _loaded[0]
  module = load(target)
  if module is not None:
    _loaded.append(module)
  return module


def load(target):
  """Builds `target` unless an intact build is there, then loads it.

  A cached build that does not load here (one copied from another
  machine, say) is built again, once. Failures are logged as a warning.

  Args:
    target: the library's path, `library_path()` for this machine.

  Returns:
    The loaded module, or None if the kernel cannot be built or loaded.
  """
  try:
    built_now = ensure_built(target)
    try:
      module = _load_ops(target)
    except (BuildError, tf.errors.NotFoundError) as error:
      if built_now:
        raise
      logging.info("The cached LSTM kernel %s does not load here (%s); "
                   "building it again.", target, error)
      ensure_built(target, rebuild=True)
      module = _load_ops(target)
    logging.info("The LSTM stack runs as the fused kernel %s.", target)
    return module
  except (BuildError, OSError, tf.errors.NotFoundError) as error:
    logging.warning(
        "The fused LSTM kernel is not available (%s); the LSTM stack runs "
        "as TensorFlow ops, 1.2-2x slower. Set %s=0 to skip the "
        "attempt.", error, ENV_VAR)
    return None
