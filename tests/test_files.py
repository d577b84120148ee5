"""Tests for l2l/files.py: atomic writes, the one file-mode policy, leftovers
of killed writers, directory locks and reading .npz archives."""

import errno
import os
import pickle
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import flock_is_held
from l2l import files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def umask_027():
  """Runs the test under umask 027, restoring the caller's afterwards."""
  old = os.umask(0o027)
  try:
    yield
  finally:
    os.umask(old)


def _mode(path):
  return stat.S_IMODE(os.stat(path).st_mode)


def _temporary_files(directory):
  return [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_new_file_mode_follows_the_umask(umask_027):
  del umask_027  # Sets the umask.
  assert files.new_file_mode() == 0o640
  # Reading the umask leaves it as it was.
  assert os.umask(0o027) == 0o027


def test_a_new_file_gets_the_umask_mode(tmp_path, umask_027):
  del umask_027  # Sets the umask.
  path = tmp_path / "sub" / "new.bin"
  assert files.write_atomic(path, b"abc") == str(path)
  assert path.read_bytes() == b"abc"
  assert _mode(path) == 0o640
  assert _temporary_files(tmp_path / "sub") == []


def test_replacing_keeps_the_old_files_mode(tmp_path, umask_027):
  del umask_027  # Sets the umask.
  path = tmp_path / "old.bin"
  path.write_bytes(b"old")
  os.chmod(path, 0o604)
  files.write_atomic(path, b"new")
  assert path.read_bytes() == b"new"
  assert _mode(path) == 0o604


def test_a_failing_write_leaves_the_destination_and_no_temporary(tmp_path):
  path = tmp_path / "keep.bin"
  path.write_bytes(b"precious")
  with pytest.raises(RuntimeError, match="disk full"):
    with files.atomic_writer(path) as stream:
      stream.write(b"partial")
      raise RuntimeError("disk full")
  assert path.read_bytes() == b"precious"
  assert os.listdir(tmp_path) == ["keep.bin"]


def test_write_new_never_replaces_and_numbers_the_names(tmp_path,
                                                        umask_027):
  del umask_027  # Sets the umask.
  (tmp_path / "run.npz").write_bytes(b"first")
  second = files.write_new(tmp_path, "run", ".npz", b"second")
  third = files.write_new(tmp_path, "run", ".npz", b"third")
  assert second == os.path.join(str(tmp_path), "run-1.npz")
  assert third == os.path.join(str(tmp_path), "run-2.npz")
  assert (tmp_path / "run.npz").read_bytes() == b"first"
  assert (tmp_path / "run-1.npz").read_bytes() == b"second"
  assert (tmp_path / "run-2.npz").read_bytes() == b"third"
  assert _mode(second) == 0o640
  assert _temporary_files(tmp_path) == []


def test_write_new_takes_the_plain_name_when_free(tmp_path):
  path = files.write_new(tmp_path / "new_dir", "run", ".npz", b"x")
  assert path == os.path.join(str(tmp_path / "new_dir"), "run.npz")


def test_write_new_without_a_free_name(tmp_path):
  (tmp_path / "run.npz").write_bytes(b"a")
  (tmp_path / "run-1.npz").write_bytes(b"b")
  with pytest.raises(OSError, match="No free file name for run.npz"):
    files.write_new(tmp_path, "run", ".npz", b"c", attempts=2)
  assert sorted(os.listdir(tmp_path)) == ["run-1.npz", "run.npz"]


def _old(path):
  path.write_bytes(b"partial")
  os.utime(path, (time.time() - 60, time.time() - 60))
  return path


def test_next_save_removes_only_the_leftovers_of_that_file(tmp_path):
  leftover = _old(tmp_path / ".cw.l2l.abcd_123.tmp")
  others = [_old(tmp_path / name) for name in (
      ".cw.l2l.abcd_1234.tmp",    # Not tempfile's 8 characters.
      ".cw.l2l.abcd_123.tmp.bak",  # The user's.
      ".adam.l2l.abcd_123.tmp",   # Another file's: its own save cleans it.
      "cw.l2l.abcd_123.tmp")]     # Not hidden.
  fresh = tmp_path / ".cw.l2l.fresh123.tmp"
  fresh.write_bytes(b"a writer may be about to lock this")
  files.write_atomic(tmp_path / "cw.l2l", b"saved")
  assert not leftover.exists()
  assert all(path.exists() for path in others)
  assert fresh.exists()
  assert (tmp_path / "cw.l2l").read_bytes() == b"saved"


def test_a_new_file_removes_the_leftovers_of_every_name_of_its_kind(
    tmp_path):
  # Records files have new names each time: a killed writer's leftover
  # would stay for good if only the same name's next write removed it.
  leftovers = [_old(tmp_path / name) for name in (
      ".quadratic_L2L_20261208-010203.npz.abcd_123.tmp",
      ".quadratic_Adam_20261208-010204-1.npz.x1y2z3w4.tmp")]
  others = [_old(tmp_path / name) for name in (
      ".quadratic_L2L_20261208-010203.png.abcd_123.tmp",  # Another kind.
      ".run.npz.abcd_1234.tmp",   # Not tempfile's 8 characters.
      "run.npz.abcd_123.tmp")]    # Not hidden.
  fresh = tmp_path / ".run.npz.fresh123.tmp"
  fresh.write_bytes(b"a writer may be about to lock this")
  written = files.write_new(tmp_path, "run", ".npz", b"records")
  assert not any(path.exists() for path in leftovers)
  assert all(path.exists() for path in others) and fresh.exists()
  assert os.path.basename(written) == "run.npz"


def test_a_live_writers_temporary_file_is_kept(tmp_path):
  target = tmp_path / "cw.l2l"
  with files.atomic_writer(target) as stream:
    stream.write(b"slow")
    (temporary,) = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    os.utime(tmp_path / temporary, (time.time() - 60, time.time() - 60))
    # Another save of the file meanwhile: the flock-ed file is not stale.
    assert files.remove_stale_temporaries(str(target)) == []
  assert target.read_bytes() == b"slow"
  assert os.listdir(tmp_path) == ["cw.l2l"]


def test_a_full_disk_names_the_path(tmp_path, monkeypatch):
  def full(fd):
    del fd
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(files.os, "fsync", full)
  target = tmp_path / "cw.l2l"
  with pytest.raises(OSError, match="No space left on device") as raised:
    files.write_atomic(target, b"data")
  assert raised.value.errno == errno.ENOSPC
  assert raised.value.filename == str(target)
  assert os.listdir(tmp_path) == []


def test_a_read_only_directory_names_the_path_not_its_temporary(
    tmp_path, monkeypatch):
  def read_only(dir, prefix, suffix):  # pylint: disable=redefined-builtin
    raise OSError(errno.EROFS, "Read-only file system",
                  os.path.join(dir, prefix + "abcd1234" + suffix))

  monkeypatch.setattr(files.tempfile, "mkstemp", read_only)
  target = tmp_path / "comparison.png"
  with pytest.raises(OSError) as raised:
    files.write_atomic(target, b"data")
  assert raised.value.errno == errno.EROFS
  assert raised.value.filename == str(target)


def test_directory_lock_refuses_a_second_holder_and_names_the_first(
    tmp_path):
  with files.directory_lock(str(tmp_path), "python train.py --seed=1") as lock:
    assert os.path.basename(lock) == ".lock"
    with pytest.raises(files.DirectoryBusyError) as raised:
      with files.directory_lock(str(tmp_path), "second"):
        pass
    message = str(raised.value)
    assert "in use by another run" in message
    assert "pid {} ".format(os.getpid()) in message
    assert message.count("python train.py --seed=1") == 1
  with files.directory_lock(str(tmp_path), "third"):
    assert "third" in (tmp_path / ".lock").read_text()


def test_a_hard_link_copy_of_a_directory_does_not_share_its_lock(tmp_path):
  # cp -al / rsync --link-dest link .lock too: the copy's run would be
  # refused by the original's, and rewrite its owner line.
  original, copy = tmp_path / "original", tmp_path / "copy"
  with files.directory_lock(str(original), "the original"):
    copy.mkdir()
    os.link(original / ".lock", copy / ".lock")
    with files.directory_lock(str(copy), "the copy"):
      assert "the copy" in (copy / ".lock").read_text()
    assert "the original" in (original / ".lock").read_text()
    assert os.stat(original / ".lock").st_nlink == 1


def test_runs_on_one_directory_replace_a_shared_lock_file_in_turns(
    tmp_path, monkeypatch):
  # Two runs starting together on one hard-link copy would each replace
  # its shared .lock, then each lock a file of its own, unless they take
  # turns: the directory itself is locked while one replaces and locks.
  original, copy = tmp_path / "original", tmp_path / "copy"
  original.mkdir()
  (original / ".lock").touch()
  copy.mkdir()
  os.link(original / ".lock", copy / ".lock")
  real_unshare = files._unshare  # pylint: disable=protected-access
  turns = []

  def unshare(path):
    turns.append("taken" if flock_is_held(os.path.dirname(path))
                 else "open")
    real_unshare(path)

  monkeypatch.setattr(files, "_unshare", unshare)
  with files.directory_lock(str(copy), "the copy"):
    assert os.stat(copy / ".lock").st_nlink == 1
    with pytest.raises(files.DirectoryBusyError, match="the copy"):
      with files.directory_lock(str(copy), "a second run on the copy"):
        pass
    # The directory is locked only while a run takes its lock file.
    assert not flock_is_held(copy)
  assert turns == ["taken", "taken"]


def test_a_locked_directory_moved_away_is_no_longer_written(tmp_path):
  locked, moved = tmp_path / "run", tmp_path / "moved"
  files.check_still_locked(str(locked))  # Not locked: nothing to check.
  with files.directory_lock(str(locked), "mine"):
    files.check_still_locked(str(locked))
    os.rename(locked, moved)
    with pytest.raises(files.DirectoryMovedError,
                       match=r"run is no longer the directory this run "
                       r"locked: it was moved, renamed or deleted"):
      files.check_still_locked(str(locked))
    # Another directory at the old path is not it either.
    locked.mkdir()
    with pytest.raises(files.DirectoryMovedError):
      files.check_still_locked(str(locked))
  files.check_still_locked(str(locked))


def test_a_lock_file_another_user_left_still_locks(tmp_path, monkeypatch):
  # A shared directory's .lock, owned by another user, is read-only to us:
  # the flock still works on it, so runs are neither locked out nor
  # unprotected.
  (tmp_path / ".lock").write_text("pid 1 on elsewhere: theirs\n")
  real_open = os.open

  def not_ours(path, flags, *args):
    if path.endswith(".lock") and flags & os.O_RDWR:
      raise PermissionError(errno.EACCES, "Permission denied", path)
    return real_open(path, flags, *args)

  monkeypatch.setattr(files.os, "open", not_ours)
  with files.directory_lock(str(tmp_path), "mine"):
    with pytest.raises(files.DirectoryBusyError,
                       match="in use by another run .*theirs"):
      with files.directory_lock(str(tmp_path), "second"):
        pass
  assert (tmp_path / ".lock").read_text() == "pid 1 on elsewhere: theirs\n"


def test_a_killed_holder_does_not_leave_the_directory_locked(tmp_path):
  holder = subprocess.Popen(
      [sys.executable, "-c",
       "import sys, time\n"
       "from l2l import files\n"
       "with files.directory_lock(sys.argv[1], 'holder'):\n"
       "  print('locked', flush=True)\n"
       "  time.sleep(60)\n", str(tmp_path)],
      cwd=ROOT, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline() == "locked\n"
    with pytest.raises(files.DirectoryBusyError, match="holder"):
      with files.directory_lock(str(tmp_path), "me"):
        pass
  finally:
    holder.kill()
    holder.wait()
  with files.directory_lock(str(tmp_path), "me"):
    pass


def test_read_npz_reads_every_array(tmp_path):
  where = tmp_path / "a.npz"
  np.savez(where, x=np.arange(3), y=np.float32(0.5))
  arrays = files.read_npz(where)
  assert sorted(arrays) == ["x", "y"]
  np.testing.assert_array_equal(arrays["x"], [0, 1, 2])
  assert arrays["y"] == np.float32(0.5)


def test_read_npz_refuses_what_np_load_would_unpickle_or_misread(tmp_path):
  text = tmp_path / "text.npz"
  text.write_text("hello")
  single = tmp_path / "single.npz"
  with open(single, "wb") as stream:
    np.save(stream, np.arange(3))  # An .npy file, which np.load reads.
  pickled = tmp_path / "pickled.npz"
  pickled.write_bytes(pickle.dumps({"x": 1}))
  objects = tmp_path / "objects.npz"
  np.savez(objects, x=np.array([{"a": 1}], dtype=object))
  truncated = tmp_path / "truncated.npz"
  np.savez(truncated, x=np.arange(1000))
  truncated.write_bytes(truncated.read_bytes()[:-100])
  for path in (text, single, pickled, truncated):
    with pytest.raises(ValueError, match="not an .npz archive"):
      files.read_npz(path)
  with pytest.raises(ValueError, match="Object arrays cannot be loaded"):
    files.read_npz(objects)
  with pytest.raises(FileNotFoundError, match="No file"):
    files.read_npz(tmp_path / "missing.npz")
  with pytest.raises(IsADirectoryError):
    files.read_npz(tmp_path)


def test_distinct_names_are_base_names_unless_two_repeat():
  assert files.distinct_names(["/a/q.npz", "/b/r.npz", "/c/d/"]) == [
      "q.npz", "r.npz", "d"]
  assert files.distinct_names(["/a/q", "/b/q", "/b/r"]) == [
      "/a/q", "/b/q", "/b/r"]
