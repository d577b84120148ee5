"""What the l2l commands share: quiet start-up, flag checks, error exits.

Importing this module quiets most of TensorFlow's C++ start-up notices,
which would bury the statistics the commands print; the commands (and
bench/) import it before anything imports TensorFlow. (TensorFlow 2.21
still prints its oneDNN notice and absl's "before InitializeLog" line on
stderr whatever the log level; only TF_ENABLE_ONEDNN_OPTS=0 would remove
the first, and it changes the kernels.) It imports no TensorFlow itself, so
commands that need none (l2l-compare, the local-cluster launcher) start in
a fraction of a second; the flags train and evaluate share, which name
problems, are in shared_flags.py.
"""

import contextlib
import math
import os
import shlex
import signal
import sys
import tempfile
import threading

# Before anything imports TensorFlow.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import app
from absl import flags
from absl import logging

from l2l import checks
from l2l import files
from l2l.checkpoint import l2l_file
from l2l.data import datasets
# pylint: enable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS

# Errors that mean the input was wrong, not that the code is.
USER_ERRORS = (ValueError, OSError, l2l_file.CheckpointError,
               datasets.DataError, files.DirectoryBusyError)


def check_at_least(minimum, *names):
  """Exits with one line unless each integer flag in `names` is >= minimum
  (and a size or count TensorFlow holds: at most `checks.MAX_SIZE`).

  Args:
    minimum: the smallest allowed value.
    *names: flag names.
  """
  for name in names:
    value = FLAGS[name].value
    if value is None or value < minimum:
      fail("--{}={} is invalid: expected an integer >= {}.".format(
          name, value, minimum))
    if value > checks.MAX_SIZE:
      fail("--{}={} is invalid: expected at most {} (TensorFlow's sizes and "
           "counts are 32-bit integers).".format(name, value,
                                                 checks.MAX_SIZE))


def check_not_empty(*names):
  """Exits with one line if a path flag in `names` was given empty
  (`checks.check_path_given`).

  Args:
    *names: flags holding a path (or a list of paths); None passes.
  """
  for name in names:
    value = FLAGS[name].value
    # A list's empty entry is named as an empty flag.
    values = ([v if v.strip() else "" for v in value]
              if isinstance(value, list) else [value])
    try:
      for each in values:
        checks.check_path_given(name, each)
    except ValueError as error:
      fail(error)


def check_positive_number(*names):
  """Exits with one line unless each float flag in `names` is finite and > 0.

  Args:
    *names: flag names.
  """
  _check_finite(names, lambda value: value > 0, "> 0")


def check_non_negative_number(*names):
  """Exits with one line unless each float flag in `names` is finite, >= 0.

  Args:
    *names: flag names.
  """
  _check_finite(names, lambda value: value >= 0, ">= 0")


def _check_finite(names, in_range, range_text):
  for name in names:
    value = FLAGS[name].value
    if value is None or not math.isfinite(value) or not in_range(value):
      fail("--{}={} is invalid: expected a finite number {}.".format(
          name, value, range_text))


def check_with(name, check):
  """Exits with one line if `check(flag value)` raises ValueError.

  Args:
    name: the flag.
    check: a validator, e.g. `util.check_problem_name`.
  """
  try:
    check(FLAGS[name].value)
  except ValueError as error:
    fail("--{}={} is invalid: {}".format(name, FLAGS[name].value, error))


