"""Tests for graph_mode.py: Sonnet 2 modules inside TF-1.x graphs.

Whether Sonnet builds in a graph depends on what ran first in the process,
so every import order runs in a process of its own that has imported only
TensorFlow, each script's first import (tests/commands.py forks them).
The processes start together (a module fixture) and each test reads its
own; each computes numbers a closed form gives, so an order that imported
but built the wrong graph fails too.
"""

import json
import os
import sys

import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

from l2l.core import graph_mode  # pylint: disable=unused-import
import commands
import meta
import problems

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The learned rule saved by the `saved` fixture: `simple`'s net (a linear
# layer on the raw gradient, no LSTM layers) with w = -0.25, b = 0, so one
# step on f = x^2 moves x to x - 0.25 * 2x = x / 2.
RULE_W = -0.25

# How a script turns eager execution off before anything of l2l is
# imported; "graph" keeps eager on but imports inside a v1 graph block.
SWITCHES = {
    "disable_eager": "tf.compat.v1.disable_eager_execution()\n",
    "disable_v2": "tf.compat.v1.disable_v2_behavior()\n",
}

# x after 3 steps of networks.Sgd(lr=0.1) on f = x^2 from 1: x <- 0.8 x.
SGD_NET_PROBE = """
graph = tf.Graph()
with graph.as_default():
  optimizer = meta.MetaOptimizer(
      sgd={"net": "Sgd", "net_options": {"learning_rate": 0.1}})
  info = optimizer.meta_loss(problems.simple(), 3)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    x_final, = sess.run(info.x)
print(json.dumps({"x": float(x_final)}))
"""

# One step of the saved rule through LearnedOptimizer on f = x^2 from 1.
DROPIN_PROBE = """
graph = tf.Graph()
with graph.as_default():
  x = tf.compat.v1.get_variable("x", initializer=1.0)
  train_op = optimizer.minimize(tf.square(x))
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train_op)
    x_final = sess.run(x)
print(json.dumps({"x": float(x_final)}))
"""

# DeepMind's train.py loop, as a TF1 script has it: meta_minimize on
# `simple` with its net (w g + b, from zeros), one step, then an unroll.
DEEPMIND_SCRIPT = """
graph = tf.Graph()
with graph.as_default():
  problem, net_config, net_assignments = util.get_config("simple")
  optimizer = meta.MetaOptimizer(**net_config)
  step, update, reset, cost_op, _ = optimizer.meta_minimize(
      problem, 2, learning_rate=0.1, net_assignments=net_assignments)
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(reset)
    first, _, _ = sess.run([cost_op, update, step])
    second, _ = sess.run([cost_op, update])
    values = optimizer.save(sess)["cw"]["linear"]
print(json.dumps({"first": float(first), "second": float(second),
                  "w": float(values["w"][0, 0]),
                  "b": float(values["b"][0])}))
"""


# One step of the saved rule through keras_optimizer: a Dense kernel of 1,
# input 1, target 0; the mse gradient is 2.
KERAS_PROBE = """
import keras
import numpy as np
model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(
    1, use_bias=False, kernel_initializer="ones")])
model.compile(optimizer=l2l.keras_optimizer({!r}), loss="mse")
model.train_on_batch(np.ones((1, 1)), np.zeros((1, 1)))
print(json.dumps({{"x": float(model.layers[0].kernel.numpy()[0, 0])}}))
"""


def _script(switch, body):
  """A script: TensorFlow, the eager switch (if any), then `body`."""
  return ("import json\nimport tensorflow as tf\n" +
          SWITCHES.get(switch, "") + body)


def _import_inside_a_graph(imports):
  """`imports` run inside a v1 graph block, with eager execution on."""
  return ("with tf.Graph().as_default():\n" +
          "".join("  " + line + "\n" for line in imports.splitlines()))


