"""Problem configurations and the epoch loops shared by train.py and evaluate.py."""

import difflib
import functools
import inspect
import sys
import timeit

import numpy as np

from l2l.checkpoint import l2l_file
from l2l.experiment import scores
from l2l.tasks import family as family_tasks
from l2l.tasks import registry
from l2l.tasks import test_functions
import networks
import problems

# The default net's id, shared with MetaOptimizer() and the CLIs.
_CW = networks.DEFAULT_NET_ID


def get_net_path(name, path):
  """Returns the `.l2l` file of net `name` in directory `path`, or None."""
  return None if path is None else l2l_file.checkpoint_path(path, name)


def get_default_net_config(name, path):
  """The default coordinate-wise LSTM config for net `name`.

  Args:
    name: the net id.
    path: directory to restore it from, or None.

  Returns:
    A `networks.factory` config dict.
  """
  return _restored_config(networks.default_config(), name, path)


def get_library_net_config(name, path):
  """`get_default_net_config(name, path)` as this library configures it.

  The LSTM's gate biases start at zero (`networks.library_config`), where
  DeepMind's start them random.
  """
  return _restored_config(networks.library_config(), name, path)


def _restored_config(config, name, path):
  return dict(config, net_path=get_net_path(name, path))


def _zero_lstm_config(name, path):
  return {
      "net": "CoordinateWiseDeepLSTM",
      "net_options": {"layers": (), "initializer": "zeros"},
      "net_path": get_net_path(name, path),
  }


def _reading_data(config):
  """Marks a configuration whose problem reads a dataset's split: its
  validation instances (`get_config(..., mode="validation")`) read the
  train split, so that settings picked on them never see the test split.
  Other configurations draw validation instances as test ones."""
  config.reads_data = True
  return config


def _simple(path, mode, data_dir):
  del mode, data_dir  # Unused.
  return problems.simple(), {_CW: _zero_lstm_config(_CW, path)}, None


def _simple_multi(path, mode, data_dir):
  del mode, data_dir  # Unused.
  net_config = {
      _CW: _zero_lstm_config(_CW, path),
      "adam": {"net": "Adam", "net_options": {"learning_rate": 0.1}},
  }
  return (problems.simple_multi_optimizer(num_dims=2), net_config,
          [(_CW, ["x_0"]), ("adam", ["x_1"])])


def _quadratic(path, mode, data_dir):
  """DeepMind's quadratic: a 2x20 coordinate-wise LSTM on the raw gradient."""
  del mode, data_dir  # Unused.
  net_config = {_CW: {
      "net": "CoordinateWiseDeepLSTM",
      "net_options": {"layers": (20, 20)},
      "net_path": get_net_path(_CW, path),
  }}
  return problems.quadratic(batch_size=128, num_dims=10), net_config, None


def _quadratic_las(path, mode, data_dir):
  """This library's quadratic: LogAndSign preprocessing, scale 0.01, gate
  biases starting at zero.

  It meta-trains faster and beats tuned Adam where DeepMind's configuration
  (the raw gradient, scale 1) does not within a few hundred epochs.
  """
  del mode, data_dir  # Unused.
  return (problems.quadratic(batch_size=128, num_dims=10),
          {_CW: get_library_net_config(_CW, path)}, None)


def _square_cos(num_dims):
  """Rastrigin in `num_dims` dimensions.

  Training instances start where evaluation starts (LOIS's N(0, 0.2) in 2-d,
  N(0, 1.3) above), so the optimizer learns the descent it will be asked for.
  """
  init_stddev = 0.2 if num_dims <= 2 else 1.3

  def config(path, mode, data_dir):
    del data_dir  # Unused.
    problem = problems.square_cos(batch_size=128, num_dims=num_dims,
                                  stddev=0.01, mode=mode,
                                  init_stddev=init_stddev)
    return problem, {_CW: get_library_net_config(_CW, path)}, None
  return config


