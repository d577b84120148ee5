"""Speed benchmark: meta-training and learned-step costs against their bounds.

For each size in `--sizes` and `--recompute_sizes` (coordinates of a
separable quadratic,
f(x) = mean(w * (x - y)^2), w and y uniform in [0, 1): the optimizee costs
next to nothing, so the figures are the learned optimizer's), in a fresh
subprocess per size:

- epoch_seconds: one meta-training epoch of the default optimizer (the 2x20
  coordinate-wise LSTM, LogAndSign), as train.py runs it (`util.run_epoch`:
  reset, then 5 unrolls of 20 steps, each with its Adam meta-step); the
  mean of the epochs run in `--min_seconds` (at least one) after one
  untimed warm-up unroll; `--recompute_sizes` meta-train with
  `meta_loss(recompute=True)`, which recomputes the LSTM's gates in the
  backward pass (the table's `recompute` column; it changes only the
  TensorFlow ops: the native kernels' gradient always recomputes them);
- epoch_bound_seconds: the FLOPs such an epoch must do (the LSTM's forward
  and backward matmuls and elementwise ops, `lstm_flops`) at the machine's
  matmul speed (`--matmul_size` square matmuls, measured first), and
  epoch_ratio = epoch_seconds / epoch_bound_seconds;
- bytes_per_coordinate_step: what a meta-iteration adds to the process's
  peak resident memory, over its coordinates times the unroll length;
- l2l_step_ms, adam_step_ms, step_bound_ms: the median of one plain step of
  the learned optimizer as evaluation runs it (`meta_loss` with
  len_unroll=1, running its `update`), of one step of
  `tf.compat.v1.train.AdamOptimizer.minimize`, and the bound of the learned
  step (its forward FLOPs); l2l_to_adam = l2l_step_ms / adam_step_ms and
  step_ratio = l2l_step_ms / step_bound_ms.

Every step, meta-training's and the plain ones, runs the LSTM stack, and
its gradient, as the native kernels where they can be built
(`native_kernel` says whether they were; `L2L_NATIVE_KERNEL=0` runs them as
TensorFlow ops).

Then the same step figures on DeepMind's MNIST MLP (`mnist`, 15,910
coordinates; MNIST from `--data_dir`, the machines' shared copy, or
$L2L_DATA_DIR; the row is skipped,
with a warning, when the files are missing). Prints one `BENCH speed` line
per figure and a markdown table.

    python bench/speed.py                       # about 3.5 min on 2 idle cores
    python bench/speed.py --sizes=1000,100000 --nomnist
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import json
import resource
import subprocess
import timeit

from absl import flags
from absl import logging
import numpy as np

import common  # First: it quiets TensorFlow before anything imports it.
import tensorflow as tf
from l2l.core import interception
from l2l.core import native
from l2l.data import datasets
from l2l.experiment import cli
import meta
import networks
import problems
import util

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["1000", "10000", "100000"],
                  "Coordinates of the problems meta-trained as by default "
                  "(as TensorFlow ops, the gates kept for the backward "
                  "pass).")
flags.DEFINE_list("recompute_sizes", ["100000", "1000000"],
                  "Coordinates of the problems meta-trained with "
                  "meta_loss(recompute=True) (as TensorFlow ops, the gates "
                  "recomputed in the backward pass: less memory, more "
                  "time).")
flags.DEFINE_bool("mnist", True, "Also time single steps on the MNIST MLP.")
flags.DEFINE_string("data_dir", None, "MNIST directory (default: {} "
                    "when it exists, else $L2L_DATA_DIR, then the l2l-data "
                    "cache).".format(common.SHARED_MNIST_DIR))
flags.DEFINE_float("min_seconds", 2.0, "Timed seconds per figure (at least "
                   "one epoch, and --min_steps single steps).")
flags.DEFINE_integer("min_steps", 20, "Single steps timed at least.")
flags.DEFINE_integer("matmul_size", 1024, "Side of the square matmuls that "
                     "measure the machine's FLOP rate.")
flags.DEFINE_integer("seed", 0, "Graph-level seed of the timed graphs.")
flags.DEFINE_string("output", None, "Also write the markdown table here.")
flags.DEFINE_string("worker", None, "Internal: measure one problem (a size "
                    "or 'mnist') in this process and print its figures as "
                    "JSON.")
flags.DEFINE_bool("recompute", False, "Internal: the worker's recompute.")


# Learning rate of the timed Adam (speed does not depend on it).
ADAM_LEARNING_RATE = 0.01
# Untimed single steps before the timed ones.
WARMUP_STEPS = 5
# The default optimizer's shape: LogAndSign's two features per coordinate,
# the 2x20 LSTM, one output per coordinate.
INPUT_WIDTH = 2
OUTPUT_WIDTH = 1
# Elementwise FLOPs per hidden unit of one LSTM cell, counting every
# elementwise op (transcendental ones included) as one FLOP per element.
# Forward: the bias (4 gates), 3 sigmoids, 2 tanhs, the forget bias, and 4
# for the new cell and hidden state. Backward: about twice that.
CELL_FORWARD_ELEMENTWISE = 14
CELL_BACKWARD_ELEMENTWISE = 26

TRAINING_METRICS = ("epoch_seconds", "epoch_bound_seconds", "epoch_ratio",
                    "bytes_per_coordinate_step")
STEP_METRICS = ("l2l_step_ms", "adam_step_ms", "l2l_to_adam",
                "step_bound_ms", "step_ratio")
COLUMNS = ("problem", "coordinates", "recompute") + TRAINING_METRICS + \
    STEP_METRICS


def lstm_flops(layers=(20, 20), width=INPUT_WIDTH, output=OUTPUT_WIDTH):
  """FLOPs per coordinate of one step of a coordinate-wise LSTM stack.

  Args:
    layers: hidden sizes.
    width: input features per coordinate.
    output: outputs per coordinate.

  Returns:
    `(forward, forward_and_backward)`. The backward pass of a matmul is
    two matmuls of the same size (input and weight gradients).
  """
  matmul, elementwise, backward_elementwise = 0, 0, 0
  for size in layers:
    matmul += 2 * (width + size) * 4 * size
    elementwise += CELL_FORWARD_ELEMENTWISE * size
    backward_elementwise += CELL_BACKWARD_ELEMENTWISE * size
    width = size
  matmul += 2 * width * output
  return (matmul + elementwise,
          3 * matmul + elementwise + backward_elementwise)


def matmul_gflops(size):
  """The best rate of `size`-square float32 matmuls on this machine, GFLOP/s."""
  graph = tf.Graph()
  with graph.as_default():
    a = tf.random.uniform([size, size])
    b = tf.Variable(tf.random.uniform([size, size]))
    product = tf.reduce_sum(tf.matmul(a, b))
    init = tf.compat.v1.global_variables_initializer()
  with tf.compat.v1.Session(graph=graph) as sess:
    sess.run(init)
    sess.run(product)
    best = min(_seconds(lambda: sess.run(product)) for _ in range(20))
  return 2.0 * size**3 / best / 1e9


def _seconds(func):
  start = timeit.default_timer()
  func()
  return timeit.default_timer() - start


def separable_quadratic(size):
  """f(x) = mean(w * (x - y)^2) over `size` coordinates; w, y in [0, 1)."""
  def build():
    x = tf.compat.v1.get_variable(
        "x", shape=[size], dtype=tf.float32,
        initializer=tf.compat.v1.random_normal_initializer(stddev=0.01))
    w = tf.compat.v1.get_variable(
        "w", shape=[size], dtype=tf.float32,
        initializer=tf.compat.v1.random_uniform_initializer(), trainable=False)
    y = tf.compat.v1.get_variable(
        "y", shape=[size], dtype=tf.float32,
        initializer=tf.compat.v1.random_uniform_initializer(), trainable=False)
    return tf.reduce_mean(w * tf.square(x - y))
  return build


def _resident_bytes():
  """The process's current resident memory (Linux)."""
  with open("/proc/self/statm") as statm:
    return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_resident_bytes():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _session(graph):
  with graph.as_default():
    init = tf.compat.v1.global_variables_initializer()
  graph.finalize()
  session = tf.compat.v1.Session(graph=graph)
  session.run(init)
  return session


