"""Tests for util.py: problem configurations, epoch loops and statistics."""

import io
import math
import os

import numpy as np
import pytest
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.data import datasets
import meta
import networks
import util

DEFAULT_LSTM_OPTIONS = {"layers": (20, 20), "preprocess_name": "LogAndSign",
                        "preprocess_options": {"k": 5}, "scale": 0.01}


def _variable_shapes(problem):
  """Builds `problem` in the default graph: {name: (shape, trainable)}."""
  problem()
  trainable = {v.name for v in tf.compat.v1.trainable_variables()}
  return {v.name.split(":")[0]: (tuple(v.shape), v.name in trainable)
          for v in tf.compat.v1.global_variables()}


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("name, net_ids, variables", [
    ("simple", ["cw"], {"x": ((), True)}),
    ("simple-multi", ["adam", "cw"], {"x_0": ((), True), "x_1": ((), True)}),
    ("quadratic", ["cw"], {"x": ((128, 10), True), "w": ((128, 10, 10), False),
                           "y": ((128, 10), False)}),
    ("quadratic-las", ["cw"], {"x": ((128, 10), True),
                               "w": ((128, 10, 10), False),
                               "y": ((128, 10), False)}),
    ("square_cos_2", ["cw"], {"x": ((128, 2), True), "w": ((128, 2, 2), False),
                              "y": ((128, 2), False),
                              "wcos": ((128, 2), False)}),
    ("square_cos_10", ["cw"], {"x": ((128, 10), True),
                               "w": ((128, 10, 10), False),
                               "y": ((128, 10), False),
                               "wcos": ((128, 10), False)}),
])
def test_get_config(name, net_ids, variables):
  problem, net_config, assignments = util.get_config(name)
  assert callable(problem)
  assert sorted(net_config) == net_ids
  for config in net_config.values():
    assert config.get("net_path") is None
  assert _variable_shapes(problem) == variables
  if name == "simple-multi":
    assert assignments == [("cw", ["x_0"]), ("adam", ["x_1"])]
    assert net_config["adam"] == {"net": "Adam",
                                  "net_options": {"learning_rate": 0.1}}
  else:
    assert assignments is None


@pytest.mark.parametrize("name, options", [
    ("simple", {"layers": (), "initializer": "zeros"}),
    # DeepMind's quadratic: the raw gradient, scale 1.
    ("quadratic", {"layers": (20, 20)}),
    ("quadratic-las", DEFAULT_LSTM_OPTIONS),
    ("square_cos_2", DEFAULT_LSTM_OPTIONS),
])
def test_get_config_learned_net_and_path(name, options):
  _, net_config, _ = util.get_config(name, path="/models/run")
  assert net_config["cw"] == {"net": "CoordinateWiseDeepLSTM",
                              "net_options": options,
                              "net_path": os.path.join("/models/run",
                                                       "cw.l2l")}


@pytest.mark.usefixtures("graph")
def test_square_cos_test_mode_has_no_random_instance():
  problem, _, _ = util.get_config("square_cos_10", mode="test")
  assert _variable_shapes(problem) == {"x": ((128, 10), True)}


def test_deepmind_quadratic_checkpoint_loads(ref, tmp_path):
  # A file in the layout of DeepMind's quadratic optimizer: lstm_1/w_gates
  # [21, 80], one raw-gradient input per coordinate, scale 1.
  values = ref.random_checkpoint(7, 1, (20, 20), 1)
  l2l_file.save(values, tmp_path / "cw.l2l")
  _, net_config, _ = util.get_config("quadratic", path=str(tmp_path))
  gradient = np.array([[0.3, -1.2], [2e-3, 0.0]], np.float32)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    net = networks.factory(**net_config["cw"])
    update, _ = net(tf.constant(gradient),
                    net.initial_state_for_inputs(tf.constant(gradient)))
    ref.init(sess)
    actual = sess.run(update)
  expected, _ = ref.deep_lstm(values, gradient.reshape(-1, 1),
                              ref.zero_state(4, (20, 20)))
  np.testing.assert_allclose(actual, expected.reshape(2, 2), rtol=1e-5,
                             atol=1e-6)


def test_get_config_mode_follows_the_path(monkeypatch):
  modes = []
  monkeypatch.setattr(util.problems, "square_cos",
                      lambda **kwargs: modes.append(kwargs["mode"]))
  util.get_config("square_cos_2")
  util.get_config("square_cos_2", path="/models/run")
  util.get_config("square_cos_2", path="/models/run", mode="train")
  assert modes == ["train", "test", "train"]


