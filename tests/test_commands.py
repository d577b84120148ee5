"""Tests for tests/commands.py: a forked command is what `python` runs.

Each probe runs twice, forked and as a real subprocess, and the two must
agree on everything a command's test reads.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

import commands

# What a script sees of its start: arguments, import path, directory, an
# environment variable, whether it is __main__; then output on both
# streams, an exit handler and an exit status.
PROBE = """
import atexit, json, os, sys
atexit.register(lambda: print("exit handler", flush=True))
print(json.dumps({"argv": sys.argv, "path0": sys.path[0],
                  "cwd": os.getcwd(), "env": os.environ.get("PROBE_VALUE"),
                  "main": __name__}))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[-1]))
"""


def _both(args, **options):
  return [runner(args, capture_output=True, text=True, timeout=60,
                 check=False, **options)
          for runner in (commands.run, subprocess.run)]


def _script(directory):
  path = directory / "probe.py"
  path.write_text(PROBE)
  return path


@pytest.mark.parametrize("form", ["script", "-c", "-m"])
def test_a_forked_command_starts_and_ends_as_python_would(tmp_path, form):
  script = _script(tmp_path)
  args = {"script": [str(script)], "-c": ["-c", PROBE],
          "-m": ["-m", "probe"]}[form]
  env = dict(os.environ, PROBE_VALUE="set")
  forked, real = _both([sys.executable] + args + ["one", "3"],
                       cwd=str(tmp_path), env=env)
  assert forked.returncode == real.returncode == 3
  assert forked.stdout == real.stdout
  assert '"env": "set"' in forked.stdout
  assert '"main": "__main__"' in forked.stdout
  assert forked.stdout.endswith("exit handler\n")
  assert forked.stderr == real.stderr == "to stderr\n"


def test_an_uncaught_exception_is_exit_status_1_with_its_traceback():
  forked, real = _both([sys.executable, "-c", "raise ValueError('no')"])
  assert forked.returncode == real.returncode == 1
  assert forked.stderr.endswith("ValueError: no\n")


@pytest.mark.parametrize("signal_number, expected", [
    # Python's Ctrl-C handler: KeyboardInterrupt, then death by SIGINT.
    (signal.SIGINT, -signal.SIGINT),
    (signal.SIGTERM, -signal.SIGTERM),
    (signal.SIGKILL, -signal.SIGKILL),
])
def test_a_signal_ends_a_forked_command_as_it_would_python(
    signal_number, expected):
  process = commands.Popen(
      [sys.executable, "-c",
       "import time\nprint('ready', flush=True)\ntime.sleep(60)"],
      stdout=commands.PIPE, stderr=commands.PIPE, text=True)
  assert process.stdout.readline() == "ready\n"
  assert process.poll() is None
  process.send_signal(signal_number)
  _, stderr = process.communicate(timeout=60)
  assert process.returncode == expected
  assert ("KeyboardInterrupt" in stderr) == (signal_number == signal.SIGINT)


def test_wait_times_out_while_the_command_runs():
  process = commands.Popen([sys.executable, "-c",
                            "import time; time.sleep(60)"])
  start = time.monotonic()
  with pytest.raises(subprocess.TimeoutExpired):
    process.wait(timeout=0.2)
  assert time.monotonic() - start < 5
  process.kill()
  assert process.wait(timeout=60) == -signal.SIGKILL


def test_other_executables_and_options_run_a_real_subprocess(tmp_path):
  done = commands.run(["/bin/echo", "plain"], capture_output=True,
                      text=True, check=True)
  assert done.stdout == "plain\n"
  process = commands.Popen([sys.executable, "-c", "print(1)"],
                           stdout=commands.PIPE,
                           preexec_fn=lambda: None)
  assert isinstance(process, subprocess.Popen)
  assert process.communicate(timeout=60)[0] == b"1\n"
  process = commands.Popen([sys.executable, "-c", "print(input())"],
                           stdin=commands.PIPE, stdout=commands.PIPE)
  assert isinstance(process, subprocess.Popen)
  assert process.communicate(b"typed\n", timeout=60)[0] == b"typed\n"