def _mnist(layers, activation="sigmoid"):
  """An MNIST MLP of the paper (Figures 4 and 5) with DeepMind's optimizer.

  Every variant keeps DeepMind's `mnist` configuration (batch 128, weights
  and biases N(0, 0.01), the default 2x20 LogAndSign LSTM at scale 0.01),
  so an optimizer meta-trained on `mnist` runs on each unchanged.
  """
  def config(path, mode, data_dir):
    problem = problems.mnist(layers=layers, activation=activation,
                             batch_size=128, mode=mode, data_dir=data_dir)
    return problem, {_CW: get_default_net_config(_CW, path)}, None
  return _reading_data(config)


@_reading_data
def _digits(path, mode, data_dir):
  del data_dir  # Bundled with scikit-learn.
  return (problems.digits(layers=(20,), mode=mode),
          {_CW: get_library_net_config(_CW, path)}, None)


@_reading_data
def _cifar(path, mode, data_dir):
  return (problems.cifar10(data_dir, mode=mode),
          {_CW: get_default_net_config(_CW, path)}, None)


@_reading_data
def _cifar_multi(path, mode, data_dir):
  """DeepMind's CIFAR-10 split: convolution kernels on one net, the rest on
  another, both the default coordinate-wise LSTM."""
  conv_channels = (16, 16, 16)
  problem = problems.cifar10(data_dir, conv_channels=conv_channels,
                             linear_layers=(32,), mode=mode)
  net_config = {"conv": get_default_net_config("conv", path),
                "fc": get_default_net_config("fc", path)}
  blocks = range(len(conv_channels))
  conv_vars = ["conv_net_2d/conv_2d_{}/w".format(i) for i in blocks]
  fc_vars = ["conv_net_2d/conv_2d_{}/b".format(i) for i in blocks]
  fc_vars += ["conv_net_2d/batch_norm_{}/beta".format(i) for i in blocks]
  fc_vars += ["mlp/linear_{}/w".format(i) for i in range(2)]
  fc_vars += ["mlp/linear_{}/b".format(i) for i in range(2)]
  fc_vars += ["mlp/batch_norm/beta"]
  return problem, net_config, [("conv", conv_vars), ("fc", fc_vars)]


_CONFIGS = {
    "simple": _simple,
    "simple-multi": _simple_multi,
    "quadratic": _quadratic,
    "quadratic-las": _quadratic_las,
    "digits": _digits,
    "mnist": _mnist((20,)),
    # The paper's Figure 5: the optimizer meta-trained on `mnist` on 40
    # hidden units, two hidden layers of 20, and ReLU units.
    "mnist-40": _mnist((40,)),
    "mnist-2layer": _mnist((20, 20)),
    "mnist-relu": _mnist((20,), activation="relu"),
    "cifar": _cifar,
    "cifar-multi": _cifar_multi,
}


# The nets a family problem can meta-train, chosen with its `net=` option:
# - "adaptive" (the default), the net built for tasks the optimizer never
#   saw: `networks.AdaptiveStepLSTM` whose step sizes follow their
#   hypergradients alone, the LSTM learning a correction to Adam's
#   direction, both fading after the family's 100 steps. Letting the LSTM
#   move the step sizes too fit them to the family: on held-out convnets
#   and relu MLPs every seed ended behind the untrained net (bench/README.md,
#   "Attempts: which channel generalises"). Without the fade, some held-out
#   nets were thrown back to a chance-level loss by 1,000 steps ("Attempts:
#   the climb at 1,000 steps").
# - "adaptive_nohorizon": the default without the fade (the default before
#   that finding);
# - "adaptive_lstm_steps": the default with the LSTM's step-size channel on;
# - "adaptive_nohyper": that net without the hypergradient;
# - "cw": DeepMind's 2x20 LogAndSign LSTM.
# The hypergradient rate is the one of nine in 0..1 whose untrained net
# does best on 20 family draws at 100 steps (bench/README.md, "Attempts
# with the hypergradient").
FAMILY_HYPER_RATE = 0.3
# The steps of a family run, after which the net fades: train.py's default
# --num_steps and the bench's.
FAMILY_HORIZON = 100


def _adaptive_net(**options):
  """A family net config: `AdaptiveStepLSTM` with `options`."""
  return lambda: {"net": "AdaptiveStepLSTM", "net_options": dict(options)}