def test_problem_names_list_the_improved_configurations():
  names = util.problem_names()
  for name in ("quadratic", "quadratic-las", "digits", "mnist", "cifar",
               "cifar-multi", "simple", "simple-multi"):
    assert name in names


def test_get_config_unknown_problem_lists_known_ones():
  with pytest.raises(ValueError, match="Unknown problem 'quad'") as error:
    util.get_config("quad")
  for name in ("simple", "simple-multi", "quadratic", "square_cos_<d>"):
    assert name in str(error.value)


@pytest.mark.parametrize("name", ["square_cos_", "square_cos_x"])
def test_get_config_malformed_square_cos(name):
  with pytest.raises(ValueError, match="Unknown problem"):
    util.get_config(name)


@pytest.mark.parametrize("name", ["square_cos_0", "square_cos_00"])
def test_square_cos_needs_a_dimension(name):
  for check in (util.check_problem_name, util.get_config):
    with pytest.raises(ValueError, match=r"'{}' has 0 dimensions; "
                       r"square_cos_<d> needs d >= 1".format(name)):
      check(name)
  util.check_problem_name("square_cos_1")
  util.check_problem_name("quadratic")


def test_get_config_unknown_mode():
  with pytest.raises(ValueError, match="mode must be 'train' or 'test'"):
    util.get_config("simple", mode="eval")


def test_get_net_path():
  assert util.get_net_path("cw", None) is None
  assert util.get_net_path("adam", "dir") == os.path.join("dir", "adam.l2l")


def test_format_stats():
  text = util.format_stats("EVALUATION", 0.3, 6.0, 3)
  assert text == ("EVALUATION\nLog Mean Final Error: -1.00\n"
                  "Mean epoch time: 2.00 s\n")
  # The rule of scores.py: 0 is log -inf (the truth); NaN and inf diverged;
  # a negative mean has no log.
  assert "Log Mean Final Error: -inf\n" in util.format_stats("E", 0.0, 1.0, 1)
  for loss in (float("nan"), float("inf")):
    assert "Log Mean Final Error: diverged\n" in util.format_stats(
        "E", loss, 1.0, 1)
  assert "Log Mean Final Error: none (negative mean)\n" in util.format_stats(
      "E", -1.0, 1.0, 1)


def test_print_stats(capsys):
  stream = io.StringIO()
  util.print_stats("Epoch 4", 0.4, 2.0, 4, stream=stream)
  assert stream.getvalue() == util.format_stats("Epoch 4", 0.4, 2.0, 4)
  assert "Log Mean Final Error: -1.00" in stream.getvalue()
  util.print_stats("Epoch 1", 0.01, 1.0, 1)
  assert capsys.readouterr().out == util.format_stats("Epoch 1", 0.01, 1.0, 1)


def _counting_ops():
  """Returns `(cost, ops, reset, runs)` for the epoch loops.

  `cost` adds 1 to a counter that `reset` sets to 0 and returns the sum, so
  the n-th run since a reset costs n; `ops` count the runs in `runs`.
  """
  counter = tf.compat.v1.get_variable("counter", initializer=0.0)
  runs = tf.compat.v1.get_variable("runs", initializer=0)
  return (counter.assign_add(1.0), [runs.assign_add(1)], counter.initializer,
          runs)


def test_run_epoch_resets_and_returns_last_cost(sess):
  cost, ops, reset, runs = _counting_ops()
  sess.run(runs.initializer)
  for _ in range(2):
    seconds, last = util.run_epoch(sess, cost, ops, reset, 3)
    assert last == 3.0 and seconds >= 0.0
  assert sess.run(runs) == 6


def test_eval_run_epoch_continues_and_returns_every_cost(sess):
  cost, ops, reset, runs = _counting_ops()
  sess.run([reset, runs.initializer])
  _, first = util.eval_run_epoch(sess, cost, ops, 2)
  _, second = util.eval_run_epoch(sess, cost, ops, 3)
  assert first == [1.0, 2.0] and second == [3.0, 4.0, 5.0]
  assert sess.run(runs) == 5


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("name, trainable_shapes", [
    ("digits-40-sigmoid", [(64, 40), (40,), (40, 10), (10,)]),
    ("digits-20-20-sigmoid", [(64, 20), (20,), (20, 20), (20,), (20, 10),
                              (10,)]),
    ("digits-20-relu", [(64, 20), (20,), (20, 10), (10,)]),
    ("digits-conv", [(5, 5, 1, 8), (8,), (5, 5, 8, 16), (16,), (64, 10),
                     (10,)]),
    ("breast_cancer-logistic", [(30, 2), (2,)]),
    ("quadratic-100", [(16, 100)]),
])
def test_held_out_tasks_of_the_generalization_bench(name, trainable_shapes):
  problem, net_config, assignments = util.get_config(name, mode="test")
  assert sorted(net_config) == ["cw"] and assignments is None
  shapes = _variable_shapes(problem)
  assert sorted(s for s, trainable in shapes.values() if trainable) == sorted(
      trainable_shapes)


