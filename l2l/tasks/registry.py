"""Problems of one's own: their registry, their options, and the modules
that register them.

`util.register_problem` records a problem here (a `Registration`) and
`util.get_config` builds it from here, as it builds the built-in ones.
What this module adds around the user's code: options parsed from text
and checked against `make_problem`'s signature before anything is built,
the module that registered each problem (so that a saved optimizer can
name it), and what the user's `make_problem` or `build()` raises reported
in one line naming the problem, its options and the line that raised.
"""

import ast
import collections
import contextlib
import functools
import importlib
import importlib.util
import inspect
import math
import numbers
import os
import re
import sys
import traceback

# Separates a problem's name from its options: "name:key=value,...".
OPTIONS_SEPARATOR = ":"
# What a registered problem may be called.
_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
# The problems registered, by name.
_REGISTERED = {}
# The modules `load_problem_module` imported from files.
_PROBLEM_FILE_MODULES = []
# What `load_problem_module` is importing, innermost last: the problems
# registered meanwhile record it (`problem_module`).
_loading_module = []


class Registration(collections.namedtuple(
    "Registration", "name, make_problem, net_config, net_assignments, "
    "validation_mode, module")):
  """A problem of one's own, as `register` recorded it.

  name: its name.
  make_problem: `make_problem(mode, **options)`, which returns `build`.
  net_config: `{net_id: factory config}` of the optimizer that trains on it.
  net_assignments: as `MetaOptimizer.meta_loss`'s, or None.
  validation_mode: the mode its validation instances are drawn in.
  module: what `load_problem_module` was importing when it was registered
    (a file's absolute path, or a module name), or None.
  """

  __slots__ = ()


def register(name, make_problem, net_config, net_assignments=None,
             validation_mode="test"):
  """Records a problem of one's own (`util.register_problem` documents it;
  it also refuses names already taken).

  Raises:
    ValueError: for a bad name, a `make_problem` that is not callable,
      takes no `mode` or lacks a default for an option, a bad net config or
      validation mode.
  """
  check_name(name)
  if not callable(make_problem):
    raise ValueError("make_problem of problem {!r} must be callable, got "
                     "{!r}.".format(name, make_problem))
  if validation_mode not in ("train", "test"):
    raise ValueError("validation_mode of problem {!r} must be 'train' or "
                     "'test', got {!r}.".format(name, validation_mode))
  _check_make_problem(name, make_problem)
  if not isinstance(net_config, dict) or not net_config or not all(
      isinstance(c, dict) and "net" in c for c in net_config.values()):
    raise ValueError("net_config of problem {!r} must map net ids to dicts "
                     "like {{'net': 'CoordinateWiseDeepLSTM', 'net_options': "
                     "{{...}}}}, got {!r}.".format(name, net_config))
  _REGISTERED[name] = Registration(
      name, make_problem,
      {key: dict(config) for key, config in net_config.items()},
      net_assignments, validation_mode,
      _loading_module[-1] if _loading_module else None)


def unregister(name):
  """Forgets a problem `register` recorded.

  Raises:
    ValueError: if `name` was not registered (built-in names cannot be
      removed).
  """
  if name not in _REGISTERED:
    raise ValueError("problem {!r} was not registered.".format(name))
  del _REGISTERED[name]


def check_name(name):
  """Raises ValueError unless `name` may name a problem of one's own."""
  if not isinstance(name, str) or not _NAME_PATTERN.match(name):
    raise ValueError("problem name {!r} is invalid: expected letters, "
                     "digits, '_', '-' or '.', starting with a "
                     "letter.".format(name))


def is_registered(name):
  """Whether a problem of this name (no options) is registered."""
  return name in _REGISTERED


def names():
  """The names of the problems registered."""
  return sorted(_REGISTERED)


def base_name(problem_name):
  """A problem's name without its options: "ring" of "ring:num_dims=3"."""
  return problem_name.partition(OPTIONS_SEPARATOR)[0]


