"""Shared setup of the l2l tests: import path, fresh graphs, numpy references,
and one short meta-training run.

The numpy functions here are independent re-statements of the formulas in
docs/design.md (Sonnet 1 LSTM, LogAndSign, Adam); tests compare the library against
them. They are handed to tests through the `ref` fixture.
"""

import contextlib
import json
import os
import pickle
import re
import shutil
import struct
import sys
import time
import types

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf
import commands
from l2l import files
from l2l.core import native
# Imported while eager execution is still on: Sonnet 2 then builds modules
# inside the tests' v1 graphs (see l2l/core/graph_mode.py).
import networks  # pylint: disable=unused-import
from l2l.experiment import evaluation
from l2l.experiment import records
from l2l.experiment import training
import util
# pylint: enable=g-import-not-at-top,wrong-import-position


def pytest_collection_modifyitems(items):
  """Runs the `slow` tests first (a stable sort: files keep their order).

  Spread over the workers early, the long command-line tests no longer
  leave one worker running the last of them while the other waits.
  """
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@contextlib.contextmanager
def _fresh_session(seed=0):
  """A session on a new seeded graph, the default graph inside the block."""
  graph = tf.Graph()
  with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
    tf.compat.v1.set_random_seed(seed)
    yield sess


@pytest.fixture
def fresh_session():
  """Factory of `with fresh_session(seed=0) as sess:` blocks."""
  return _fresh_session


@pytest.fixture
def graph():
  """A new seeded graph, the default graph during the test."""
  with tf.Graph().as_default() as new_graph:
    tf.compat.v1.set_random_seed(0)
    yield new_graph


def _run_built(build):
  """Builds `build()` in a fresh seeded graph and returns its output's value."""
  with _fresh_session() as session:
    out = build()
    session.run(tf.compat.v1.global_variables_initializer())
    return session.run(out)


@pytest.fixture
def run_built():
  """`run_built(build)`: the value of `build()`'s output in a fresh graph."""
  return _run_built


@pytest.fixture
def kernel(monkeypatch):
  """The native kernel's module, built if need be (once per machine: the
  suite's plain steps run it too, as they do for a user), even where
  L2L_NATIVE_KERNEL=0 is set."""
  if shutil.which(native.compiler()[0]) is None:
    pytest.skip("no C++ compiler: the stack runs as TensorFlow ops only")
  monkeypatch.setenv(native.ENV_VAR, "1")
  module = native.lstm_stack_kernel()
  assert module is not None, "the native kernel failed to build or load"
  return module


@pytest.fixture
def sess():
  """A session whose new seeded graph is the default graph during the test."""
  with _fresh_session() as session:
    yield session


def _init(session):
  session.run(tf.compat.v1.global_variables_initializer())


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def _log_and_sign(g, k):
  g = np.asarray(g, np.float32)
  eps = np.finfo(np.float32).eps
  log = np.maximum(np.log(np.abs(g) + eps) / k, -1.0)
  sign = np.clip(g * np.exp(k), -1.0, 1.0)
  return np.concatenate([log, sign], axis=-1)


def _lstm_cell(params, inputs, state):
  """Sonnet 1's LSTM with forget bias 1: returns (h', (h', c'))."""
  hidden, cell = state
  gates = np.concatenate([inputs, hidden], 1) @ params["w_gates"]
  gates = gates + params["b_gates"]
  i, j, f, o = np.split(gates, 4, axis=1)
  cell = _sigmoid(f + 1.0) * cell + _sigmoid(i) * np.tanh(j)
  hidden = _sigmoid(o) * np.tanh(cell)
  return hidden, (hidden, cell)


def _deep_lstm(params, rows, state, scale=1.0):
  """Stacked Sonnet 1 LSTMs then `linear`, times `scale`, on [rows, in]."""
  output = np.asarray(rows, np.float64)
  next_state = []
  for layer, layer_state in enumerate(state):
    output, layer_state = _lstm_cell(params["lstm_{}".format(layer + 1)],
                                     output, layer_state)
    next_state.append(layer_state)
  linear = params["linear"]
  return (output @ linear["w"] + linear["b"]) * scale, next_state