def _orders(saved):
  """{order name: script} for every import order the tests check."""
  load = "optimizer = {}.from_path(" + repr(saved) + ")\n"
  from_path = load.format("l2l.LearnedOptimizer")
  keras_call = ("try:\n  l2l.keras_optimizer({!r})\n"
                "except RuntimeError as error:\n"
                "  print(json.dumps({{'error': str(error)}}))\n").format(saved)
  return {
      # Eager execution turned off first, then the research modules.
      # (meta first; util and problems after it: both probes run.)
      "disable_eager, import meta": _script(
          "disable_eager", "import meta, problems, util\n" + SGD_NET_PROBE +
          DEEPMIND_SCRIPT),
      "disable_eager, import networks": _script(
          "disable_eager", "import networks\nimport meta, problems\n" +
          SGD_NET_PROBE),
      "disable_v2, import problems": _script(
          "disable_v2", "import problems\nimport meta\n" + SGD_NET_PROBE),
      "disable_v2, DeepMind's script": _script(
          "disable_v2", "import meta, util\n" + DEEPMIND_SCRIPT),
      # ... or after.
      "import meta, then disable_v2": (
          "import json\nimport tensorflow as tf\nimport meta, util\n" +
          SWITCHES["disable_v2"] + DEEPMIND_SCRIPT),
      # The drop-in optimizer, by both of its names.
      "disable_eager, from l2l import LearnedOptimizer": _script(
          "disable_eager", "from l2l import LearnedOptimizer\n" +
          load.format("LearnedOptimizer") + DROPIN_PROBE),
      # In graph mode the drop-in optimizer steps, and keras_optimizer says
      # it needs eager execution.
      "disable_v2, import l2l": _script(
          "disable_v2", "import l2l\n" + from_path + DROPIN_PROBE +
          keras_call),
      # Eager on, but the first use inside a v1 graph block.
      "inside a graph, import networks": _script(
          "graph", _import_inside_a_graph("import networks") +
          "import meta, problems\n" + SGD_NET_PROBE),
      "inside a graph, import problems": _script(
          "graph", _import_inside_a_graph("import problems") +
          "import meta\n" + SGD_NET_PROBE),
      "inside a graph, DeepMind's script": _script(
          "graph", "import util\n" + _import_inside_a_graph(
              "import meta") + DEEPMIND_SCRIPT),
      "inside a graph, l2l.LearnedOptimizer.from_path": _script(
          "graph", "import l2l\n" + _import_inside_a_graph(from_path) +
          DROPIN_PROBE),
      # Keras 3 runs eagerly: first touched inside a graph block,
      # keras_optimizer refuses there and works outside.
      "inside a graph, l2l.keras_optimizer": _script(
          "graph", "import l2l\n" + _import_inside_a_graph(keras_call) +
          KERAS_PROBE.format(saved)),
  }


# One xdist worker runs this file, so its module fixtures run once.
pytestmark = pytest.mark.xdist_group("graph_mode")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
  """A saved optimizer: `simple`'s net with w = RULE_W, b = 0."""
  directory = tmp_path_factory.mktemp("rule")
  initializer = {"linear": {"w": np.full([1, 1], RULE_W, np.float32),
                            "b": np.zeros([1], np.float32)}}
  with tf.Graph().as_default():
    optimizer = meta.MetaOptimizer(cw={
        "net": "CoordinateWiseDeepLSTM",
        "net_options": {"layers": (), "initializer": initializer}})
    optimizer.meta_loss(problems.simple(), 1)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      optimizer.save(sess, str(directory))
  return str(directory)


@pytest.fixture(scope="module")
def runs(saved):
  """{order name: (exit code, its JSON lines merged, stderr)}, each order
  in an interpreter of its own, as many at once as there are cores."""
  pending = list(_orders(saved).items())
  running = {}
  results = {}
  while pending or running:
    while pending and len(running) < (os.cpu_count() or 1):
      name, script = pending.pop(0)
      running[name] = commands.Popen(
          [sys.executable, "-c", script], cwd=ROOT, stdout=commands.PIPE,
          stderr=commands.PIPE, text=True)
    name = next(iter(running))
    process = running.pop(name)
    stdout, stderr = process.communicate(timeout=600)
    output = {}
    for line in stdout.splitlines():
      output.update(json.loads(line))
    results[name] = (process.returncode, output, stderr)
  return results


