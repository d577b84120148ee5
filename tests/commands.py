"""Command lines for the tests, without TensorFlow's import in each.

Most of a short `python train.py ...` is the interpreter importing
TensorFlow (3-5 CPU seconds, with Keras). The tests run such command lines
by the dozen, so this module keeps one server per test process that has
imported TensorFlow and nothing else, and forks it for each command: the
child takes the command's standard streams, working directory,
environment and arguments, then runs the script (or `-m` module, or `-c`
code) as `python` would, as `__main__`, with the same exit status, signals
and exit handlers. `run` and `Popen` take `subprocess`'s arguments.

What a fork cannot stand for goes to `subprocess` itself: any executable
other than this interpreter, and options such as `preexec_fn`. A process
that starts commands of its own (local_cluster's launcher starts a task per
process) can have them forked too: `fork_subprocesses` routes its
`subprocess.Popen` here, and `fork_subprocesses_patch` does so in a
command. A fork stands for a fresh interpreter because importing
TensorFlow only loads it: eager execution stays on and Sonnet is not
imported, so what the import-order scripts of tests/test_graph_mode.py
check (each imports TensorFlow first) holds in a fork too. A check that a command starts
without importing TensorFlow (tests/test_cli.py) must use `subprocess`.

Run as `python commands.py SOCKET` this file is the server; it then
imports only the standard library and TensorFlow.
"""

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT
# `subprocess.Popen` itself, whatever `fork_subprocesses` puts in its place.
_SUBPROCESS_POPEN = subprocess.Popen

# Largest request: the arguments and the environment, in one datagram.
_MAX_REQUEST = 1 << 20
_STREAMS = 3


def _serve(listener):
  """Forks one child per request; returns only in a child.

  The server answers each request with the child's pid, then with its exit
  status (as `subprocess` gives it: -N for signal N) when it ends, and
  exits when the process that started it is gone.

  Returns:
    `(request, fds)` in the child.
  """
  parent = os.getppid()
  children = {}
  while True:
    readable, _, _ = select.select([listener], [], [], 0.05)
    if readable:
      connection, _ = listener.accept()
      message, fds, _, _ = socket.recv_fds(connection, _MAX_REQUEST,
                                           _STREAMS)
      pid = os.fork()
      if pid == 0:
        listener.close()
        for other in children.values():
          other.close()
        connection.close()
        return json.loads(message), fds
      for fd in fds:
        os.close(fd)
      connection.sendall(json.dumps({"pid": pid}).encode())
      children[pid] = connection
    while children:
      pid, status = os.waitpid(-1, os.WNOHANG)
      if not pid:
        break
      connection = children.pop(pid)
      connection.sendall(json.dumps(
          {"returncode": os.waitstatus_to_exitcode(status)}).encode())
      connection.close()
    if os.getppid() != parent:
      sys.exit(0)


def _become(request, fds):
  """Makes this forked child the process `request` describes."""
  for target, fd in enumerate(fds):
    os.dup2(fd, target)
  for fd in set(fds):
    os.close(fd)
  if request.get("new_session"):
    os.setsid()
  os.chdir(request["cwd"])
  os.environ.clear()
  os.environ.update(request["env"])
  # A fresh interpreter puts $PYTHONPATH right after the script's directory.
  extra = [entry for entry in os.environ.get("PYTHONPATH", "").split(
      os.pathsep) if entry and entry not in sys.path]
  sys.path[1:1] = extra
  # As a fresh interpreter has them (the server's are the same, but a
  # command must not depend on that).
  signal.signal(signal.SIGINT, signal.default_int_handler)
  signal.signal(signal.SIGTERM, signal.SIG_DFL)
  signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _run_as_main(arguments):
  """Runs `python *arguments` in this interpreter (`python`'s sys.path[0])."""
  import runpy  # pylint: disable=g-import-not-at-top
  if arguments[0] == "-m":
    sys.path[0] = os.getcwd()
    sys.argv = [arguments[1]] + arguments[2:]
    runpy.run_module(arguments[1], run_name="__main__", alter_sys=True)
  elif arguments[0] == "-c":
    sys.path[0] = ""
    sys.argv = ["-c"] + arguments[2:]
    exec(compile(arguments[1], "<string>", "exec"),  # pylint: disable=exec-used
         {"__name__": "__main__", "__builtins__": __builtins__})
  else:
    sys.path[0] = os.path.dirname(os.path.abspath(arguments[0]))
    sys.argv = list(arguments)
    runpy.run_path(arguments[0], run_name="__main__")