def _zero_state(rows, layers):
  return [(np.zeros([rows, size]), np.zeros([rows, size])) for size in layers]


def _random_checkpoint(seed, input_size, layers, output_size):
  """A Sonnet-1-named deep LSTM checkpoint with random float32 values."""
  rng = np.random.RandomState(seed)

  def normal(*shape):
    return rng.normal(scale=0.5, size=shape).astype(np.float32)

  values = {}
  for layer, size in enumerate(layers):
    values["lstm_{}".format(layer + 1)] = {
        "w_gates": normal(input_size + size, 4 * size),
        "b_gates": normal(4 * size),
    }
    input_size = size
  values["linear"] = {"w": normal(input_size, output_size),
                      "b": normal(output_size)}
  return values


def _adam(gradient_at, x, steps, learning_rate, beta1=0.9, beta2=0.999,
          epsilon=1e-8):
  """Runs Adam (numpy, float64) and returns its positions after 0..steps.

  Args:
    gradient_at: `gradient_at(x, t)` is the gradient used at step t (0-based).
    x: the starting point.
    steps: number of steps.
    learning_rate, beta1, beta2, epsilon: Adam's constants.

  Returns:
    A list of `steps + 1` points.
  """
  x = np.asarray(x, np.float64)
  m = v = np.zeros_like(x)
  positions = [x]
  for t in range(steps):
    g = np.asarray(gradient_at(x, t), np.float64)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * np.square(g)
    m_hat = m / (1 - beta1**(t + 1))
    v_hat = v / (1 - beta2**(t + 1))
    x = x - learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
    positions.append(x)
  return positions


def _assert_nested_equal(actual, expected, rtol=0.0):
  """Asserts two `{module: {variable: array}}` dicts match."""
  assert sorted(actual) == sorted(expected)
  for module in expected:
    assert sorted(actual[module]) == sorted(expected[module]), module
    for name in expected[module]:
      np.testing.assert_allclose(actual[module][name], expected[module][name],
                                 rtol=rtol, err_msg=module + "/" + name)


@pytest.fixture
def ref():
  """Numpy references and small helpers shared by the test files."""
  return types.SimpleNamespace(
      init=_init,
      log_and_sign=_log_and_sign,
      deep_lstm=_deep_lstm,
      zero_state=_zero_state,
      random_checkpoint=_random_checkpoint,
      adam=_adam,
      assert_nested_equal=_assert_nested_equal)


# The best particle per (epoch, step) of `_hand_made_losses`: 4 epochs,
# 3 steps (0, 1, 2).
_HAND_MADE_BEST = np.array([[1.0, 10.0, 0.5],
                            [2.0, 20.0, 0.5],
                            [3.0, 30.0, 0.5],
                            [4.0, 40.0, 4.5]])


def _hand_made_losses():
  """[4, 3, 2]: the best particle is particle 0 in even epochs, 1 in odd."""
  worse = _HAND_MADE_BEST * 3 + 1
  losses = np.stack([_HAND_MADE_BEST, worse], axis=2)
  losses[1::2] = losses[1::2, :, ::-1]
  return losses


def _write_records(directory, losses, seconds=None, **settings):
  """Writes a records file of hand-made arrays; returns its path.

  `losses` are [epochs, steps + 1, particles], or [..., rows] per start set.
  """
  losses = np.asarray(losses, np.float64)
  row_losses = losses if losses.ndim == 4 else None
  if row_losses is not None:
    losses = np.mean(row_losses, axis=3)
  if seconds is None:
    seconds = np.ones(losses.shape[0])
  base = {"optimizer": "SGD", "problem": "quadratic", "learning_rate": 0.1,
          "seed": 0, "num_steps": losses.shape[1] - 1,
          "num_epochs": losses.shape[0], "swarm_options": {}, "tuning": None}
  base.update(settings)
  return records.write(
      str(directory),
      evaluation.Evaluation(losses, np.asarray(seconds, np.float64), None,
                            row_losses),
      base)


