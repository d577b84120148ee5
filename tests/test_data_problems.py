"""The real-data problems (mnist, cifar10, digits) on tiny files in real formats."""

import math
import struct

import numpy as np
import pytest
import tensorflow as tf

from l2l.data import datasets
from l2l.experiment import evaluation
import meta
import problems
import util

NUM_TRAIN = 24
NUM_TEST = 12


def _write_idx(directory, prefix, images, labels):
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


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """MNIST IDX files and CIFAR-10 binary batches, in the real formats."""
  directory = tmp_path_factory.mktemp("data")
  rng = np.random.RandomState(0)
  for prefix, count in (("train", NUM_TRAIN), ("t10k", NUM_TEST)):
    labels = (np.arange(count) % 10).astype(np.uint8)
    _write_idx(directory, prefix, _learnable_images(rng, labels), labels)
  names = ["data_batch_{}.bin".format(i) for i in range(1, 6)]
  for name in names + ["test_batch.bin"]:
    records = np.concatenate([
        (np.arange(NUM_TRAIN // 4) % 10)[:, None],
        rng.randint(0, 256, (NUM_TRAIN // 4, 3072))], axis=1)
    (directory / name).write_bytes(records.astype(np.uint8).tobytes())
  return str(directory)


def _initial_and_trained_loss(problem, net_config, net_assignments=None,
                              steps=30):
  """Loss at the start and the mean loss of the last 5 of `steps` L2L steps.

  Each step is one unroll of the meta-optimizer's graph, so the problem's
  data variables and random batches go through the variable replay.
  """
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(0)
    optimizer = meta.MetaOptimizer(**net_config)
    info = optimizer.meta_loss(problem, 1, net_assignments=net_assignments)
    initial = optimizer.fx_history[0]
    sess.run(tf.compat.v1.global_variables_initializer())
    first = sess.run(initial)
    losses = [sess.run([info.fx, info.update])[0] for _ in range(steps)]
  return first, float(np.mean(losses[-5:]))


def _sgd(learning_rate):
  return {"sgd": {"net": "Sgd", "net_options": {"learning_rate":
                                                 learning_rate}}}


def _adam(learning_rate):
  return {"adam": {"net": "Adam", "net_options": {"learning_rate":
                                                   learning_rate}}}


@pytest.mark.parametrize("net_config", [_adam(0.02), _adam(0.05)])
def test_mnist_starts_near_chance_and_descends(data_dir, net_config):
  problem = problems.mnist(layers=(8,), batch_size=8, data_dir=data_dir)
  first, trained = _initial_and_trained_loss(problem, net_config)
  assert abs(first - math.log(10)) < 0.05
  assert trained < first - 0.1


@pytest.mark.parametrize("net_config", [_sgd(0.5), _adam(0.05)])
def test_digits_starts_near_chance_and_descends(net_config):
  problem = problems.digits(layers=(8,), batch_size=32)
  first, trained = _initial_and_trained_loss(problem, net_config)
  assert abs(first - math.log(10)) < 0.5
  assert trained < first - 0.3


def test_cifar_starts_near_chance_and_descends(data_dir):
  problem = problems.cifar10(data_dir, conv_channels=(4,),
                             linear_layers=(8,), batch_size=8)
  first, trained = _initial_and_trained_loss(problem, _adam(0.05), steps=20)
  assert abs(first - math.log(10)) < 0.1
  assert trained < first - 0.1


def test_cifar_multi_is_deepminds_split(data_dir):
  problem, net_config, assignments = util.get_config("cifar-multi",
                                                     data_dir=data_dir)
  assert net_config == {key: util.get_default_net_config(key, None)
                        for key in ("conv", "fc")}
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(0)
    info = meta.MetaOptimizer(**net_config).meta_loss(
        problem, 1, net_assignments=assignments)
    sess.run(tf.compat.v1.global_variables_initializer())
    fx = sess.run(info.fx)
    shapes = {v.name[:-2]: v.shape.as_list()
              for v in tf.compat.v1.global_variables()
              if v.name.startswith(("conv_net_2d/", "mlp/"))}
  # DeepMind's variable names, each assigned to exactly one net.
  assert shapes == {
      "conv_net_2d/conv_2d_0/w": [5, 5, 3, 16],
      "conv_net_2d/conv_2d_1/w": [5, 5, 16, 16],
      "conv_net_2d/conv_2d_2/w": [5, 5, 16, 16],
      "conv_net_2d/conv_2d_0/b": [16], "conv_net_2d/conv_2d_1/b": [16],
      "conv_net_2d/conv_2d_2/b": [16],
      "conv_net_2d/batch_norm_0/beta": [16],
      "conv_net_2d/batch_norm_1/beta": [16],
      "conv_net_2d/batch_norm_2/beta": [16],
      "mlp/linear_0/w": [256, 32], "mlp/linear_0/b": [32],
      "mlp/batch_norm/beta": [32],
      "mlp/linear_1/w": [32, 10], "mlp/linear_1/b": [10]}
  assert sorted(sum([names for _, names in assignments], [])) == sorted(shapes)
  assert [key for key, _ in assignments] == ["conv", "fc"]
  assert assignments[0][1] == ["conv_net_2d/conv_2d_{}/w".format(i)
                               for i in range(3)]
  assert math.isfinite(fx)


def test_cifar_mlp_is_relu_of_batch_norm(data_dir):
  # Hidden units are relu(BatchNorm(x)): over a batch, each unit is zero for
  # about half the examples and its positive part has the batch-norm scale.
  problem = problems.cifar10(data_dir, conv_channels=(4,), linear_layers=(6,),
                             batch_size=64)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(0)
    problem()
    graph = tf.compat.v1.get_default_graph()
    hidden = graph.get_tensor_by_name("mlp/Relu:0")
    sess.run(tf.compat.v1.global_variables_initializer())
    values = sess.run(hidden)
    biases = sess.run([v for v in tf.compat.v1.global_variables()
                       if v.name.endswith("/b:0")])
  assert values.shape == (64, 6)
  zero_fraction = np.mean(values == 0, axis=0)
  assert np.all((zero_fraction > 0.2) & (zero_fraction < 0.8))
  np.testing.assert_allclose(np.mean(values**2, axis=0), 0.5, atol=0.2)
  # N(0, 0.01) biases, as DeepMind's.
  all_biases = np.concatenate([b.ravel() for b in biases])
  assert np.all(all_biases != 0) and np.std(all_biases) < 0.02


def test_dataset_is_held_once_however_long_the_unroll(data_dir):
  problem = problems.mnist(layers=(8,), batch_size=8, data_dir=data_dir)
  with tf.Graph().as_default():
    meta.MetaOptimizer(**_sgd(0.1)).meta_loss(problem, 5)
    images = [v for v in tf.compat.v1.global_variables()
              if v.name == "images:0"]
    image_constants = [
        op for op in tf.compat.v1.get_default_graph().get_operations()
        if op.type == "Const" and
        len(op.get_attr("value").tensor_shape.dim) == 2 and
        op.get_attr("value").tensor_shape.dim[0].size == NUM_TRAIN]
  assert len(images) == 1
  assert len(image_constants) == 1


def test_get_config_passes_the_data_dir_and_mode(data_dir, monkeypatch):
  calls = []
  real_load = datasets.load_mnist

  def recording_load(directory=None, split="train"):
    calls.append((directory, split))
    return real_load(directory, split)

  monkeypatch.setattr(datasets, "load_mnist", recording_load)
  util.get_config("mnist", data_dir=data_dir, mode="test")
  assert calls == [(data_dir, "test")]


def test_evaluation_uses_the_test_split(monkeypatch):
  splits = []
  real_load = datasets.load_digits

  def recording_load(split="train", **kwargs):
    splits.append(split)
    return real_load(split, **kwargs)

  monkeypatch.setattr(datasets, "load_digits", recording_load)
  evaluation.evaluate("SGD", "digits", num_steps=1, num_epochs=1,
                      show_progress=False)
  assert splits == ["test"]


def test_mnist_without_data_names_the_remedy(monkeypatch):
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  with pytest.raises(datasets.DataError, match="--data_dir"):
    util.get_config("mnist")


def test_missing_cifar_files_are_named(tmp_path):
  with pytest.raises(datasets.DataError, match="data_batch_1.bin"):
    util.get_config("cifar", data_dir=str(tmp_path))


def test_truncated_mnist_file_is_refused(tmp_path):
  _write_idx(tmp_path, "train", np.zeros((3, 28, 28), np.uint8),
             np.zeros(3, np.uint8))
  images = tmp_path / "train-images-idx3-ubyte"
  images.write_bytes(images.read_bytes()[:-10])
  with pytest.raises(datasets.DataError, match="train-images-idx3-ubyte"):
    problems.mnist(layers=(8,), data_dir=str(tmp_path))


def test_unknown_initializer_is_refused():
  with pytest.raises(ValueError, match="fan_in"):
    problems.digits(initializer="glorot")(),


def test_mnist_weights_and_biases_are_small_normals(data_dir):
  # DeepMind's mnist: every weight and bias drawn from N(0, 0.01).
  problem = problems.mnist(layers=(20,), data_dir=data_dir)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(0)
    problem()
    sess.run(tf.compat.v1.global_variables_initializer())
    values = sess.run({v.name: v for v in tf.compat.v1.trainable_variables()})
  assert sorted(values) == ["mlp/linear_0/b:0", "mlp/linear_0/w:0",
                            "mlp/linear_1/b:0", "mlp/linear_1/w:0"]
  biases = np.concatenate([values["mlp/linear_0/b:0"],
                           values["mlp/linear_1/b:0"]])
  weights = values["mlp/linear_0/w:0"].ravel()
  assert np.all(biases != 0) and np.any(biases < 0)
  np.testing.assert_allclose(np.std(weights), 0.01, rtol=0.05)
  assert 0.004 < np.std(biases) < 0.02
