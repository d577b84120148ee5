"""Tests for bench/: bad flags are one line before any work, as for the
commands (bench/common.py's `run` and `check_integers`, cli's checks)."""

import importlib.util
import math
import os
import sys

import pytest

import commands

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _bench_common():
  """bench/common.py, imported by path (bench/ is no package)."""
  spec = importlib.util.spec_from_file_location(
      "bench_common", os.path.join(ROOT, "bench", "common.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


@pytest.mark.parametrize("diverged", [math.nan, math.inf])
def test_a_diverged_figure_ranks_last_beats_nothing_and_ties_nothing(
    diverged):
  common = _bench_common()
  # NaN compares false with everything: min() alone would keep it first.
  assert min([diverged, 0.5, 0.25], key=common.rank_key) == 0.25
  assert common.beats(0.5, diverged) and not common.beats(diverged, 0.5)
  assert not common.beats(diverged, diverged)
  assert not common.tied(diverged, diverged)
  assert not common.tied(diverged, 0.5)
  assert common.tied(0.5, 0.5) and not common.beats(0.5, 0.5)


def test_runs_over_seeds_spread_as_median_range_and_mean_diverged_worst():
  common = _bench_common()
  assert common.spread([0.3, math.nan, 0.1, 0.2, 5.0]) == (
      0.3, 0.1, math.inf, math.inf)
  assert common.spread([4.0, 1.0, 2.0, 3.0]) == (2.5, 1.0, 4.0, 2.5)
  assert common.spread([0.5]) == (0.5, 0.5, 0.5, 0.5)


@pytest.mark.parametrize("script, flag, message", [
    ("swarm.py", "--budget=0", "Error: --budget=0 is invalid: expected an "
                               "integer >= 100."),
    ("swarm.py", "--validate=hop", "Error: --validate=['hop'] is invalid: "
                                   "--validate entry 'hop': expected "
                                   "label=path=particles"),
    ("speed.py", "--min_seconds=0", "Error: --min_seconds=0.0 is invalid: "
                                    "expected a finite number > 0."),
    ("speed.py", "--sizes=-5", "Error: --sizes=['-5'] is invalid: expected "
                               "integers >= 1, comma-separated"),
])
def test_a_bad_bench_flag_is_refused_before_any_work(script, flag, message):
  if script == "swarm.py":
    pytest.importorskip("cma", reason="bench/swarm.py needs the bench extras")
  done = commands.run([sys.executable, os.path.join("bench", script), flag],
                      cwd=ROOT, capture_output=True, text=True, timeout=120,
                      check=False)
  assert done.returncode == 1
  assert "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1].startswith(message)
  assert "BENCH" not in done.stdout


def test_a_bad_value_found_later_is_one_line():
  done = commands.run([sys.executable, "bench/quality.py",
                       "--problems=nonsense"], cwd=ROOT, capture_output=True,
                      text=True, timeout=120, check=False)
  assert done.returncode == 1
  assert "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1].startswith(
      "Error: Unknown problem 'nonsense'.")


def test_the_swarm_bench_without_its_extras_says_what_to_install():
  # As if cma were not installed (`import cma` then raises ImportError).
  code = ("import runpy, sys; sys.modules['cma'] = None; "
          "sys.path.insert(0, 'bench'); sys.argv = ['bench/swarm.py']; "
          "runpy.run_path('bench/swarm.py', run_name='__main__')")
  done = commands.run([sys.executable, "-c", code], cwd=ROOT,
                      capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].startswith(
      "Error: bench/swarm.py needs the bench extras (")
  assert done.stderr.strip().endswith("pip install -e '.[bench]'")


def test_the_swarm_bench_names_the_refining_problem_only_if_it_scores_one():
  pytest.importorskip("cma", reason="bench/swarm.py needs the bench extras")
  code = (
      "import sys; sys.path.insert(0, 'bench'); import swarm; "
      "swarm.FLAGS(['swarm.py']); "
      "hop = ('L2L swarm, basin hopping', 'h', 8, {}); "
      "refine = (swarm.REFINE_LABEL, 'r', 8, {}); "
      "print(swarm.settings_text([hop])); "
      "print(swarm.settings_text([hop, refine]))")
  done = commands.run([sys.executable, "-c", code], cwd=ROOT,
                      capture_output=True, text=True, timeout=120, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  alone, with_refining = done.stdout.strip().splitlines()
  assert "refining swarm" not in alone
  assert "meta-trained on square_cos_10 only. Every" in alone
  assert ("(the refining swarm on rastrigin:num_dims=10,scale_range=4)"
          in with_refining)
