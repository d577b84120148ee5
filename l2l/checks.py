"""Checks of option values a user gives, with one style of message.

Options reach the library from command lines ("rastrigin:init_stddev=nan"
is read as the text "nan"), from scripts and from saved files, so a value
may be of any type. Each check raises ValueError naming the option, what
was expected and what was given; the commands turn that into their
one-line error. A bool is not taken for a number: `True` for a spread or a
count is a mistake, not 1.
"""

import dataclasses
import math
import numbers

# The largest seed whose draws no other seed repeats: TensorFlow reduces a
# graph seed modulo 2**31 - 1 (its random_seed module), so 2**31 draws what
# 1 does and -1 what 2**31 - 2 does. The commands take seeds from 0 to this.
MAX_SEED = 2 ** 31 - 2
# The largest size or count TensorFlow's int32 shapes hold.
MAX_SIZE = 2 ** 31 - 1


def is_integer(value, minimum=None):
  """Whether `value` is an integer (a bool is not), of at least `minimum`.

  Args:
    value: any value (read from JSON, a flag, a script).
    minimum: the smallest value allowed, or None for any.

  Returns:
    A bool.
  """
  return (not isinstance(value, bool) and
          isinstance(value, numbers.Integral) and
          (minimum is None or value >= minimum))


def check_integer(what, value, minimum=1):
  """Raises ValueError unless `value` is a size or count of at least
  `minimum` and at most `MAX_SIZE`.

  Args:
    what: the option, as the message names it (e.g. "rastrigin num_dims").
    value: the value given.
    minimum: the smallest value allowed.

  Raises:
    ValueError: for a non-integer (a bool included) or a value below
      `minimum` or above `MAX_SIZE`.
  """
  if not is_integer(value, minimum):
    expected = ("a positive integer" if minimum == 1 else
                "an integer >= {}".format(minimum))
    raise ValueError("{} must be {}, got {!r}.".format(what, expected, value))
  if value > MAX_SIZE:
    raise ValueError("{} must be at most {} (TensorFlow's sizes are 32-bit "
                     "integers), got {}.".format(what, MAX_SIZE, value))


def check_path_given(flag, value):
  """Raises ValueError if a path flag was given empty (or only blanks).

  `--path=` (say, from an unset shell variable) would otherwise name the
  current directory, or print an empty name in a later error.

  Args:
    flag: the flag's name, without dashes.
    value: its value; None (not given) passes.

  Raises:
    ValueError: naming the flag and what it expected.
  """
  if value is not None and not value.strip():
    raise ValueError("--{}={} is invalid: expected a path, got an empty "
                     "value.".format(flag, value))


def check_number(what, value, minimum=None):
  """Raises ValueError unless `value` is a finite real number >= `minimum`.

  Args:
    what: the option, as the message names it.
    value: the value given.
    minimum: the smallest value allowed, or None for any.

  Raises:
    ValueError: for a non-number (a bool or text included), NaN, an
      infinity (or an integer too large for a float), or a value below
      `minimum`.
  """
  bound = "" if minimum is None else " >= {}".format(minimum)
  if not is_finite_number(value):
    raise ValueError("{} must be a finite number{}, got {!r}.".format(
        what, bound, value))
  if minimum is not None and value < minimum:
    raise ValueError("{} must be{}, got {!r}.".format(what, bound, value))


def is_finite_number(value):
  """Whether `value` is a real number (a bool is not) that is a finite
  float: not NaN, infinite, or an integer beyond the float range."""
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    return False
  try:
    return math.isfinite(float(value))
  except OverflowError:
    return False


def check_bool(what, value):
  """Raises ValueError unless `value` is True or False.

  Args:
    what: the option, as the message names it.
    value: the value given.

  Raises:
    ValueError: for anything but a bool (1 and "yes" included).
  """
  if not isinstance(value, bool):
    raise ValueError("{} must be True or False, got {!r}.".format(what, value))


def check_fields(config, prefix):
  """Checks each bool, int and float field of a dataclass by its type.

  A field whose default is None may be None. Fields of other types (text
  choices, tuples) are left to the caller.

  Args:
    config: a dataclass instance, e.g. a `SwarmConfig`.
    prefix: what the messages put before a field's name, e.g.
      "Swarm option ".

  Raises:
    ValueError: for the first field whose value is not of its type (a
      finite number for a float).
  """
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    what = prefix + field.name
    if field.default is None and value is None:
      continue
    if field.type is bool:
      check_bool(what, value)
    elif field.type is int:
      check_integer(what, value)
    elif field.type is float:
      check_number(what, value)