FAMILY_NETS = {
    "adaptive": _adaptive_net(hyper_rate=FAMILY_HYPER_RATE, step_change=0.0,
                              horizon=FAMILY_HORIZON),
    "adaptive_nohorizon": _adaptive_net(hyper_rate=FAMILY_HYPER_RATE,
                                        step_change=0.0),
    "adaptive_lstm_steps": _adaptive_net(hyper_rate=FAMILY_HYPER_RATE,
                                         horizon=FAMILY_HORIZON),
    "adaptive_nohyper": _adaptive_net(horizon=FAMILY_HORIZON),
    "cw": networks.library_config,
}
DEFAULT_FAMILY_NET = "adaptive"
_FAMILY_NET_OPTION = "net="


def split_family_net(options):
  """Separates a family problem's `net=` option from the family's own.

  Args:
    options: the text after "family:", e.g. "net=adaptive,scale_range=3".

  Returns:
    `(net name, the other options as text)`; the net defaults to
    `DEFAULT_FAMILY_NET`.

  Raises:
    ValueError: for a net name `FAMILY_NETS` lacks.
  """
  net, rest = DEFAULT_FAMILY_NET, []
  for pair in filter(None, options.split(",")):
    if pair.strip().startswith(_FAMILY_NET_OPTION):
      net = pair.strip()[len(_FAMILY_NET_OPTION):].strip()
    else:
      rest.append(pair)
  if net not in FAMILY_NETS:
    raise ValueError("Bad family option 'net={}': expected one of {}.".format(
        net, ", ".join(sorted(FAMILY_NETS))))
  return net, ",".join(rest)


def _family(options):
  """The task family of `l2l.tasks.family`, with `key=value,...` options."""
  net, family_options = split_family_net(options)
  try:
    config = family_tasks.parse_options(family_options)
  except ValueError as error:
    if not str(error).startswith("Bad family option"):
      raise
    # A key the family lacks may be meant for the net.
    raise ValueError("{} The net is chosen with net=<{}>.".format(
        error, "|".join(sorted(FAMILY_NETS)))) from error

  def make(path, mode, data_dir):
    del data_dir  # Bundled with scikit-learn.
    net_config = dict(FAMILY_NETS[net](), net_path=get_net_path(_CW, path))
    return family_tasks.family(config, split=mode), {_CW: net_config}, None
  return _reading_data(make)


def _held_out(build_problem, reads_data=True):
  """A held-out task of bench/generalization.py, on the default net."""
  def make(path, mode, data_dir):
    del data_dir  # Bundled with scikit-learn.
    return build_problem(mode), {_CW: get_library_net_config(_CW, path)}, None
  return _reading_data(make) if reads_data else make


# The held-out tasks of bench/generalization.py: shapes, activations, a
# network kind and a dataset split that the family never draws.
_CONFIGS.update({
    "family": _family(""),
    "digits-40-sigmoid": _held_out(
        lambda mode: problems.digits(layers=(40,), mode=mode)),
    "digits-20-20-sigmoid": _held_out(
        lambda mode: problems.digits(layers=(20, 20), mode=mode)),
    "digits-20-relu": _held_out(
        lambda mode: problems.digits(layers=(20,), activation="relu",
                                     mode=mode)),
    "digits-conv": _held_out(
        lambda mode: problems.digits_convnet(mode=mode)),
    "breast_cancer-logistic": _held_out(
        lambda mode: problems.logistic_regression("breast_cancer",
                                                  mode=mode)),
    "quadratic-100": _held_out(
        lambda mode: problems.quadratic(batch_size=16, num_dims=100),
        reads_data=False),
})
# The modes `get_config` takes.
MODES = ("train", "test", "validation")
_FAMILY_PREFIX = "family:"


