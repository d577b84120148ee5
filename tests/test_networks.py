"""Tests for networks.py against numpy re-statements."""

import sys

import numpy as np
import pytest
import tensorflow as tf

from l2l.checkpoint import l2l_file
import networks

LAYERS = (3, 3)
SCALE = 0.01
CW_OPTIONS = {"layers": LAYERS, "preprocess_name": "LogAndSign",
              "preprocess_options": {"k": 5}, "scale": SCALE}
# Two consecutive gradients of a [2, 3] variable, over many magnitudes.
GRADIENTS = np.array([[[0.0, 1e-9, -3e-4], [0.2, -1.5, 40.0]],
                      [[-2e-2, 5e-7, 0.7], [-8.0, 0.0, 3e-3]]], np.float32)


def _run_steps(sess, net, gradients):
  """Applies `net` to each gradient in turn from its initial state.

  Returns:
    `(outputs, final_state)` as numpy values.
  """
  state = net.initial_state_for_inputs(tf.constant(gradients[0]))
  outputs = []
  for gradient in gradients:
    output, state = net(tf.constant(gradient), state)
    outputs.append(output)
  sess.run(tf.compat.v1.global_variables_initializer())
  return sess.run((outputs, state))


def _reference_steps(ref, values, gradients, k=5, scale=SCALE):
  """The Sonnet 1 coordinate-wise LSTM on `gradients`, in numpy."""
  state = ref.zero_state(gradients[0].size, LAYERS)
  outputs = []
  for gradient in gradients:
    rows = ref.log_and_sign(gradient.reshape(-1, 1), k)
    output, state = ref.deep_lstm(values, rows, state, scale)
    outputs.append(output.reshape(gradient.shape))
  return outputs, state


def _assert_steps_close(actual, expected):
  (outputs, state), (expected_outputs, expected_state) = actual, expected
  np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-6, atol=1e-6)
  for layer, expected_layer in zip(state, expected_state):
    np.testing.assert_allclose(layer, expected_layer, rtol=1e-6, atol=1e-6)


def _cw_checkpoint(ref, seed=0):
  return ref.random_checkpoint(seed, 2, LAYERS, 1)


def test_sgd_update_is_minus_learning_rate_times_gradient(sess):
  net = networks.Sgd(learning_rate=0.3)
  gradient = GRADIENTS[1]
  state = net.initial_state_for_inputs(tf.constant(gradient))
  update, next_state = sess.run(net(tf.constant(gradient), state))
  np.testing.assert_array_equal(update, np.float32(-0.3) * gradient)
  assert next_state == ()


def test_adam_net_matches_numpy_adam_over_three_steps(sess, ref):
  gradients = np.stack([GRADIENTS[0], GRADIENTS[1], -GRADIENTS[0]])
  net = networks.Adam(learning_rate=0.1, beta1=0.8, beta2=0.99, epsilon=1e-6)
  updates, _ = _run_steps(sess, net, gradients)
  positions = ref.adam(lambda x, t: gradients[t], np.zeros([2, 3]), 3,
                       learning_rate=0.1, beta1=0.8, beta2=0.99, epsilon=1e-6)
  np.testing.assert_allclose(updates, np.diff(positions, axis=0), rtol=1e-5,
                             atol=1e-7)


@pytest.mark.parametrize("source", ["initializer", "net_path"])
def test_coordinatewise_lstm_matches_sonnet1_formula(sess, ref, tmp_path,
                                                     source):
  values = _cw_checkpoint(ref)
  if source == "initializer":
    net = networks.CoordinateWiseDeepLSTM(initializer=values, **CW_OPTIONS)
  else:
    path = l2l_file.save(values, tmp_path / "cw.l2l")
    net = networks.factory("CoordinateWiseDeepLSTM", CW_OPTIONS, net_path=path)
  actual = _run_steps(sess, net, GRADIENTS)
  assert np.abs(actual[0]).max() > 1e-4  # Not trivially zero.
  _assert_steps_close(actual, _reference_steps(ref, values, GRADIENTS))


