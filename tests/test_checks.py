"""Tests for l2l/checks.py: option values of any type, one message style."""

import dataclasses

import numpy as np
import pytest

from l2l import checks


@pytest.mark.parametrize("value", [1, 7, np.int64(3), 2 ** 31 - 1])
def test_check_integer_takes_integers_at_the_minimum_or_above(value):
  checks.check_integer("n", value)


@pytest.mark.parametrize("value, minimum, message", [
    (0, 1, "n must be a positive integer, got 0."),
    (True, 1, "n must be a positive integer, got True."),
    (2.0, 1, "n must be a positive integer, got 2.0."),
    ("3", 1, "n must be a positive integer, got '3'."),
    (None, 1, "n must be a positive integer, got None."),
    (1, 2, "n must be an integer >= 2, got 1."),
    # TensorFlow's shapes are int32: larger sizes overflowed in a traceback.
    (2 ** 31, 1, "n must be at most 2147483647 (TensorFlow's sizes are "
     "32-bit integers), got 2147483648."),
])
def test_check_integer_names_what_it_expected(value, minimum, message):
  with pytest.raises(ValueError) as error:
    checks.check_integer("n", value, minimum)
  assert str(error.value) == message


@pytest.mark.parametrize("value, minimum", [
    (0, 0), (2.5, 1), (-3e-2, None), (np.float32(0.5), 0), (10**300, None)])
def test_check_number_takes_finite_reals(value, minimum):
  checks.check_number("s", value, minimum)


@pytest.mark.parametrize("value, minimum, message", [
    ("nan", 0, "s must be a finite number >= 0, got 'nan'."),
    (float("nan"), 0, "s must be a finite number >= 0, got nan."),
    (float("inf"), None, "s must be a finite number, got inf."),
    (-float("inf"), 0, "s must be a finite number >= 0, got -inf."),
    (False, None, "s must be a finite number, got False."),
    ([1.0], None, "s must be a finite number, got [1.0]."),
    (-1, 0, "s must be >= 0, got -1."),
    (0.5, 1, "s must be >= 1, got 0.5."),
])
def test_check_number_names_what_it_expected(value, minimum, message):
  with pytest.raises(ValueError) as error:
    checks.check_number("s", value, minimum)
  assert str(error.value) == message


def test_check_number_refuses_an_integer_beyond_the_float_range():
  # It would become an infinite spread or shift in the graph.
  with pytest.raises(ValueError, match="^s must be a finite number, got 1000"):
    checks.check_number("s", 10**400)


def test_check_bool_takes_only_true_and_false():
  checks.check_bool("rotate", True)
  checks.check_bool("rotate", False)
  for value in (1, 0, "yes", None, 2.5):
    with pytest.raises(ValueError) as error:
      checks.check_bool("rotate", value)
    assert str(error.value) == "rotate must be True or False, got {!r}.".format(
        value)


@dataclasses.dataclass
class _Options:
  count: int = 1
  rate: float = 0.5
  scale: float = None
  on: bool = False
  name: str = "any"


def test_check_fields_checks_each_field_by_its_type():
  checks.check_fields(_Options(), "Option ")
  checks.check_fields(_Options(scale=2, name=3), "Option ")
  for options, message in (
      (_Options(count=2.0), "Option count must be a positive integer"),
      (_Options(rate=float("nan")), "Option rate must be a finite number"),
      (_Options(rate=None), "Option rate must be a finite number, got None"),
      (_Options(scale="big"), "Option scale must be a finite number"),
      (_Options(on=1), "Option on must be True or False, got 1")):
    with pytest.raises(ValueError, match=message):
      checks.check_fields(options, "Option ")