def register_problem(name, make_problem, net_config=None,
                     net_assignments=None, replace=False,
                     validation_mode="test"):
  """Makes a problem of one's own known to `get_config`, the commands and
  the benches.

  Once registered, `name` works wherever a built-in name does:
  `util.get_config(name)`, `train.py --problem=name`, `evaluate.py
  --problem=name` (give the commands the module that registers it with
  `--problem_module`), and `name:key=value,...` passes options through.

      def make_ring(mode, num_dims=2):
        def build():
          x = tf.compat.v1.get_variable("x", [num_dims])
          return tf.square(tf.reduce_sum(tf.square(x)) - 1.0)
        return build

      util.register_problem("ring", make_ring)
      util.get_config("ring:num_dims=5", mode="test")

  Args:
    name: letters, digits, "_", "-" and "." (starting with a letter); not a
      name `get_config` already knows, unless `replace`.
    make_problem: `make_problem(mode, **options)` returns the problem's
      `build` function; `mode` is "train" (meta-training instances) or
      "test" (evaluation instances), the options are those given after the
      name.
    net_config: `{net_id: {"net": ..., "net_options": {...}}}` of the
      optimizer that trains on it; None gives this library's configuration
      of the default coordinate-wise LSTM (`networks.library_config()`, id
      "cw"). Each net's `net_path` is
      set from the directory the optimizer is restored from.
    net_assignments: as `MetaOptimizer.meta_loss`'s; None with one net.
    replace: allow replacing a problem of the same name.
    validation_mode: the mode `make_problem` gets for validation instances,
      those `--tune` and the benches pick settings on (with another seed
      than the evaluation's): "test" (the default: other draws of the
      evaluation's instances) or "train" (for a problem whose "test" mode
      reads a test split that picking settings must not see).

  Raises:
    ValueError: for a bad or taken name, a `make_problem` that is not
      callable, takes no `mode` or lacks a default for an option, a bad net
      config or validation mode.
  """
  registry.check_name(name)
  if not replace and (name in _CONFIGS or registry.is_registered(name) or
                      _square_cos_dims(name) is not None):
    raise ValueError("problem {!r} is already known; pass replace=True to "
                     "replace it.".format(name))
  if net_config is None:
    net_config = {_CW: networks.library_config()}
  registry.register(name, make_problem, net_config, net_assignments,
                    validation_mode)


def unregister_problem(name):
  """Forgets a problem `register_problem` made known.

  Raises:
    ValueError: if `name` was not registered (built-in names cannot be
      removed).
  """
  registry.unregister(name)


# The registry's public side, under the names scripts use.
parse_problem_options = registry.parse_problem_options
load_problem_module = registry.load_problem_module
problem_module = registry.problem_module
same_problem = registry.same_problem
base_name = registry.base_name


def _registered_config(registration, options):
  """`get_config`'s configuration function of a registered problem."""
  def config(path, mode, data_dir):
    del data_dir  # A problem of one's own finds its own data.
    nets = {key: _restored_config(net, key, path)
            for key, net in registration.net_config.items()}
    return (registry.build_function(registration, mode, options), nets,
            registration.net_assignments)
  return config


def _register_test_functions():
  """The classic test functions (`problems.test_function`) under their names.

  Each takes the problem's options after a colon, e.g.
  `rastrigin:num_dims=20,init_stddev=3,random_shift=2`.
  """
  for name in test_functions.FUNCTIONS:
    register_problem(name, functools.partial(problems.test_function, name))
  register_problem(FUNCTION_MIX, _function_mix)


# A mixture of test functions, one drawn per row:
# "function_mix:functions=rastrigin+ellipsoid,rotate=True".
FUNCTION_MIX = "function_mix"


def _function_mix(mode="test", functions="rastrigin", **options):
  """`problems.test_function` of the functions joined with "+"."""
  known = inspect.signature(problems.test_function).parameters
  unknown = sorted(set(options) - set(known) | {"name"} & set(options))
  if unknown:
    raise ValueError("problem {!r} does not take the options {}.".format(
        FUNCTION_MIX, ", ".join(unknown)))
  return problems.test_function(functions, mode=mode, **options)


def problem_names():
  """The problem names `get_config` knows."""
  # A registered problem may replace a built-in name: listed once.
  return sorted(set(_CONFIGS) | set(registry.names())) + [
      "square_cos_<d>", _FAMILY_PREFIX + "<options>"]