def test_save_round_trip_gives_identical_outputs(fresh_session, ref,
                                                 tmp_path):
  path = str(tmp_path / "net.l2l")
  with fresh_session(seed=7) as sess:
    net = networks.CoordinateWiseDeepLSTM(**CW_OPTIONS)
    first = _run_steps(sess, net, GRADIENTS)
    saved = networks.save(net, sess, path)
  assert sorted(saved) == ["linear", "lstm_1", "lstm_2"]
  assert sorted(saved["lstm_1"]) == ["b_gates", "w_gates"]
  assert sorted(saved["linear"]) == ["b", "w"]
  assert saved["lstm_1"]["w_gates"].shape == (2 + 3, 12)
  assert saved["lstm_2"]["w_gates"].shape == (3 + 3, 12)
  assert saved["linear"]["w"].shape == (3, 1)
  ref.assert_nested_equal(l2l_file.load(path), saved)
  _assert_steps_close(first, _reference_steps(ref, saved, GRADIENTS))
  with fresh_session(seed=8) as sess:
    net = networks.CoordinateWiseDeepLSTM(initializer=saved, **CW_OPTIONS)
    second = _run_steps(sess, net, GRADIENTS)
  _assert_steps_close(second, first)


def test_kernel_lstm_updates_each_channel_pair_as_one_row(sess, ref):
  kernel = np.random.RandomState(1).normal(size=[3, 3, 2, 4]).astype(
      np.float32)
  values = ref.random_checkpoint(2, 9, (4,), 9)
  net = networks.KernelDeepLSTM([3, 3], layers=(4,), initializer=values)
  (output,), state = _run_steps(sess, net, kernel[None])
  assert output.shape == (3, 3, 2, 4)
  assert state[0][0].shape == (8, 4)  # One LSTM row per (in, out) pair.
  rows = kernel.transpose(2, 3, 0, 1).reshape(8, 9)
  expected, _ = ref.deep_lstm(values, rows, ref.zero_state(8, (4,)))
  expected = expected.reshape(2, 4, 3, 3).transpose(2, 3, 0, 1)
  np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.usefixtures("graph")
def test_kernel_lstm_rejects_wrong_rank():
  net = networks.KernelDeepLSTM([3, 3], layers=(4,))
  with pytest.raises(ValueError, match=r"kernel_shape \[3, 3\]"):
    net.initial_state_for_inputs(tf.zeros([3, 3, 2]))


def test_factory_unknown_net_lists_known_nets():
  with pytest.raises(ValueError, match="Unknown net 'Lstm'") as error:
    networks.factory("Lstm")
  for name in ("StandardDeepLSTM", "CoordinateWiseDeepLSTM", "KernelDeepLSTM",
               "Sgd", "Adam"):
    assert name in str(error.value)


def test_factory_bad_options_names_the_net():
  with pytest.raises(ValueError, match="do not fit Sgd"):
    networks.factory("Sgd", {"layers": (3,)})


@pytest.mark.parametrize("net, options, message", [
    ("Sgd", {"learning_rate": "fast"},
     "Sgd learning_rate must be a finite number >= 0, got 'fast'"),
    ("Sgd", {"learning_rate": float("nan")},
     "Sgd learning_rate must be a finite number >= 0, got nan"),
    ("Adam", {"learning_rate": -1.0}, "Adam learning_rate must be >= 0"),
    ("Adam", {"beta1": 1}, "Adam beta1 must be < 1, got 1"),
    ("Adam", {"beta2": "x"}, "Adam beta2 must be a finite number >= 0"),
    ("Adam", {"epsilon": float("inf")},
     "Adam epsilon must be a finite number >= 0, got inf"),
    ("AdaptiveStepLSTM", {"step_change": float("nan")},
     "AdaptiveStepLSTM step_change must be a finite number, got nan"),
    ("AdaptiveStepLSTM", {"horizon": "long"},
     "AdaptiveStepLSTM horizon must be a finite number, got 'long'"),
])
def test_factory_refuses_an_option_of_no_use_in_one_line(graph, net, options,
                                                          message):
  # Before, a text value or an integer beta failed inside TensorFlow, and a
  # NaN rate gave NaN steps.
  del graph  # The fresh default graph.
  with pytest.raises(ValueError, match=message):
    networks.factory(net, options)


def test_adam_net_takes_integer_rates(sess):
  # An integer beta once made tf.pow fail on int32 against float32.
  net = networks.factory("Adam", {"learning_rate": 1, "beta1": 0,
                                  "beta2": 0, "epsilon": 0})
  gradient = tf.constant([2.0, -4.0])
  update, _ = net(gradient, net.initial_state_for_inputs(gradient))
  # With no memory, Adam's first step is -lr * g / |g|.
  np.testing.assert_allclose(sess.run(update), [-1.0, 1.0])


