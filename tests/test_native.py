"""Tests for l2l/core/native.py: building, caching and falling back."""

import logging
import os
import shutil
import subprocess
import sys
import time

import pytest

from l2l import files
from l2l.core import native


def test_the_kernel_is_built_once_into_the_cache_and_loaded_from_it(
    kernel):
  target = native.library_path()
  assert os.path.exists(target)
  assert target.startswith(os.path.join(files.cache_dir(),
                                        "kernels", ""))
  built_at = os.stat(target).st_mtime_ns
  # The same module for every caller of the process; nothing rebuilt.
  assert native.lstm_stack_kernel() is kernel
  assert os.stat(target).st_mtime_ns == built_at
  assert hasattr(kernel, "l2l_lstm_stack")
  assert hasattr(kernel, "l2l_lstm_stack_grad")


def test_a_loaded_kernel_serves_the_process_when_its_cache_moves(
    kernel, monkeypatch, tmp_path):
  # A second build would register the ops' kernels again, and TensorFlow
  # would refuse every LSTM step ("Multiple OpKernel registrations").
  monkeypatch.setenv(files.CACHE_ENV_VAR, str(tmp_path))
  assert native.library_path().startswith(str(tmp_path))
  assert native.lstm_stack_kernel() is kernel
  assert not os.listdir(tmp_path)


def test_the_key_does_not_depend_on_where_tensorflow_is_installed(
    monkeypatch, tmp_path):
  # A home shared by machines whose environments live at other paths:
  # one build of one TensorFlow version serves them all.
  here = native.library_path()
  installed = os.path.dirname(os.path.abspath(native.tf.__file__))
  elsewhere = str(tmp_path / "venv" / "tensorflow")
  for name in ("get_compile_flags", "get_link_flags"):
    flags = getattr(native.tf.sysconfig, name)()
    monkeypatch.setattr(native.tf.sysconfig, name, lambda flags=flags: [
        flag.replace(installed, elsewhere) for flag in flags])
  monkeypatch.setattr(native.tf, "__file__",
                      os.path.join(elsewhere, "__init__.py"))
  assert installed not in " ".join(native.link_command([], ""))
  assert native.library_path() == here


def test_the_environment_variable_turns_it_off(monkeypatch, tmp_path):
  monkeypatch.setenv(files.CACHE_ENV_VAR, str(tmp_path))
  monkeypatch.setenv(native.ENV_VAR, "0")
  assert native.lstm_stack_kernel() is None
  # Nothing was built.
  assert not os.listdir(tmp_path)


def test_the_key_changes_with_the_compiler(monkeypatch):
  monkeypatch.setenv("CXX", "c++")
  first = native.library_path()
  monkeypatch.setenv("CXX", "g++ -DOTHER")
  assert native.library_path() != first
  assert native.compile_command("k.cc", "k.o")[:2] == ["g++", "-DOTHER"]
  assert native.link_command(["k.o"], "k.so")[:2] == ["g++", "-DOTHER"]


def test_a_failing_build_falls_back_to_the_ops_with_a_warning(
    monkeypatch, tmp_path, caplog):
  monkeypatch.setenv(files.CACHE_ENV_VAR, str(tmp_path))
  monkeypatch.setenv(native.ENV_VAR, "1")
  monkeypatch.setenv("CXX", "false")
  with caplog.at_level(logging.WARNING):
    assert native.load(native.library_path()) is None
  (message,) = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
  assert message.startswith(
      "The fused LSTM kernel is not available (false failed (exit 1): it "
      "printed nothing)")
  assert "runs as TensorFlow ops" in message
  # The build's scratch directory is gone; the lock and the failure's
  # record stay.
  (directory,) = os.listdir(tmp_path / "l2l" / "kernels")
  assert sorted(os.listdir(tmp_path / "l2l" / "kernels" / directory)) == [
      "lstm_stack_kernel.so.failed", "lstm_stack_kernel.so.lock"]
  record = tmp_path / "l2l" / "kernels" / directory / (
      "lstm_stack_kernel.so.failed")
  assert record.read_text().startswith("false failed (exit 1)")


