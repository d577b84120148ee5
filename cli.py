"""What train.py and evaluate.py share: common flags and plain error exits."""

import contextlib
import sys

from absl import flags
from absl import logging

import checkpoint
import datasets

flags.DEFINE_string("data_dir", None, "Directory of the mnist/cifar data "
                    "files; defaults to $" + datasets.ENV_VAR + ".")
flags.DEFINE_integer("num_particle", 1, "Particles per swarm (LOIS); 1 is "
                     "plain L2L.")

# Errors that mean the input was wrong, not that the code is.
_USER_ERRORS = (ValueError, OSError, checkpoint.CheckpointError,
                datasets.DataError)


@contextlib.contextmanager
def plain_errors():
  """Reports bad input as one line on stderr and exit status 1.

  The traceback is kept with `--verbosity=1`, for bug reports.

  Yields:
    Nothing; wraps the command's body.
  """
  try:
    yield
  except _USER_ERRORS as error:
    if logging.get_verbosity() >= logging.DEBUG:
      raise
    sys.stderr.write("Error: {}\n(run with --verbosity=1 for the "
                     "traceback)\n".format(error))
    sys.exit(1)
