"""Tests for cli.py: one-line user errors and flag checks."""

import pytest

from l2l.checkpoint import l2l_file
from l2l.experiment import cli


def test_fail_writes_one_line_and_exits_1(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.fail("bad\n  value\tgiven")
  assert exit_info.value.code == 1
  assert capsys.readouterr().err == "Error: bad value given\n"


def test_plain_errors_turns_user_errors_into_one_line(capsys):
  with pytest.raises(SystemExit) as exit_info:
    with cli.plain_errors("Could not write out.png"):
      raise l2l_file.CheckpointError("x.l2l is not an l2l checkpoint")
  assert exit_info.value.code == 1
  assert capsys.readouterr().err == (
      "Error: Could not write out.png: x.l2l is not an l2l checkpoint\n")


def test_plain_errors_lets_bugs_through():
  with pytest.raises(ZeroDivisionError):
    with cli.plain_errors():
      raise ZeroDivisionError("a bug, not bad input")


def test_checks_name_the_flag_the_value_and_what_is_expected(capsys):
  cli.define_shared_flags()
  cli.define_shared_flags()  # A second call defines nothing twice.
  cli.FLAGS(["prog", "--num_particle=0"])
  try:
    with pytest.raises(SystemExit):
      cli.check_shared_flags()
    assert capsys.readouterr().err == (
        "Error: --num_particle=0 is invalid: expected an integer >= 1.\n")
    with pytest.raises(SystemExit):
      cli.check_with("num_particle", lambda value: int("x"))
    assert capsys.readouterr().err.startswith(
        "Error: --num_particle=0 is invalid: invalid literal")
  finally:
    cli.FLAGS.unparse_flags()


def test_a_writable_directory_passes_and_a_file_fails(tmp_path, capsys):
  cli.check_writable_directory("save_path", str(tmp_path / "new" / "dir"))
  assert not (tmp_path / "new").exists()  # Checked, nothing created.
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(SystemExit):
    cli.check_writable_directory("save_path", str(blocker))
  assert "it exists and is not a directory" in capsys.readouterr().err