def lookup(problem_name):
  """`(Registration, options text)` of a registered problem's name (with or
  without options), or None."""
  base, _, options = problem_name.partition(OPTIONS_SEPARATOR)
  registration = _REGISTERED.get(base)
  return None if registration is None else (registration, options)


def check_options(registration, options):
  """Raises ValueError unless the options text suits the problem (see
  `_check_signature`)."""
  _check_signature(registration.name, registration.make_problem,
                   parse_problem_options(options))


def build_function(registration, mode, options):
  """The problem's `build`, made by its `make_problem` in `mode` with the
  options text; what the user's code raises is reported as
  `_run_problem_code` does.

  Raises:
    ValueError: for bad options, a `make_problem` that fails or returns no
      build function, or a build that takes arguments.
  """
  name = registration.name
  given = name + (OPTIONS_SEPARATOR + options if options else "")
  options = parse_problem_options(options)
  _check_signature(name, registration.make_problem, options)
  problem = _run_problem_code(given, "make_problem",
                              registration.make_problem, mode=mode,
                              **options)
  if not callable(problem):
    raise ValueError("problem {!r}: make_problem returned {!r}, not a "
                     "build function.".format(name, problem))
  _check_build_signature(given, problem)
  return _reported_build(given, problem)


def parse_problem_options(text):
  """Parses a problem's options, "key=value,key=value", into a dict.

  A value is read as a Python literal where it is one (1, 0.5, -3e-2, True,
  None), true and false in any case as bools (as the family's options and
  absl's flags take them), and kept as text otherwise ("iris", "relu").

  Args:
    text: the options, e.g. "num_dims=10,shift=2.5,activation=relu".

  Returns:
    A dict of option names to values.

  Raises:
    ValueError: for a pair without "=", or a name given twice.
  """
  options = {}
  for pair in filter(None, (p.strip() for p in text.split(","))):
    key, equals, value = pair.partition("=")
    key, value = key.strip(), value.strip()
    if not equals or not key.isidentifier():
      raise ValueError("bad problem option {!r}: expected key=value, e.g. "
                       "num_dims=10.".format(pair))
    if key in options:
      raise ValueError("problem option {!r} is given twice.".format(key))
    if value.lower() in ("true", "false"):
      options[key] = value.lower() == "true"
      continue
    try:
      options[key] = ast.literal_eval(value)
    except (ValueError, SyntaxError):
      # "nan" and "inf" are numbers to whoever types them, though no
      # Python literals: the problem's own checks then name them.
      options[key] = (float(value) if re.fullmatch(
          r"[+-]?(nan|inf|infinity)", value.lower()) else value)
  return options


def _check_signature(name, make_problem, options):
  """Raises ValueError unless `make_problem(mode=..., **options)` binds, and
  each option is of its default's kind (a number, text, a bool)."""
  if "mode" in options:
    raise ValueError("mode is not an option of problem {!r}: the commands "
                     "set it (train for meta-training, test for "
                     "evaluation).".format(name))
  signature = inspect.signature(make_problem)
  try:
    signature.bind(mode="test", **options)
  except TypeError as error:
    raise ValueError("problem {!r} does not take the options {}: {}.".format(
        name, ", ".join(sorted(options)) or "(none)", error)) from error
  for key, value in options.items():
    if isinstance(value, float) and math.isnan(value):
      # No setting is meant as NaN; it would only surface as a NaN loss.
      raise ValueError("problem {!r} option {}=nan: expected a number, not "
                       "NaN.".format(name, key))
    parameter = signature.parameters.get(key)
    default = None if parameter is None else parameter.default
    expected = _option_kind(default)
    if expected is not None and _option_kind(value) != expected:
      raise ValueError("problem {!r} option {}={!r}: expected {}, as its "
                       "default {!r} is.".format(name, key, value, expected,
                                                 default))