def check_writable_directory(name, path=None, remedy=None):
  """Exits with one line unless a directory can be written (or created).

  A probe file is created and removed in the directory, or in its nearest
  existing parent if it does not exist yet (nothing is created), so a
  read-only or missing location is found before any work rather than at
  the first save.

  Args:
    name: the flag, for the message.
    path: the directory; defaults to the flag's value. None passes.
    remedy: what to do instead, added to the message of an unwritable one.
  """
  path = FLAGS[name].value if path is None else path
  if path is None:
    return
  if os.path.exists(path) and not os.path.isdir(path):
    fail("--{}={} is invalid: it exists and is not a directory.".format(
        name, path))
  existing = os.path.abspath(path)
  while not os.path.exists(existing):
    existing = os.path.dirname(existing)
  if not os.path.isdir(existing):
    fail("--{}={} cannot be created: {} is not a directory.".format(
        name, path, existing))
  # The names still to create, and the file names to go in them, must fit
  # the file system (255 bytes on most); records files add about 60.
  try:
    longest = os.pathconf(existing, "PC_NAME_MAX")
  except (OSError, ValueError):
    longest = 255
  missing = os.path.relpath(os.path.abspath(path), existing)
  too_long = [part for part in missing.split(os.sep)
              if len(os.fsencode(part)) > longest]
  if missing != os.curdir and too_long:
    fail("--{}={} cannot be created: the name {!r} is longer than the {} "
         "bytes a name may have here.".format(name, path, too_long[0][:40] +
                                              "...", longest))
  try:
    with tempfile.TemporaryFile(dir=existing, prefix=".l2l-write-check-"):
      pass
  except OSError as error:
    fail("--{}={} is not writable: {} ({}){}.".format(
        name, path, error.strerror or error, existing,
        "; " + remedy if remedy else ""))


def given_flags(prefix):
  """The flags named `prefix...` that the command line gave, by name."""
  return sorted(name for name in FLAGS
                if name.startswith(prefix) and FLAGS[name].present)


def warn_unused(names, reason):
  """Logs a warning that the given flags `names` change nothing.

  A flag that a run cannot use is accepted, as the originals accepted it,
  but said to be unused, so that a mistyped command does not pass for the
  run that was meant.

  Args:
    names: flag names (none: no warning).
    reason: why, e.g. "--optimizer=Adam is no learned swarm".
  """
  if names:
    logging.warning("%s %s no effect: %s.",
                    ", ".join("--" + name for name in names),
                    "has" if len(names) == 1 else "have", reason)


def fail(message):
  """Reports a user error as one line on stderr and exits with status 1.

  Args:
    message: what was wrong (an exception or text); runs of whitespace are
      collapsed so the report stays on one line.
  """
  sys.stderr.write("Error: {}\n".format(" ".join(str(message).split())))
  sys.exit(1)


def interrupt_on_sigterm():
  """From now on, SIGTERM interrupts as Ctrl-C does.

  It raises KeyboardInterrupt("SIGTERM") (`interrupted_by` names it), so a
  command stopped while it starts up (building its graph, replaying a
  resumed run's draws) says so in its one line and exits with 143 rather
  than dying silently; training's own handlers take over while it trains.
  Only the main thread can install handlers; elsewhere this does nothing.
  """
  def interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt("SIGTERM")
  if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGTERM, interrupt)


def interrupted_by(interrupt):
  """The signal a KeyboardInterrupt stands for: "SIGTERM" or "SIGINT"."""
  return "SIGTERM" if str(interrupt) == "SIGTERM" else "SIGINT"


@contextlib.contextmanager
def plain_errors(context=None):
  """Reports bad input as one line on stderr and exit status 1.

  The traceback is kept with `--verbosity=1`, for bug reports.

  Args:
    context: text put before the error, e.g. "Could not write out.png".

  Yields:
    Nothing; wraps the command's body.
  """
  try:
    yield
  except USER_ERRORS as error:
    if logging.get_verbosity() >= logging.DEBUG:
      raise
    fail(error if context is None else "{}: {}".format(context, error))


def program():
  """The command as the user started it, for messages that repeat it.

  Returns:
    "python train.py", "python -m l2l.experiment.compare_command" or the
    console script's name ("l2l-train").
  """
  main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  if main_spec is not None:
    return "python -m " + main_spec.name
  if sys.argv[0].endswith(".py"):
    return "python " + shlex.quote(sys.argv[0])
  return os.path.basename(sys.argv[0])


def resume_command(argv=None, leave_out=()):
  """A command line with --resume, as the user would type it again.

  Args:
    argv: the command line (default `sys.argv`).
    leave_out: flags (e.g. "--log_dir") the new command must not repeat.

  Returns:
    The command: `program()`, the arguments bar --overwrite, --resume and
    `leave_out`, then --resume.
  """
  left_out = ("--overwrite", "--resume", "--nooverwrite",
              "--noresume") + tuple(leave_out)
  kept = [a for a in (sys.argv if argv is None else argv)[1:]
          if a.split("=")[0] not in left_out]
  return " ".join([program()] + [shlex.quote(a) for a in kept] +
                  ["--resume"])