def test_factory_builds_configured_net(sess):
  net = networks.factory("Sgd", {"learning_rate": 0.25})
  update, _ = net(tf.constant([2.0, -4.0]), ())
  np.testing.assert_array_equal(sess.run(update), [-0.5, 1.0])


@pytest.mark.usefixtures("graph")
def test_checkpoint_of_wrong_shape_names_variable_and_file(ref, tmp_path):
  # Input width 1, where LogAndSign gives the first LSTM 2 inputs.
  values = ref.random_checkpoint(0, 1, LAYERS, 1)
  path = l2l_file.save(values, tmp_path / "cw.l2l")
  net = networks.factory("CoordinateWiseDeepLSTM", CW_OPTIONS, net_path=path)
  gradient = tf.zeros([4])
  with pytest.raises(ValueError) as error:
    net(gradient, net.initial_state_for_inputs(gradient))
  message = str(error.value)
  assert "lstm_1/w_gates" in message
  assert path in message
  assert "[4, 12]" in message and "[5, 12]" in message


@pytest.mark.usefixtures("graph")
@pytest.mark.parametrize("edit, match", [
    (lambda values: values.pop("lstm_2"), "expected modules"),
    (lambda values: values.update(extra={"w": np.zeros(1)}),
     r"unexpected modules \['extra'\]"),
    (lambda values: values["linear"].pop("b"), "expected modules"),
])
def test_checkpoint_with_other_modules_is_refused(ref, tmp_path, edit, match):
  values = _cw_checkpoint(ref)
  edit(values)
  path = l2l_file.save(values, tmp_path / "cw.l2l")
  with pytest.raises(ValueError, match=match) as error:
    networks.factory("CoordinateWiseDeepLSTM", CW_OPTIONS, net_path=path)
  assert path in str(error.value)
  assert "CoordinateWiseDeepLSTM" in str(error.value)


def test_unknown_preprocess_is_refused():
  with pytest.raises(ValueError, match="Unknown preprocess_name 'Log'"):
    networks.CoordinateWiseDeepLSTM(layers=(2,), preprocess_name="Log")
  for name in ("Variable", "_api", 3):
    with pytest.raises(ValueError, match="Unknown preprocess_name"):
      networks.CoordinateWiseDeepLSTM(layers=(2,), preprocess_name=name)


def test_a_tensorflow_function_preprocesses_as_deepminds_did(sess):
  # DeepMind's rule: a name preprocess.py lacks is TensorFlow's function.
  # Options are ignored, as DeepMind's: a LogAndSign config switched to a
  # function may keep its k.
  tanh = networks.CoordinateWiseDeepLSTM(
      layers=(3,), preprocess_name="tanh", preprocess_options={"k": 5},
      initializer={"linear": {
          "w": np.full([3, 1], 0.5, np.float32)}})
  identity = networks.CoordinateWiseDeepLSTM(
      layers=(3,), preprocess_name="identity", initializer={"linear": {
          "w": np.full([3, 1], 0.5, np.float32)}})
  gradient = tf.constant([0.5, -1.0, 2.0])
  outputs = []
  for net, inputs in ((tanh, gradient), (identity, tf.tanh(gradient))):
    update, _ = net(inputs, net.initial_state_for_inputs(gradient))
    outputs.append(update)
  sess.run(tf.compat.v1.global_variables_initializer())
  # Copy the LSTM weights across: then tanh(g) through identity equals g
  # through tanh.
  for source, target in zip(tanh.trainable_variables,
                            identity.trainable_variables):
    sess.run(target.assign(source))
  first, second = sess.run(outputs)
  assert np.abs(first).max() > 1e-3
  np.testing.assert_allclose(first, second, rtol=1e-6)


@pytest.mark.parametrize("name", ["constant", "variance_scaling",
                                  "uniform_unit_scaling"])
def test_any_tensorflow_initializer_name_works_as_deepminds(sess, name):
  net = networks.CoordinateWiseDeepLSTM(layers=(3,), initializer=name)
  gradient = tf.constant([1.0])
  net(gradient, net.initial_state_for_inputs(gradient))
  sess.run(tf.compat.v1.global_variables_initializer())
  w_gates = sess.run(net.checkpoint_variables())["lstm_1"]["w_gates"]
  assert w_gates.shape == (4, 12)
  # constant's default is 0; the scaled ones draw nonzero weights.
  assert np.all(w_gates == 0) == (name == "constant")
  with pytest.raises(ValueError, match="Unknown initializer 'nope'.*"
                     "tf.compat.v1.N_initializer"):
    networks.CoordinateWiseDeepLSTM(layers=(3,), initializer="nope")(
        gradient, net.initial_state_for_inputs(gradient))