def _check_make_problem(name, make_problem):
  """Raises ValueError unless `make_problem` takes `mode`, and a default
  for each other argument: the name alone, without options, must build."""
  parameters = inspect.signature(make_problem).parameters.values()
  keywords = [p for p in parameters
              if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
  if "mode" not in [p.name for p in keywords] and not any(
      p.kind == p.VAR_KEYWORD for p in parameters):
    raise ValueError(
        "make_problem of problem {!r} must take mode (\"train\" or "
        "\"test\"), then its options with their defaults, e.g. "
        "def make(mode, num_dims=2).".format(name))
  required = [p.name for p in keywords
              if p.name != "mode" and p.default is p.empty]
  if required:
    raise ValueError(
        "make_problem of problem {!r} has no default for {}: every option "
        "needs one, as the name alone must build.".format(
            name, ", ".join(required)))
  _check_signature(name, make_problem, {})


def _option_kind(value):
  """"a bool", "a number" or "text" for such a value, else None (any kind
  goes: an int default takes a float, and a default of None anything)."""
  if isinstance(value, bool):
    return "a bool"
  if isinstance(value, numbers.Real):
    return "a number"
  if isinstance(value, str):
    return "text"
  return None


def _arguments(make_problem, options):
  """Every argument `make_problem` gets from `options`, defaults included
  (`mode` aside)."""
  bound = inspect.signature(make_problem).bind_partial(**options)
  bound.apply_defaults()
  return {key: value for key, value in bound.arguments.items()
          if key != "mode"}


def same_problem(first, second):
  """Whether two problem names, options included, name the same problem.

  They do when they are the same text, or name one registered problem
  with the same options once its defaults are filled in: "logreg" and
  "logreg:noise=0.1" where noise defaults to 0.1, or options in another
  order.

  Args:
    first: a problem name.
    second: another.

  Returns:
    True or False (False for names that are not problems here).
  """
  if first == second:
    return True
  if not (isinstance(first, str) and isinstance(second, str)):
    return False  # A state that recorded no problem.
  entries = [lookup(name) for name in (first, second)]
  if None in entries or entries[0][0] is not entries[1][0]:
    return False
  make_problem = entries[0][0].make_problem
  try:
    return (_arguments(make_problem, parse_problem_options(entries[0][1])) ==
            _arguments(make_problem, parse_problem_options(entries[1][1])))
  except (TypeError, ValueError):
    return False


def _check_build_signature(given, build):
  """Raises ValueError if `build` cannot be called without arguments."""
  try:
    signature = inspect.signature(build)
  except (TypeError, ValueError):
    return  # Not introspectable (a builtin): its call will tell.
  try:
    signature.bind()
  except TypeError as error:
    raise ValueError(
        "problem {!r}: make_problem returned build{}, but build() is called "
        "with no arguments ({}); make its settings options of make_problem "
        "instead.".format(given, signature, error)) from error


def _reported_build(given, build):
  """`build`, with what it raises reported as `_run_problem_code` does."""
  @functools.wraps(build)
  def reported():
    return _run_problem_code(given, "build()", build)
  return reported


def _run_problem_code(given, what, func, *args, **kwargs):
  """Calls a problem of one's own's `func`; what it raises, bar a
  ValueError (a refusal already worded for the user, its own or this
  library's), becomes a one-line ValueError naming the problem, its
  options, and the line of the user's file that raised.

  Args:
    given: the problem as named, with its options ("ring:num_dims=2.5").
    what: which of its functions this is, for the message.
    func: the function.
    *args: its arguments.
    **kwargs: its keyword arguments.

  Returns:
    What `func` returns.

  Raises:
    ValueError: for anything `func` raises (the original is chained, and
      the commands show its traceback with --verbosity=1).
  """
  try:
    return func(*args, **kwargs)
  except ValueError:
    raise
  except Exception as error:  # pylint: disable=broad-except (user code)
    raise ValueError("problem {!r} failed in its {}: {}: {}{}".format(
        given, what, type(error).__name__, error,
        _raised_at(error, func))) from error


def _raised_at(error, func):
  """" (file.py, line N)": the innermost line of `func`'s file in
  `error`'s traceback, or "" if none is."""
  try:
    source = inspect.getsourcefile(inspect.unwrap(func))
  except TypeError:
    return ""
  line = None
  for frame, number in traceback.walk_tb(error.__traceback__):
    if frame.f_code.co_filename == source:
      line = number
  if line is None:
    return ""
  return " ({}, line {})".format(os.path.basename(source), line)


def problem_module(problem_name):
  """The `--problem_module` that registered a problem, or None.

  Args:
    problem_name: a problem's name, with or without options.

  Returns:
    What `load_problem_module` was given (a file as an absolute path, or a
    module name) for a problem registered while it imported that module;
    None for a built-in problem, or one registered otherwise (a script's
    own `register_problem` call).
  """
  registered = lookup(problem_name)
  return None if registered is None else registered[0].module


def load_problem_module(spec):
  """Imports a module of one's own, which registers its problems.

  This is how the commands learn a user's problems (`--problem_module`):
  the module calls `util.register_problem` when imported.

  Args:
    spec: a Python file ("./my_problems.py") or an importable module name
      ("my_package.problems"; the working directory is searched first).

  Returns:
    The imported module.

  Raises:
    ValueError: if the file does not exist, its name is a module already
      imported (it would replace it), or the module cannot be imported or
      fails while importing (the message names which and why).
  """
  if spec.endswith(".py") or os.sep in spec:
    path = os.path.abspath(spec)
    if not os.path.isfile(path):
      raise ValueError("no problem module {}: the file does not "
                       "exist.".format(spec))
    module_name = os.path.splitext(os.path.basename(path))[0]
    loaded = sys.modules.get(module_name)
    if loaded is not None and getattr(loaded, "__file__", None) == path:
      return loaded
    if loaded is not None and loaded not in _PROBLEM_FILE_MODULES:
      # A file named problems.py (or util.py, numpy.py...) would replace,
      # for everything imported later, the module of that name. (Another
      # problem file of the same name may replace the first.)
      raise ValueError(
          "problem module {} would replace the module {!r} already "
          "imported from {}; give the file another name.".format(
              spec, module_name, getattr(sys.modules[module_name],
                                         "__file__", "Python")))
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    # While it runs, its directory is searched (last) for the modules it
    # imports, as `python file.py` would search it.
    with _searched(os.path.dirname(path), first=False), \
        _loading(path):
      try:
        module_spec.loader.exec_module(module)
      except (Exception, SystemExit) as error:  # pylint: disable=broad-except
        del sys.modules[module_name]
        raise ValueError("problem module {} {}".format(
            spec, _failed_import(error))) from error
    _PROBLEM_FILE_MODULES.append(module)
    return module
  # A module name is searched in the working directory first, as `python
  # -m` does, although the commands run from their own directory.
  with _searched(os.getcwd(), first=True), _loading(spec):
    try:
      return importlib.import_module(spec)
    except (Exception, SystemExit) as error:  # pylint: disable=broad-except
      if (isinstance(error, ImportError) and error.name and
          spec.startswith(error.name)):
        raise ValueError("no problem module {!r}: {}.".format(
            spec, error)) from error
      raise ValueError("problem module {!r} {}".format(
          spec, _failed_import(error))) from error


def _failed_import(error):
  """What a problem module's import raised, as the end of a message.

  User code: anything may come out of it, a `sys.exit()` included, which
  would otherwise end the command as if it had succeeded.
  """
  if isinstance(error, SystemExit):
    return ("exited while it was imported (sys.exit({!r})); a problem module "
            "should only register problems.".format(error.code))
  return "failed to import: {}: {}".format(type(error).__name__, error)


@contextlib.contextmanager
def _loading(spec):
  """Marks the problems registered meanwhile as registered by `spec`."""
  _loading_module.append(spec)
  try:
    yield
  finally:
    _loading_module.pop()


@contextlib.contextmanager
def _searched(directory, first):
  """Puts `directory` on `sys.path` (first or last) unless it is there, and
  takes it off again afterwards."""
  added = directory not in sys.path
  if added:
    if first:
      sys.path.insert(0, directory)
    else:
      sys.path.append(directory)
  try:
    yield
  finally:
    if added:
      sys.path.remove(directory)
