"""Tests for util.py: problem configurations, epoch loops and statistics."""

import io
import math
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import DATA_NUM_TEST
from conftest import make_ring
from l2l.checkpoint import l2l_file
from l2l.data import datasets
import meta
import networks
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
    return make_ring(mode)

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


def test_register_problem_refuses_taken_and_bad_names(ring):
  for name in ("quadratic", "square_cos_3", ring, "family"):
    with pytest.raises(ValueError, match="already known"):
      util.register_problem(name, make_ring)
  with pytest.raises(ValueError, match="is invalid"):
    util.register_problem("my:ring", make_ring)
  with pytest.raises(ValueError, match="must be callable"):
    util.register_problem("ring2", "not a function")
  with pytest.raises(ValueError, match="must take mode"):
    util.register_problem("ring2", lambda: None)
  with pytest.raises(ValueError, match="net_config of problem 'ring2'"):
    util.register_problem("ring2", make_ring, net_config={"cw": "lstm"})
  util.register_problem(ring, make_ring, net_config={
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
  util.register_problem("quadratic", make_ring, replace=True)
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

