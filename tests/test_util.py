"""Tests for util.py: problem configurations, epoch loops and statistics."""

import inspect
import io
import math
import os
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import DATA_NUM_TEST
from l2l.checkpoint import l2l_file
from l2l.data import datasets
import meta
import networks
import problems
import util

DEFAULT_LSTM_OPTIONS = {"layers": (20, 20), "preprocess_name": "LogAndSign",
                        "preprocess_options": {"k": 5}, "scale": 0.01}
LIBRARY_LSTM_OPTIONS = dict(DEFAULT_LSTM_OPTIONS,
                            initializer={"b_gates": "zeros"})


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
    # This library's names: the gate biases start at zero.
    ("quadratic-las", LIBRARY_LSTM_OPTIONS),
    ("square_cos_2", LIBRARY_LSTM_OPTIONS),
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
  for name in ("quadratic", "quadratic-las", "digits", "mnist", "mnist-40",
               "mnist-2layer", "mnist-relu", "cifar", "cifar-multi", "simple",
               "simple-multi"):
    assert name in names


@pytest.mark.parametrize("name", ["rastrigin", "ackley", "griewank", "levy",
                                  "styblinski_tang", "rosenbrock", "salomon",
                                  "alpine"])
def test_test_functions_are_known_with_their_options(name, fresh_session):
  assert name in util.problem_names()
  with fresh_session() as sess:
    problem, net_config, assignments = util.get_config(
        name + ":num_dims=3,batch_size=5,init_stddev=3,random_shift=2")
    loss = problem()
    sess.run(tf.compat.v1.global_variables_initializer())
    x, = tf.compat.v1.trainable_variables()
    assert sess.run(loss).shape == (5,) and x.shape == (5, 3)
  assert list(net_config) == ["cw"] and assignments is None
  with pytest.raises(ValueError, match="does not take the options spread"):
    util.get_config(name + ":spread=3")


def test_function_mix_draws_its_functions_per_row(fresh_session):
  with fresh_session() as sess:
    problem, _, _ = util.get_config(
        "function_mix:functions=rastrigin+ellipsoid,num_dims=4,rotate=True")
    loss = problem()
    sess.run(tf.compat.v1.global_variables_initializer())
    names = sorted(v.op.name for v in tf.compat.v1.global_variables())
    assert names == ["function", "offset", "rotation", "x"]
    assert sess.run(loss).shape == (128,)
  with pytest.raises(ValueError, match="function_mix' does not take the "
                     "options spread"):
    util.get_config("function_mix:functions=rastrigin,spread=2")
  with pytest.raises(ValueError, match="Unknown test function 'sphere'"):
    util.get_config("function_mix:functions=rastrigin+sphere")


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
  with pytest.raises(ValueError, match="mode must be one of 'train', "
                     "'test', 'validation', got 'eval'"):
    util.get_config("simple", mode="eval")


def test_validation_reads_a_data_problems_train_split(data_dir, monkeypatch):
  # Settings picked on validation instances never see the test split; a
  # problem without data draws them as its test instances.
  calls = []
  monkeypatch.setattr(datasets, "load_mnist",
                      lambda directory=None, split="train": calls.append(
                          split) or (np.zeros([1, 784]), np.zeros([1])))
  monkeypatch.setattr(datasets, "load_digits",
                      lambda split="train": calls.append(split) or (
                          np.zeros([1, 64]), np.zeros([1])))
  modes = []
  monkeypatch.setattr(util.problems, "square_cos",
                      lambda **kwargs: modes.append(kwargs["mode"]))
  for name in ("mnist", "mnist-relu", "digits", "digits-conv"):
    util.get_config(name, data_dir=data_dir, mode="validation")
  util.get_config("square_cos_2", mode="validation")
  assert calls == ["train"] * 4
  assert modes == ["test"]


def test_a_registered_problem_chooses_its_validation_mode():
  modes = []

  def make(mode):
    modes.append(mode)
    return _make_ring(mode)

  util.register_problem("ring", make)
  util.get_config("ring", mode="validation")
  assert util.validation_mode("ring") == "test"
  util.register_problem("ring", make, validation_mode="train", replace=True)
  try:
    util.get_config("ring", mode="validation")
    util.get_config("ring", mode="test")
    assert util.validation_mode("ring") == "train"
  finally:
    util.unregister_problem("ring")
  assert modes == ["test", "train", "test"]
  # The built-in names say it by whether they read a data split.
  assert [util.validation_mode(name) for name in (
      "digits", "mnist-relu", "quadratic", "square_cos_3", "family")] == [
          "train", "train", "test", "test", "train"]
  with pytest.raises(ValueError, match="validation_mode of problem 'ring2' "
                     "must be 'train' or 'test', got 'validation'"):
    util.register_problem("ring2", make, validation_mode="validation")


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