def _comparison(directory):
  """Four records files (Adam, L2L, SGD, PSO); returns their paths."""
  write = _write_records
  adam = write(directory, [[[9.0], [5.0]], [[9.0], [15.0]]],
               seconds=[0.5, 1.5], optimizer="Adam", learning_rate=0.01)
  l2l = write(directory,
              [[[9.0, 9.0], [1.0, 4.0]], [[9.0, 9.0], [6.0, 3.0]]],
              seconds=[2.0, 4.0], optimizer="L2L", learning_rate=None,
              swarm_options={"num_particles": 2})
  sgd = write(directory, [[[9.0], [np.nan]], [[9.0], [1.0]]],
              seconds=[0.25, 0.25], optimizer="SGD", learning_rate=0.1,
              tuning={"seed": 100003, "epochs": 2, "scores": {}})
  pso = write(directory,
              [[[9.0, 9.0], [0.0, 1.0]], [[9.0, 9.0], [-1.0, 2.0]]],
              seconds=[1.0, 1.0], optimizer="PSO", learning_rate=None,
              swarm_options={"num_particles": 2})
  return adam, l2l, sgd, pso


@pytest.fixture
def records_files():
  """Hand-made records files for the plots and compare tests.

  `losses()` is a [4, 3, 2] array whose best particle is `BEST`;
  `write(directory, losses, seconds=None, **settings)` writes a records file;
  `comparison(directory)` writes four (Adam, L2L, SGD, PSO) and returns
  their paths.
  """
  return types.SimpleNamespace(BEST=_HAND_MADE_BEST, losses=_hand_made_losses,
                               write=_write_records, comparison=_comparison)


# Sizes of the MNIST splits in the `data_dir` fixture.
DATA_NUM_TRAIN = 24
DATA_NUM_TEST = 12