def test_zeros_initializer_gives_zero_updates(sess):
  net = networks.CoordinateWiseDeepLSTM(layers=(3,), initializer="zeros")
  (update,), _ = _run_steps(sess, net, GRADIENTS[:1])
  np.testing.assert_array_equal(update, np.zeros([2, 3]))


def test_coordinatewise_lstm_steps_a_variable_with_no_elements(sess):
  """An empty variable (a [0, 3] embedding, say) gets an empty update."""
  net = networks.CoordinateWiseDeepLSTM(**CW_OPTIONS)
  (update,), state = _run_steps(sess, net, np.zeros([1, 0, 3], np.float32))
  assert update.shape == (0, 3)
  assert [part.shape for layer in state for part in layer] == [
      (0, size) for size in LAYERS for _ in range(2)]


@pytest.mark.parametrize("style", ["dill", "python2"])
def test_legacy_pickles_match_sonnet1_formula(sess, ref, tmp_path, style):
  # The byte-level stream builders of the checkpoint tests write files as
  # DeepMind's (Python 2) and LOIS's (dill) code did.
  import test_l2l_file  # pylint: disable=g-import-not-at-top
  values = _cw_checkpoint(ref, seed=3)
  stream = test_l2l_file.legacy_checkpoint_stream(values, style)
  path = tmp_path / "cw.l2l"
  path.write_bytes(stream)
  net = networks.factory("CoordinateWiseDeepLSTM", CW_OPTIONS,
                         net_path=str(path))
  actual = _run_steps(sess, net, GRADIENTS)
  assert "dill" not in sys.modules
  _assert_steps_close(actual, _reference_steps(ref, values, GRADIENTS))


@pytest.mark.parametrize("net_options, message", [
    (5, "net_options must be a dict"),
    ([("layers", (2,)), 3], "net_options must be a dict"),
    ({"layers": "ab"}, "layers must be a sequence of hidden sizes"),
    ({"layers": (20, 0)}, r"layers must hold integers >= 1"),
    ({"layers": (2.5,)}, r"layers must hold integers >= 1"),
    ({"layers": (2,), "scale": float("nan")},
     r"CoordinateWiseDeepLSTM scale must be a finite number, got nan\."),
    ({"layers": (2,), "scale": "big"},
     r"CoordinateWiseDeepLSTM scale must be a finite number, got 'big'\."),
])
def test_factory_names_a_bad_argument(graph, net_options, message):
  del graph
  with pytest.raises(ValueError, match=message):
    networks.factory("CoordinateWiseDeepLSTM", net_options)


def test_factory_refuses_empty_and_non_float_checkpoints(tmp_path, graph):
  del graph
  empty = str(tmp_path / "empty.l2l")
  l2l_file.save({}, empty)
  with pytest.raises(ValueError, match="is empty: it holds no parameters"):
    networks.factory("CoordinateWiseDeepLSTM", {"layers": ()}, empty)
  # A net without parameters still takes its empty file.
  assert networks.factory("Adam", net_path=empty) is not None
  integer = str(tmp_path / "integer.l2l")
  l2l_file.save({"linear": {"w": np.ones((2, 1), np.int64),
                            "b": np.zeros(1, np.float32)}}, integer)
  with pytest.raises(l2l_file.CheckpointError,
                     match="parameter linear/w is int64, expected floating"):
    networks.factory("CoordinateWiseDeepLSTM", {"layers": ()}, integer)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_factory_refuses_a_checkpoint_of_non_finite_weights(tmp_path, graph,
                                                            bad):
  # Loaded, one such weight turns every variable the net steps into NaN.
  del graph
  path = str(tmp_path / "damaged.l2l")
  w = np.ones((2, 1), np.float32)
  w[1, 0] = bad
  l2l_file.save({"linear": {"w": w, "b": np.zeros(1, np.float32)}}, path)
  with pytest.raises(l2l_file.CheckpointError,
                     match=r"damaged.l2l: parameter linear/w holds 1 NaN or "
                     r"infinite value\(s\) of 2, expected finite weights"):
    networks.factory("CoordinateWiseDeepLSTM", {"layers": ()}, path)


