"""Tests for scores.py: the one rule for the final-error figure."""

import math

import numpy as np
import pytest

from l2l.experiment import scores


@pytest.mark.parametrize("mean, status, log, text", [
    (0.01, scores.FINITE, -2.0, "-2.00"),
    (0.0, scores.FINITE, -math.inf, "-inf"),
    (-3.0, scores.NEGATIVE, None, "none (negative mean)"),
    (math.nan, scores.DIVERGED, None, "diverged"),
    (math.inf, scores.DIVERGED, None, "diverged"),
    (-math.inf, scores.DIVERGED, None, "diverged"),
])
def test_the_rule(mean, status, log, text):
  assert scores.status(mean) == status
  assert scores.diverged(mean) == (status == scores.DIVERGED)
  if log is None:
    assert math.isnan(scores.log_final(mean))
  else:
    assert scores.log_final(mean) == log
  assert scores.log_text(mean) == text


def test_texts_at_full_precision():
  assert scores.log_text(0.02, "r") == repr(math.log10(0.02))
  assert scores.mean_text(0.125) == "0.125"
  assert scores.mean_text(0.125, "r") == "0.125"
  assert scores.mean_text(math.nan) == "diverged"


@pytest.mark.parametrize("failed", [np.nan, np.inf, -np.inf])
def test_a_diverged_particle_makes_its_epoch_and_the_mean_diverged(failed):
  # An overflow still at inf counts as one already at NaN: a finite
  # particle beside it does not make the start set's figure good.
  losses = np.ones((2, 3, 2))
  losses[:, -1, :] = [[0.5, 0.25], [1.0, failed]]
  np.testing.assert_array_equal(scores.start_set_finals(losses)[0], 0.25)
  assert np.isnan(scores.start_set_finals(losses)[1])
  assert scores.diverged(scores.mean_final(losses))
  losses[1, -1, 1] = 0.75
  assert scores.mean_final(losses) == pytest.approx((0.25 + 0.75) / 2)


def _restarts_in_other_basins():
  """[1 epoch, 2 steps, 2 particles, 3 rows]: each particle wins some rows.

  Particle 0 ends at 1, 9, 1 on the three rows (mean 11/3), particle 1 at
  9, 1, 9 (mean 19/3).
  """
  losses = np.full((1, 2, 2, 3), 20.0)
  losses[0, -1] = [[1.0, 9.0, 1.0], [9.0, 1.0, 9.0]]
  return losses


def test_each_start_set_keeps_its_own_best_particle():
  losses = _restarts_in_other_basins()
  np.testing.assert_array_equal(scores.start_set_finals(losses), [1, 1, 1])
  assert scores.mean_final(losses) == 1.0
  assert scores.final_std(losses) == 0.0
  # The older figure picks particle 0 for the whole batch: 11/3.
  assert scores.best_particle_by_mean(losses) == pytest.approx(11 / 3)
  np.testing.assert_array_equal(scores.best_curve(losses), [[20.0, 1.0]])


def test_the_spread_is_over_start_sets():
  losses = np.zeros((2, 1, 1, 2))
  losses[:, 0, 0] = [[1.0, 3.0], [5.0, 7.0]]
  assert scores.mean_final(losses) == 4.0
  assert scores.final_std(losses) == pytest.approx(np.std([1, 3, 5, 7]))
  np.testing.assert_array_equal(scores.best_curve(losses), [[2.0], [6.0]])


def test_one_row_and_three_dimensional_losses_agree():
  losses = np.ones((3, 4, 2))
  losses[:, -1] = [[2.0, 1.0], [4.0, 8.0], [0.5, 0.25]]
  for given in (losses, losses[..., np.newaxis]):
    assert scores.mean_final(given) == pytest.approx((1 + 4 + 0.25) / 3)
    assert scores.best_particle_by_mean(given) == scores.mean_final(given)
  with pytest.raises(ValueError, match="epochs, steps"):
    scores.mean_final(np.ones((2, 3)))


def test_a_loss_broken_before_any_step_is_the_problems_fault():
  assert scores.broken_at_start([[1.0, 2.0], [0.5, 3.0]]) == ""
  assert scores.broken_at_start([1.0, -np.inf, np.nan]) == (
      "; the loss is already -inf at the starting point, before any step: "
      "the problem (its build()) is at fault, not the optimizer")


@pytest.mark.parametrize("tuning, found_none", [
    (None, False),
    ({"scores": {}}, False),
    ({"scores": {"0.1": 0.5, "1.0": float("inf")}}, False),
    ({"scores": {"0.1": float("nan"), "1.0": float("inf")}}, True),
])
def test_tuning_found_no_rate_when_every_rate_diverged(tuning, found_none):
  assert scores.tuning_found_no_rate(tuning) is found_none
