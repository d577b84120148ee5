"""The TensorFlow l2l needs, checked when `l2l` is imported.

TensorFlow is not among the distribution's plain requirements: `tensorflow`
(the build with GPU support) and `tensorflow-cpu` install into the same
directory, so pip, asked for `tensorflow-cpu` where `tensorflow` is
installed, would silently replace the user's build with ours. An
environment with TensorFlow 2.21 therefore keeps it, and a new one takes
`tensorflow-cpu` through the `cpu` extra. What pip no longer checks is
checked here instead, from the installed distributions' metadata (cheap:
TensorFlow itself is not imported).
"""

import importlib.metadata
import importlib.util

from absl import logging

REQUIRED_VERSION = "2.21"
# Distributions on PyPI that install the module `tensorflow`.
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-gpu",
                            "tensorflow-intel", "tensorflow-macos",
                            "tensorflow-aarch64", "tf-nightly",
                            "tf-nightly-cpu")
INSTALL_HINT = ("pip install 'tensorflow-cpu=={}.*' (from a checkout: "
                "pip install -e '.[cpu]')").format(REQUIRED_VERSION)


def installed_tensorflow():
  """The installed distributions that provide the module `tensorflow`.

  Returns:
    A dict from distribution name to its version, in the order of
    `TENSORFLOW_DISTRIBUTIONS`; empty if none is installed.
  """
  found = {}
  for name in TENSORFLOW_DISTRIBUTIONS:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  return found


def _is_required_version(version):
  return version.split(".")[:2] == REQUIRED_VERSION.split(".")


def tensorflow_findings(installed, importable):
  """What is wrong with a TensorFlow install, as messages.

  Args:
    installed: distribution name to version, as `installed_tensorflow`
      returns.
    importable: whether the module `tensorflow` can be found at all (a
      TensorFlow built from source may have no distribution metadata).

  Returns:
    A pair `(error, warning)`, each a one-line message or None: an error
    for a missing TensorFlow or one of another version, a warning for two
    distributions sharing the module's directory.
  """
  if not installed:
    if importable:
      return None, None
    return ("l2l needs TensorFlow {}, and this environment has none: "
            "{}.".format(REQUIRED_VERSION, INSTALL_HINT)), None
  listed = ", ".join("{} {}".format(name, version)
                     for name, version in installed.items())
  if not all(_is_required_version(v) for v in installed.values()):
    return ("l2l needs TensorFlow {}.*, and this environment has {}: "
            "install {} in place of it (pip install '{}=={}.*').".format(
                REQUIRED_VERSION, listed, REQUIRED_VERSION,
                next(iter(installed)), REQUIRED_VERSION)), None
  if len(installed) > 1:
    return None, (
        "{} are {} installed, into the one directory tensorflow/: the one "
        "installed last has replaced the other's files, and uninstalling "
        "either breaks TensorFlow. Keep one: uninstall {}, then install the "
        "one you want.".format(listed, "both" if len(installed) == 2 else
                               "all", "both" if len(installed) == 2 else
                               "all"))
  return None, None


def check_tensorflow():
  """Raises ImportError if the environment lacks TensorFlow 2.21.

  Logs a warning if two TensorFlow distributions are installed side by side.

  Raises:
    ImportError: TensorFlow is missing, or of another version than 2.21.
  """
  installed = installed_tensorflow()
  importable = bool(installed) or (
      importlib.util.find_spec("tensorflow") is not None)
  error, warning = tensorflow_findings(installed, importable)
  if error:
    raise ImportError(error)
  if warning:
    logging.warning(warning)