def _square_cos_dims(problem_name):
  """The d of "square_cos_<d>", or None for another name."""
  prefix = "square_cos_"
  if problem_name.startswith(prefix) and problem_name[len(prefix):].isdigit():
    return int(problem_name[len(prefix):])
  return None




def _unknown_problem(problem_name):
  """The ValueError for a name nothing knows, with the closest names."""
  base = base_name(problem_name)
  # Rastrigin's names are a pattern: its written form is a candidate too.
  known = sorted(set(_CONFIGS) | set(registry.names())) + ["square_cos_<d>"]
  close = difflib.get_close_matches(base, known, n=3, cutoff=0.6)
  hint = " Did you mean {}?".format(" or ".join(
      repr(c) for c in close)) if close else ""
  return ValueError(
      "Unknown problem {!r}.{} Known problems: {}; a problem of one's own is "
      "known once the module that registers it is imported (the commands' "
      "--problem_module).".format(problem_name, hint,
                                  ", ".join(problem_names())))


def check_problem_name(problem_name):
  """Raises ValueError unless `get_config` knows `problem_name`.

  Cheap (builds nothing), so commands check it before any work.

  Args:
    problem_name: e.g. "quadratic", "square_cos_2", or a registered
      problem's name with its options ("ring:num_dims=5").

  Raises:
    ValueError: for an unknown name (naming the closest known ones), bad
      options, or square_cos with fewer than 1 dimension.
  """
  # A registered problem first: `register_problem(..., replace=True)` may
  # replace a built-in name.
  registered = registry.lookup(problem_name)
  if registered is not None:
    registry.check_options(*registered)
    return
  if problem_name in _CONFIGS:
    return
  if problem_name.startswith(_FAMILY_PREFIX):
    _family(problem_name[len(_FAMILY_PREFIX):])
    return
  dims = _square_cos_dims(problem_name)
  if dims is None:
    raise _unknown_problem(problem_name)
  if dims < 1:
    raise ValueError("Problem {!r} has {} dimensions; square_cos_<d> needs "
                     "d >= 1.".format(problem_name, dims))


def get_config(problem_name, path=None, mode=None, data_dir=None):
  """Returns the problem and optimizer configuration of a named problem.

  DeepMind's names (simple, simple-multi, quadratic, mnist, cifar,
  cifar-multi) give DeepMind's configurations, so their checkpoints load;
  `quadratic-las` and `digits` are this library's own; `register_problem`
  adds one's own.

  Args:
    problem_name: e.g. "simple", "quadratic", "digits", "square_cos_2",
      "family" or "family:scale_range=1" (`l2l.tasks.family.parse_options`),
      or a registered name with its options.
    path: directory of a saved optimizer to restore, or None.
    mode: "train", "test" (evaluation instances, test splits) or
      "validation" (instances to pick settings on: a data problem's train
      split, otherwise as "test"; draw them with another seed than the
      evaluation's); None, as DeepMind's, is "test" when a path is given
      and "train" otherwise.
    data_dir: directory of mnist/cifar files, searched first; then
      $L2L_DATA_DIR, then the cache (`l2l.data.datasets.search_roots`).

  Returns:
    `(problem, net_config, net_assignments)`.

  Raises:
    ValueError: for an unknown problem or mode.
    l2l.data.datasets.DataError: for a data problem whose files are missing
      or damaged.
    RuntimeError: for the task family outside a graph (it makes its
      placeholders here); build every problem under `tf.Graph().as_default()`.
  """
  if mode is None:
    mode = "train" if path is None else "test"
  if mode not in MODES:
    raise ValueError("mode must be one of {}, got {!r}.".format(
        ", ".join(repr(m) for m in MODES), mode))
  config, validation = _resolve(problem_name)
  if mode == "validation":
    mode = validation
  return config(path, mode, data_dir)