def _write_mnist_idx(directory, prefix, images, labels):
  """Writes MNIST IDX images and labels named `<prefix>-...-idx?-ubyte`."""
  (directory / (prefix + "-images-idx3-ubyte")).write_bytes(
      struct.pack(">IIII", 0x803, len(images), 28, 28) + images.tobytes())
  (directory / (prefix + "-labels-idx1-ubyte")).write_bytes(
      struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


def _learnable_images(rng, labels):
  """Noise images in which rows 2c..2c+1 are bright for label c."""
  images = rng.randint(0, 64, (len(labels), 28, 28))
  for image, label in zip(images, labels):
    image[2 * label:2 * label + 2] = 255
  return images.astype(np.uint8)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A directory of tiny MNIST IDX files and CIFAR-10 binary batches.

  Both are in the real formats: DATA_NUM_TRAIN training and DATA_NUM_TEST
  test MNIST images whose label shows as bright rows, and DATA_NUM_TRAIN // 4
  CIFAR records per batch file.
  """
  directory = tmp_path_factory.mktemp("data")
  rng = np.random.RandomState(0)
  for prefix, count in (("train", DATA_NUM_TRAIN), ("t10k", DATA_NUM_TEST)):
    labels = (np.arange(count) % 10).astype(np.uint8)
    _write_mnist_idx(directory, prefix, _learnable_images(rng, labels), labels)
  names = ["data_batch_{}.bin".format(i) for i in range(1, 6)]
  for name in names + ["test_batch.bin"]:
    cifar_records = np.concatenate([
        (np.arange(DATA_NUM_TRAIN // 4) % 10)[:, None],
        rng.randint(0, 256, (DATA_NUM_TRAIN // 4, 3072))], axis=1)
    (directory / name).write_bytes(cifar_records.astype(np.uint8).tobytes())
  return str(directory)


def linear_optimizer_positions(values, steps):
  """Positions on f = x^2 from 1 under `simple`'s learned update w g + b.

  `simple` meta-trains a coordinate-wise LSTM with no layers: the update of a
  gradient g is the linear layer `w g + b` (scale 1, no preprocessing).
  """
  w = float(values["linear"]["w"][0, 0])
  b = float(values["linear"]["b"][0])
  positions = [1.0]
  for _ in range(steps):
    x = positions[-1]
    positions.append(x + w * 2 * x + b)
  return np.array(positions)


# A problem of one's own, as a user's file registers it for the commands'
# --problem_module: f = scale * sum_i x_i^2 from x = 1, optimised by
# `simple`'s net (a linear layer on the raw gradient, from zeros).
PROBLEM_MODULE = """
import tensorflow as tf
import util


def make_bowl(mode, num_dims=2, scale=1.0):
  del mode  # The same bowl for training and evaluation.

  def build():
    x = tf.compat.v1.get_variable(
        "x", [num_dims], initializer=tf.compat.v1.ones_initializer())
    return scale * tf.reduce_sum(tf.square(x))
  return build


util.register_problem("bowl", make_bowl, net_config={"cw": {
    "net": "CoordinateWiseDeepLSTM",
    "net_options": {"layers": (), "initializer": "zeros"}}})
"""


def write_problem_module(directory):
  """Writes `PROBLEM_MODULE` as `<directory>/my_problems.py`; its path."""
  path = os.path.join(str(directory), "my_problems.py")
  with open(path, "w") as stream:
    stream.write(PROBLEM_MODULE)
  return path


# Validates each argument list in one process: absl parses it as train.py
# would, then the command's validate_flags runs. Prints one JSON line each;
# a value absl's own parsing refuses gives the code "parse" and its message.
_VALIDATE = """
import contextlib, io, json, sys
from absl import flags
from l2l.experiment import {module} as command
for argv in json.loads(sys.argv[1]):
  flags.FLAGS.unparse_flags()
  try:
    flags.FLAGS([sys.argv[0]] + argv)
  except flags.Error as error:
    print(json.dumps([argv, "parse", str(error)]))
    continue
  err = io.StringIO()
  code = 0
  with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
      command.validate_flags()
    except SystemExit as exit:
      code = exit.code
  print(json.dumps([argv, code, err.getvalue()]))
"""


def validate(module, cases):
  """{argv tuple: (exit code, stderr)} of `module.validate_flags`.

  Args:
    module: "train_command" or "evaluate_command".
    cases: argument lists, each checked in a fresh parse (one interpreter
      for all: TensorFlow's import is most of a command's start-up).
  """
  done = commands.run(
      [sys.executable, "-c", _VALIDATE.format(module=module),
       json.dumps([list(c) for c in cases])],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr
  results = {}
  for line in done.stdout.splitlines():
    argv, code, err = json.loads(line)
    results[tuple(argv)] = (code, err)
  return results


def train_in_process(flag_args, **arguments):
  """`training.train` as train.py runs it with `flag_args`, in this process.

  Args:
    flag_args: train.py flags "--name=value" named as `training.train`'s
      arguments, "--problem=..." among them; a number with a point is a
      float, another an integer.
    **arguments: more of its arguments (save_path, resume, ...), which win.

  Returns:
    Its `TrainingResult`.
  """
  settings = dict(arg[2:].split("=", 1) for arg in flag_args)
  problem = settings.pop("problem")
  settings = {name: float(value) if "." in value else int(value)
              for name, value in settings.items()}
  settings.update(show_progress=False, handle_signals=False)
  settings.update(arguments)
  return training.train(problem, **settings)


def bowl_losses(steps, num_dims, scale, move):
  """The bowl's loss before each of `steps` steps, then after the last.

  Args:
    steps: number of steps.
    num_dims, scale: the bowl's options.
    move: `move(x, gradient)` is the step's new x (every coordinate of the
      bowl stays equal, so x is one number).
  """
  x = 1.0
  losses = [num_dims * scale * x**2]
  for _ in range(steps):
    x = move(x, 2 * scale * x)
    losses.append(num_dims * scale * x**2)
  return np.array(losses)


# A short meta-training run on `simple`: 4 epochs of 2 unrolls of 2 steps,
# evaluated twice.
# A small task family (util.get_config name): fast graphs, every kind.
SMALL_FAMILY = ("family:datasets=iris,max_width=4,min_width=2,max_dims=3,"
                "quadratic_batch=2,batch_size=8")

TRAIN_ARGS = {"num_epochs": 4, "evaluation_period": 2, "evaluation_epochs": 1,
              "num_steps": 4, "unroll_length": 2, "seed": 1,
              "show_progress": False}


@pytest.fixture(scope="session")
def trained_simple(tmp_path_factory):
  """Meta-trains on `simple` into a directory that also holds a user file.

  Returns:
    `(directory, train's return value)`.
  """
  from l2l.experiment import training  # pylint: disable=g-import-not-at-top
  directory = tmp_path_factory.mktemp("simple")
  (directory / "notes.txt").write_text("keep me")
  result = training.train("simple", save_path=str(directory), **TRAIN_ARGS)
  return directory, result


def save_matrices_only_sgd(directory):
  """Saves an optimizer whose one net, SGD at rate 1, drives matrices only.

  A variable of another rank is not covered by its assignment rule.

  Args:
    directory: a pathlib directory; `matrices.l2l` and the manifest go
      there.
  """
  import meta  # pylint: disable=g-import-not-at-top
  import problems  # pylint: disable=g-import-not-at-top
  from l2l.checkpoint import manifest  # pylint: disable=g-import-not-at-top
  sgd = {"net": "Sgd", "net_options": {"learning_rate": 1.0}}
  manifest.write(directory, manifest.build(
      {"matrices": sgd}, [{"net": "matrices", "match": "rank", "ranks": [2]}],
      {}, "0"))
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer = meta.MetaOptimizer(matrices=sgd)
    optimizer.meta_loss(problems.simple(), 1)
    optimizer.save(sess, directory / "unused")
  (directory / "matrices.l2l").write_bytes(
      (directory / "unused" / "matrices.l2l").read_bytes())


def save_x0_only_sgd(directory):
  """Saves an SGD net (rate 0.5) trained on `simple_multi_optimizer(2)`
  driving x_0 only: x_1 was left out of every net, so it stayed fixed.

  Args:
    directory: where `cw.l2l` and the manifest go.
  """
  import meta  # pylint: disable=g-import-not-at-top
  import problems  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    optimizer = meta.MetaOptimizer(
        cw={"net": "Sgd", "net_options": {"learning_rate": 0.5}})
    optimizer.meta_loss(problems.simple_multi_optimizer(2), 1,
                        net_assignments=[("cw", ["x_0"])])
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, str(directory))


def write_lois_released(directory, size, seed=0, hidden=10):
  """Writes a LOIS released model's two files, in LOIS's format.

  Args:
    directory: where `cw.l2l` and `loss_record.pickle` go.
    size: n, the flattened size of the one optimizee variable (128 d for
      LOIS's square_cos_<d>).
    seed: seed of the random values.
    hidden: rows of the attention weights (LOIS: 10).

  Returns:
    `(lstm values, record)` as written.
  """
  from l2l.checkpoint import l2l_file  # pylint: disable=g-import-not-at-top
  rng = np.random.RandomState(seed)
  values = _random_checkpoint(seed, 1, (20, 20), 1)
  l2l_file.save(values, os.path.join(directory, "cw.l2l"))
  record = {
      "loss_record": [np.float64(v) for v in (800.0, 30.0, 0.5)],
      "fc_weights": [rng.normal(size=[hidden, 2 * size]).astype(np.float32)],
      "fc_bias": [rng.normal(size=[hidden, 4]).astype(np.float32)],
      "fc_va": [np.ones([1, hidden], np.float32)],
      "constant": [],
  }
  # LOIS pickled its records with Python 3's pickle, protocol 3.
  with open(os.path.join(directory, "loss_record.pickle"), "wb") as stream:
    pickle.dump(record, stream, protocol=3)
  return values, record


def interrupt_after(process, text, signal_number):
  """Sends `signal_number` to `process` once its stderr shows `text`.

  Args:
    process: a `subprocess.Popen` with a text stderr pipe.
    text: what the line to wait for contains.
    signal_number: e.g. `signal.SIGINT`.
  """
  for line in process.stderr:
    if text in line:
      break
  process.send_signal(signal_number)


def make_ring(mode, num_dims=2, radius=1.0):
  """A problem of one's own: (||x||^2 - radius^2)^2, x starting at 1
  (`util.register_problem`'s make_problem)."""
  del mode  # The same instances for training and evaluation.

  def build():
    x = tf.compat.v1.get_variable("x", [num_dims],
                                  initializer=tf.compat.v1.ones_initializer())
    return tf.square(tf.reduce_sum(tf.square(x)) - radius**2)
  return build


@pytest.fixture
def ring():
  """Registers `make_ring` as "ring" for one test."""
  util.register_problem("ring", make_ring)
  yield "ring"
  util.unregister_problem("ring")


def assert_a_path_or_a_rate_is_refused(make, path, what, instead):
  """`make(path)` and `make(0.01)`, an optimizer given a directory or a
  learning rate where its update rule goes, each raise one clear line."""
  with pytest.raises(ValueError, match=r"{} takes an UpdateRule, got '.*': "
                     r"for the directory of a saved optimizer use {}".format(
                         what, re.escape(instead))):
    make(str(path))
  with pytest.raises(ValueError, match="{} takes an UpdateRule, got 0.01: a "
                     "learned optimizer takes no learning rate".format(what)):
    make(0.01)


# What a local_cluster task logs when its launcher is gone
# (launcher_watch.py).
LAUNCHER_GONE = "The launcher that started this task is gone: "

# A launcher reduced to its lock, taken by local_cluster's own code in a
# process of its own, which a test can kill -9.
_FAKE_LAUNCHER = ("import sys, time\n"
                  "from l2l.experiment import local_cluster\n"
                  "lock = local_cluster.hold_launcher_lock(sys.argv[1])\n"
                  "time.sleep(600)\n")


def flock_is_held(path):
  """Whether an flock held on `path` (a file or a directory) elsewhere keeps
  this process's out."""
  fd = os.open(path, os.O_RDONLY)
  try:
    return not files.lock_nonblocking(fd)
  finally:
    os.close(fd)


def fake_launcher(log_dir):
  """A process holding `<log_dir>/launcher.lock` as local_cluster's launcher
  does, once it holds it.

  Args:
    log_dir: a `pathlib.Path`.

  Returns:
    The process (from `commands.Popen`).
  """
  launcher = commands.Popen([sys.executable, "-c", _FAKE_LAUNCHER,
                             str(log_dir)], cwd=ROOT)
  lock = log_dir / "launcher.lock"

  def locked():
    assert launcher.poll() is None, "the fake launcher ended"
    return lock.exists() and flock_is_held(lock)

  wait_for(locked, "the launcher's lock", seconds=60, poll=0.05)
  return launcher


def wait_for(condition, what, seconds=120, poll=0.2):
  """Polls `condition()` until it is true; fails the test after `seconds`.

  Args:
    condition: a function of no arguments.
    what: what is waited for, for the failure's message.
    seconds: how long to wait at most.
    poll: seconds between two calls.
  """
  deadline = time.monotonic() + seconds
  while not condition():
    assert time.monotonic() < deadline, "timed out waiting for " + what
    time.sleep(poll)


def save_as_a_run_does(source, directory):
  """Saves `source`'s optimizer into `directory` as train.py saves: each
  `.l2l` file replaced by a rename, then the manifest.

  Args:
    source, directory: `pathlib.Path`s of saved optimizers' directories.
  """
  names = sorted(n for n in os.listdir(source) if n.endswith(".l2l"))
  for name in names + ["manifest.json"]:
    shutil.copyfile(source / name, directory / ("." + name + ".tmp"))
    os.replace(directory / ("." + name + ".tmp"), directory / name)


@pytest.fixture
def saved_and_later_save(trained_simple, tmp_path):
  """`(live, late)`: a copy of `trained_simple`'s optimizer, and the later
  save of another run on `simple` that a test saves into it."""
  early, _ = trained_simple
  late = tmp_path / "late"
  training.train("simple", save_path=str(late),
                 **dict(TRAIN_ARGS, seed=2, num_epochs=6))
  live = tmp_path / "live"
  shutil.copytree(early, live)
  return live, late


def save_after_first_call(monkeypatch, module, name, source, directory):
  """Makes a run save `source` into `directory` right after the first call
  of `module.name` returns, as if it saved there while it was read.

  Args:
    monkeypatch: the test's.
    module, name: the function to patch.
    source, directory: as `save_as_a_run_does` takes them.

  Returns:
    The list of what the calls of `module.name` returned, filled as they
    return.
  """
  real = getattr(module, name)
  returned = []

  def saved_after_first(*args, **kwargs):
    result = real(*args, **kwargs)
    if not returned:
      save_as_a_run_does(source, directory)
    returned.append(result)
    return result

  monkeypatch.setattr(module, name, saved_after_first)
  return returned
