"""Tests for l2l/files.py: atomic writes and the one file-mode policy."""

import os
import stat

import pytest

from l2l import files


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