def test_eval_run_epoch_takes_and_returns_as_loiss(sess):
  # LOIS's evaluate.py: `time, cost, constants = util.eval_run_epoch(sess,
  # cost_op, [update], reset, num_unrolls, x_final, constant)`, every cost
  # read after its unroll's update.
  counter = tf.compat.v1.get_variable("counter", initializer=0.0)
  update = counter.assign_add(1.0)
  constants = ["kept"]
  sess.run(counter.initializer)
  for _ in range(2):
    seconds, costs, returned = util.eval_run_epoch(
        sess, [counter], [update], counter.initializer, 3, "x_final",
        constants)
    assert costs == [[1.0], [2.0], [3.0]]
    assert returned is constants and seconds >= 0.0
  # Without a reset it goes on.
  _, costs, _ = util.eval_run_epoch(sess, counter, [update], None, 2)
  assert costs == [4.0, 5.0]


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
  with pytest.raises(ValueError, match="Bad family option 'nonsense'.* The "
                     "net is chosen with net=<adaptive"):
    util.get_config("family:nonsense")
  # A bad value of a known option gets no hint about nets.
  with pytest.raises(ValueError) as error:
    util.get_config("family:scale_range=abc")
  assert str(error.value) == ("Family option scale_range must be a number, "
                              "got 'abc'.")
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
  _, net_config, _ = util.get_config("mnist", data_dir=data_dir, mode="test")
  assert calls == [(data_dir, "test")]
  # DeepMind's name, DeepMind's net: Sonnet 1's random gate biases.
  assert net_config["cw"]["net_options"] == DEFAULT_LSTM_OPTIONS


def test_mnist_without_data_names_the_remedy(monkeypatch, tmp_path):
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path))
  with pytest.raises(datasets.DataError) as error:
    util.get_config("mnist")
  assert "searched {} (does not exist)".format(tmp_path / "l2l") in str(
      error.value)
  assert "run `l2l-data mnist`" in str(error.value)


@pytest.mark.usefixtures("graph")
def test_mnist_reads_the_download_cache_with_no_flag(data_dir, monkeypatch,
                                                     tmp_path):
  # Where `l2l-data mnist` puts the files: $XDG_CACHE_HOME/l2l/mnist.
  shutil.copytree(data_dir, tmp_path / "l2l" / "mnist")
  monkeypatch.delenv(datasets.ENV_VAR, raising=False)
  monkeypatch.setenv(datasets.CACHE_ENV_VAR, str(tmp_path))
  datasets.clear_cache()
  problem, _, _ = util.get_config("mnist", mode="test")
  shapes = _variable_shapes(problem)
  assert shapes["images"] == ((DATA_NUM_TEST, 784), False)
  datasets.clear_cache()


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("name, hidden, activation", [
    ("mnist", [20], "Sigmoid"),
    ("mnist-40", [40], "Sigmoid"),
    ("mnist-2layer", [20, 20], "Sigmoid"),
    ("mnist-relu", [20], "Relu"),
])
def test_the_papers_mnist_problems(data_dir, name, hidden, activation):
  # The paper's Figures 4 and 5, all with DeepMind's mnist configuration:
  # batch 128, weights and biases N(0, 0.01), the default LogAndSign LSTM.
  problem, net_config, assignments = util.get_config(
      name, path="/models/run", data_dir=data_dir)
  assert assignments is None
  assert net_config == {"cw": {"net": "CoordinateWiseDeepLSTM",
                               "net_options": DEFAULT_LSTM_OPTIONS,
                               "net_path": "/models/run/cw.l2l"}}
  shapes = _variable_shapes(problem)
  sizes = [784] + hidden + [10]
  expected = []
  for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
    expected += [(fan_in, fan_out), (fan_out,)]
  assert sorted(s for s, trainable in shapes.values() if trainable) == sorted(
      expected)
  graph = tf.compat.v1.get_default_graph()
  op_types = [op.type for op in graph.get_operations()]
  assert op_types.count(activation) == len(hidden)
  assert {"Sigmoid", "Relu"} - {activation} & set(op_types) == set()
  draws = [op for op in graph.get_operations()
           if op.type == "RandomUniformInt"]
  assert [d.outputs[0].shape.as_list() for d in draws] == [[128]]
  with tf.compat.v1.Session() as sess:
    sess.run(tf.compat.v1.global_variables_initializer())
    values = sess.run(tf.compat.v1.trainable_variables())
  every = np.concatenate([v.ravel() for v in values])
  assert np.all(every != 0)
  np.testing.assert_allclose(np.std(every), 0.01, rtol=0.05)
  assert abs(np.mean(every)) < 0.001


