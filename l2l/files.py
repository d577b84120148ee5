"""Atomic file writing, the one way every l2l writer puts a file on disk.

A reader (or a crash) never sees a partial file: the bytes go to a temporary
file in the destination's directory, are synced, and only then take the
destination's name. The temporary name is `.<name>.<random>.tmp`, so a
leftover of a killed writer is recognisable; the next write of the same
file removes such leftovers (only those, and only when no live writer holds
them).

File modes follow one policy: a file that replaces another keeps the old
file's permissions; a new file gets what `open` would give it under the
current umask (temporary files are private until they are renamed).

The `.npz` archives l2l writes (training states, records) and reads (a
Keras `mnist.npz`) are read back by `read_npz` alone, never with pickles.
"""

import contextlib
import hashlib
import math
import os
import re
import socket
import stat
import tempfile
import time
import zipfile
import zlib

from absl import logging
import numpy as np

try:
  import fcntl  # pylint: disable=g-import-not-at-top
except ImportError:  # Not on Windows: no locks, no stale-file detection.
  fcntl = None

# tempfile.mkstemp's random part of a name.
_RANDOM_LENGTH = 8
# A temporary file this recent may belong to a writer about to lock it.
_STALE_SECONDS = 1.0


# The cache's parent when set (the XDG convention), else ~/.cache.
CACHE_ENV_VAR = "XDG_CACHE_HOME"


def cache_dir():
  """The directory l2l keeps what it can fetch or build again in.

  Returns:
    $XDG_CACHE_HOME/l2l if that variable is set, else ~/.cache/l2l.
  """
  parent = os.environ.get(CACHE_ENV_VAR) or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(parent, "l2l")


def cpuinfo_field(name):
  """The value of the first `name` line of Linux's /proc/cpuinfo, or None
  (another system, or no such line)."""
  try:
    with open("/proc/cpuinfo") as stream:
      for line in stream:
        key, colon, value = line.partition(":")
        if colon and key.strip() == name:
          return value.strip()
  except OSError:
    pass
  return None


