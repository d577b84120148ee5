"""Tests for launcher_watch.py: a local_cluster task stops itself, as its
launcher would have stopped it, when the launcher dies without doing so.

Each task here is reduced to its watch, and its launcher to the lock
(conftest.fake_launcher), so that a test kills it in a few seconds; the
whole cluster's case is in test_local_cluster.py.
"""

import os
import re
import signal
import sys
import time

import pytest

import commands
from conftest import LAUNCHER_GONE
from conftest import ROOT
from conftest import fake_launcher
from conftest import wait_for
from l2l.experiment import launcher_watch
from l2l.experiment import local_cluster


# A task reduced to its watch, with graces of 1 s and 0.5 s. Its chief hears
# SIGTERM but does not end (as one whose epoch is stuck), and writes down
# each SIGTERM.
_TASK = """
import os, signal, sys, time
from l2l.experiment import launcher_watch
from l2l.experiment import local_cluster
local_cluster.END_GRACE_SECONDS = 1.0
local_cluster.KILL_GRACE_SECONDS = 0.5
if sys.argv[1] == "chief":
  signal.signal(signal.SIGTERM, lambda *_: os.write(1, b"SIGTERM\\n"))
launcher_watch.start(chief=sys.argv[1] == "chief")
os.write(1, b"watching\\n")
time.sleep(60)
"""


@pytest.mark.parametrize("role", ["chief", "worker"])
def test_a_task_stops_itself_as_its_killed_launcher_would_have(tmp_path,
                                                                role):
  launcher = fake_launcher(tmp_path)
  out, err = tmp_path / "task.out", tmp_path / "task.err"
  env = dict(os.environ, **{local_cluster.LAUNCHER_LOCK_ENV: str(
      tmp_path / local_cluster.LAUNCHER_LOCK_NAME)})
  with open(out, "xb") as stdout, open(err, "xb") as stderr:
    # Forked by the tests' command server, as a cluster's tasks are in the
    # tests: no child of the launcher's.
    task = commands.Popen([sys.executable, "-c", _TASK, role], cwd=ROOT,
                          env=env, stdout=stdout, stderr=stderr)
  try:
    wait_for(lambda: "watching" in out.read_text(), "the task's watch",
             seconds=60, poll=0.05)
    # Its launcher lives: the task goes on, and says nothing.
    time.sleep(0.5)
    assert task.poll() is None
    assert out.read_text() == "watching\n" and not err.read_text()
    launcher.kill()
    killed = time.monotonic()
    status = task.wait(timeout=30)
    seconds = time.monotonic() - killed
  finally:
    for process in (task, launcher):
      process.kill()
      process.wait()
  said = [line for line in err.read_text().splitlines()
          if LAUNCHER_GONE in line]
  assert len(said) == 1
  if role == "chief":
    # SIGTERM at once, a second after the kill grace, SIGKILL as long later.
    assert out.read_text() == "watching\nSIGTERM\nSIGTERM\n"
    assert status == -signal.SIGKILL
    assert 1.0 <= seconds < 10
    assert said[0].endswith("with SIGTERM now (the chief finishes its epoch, "
                            "keeps its training state and ends the run), a "
                            "second SIGTERM after 0.5 s and SIGKILL after 1 "
                            "s.")
  else:
    # Only after the launcher's end grace and kill grace: in sync mode the
    # chief needs every worker to finish its epoch.
    assert out.read_text() == "watching\n"
    assert status == -signal.SIGTERM
    assert 1.5 <= seconds < 10
    assert said[0].endswith("this task ends with the run the chief ends, or "
                            "with SIGTERM after 1.5 s.")


def test_a_task_started_by_hand_watches_nothing(monkeypatch, tmp_path):
  monkeypatch.delenv(local_cluster.LAUNCHER_LOCK_ENV, raising=False)
  assert launcher_watch.start(chief=True) is None
  missing = tmp_path / "launcher.lock"
  monkeypatch.setenv(local_cluster.LAUNCHER_LOCK_ENV, str(missing))
  with pytest.raises(OSError, match=re.escape(
      "L2L_LAUNCHER_LOCK={} names a lock file this task cannot open: No such "
      "file".format(missing))):
    launcher_watch.start(chief=True)
