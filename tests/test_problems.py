"""Tests for problems.py: each loss against numpy; the real-data problems."""

import math
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from l2l.data import datasets
from l2l.tasks import test_functions
import meta
import problems


def _evaluate(sess, build, values=None):
  """Builds a problem, optionally sets variables, and evaluates it.

  Args:
    sess: session of the default graph.
    build: the problem's `build` function.
    values: `{variable name: value}` assigned after initialisation.

  Returns:
    `(loss, {name: value} of every variable, names of trainable variables)`.
  """
  loss = build()
  variables = {v.name.split(":")[0]: v
               for v in tf.compat.v1.global_variables()}
  sess.run(tf.compat.v1.global_variables_initializer())
  for name, value in (values or {}).items():
    sess.run(variables[name].assign(value))
  trainable = sorted(v.name.split(":")[0]
                     for v in tf.compat.v1.trainable_variables())
  return sess.run(loss), sess.run(variables), trainable


def _batched_square_norm(w, x, y):
  return np.sum(np.square(np.einsum("bij,bj->bi", w, x) - y), axis=1)


def _rastrigin_cos_term(x):
  return 10.0 * np.cos(2 * np.pi * x)


@pytest.mark.parametrize("values, expected", [(None, 1.0), ({"x": -3.0}, 9.0)])
def test_simple(sess, values, expected):
  loss, _, trainable = _evaluate(sess, problems.simple(), values)
  assert trainable == ["x"]
  assert loss == expected


def test_simple_multi_optimizer(sess):
  loss, values, trainable = _evaluate(
      sess, problems.simple_multi_optimizer(num_dims=3),
      {"x_1": 2.0, "x_2": -0.5})
  assert trainable == ["x_0", "x_1", "x_2"]
  assert values["x_0"] == 1.0
  np.testing.assert_allclose(loss, 1.0 + 4.0 + 0.25)


def test_quadratic_is_mean_squared_residual(sess):
  loss, values, trainable = _evaluate(
      sess, problems.quadratic(batch_size=5, num_dims=4, stddev=0.5))
  assert trainable == ["x"]
  w, x, y = values["w"], values["x"], values["y"]
  assert w.shape == (5, 4, 4) and x.shape == (5, 4) and y.shape == (5, 4)
  assert 0.0 <= w.min() and w.max() < 1.0 and 0.0 <= y.min() and y.max() < 1.0
  assert 0.1 < x.std() < 1.5  # Drawn with stddev 0.5, not uniform.
  np.testing.assert_allclose(loss, np.mean(_batched_square_norm(w, x, y)),
                             rtol=1e-5)


def test_square_cos_test_mode_is_rastrigin(sess):
  build = problems.square_cos(batch_size=3, num_dims=2, mode="test",
                              init_stddev=1.0)
  point = np.array([[0.0, 0.0], [0.5, -1.25], [2.0, 0.1]], np.float32)
  loss, values, trainable = _evaluate(sess, build, {"x": point})
  assert trainable == ["x"] and sorted(values) == ["x"]
  expected = np.sum(point**2 - _rastrigin_cos_term(point), axis=1) + 20.0
  assert loss.shape == (3,)
  np.testing.assert_allclose(loss, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(loss[0], 0.0, atol=1e-5)
  assert loss[1:].min() > 1.0


def test_square_cos_train_mode_formula(sess):
  build = problems.square_cos(batch_size=64, num_dims=3, stddev=0.3,
                              mode="train")
  loss, values, trainable = _evaluate(sess, build)
  assert trainable == ["x"]
  w, x, y, wcos = values["w"], values["x"], values["y"], values["wcos"]
  identity = np.eye(3)[None]
  expected = (_batched_square_norm(identity + w, x, y) -
              np.sum(wcos * _rastrigin_cos_term(x), axis=1) + 30.0)
  np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-4)
  # The random family: spread stddev / d around 0 (w, y) and 1 (wcos).
  for value, mean in ((w, 0.0), (y, 0.0), (wcos, 1.0)):
    assert abs(value.mean() - mean) < 0.03
    assert 0.07 < value.std() < 0.13


def test_square_cos_starts_as_lois_problem_did_unless_told(sess):
  # LOIS's problem drew x uniform in [-3, 3]; a normal start is asked for.
  loss, values, _ = _evaluate(sess, problems.square_cos(
      batch_size=256, num_dims=4, mode="test"))
  x = values["x"]
  assert -3.0 <= x.min() < -2.9 and 2.9 < x.max() <= 3.0
  assert abs(x.std() - 6.0 / 12**0.5) < 0.05
  # Far from the minimum at the origin: Rastrigin's mean there is about
  # 4 * (3 + 10) = 52 (E[x^2] = 3, E[cos] near 0).
  assert 40 < loss.mean() < 65
  with tf.compat.v1.variable_scope("normal"):
    _, values, _ = _evaluate(sess, problems.square_cos(
        batch_size=256, num_dims=4, init_stddev=0.2))
  assert abs(values["normal/x"].std() - 0.2) < 0.01


