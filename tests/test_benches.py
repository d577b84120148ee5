"""Tests for bench/: bad flags are one line before any work, as for the
commands (bench/common.py's `run`, `require_*`)."""

import os
import sys

import pytest

import commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("script, flag, message", [
    ("swarm.py", "--budget=0", "flag --budget=0: expected a number >= 100"),
    ("swarm.py", "--dims=abc", "flag --dims=['abc']: expected integers >= 2"),
    ("swarm.py", "--methods=scipy", "flag --methods=['scipy']: expected some "
                                    "of learned, pso, numpy"),
    ("swarm.py", "--validate=hop", "flag --validate=['hop']: expected "
                                   "label=path=particles"),
    ("speed.py", "--min_seconds=0", "flag --min_seconds=0.0: expected a "
                                    "finite number > 0"),
])
def test_a_bad_bench_flag_is_refused_before_any_work(script, flag, message):
  done = commands.run([sys.executable, os.path.join("bench", script), flag],
                      cwd=ROOT, capture_output=True, text=True, timeout=120,
                      check=False)
  assert done.returncode == 1
  assert "Traceback" not in done.stderr
  assert message in done.stderr
  assert "BENCH" not in done.stdout


def test_a_bad_value_found_later_is_one_line():
  done = commands.run([sys.executable, "bench/quality.py",
                       "--problems=nonsense"], cwd=ROOT, capture_output=True,
                      text=True, timeout=120, check=False)
  assert done.returncode == 1
  assert "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1].startswith(
      "Error: Unknown problem 'nonsense'.")