def sha256_of(path):
  """The sha256 of the file at `path`, in hex.

  Raises:
    OSError: if it cannot be read.
  """
  digest = hashlib.sha256()
  with open(path, "rb") as stream:
    for block in iter(lambda: stream.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


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


def _temporary_pattern(name, any_stem=False):
  """Matches exactly the temporary names `_temporary_beside` gives `name`,
  or with `any_stem` those it gives any name of `name`'s extension."""
  stem, extension = os.path.splitext(name)
  named = (r"[^/]+" + re.escape(extension) if any_stem else
           re.escape(stem + extension))
  return re.compile(r"\A\." + named + r"\.[A-Za-z0-9_]{" +
                    str(_RANDOM_LENGTH) + r"}\.tmp\Z")


def lock_nonblocking(fd):
  """Takes an exclusive flock on `fd`; False if another process holds one.

  Args:
    fd: an open file descriptor (of a file or a directory).

  Returns:
    Whether it took the lock (always, where there is no fcntl).
  """
  if fcntl is None:
    return True
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    return False
  return True


def remove_stale_temporaries(path, any_stem=False):
  """Removes what killed writers of `path` left: `.<name>.<random>.tmp`.

  Only files of exactly that pattern, in `path`'s directory, are candidates,
  and only those no live writer holds: a writer keeps its temporary file
  flock-ed until it is renamed, and a killed process's flock is released. A
  file younger than `_STALE_SECONDS` is skipped too, since a writer locks its
  file a moment after creating it.

  Args:
    path: the destination whose leftovers to remove.
    any_stem: also those of every other name with `path`'s extension: for
      files whose names are new each time (a records file's carries its
      time), which no later write of the same name would clean up after.

  Returns:
    The removed paths.
  """
  directory = os.path.dirname(os.path.abspath(path))
  pattern = _temporary_pattern(os.path.basename(path), any_stem)
  removed = []
  try:
    names = os.listdir(directory)
  except OSError:
    return removed
  now = time.time()
  for name in names:
    if not pattern.match(name):
      continue
    candidate = os.path.join(directory, name)
    try:
      fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
      continue
    try:
      info = os.fstat(fd)
      if (stat.S_ISREG(info.st_mode) and
          now - info.st_mtime >= _STALE_SECONDS and lock_nonblocking(fd)):
        os.unlink(candidate)
        removed.append(candidate)
    except OSError:
      pass
    finally:
      os.close(fd)
  if removed:
    logging.info("Removed %d leftover temporary file(s) of %s: %s",
                 len(removed), path, ", ".join(removed))
  return removed


def _with_path(error, path, replace=False):
  """`error` naming `path` if it names no file (e.g. ENOSPC on a write),
  or with `replace` whatever file it names."""
  if (isinstance(error, OSError) and error.errno is not None and
      (error.filename is None or replace)):
    return type(error)(error.errno, error.strerror, path)
  return error


@contextlib.contextmanager
def _temporary_beside(path, any_stem=False):
  """Yields `(stream, temporary path)` of a locked file next to `path`.

  The caller writes, syncs and renames the file inside the block (it stays
  open, hence flock-ed, until the block ends, so no other writer takes it
  for a leftover). The temporary file is removed if the block raises.
  Leftovers are removed first (`remove_stale_temporaries(path, any_stem)`).
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  remove_stale_temporaries(path, any_stem)
  try:
    fd, temporary = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(path) + ".",
        suffix=".tmp")
  except OSError as error:
    # The file that could not be written is `path`, not the temporary
    # name the error gives (a read-only directory).
    raise _with_path(error, path, replace=True) from error
  lock_nonblocking(fd)
  try:
    with os.fdopen(fd, "wb") as stream:
      yield stream, temporary
  except BaseException as error:
    with contextlib.suppress(OSError):
      os.unlink(temporary)
    named = _with_path(error, path)
    if named is not error:
      raise named from error
    raise


def _sync(stream):
  stream.flush()
  os.fsync(stream.fileno())


@contextlib.contextmanager
def atomic_writer(path):
  """Opens a binary stream whose contents replace `path` atomically on exit.

  Leftover temporary files of `path` from killed writers are removed first
  (see `remove_stale_temporaries`).

  Args:
    path: the destination (str or os.PathLike); missing parent directories
      are created.

  Yields:
    A writable binary stream.

  Raises:
    OSError: if writing fails (naming `path`); `path` is then left unchanged.
  """
  path = os.fspath(path)
  mode = _mode_for(path)
  with _temporary_beside(path) as (stream, temporary):
    yield stream
    _sync(stream)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
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


def read_npz(path):
  """Every array of an `.npz` archive, read without unpickling anything.

  Args:
    path: the archive.

  Returns:
    A dict of array names to ndarrays.

  Raises:
    ValueError: if `path` is not an `.npz` archive of plain arrays (a
      file of another kind, a truncated or corrupt archive, or one that
      holds pickled objects), with what was wrong.
    FileNotFoundError: if `path` does not exist.
    OSError: if it cannot be read (permissions, a directory).
  """
  # np.load reads .npy files and pickles too; an .npz archive is a zip.
  if not os.path.exists(path):
    raise FileNotFoundError("No file {}.".format(path))
  # Opened here so that a file that cannot be read says so (is_zipfile
  # would call it "not a zip").
  with open(path, "rb") as stream:
    is_zip = zipfile.is_zipfile(stream)
  if not is_zip:
    raise ValueError("it is not an .npz archive (a zip file of arrays)")
  try:
    _check_array_sizes(path)
    with np.load(path, allow_pickle=False) as archive:
      return {key: archive[key] for key in archive.files}
  except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error,
          RuntimeError, NotImplementedError, MemoryError) as error:
    # RuntimeError: an encrypted member; NotImplementedError: a compression
    # zipfile cannot read.
    # Some say nothing (an EOFError of a corrupt member): name the kind.
    raise ValueError(str(error) or "{} while reading it".format(
        type(error).__name__)) from error


def _check_array_sizes(path):
  """Raises ValueError for a member whose header declares more data than
  the member holds: loading it would first allocate that much (a header
  claiming 1e12 values in a file of a kilobyte)."""
  with zipfile.ZipFile(path) as archive:
    for info in archive.infolist():
      if not info.filename.endswith(".npy"):
        continue
      with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
          shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:
          shape, _, dtype = np.lib.format.read_array_header_2_0(member)
      declared = math.prod(shape) * dtype.itemsize
      if declared > info.file_size:
        raise ValueError("{} declares an array of shape {} ({} bytes) in "
                         "{} bytes".format(info.filename, shape, declared,
                                           info.file_size))


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
  # Each name is new, so no later write of it would remove a killed
  # writer's leftover: every leftover of the extension goes.
  with _temporary_beside(os.path.join(directory, stem + extension),
                         any_stem=True) as (stream, temporary):
    stream.write(data)
    _sync(stream)
    os.chmod(temporary, new_file_mode())
    try:
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


class DirectoryBusyError(OSError):
  """Another live process holds a directory's lock."""


class DirectoryMovedError(OSError):
  """A directory this process locked was moved, renamed or deleted."""


# The directories this process holds locks on: {absolute path as locked:
# (st_dev, st_ino) of the directory then}.
_locked_directories = {}


def check_still_locked(directory):
  """Raises unless `directory` is still the one this process locked.

  A run's save path moved or renamed while it trains keeps the lock and the
  states written so far; a write to the old path would make a second,
  unlocked copy of the run there. A directory this process holds no lock
  on passes.

  Raises:
    DirectoryMovedError: naming the directory, if it is gone or another.
  """
  directory = os.path.abspath(os.fspath(directory))
  locked = _locked_directories.get(directory)
  if locked is None:
    return
  try:
    now = os.stat(directory)
  except FileNotFoundError:
    now = None
  if now is None or (now.st_dev, now.st_ino) != locked:
    raise DirectoryMovedError(
        "{} is no longer the directory this run locked: it was moved, "
        "renamed or deleted while the run was writing to it. Nothing more is "
        "written there, so as not to start a second, unlocked copy of the "
        "run; its states up to the last checkpoint went with the directory: "
        "continue it where that is now, with --resume.".format(directory))


def refuse_if_locked(directory, lock_name=".lock"):
  """Raises as `directory_lock` would if a live process holds its lock now.

  For a command that would otherwise learn it only after a slow start (a
  local cluster's chief takes the lock once its tasks are up). The answer
  may be stale at once: the lock itself stays the one arbiter.

  Args:
    directory: the directory.
    lock_name: the lock file's name.

  Raises:
    DirectoryBusyError: naming the holder.
  """
  if fcntl is None:
    return
  try:
    stream = open(os.path.join(os.fspath(directory), lock_name),
                  encoding="utf-8", errors="replace")
  except OSError:
    return
  with stream:
    try:
      # Shared, and released on return; a run taking the lock in that
      # very moment would find it held, as it would by any holder.
      fcntl.flock(stream.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
      raise _busy(directory, stream) from None


def _busy(directory, stream):
  """The DirectoryBusyError for `directory`, whose lock file is `stream`."""
  return DirectoryBusyError(
      "{} is in use by another run ({}); wait for it to finish or choose "
      "another directory.".format(directory, _lock_owner_text(stream)))


def _lock_owner_text(stream):
  stream.seek(0)
  text = " ".join(stream.read(4096).split())
  return text or "a process that has not yet written its details"


def distinct_names(paths):
  """Short names telling `paths` apart, for tables and legends.

  Args:
    paths: file or directory paths.

  Returns:
    Their base names, or the paths as given where two base names are the
    same.
  """
  paths = [os.fspath(path) for path in paths]
  names = [os.path.basename(os.path.normpath(path)) for path in paths]
  return paths if len(set(names)) < len(names) else names


def remove_if_only(directory, name):
  """Removes `directory` and its file `name` if that file is all it holds.

  For a directory a command created, then refused to use: nothing in it is
  the user's. Call it while still holding a lock that is that file, so no
  other process takes the directory meanwhile. Errors are ignored: at
  worst an empty directory stays.

  Args:
    directory: the directory.
    name: the one file it may hold.
  """
  try:
    if os.listdir(directory) == [name]:
      os.remove(os.path.join(directory, name))
      os.rmdir(directory)
  except OSError:
    pass


@contextlib.contextmanager
def directory_lock(directory, description, lock_name=".lock"):
  """Holds an exclusive lock on `directory` for one writer at a time.

  The lock is an flock on `<directory>/<lock_name>`, which holds the owner's
  pid, host, start time and `description` (e.g. its command line) so a
  refused process can name it. The operating system releases an flock when
  its process dies, however it dies, so a crash never leaves the directory
  locked; the file itself stays (removing it would race with a new owner).

  Args:
    directory: the directory (created if missing).
    description: what holds the lock, e.g. the command line.
    lock_name: the lock file's name.

  Yields:
    The lock file's path.

  Raises:
    DirectoryBusyError: naming the holder, if another process holds it.
    OSError: if the lock file cannot be created.
  """
  directory = os.fspath(directory)
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, lock_name)
  # One process at a time replaces a shared lock file and locks what is
  # then there: two runs starting together on one hard-link copy would
  # otherwise each replace it, and each lock a file of its own.
  with _taking_turns(directory):
    _unshare(path)
    stream, writable = _open_lock_file(path)
    if not lock_nonblocking(stream.fileno()):
      with stream:
        raise _busy(directory, stream)
  with stream:
    if writable:
      stream.seek(0)
      stream.truncate()
      stream.write("pid {} on {}, since {}: {}\n".format(
          os.getpid(), socket.gethostname(),
          time.strftime("%Y-%m-%d %H:%M:%S"), description))
      stream.flush()
    held = os.path.abspath(directory)
    identity = os.stat(directory)
    _locked_directories[held] = (identity.st_dev, identity.st_ino)
    try:
      yield path
    finally:
      _locked_directories.pop(held, None)


def _open_lock_file(path):
  """Opens (creating) a lock file.

  Returns:
    `(stream, writable)`: the text stream, and whether it was opened for
    writing, which a file left by another user (a shared directory) is
    not: an flock needs only read access, so the lock still works there;
    it just cannot say who holds it.

  Raises:
    OSError: naming the path, if it cannot be opened.
  """
  try:
    return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, new_file_mode()),
                     "r+", encoding="utf-8", errors="replace"), True
  except PermissionError as error:
    try:
      fd = os.open(path, os.O_RDONLY)
    except OSError:
      raise _with_path(error, path) from error
  except OSError as error:
    raise _with_path(error, path) from error
  return os.fdopen(fd, "r", encoding="utf-8", errors="replace"), False


@contextlib.contextmanager
def _taking_turns(directory):
  """Holds an flock on `directory` itself for a moment, where the OS gives
  one (not on every network file system, and not without fcntl): processes
  entering it for one directory then take turns."""
  fd = None
  if fcntl is not None:
    with contextlib.suppress(OSError):
      fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
  try:
    if fd is not None:
      with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    if fd is not None:
      os.close(fd)


def _unshare(path):
  """Gives a lock file linked from elsewhere (a hard-link copy of its
  directory: `cp -al`, `rsync --link-dest`) a file of its own, so that the
  two directories no longer share one lock."""
  try:
    if os.stat(path).st_nlink > 1:
      write_atomic(path, b"")
  except FileNotFoundError:
    pass
  except PermissionError:
    pass  # Another user's: the lock works on theirs (_open_lock_file).
