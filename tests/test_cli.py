"""Tests for cli.py: one-line user errors, flag checks, help, start-up."""

import os
import signal
import subprocess
import sys
import types

import pytest

from l2l.checkpoint import l2l_file
from l2l.experiment import cli
from l2l.experiment import shared_flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
  shared_flags.define_flags()
  cli.FLAGS(["prog", "--num_particle=0"])
  try:
    with pytest.raises(SystemExit):
      cli.check_at_least(1, "num_particle")
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


def test_a_name_too_long_to_create_is_found_before_any_work(tmp_path,
                                                           capsys):
  name = "b" * 300
  with pytest.raises(SystemExit):
    cli.check_writable_directory("records_dir", str(tmp_path / name / "x"))
  assert capsys.readouterr().err == (
      "Error: --records_dir={} cannot be created: the name '{}...' is longer "
      "than the 255 bytes a name may have here.\n".format(
          tmp_path / name / "x", "b" * 40))
  cli.check_writable_directory("records_dir", str(tmp_path / ("b" * 200)))


def test_empty_path_flags_are_refused_naming_the_flag(capsys):
  shared_flags.define_flags()
  cli.FLAGS(["prog", "--data_dir=", "--problem_module=a.py"])
  try:
    with pytest.raises(SystemExit) as exit_info:
      cli.check_not_empty("problem_module", "data_dir")
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        "Error: --data_dir= is invalid: expected a path, got an empty "
        "value.\n")
  finally:
    cli.FLAGS.unparse_flags()
  cli.FLAGS(["prog", "--problem_module=a.py", "--problem_module= "])
  try:
    with pytest.raises(SystemExit):
      cli.check_not_empty("problem_module")
    assert capsys.readouterr().err.startswith(
        "Error: --problem_module= is invalid")
  finally:
    cli.FLAGS.unparse_flags()


def test_program_is_the_command_as_it_was_started(monkeypatch):
  main = sys.modules["__main__"]
  monkeypatch.setattr(main, "__spec__", None, raising=False)
  monkeypatch.setattr(sys, "argv", ["train.py", "--x"])
  assert cli.program() == "python train.py"
  monkeypatch.setattr(sys, "argv", ["/some/where/bin/l2l-train"])
  assert cli.program() == "l2l-train"
  monkeypatch.setattr(main, "__spec__", types.SimpleNamespace(
      name="l2l.experiment.compare_command"))
  assert cli.program() == "python -m l2l.experiment.compare_command"


# Each console script, its help's first lines and flags it must list;
# l2l-train's and l2l-evaluate's are checked from the wheel (test_setup.py),
# each a TensorFlow import: the installed scripts are alike wrappers.
CONSOLE_SCRIPTS = {
    "l2l-compare": ("Usage: l2l-compare [flags] RECORDS.npz [RECORDS.npz "
                    "...]\n\nCompares evaluations", ("--output", "--format")),
}


@pytest.mark.parametrize("command", sorted(CONSOLE_SCRIPTS))
def test_console_scripts_help_describes_the_command(command, tmp_path):
  script = os.path.join(os.path.dirname(sys.executable), command)
  if not os.path.exists(script):
    pytest.skip(command + " is not installed beside " + sys.executable)
  start, listed = CONSOLE_SCRIPTS[command]
  # From elsewhere: the help must not depend on the repository's scripts.
  done = subprocess.run([script, "--help"], cwd=str(tmp_path),
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.startswith(start), done.stdout[:300]
  for flag in listed:
    assert flag in done.stdout, flag


def test_commands_that_need_no_tensorflow_start_without_it():
  # l2l-compare, l2l-data and the local-cluster launcher (whose tasks are
  # train.py processes) start in a fraction of a second: TensorFlow's import
  # alone takes seconds.
  modules = ("l2l.experiment.cli", "l2l.experiment.compare_command",
             "l2l.experiment.local_cluster", "l2l.experiment.launcher_watch",
             "l2l.data.fetch", "l2l")
  done = subprocess.run(
      [sys.executable, "-c", "import sys\n" + "".join(
          "import {}\n".format(m) for m in modules) +
       "print(sorted(m for m in sys.modules if m.split('.')[0] in "
       "('tensorflow', 'sonnet', 'keras', 'util')))"],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr
  assert done.stdout.strip() == "[]"


def test_sigterm_interrupts_as_ctrl_c_naming_itself():
  previous = signal.getsignal(signal.SIGTERM)
  try:
    cli.interrupt_on_sigterm()
    with pytest.raises(KeyboardInterrupt) as interrupt:
      os.kill(os.getpid(), signal.SIGTERM)
      signal.sigtimedwait([], 5)  # The handler runs before this returns.
    assert cli.interrupted_by(interrupt.value) == "SIGTERM"
  finally:
    signal.signal(signal.SIGTERM, previous)
  assert cli.interrupted_by(KeyboardInterrupt()) == "SIGINT"