def _resolve(problem_name):
  """A problem name's configuration function, `(path, mode, data_dir)` to
  `get_config`'s triple, and the mode its validation instances are drawn
  in (`validation_mode`).

  Raises:
    ValueError: for an unknown problem.
  """
  check_problem_name(problem_name)
  registered = registry.lookup(problem_name)
  if registered is not None:
    registration, options = registered
    return (_registered_config(registration, options),
            registration.validation_mode)
  if problem_name in _CONFIGS:
    config = _CONFIGS[problem_name]
  elif problem_name.startswith(_FAMILY_PREFIX):
    config = _family(problem_name[len(_FAMILY_PREFIX):])
  else:
    config = _square_cos(_square_cos_dims(problem_name))
  return config, "train" if getattr(config, "reads_data", False) else "test"


def validation_mode(problem_name):
  """The mode `get_config(..., mode="validation")` builds a problem in.

  "train" for a problem that reads a data split (its train split: no
  setting is picked on test data), else "test": a problem without data
  draws its validation instances as its test ones, told apart by the
  seed. A registered problem says which (`register_problem`).

  Args:
    problem_name: a name `get_config` knows.

  Returns:
    "train" or "test".

  Raises:
    ValueError: for an unknown problem.
  """
  return _resolve(problem_name)[1]


def run_unrolls(sess, fetches, ops, num_unrolls, reset=None,
                read_after=False):
  """The one epoch loop: runs `num_unrolls` unrolls, fetching `fetches`.

  `run_epoch`, `eval_run_epoch`, meta-training and evaluation all run their
  epochs through this loop.

  Args:
    sess: the session.
    fetches: what to read with every unroll (any `sess.run` fetch structure).
    ops: ops run together with every unroll (the update, the meta-step).
    num_unrolls: how many unrolls to run.
    reset: op run once first (drawing a fresh instance), or None to continue
      from where the previous unroll stopped.
    read_after: read `fetches` in a run of their own after `ops` (their
      values after the update, as LOIS's evaluation read them), not in the
      same run.

  Returns:
    `(seconds, list of the fetched values, one per unroll)`; the seconds
    include the reset.
  """
  start = timeit.default_timer()
  if reset is not None:
    sess.run(reset)
  values = []
  for _ in range(num_unrolls):
    if read_after:
      sess.run(list(ops))
      values.append(sess.run(fetches))
    else:
      values.append(sess.run([fetches] + list(ops))[0])
  return timeit.default_timer() - start, values


def run_epoch(sess, cost_op, ops, reset, num_unrolls):
  """Resets the problem, runs `num_unrolls` unrolls and returns the last cost.

  Returns:
    `(seconds, final cost)`; the cost is None when `num_unrolls` is 0.
  """
  seconds, costs = run_unrolls(sess, cost_op, ops, num_unrolls, reset=reset)
  return seconds, costs[-1] if costs else None


def eval_run_epoch(sess, cost_op, ops, reset, num_unrolls, var1=None,
                   var2=None):
  """LOIS's evaluation epoch: resets, then runs `num_unrolls` unrolls, each
  reading `cost_op` after its `ops`.

  Args:
    sess: the session.
    cost_op: what to read (LOIS's evaluate.py gave `fx_final`).
    ops: ops of every unroll (`[update]`).
    reset: op run once first, or None to continue.
    num_unrolls: how many unrolls to run.
    var1: taken, and unused, as LOIS's took it (`x_final`).
    var2: returned as given, as LOIS's returned it (the constants).

  Returns:
    `(seconds, list of costs, one per unroll, var2)`.
  """
  del var1  # LOIS's signature; its function did not use it either.
  seconds, costs = run_unrolls(sess, cost_op, ops, num_unrolls, reset=reset,
                               read_after=True)
  return seconds, costs, var2


def format_stats(header, total_error, total_time, n):
  """The originals' statistics block as text.

  The "Log Mean Final Error" follows `scores.log_text`: "diverged" for a NaN
  or infinite mean, -inf for 0, no number for a negative mean.
  """
  mean_error = float(np.mean(total_error)) / n
  return "{}\nLog Mean Final Error: {}\nMean epoch time: {:.2f} s\n".format(
      header, scores.log_text(mean_error), total_time / n)


def print_stats(header, total_error, total_time, n, stream=None):
  """Writes the statistics block to `stream` (stdout) for the command line."""
  (stream or sys.stdout).write(format_stats(header, total_error, total_time, n))


_register_test_functions()