@pytest.mark.usefixtures("graph")
def test_get_config_family_and_its_options():
  problem, net_config, assignments = util.get_config("family")
  assert problem.config.scale_range == 10.0 and assignments is None
  assert sorted(net_config) == ["cw"]
  problem, _, _ = util.get_config("family:scale_range=1,datasets=iris",
                                  mode="test")
  assert problem.config.scale_range == 1.0
  assert problem.config.datasets == ("iris",)
  # The test split: 38 of iris's 150 rows.
  assert problem.sampler.num_examples == 38
  with pytest.raises(ValueError, match="Bad family option 'nonsense'"):
    util.get_config("family:nonsense")
  assert "family:<options>" in util.problem_names()


@pytest.mark.usefixtures("graph")
def test_family_net_option_picks_the_net_and_leaves_the_family_alone():
  problem, net_config, _ = util.get_config(
      "family:net=adaptive,scale_range=3", path="/nowhere")
  assert net_config["cw"]["net"] == "AdaptiveStepLSTM"
  assert net_config["cw"]["net_path"] == os.path.join("/nowhere", "cw.l2l")
  assert problem.config == util.get_config("family:scale_range=3")[0].config
  _, net_config, _ = util.get_config("family:scale_range=3")
  assert net_config["cw"]["net"] == "AdaptiveStepLSTM"
  assert net_config["cw"]["net_options"] == {
      "hyper_rate": 0.3, "step_change": 0.0, "horizon": 100}
  # The other adaptive nets: without the fade, with the LSTM moving the
  # step sizes, and that without the hypergradient (both of which fade).
  _, net_config, _ = util.get_config("family:net=adaptive_nohorizon")
  assert net_config["cw"]["net_options"] == {"hyper_rate": 0.3,
                                             "step_change": 0.0}
  _, net_config, _ = util.get_config("family:net=adaptive_lstm_steps")
  assert net_config["cw"]["net_options"] == {"hyper_rate": 0.3,
                                             "horizon": 100}
  _, net_config, _ = util.get_config("family:net=adaptive_nohyper")
  assert net_config["cw"]["net"] == "AdaptiveStepLSTM"
  assert net_config["cw"]["net_options"] == {"horizon": 100}
  # Every config is a fresh dict: a caller's change never leaks into the
  # next problem's net.
  net_config["cw"]["net_options"]["horizon"] = 7
  assert util.get_config("family:net=adaptive_nohyper")[1]["cw"][
      "net_options"] == {"horizon": 100}
  _, net_config, _ = util.get_config("family:net=cw")
  assert net_config["cw"]["net"] == "CoordinateWiseDeepLSTM"
  assert net_config["cw"]["net_options"]["preprocess_name"] == "LogAndSign"
  assert util.split_family_net("net=cw,net=adaptive") == ("adaptive", "")
  assert util.split_family_net("datasets=iris") == ("adaptive",
                                                    "datasets=iris")
  with pytest.raises(ValueError, match="'net=lstm': expected one of "
                     "adaptive, adaptive_lstm_steps, adaptive_nohorizon, "
                     "adaptive_nohyper, cw"):
    util.check_problem_name("family:net=lstm")


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


def test_get_config_passes_the_data_dir_and_mode(data_dir, monkeypatch):
  calls = []
  real_load = datasets.load_mnist

  def recording_load(directory=None, split="train"):
    calls.append((directory, split))
    return real_load(directory, split)

  monkeypatch.setattr(datasets, "load_mnist", recording_load)
  util.get_config("mnist", data_dir=data_dir, mode="test")
  assert calls == [(data_dir, "test")]


def test_mnist_without_data_names_the_remedy(monkeypatch):
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  with pytest.raises(datasets.DataError, match="--data_dir"):
    util.get_config("mnist")


def test_missing_cifar_files_are_named(tmp_path):
  with pytest.raises(datasets.DataError, match="data_batch_1.bin"):
    util.get_config("cifar", data_dir=str(tmp_path))
