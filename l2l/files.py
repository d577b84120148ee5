"""Atomic file writing, the one way every l2l writer puts a file on disk.

A reader (or a crash) never sees a partial file: the bytes go to a temporary
file in the destination's directory, are synced, and only then take the
destination's name. The temporary name is `.<name>.<random>.tmp`, so a
leftover of a killed writer is recognisable.

File modes follow one policy: a file that replaces another keeps the old
file's permissions; a new file gets what `open` would give it under the
current umask (temporary files are private until they are renamed).
"""

import contextlib
import os
import stat
import tempfile


def new_file_mode():
  """The permissions `open` would give a new file under the current umask."""
  umask = os.umask(0o022)
  os.umask(umask)
  return 0o666 & ~umask


def _mode_for(path):
  try:
    return stat.S_IMODE(os.stat(path).st_mode)
  except FileNotFoundError:
    return new_file_mode()


def fsync_directory(directory):
  """Makes a rename in `directory` durable, where the OS allows it."""
  with contextlib.suppress(OSError, AttributeError):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
      os.fsync(fd)
    finally:
      os.close(fd)


@contextlib.contextmanager
def _temporary_beside(path):
  """Yields `(stream, temporary path)` of a synced file next to `path`.

  The temporary file is removed if the block raises, and is left for the
  caller to rename otherwise.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, temporary = tempfile.mkstemp(
      dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as stream:
      yield stream, temporary
      stream.flush()
      os.fsync(stream.fileno())
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(temporary)
    raise


@contextlib.contextmanager
def atomic_writer(path):
  """Opens a binary stream whose contents replace `path` atomically on exit.

  Args:
    path: the destination (str or os.PathLike); missing parent directories
      are created.

  Yields:
    A writable binary stream.

  Raises:
    OSError: if writing fails; `path` is then left unchanged.
  """
  path = os.fspath(path)
  mode = _mode_for(path)
  with _temporary_beside(path) as (stream, temporary):
    yield stream
  try:
    os.chmod(temporary, mode)
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.unlink(temporary)
    raise
  fsync_directory(os.path.dirname(os.path.abspath(path)))


def write_atomic(path, data):
  """Writes `data` to `path`, replacing it atomically.

  Args:
    path: the destination.
    data: bytes.

  Returns:
    `path` as a str.
  """
  with atomic_writer(path) as stream:
    stream.write(data)
  return os.fspath(path)


def write_new(directory, stem, extension, data, attempts=1000):
  """Writes `data` under a name no other file has; never replaces a file.

  The complete temporary file is hard-linked to `<stem><extension>`, or to
  `<stem>-1<extension>`, `<stem>-2<extension>`... if taken.

  Args:
    directory: where to write (created if missing).
    stem: the file name without extension.
    extension: e.g. ".npz".
    data: bytes.
    attempts: how many names to try.

  Returns:
    The path written.

  Raises:
    OSError: if no free name was found or writing fails.
  """
  directory = os.fspath(directory)
  with _temporary_beside(os.path.join(directory, stem + extension)) as (
      stream, temporary):
    stream.write(data)
  try:
    os.chmod(temporary, new_file_mode())
    for attempt in range(attempts):
      suffix = "" if attempt == 0 else "-{}".format(attempt)
      path = os.path.join(directory, stem + suffix + extension)
      try:
        os.link(temporary, path)
      except FileExistsError:
        continue
      fsync_directory(directory)
      return path
    raise OSError("No free file name for {}{} in {}.".format(
        stem, extension, directory))
  finally:
    os.unlink(temporary)
