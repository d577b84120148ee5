"""Runs a cluster meta-training on this machine: one ps task and N workers.

    python -m l2l.experiment.local_cluster --workers=2 --problem=quadratic \\
        --save_path=./quadratic --num_epochs=200

Its own flags are --workers, --log_dir and --timeout; every other flag is a
train.py flag and goes to every task. The tasks listen on free ports of
127.0.0.1, each writes its log to `<log_dir>/<job><index>.log`, and the
command waits for the run to end. It exits 0 only when the chief (worker 0)
has ended well and saved an optimizer in --save_path (with --resume, an
optimizer saved before counts too). On exit, Ctrl-C or SIGTERM it stops
every process it started, the chief first, which keeps its training state.

If the launcher dies without stopping them (kill -9, the OOM killer, a
closed terminal), the tasks stop themselves as it would have: the chief
finishes its epoch, keeps its training state and ends the run, and the
other tasks end with it, which frees the save directory's lock for a run
with --resume. For as long as it lives the launcher holds an exclusive
flock on `<log_dir>/launcher.lock`, whose path each task finds in
$L2L_LAUNCHER_LOCK; the kernel releases that lock however the launcher
dies, and each task waits for it (launcher_watch.py). A task started by
hand, without the variable, watches nothing.
"""

import fcntl
import glob
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from absl import flags
from absl import logging

# No TensorFlow here: the launcher only starts processes.
from l2l import checks
from l2l import files
from l2l.experiment import cli

_OWN_FLAGS = flags.FlagValues()
flags.DEFINE_integer("workers", 2, "Number of workers (the first is the "
                     "chief).", lower_bound=1, flag_values=_OWN_FLAGS)
flags.DEFINE_string("log_dir", None, "Directory for the tasks' logs; a new "
                    "temporary directory if not given.",
                    flag_values=_OWN_FLAGS)
flags.DEFINE_float("timeout", 0.0, "Seconds after which the whole run is "
                   "stopped as failed; 0 waits for as long as it takes.",
                   lower_bound=0.0, flag_values=_OWN_FLAGS)

# The flags this command sets for each task itself.
_CLUSTER_FLAGS = ("ps_hosts", "worker_hosts", "job_name", "task_index")
# Seconds the other tasks get to end after the chief has ended.
END_GRACE_SECONDS = 30.0
# Seconds between SIGTERM and SIGKILL when stopping a task (the chief
# finishes its epoch and keeps its training state in them). A task whose
# launcher died stops itself with the same graces (launcher_watch.py).
KILL_GRACE_SECONDS = 15.0
# The file in the log directory the launcher holds an exclusive flock on
# for as long as it lives, and the environment variable that gives each
# task its path (launcher_watch.py reads it).
LAUNCHER_LOCK_NAME = "launcher.lock"
LAUNCHER_LOCK_ENV = "L2L_LAUNCHER_LOCK"

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class _Task:
  """A started task: its process and its log."""

  def __init__(self, name, command, log_path, env):
    self.name = name
    self.log_path = log_path
    with open(log_path, "xb") as log:
      # A session of its own, so that stopping it stops what it started.
      self.process = subprocess.Popen(
          command, stdout=log, stderr=subprocess.STDOUT, env=env,
          start_new_session=True)

  def poll(self):
    return self.process.poll()

  def stop(self):
    """Stops the task (SIGTERM, then SIGKILL) if it still runs."""
    if self.process.poll() is not None:
      return
    for sig, wait in ((signal.SIGTERM, KILL_GRACE_SECONDS),
                      (signal.SIGKILL, None)):
      try:
        os.killpg(self.process.pid, sig)
      except ProcessLookupError:
        return
      try:
        self.process.wait(timeout=wait)
        return
      except subprocess.TimeoutExpired:
        continue

  def last_error(self):
    """The last line of the log that reports an error, or ''."""
    try:
      with open(self.log_path, errors="replace") as log:
        lines = log.read().splitlines()
    except OSError:
      return ""
    for line in reversed(lines):
      if line.startswith("Error:") or "Error" in line.split(":")[0]:
        return line.strip()
    return lines[-1].strip() if lines else ""


