"""Tests for l2l/core/native.py: building, caching and falling back."""

import logging
import os

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
  assert native.build_command("k.cc", "k.so")[:2] == ["g++", "-DOTHER"]


def test_a_failing_build_falls_back_to_the_ops_with_a_warning(
    monkeypatch, tmp_path, caplog):
  monkeypatch.setenv(files.CACHE_ENV_VAR, str(tmp_path))
  monkeypatch.setenv(native.ENV_VAR, "1")
  monkeypatch.setenv("CXX", "false")
  with caplog.at_level(logging.WARNING):
    assert native.lstm_stack_kernel() is None
  (message,) = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING]
  assert message.startswith(
      "The fused LSTM kernel is not available (false failed (exit 1)")
  assert "runs as TensorFlow ops" in message
  # The build's scratch directory is gone; only the lock file stays.
  (directory,) = os.listdir(tmp_path / "l2l" / "kernels")
  assert os.listdir(tmp_path / "l2l" / "kernels" / directory) == [
      "lstm_stack_kernel.so.lock"]