def _result(runs, order):
  code, output, stderr = runs[order]
  assert code == 0 and output, (order, stderr[-3000:])
  return output


@pytest.mark.parametrize("order", [
    "disable_eager, import meta", "disable_eager, import networks",
    "disable_v2, import problems", "inside a graph, import networks",
    "inside a graph, import problems"])
@pytest.mark.slow
def test_meta_builds_whatever_was_imported_first(runs, order):
  assert _result(runs, order)["x"] == pytest.approx(0.8**3, rel=1e-6)


@pytest.mark.parametrize("order", [
    "disable_eager, from l2l import LearnedOptimizer",
    "disable_v2, import l2l",
    "inside a graph, l2l.LearnedOptimizer.from_path"])
@pytest.mark.slow
def test_learned_optimizer_steps_whatever_the_order(runs, order):
  # x <- x + w * 2x with w = -0.25: from 1 to exactly 0.5.
  assert _result(runs, order)["x"] == 0.5


@pytest.mark.parametrize("order", [
    "disable_eager, import meta", "disable_v2, DeepMind's script",
    "import meta, then disable_v2", "inside a graph, DeepMind's script"])
@pytest.mark.slow
def test_a_deepmind_script_meta_trains_in_a_session(runs, order):
  output = _result(runs, order)
  # The net starts at zero, so the first unroll stays at x = 1.
  assert output["first"] == 1.0
  # Adam's first step moves w and b by the learning rate, against the
  # meta-gradient (both raise the losses): w = b = -0.1.
  assert output["w"] == pytest.approx(-0.1, rel=1e-5)
  assert output["b"] == pytest.approx(-0.1, rel=1e-5)
  # The next unroll continues from x = 1: x <- x + w * 2x + b, twice.
  x = 1.0
  for _ in range(2):
    x = x + output["w"] * 2 * x + output["b"]
  assert output["second"] == pytest.approx(x**2, rel=1e-5)


@pytest.mark.parametrize("order", ["disable_v2, import l2l",
                                   "inside a graph, l2l.keras_optimizer"])
@pytest.mark.slow
def test_keras_optimizer_without_eager_execution_says_why(runs, order):
  message = _result(runs, order)["error"]
  assert message.startswith("keras_optimizer needs eager execution")
  assert "l2l.LearnedOptimizer.from_path" in message


@pytest.mark.slow
def test_keras_optimizer_first_touched_in_a_graph_works_outside(runs):
  # The kernel moves by w * 2 = -0.5, from 1 to 0.5.
  assert _result(runs, "inside a graph, l2l.keras_optimizer")["x"] == 0.5


def test_a_sonnet_module_builds_and_runs_in_a_v1_graph():
  with tf.Graph().as_default():
    linear = snt.Linear(2, w_init=tf.ones_initializer(),
                        b_init=tf.zeros_initializer())
    out = linear(tf.constant([[1.0, 2.0, 3.0]]))
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      np.testing.assert_array_equal(sess.run(out), [[6.0, 6.0]])


def test_allowing_sonnet_again_changes_nothing_outside():
  with tf.Graph().as_default():
    graph_mode.allow_sonnet_in_graphs()
    assert not tf.executing_eagerly()
    assert not tf.compat.v1.get_default_graph().get_operations()
  assert tf.executing_eagerly()


@pytest.mark.slow
def test_without_the_probe_sonnet_refuses_graph_mode():
  # The fact graph_mode.py works around, checked in a process of its own:
  # if a Sonnet release stops asserting, this fails and graph_mode.py can
  # go; if it stops caching the answer, the import orders above fail.
  code = ("import tensorflow as tf, sonnet as snt\n"
          "with tf.Graph().as_default():\n"
          "  try:\n"
          "    snt.Linear(2)\n"
          "  except AssertionError as e:\n"
          "    print('refused:', e)\n")
  done = commands.run([sys.executable, "-c", code], capture_output=True,
                      text=True, timeout=120, check=False)
  assert "refused: Sonnet v2 requires TensorFlow 2" in done.stdout, (
      done.stdout + done.stderr[-1000:])