@pytest.mark.parametrize("initializer", [
    # As DeepMind's tests: a flat dict by variable name (unknown keys are
    # ignored) with a size-1 array, and a nested dict covering one module.
    {"w": tf.compat.v1.zeros_initializer(), "b": np.array([0]), "bad": 3},
    {"linear": {"w": tf.compat.v1.zeros_initializer(), "b": "zeros"}},
])
def test_partial_initializers_in_code(sess, initializer):
  net = networks.CoordinateWiseDeepLSTM(layers=(3,), initializer=initializer)
  gradient = tf.constant([[0.5, -1.0], [2.0, 0.0]])
  update, _ = net(gradient, net.initial_state_for_inputs(gradient))
  sess.run(tf.compat.v1.global_variables_initializer())
  values, out = sess.run([net.checkpoint_variables(), update])
  np.testing.assert_array_equal(out, np.zeros([2, 2]))
  np.testing.assert_array_equal(values["linear"]["w"], np.zeros([3, 1]))
  # The LSTM keeps Sonnet 1's default: truncated normal weights.
  w_gates = values["lstm_1"]["w_gates"]
  assert w_gates.shape == (4, 12) and np.all(w_gates != 0)
  assert np.all(np.abs(w_gates) <= 2 / np.sqrt(4))


@pytest.mark.parametrize("config, random_biases", [
    # DeepMind's nets passed Sonnet 1's LSTM no initializer: its gate
    # biases start as its weights do, truncated normal, stddev
    # 1/sqrt(in + hidden).
    (networks.default_config(), True),
    (networks.library_config(), False),
    ({"net": "AdaptiveStepLSTM", "net_options": {"layers": (20, 20)}}, False),
])
def test_gate_biases_start_as_the_config_says(sess, config, random_biases):
  tf.compat.v1.set_random_seed(0)
  net = networks.factory(**config)
  gradient = tf.zeros([4000])
  update, _ = net(gradient, net.initial_state_for_inputs(gradient))
  sess.run(tf.compat.v1.global_variables_initializer())
  values, steps = sess.run([net.checkpoint_variables(), update])
  biases = np.concatenate([values["lstm_1"]["b_gates"],
                           values["lstm_2"]["b_gates"]])
  if random_biases:
    # lstm_1: 2 LogAndSign inputs + 20 hidden; lstm_2: 20 + 20.
    assert np.abs(values["lstm_1"]["b_gates"]).max() <= 2 / np.sqrt(22)
    assert np.std(biases) == pytest.approx(
        0.88 * np.sqrt((1 / 22 + 1 / 40) / 2), rel=0.2)
  else:
    np.testing.assert_array_equal(biases, 0.0)
  if config["net"] == "CoordinateWiseDeepLSTM":
    # Either way a zero gradient gets a step (LogAndSign's log part is -1),
    # the same for every coordinate.
    assert np.abs(steps).max() > 0 and np.ptp(steps) == 0


def test_size_one_array_fills_the_shape(sess):
  net = networks.CoordinateWiseDeepLSTM(
      layers=(2,), initializer={"lstm_1": {"b_gates": np.array([0.25])}})
  gradient = tf.constant([1.0])
  net(gradient, net.initial_state_for_inputs(gradient))
  sess.run(tf.compat.v1.global_variables_initializer())
  np.testing.assert_array_equal(sess.run(net.checkpoint_variables())[
      "lstm_1"]["b_gates"], np.full([8], 0.25))


@pytest.mark.usefixtures("graph")
def test_initializer_array_of_another_shape_names_the_variable():
  net = networks.CoordinateWiseDeepLSTM(
      layers=(2,), initializer={"linear": {"w": np.zeros([3, 1])}})
  gradient = tf.constant([1.0])
  with pytest.raises(ValueError, match=r"linear/w has shape \[3, 1\] but the "
                     r"variable has shape \[2, 1\]"):
    net(gradient, net.initial_state_for_inputs(gradient))


@pytest.mark.usefixtures("graph")
def test_empty_checkpoint_file_is_refused(tmp_path):
  path = l2l_file.save({}, tmp_path / "cw.l2l")
  with pytest.raises(ValueError, match="is empty") as error:
    networks.factory("CoordinateWiseDeepLSTM", CW_OPTIONS, net_path=path)
  assert path in str(error.value)


# AdaptiveStepLSTM: its numpy re-statement (the formula in its docstring).
ADAPTIVE_DECAYS = (0.5, 0.9, 0.99)