def test_square_cos_unknown_mode():
  with pytest.raises(ValueError, match="'eval'"):
    problems.square_cos(mode="eval")


def test_test_function_rows_are_instances_with_their_minimum_at_optimum(
    sess):
  build = problems.test_function("levy", batch_size=64, num_dims=3,
                                 init_stddev=3.0, random_shift=2.0)
  loss = build()
  sess.run(tf.compat.v1.global_variables_initializer())
  variables = {v.name.split(":")[0]: v
               for v in tf.compat.v1.global_variables()}
  assert [v.name for v in tf.compat.v1.trainable_variables()] == ["x:0"]
  assert sorted(variables) == ["offset", "x"]
  x, offset = sess.run([variables["x"], variables["offset"]])
  optimum = offset + 1.0
  assert loss.shape == (64,) and x.shape == optimum.shape == (64, 3)
  assert 2.5 < x.std() < 3.5
  # Levy's usual minimizer is 1; each row's is moved by an offset U(-2, 2).
  assert -1.0 <= optimum.min() < -0.5 and 2.5 < optimum.max() <= 3.0
  np.testing.assert_allclose(sess.run(loss), test_functions.objective(
      test_functions.NUMPY, "levy", x, optimum), rtol=1e-5)
  sess.run(variables["x"].assign(optimum.astype(np.float32)))
  np.testing.assert_allclose(sess.run(loss), 0.0, atol=1e-5)


def test_test_function_fixed_shift_rotation_and_scales(sess):
  build = problems.test_function("rastrigin", batch_size=8, num_dims=4,
                                 shift=1.5, rotate=True, scale_range=4.0)
  loss, values, _ = _evaluate(sess, build)
  np.testing.assert_allclose(values["offset"], 1.5)
  rotation, scales = values["rotation"], np.exp(values["log_scales"])
  np.testing.assert_allclose(
      np.einsum("rij,rkj->rik", rotation, rotation),
      np.broadcast_to(np.eye(4), (8, 4, 4)), atol=1e-5)
  assert 0.25 <= scales.min() and scales.max() <= 4.0 and (
      scales.max() / scales.min() > 3.0)
  np.testing.assert_allclose(loss, test_functions.objective(
      test_functions.NUMPY, "rastrigin", values["x"], values["offset"],
      rotation, scales), rtol=1e-5)


def test_test_function_unshifted_is_the_usual_function(sess):
  build = problems.test_function("styblinski_tang", batch_size=4,
                                 num_dims=2)
  point = np.full((4, 2), -2.903534, np.float32)
  loss, values, _ = _evaluate(sess, build, {"x": point})
  np.testing.assert_allclose(values["offset"], 0.0)
  np.testing.assert_allclose(loss, 0.0, atol=1e-3)


def test_test_function_mixture_draws_a_function_per_row(sess):
  build = problems.test_function("rastrigin+ellipsoid+levy", batch_size=300,
                                 num_dims=3, rotate=True)
  loss, values, trainable = _evaluate(sess, build)
  assert trainable == ["x"]
  choice = values["function"]
  assert choice.shape == (300, 3)
  np.testing.assert_array_equal(choice.sum(1), 1.0)
  assert np.all(choice.sum(0) > 70)  # Uniform: about 100 rows each.
  expected = sum(
      choice[:, i] * test_functions.objective(
          test_functions.NUMPY, name, values["x"],
          values["offset"] + test_functions.MINIMA[name], values["rotation"])
      for i, name in enumerate(["rastrigin", "ellipsoid", "levy"]))
  np.testing.assert_allclose(loss, expected, rtol=1e-4, atol=1e-4)


def test_a_mixtures_row_reads_its_own_function_when_another_overflows(sess):
  # Styblinski-Tang's x^4 overflows float32 at 1e10 where Rastrigin's x^2
  # does not: a row that drew Rastrigin reads its finite value, not 0 * inf.
  build = problems.test_function("rastrigin+styblinski_tang", batch_size=64,
                                 num_dims=2, init_stddev=1e10)
  loss, values, _ = _evaluate(sess, build)
  rastrigin = values["function"][:, 0] == 1
  assert 0 < rastrigin.sum() < 64
  assert np.all(np.isfinite(loss[rastrigin]))
  assert np.any(np.isinf(loss[~rastrigin]))