def _server_main(socket_path):
  import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
  listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
  listener.bind(socket_path)
  listener.listen(64)
  request, fds = _serve(listener)
  _become(request, fds)
  _run_as_main(request["arguments"])


class _Server:
  """The server process of this test process, started on first use."""

  def __init__(self):
    self._directory = tempfile.mkdtemp(prefix="l2l-commands-")
    self.path = os.path.join(self._directory, "socket")
    self._log = os.path.join(self._directory, "log")
    with open(self._log, "wb") as log:
      self._process = _SUBPROCESS_POPEN(
          [sys.executable, os.path.abspath(__file__), self.path],
          stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    atexit.register(self.close)

  def connect(self, timeout=120):
    """A connection to the server, once it is listening."""
    deadline = time.monotonic() + timeout
    while True:
      connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
      try:
        connection.connect(self.path)
        return connection
      except (FileNotFoundError, ConnectionRefusedError):
        connection.close()
        if self._process.poll() is not None:
          with open(self._log) as log:
            raise RuntimeError("the command server exited with {}: {}".format(
                self._process.returncode, log.read()[-2000:])) from None
        if time.monotonic() > deadline:
          raise
        time.sleep(0.05)

  def close(self):
    self._process.kill()
    self._process.wait()
    for name in (self.path, self._log):
      if os.path.exists(name):
        os.remove(name)
    os.rmdir(self._directory)


_server = None


class _ServerOfAnother:
  """The server of the test process this process descends from."""

  def __init__(self, path):
    self.path = path

  def connect(self):
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    connection.connect(self.path)
    return connection


def fork_subprocesses(server_path):
  """Routes this process's `subprocess.Popen` (and so `subprocess.run`)
  through `Popen`, forking from the server at `server_path`."""
  global _server
  _server = _ServerOfAnother(server_path)
  subprocess.Popen = Popen


def fork_subprocesses_patch():
  """Source for `run_patched`'s `patch`: the command forks its own
  subprocesses from this test process's server."""
  return ("import sys\nsys.path.insert(0, {!r})\nimport commands\n"
          "commands.fork_subprocesses({!r})\n".format(
              os.path.dirname(os.path.abspath(__file__)), _the_server().path))


def _the_server():
  global _server
  if _server is None:
    _server = _Server()
  return _server


def _forkable(args, forked, options):
  # A stdin pipe would need its write end here: a real subprocess gives it.
  return (isinstance(args, (list, tuple)) and len(args) >= 2 and
          args[0] == sys.executable and not options and
          forked.get("stdin") != PIPE)


def _stream_fd(value, default_fd, closers, stdout_fd):
  """The fd to give the child for one stream, and our end if a pipe."""
  if value is None:
    return default_fd, None
  if value == STDOUT:
    return stdout_fd, None
  if value == DEVNULL:
    fd = os.open(os.devnull, os.O_RDWR)
    closers.append(fd)
    return fd, None
  if value == PIPE:
    read_end, write_end = os.pipe()
    closers.append(write_end)
    return write_end, read_end
  return value.fileno(), None


class _ForkedProcess:
  """The part of `subprocess.Popen`'s interface the tests use."""

  def __init__(self, args, cwd=None, env=None, stdin=None, stdout=None,
               stderr=None, text=False, start_new_session=False):
    self.args = list(args)
    closers = []
    ends = []
    fds = []
    for value, default in ((stdin, 0), (stdout, 1), (stderr, 2)):
      fd, ours = _stream_fd(value, default, closers, fds[-1] if fds else None)
      fds.append(fd)
      ends.append(ours)
    request = {"arguments": self.args[1:],
               "cwd": os.path.abspath(cwd or os.getcwd()),
               "env": dict(os.environ if env is None else env),
               "new_session": bool(start_new_session)}
    self._connection = _the_server().connect()
    try:
      socket.send_fds(self._connection, [json.dumps(request).encode()], fds)
    finally:
      for fd in closers:
        os.close(fd)
    self.pid = json.loads(self._connection.recv(_MAX_REQUEST))["pid"]
    self.returncode = None
    mode = "r" if text else "rb"
    self.stdin = None
    self.stdout, self.stderr = (None if end is None else os.fdopen(end, mode)
                                for end in ends[1:])

  def poll(self):
    if self.returncode is None:
      readable, _, _ = select.select([self._connection], [], [], 0)
      if readable:
        self._receive_status()
    return self.returncode

  def _receive_status(self):
    self.returncode = json.loads(
        self._connection.recv(_MAX_REQUEST))["returncode"]
    self._connection.close()

  def wait(self, timeout=None):
    if self.returncode is None:
      readable, _, _ = select.select([self._connection], [], [], timeout)
      if not readable:
        raise subprocess.TimeoutExpired(self.args, timeout)
      self._receive_status()
    return self.returncode

  def __enter__(self):
    return self

  def __exit__(self, *unused_exception):
    for stream in (self.stdout, self.stderr):
      if stream is not None:
        stream.close()
    self.wait()

  def communicate(self, input=None, timeout=None):  # pylint: disable=redefined-builtin
    """Reads the pipes to their end, then waits; returns (stdout, stderr)."""
    assert input is None, "a forked command's stdin is never a pipe"
    outputs = [None, None]

    def read(index, stream):
      outputs[index] = stream.read()
      stream.close()

    readers = [threading.Thread(target=read, args=(i, s), daemon=True)
               for i, s in enumerate((self.stdout, self.stderr))
               if s is not None]
    for reader in readers:
      reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    for reader in readers:
      reader.join(None if deadline is None else
                  max(0.0, deadline - time.monotonic()))
      if reader.is_alive():
        raise subprocess.TimeoutExpired(self.args, timeout)
    self.wait(None if deadline is None else
              max(0.0, deadline - time.monotonic()))
    return tuple(outputs)

  def send_signal(self, signal_number):
    if self.poll() is None:
      os.kill(self.pid, signal_number)

  def kill(self):
    self.send_signal(signal.SIGKILL)

  def terminate(self):
    self.send_signal(signal.SIGTERM)


def Popen(args, **options):  # pylint: disable=invalid-name
  """`subprocess.Popen(args, **options)`, forked from the server if it can.

  Args:
    args: the command, `[sys.executable, ...]` to fork it.
    **options: `cwd`, `env`, `stdin` (None, DEVNULL or a file), `stdout`
      (None, PIPE, DEVNULL or a file), `stderr` (the same, or STDOUT),
      `text` and `start_new_session`; any other
      option or value, stdin=PIPE among them, runs a real subprocess.

  Returns:
    A process with Popen's pid, args, stdout, stderr, returncode, poll,
    wait, communicate, send_signal, kill and terminate.
  """
  forked = {name: options.pop(name) for name in
            ("cwd", "env", "stdin", "stdout", "stderr", "text",
             "start_new_session") if name in options}
  if not _forkable(args, forked, options):
    return _SUBPROCESS_POPEN(args, **forked, **options)
  return _ForkedProcess(args, **forked)


def run(args, capture_output=False, timeout=None, check=False, **options):
  """`subprocess.run`, forked from the server where `Popen` can."""
  if capture_output:
    options.update(stdout=PIPE, stderr=PIPE)
  options.setdefault("stdin", DEVNULL)
  process = Popen(args, **options)
  try:
    stdout, stderr = process.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()
    raise
  if check and process.returncode:
    raise subprocess.CalledProcessError(process.returncode, args, stdout,
                                        stderr)
  return subprocess.CompletedProcess(args, process.returncode, stdout,
                                     stderr)


if __name__ == "__main__":
  _server_main(sys.argv[1])


def run_patched(module, argv, patch, cwd, timeout=120):
  """Runs a command's module with `patch` applied first, in a new process.

  For failures a test cannot cause for real (a full disk; a directory root
  can write to): `patch` is Python source run before `module` is imported.

  Args:
    module: the command's module, e.g. "l2l.experiment.train_command".
    argv: its command line, the program name first.
    patch: source code run first.
    cwd: the working directory.
    timeout: seconds.

  Returns:
    The `subprocess.CompletedProcess`, output captured as text.
  """
  code = "{}\nimport importlib, sys\nsys.argv = {!r}\n" \
         "importlib.import_module({!r}).run()\n".format(patch, list(argv),
                                                        module)
  return run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
             text=True, timeout=timeout, check=False)
