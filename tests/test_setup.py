"""Tests for the packaging (setup.py, pyproject.toml): what the wheel installs.

The wheel must install the package `l2l` and the five research-script
modules, nothing else at the top level, so that it never shadows or
overwrites another distribution's modules (PyPI has `records`, `progress`,
`datasets`, `evaluate`...).
"""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from l2l.core import native

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESEARCH_MODULES = {"meta", "networks", "preprocess", "problems", "util"}
# PyPI distributions whose module names our old flat layout took.
NEIGHBOURS = ("records", "progress", "datasets", "evaluate")
SOURCES = ("pyproject.toml", "setup.py", "README.md", "LICENSE", "l2l") + tuple(
    name + ".py" for name in RESEARCH_MODULES)

# One xdist worker runs this file, so its module fixtures run once.
pytestmark = pytest.mark.xdist_group("setup")


def _pip(*args, cwd=None):
  return subprocess.run([sys.executable, "-m", "pip"] + list(args), cwd=cwd,
                        capture_output=True, text=True, timeout=600,
                        check=False)


def _top_level_names(wheel):
  """The importable top-level names a wheel installs (no .dist-info)."""
  with zipfile.ZipFile(wheel) as archive:
    names = set()
    for member in archive.namelist():
      first = member.split("/")[0]
      if first.endswith((".dist-info", ".data")):
        continue
      names.add(first[:-3] if first.endswith(".py") else first)
  return names


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  """Builds the project's wheel from a copy of its sources."""
  source = tmp_path_factory.mktemp("source")
  for name in SOURCES:
    origin = os.path.join(ROOT, name)
    if os.path.isdir(origin):
      shutil.copytree(origin, source / name,
                      ignore=shutil.ignore_patterns("__pycache__"))
    else:
      shutil.copy(origin, source / name)
  out = tmp_path_factory.mktemp("wheel")
  built = _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(out),
               str(source))
  assert built.returncode == 0, built.stderr
  (path,) = out.glob("l2l-*.whl")
  return path


def test_wheel_installs_only_l2l_and_the_research_modules(wheel):
  assert _top_level_names(wheel) == RESEARCH_MODULES | {"l2l"}
  with zipfile.ZipFile(wheel) as archive:
    members = archive.namelist()
    entry_points = next(archive.read(m).decode() for m in members
                        if m.endswith("entry_points.txt"))
  for command in ("l2l-train", "l2l-evaluate", "l2l-compare"):
    assert command + " = l2l.experiment." in entry_points
  assert "l2l-data = l2l.data.fetch:run" in entry_points
  # The kernel's sources, which the installed package compiles on first use.
  for source in native.SOURCES + native.HEADERS:
    assert "l2l/core/" + os.path.basename(source) in members


def test_wheel_leaves_tensorflow_to_the_environment_or_the_cpu_extra(wheel):
  # `tensorflow` and `tensorflow-cpu` share one directory: a plain
  # requirement on either would overwrite a user's other build.
  with zipfile.ZipFile(wheel) as archive:
    metadata = next(archive.read(m).decode() for m in archive.namelist()
                    if m.endswith(".dist-info/METADATA"))
  requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
              if line.startswith("Requires-Dist:")]
  tensorflow = [r for r in requires if r.startswith(("tensorflow", "tf-"))]
  assert tensorflow == ['tensorflow-cpu==2.21.*; extra == "cpu"']
  assert "dm-sonnet==2.0.2" in requires


@pytest.fixture(scope="module")
def neighbours(tmp_path_factory):
  """The wheels of PyPI's records, progress, datasets and evaluate."""
  directory = tmp_path_factory.mktemp("neighbours")
  done = _pip("download", "--no-deps", "--only-binary=:all:", "-d",
              str(directory), *NEIGHBOURS)
  if done.returncode != 0:
    pytest.skip("PyPI is not reachable: " + done.stderr.strip()[-200:])
  return directory


def test_wheel_shares_no_top_level_name_with_pypi_neighbours(wheel,
                                                             neighbours):
  ours = _top_level_names(wheel)
  for other in neighbours.glob("*.whl"):
    assert not ours & _top_level_names(other), other.name


@pytest.mark.slow
def test_commands_run_next_to_pypi_records_and_progress(wheel, neighbours,
                                                        tmp_path):
  target = tmp_path / "site"
  wheels = [str(p) for p in neighbours.glob("*.whl")
            if p.name.startswith(("records-", "progress-"))] + [str(wheel)]
  installed = _pip("install", "--no-deps", "--target", str(target), *wheels)
  assert installed.returncode == 0, installed.stderr
  env = dict(os.environ, PYTHONPATH=str(target))
  # Run from elsewhere, so nothing of the repository is importable.
  # Each prints its own description (not the wrapper's) and exits 0.
  helps = {}
  for command, description in (("l2l-train", "Meta-trains"),
                               ("l2l-evaluate", "Evaluates"),
                               ("l2l-compare", "Compares")):
    done = subprocess.run([str(target / "bin" / command), "--help"],
                          cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, (command, done.stderr[-2000:])
    assert done.stdout.startswith("Usage: {} [flags]".format(command))
    assert "\n\n{} ".format(description) in done.stdout, command
    helps[command] = done.stdout
  assert "--num_particle" in helps["l2l-train"]
  assert "--problem" in helps["l2l-train"]
  # Their modules are still theirs (records needs SQL libraries to import,
  # so its file is checked), and ours are found from anywhere (l2l-train
  # above imported them; finding them here spares TensorFlow's import).
  assert "class Database" in (target / "records.py").read_text()
  probe = ("import importlib.util, progress.bar, l2l; "
           "assert all(importlib.util.find_spec(m).origin.startswith({0!r}) "
           "for m in {1!r}); assert l2l.__file__.startswith({0!r}); "
           "print(progress.bar.Bar.__name__)").format(
               str(target), sorted(RESEARCH_MODULES))
  done = subprocess.run([sys.executable, "-c", probe], cwd=str(tmp_path),
                        env=env, capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert done.stdout.strip() == "Bar"
