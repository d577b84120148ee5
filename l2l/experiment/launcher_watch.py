"""Stops a task of local_cluster.py when its launcher is gone.

The launcher stops the tasks it started when it exits, is interrupted or
gets SIGTERM (`local_cluster.stop_all`). A launcher that dies without
running that code (kill -9, the OOM killer, a closed terminal) would leave
them running: holding their ports, the CPU and the save directory's lock,
so the next run on that directory is refused, with the ps task serving
forever.

So the launcher holds an exclusive flock on a file of its log directory
for as long as it lives, and gives each task the file's path in the
environment variable `local_cluster.LAUNCHER_LOCK_ENV`. `start` waits, in
a daemon thread, for a shared lock on that file, which it gets when the
kernel releases the launcher's: when the launcher dies, however it dies (a
launcher that ends well releases it only once it has stopped its tasks).
(A parent pid would not do: a pid can be reused, and the tests' tasks,
forked by their command server, are no children of the launcher.) The task
then stops itself as `stop_all` would have stopped it:

- the chief with SIGTERM: it finishes its epoch, keeps its training state
  and ends the cluster's run. Still running `local_cluster.KILL_GRACE_SECONDS`
  later (its epoch stuck), it gets a second SIGTERM, which stops it at once
  with its last training state, and SIGKILL as long again later;
- the other workers and the ps task end by themselves when the chief ends
  the run, and until then the chief needs them (in synchronous mode every
  meta-step waits for every worker). One still running
  `local_cluster.END_GRACE_SECONDS + KILL_GRACE_SECONDS` later gets SIGTERM,
  then SIGKILL.

A task started by hand, without the variable, watches nothing.
"""

import fcntl
import os
import signal
import threading
import time

from absl import logging

# No TensorFlow here either: local_cluster imports none.
from l2l.experiment import local_cluster


def start(chief):
  """Watches this task's launcher from now on, if a launcher started it.

  Args:
    chief: True for the cluster's chief, False for the other workers and
      the ps tasks.

  Returns:
    The daemon thread that watches, or None for a task started by hand.

  Raises:
    OSError: if the launcher's lock file cannot be opened.
  """
  path = os.environ.get(local_cluster.LAUNCHER_LOCK_ENV)
  if not path:
    return None
  try:
    # Opened here, not in the thread, so that a task that cannot watch
    # says so and ends rather than outliving its launcher unnoticed. An
    # flock needs only read access.
    lock = open(path, "rb")
  except OSError as error:
    raise OSError("{}={} names a lock file this task cannot open: {}".format(
        local_cluster.LAUNCHER_LOCK_ENV, path, error.strerror)) from error
  # A daemon: a task that ends by itself does not wait for its launcher.
  watch = threading.Thread(target=_watch, args=(lock, chief),
                           name="launcher-watch", daemon=True)
  watch.start()
  return watch


def _watch(lock, chief):
  """Waits until the launcher is gone, then stops this task.

  Args:
    lock: the launcher's lock file, open for reading.
    chief: whether this task is the chief.
  """
  # Blocks in the kernel, without the GIL, for as long as the launcher
  # holds its exclusive lock: no polling.
  fcntl.flock(lock, fcntl.LOCK_SH)
  what, steps = _stop_plan(chief)
  logging.warning("The launcher that started this task is gone: %s", what)
  for delay, signum in steps:
    time.sleep(delay)
    os.kill(os.getpid(), signum)


def _stop_plan(chief):
  """How this task stops now that its launcher is gone.

  The graces are the launcher's own, read when it is found gone.

  Args:
    chief: whether this task is the chief.

  Returns:
    `(what, steps)`: what the task does, as a sentence for its log, and
    `(seconds to wait, signal to send this process)` pairs, in order.
  """
  grace = local_cluster.KILL_GRACE_SECONDS
  if chief:
    return ("stopping as it would have, with SIGTERM now (the chief "
            "finishes its epoch, keeps its training state and ends the "
            "run), a second SIGTERM after {:g} s and SIGKILL after {:g} s."
            .format(grace, 2 * grace),
            ((0.0, signal.SIGTERM), (grace, signal.SIGTERM),
             (grace, signal.SIGKILL)))
  wait = local_cluster.END_GRACE_SECONDS + grace
  return ("this task ends with the run the chief ends, or with SIGTERM "
          "after {:g} s.".format(wait),
          ((wait, signal.SIGTERM), (grace, signal.SIGKILL)))