def free_port():
  """A TCP port on 127.0.0.1 that nothing listens on right now."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
    probe.bind(("127.0.0.1", 0))
    return probe.getsockname()[1]


def flag_value(args, name):
  """The value of `--name=value` or `--name value` in `args`, or None."""
  value = None
  for i, arg in enumerate(args):
    if arg.startswith("--{}=".format(name)):
      value = arg.split("=", 1)[1]
    elif arg == "--" + name and i + 1 < len(args):
      value = args[i + 1]
  return value


def boolean_flag(args, name):
  """Whether `args` turn the boolean flag `name` on, as absl reads them.

  `--name`, `--name=true` (or t, 1) turn it on, `--noname` and
  `--name=false` off; the last one counts.
  """
  value = False
  for arg in args:
    if arg == "--" + name:
      value = True
    elif arg == "--no" + name:
      value = False
    elif arg.startswith("--{}=".format(name)):
      value = arg.split("=", 1)[1].lower() in ("true", "t", "1")
  return value


def _check_train_args(args):
  for name in _CLUSTER_FLAGS:
    if any(a == "--" + name or a.startswith("--{}=".format(name))
           for a in args):
      raise ValueError("--{} is set by local_cluster for each task; leave it "
                       "out.".format(name))
  save_path = flag_value(args, "save_path")
  if not save_path:
    raise ValueError("local_cluster needs --save_path: the command succeeds "
                     "when the chief has saved an optimizer there.")
  # The chief would say so too, but only once every task is up.
  files.refuse_if_locked(os.path.expanduser(save_path))
  return save_path


def _log_dir(requested, num_workers):
  if requested is None:
    return tempfile.mkdtemp(prefix="l2l-cluster-")
  checks.check_path_given("log_dir", requested)
  if os.path.exists(requested) and not os.path.isdir(requested):
    raise ValueError("--log_dir={} is invalid: it is a file, expected a "
                     "directory for the tasks' logs.".format(requested))
  os.makedirs(requested, exist_ok=True)
  names = ["ps0.log"] + ["worker{}.log".format(i) for i in range(num_workers)]
  # A launcher.lock was left by a launcher that died (or still runs).
  names.append(LAUNCHER_LOCK_NAME)
  taken = [n for n in names if os.path.exists(os.path.join(requested, n))]
  if taken:
    raise ValueError("--log_dir {} already holds logs ({}); choose another "
                     "directory.".format(requested, ", ".join(taken)))
  return requested


def hold_launcher_lock(log_dir):
  """Creates `<log_dir>/launcher.lock` and locks it exclusively.

  The lock lasts until `release_launcher_lock`, or until this process ends,
  however it ends: the kernel then releases it, and the tasks waiting for
  it (launcher_watch.py) stop themselves.

  Args:
    log_dir: this run's log directory (from `_log_dir`).

  Returns:
    The open lock file; its `name` is the path the tasks are given.

  Raises:
    OSError: if the file cannot be created (or already exists).
  """
  # open() makes the file close-on-exec, so no task started by exec holds
  # a copy of the lock (the tests' forked tasks are no children of the
  # launcher at all) and it ends with the launcher alone.
  lock = open(os.path.abspath(os.path.join(log_dir, LAUNCHER_LOCK_NAME)), "x")
  fcntl.flock(lock, fcntl.LOCK_EX)
  return lock


def release_launcher_lock(lock):
  """Removes and releases the launcher's lock, once every task is stopped.

  Args:
    lock: from `hold_launcher_lock`.
  """
  # No task waits for it any more, so removing it races with nobody; a
  # killed launcher's lock file stays, and `_log_dir` refuses its directory.
  os.remove(lock.name)
  lock.close()


def _saved_files(save_path, since):
  return [f for f in glob.glob(os.path.join(save_path, "*.l2l"))
          if os.path.getmtime(f) >= since]


def start(num_workers, train_args, log_dir, launcher_lock=None):
  """Starts one ps task and `num_workers` workers on free local ports.

  Args:
    num_workers: how many workers.
    train_args: train.py flags for every task.
    log_dir: existing directory for the logs.
    launcher_lock: path of the file whose exclusive flock the caller holds
      for as long as it lives; each task stops itself when the lock is
      released (launcher_watch.py). None: the tasks watch nothing.

  Returns:
    The `_Task`s, the ps first and then the workers, the chief first.
  """
  ports = set()
  while len(ports) < num_workers + 1:
    ports.add(free_port())
  hosts = ["127.0.0.1:{}".format(p) for p in sorted(ports)]
  ps_hosts, worker_hosts = hosts[:1], hosts[1:]
  env = dict(os.environ)
  env.pop("TF_CONFIG", None)
  # Only this launcher's own lock: not one inherited from elsewhere.
  env.pop(LAUNCHER_LOCK_ENV, None)
  if launcher_lock is not None:
    env[LAUNCHER_LOCK_ENV] = launcher_lock
  env["PYTHONPATH"] = os.pathsep.join(
      [_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
  tasks = []
  roles = [("ps", 0)] + [("worker", i) for i in range(num_workers)]
  try:
    for job, index in roles:
      command = [sys.executable, "-m", "l2l.experiment.train_command",
                 *train_args, "--ps_hosts=" + ",".join(ps_hosts),
                 "--worker_hosts=" + ",".join(worker_hosts),
                 "--job_name=" + job, "--task_index={}".format(index)]
      name = "{}{}".format(job, index)
      tasks.append(_Task(name, command,
                         os.path.join(log_dir, name + ".log"), env))
  except BaseException:
    stop_all(tasks)
    raise
  logging.info("Started ps at %s and workers at %s; logs in %s",
               ",".join(ps_hosts), ",".join(worker_hosts), log_dir)
  return tasks


def stop_all(tasks):
  """Stops the tasks, the chief first: it keeps its training state on
  SIGTERM, which needs the ps task (and, in sync mode, the workers) up."""
  for task in tasks[1:2] + tasks[2:] + tasks[:1]:
    task.stop()


def wait(tasks, timeout):
  """Waits for the chief, then (briefly) for the other tasks.

  Args:
    tasks: from `start`.
    timeout: seconds for the whole run (0: no limit).

  Returns:
    The chief's exit status, or None if the run timed out.
  """
  chief = tasks[1]
  deadline = time.monotonic() + timeout if timeout else None
  reported = set()
  while chief.poll() is None:
    for task in tasks:
      status = task.poll()
      if status and task.name not in reported:
        reported.add(task.name)
        logging.warning("%s ended early (status %d): %s", task.name, status,
                        task.last_error())
    if deadline is not None and time.monotonic() > deadline:
      return None
    time.sleep(0.2)
  end = time.monotonic() + END_GRACE_SECONDS
  while (any(t.poll() is None for t in tasks) and time.monotonic() < end and
         (deadline is None or time.monotonic() < deadline)):
    time.sleep(0.2)
  return chief.poll()


def _raise_interrupt(signum, frame):
  del frame
  raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv):
  """Runs the cluster; returns the exit status."""
  if any(a in ("--help", "-h", "--helpfull") for a in argv[1:]):
    sys.stdout.write(__doc__ + "\n" + _OWN_FLAGS.main_module_help() + "\n")
    return 0
  try:
    train_args = _OWN_FLAGS(argv, known_only=True)[1:]
    save_path = _check_train_args(train_args)
    log_dir = _log_dir(_OWN_FLAGS.log_dir, _OWN_FLAGS.workers)
    launcher_lock = hold_launcher_lock(log_dir)
  except (flags.Error, ValueError, OSError) as error:
    cli.fail(error)
  started = time.time()
  previous = signal.signal(signal.SIGTERM, _raise_interrupt)
  tasks = []
  try:
    tasks = start(_OWN_FLAGS.workers, train_args, log_dir,
                  launcher_lock=launcher_lock.name)
    status = wait(tasks, _OWN_FLAGS.timeout)
  except KeyboardInterrupt as interrupt:
    name = cli.interrupted_by(interrupt)
    logging.error("Interrupted (%s); stopping the cluster (the chief first, "
                  "so that it keeps its training state). Logs in %s; "
                  "continue with: %s", name, log_dir,
                  cli.resume_command(argv, leave_out=("--log_dir",)))
    return 128 + signal.Signals[name]
  finally:
    stop_all(tasks)
    # Only now: a task that saw the lock released while the chief was still
    # stopping would stop itself too, and signal the chief a second time.
    release_launcher_lock(launcher_lock)
    signal.signal(signal.SIGTERM, previous)
  chief = tasks[1]
  if status is None:
    cli.fail("The cluster did not finish within --timeout={:g} s; logs in {}"
             .format(_OWN_FLAGS.timeout, log_dir))
  if status != 0:
    cli.fail("The chief failed (status {}): {} (logs in {})".format(
        status, chief.last_error(), log_dir))
  # A resumed run may end without beating the optimizer saved before it.
  resumed = boolean_flag(train_args, "resume")
  saved = _saved_files(save_path, 0.0 if resumed else started)
  if not saved:
    cli.fail("The chief ended without saving an optimizer in {} (logs in {})"
             .format(save_path, log_dir))
  logging.info("The chief saved %s; logs in %s", ", ".join(sorted(saved)),
               log_dir)
  return 0


def run():
  """Entry point of `python -m l2l.experiment.local_cluster`."""
  logging.use_absl_handler()
  logging.set_verbosity(logging.INFO)
  sys.exit(main(sys.argv))


if __name__ == "__main__":
  run()