def _adaptive_reference(ref, values, gradients, layers, initial_step=0.01,
                        step_change=0.3, correction=0.1, min_step=1e-6,
                        max_step=10.0, hyper_rate=0.0, horizon=None):
  """AdaptiveStepLSTM's updates on `gradients`, in numpy (float64)."""
  rows = gradients[0].size
  lstm_state = ref.zero_state(rows, layers)
  momenta = [np.zeros([rows, 1]) for _ in ADAPTIVE_DECAYS]
  second = np.zeros([rows, 1])
  log_step = np.full([rows, 1], np.log(initial_step))
  last_update = np.zeros([rows, 1])
  updates = []
  for t, gradient in enumerate(gradients, start=1):
    g = gradient.reshape(-1, 1).astype(np.float64)
    momenta = [b * m + (1 - b) * g for b, m in zip(ADAPTIVE_DECAYS, momenta)]
    second = 0.999 * second + 0.001 * g**2
    rms = np.sqrt(second / (1 - 0.999**t)) + 1e-8
    normalised = [g / rms] + [m / (1 - b**t) / rms
                              for b, m in zip(ADAPTIVE_DECAYS, momenta)]
    features = [np.clip(np.concatenate(normalised, 1), -10, 10),
                (log_step - np.log(initial_step)) / np.log(10)]
    agreement = -g * last_update
    rho = agreement.sum() / np.abs(agreement).sum() if agreement.any() else 0
    if hyper_rate:
      features.append(np.full([rows, 1], rho))
    output, lstm_state = ref.deep_lstm(
        values, np.concatenate(features, 1), lstm_state)
    fade = 1.0 if horizon is None else min(1.0, horizon / t)
    log_step = np.clip(
        log_step + step_change * np.tanh(output[:, 1:]) * fade**2 +
        hyper_rate * rho * fade, np.log(min_step), np.log(max_step))
    direction = normalised[2] + correction * output[:, :1] * fade**2
    step = np.exp(log_step + values["step_size"]["log_scale"])
    last_update = -step * direction
    updates.append(last_update.reshape(gradient.shape))
  return np.array(updates), log_step


def _adaptive_checkpoint(ref, log_scale=0.3, seed=0, inputs=5):
  values = ref.random_checkpoint(seed, inputs, LAYERS, 2)
  values["step_size"] = {"log_scale": np.float32(log_scale)}
  return values


def test_untrained_adaptive_net_is_adam_at_its_initial_step(sess, ref):
  gradients = np.stack([GRADIENTS[0], GRADIENTS[1], -GRADIENTS[0]])
  net = networks.factory("AdaptiveStepLSTM",
                         {"layers": LAYERS, "initial_step": 0.05})
  updates, _ = _run_steps(sess, net, gradients)
  positions = ref.adam(lambda x, t: gradients[t], np.zeros([2, 3]), 3,
                       learning_rate=0.05)
  np.testing.assert_allclose(updates, np.diff(positions, axis=0), rtol=3e-5,
                             atol=1e-9)


def test_adaptive_net_matches_its_formula_from_a_checkpoint(sess, ref,
                                                           tmp_path):
  values = _adaptive_checkpoint(ref)
  l2l_file.save(values, str(tmp_path / "cw.l2l"))
  options = {"layers": LAYERS, "step_change": 0.2, "max_step": 0.5}
  net = networks.factory("AdaptiveStepLSTM", options,
                         net_path=str(tmp_path / "cw.l2l"))
  gradients = np.stack([GRADIENTS[0], GRADIENTS[1], 3 * GRADIENTS[0]])
  updates, state = _run_steps(sess, net, gradients)
  expected, log_step = _adaptive_reference(
      ref, values, gradients, LAYERS, step_change=0.2, max_step=0.5)
  np.testing.assert_allclose(updates, expected, rtol=2e-5, atol=1e-8)
  np.testing.assert_allclose(state[1][-1], log_step, rtol=1e-6)
  assert state[2] == 3.0
  # The checkpoint's step moved the steps: none is Adam's any more.
  adam = np.diff(ref.adam(lambda x, t: gradients[t], np.zeros([2, 3]), 3,
                          learning_rate=0.01), axis=0)
  assert np.abs(updates - adam).min() > 1e-4