# A stand-in compiler: it logs each run's `-o` target in $FAKE_CXX_RUNS, then
# copies $FAKE_CXX_COPY to the target. With $FAKE_CXX_COPY unset, the
# products' compile fails (and the kernel's does nothing): a build that
# fails always runs that compile to its end.
FAKE_CXX = """
import os, shutil, sys
target = sys.argv[sys.argv.index("-o") + 1]
with open(os.environ["FAKE_CXX_RUNS"], "a") as runs:
  runs.write(os.path.basename(target) + "\\n")
if "FAKE_CXX_COPY" in os.environ:
  shutil.copy(os.environ["FAKE_CXX_COPY"], target)
elif target.endswith("lstm_stack_products.o"):
  sys.exit("fake compiler: no")
"""


@pytest.fixture
def fake_compiler(monkeypatch, tmp_path):
  """Runs `FAKE_CXX` as $CXX, in a cache of its own; returns the file that
  logs its runs."""
  script = tmp_path / "fake_cxx.py"
  script.write_text(FAKE_CXX)
  runs = tmp_path / "runs"
  runs.write_text("")
  monkeypatch.setenv(files.CACHE_ENV_VAR, str(tmp_path / "cache"))
  monkeypatch.setenv(native.ENV_VAR, "1")
  monkeypatch.setenv("CXX", "{} {}".format(sys.executable, script))
  monkeypatch.setenv("FAKE_CXX_RUNS", str(runs))
  return runs


def _runs(runs):
  """How many builds the fake compiler began: each compiles the products'
  file (and the kernel's beside it), then links."""
  return runs.read_text().splitlines().count("lstm_stack_products.o")


def test_a_build_compiles_each_source_then_links_them_into_the_target(
    fake_compiler, monkeypatch, tmp_path):
  whole = tmp_path / "whole.so"
  whole.write_bytes(b"library")
  monkeypatch.setenv("FAKE_CXX_COPY", str(whole))
  target = native.library_path()
  assert native.ensure_built(target)
  assert fake_compiler.read_text().splitlines()[-1] == "lstm_stack_kernel.so"
  assert sorted(fake_compiler.read_text().splitlines()[:2]) == [
      "lstm_stack_kernel.o", "lstm_stack_products.o"]
  assert native.is_intact(target)


def test_a_failing_compile_stops_the_one_beside_it(fake_compiler, monkeypatch,
                                                   tmp_path):
  # The products' compile fails at once; the kernel's would take a minute.
  script = tmp_path / "slow_cxx.py"
  script.write_text(
      "import sys, time\n"
      "if 'lstm_stack_kernel.o' in sys.argv: time.sleep(60)\n"
      "sys.exit('products: no')\n")
  monkeypatch.setenv("CXX", "{} {}".format(sys.executable, script))
  target = native.library_path()
  start = time.monotonic()
  with pytest.raises(native.BuildError, match="products: no"):
    native.ensure_built(target)
  assert time.monotonic() - start < 30
  # Nothing is left of the build but its lock and the failure's record.
  assert sorted(os.listdir(os.path.dirname(target))) == [
      "lstm_stack_kernel.so.failed", "lstm_stack_kernel.so.lock"]


def test_a_failed_build_is_recorded_and_not_compiled_again(fake_compiler,
                                                           caplog):
  target = native.library_path()
  with caplog.at_level(logging.WARNING):
    assert native.load(target) is None
    assert native.load(target) is None
  assert _runs(fake_compiler) == 1
  second = caplog.records[-1].getMessage()
  assert ("its build failed here before: " in second and
          "fake compiler: no; delete {}.failed to try again".format(target)
          in second)
  # Deleting the record retries.
  os.remove(target + ".failed")
  assert native.load(target) is None
  assert _runs(fake_compiler) == 2


