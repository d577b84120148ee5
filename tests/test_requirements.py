"""Tests for l2l/requirements.py: the TensorFlow checked on `import l2l`."""

import os
import subprocess
import sys

import pytest
import tensorflow as tf

from l2l import requirements

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("installed", [
    {"tensorflow-cpu": "2.21.0"},
    {"tensorflow": "2.21.1"},
    {"tensorflow-intel": "2.21.0rc1"},
])
def test_one_tensorflow_2_21_is_all_it_needs(installed):
  assert requirements.tensorflow_findings(installed, True) == (None, None)


def test_a_tensorflow_without_metadata_is_trusted():
  # Built from source: importable, but no distribution says which it is.
  assert requirements.tensorflow_findings({}, True) == (None, None)


def test_no_tensorflow_names_what_to_install():
  error, warning = requirements.tensorflow_findings({}, False)
  assert error == (
      "l2l needs TensorFlow 2.21, and this environment has none: pip install "
      "'tensorflow-cpu==2.21.*' (from a checkout: pip install -e '.[cpu]').")
  assert warning is None


@pytest.mark.parametrize("version", ["2.15.0", "2.2.1", "2.210.0", "3.21.0"])
def test_another_version_is_refused_naming_the_users_own_distribution(
    version):
  error, warning = requirements.tensorflow_findings({"tensorflow": version},
                                                    True)
  assert error == (
      "l2l needs TensorFlow 2.21.*, and this environment has tensorflow {}: "
      "install 2.21 in place of it (pip install "
      "'tensorflow==2.21.*').".format(version))
  assert warning is None


def test_two_distributions_side_by_side_get_a_warning():
  error, warning = requirements.tensorflow_findings(
      {"tensorflow": "2.21.0", "tensorflow-cpu": "2.21.0"}, True)
  assert error is None
  assert warning.startswith(
      "tensorflow 2.21.0, tensorflow-cpu 2.21.0 are both installed, into the "
      "one directory tensorflow/")
  assert warning.endswith("Keep one: uninstall both, then install the one "
                          "you want.")


def test_installed_tensorflow_reads_this_environment():
  found = requirements.installed_tensorflow()
  assert tf.__version__ in found.values()
  assert set(found) <= set(requirements.TENSORFLOW_DISTRIBUTIONS)


def _import_l2l_beside(tmp_path, name, version):
  """Imports l2l with a distribution `name` `version` added to the path."""
  info = tmp_path / "{}-{}.dist-info".format(name.replace("-", "_"), version)
  info.mkdir()
  (info / "METADATA").write_text(
      "Metadata-Version: 2.1\nName: {}\nVersion: {}\n".format(name, version))
  env = dict(os.environ,
             PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT]))
  return subprocess.run([sys.executable, "-c", "import l2l"],
                        cwd=str(tmp_path), env=env, capture_output=True,
                        text=True, timeout=120, check=False)


def test_import_refuses_another_tensorflow_version(tmp_path):
  done = _import_l2l_beside(tmp_path, "tensorflow", "2.15.0")
  assert done.returncode != 0
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("ImportError: l2l needs TensorFlow 2.21.*, and this "
                         "environment has tensorflow 2.15.0")
  assert last.endswith("(pip install 'tensorflow==2.21.*').")


def test_import_warns_of_two_tensorflows_and_goes_on(tmp_path):
  (ours,) = [name for name, version in
             requirements.installed_tensorflow().items()
             if version == tf.__version__]
  other = "tensorflow" if ours != "tensorflow" else "tensorflow-cpu"
  done = _import_l2l_beside(tmp_path, other, tf.__version__)
  assert done.returncode == 0, done.stderr
  assert "are both installed, into the one directory tensorflow/" in (
      done.stderr)
