"""Tests of l2l/dropin/keras_optimizer.py: the Keras 3 drop-in (eager)."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import assert_a_path_or_a_rate_is_refused
from conftest import save_matrices_only_sgd
from conftest import save_x0_only_sgd
import l2l
from l2l.dropin import keras_optimizer
import meta
import problems


# The default LSTM, and the adaptive net (random output weights, so that it
# is more than Adam) whose state nests moments and a step count, without
# and with the hypergradient (which adds the last update to the state).
NETS = {
    "default": {},
    "adaptive": {"cw": {"net": "AdaptiveStepLSTM", "net_options": {
        "layers": (5,), "initializer": {"linear": {"w": "random_normal"}}}}},
    "adaptive_hyper": {"cw": {"net": "AdaptiveStepLSTM", "net_options": {
        "layers": (5,), "hyper_rate": 0.3,
        "initializer": {"linear": {"w": "random_normal"}}}}},
}


@pytest.fixture(params=sorted(NETS))
def saved_path(request, tmp_path, fresh_session):
  """A directory holding a saved optimizer with random weights."""
  with fresh_session(seed=1) as sess:
    optimizer = meta.MetaOptimizer(**NETS[request.param])
    optimizer.meta_loss(problems.simple(), 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, tmp_path)
  return tmp_path


def _model(seed):
  keras.utils.set_random_seed(seed)
  model = keras.Sequential([keras.Input((4,)),
                            keras.layers.Dense(3, activation="relu"),
                            keras.layers.Dense(2)])
  return model


def test_updates_equal_learned_optimizer(saved_path, fresh_session):
  assert tf.executing_eagerly()
  model = _model(0)
  start = [v.numpy() for v in model.trainable_variables]
  rng = np.random.RandomState(0)
  gradients = [[rng.normal(scale=0.1, size=v.shape).astype(np.float32)
                for v in start] for _ in range(4)]
  optimizer = l2l.keras_optimizer(saved_path)
  for step in gradients:
    optimizer.apply_gradients(zip(step, model.trainable_variables))
  keras_values = [v.numpy() for v in model.trainable_variables]

  with fresh_session() as sess:
    variables = [tf.Variable(value, name="v{}".format(i))
                 for i, value in enumerate(start)]
    placeholders = [tf.compat.v1.placeholder(tf.float32, value.shape)
                    for value in start]
    learned = l2l.LearnedOptimizer.from_path(saved_path)
    train_op = learned.apply_gradients(zip(placeholders, variables))
    sess.run(tf.compat.v1.global_variables_initializer())
    for step in gradients:
      sess.run(train_op, dict(zip(placeholders, step)))
    graph_values = sess.run(variables)
  for keras_value, graph_value, first in zip(keras_values, graph_values,
                                             start):
    assert np.abs(graph_value - first).max() > 1e-4
    np.testing.assert_allclose(keras_value, graph_value, rtol=1e-6,
                               atol=1e-7)
  assert tf.executing_eagerly()


def _start_and_gradients():
  """A 3x2 start and three gradients for it, float32."""
  rng = np.random.RandomState(0)
  start = rng.normal(size=(3, 2)).astype(np.float32)
  return start, [rng.normal(scale=0.1, size=start.shape).astype(np.float32)
                 for _ in range(3)]


def test_a_float64_variable_steps_as_its_float32_copy(saved_path):
  start, gradients = _start_and_gradients()
  values = {}
  for dtype in ("float32", "float64"):
    variable = keras.Variable(start.astype(dtype), dtype=dtype)
    optimizer = l2l.keras_optimizer(saved_path)
    for step in gradients:
      optimizer.apply_gradients([(tf.constant(step.astype(dtype)),
                                  variable)])
    assert variable.dtype == dtype
    values[dtype] = variable.numpy()
  assert np.abs(values["float32"] - start).max() > 1e-4
  np.testing.assert_allclose(values["float64"], values["float32"], rtol=1e-6,
                             atol=1e-7)


def test_model_fit_trains_with_the_learned_rule(saved_path):
  rng = np.random.RandomState(0)
  inputs = rng.normal(size=(64, 4)).astype(np.float32)
  labels = (inputs[:, 0] > 0).astype(np.int32)
  model = _model(1)
  model.compile(optimizer=l2l.keras_optimizer(saved_path),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  start = [v.numpy() for v in model.trainable_variables]
  history = model.fit(inputs, labels, batch_size=16, epochs=3, verbose=0)
  losses = history.history["loss"]
  assert len(losses) == 3 and np.all(np.isfinite(losses))
  moved = [np.abs(v.numpy() - s).max() for v, s in
           zip(model.trainable_variables, start)]
  assert min(moved) > 0


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_an_xla_compiled_fit_steps_as_the_plain_one(saved_path):
  # Keras compiles the train step with XLA on request (and by default on
  # some devices); the native kernels have no XLA implementation, so the
  # rule runs as TensorFlow ops there, to the same numbers.
  rng = np.random.RandomState(0)
  inputs = rng.normal(size=(32, 4)).astype(np.float32)
  labels = (inputs[:, 0] > 0).astype(np.int32)
  weights = {}
  for jit_compile in (False, True):
    model = _model(1)
    start = [v.numpy() for v in model.trainable_variables]
    model.compile(optimizer=l2l.keras_optimizer(saved_path),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True), jit_compile=jit_compile)
    model.fit(inputs, labels, batch_size=16, epochs=2, verbose=0)
    weights[jit_compile] = [v.numpy() for v in model.trainable_variables]
  for plain, compiled, first in zip(weights[False], weights[True], start):
    assert np.abs(plain - first).max() > 1e-4
    np.testing.assert_allclose(compiled, plain, rtol=1e-5, atol=1e-6)


def test_learning_rate_and_weight_decay_are_refused(saved_path):
  with pytest.raises(ValueError, match="learning_rate=0.001 is not accepted"):
    l2l.keras_optimizer(saved_path, learning_rate=0.001)
  with pytest.raises(ValueError, match="lr=0.1 is not accepted"):
    l2l.keras_optimizer(saved_path, lr=0.1)
  with pytest.raises(ValueError, match="weight_decay=0.01 is not accepted"):
    l2l.keras_optimizer(saved_path, weight_decay=0.01)


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_a_learning_rate_callback_is_refused_not_ignored(saved_path):
  rng = np.random.RandomState(0)
  inputs = rng.normal(size=(16, 4)).astype(np.float32)
  model = _model(1)
  optimizer = l2l.keras_optimizer(saved_path)
  model.compile(optimizer=optimizer, loss="mse")
  assert float(optimizer.learning_rate) == 0.0
  with pytest.raises(ValueError, match="no learning rate to schedule "
                     r"\(a callback, or code of yours, set it to 1e-09\).*"
                     "LearningRateScheduler"):
    model.fit(inputs, inputs[:, :2], epochs=1, verbose=0, callbacks=[
        keras.callbacks.LearningRateScheduler(lambda epoch, rate: 1e-9)])


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_reduce_lr_on_plateau_is_refused_not_ignored(saved_path):
  # It lowers only a rate above its min_lr (0), so it would never set ours.
  rng = np.random.RandomState(0)
  inputs = rng.normal(size=(16, 4)).astype(np.float32)
  model = _model(1)
  model.compile(optimizer=l2l.keras_optimizer(saved_path), loss="mse")
  history = model.fit(inputs, inputs[:, :2], epochs=2, verbose=0)
  assert len(history.history["loss"]) == 2  # Other readers see 0.
  with pytest.raises(ValueError, match=r"no learning rate to schedule "
                     r"\(ReduceLROnPlateau\)"):
    model.fit(inputs, inputs[:, :2], epochs=3, verbose=0, callbacks=[
        keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0,
                                          min_delta=10.0)])


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_reduce_lr_on_plateau_is_refused_through_mixed_precision_too(
    saved_path):
  # Keras wraps the optimizer in a LossScaleOptimizer, which reads the rate
  # for the callback.
  rng = np.random.RandomState(0)
  inputs = rng.normal(size=(16, 4)).astype(np.float32)
  keras.mixed_precision.set_global_policy("mixed_float16")
  try:
    model = _model(1)
    model.compile(optimizer=l2l.keras_optimizer(saved_path), loss="mse")
    assert type(model.optimizer).__name__ == "LossScaleOptimizer"
    with pytest.raises(ValueError, match=r"no learning rate to schedule "
                       r"\(ReduceLROnPlateau\)"):
      model.fit(inputs, inputs[:, :2], epochs=3, verbose=0, callbacks=[
          keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=0,
                                            min_delta=10.0)])
  finally:
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_a_path_or_a_rate_where_the_rule_goes_is_refused(saved_path):
  assert_a_path_or_a_rate_is_refused(
      keras_optimizer.KerasLearnedOptimizer, saved_path,
      "KerasLearnedOptimizer", "l2l.keras_optimizer(directory)")


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_a_positional_learning_rate_is_refused_naming_it(saved_path):
  # keras.optimizers.Adam(0.01) style: the number lands in `name`.
  with pytest.raises(ValueError, match="keras_optimizer: name must be a "
                     "string, got 0.01; a learned optimizer takes no learning "
                     "rate"):
    l2l.keras_optimizer(saved_path, 0.01)
  rule = l2l.keras_optimizer(saved_path).update_rule
  with pytest.raises(ValueError, match="name must be a string, got 0.01"):
    keras_optimizer.KerasLearnedOptimizer(rule, 0.01)


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_a_gradient_for_a_variable_not_floating_point_is_refused(saved_path):
  optimizer = l2l.keras_optimizer(saved_path)
  counts = keras.Variable(np.ones(2, np.int32), name="counts")
  with pytest.raises(ValueError, match=r"cannot update counts \(int32\): it "
                     "steps floating-point variables only"):
    optimizer.apply_gradients([(tf.ones(2, tf.int32), counts)])
  np.testing.assert_array_equal(counts.numpy(), [1, 1])


class _CountingDense(keras.layers.Layer):
  """A dense layer with a trainable integer counter, which gets no
  gradient (as a layer's bookkeeping weight may be made by mistake)."""

  def build(self, input_shape):
    self.kernel = self.add_weight(shape=(input_shape[-1], 1), name="kernel")
    self.count = self.add_weight(shape=(), dtype="int32",
                                 initializer="zeros", name="count")

  def call(self, inputs):
    return inputs @ self.kernel


@pytest.mark.parametrize("saved_path", ["default"], indirect=True)
def test_an_integer_weight_without_gradient_is_left_as_adam_leaves_it(
    saved_path, caplog):
  rng = np.random.RandomState(0)
  inputs = rng.normal(size=(32, 4)).astype(np.float32)
  targets = inputs[:, :1] * 2
  kernels = {}
  for optimizer in ("adam", "learned"):
    keras.utils.set_random_seed(3)
    layer = _CountingDense()
    model = keras.Sequential([keras.Input((4,)), layer])
    assert [v.dtype for v in model.trainable_variables] == ["float32",
                                                            "int32"]
    start = layer.kernel.numpy()
    model.compile(optimizer=(keras.optimizers.Adam(0.01)
                             if optimizer == "adam" else
                             l2l.keras_optimizer(saved_path)), loss="mse")
    with caplog.at_level("WARNING"):
      model.fit(inputs, targets, batch_size=16, epochs=2, verbose=0)
    kernels[optimizer] = np.abs(layer.kernel.numpy() - start).max()
    assert layer.count.numpy() == 0
  assert kernels["adam"] > 1e-3 and kernels["learned"] > 1e-4
  assert re.search(r"keeps sequential\S*/count \(int32\) fixed: it steps "
                   "floating-point variables only", caplog.text)


def test_a_saved_model_reloads_with_the_optimizer_and_its_state(
    saved_path, tmp_path_factory):
  rng = np.random.RandomState(2)
  inputs = rng.normal(size=(32, 4)).astype(np.float32)
  labels = (inputs[:, 1] > 0).astype(np.int32)
  model = _model(2)
  model.compile(optimizer=l2l.keras_optimizer(saved_path, clipnorm=5.0),
                loss=keras.losses.SparseCategoricalCrossentropy(
                    from_logits=True))
  model.fit(inputs, labels, batch_size=16, epochs=2, verbose=0)
  saved_model = tmp_path_factory.mktemp("model") / "model.keras"
  model.save(saved_model)
  # The optimizer's own files are not needed to load it.
  moved = tmp_path_factory.mktemp("moved")
  for path in saved_path.iterdir():
    path.rename(moved / path.name)
  loaded = keras.models.load_model(saved_model)
  assert isinstance(loaded.optimizer, type(model.optimizer))
  assert loaded.optimizer.clipnorm == 5.0
  states = [v.numpy() for v in model.optimizer.variables]
  loaded_states = [v.numpy() for v in loaded.optimizer.variables]
  assert len(states) == len(loaded_states) > 2
  assert max(np.abs(s).max() for s in states[1:]) > 0  # States, not zeros.
  for state, loaded_state in zip(states, loaded_states):
    np.testing.assert_array_equal(loaded_state, state)
  # Both continue with the same step.
  model.fit(inputs, labels, batch_size=16, epochs=1, verbose=0)
  loaded.fit(inputs, labels, batch_size=16, epochs=1, verbose=0)
  for value, loaded_value in zip(model.get_weights(), loaded.get_weights()):
    np.testing.assert_allclose(loaded_value, value, rtol=1e-6, atol=1e-7)


def test_a_malformed_rule_config_names_itself():
  with pytest.raises(ValueError, match="update rule config: 'assignment' is missing"):
    keras_optimizer.KerasLearnedOptimizer.from_config(
        {"name": "x", "update_rule": {"nets": {}}})
  # keras.optimizers.get("l2l>KerasLearnedOptimizer") gives no rule at all.
  with pytest.raises(ValueError, match="config has no update_rule: make it "
                     r"with l2l.keras_optimizer\(directory\)"):
    keras_optimizer.KerasLearnedOptimizer.from_config({"name": "x"})


def test_plain_tf_variables_step_as_keras_variables(saved_path):
  # A tf.Module or Sonnet model in an eager loop has tf.Variables, which
  # have no Keras path.
  start, gradients = _start_and_gradients()
  values = {}
  for make in (keras.Variable, tf.Variable):
    variable = make(start)
    optimizer = l2l.keras_optimizer(saved_path)
    for step in gradients:
      optimizer.apply_gradients([(tf.constant(step), variable)])
    values[make] = variable.numpy()
  assert np.abs(values[tf.Variable] - start).max() > 1e-4
  np.testing.assert_array_equal(values[tf.Variable], values[keras.Variable])


def test_a_variable_training_left_out_stays_fixed(tmp_path, caplog):
  save_x0_only_sgd(tmp_path)
  x_0, x_1 = tf.Variable(1.0, name="x_0"), tf.Variable(1.0, name="x_1")
  optimizer = l2l.keras_optimizer(tmp_path)
  optimizer.apply_gradients([(tf.constant(2.0), x_0), (tf.constant(2.0), x_1)])
  np.testing.assert_allclose([x_0.numpy(), x_1.numpy()], [0.0, 1.0],
                             rtol=1e-6)
  # Said once, when the optimizer is built, naming the variable.
  fixed = [r.getMessage() for r in caplog.records if "fixed" in r.getMessage()]
  assert len(fixed) == 1 and fixed[0].endswith(
      "keeps 1 variable(s) fixed, as its meta-training left variables of "
      "these names out of every net: x_1."), fixed


def test_an_assignment_of_ones_own_gives_the_nets_a_models_variables(
    tmp_path):
  save_x0_only_sgd(tmp_path)
  kernel = keras.Variable(np.ones((2, 2), np.float32), name="kernel")
  optimizer = l2l.keras_optimizer(
      tmp_path, assignment=[{"net": "cw", "match": "rank", "ranks": [2]}])
  optimizer.apply_gradients([(tf.fill([2, 2], 0.5), kernel)])
  # SGD at rate 0.5.
  np.testing.assert_allclose(kernel.numpy(), np.full((2, 2), 0.75))


def test_a_refused_variable_leaves_the_optimizer_unbuilt(tmp_path):
  save_matrices_only_sgd(tmp_path)
  optimizer = l2l.keras_optimizer(tmp_path)
  vector, matrix = keras.Variable(np.ones(2)), keras.Variable(np.ones((2, 2)))
  with pytest.raises(ValueError, match="covers the variables"):
    optimizer.apply_gradients([(tf.ones(2), vector)])
  assert not optimizer.built
  optimizer.apply_gradients([(tf.fill([2, 2], 0.25), matrix)])
  np.testing.assert_array_equal(matrix.numpy(), np.full((2, 2), 0.75))