def test_test_function_reset_draws_a_new_instance(sess):
  build = problems.test_function("ackley", batch_size=4, num_dims=2,
                                 random_shift=1.0, rotate=True)
  build()
  init = tf.compat.v1.global_variables_initializer()
  variables = tf.compat.v1.global_variables()
  sess.run(init)
  first = sess.run(variables)
  sess.run(init)
  second = sess.run(variables)
  for a, b in zip(first, second):
    assert not np.allclose(a, b)


@pytest.mark.parametrize("options, message", [
    ({"mode": "eval"}, "mode must be 'train' or 'test', got 'eval'"),
    ({"num_dims": 0}, "rastrigin num_dims must be a positive integer"),
    ({"batch_size": 2.5}, "rastrigin batch_size must be a positive integer"),
    ({"init_stddev": -1}, "rastrigin init_stddev must be >= 0, got -1"),
    ({"random_shift": -0.5}, "rastrigin random_shift must be >= 0"),
    ({"scale_range": 0.5}, "rastrigin scale_range must be >= 1, got 0.5"),
    # What a command line passes as text ("random_shift=nan" is not a
    # Python literal), and values that are no number at all.
    ({"random_shift": "nan"},
     "rastrigin random_shift must be a finite number >= 0, got 'nan'"),
    ({"init_stddev": float("inf")},
     "rastrigin init_stddev must be a finite number >= 0, got inf"),
    ({"shift": "abc"}, "rastrigin shift must be a finite number, got 'abc'"),
    ({"scale_range": None},
     "rastrigin scale_range must be a finite number >= 1, got None"),
    ({"num_dims": True}, "rastrigin num_dims must be a positive integer"),
    ({"rotate": "yes"}, "rastrigin rotate must be True or False, got 'yes'"),
    ({"dtype": "int32"}, "rastrigin dtype must be a floating-point type"),
    ({"dtype": "abc"}, "rastrigin dtype must be a floating-point type"),
])
def test_test_function_refuses_bad_options(options, message):
  with pytest.raises(ValueError, match=message):
    problems.test_function("rastrigin", **options)
  with pytest.raises(ValueError, match="Unknown test function 'sphere'"):
    problems.test_function("sphere")


def test_ensemble_weights_each_problem(sess):
  build = problems.ensemble(
      [{"name": "simple"},
       {"name": "simple_multi_optimizer", "options": {"num_dims": 2}}],
      weights=[2.0, 0.5])
  loss, _, trainable = _evaluate(
      sess, build, {"problem_0/x": 3.0, "problem_1/x_1": -2.0})
  assert trainable == ["problem_0/x", "problem_1/x_0", "problem_1/x_1"]
  np.testing.assert_allclose(loss, 2.0 * 9.0 + 0.5 * (1.0 + 4.0))


def test_ensemble_default_weights_average_batched_losses(sess):
  build = problems.ensemble([
      {"name": "simple"},
      {"name": "square_cos", "options": {"batch_size": 2, "mode": "test"}}])
  point = np.array([[0.5, 0.0], [0.0, 0.0]], np.float32)
  loss, _, _ = _evaluate(sess, build, {"problem_1/x": point})
  rastrigin = np.sum(point**2 - _rastrigin_cos_term(point), axis=1) + 20.0
  np.testing.assert_allclose(loss, 1.0 + np.mean(rastrigin), rtol=1e-5)


@pytest.mark.parametrize("specs, weights, match", [
    ([{"name": "nope"}], None, "unknown problem 'nope'"),
    ([{"name": "_batched_residual"}], None, "unknown problem"),
    ([{"name": "simple"}], [1.0, 2.0], "1 problems but 2 weights"),
])
def test_ensemble_errors(specs, weights, match):
  with pytest.raises(ValueError, match=match):
    problems.ensemble(specs, weights)


def test_mean_loss(sess):
  scalar = tf.constant(3.0)
  assert problems.mean_loss(scalar) is scalar
  np.testing.assert_allclose(
      sess.run(problems.mean_loss(tf.constant([1.0, 2.0, 6.0]))), 3.0)
  # Rows are scored as start sets of their own: a matrix has no such rows.
  with pytest.raises(ValueError, match=r"make_loss \(the problem's build\(\)\) "
                     r"returned a loss of shape \[2, 3\]; it must return the "
                     r"loss, a scalar tensor or one value per batch row"):
    problems.mean_loss(tf.zeros([2, 3]))
  with pytest.raises(ValueError, match=r"make_loss \(the problem's build\(\)\) "
                     r"returned a loss of type int32; the loss must be "
                     r"floating point\.$"):
    problems.mean_loss(tf.constant(3))