def _new_graph():
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(FLAGS.seed)
  return graph


def time_training(problem, coordinates):
  """Epoch seconds and peak memory per coordinate-step of meta-training."""
  graph = _new_graph()
  with graph.as_default():
    optimizer = meta.MetaOptimizer(**{
        networks.DEFAULT_NET_ID: networks.default_config()})
    step, update, reset, cost, _ = optimizer.meta_minimize(
        problem, common.UNROLL_LENGTH,
        learning_rate=common.META_LEARNING_RATE, recompute=FLAGS.recompute)
  num_unrolls = common.TRAIN_STEPS // common.UNROLL_LENGTH
  with _session(graph) as sess:
    sess.run(reset)
    resident = _resident_bytes()
    sess.run([cost, update, step])
    added = max(0, _peak_resident_bytes() - resident)
    seconds = []
    while not seconds or sum(seconds) < FLAGS.min_seconds:
      seconds.append(util.run_epoch(sess, cost, [update, step], reset,
                                    num_unrolls)[0])
  return {"epoch_seconds": float(np.mean(seconds)),
          "bytes_per_coordinate_step":
              added / (coordinates * common.UNROLL_LENGTH)}


def _median_step_seconds(session, reset, op):
  session.run(reset)
  for _ in range(WARMUP_STEPS):
    session.run(op)
  seconds = []
  while len(seconds) < FLAGS.min_steps or sum(seconds) < FLAGS.min_seconds:
    seconds.append(_seconds(lambda: session.run(op)))
  return float(np.median(seconds))