def test_missing_cifar_files_are_named(tmp_path):
  with pytest.raises(datasets.DataError, match="data_batch_1.bin"):
    util.get_config("cifar", data_dir=str(tmp_path))


def _make_ring(mode, num_dims=2, radius=1.0):
  """A problem of one's own: (||x||^2 - radius^2)^2, x starting at 1."""
  del mode  # The same instances for training and evaluation.

  def build():
    x = tf.compat.v1.get_variable("x", [num_dims],
                                  initializer=tf.compat.v1.ones_initializer())
    return tf.square(tf.reduce_sum(tf.square(x)) - radius**2)
  return build


@pytest.fixture
def ring():
  """Registers `_make_ring` as "ring" for one test."""
  util.register_problem("ring", _make_ring)
  yield "ring"
  util.unregister_problem("ring")


def test_registered_problem_builds_with_its_options(ring, fresh_session):
  assert ring in util.problem_names()
  problem, net_config, assignments = util.get_config(
      "ring:num_dims=3,radius=0.5", path="/models/ring")
  assert assignments is None
  assert net_config == {"cw": dict(networks.library_config(),
                                   net_path=os.path.join("/models/ring",
                                                         "cw.l2l"))}
  with fresh_session() as sess:
    loss = problem()
    sess.run(tf.compat.v1.global_variables_initializer())
    # ||x||^2 = 3 at the start: (3 - 0.25)^2.
    assert sess.run(loss) == pytest.approx(2.75**2)
  util.check_problem_name("ring")
  util.check_problem_name("ring:radius=2")


def test_registered_problem_refuses_unknown_options_before_building(ring):
  with pytest.raises(ValueError, match="problem 'ring' does not take the "
                     "options colour"):
    util.check_problem_name("ring:colour=red")
  with pytest.raises(ValueError, match="bad problem option 'radius'"):
    util.get_config("ring:radius")


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
    return _make_ring("test", num_dims)
  def with_a_required_option(mode, num_dims, radius):
    return _make_ring(mode, num_dims, radius)
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
        "{} (test_util.py, line {})".format(raised.value.__cause__, line))
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
  assert util.same_problem("ring", "ring:radius=1.0")
  assert util.same_problem("ring:num_dims=3,radius=2",
                           "ring:radius=2,num_dims=3")
  assert not util.same_problem("ring", "ring:radius=2")
  assert util.same_problem("quadratic", "quadratic")
  assert not util.same_problem("quadratic", "quadratic-las")
  assert not util.same_problem("ring:colour=red", "ring")


def test_register_problem_refuses_taken_and_bad_names(ring):
  for name in ("quadratic", "square_cos_3", ring, "family"):
    with pytest.raises(ValueError, match="already known"):
      util.register_problem(name, _make_ring)
  with pytest.raises(ValueError, match="is invalid"):
    util.register_problem("my:ring", _make_ring)
  with pytest.raises(ValueError, match="must be callable"):
    util.register_problem("ring2", "not a function")
  with pytest.raises(ValueError, match="must take mode"):
    util.register_problem("ring2", lambda: None)
  with pytest.raises(ValueError, match="net_config of problem 'ring2'"):
    util.register_problem("ring2", _make_ring, net_config={"cw": "lstm"})
  util.register_problem(ring, _make_ring, net_config={
      "sgd": {"net": "Sgd", "net_options": {"learning_rate": 0.1}}},
                        replace=True)
  _, net_config, _ = util.get_config(ring)
  assert net_config == {"sgd": {"net": "Sgd",
                                "net_options": {"learning_rate": 0.1},
                                "net_path": None}}
  with pytest.raises(ValueError, match="'quadratic' was not registered"):
    util.unregister_problem("quadratic")


def test_a_built_in_name_replaced_is_the_users_with_or_without_options():
  # Both spellings reach the registered problem; unregistering brings the
  # built-in back.
  util.register_problem("quadratic", _make_ring, replace=True)
  try:
    assert util.problem_names().count("quadratic") == 1
    for name in ("quadratic", "quadratic:num_dims=3"):
      _, net_config, _ = util.get_config(name)
      assert net_config == {"cw": dict(networks.library_config(),
                                       net_path=None)}
      util.check_problem_name(name)
  finally:
    util.unregister_problem("quadratic")
  _, net_config, _ = util.get_config("quadratic")
  assert net_config["cw"]["net_options"] == {"layers": (20, 20)}


