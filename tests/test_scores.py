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


def test_a_nan_particle_makes_its_epoch_and_the_mean_diverged():
  losses = np.ones((2, 3, 2))
  losses[:, -1, :] = [[0.5, 0.25], [1.0, np.nan]]
  np.testing.assert_array_equal(scores.best_final_losses(losses)[0], 0.25)
  assert np.isnan(scores.best_final_losses(losses)[1])
  assert scores.diverged(scores.mean_final(losses))
  losses[1, -1, 1] = 0.75
  assert scores.mean_final(losses) == pytest.approx((0.25 + 0.75) / 2)