def test_adaptive_step_size_grows_geometrically_up_to_its_bound(sess, ref):
  # A large output bias: tanh(s) = 1, so every step multiplies the step
  # size by exp(step_change) until max_step holds it.
  values = _adaptive_checkpoint(ref, log_scale=0.0)
  values["linear"]["b"] = np.array([0.0, 50.0], np.float32)
  values["linear"]["w"] = np.zeros_like(values["linear"]["w"])
  net = networks.AdaptiveStepLSTM(layers=LAYERS, step_change=0.5,
                                  initial_step=0.1, max_step=0.5,
                                  initializer=values)
  gradients = np.ones([5, 2, 3], np.float32)
  updates, state = _run_steps(sess, net, gradients)
  # A constant gradient: Adam's direction is 1 at every step.
  np.testing.assert_allclose(
      -np.array(updates)[:, 0, 0],
      [0.1 * np.exp(0.5), 0.1 * np.exp(1.0), 0.1 * np.exp(1.5), 0.5, 0.5],
      rtol=5e-5)
  np.testing.assert_allclose(state[1][-1], np.log(0.5), rtol=1e-6)


def test_adaptive_net_checkpoints_must_hold_the_step_size(ref, tmp_path):
  values = ref.random_checkpoint(0, 5, LAYERS, 2)
  l2l_file.save(values, str(tmp_path / "cw.l2l"))
  with tf.Graph().as_default(), pytest.raises(ValueError,
                                              match="step_size"):
    networks.factory("AdaptiveStepLSTM", {"layers": LAYERS},
                     net_path=str(tmp_path / "cw.l2l"))


def test_adaptive_net_saves_and_restores_its_step_size(fresh_session,
                                                       tmp_path):
  with fresh_session() as sess:
    net = networks.AdaptiveStepLSTM(layers=LAYERS,
                                    initializer={"log_scale": 0.7})
    gradient = tf.constant(GRADIENTS[0])
    net(gradient, net.initial_state_for_inputs(gradient))
    sess.run(tf.compat.v1.global_variables_initializer())
    saved = networks.save(net, sess, str(tmp_path / "cw.l2l"))
  assert saved["step_size"]["log_scale"] == pytest.approx(0.7)
  assert sorted(saved) == ["linear", "lstm_1", "lstm_2", "step_size"]
  assert not saved["linear"]["w"].any()


@pytest.mark.parametrize("options", [
    {"initial_step": 20.0}, {"min_step": 0.0}, {"initial_step": 1e-7}])
def test_adaptive_net_refuses_bounds_that_miss_its_initial_step(options):
  with tf.Graph().as_default(), pytest.raises(
      ValueError, match="0 < min_step <= initial_step <= max_step"):
    networks.AdaptiveStepLSTM(**options)


def test_hypergradient_moves_the_untrained_nets_step_by_the_agreement(sess,
                                                                      ref):
  # Adam's first step is -0.01 * sign(g) = [-0.01, -0.01, 0]. The second
  # gradient [2, -1, 0]: sum(-g * u) = 0.02 - 0.01 = 0.01 over
  # sum |g * u| = 0.03, so rho = 1/3, and the coordinate without gradient
  # (a masked unit of the family) neither counts nor dilutes it.
  net = networks.AdaptiveStepLSTM(layers=LAYERS, hyper_rate=0.6)
  gradients = np.array([[[1.0, 1.0, 0.0]], [[2.0, -1.0, 0.0]],
                        [[2.0, -1.0, 0.0]]], np.float32)
  updates, state = _run_steps(sess, net, gradients)
  adam = np.diff(ref.adam(lambda x, t: gradients[t], np.zeros([1, 3]), 3,
                          learning_rate=1.0), axis=0)
  np.testing.assert_allclose(updates[0], 0.01 * adam[0], rtol=1e-5)
  step_2 = 0.01 * np.exp(0.6 / 3)
  np.testing.assert_allclose(updates[1], step_2 * adam[1], rtol=3e-5)
  # Third step: the second update went down along the repeated gradient in
  # both coordinates ([-, +] against [2, -1]), so rho = 1.
  assert np.sign(adam[1][0, :2]).tolist() == [-1, 1]
  rho_3 = 1.0
  np.testing.assert_allclose(updates[2], step_2 * np.exp(0.6 * rho_3)
                             * adam[2], rtol=3e-5)
  np.testing.assert_allclose(state[1][4], np.full(
      [3, 1], np.log(0.01) + 0.6 / 3 + 0.6 * rho_3), rtol=1e-6)
  # The last update is kept for the next step's agreement.
  np.testing.assert_allclose(state[1][5].ravel(), updates[2].ravel(),
                             rtol=1e-6)


