"""Drop-in benchmark: a learned optimizer training Keras models it never saw.

Meta-trains the default optimizer on `digits` (a 64-20-10 sigmoid MLP, 100
steps per instance), then trains four other Keras models on the digits with
`model.fit` and `l2l.keras_optimizer`: MLPs 64-40-10 and 64-20-20-10
(sigmoid), a 64-32-10 relu MLP and a small convnet on the 8x8 images. Each
runs 1,000 steps of 128 examples, and the figures are read after 100 steps
(the meta-training horizon) and after 1,000. Next to it: Adam at lr 0.001
and Adam at the best learning rate of `evaluation.LEARNING_RATE_GRID`, chosen
per model and horizon by the final training loss on tuning runs (another
initialisation and batch order than the reported runs). Every optimizer
runs once per seed of `--seeds`; a run's losses are heavy-tailed across
seeds (one initialisation can blow up where four converge), so each figure
is the median over the seeds, with the lowest and highest run and the mean
beside it. Prints one `BENCH dropin` line per figure and a markdown table.

    python bench/dropin.py                       # about 12 min on 2 cores
    python bench/dropin.py --path=./digits      # skip meta-training
    python bench/dropin.py --output=/tmp/dropin.md
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# pylint: disable=g-import-not-at-top,wrong-import-position
import collections
import math
import tempfile
import timeit

from absl import flags
from absl import logging

import common  # First: it quiets TensorFlow before anything imports it.
import numpy as np
import keras

import l2l
from l2l import files
from l2l.data import datasets
from l2l.experiment import cli
from l2l.experiment import evaluation
from l2l.experiment import training

FLAGS = flags.FLAGS
flags.DEFINE_string("path", None, "A saved optimizer to use instead of "
                    "meta-training one on digits.")
flags.DEFINE_integer("train_epochs", 200, "Meta-training epochs on digits.")
flags.DEFINE_integer("train_seed", 1, "Graph-level seed of meta-training.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds of the "
                  "reported runs (initialisation and batch order); figures "
                  "are their medians, with their range and mean.")
flags.DEFINE_integer("tune_seed", 100003, "Seed of the tuning runs.")
flags.DEFINE_string("output", None, "Also write the markdown table here.")


# Figures are read after these many steps: the meta-training horizon, 10x.
HORIZONS = (common.TRAIN_STEPS, 10 * common.TRAIN_STEPS)
BATCH_SIZE = 128
ADAM_DEFAULT_LR = 0.001


def _mlp(hidden, activation):
  def build():
    layers = [keras.Input((64,))]
    layers += [keras.layers.Dense(size, activation=activation)
               for size in hidden]
    return keras.Sequential(layers + [keras.layers.Dense(10)])
  return build


def _convnet():
  return keras.Sequential([
      keras.Input((64,)),
      keras.layers.Reshape((8, 8, 1)),
      keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
      keras.layers.MaxPooling2D(2),
      keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
      keras.layers.Flatten(),
      keras.layers.Dense(10)])


MODELS = collections.OrderedDict([
    ("mlp 64-40-10 sigmoid", _mlp((40,), "sigmoid")),
    ("mlp 64-20-20-10 sigmoid", _mlp((20, 20), "sigmoid")),
    ("mlp 64-32-10 relu", _mlp((32,), "relu")),
    ("convnet 8x8 (8, 16 channels)", _convnet),
])

Figures = collections.namedtuple("Figures", "train_loss, test_accuracy, "
                                 "step_ms")

# One optimizer's figures over the seeds: the training loss's median, lowest,
# highest and mean (inf where a run diverged), the test accuracy's median
# and the step time's median.
Summary = collections.namedtuple(
    "Summary", "train_loss, lowest_loss, highest_loss, mean_loss, "
    "test_accuracy, step_ms")


class _Recorder(keras.callbacks.Callback):
  """Reads the full training loss and test accuracy at each horizon."""

  def __init__(self, data, loss):
    super().__init__()
    self._data = data
    self._loss = loss
    self._started = None
    self.step_seconds = []
    self.figures = {}

  def on_train_batch_begin(self, batch, logs=None):
    self._started = timeit.default_timer()

  def on_train_batch_end(self, batch, logs=None):
    self.step_seconds.append(timeit.default_timer() - self._started)
    if batch + 1 in HORIZONS:
      train_images, train_labels, test_images, test_labels = self._data
      loss = float(self._loss(train_labels, self.model(train_images)))
      predictions = np.argmax(self.model(test_images), axis=-1)
      self.figures[batch + 1] = (
          loss if math.isfinite(loss) else float("nan"),
          float(np.mean(predictions == test_labels)))


def _fit(build_model, optimizer, data, seed):
  """Trains a fresh model for max(HORIZONS) steps.

  Returns:
    {steps: Figures}; the step time is the median over all steps but the
    first (which traces the train step).
  """
  train_images, train_labels = data[0], data[1]
  keras.utils.set_random_seed(seed)
  model = build_model()
  loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
  model.compile(optimizer=optimizer, loss=loss)
  order = np.random.RandomState(seed).randint(
      0, len(train_images), size=max(HORIZONS) * BATCH_SIZE)
  recorder = _Recorder(data, loss)
  model.fit(train_images[order], train_labels[order], batch_size=BATCH_SIZE,
            epochs=1, shuffle=False, verbose=0, callbacks=[recorder])
  step_ms = 1000.0 * float(np.median(recorder.step_seconds[1:]))
  return {steps: Figures(*recorder.figures[steps], step_ms)
          for steps in HORIZONS}


def _fit_seeds(build_model, make_optimizer, data, seeds):
  """`_fit` once per seed: {steps: the runs' `Summary`}.

  A diverged run's loss counts as inf (`common.spread`).
  """
  runs = [_fit(build_model, make_optimizer(), data, seed) for seed in seeds]
  summaries = {}
  for steps in HORIZONS:
    figures = [run[steps] for run in runs]
    summaries[steps] = Summary(
        *common.spread([f.train_loss for f in figures]),
        float(np.median([f.test_accuracy for f in figures])),
        float(np.median([f.step_ms for f in figures])))
  return summaries


def _tuned_learning_rates(build_model, data):
  """Adam's best grid learning rate at each horizon, on the tuning seed."""
  scores = {steps: {} for steps in HORIZONS}
  for learning_rate in evaluation.LEARNING_RATE_GRID:
    run = _fit(build_model, keras.optimizers.Adam(learning_rate), data,
               FLAGS.tune_seed)
    for steps in HORIZONS:
      loss = run[steps].train_loss
      scores[steps][learning_rate] = loss if math.isfinite(loss) else math.inf
  best = {steps: min(scores[steps], key=scores[steps].get)
          for steps in HORIZONS}
  for steps, learning_rate in best.items():
    if learning_rate in (min(evaluation.LEARNING_RATE_GRID),
                         max(evaluation.LEARNING_RATE_GRID)):
      logging.warning("Adam's best learning rate at %d steps, %g, is at the "
                      "edge of the grid.", steps, learning_rate)
  return best


def _meta_train(directory):
  start = timeit.default_timer()
  result = training.train("digits", save_path=directory,
                          num_epochs=FLAGS.train_epochs,
                          log_period=FLAGS.train_epochs,
                          evaluation_period=FLAGS.train_epochs,
                          num_steps=common.TRAIN_STEPS,
                          unroll_length=common.UNROLL_LENGTH,
                          learning_rate=common.META_LEARNING_RATE,
                          seed=FLAGS.train_seed, show_progress=False)
  common.print_bench_line("dropin", collections.OrderedDict([
      ("stage", "meta_train"), ("problem", "digits"),
      ("epochs", FLAGS.train_epochs),
      ("seconds", timeit.default_timer() - start),
      ("train_mean_final", result.best_evaluation)]))


def _benchmark(path, data):
  """Runs every model with every optimizer; returns the table's rows."""
  seeds = [int(seed) for seed in FLAGS.seeds]
  rows = []
  for model_name, build_model in MODELS.items():
    start = timeit.default_timer()
    best = _tuned_learning_rates(build_model, data)
    results = [("L2L", None, _fit_seeds(
        build_model, lambda: l2l.keras_optimizer(path), data, seeds))]
    for learning_rate in sorted({ADAM_DEFAULT_LR} | set(best.values())):
      results.append(("Adam", learning_rate, _fit_seeds(
          build_model,
          lambda lr=learning_rate: keras.optimizers.Adam(lr), data, seeds)))
    for steps in HORIZONS:
      for optimizer, learning_rate, figures in results:
        if optimizer == "Adam" and learning_rate not in (ADAM_DEFAULT_LR,
                                                         best[steps]):
          continue
        label = optimizer
        if optimizer == "Adam":
          label = "Adam lr={:g}{}".format(
              learning_rate, " (tuned)" if learning_rate == best[steps] else "")
        values = figures[steps]
        common.print_bench_line("dropin", collections.OrderedDict([
            ("model", model_name.replace(" ", "_")),
            ("optimizer", optimizer), ("lr", learning_rate or "-"),
            ("tuned", optimizer == "Adam" and learning_rate == best[steps]),
            ("steps", steps), ("seeds", len(seeds)),
            ("train_loss", values.train_loss),
            ("lowest_loss", values.lowest_loss),
            ("highest_loss", values.highest_loss),
            ("mean_loss", values.mean_loss),
            ("test_accuracy", values.test_accuracy),
            ("step_ms", values.step_ms)]))
        rows.append([model_name, steps, label, values.train_loss,
                     "{:.4g}-{:.4g}".format(values.lowest_loss,
                                            values.highest_loss),
                     values.mean_loss, values.test_accuracy, values.step_ms])
    logging.info("%s took %.0f s", model_name, timeit.default_timer() - start)
  return rows


def main(argv):
  del argv
  common.check_integers("seeds", 0)
  cli.check_at_least(1, "train_epochs")
  common.print_environment("dropin")
  start = timeit.default_timer()
  train_images, train_labels = datasets.load_digits("train")
  test_images, test_labels = datasets.load_digits("test")
  data = (train_images, train_labels, test_images, test_labels)
  with tempfile.TemporaryDirectory() as directory:
    path = FLAGS.path
    if path is None:
      path = directory
      _meta_train(path)
    rows = _benchmark(path, data)
  common.print_bench_line("dropin", collections.OrderedDict([
      ("stage", "total"), ("seconds", timeit.default_timer() - start)]))
  table = common.markdown_table(
      ["model", "steps", "optimizer", "train loss (median)",
       "train loss (range)", "train loss (mean)", "test accuracy (median)",
       "ms/step"], rows)
  print(table)
  if FLAGS.output:
    files.write_atomic(FLAGS.output, table.encode("utf-8"))
    logging.info("Wrote the table to %s", FLAGS.output)


if __name__ == "__main__":
  common.run(main)
