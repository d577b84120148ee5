"""Tests for files.py: atomic writes, leftovers of killed writers, locks."""

import errno
import os
import subprocess
import sys
import time

import pytest

from l2l import files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _old(path):
  path.write_bytes(b"partial")
  os.utime(path, (time.time() - 60, time.time() - 60))
  return path


def test_write_atomic_replaces_and_keeps_the_mode(tmp_path):
  target = tmp_path / "cw.l2l"
  target.write_bytes(b"old")
  os.chmod(target, 0o640)
  assert files.write_atomic(target, b"new") == str(target)
  assert target.read_bytes() == b"new"
  assert oct(os.stat(target).st_mode & 0o777) == oct(0o640)
  assert sorted(os.listdir(tmp_path)) == ["cw.l2l"]


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