def test_hypergradient_net_matches_its_formula_from_a_checkpoint(sess, ref,
                                                                 tmp_path):
  # The LSTM also sees rho: a sixth input.
  values = _adaptive_checkpoint(ref, inputs=6)
  l2l_file.save(values, str(tmp_path / "cw.l2l"))
  options = {"layers": LAYERS, "hyper_rate": 0.4}
  net = networks.factory("AdaptiveStepLSTM", options,
                         net_path=str(tmp_path / "cw.l2l"))
  gradients = np.stack([GRADIENTS[0], GRADIENTS[1], -GRADIENTS[1],
                        GRADIENTS[0]])
  updates, state = _run_steps(sess, net, gradients)
  expected, log_step = _adaptive_reference(ref, values, gradients, LAYERS,
                                           hyper_rate=0.4)
  np.testing.assert_allclose(updates, expected, rtol=2e-5, atol=1e-8)
  np.testing.assert_allclose(state[1][4], log_step, rtol=1e-6)
  # Without the hypergradient the same weights step otherwise: they do not
  # even fit (five inputs), so a file is tied to its hyper_rate.
  with tf.Graph().as_default(), pytest.raises(ValueError, match="lstm_1"):
    net = networks.factory("AdaptiveStepLSTM", {"layers": LAYERS},
                           net_path=str(tmp_path / "cw.l2l"))
    net(tf.constant(GRADIENTS[0]),
        net.initial_state_for_inputs(tf.constant(GRADIENTS[0])))


def test_horizon_fades_the_lstm_and_the_hypergradient_after_it(
    fresh_session, ref, tmp_path):
  values = _adaptive_checkpoint(ref, inputs=6)
  l2l_file.save(values, str(tmp_path / "cw.l2l"))
  options = {"layers": LAYERS, "hyper_rate": 0.4, "step_change": 0.2}
  gradients = np.stack([GRADIENTS[0], GRADIENTS[1], -GRADIENTS[1],
                        GRADIENTS[0], 2 * GRADIENTS[1]])
  updates = {}
  for horizon in (None, 2):
    with fresh_session() as sess:
      net = networks.factory("AdaptiveStepLSTM",
                             dict(options, horizon=horizon),
                             net_path=str(tmp_path / "cw.l2l"))
      outputs, state = _run_steps(sess, net, gradients)
    updates[horizon] = np.asarray(outputs)
    expected, log_step = _adaptive_reference(
        ref, values, gradients, LAYERS, hyper_rate=0.4, step_change=0.2,
        horizon=horizon)
    np.testing.assert_allclose(updates[horizon], expected, rtol=2e-5,
                               atol=1e-8)
    np.testing.assert_allclose(state[1][4], log_step, rtol=1e-6)
  # Up to the horizon nothing fades; after it the steps part ways.
  np.testing.assert_allclose(updates[2][:2], updates[None][:2], rtol=1e-6)
  assert np.abs(updates[2][2:] - updates[None][2:]).min() > 1e-6


def test_past_its_horizon_the_untrained_net_settles_its_step_sizes(sess):
  # A gradient that never turns: rho = 1 at every step after the first,
  # so each step multiplies the step size by exp(0.5 * min(1, 2 / t)).
  net = networks.AdaptiveStepLSTM(layers=LAYERS, hyper_rate=0.5, horizon=2)
  updates, state = _run_steps(sess, net, np.ones([6, 2, 3], np.float32))
  log_steps = np.log(0.01) + np.cumsum(
      [0.0] + [0.5 * min(1.0, 2.0 / t) for t in range(2, 7)])
  np.testing.assert_allclose(-np.array(updates)[:, 0, 0],
                             np.exp(log_steps), rtol=5e-5)
  np.testing.assert_allclose(state[1][4], np.full([6, 1], log_steps[-1]),
                             rtol=1e-6)


@pytest.mark.parametrize("horizon", [0, -5])
def test_adaptive_net_refuses_a_horizon_that_is_not_positive(horizon):
  with tf.Graph().as_default(), pytest.raises(
      ValueError, match="horizon > 0 .steps. or None, got {}".format(
          horizon)):
    networks.AdaptiveStepLSTM(horizon=horizon)


def test_adaptive_net_refuses_a_negative_hyper_rate():
  with tf.Graph().as_default(), pytest.raises(
      ValueError, match="hyper_rate >= 0, got -0.1"):
    networks.AdaptiveStepLSTM(hyper_rate=-0.1)