def test_a_killed_build_leaves_nothing_the_next_build_keeps(fake_compiler,
                                                            monkeypatch,
                                                            tmp_path):
  whole = tmp_path / "whole.so"
  whole.write_bytes(b"library")
  monkeypatch.setenv("FAKE_CXX_COPY", str(whole))
  target = native.library_path()
  os.makedirs(os.path.join(os.path.dirname(target), ".build-killed"))
  assert native.ensure_built(target)
  assert sorted(os.listdir(os.path.dirname(target))) == [
      "lstm_stack_kernel.so", "lstm_stack_kernel.so.lock",
      "lstm_stack_kernel.so.sha256"]


@pytest.mark.parametrize("death", [
    "os.kill(os.getpid(), 9)",
    # How g++ reports its compiler proper killed (by the OOM killer).
    "sys.exit('c++: fatal error: Killed signal terminated program cc1plus')",
], ids=["killed", "compiler_proper_killed"])
def test_a_compiler_killed_from_outside_leaves_no_record(fake_compiler,
                                                         monkeypatch,
                                                         tmp_path, death):
  script = tmp_path / "dying_cxx.py"
  script.write_text("import os, sys\n" + death + "\n")
  monkeypatch.setenv("CXX", "{} {}".format(sys.executable, script))
  target = native.library_path()
  with pytest.raises(native.BuildError):
    native.ensure_built(target)
  assert not os.path.exists(target + ".failed")


def test_a_compiler_that_cannot_start_leaves_no_record(monkeypatch,
                                                       tmp_path):
  monkeypatch.setenv(files.CACHE_ENV_VAR, str(tmp_path))
  monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
  target = native.library_path()
  assert native.load(target) is None
  assert not os.path.exists(target + ".failed")


def test_a_cut_short_build_is_built_again(fake_compiler, monkeypatch,
                                          tmp_path, caplog):
  # A cache copied in part: the library cut short, its digest whole.
  # Mapping such a library can kill the process (SIGBUS), so it is rebuilt
  # before anything loads it.
  whole = tmp_path / "whole.so"
  whole.write_bytes(os.urandom(300000))
  monkeypatch.setenv("FAKE_CXX_COPY", str(whole))
  target = native.library_path()
  assert native.ensure_built(target)
  assert native.is_intact(target) and _runs(fake_compiler) == 1
  with open(target, "r+b") as library:
    library.truncate(20000)
  assert not native.is_intact(target)
  with caplog.at_level(logging.WARNING):
    assert native.ensure_built(target)
  # Said, not only done (the build takes half a minute).
  assert [r.getMessage() for r in caplog.records] == [
      "The cached LSTM kernel {} does not match the digest written beside it "
      "when it was built (a copy cut short, or changed since), or has none: "
      "building it again.".format(target)]
  assert _runs(fake_compiler) == 2
  with open(target, "rb") as library:
    assert library.read() == whole.read_bytes()
  # Intact now: nothing more is built.
  assert not native.ensure_built(target)
  assert _runs(fake_compiler) == 2


def test_a_library_without_the_ops_is_refused_and_rebuilt_once(
    fake_compiler, monkeypatch, tmp_path, caplog):
  # A cached build that loads but is not the kernel: rebuilt once, then
  # the stack falls back to the ops instead of failing at its first step.
  if shutil.which("c++") is None:
    pytest.skip("no C++ compiler to make a stand-in library")
  source = tmp_path / "empty.cc"
  source.write_text("int l2l_not_the_kernel = 1;\n")
  empty = tmp_path / "empty.so"
  subprocess.run(["c++", "-shared", "-fPIC", str(source), "-o", str(empty)],
                 check=True)
  monkeypatch.setenv("FAKE_CXX_COPY", str(empty))
  target = native.library_path()
  with caplog.at_level(logging.WARNING):
    assert native.load(target) is None
    assert _runs(fake_compiler) == 1
    assert native.load(target) is None
  assert _runs(fake_compiler) == 2
  assert caplog.records[-1].getMessage().startswith(
      "The fused LSTM kernel is not available ({} holds no l2l_lstm_stack "
      "and l2l_lstm_stack_grad ops)".format(target))
