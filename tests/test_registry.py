"""Tests for l2l/tasks/registry.py: problems of one's own, their options,
the modules that register them, and their errors reported in one line."""

import inspect
import math
import sys

import pytest
import tensorflow as tf

from conftest import make_ring
from l2l.tasks import registry
import problems
import util


def test_an_option_of_another_kind_than_its_default_is_refused(ring):
  # Before, "abc" reached tf.compat.v1.get_variable's shape: a traceback.
  for text, message in [
      ("ring:num_dims=abc", "option num_dims='abc': expected a number, as "
       "its default 2 is"),
      ("ring:radius=True", "option radius=True: expected a number"),
      ("rastrigin:rotate=1", "option rotate=1: expected a bool, as its "
       "default False is")]:
    with pytest.raises(ValueError, match=message):
      util.check_problem_name(text)
  # A number where the default is an int, and anything where it is None.
  util.check_problem_name("ring:radius=0.5,num_dims=3")
  util.check_problem_name("rastrigin:dtype=float64,init_stddev=2")


def test_make_problem_must_take_mode_and_default_every_option():
  def without_mode(num_dims=2):
    return make_ring("test", num_dims)
  def with_a_required_option(mode, num_dims, radius):
    return make_ring(mode, num_dims, radius)
  for make, message in [
      (without_mode, r"make_problem of problem 'p' must take mode "
       r"\(\"train\" or \"test\"\), then its options with their defaults"),
      (with_a_required_option, r"make_problem of problem 'p' has no default "
       r"for num_dims, radius: every option needs one, as the name alone "
       r"must build\.")]:
    with pytest.raises(ValueError, match=message):
      util.register_problem("p", make)
  assert "p" not in util.problem_names()


def test_mode_is_no_option(ring):
  with pytest.raises(ValueError, match=r"mode is not an option of problem "
                     r"'ring': the commands set it"):
    util.check_problem_name("ring:mode=train")


def test_a_nan_option_is_refused_as_no_setting(ring):
  with pytest.raises(ValueError, match=r"problem 'ring' option radius=nan: "
                     r"expected a number, not NaN\."):
    util.check_problem_name("ring:radius=nan")
  # An infinity may be meant (a bound that does not bind).
  util.check_problem_name("ring:radius=inf")


def _make_fragile(mode, num_dims=2, needs_argument=False):
  """A problem whose build fails as a user's might: a float for an int
  option reaches get_variable's shape."""
  del mode
  if needs_argument:
    return lambda scale: scale
  def build():
    x = tf.compat.v1.get_variable("x", [num_dims])
    return tf.reduce_sum(tf.square(x))
  return build


def test_what_a_problem_of_ones_own_raises_is_one_line_naming_it():
  util.register_problem("fragile", _make_fragile)
  try:
    with tf.Graph().as_default():
      problem = util.get_config("fragile:num_dims=2.5", mode="test")[0]
      with pytest.raises(ValueError) as raised:
        problem()
    # The problem as named, the error, and the user's line that raised.
    line = inspect.getsourcelines(_make_fragile)[1] + 7
    assert str(raised.value) == (
        "problem 'fragile:num_dims=2.5' failed in its build(): TypeError: "
        "{} (test_registry.py, line {})".format(raised.value.__cause__, line))
    assert isinstance(raised.value.__cause__, TypeError)
    # A build that wants arguments is refused when it is made.
    with tf.Graph().as_default(), pytest.raises(
        ValueError, match=r"problem 'fragile:needs_argument=True': "
        r"make_problem returned build\(scale\), but build\(\) is called "
        r"with no arguments"):
      util.get_config("fragile:needs_argument=True", mode="test")
    # A ValueError is the problem's own refusal, worded already: as is.
    util.register_problem(
        "refusing", lambda mode: _raise(ValueError("num_dims must be > 0")))
    with pytest.raises(ValueError, match="^num_dims must be > 0$"):
      util.get_config("refusing", mode="test")
    util.register_problem(
        "crashing", lambda mode: _raise(KeyError("weights")))
    with pytest.raises(ValueError, match=r"^problem 'crashing' failed in its "
                       r"make_problem: KeyError: 'weights'"):
      util.get_config("crashing", mode="test")
  finally:
    for name in ("fragile", "refusing", "crashing"):
      if name in util.problem_names():
        util.unregister_problem(name)


def _raise(error):
  raise error


def test_same_problem_fills_in_a_registered_problems_defaults(ring):
  assert registry.same_problem("ring", "ring:radius=1.0")
  assert registry.same_problem("ring:num_dims=3,radius=2",
                           "ring:radius=2,num_dims=3")
  assert not registry.same_problem("ring", "ring:radius=2")
  assert registry.same_problem("quadratic", "quadratic")
  assert not registry.same_problem("quadratic", "quadratic-las")
  assert not registry.same_problem("ring:colour=red", "ring")
  assert not registry.same_problem(None, "ring")


def test_parse_problem_options():
  assert registry.parse_problem_options(
      "num_dims=10, shift=2.5,name=relu,flag=True,none=None") == {
          "num_dims": 10, "shift": 2.5, "name": "relu", "flag": True,
          "none": None}
  assert registry.parse_problem_options("") == {}
  # Lowercase, as the family's options and absl's flags take them.
  assert registry.parse_problem_options("rotate=true,scale=FALSE,x=yes") == {
      "rotate": True, "scale": False, "x": "yes"}
  special = registry.parse_problem_options(
      "a=nan,b=-inf,c=Infinity,d=info,e=--inf")
  assert math.isnan(special.pop("a"))
  assert special == {"b": -math.inf, "c": math.inf, "d": "info",
                     "e": "--inf"}
  with pytest.raises(ValueError, match="given twice"):
    registry.parse_problem_options("a=1,a=2")