def help_text(command, arguments="", full=False):
  """A command's --help: how to start it, what it does, its flags.

  Args:
    command: the command's module; its docstring describes it (absl would
      print `__main__`'s, which for a console script is a wrapper's).
    arguments: what follows the flags on the command line, e.g.
      "RECORDS.npz [RECORDS.npz ...]".
    full: list every flag (--helpfull), not only the command's.

  Returns:
    The text.
  """
  usage = " ".join(part for part in (program(), "[flags]", arguments) if part)
  flag_text = FLAGS.get_help() if full else FLAGS.main_module_help()
  return "Usage: {}\n\n{}\n\nflags:\n{}\n{}".format(
      usage, (command.__doc__ or "").strip(), flag_text,
      "" if full else "\nTry --helpfull to list every flag, those of the "
      "libraries (absl, TensorFlow) too.\n")


class _HelpFlag(flags.BooleanFlag):
  """A help flag that prints the command's help and exits with status 0.

  absl's own help flags exit with status 1 and describe `__main__`.
  """

  def __init__(self, name, short_name, full, command, arguments):
    super().__init__(name, False, "show {}help and exit".format(
        "full " if full else ""), short_name=short_name, allow_override=True)
    self._text = lambda: help_text(command, arguments, full)

  def parse(self, argument):
    if not self._parse(argument):
      return
    try:
      sys.stdout.write(self._text())
      sys.stdout.flush()
    except BrokenPipeError:
      # `l2l-train --help | head`: the reader had enough.
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)


def _define_help_flags(command, arguments):
  """Replaces absl's help flags by ones that describe `command`.

  --help, -?, --helpshort and -h list the command's flags, --helpfull all.
  """
  app.define_help_flags()  # absl's first, so that app.run keeps ours.
  for name, short_name, full in (("help", "?", False),
                                 ("helpshort", "h", False),
                                 ("helpfull", None, True)):
    flags.DEFINE_flag(_HelpFlag(name, short_name, full, command, arguments),
                      module_name=app.__name__)


def run(main, *flag_modules, arguments=""):
  """Runs a command's `main` under absl.

  absl's `--help` lists the flags of the module it was started as; an
  installed console script starts as a wrapper with none, so the flags of
  `flag_modules` are made key flags of whatever `sys.argv[0]` is, and the
  help flags print the first module's docstring as the command's
  description (`help_text`).

  Args:
    main: the command's `main(argv)`.
    *flag_modules: the modules whose flags the command takes, the command's
      own first.
    arguments: what the command takes after its flags, for the usage line.
  """
  for module in flag_modules:
    for flag in FLAGS.get_key_flags_for_module(module):
      FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  _define_help_flags(flag_modules[0], arguments)
  app.run(main, flags_parser=parse_flags)


def parse_flags(argv):
  """absl's parsing, with a bad flag reported in one line as the others.

  absl's own parser prints two lines, "FATAL Flags parsing error" and a
  hint, for a value of the wrong type or outside a flag's choices. Give it
  to `app.run` as `flags_parser`.

  Args:
    argv: the command line.

  Returns:
    The arguments left after the flags.
  """
  try:
    left = FLAGS(argv)
  except flags.Error as error:
    fail("{}; --helpfull lists every flag.".format(error))
  _expand_home_directory()
  return left


def _expand_home_directory():
  """Expands a leading `~` in the text flags given, as paths.

  The shell expands `~` only at the start of a word, so in
  `--save_path=~/q` it reaches the command as is; taken literally it
  would make a directory named `~` in the working directory (which a later
  `rm -rf ~` meant for it would take as the home directory).
  """
  for name in FLAGS:
    flag = FLAGS[name]
    value = flag.value
    if (flag.present and isinstance(value, str) and
        (value == "~" or value.startswith("~" + os.sep))):
      flag.value = os.path.expanduser(value)