def time_steps(problem, net_config, net_assignments):
  """Median seconds of a plain learned step and of an Adam step."""
  graph = _new_graph()
  with graph.as_default():
    info = meta.MetaOptimizer(**net_config).meta_loss(
        problem, 1, net_assignments=net_assignments)
  with _session(graph) as sess:
    l2l = _median_step_seconds(sess, info.reset, info.update)
  graph = _new_graph()
  with graph.as_default():
    loss = problems.mean_loss(problem())
    step = tf.compat.v1.train.AdamOptimizer(ADAM_LEARNING_RATE).minimize(loss)
    reset = tf.compat.v1.global_variables_initializer()
  with _session(graph) as sess:
    adam = _median_step_seconds(sess, reset, step)
  return {"l2l_step_ms": 1000 * l2l, "adam_step_ms": 1000 * adam}


def measure(worker):
  """The figures of one worker: a size, or 'mnist' (steps only)."""
  if worker == "mnist":
    graph = _new_graph()
    with graph.as_default():
      problem, net_config, net_assignments = util.get_config(
          "mnist", mode="test", data_dir=common.mnist_dir(FLAGS.data_dir))
      coordinates = sum(v.shape.num_elements()
                        for v in interception.get_variables(problem)[0])
    figures = time_steps(problem, net_config, net_assignments)
  else:
    coordinates = int(worker)
    problem = separable_quadratic(coordinates)
    figures = time_training(problem, coordinates)
    figures.update(time_steps(
        problem, {networks.DEFAULT_NET_ID: networks.default_config()}, None))
  figures["coordinates"] = coordinates
  return figures


