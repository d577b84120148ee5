"""What the l2l commands share: quiet start-up, shared flags, error exits.

Importing this module quiets TensorFlow's C++ start-up notices, which would
bury the statistics the commands print; the commands (and bench/) import it
before anything imports TensorFlow.
"""

import contextlib
import os
import sys

from absl import app
from absl import flags
from absl import logging

from l2l.checkpoint import l2l_file
from l2l.data import datasets
from l2l.swarm import config as swarm_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FLAGS = flags.FLAGS

# Errors that mean the input was wrong, not that the code is.
USER_ERRORS = (ValueError, OSError, l2l_file.CheckpointError,
               datasets.DataError)


def define_shared_flags():
  """Defines the flags train and evaluate both take (once)."""
  if "num_particle" in FLAGS:
    return
  flags.DEFINE_string("data_dir", None, "Directory of the mnist/cifar data "
                      "files; defaults to $" + datasets.ENV_VAR + ".")
  flags.DEFINE_integer("num_particle", 1, "Particles per swarm (LOIS); 1 is "
                       "plain L2L.")
  defaults = swarm_config.SwarmConfig()
  flags.DEFINE_boolean(
      "swarm_per_instance", defaults.per_instance, "Swarm: on a batch of "
      "independent instances (Rastrigin's rows) each row is a swarm of its "
      "own; off, particles compare their mean loss over the batch. Train "
      "and evaluate a swarm with the same setting.")
  flags.DEFINE_float("swarm_step_noise", defaults.step_noise, "Swarm: "
                     "stddev of Gaussian noise added to every move (>= 0).",
                     lower_bound=0.0)
  flags.DEFINE_float("swarm_step_scale", defaults.step_scale, "Swarm: factor "
                     "of the net's updates (> 0). Train and evaluate a swarm "
                     "with the same setting.", lower_bound=1e-30)


def swarm_flag_options(only_given=False):
  """The swarm options the shared flags set (for --num_particle > 1).

  Args:
    only_given: only the flags given on the command line, so that a saved
      swarm's manifest supplies the others.

  Returns:
    A dict of `SwarmConfig` options.
  """
  flag_of = {"per_instance": "swarm_per_instance",
             "step_noise": "swarm_step_noise",
             "step_scale": "swarm_step_scale"}
  return {option: FLAGS[flag].value for option, flag in flag_of.items()
          if not only_given or FLAGS[flag].present}


def fail(message):
  """Reports a user error as one line on stderr and exits with status 1.

  Args:
    message: what was wrong (an exception or text); runs of whitespace are
      collapsed so the report stays on one line.
  """
  sys.stderr.write("Error: {}\n".format(" ".join(str(message).split())))
  sys.exit(1)


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


def run(main, *flag_modules):
  """Runs a command's `main` under absl.

  absl's `--help` lists the flags of the module it was started as; an
  installed console script starts as a wrapper with none, so the flags of
  `flag_modules` are made key flags of whatever `sys.argv[0]` is.

  Args:
    main: the command's `main(argv)`.
    *flag_modules: the modules whose flags the command takes.
  """
  for module in flag_modules:
    for flag in FLAGS.get_key_flags_for_module(module):
      FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  app.run(main)