def test_load_problem_module_registers_its_problems(tmp_path):
  module = tmp_path / "my_problems_for_test.py"
  module.write_text(
      "import tensorflow as tf\n"
      "import util\n"
      "def make(mode):\n"
      "  return lambda: tf.square(tf.compat.v1.get_variable('x', []))\n"
      "util.register_problem('from_a_file', make)\n")
  try:
    registry.load_problem_module(str(module))
    util.check_problem_name("from_a_file")
    # It knows its module, which a saved optimizer records.
    assert registry.problem_module("from_a_file:") == str(module)
    assert registry.problem_module("quadratic") is None
    assert registry.problem_module("rastrigin") is None
    # Importing it again registers nothing twice.
    registry.load_problem_module(str(module))
  finally:
    util.unregister_problem("from_a_file")
    sys.modules.pop("my_problems_for_test", None)
  with pytest.raises(ValueError, match="the file does not exist"):
    registry.load_problem_module(str(tmp_path / "missing.py"))
  broken = tmp_path / "broken_for_test.py"
  broken.write_text("raise RuntimeError('boom')\n")
  with pytest.raises(ValueError, match="failed to import: RuntimeError: "
                     "boom"):
    registry.load_problem_module(str(broken))
  # train.py exited 0, having trained nothing.
  exiting = tmp_path / "exiting_for_test.py"
  exiting.write_text("import sys\nsys.exit(0)\n")
  with pytest.raises(ValueError, match=r"exiting_for_test.py exited while it "
                     r"was imported \(sys.exit\(0\)\); a problem module "
                     "should only register problems."):
    registry.load_problem_module(str(exiting))
  assert "exiting_for_test" not in sys.modules
  with pytest.raises(ValueError, match="no problem module 'no_such_mod'"):
    registry.load_problem_module("no_such_mod")


def test_a_problem_module_file_imports_its_neighbours_and_shadows_nothing(
    tmp_path):
  (tmp_path / "helper_for_test.py").write_text("SIZE = 3\n")
  module = tmp_path / "with_helper_for_test.py"
  module.write_text(
      "import tensorflow as tf\n"
      "import helper_for_test\n"
      "import util\n"
      "def make(mode):\n"
      "  return lambda: tf.reduce_sum(tf.compat.v1.get_variable(\n"
      "      'x', [helper_for_test.SIZE]))\n"
      "util.register_problem('with_helper', make)\n")
  path_before = list(sys.path)
  try:
    registry.load_problem_module(str(module))
    util.check_problem_name("with_helper")
  finally:
    util.unregister_problem("with_helper")
    for name in ("with_helper_for_test", "helper_for_test"):
      sys.modules.pop(name, None)
  assert sys.path == path_before
  # Another problem file of the same name replaces the first, as before.
  other = tmp_path / "other"
  other.mkdir()
  (other / "with_helper_for_test.py").write_text(
      "import util\n"
      "util.register_problem('second_file', lambda mode: None)\n")
  registry.load_problem_module(str(module))
  try:
    registry.load_problem_module(str(other / "with_helper_for_test.py"))
    util.check_problem_name("second_file")
  finally:
    for name in ("with_helper", "second_file"):
      util.unregister_problem(name)
    for name in ("with_helper_for_test", "helper_for_test"):
      sys.modules.pop(name, None)
  # A file named as the library's own module would replace it.
  own = tmp_path / "problems.py"
  own.write_text("raise AssertionError('never run')\n")
  with pytest.raises(ValueError) as error:
    registry.load_problem_module(str(own))
  assert str(error.value).startswith(
      "problem module {} would replace the module 'problems' already "
      "imported from ".format(own))
  assert sys.modules["problems"] is problems


def test_a_problem_module_name_failing_inside_is_one_error(tmp_path,
                                                          monkeypatch):
  (tmp_path / "syntax_error_for_test.py").write_text("def f(:\n")
  (tmp_path / "missing_import_for_test.py").write_text(
      "import no_such_package_for_test\n")
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ValueError, match=r"^problem module "
                     r"'syntax_error_for_test' failed to import: "
                     r"SyntaxError: "):
    registry.load_problem_module("syntax_error_for_test")
  with pytest.raises(ValueError, match=r"^problem module "
                     r"'missing_import_for_test' failed to import: "
                     r"ModuleNotFoundError: No module named "
                     r"'no_such_package_for_test'"):
    registry.load_problem_module("missing_import_for_test")


def test_a_problem_module_name_is_found_in_the_working_directory(
    tmp_path, monkeypatch):
  (tmp_path / "cwd_problems_for_test.py").write_text(
      "import tensorflow as tf\n"
      "import util\n"
      "def make(mode):\n"
      "  return lambda: tf.square(tf.compat.v1.get_variable('x', []))\n"
      "util.register_problem('from_the_cwd', make)\n")
  monkeypatch.chdir(tmp_path)
  path_before = list(sys.path)
  try:
    registry.load_problem_module("cwd_problems_for_test")
    util.check_problem_name("from_the_cwd")
  finally:
    util.unregister_problem("from_the_cwd")
    sys.modules.pop("cwd_problems_for_test", None)
  assert sys.path == path_before