def run_worker(worker, recompute=False):
  """Measures `worker` in a fresh process; its figures, or None if it failed."""
  command = [sys.executable, os.path.abspath(__file__), "--worker=" + worker,
             "--recompute={}".format(recompute),
             "--min_seconds={}".format(FLAGS.min_seconds),
             "--min_steps={}".format(FLAGS.min_steps),
             "--seed={}".format(FLAGS.seed)]
  if common.mnist_dir(FLAGS.data_dir):
    command.append("--data_dir=" + common.mnist_dir(FLAGS.data_dir))
  result = subprocess.run(command, stdout=subprocess.PIPE, check=False)
  if result.returncode:
    logging.warning("Measuring %s failed (exit status %d).", worker,
                    result.returncode)
    return None
  return json.loads(result.stdout.decode("utf-8").strip().splitlines()[-1])


def add_bounds(figures, gflops):
  """Adds the FLOP bounds and the ratios to one worker's figures."""
  forward, training = lstm_flops()
  coordinates = figures["coordinates"]
  if "epoch_seconds" in figures:
    figures["epoch_bound_seconds"] = (
        training * coordinates * common.TRAIN_STEPS / (gflops * 1e9))
    figures["epoch_ratio"] = (figures["epoch_seconds"] /
                              figures["epoch_bound_seconds"])
  figures["step_bound_ms"] = 1000 * forward * coordinates / (gflops * 1e9)
  figures["l2l_to_adam"] = figures["l2l_step_ms"] / figures["adam_step_ms"]
  figures["step_ratio"] = figures["l2l_step_ms"] / figures["step_bound_ms"]
  return figures


def _mnist_available():
  try:
    datasets.load_mnist(common.mnist_dir(FLAGS.data_dir), "test")
  except datasets.DataError as error:
    logging.warning("No MNIST row: %s", error)
    return False
  return True


def main(argv):
  del argv
  common.check_integers("sizes")
  common.check_integers("recompute_sizes")
  cli.check_at_least(1, "min_steps", "matmul_size")
  cli.check_positive_number("min_seconds")
  if FLAGS.worker:
    print(json.dumps(measure(FLAGS.worker)), flush=True)
    return
  start = timeit.default_timer()
  common.print_environment("speed")
  gflops = matmul_gflops(FLAGS.matmul_size)
  common.print_bench_line("speed", collections.OrderedDict([
      ("problem", "none"), ("metric", "matmul_gflops"), ("value", gflops)]))
  # Built here (once per machine) so that no timed worker pays for it; 0
  # means the steps below ran as TensorFlow ops.
  common.print_bench_line("speed", collections.OrderedDict([
      ("problem", "none"), ("metric", "native_kernel"),
      ("value", int(native.lstm_stack_kernel() is not None))]))
  workers = [("quadratic", size, False) for size in FLAGS.sizes]
  workers += [("quadratic", size, True) for size in FLAGS.recompute_sizes]
  if FLAGS.mnist and _mnist_available():
    workers.append(("mnist", "mnist", False))
  rows = []
  for name, worker, recompute in workers:
    logging.info("Measuring %s %s (recompute: %s)", name, worker, recompute)
    figures = run_worker(worker, recompute)
    if figures is None:
      continue
    figures = add_bounds(figures, gflops)
    figures["recompute"] = "yes" if recompute else "no"
    for metric in ("coordinates",) + TRAINING_METRICS + STEP_METRICS:
      if metric in figures:
        common.print_bench_line("speed", collections.OrderedDict([
            ("problem", name), ("size", figures["coordinates"]),
            ("recompute", int(recompute)), ("metric", metric),
            ("value", figures[metric])]))
    rows.append([name] + [figures.get(m, "-") for m in COLUMNS[1:]])
  report = "Load average (1 min) at the end: {:.2f}; matmul {:.0f} GFLOP/s.\n\n".format(
      os.getloadavg()[0], gflops) + common.markdown_table(COLUMNS, rows)
  common.write_report("speed", report, FLAGS.output, start)


if __name__ == "__main__":
  common.run(main)