def test_a_registered_problem_trains_through_meta(ring, fresh_session):
  problem, net_config, _ = util.get_config(ring)
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(**{"sgd": {
        "net": "Sgd", "net_options": {"learning_rate": 0.05}}})
    del net_config
    _, _, reset, fx, x, _ = optimizer.meta_loss(problem, 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(reset)
    # One SGD step from x = (1, 1): grad = 4 (||x||^2 - 1) x = 4.
    x_value, fx_value = sess.run([x[0], fx])
    np.testing.assert_allclose(x_value, [1 - 0.05 * 4] * 2, rtol=1e-6)
    assert fx_value == pytest.approx((2 * 0.8**2 - 1)**2, rel=1e-5)


def test_parse_problem_options():
  assert util.parse_problem_options(
      "num_dims=10, shift=2.5,name=relu,flag=True,none=None") == {
          "num_dims": 10, "shift": 2.5, "name": "relu", "flag": True,
          "none": None}
  assert util.parse_problem_options("") == {}
  # Lowercase, as the family's options and absl's flags take them.
  assert util.parse_problem_options("rotate=true,scale=FALSE,x=yes") == {
      "rotate": True, "scale": False, "x": "yes"}
  special = util.parse_problem_options(
      "a=nan,b=-inf,c=Infinity,d=info,e=--inf")
  assert math.isnan(special.pop("a"))
  assert special == {"b": -math.inf, "c": math.inf, "d": "info",
                     "e": "--inf"}
  with pytest.raises(ValueError, match="given twice"):
    util.parse_problem_options("a=1,a=2")


def test_unknown_problem_suggests_the_closest_names():
  with pytest.raises(ValueError, match=r"Unknown problem 'quadratik'\. Did "
                     r"you mean 'quadratic'"):
    util.check_problem_name("quadratik")
  with pytest.raises(ValueError) as error:
    util.check_problem_name("zzz")
  assert "Did you mean" not in str(error.value)
  # Each name once; Rastrigin's pattern as it is written.
  with pytest.raises(ValueError, match=r"Did you mean 'family'\? Known"):
    util.check_problem_name("familly:x=1")
  with pytest.raises(ValueError, match=r"Did you mean 'square_cos_<d>'\?"):
    util.check_problem_name("squarecos_2")
  # A user's problem whose module was not given: say how it is given.
  with pytest.raises(ValueError, match=r"a problem of one's own is known "
                     r"once the module that registers it is imported \(the "
                     r"commands' --problem_module\)\.$"):
    util.check_problem_name("logreg")


def test_load_problem_module_registers_its_problems(tmp_path):
  module = tmp_path / "my_problems_for_test.py"
  module.write_text(
      "import tensorflow as tf\n"
      "import util\n"
      "def make(mode):\n"
      "  return lambda: tf.square(tf.compat.v1.get_variable('x', []))\n"
      "util.register_problem('from_a_file', make)\n")
  try:
    util.load_problem_module(str(module))
    util.check_problem_name("from_a_file")
    # It knows its module, which a saved optimizer records.
    assert util.problem_module("from_a_file:") == str(module)
    assert util.problem_module("quadratic") is None
    assert util.problem_module("rastrigin") is None
    # Importing it again registers nothing twice.
    util.load_problem_module(str(module))
  finally:
    util.unregister_problem("from_a_file")
    sys.modules.pop("my_problems_for_test", None)
  with pytest.raises(ValueError, match="the file does not exist"):
    util.load_problem_module(str(tmp_path / "missing.py"))
  broken = tmp_path / "broken_for_test.py"
  broken.write_text("raise RuntimeError('boom')\n")
  with pytest.raises(ValueError, match="failed to import: RuntimeError: "
                     "boom"):
    util.load_problem_module(str(broken))
  with pytest.raises(ValueError, match="no problem module 'no_such_mod'"):
    util.load_problem_module("no_such_mod")


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
    util.load_problem_module(str(module))
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
  util.load_problem_module(str(module))
  try:
    util.load_problem_module(str(other / "with_helper_for_test.py"))
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
    util.load_problem_module(str(own))
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
    util.load_problem_module("syntax_error_for_test")
  with pytest.raises(ValueError, match=r"^problem module "
                     r"'missing_import_for_test' failed to import: "
                     r"ModuleNotFoundError: No module named "
                     r"'no_such_package_for_test'"):
    util.load_problem_module("missing_import_for_test")


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
    util.load_problem_module("cwd_problems_for_test")
    util.check_problem_name("from_the_cwd")
  finally:
    util.unregister_problem("from_the_cwd")
    sys.modules.pop("cwd_problems_for_test", None)
  assert sys.path == path_before