def test_logistic_regression_starts_at_log_of_its_classes(sess):
  loss, variables, trainable = _evaluate(
      sess, problems.logistic_regression("breast_cancer", batch_size=32,
                                         mode="test"))
  np.testing.assert_allclose(loss, np.log(2.0), rtol=1e-6)
  assert trainable == ["logistic/b", "logistic/w"]
  assert variables["logistic/w"].shape == (30, 2)
  # The test split, standardised with the train split's statistics.
  assert variables["images"].shape == (142, 30)


def test_digits_convnet_is_cross_entropy_of_its_logits(sess):
  build = problems.digits_convnet(batch_size=16)
  loss, variables, trainable = _evaluate(sess, build)
  assert trainable == ["conv_net_2d/conv_2d_0/b", "conv_net_2d/conv_2d_0/w",
                       "conv_net_2d/conv_2d_1/b", "conv_net_2d/conv_2d_1/w",
                       "mlp/linear_0/b", "mlp/linear_0/w"]
  assert variables["images"].shape == (1348, 8, 8, 1)
  # Fan-in initialisation: near chance, not on a plateau of equal logits.
  assert 1.5 < loss < 4.0


@pytest.mark.parametrize("argument", ["batch_size", "num_dims"])
@pytest.mark.parametrize("value", [0, 2.5, "3"])
def test_square_cos_needs_positive_integer_sizes(argument, value):
  with pytest.raises(ValueError, match="square_cos {} must be a positive "
                     "integer, got {!r}".format(argument, value)):
    problems.square_cos(**{argument: value})


# Real-data problems on the tiny files of the `data_dir` fixture.


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


def test_cifar_takes_deepminds_queue_arguments_in_their_place(data_dir):
  # DeepMind's positional order: ..., batch_size, num_threads,
  # min_queue_examples, mode. Without queue runners they change nothing.
  losses = []
  for problem in (
      problems.cifar10(data_dir, (4,), (8,), True, 8, 2, 50, "test"),
      problems.cifar10(data_dir, conv_channels=(4,), linear_layers=(8,),
                       batch_size=8, mode="test")):
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
      tf.compat.v1.set_random_seed(3)
      loss = problem()
      sess.run(tf.compat.v1.global_variables_initializer())
      losses.append(sess.run(loss))
  assert np.isfinite(losses[0]) and losses[0] == losses[1]


def test_dataset_is_held_once_however_long_the_unroll(data_dir):
  problem = problems.mnist(layers=(8,), batch_size=8, data_dir=data_dir)
  num_train = len(datasets.load_mnist(data_dir)[1])
  assert num_train == 24
  with tf.Graph().as_default():
    meta.MetaOptimizer(**_sgd(0.1)).meta_loss(problem, 5)
    images = [v for v in tf.compat.v1.global_variables()
              if v.name == "images:0"]
    image_constants = [
        op for op in tf.compat.v1.get_default_graph().get_operations()
        if op.type == "Const" and
        len(op.get_attr("value").tensor_shape.dim) == 2 and
        op.get_attr("value").tensor_shape.dim[0].size == num_train]
  assert len(images) == 1
  assert len(image_constants) == 1


def test_truncated_mnist_file_is_refused(data_dir, tmp_path):
  for kind in ("images-idx3", "labels-idx1"):
    name = "train-{}-ubyte".format(kind)
    shutil.copy(os.path.join(data_dir, name), str(tmp_path / name))
  images = tmp_path / "train-images-idx3-ubyte"
  images.write_bytes(images.read_bytes()[:-10])
  with pytest.raises(datasets.DataError, match="train-images-idx3-ubyte"):
    problems.mnist(layers=(8,), data_dir=str(tmp_path))


def test_unknown_initializer_is_refused():
  with pytest.raises(ValueError, match="fan_in"):
    problems.digits(initializer="glorot")(),


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


def test_per_epoch_hooks_only_reach_problems_that_have_them():
  drawn = []

  class Drawing:
    def __call__(self):
      return tf.constant(0.0)

    def next_task(self, sess):
      drawn.append(sess)

    def epoch_unrolls(self, num_unrolls):
      return 3 * num_unrolls

  plain = problems.simple()
  # A plain problem: no draw, the usual number of unrolls.
  problems.draw_next_task(plain, "session")
  assert problems.epoch_unrolls(plain, 5) == 5
  problems.draw_next_task(Drawing(), "session")
  assert drawn == ["session"]
  assert problems.epoch_unrolls(Drawing(), 5) == 15
