"""Tests for update_rule.py: a saved optimizer's nets and assignment rule."""

import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import save_after_first_call
from conftest import write_lois_released
from l2l import files
from l2l.checkpoint import l2l_file
from l2l.checkpoint import manifest
from l2l.dropin import update_rule
import networks


def test_a_learning_rate_is_refused_naming_the_argument():
  update_rule.refuse_learning_rate({}, "LearnedOptimizer")
  for name in ("learning_rate", "lr"):
    with pytest.raises(ValueError, match=name + "=0.1 is not accepted"):
      update_rule.refuse_learning_rate({name: 0.1}, "LearnedOptimizer")


def _save_default_net(directory, seed):
  """Saves the default net, with weights of graph seed `seed`, as cw.l2l."""
  with tf.Graph().as_default():
    if seed is not None:
      tf.compat.v1.set_random_seed(seed)
    net = networks.factory(**networks.default_config())
    net(tf.zeros([3]), net.initial_state_for_inputs(tf.zeros([3]),
                                                    dtype=tf.float32))
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      networks.save(net, sess, str(directory / "cw.l2l"))


def test_a_directory_without_manifest_holds_the_default_net(tmp_path):
  _save_default_net(tmp_path, seed=None)
  rule = update_rule.UpdateRule.from_path(str(tmp_path))
  assert sorted(rule.net_configs) == ["cw"]
  variables = [tf.Variable(np.zeros([2, 3], np.float32), name="kernel"),
               tf.Variable(np.zeros([3], np.float32), name="bias")]
  assert rule.net_ids(variables) == ["cw", "cw"]


def test_a_missing_directory_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="is not a directory"):
    update_rule.UpdateRule.from_path(str(tmp_path / "missing"))
  with pytest.raises(ValueError, match="must be the directory of a saved "
                     "optimizer.*got None"):
    update_rule.UpdateRule.from_path(None)


def test_an_empty_path_is_refused_and_a_home_path_expanded(tmp_path,
                                                           monkeypatch):
  # "" would otherwise be the working directory, whatever optimizer it holds.
  _save_default_net(tmp_path, seed=None)
  monkeypatch.chdir(tmp_path)
  with pytest.raises(ValueError, match="must be the directory of a saved "
                     "optimizer.*got ''"):
    update_rule.UpdateRule.from_path("")
  # "~/" as the commands' path flags take it. (The cache stays where it
  # is, or a process without a kernel yet would build one under this home.)
  monkeypatch.setenv(files.CACHE_ENV_VAR,
                     os.path.dirname(files.cache_dir()))
  monkeypatch.setenv("HOME", str(tmp_path.parent))
  rule = update_rule.UpdateRule.from_path("~/" + tmp_path.name)
  assert rule.source == str(tmp_path)


def test_a_swarm_without_its_manifest_is_refused_by_its_attention(tmp_path):
  _save_default_net(tmp_path, seed=None)
  (tmp_path / "attention.l2l").write_bytes((tmp_path / "cw.l2l").read_bytes())
  with pytest.raises(ValueError, match=r"\(it holds the swarm's attention, "
                     r"attention.l2l\) is a LOIS swarm optimizer"):
    update_rule.UpdateRule.from_path(tmp_path)


def _apply_default_net(rule, gradient):
  """The first update of the rule's `cw` net on `gradient`, in a new graph."""
  with tf.Graph().as_default():
    net = rule.make_nets()["cw"]
    inputs = tf.constant(gradient)
    delta, _ = net(inputs, net.initial_state_for_inputs(inputs,
                                                        dtype=tf.float32))
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      return sess.run(delta)


def test_a_rule_survives_a_json_round_trip_of_its_config(tmp_path,
                                                         monkeypatch):
  _save_default_net(tmp_path, seed=3)
  # Given relative, the source is kept absolute: a saved Keras model
  # carries it to other directories and machines.
  monkeypatch.chdir(tmp_path.parent)
  rule = update_rule.UpdateRule.from_path(tmp_path.name)
  config = json.loads(json.dumps(rule.to_config()))
  (tmp_path / "cw.l2l").unlink()  # The config carries the weights.
  copy = update_rule.UpdateRule.from_config(config)
  assert copy.assignment_rule == rule.assignment_rule
  assert copy.source == str(tmp_path)
  weights = config["nets"]["cw"]["weights"]
  assert sum(np.prod(v["shape"]) for module in weights.values()
             for v in module.values()) > 100
  gradient = np.array([0.3, -2.0, 1e-4], np.float32)
  first = _apply_default_net(copy, gradient)
  assert np.abs(first).max() > 0
  # Weights of another seed give another step: the config's weights count.
  _save_default_net(tmp_path, seed=4)
  other = update_rule.UpdateRule.from_path(str(tmp_path))
  assert np.abs(_apply_default_net(other, gradient) - first).max() > 1e-6
  np.testing.assert_array_equal(
      _apply_default_net(update_rule.UpdateRule.from_config(config),
                         gradient), first)


@pytest.mark.parametrize("config, message", [
    ({"nets": {}, "source": "x"}, "config: 'assignment' is missing"),
    ({"nets": [], "assignment": [], "source": "x"}, "config: "),
])
def test_a_malformed_config_is_a_clear_error(config, message):
  with pytest.raises(ValueError, match="Not a learned optimizer's update rule "
                     + message):
    update_rule.UpdateRule.from_config(config)


def test_an_untrained_rule_draws_its_weights_once(tmp_path):
  # A net configured without weights draws them when the rule is made:
  # every graph, and a model saved with the rule, then has the same ones.
  gradient = np.linspace(-1, 1, 6).astype(np.float32)
  rules = []
  for _ in range(2):
    with tf.Graph().as_default():
      tf.compat.v1.set_random_seed(3)
      rules.append(update_rule.UpdateRule(
          {"cw": networks.default_config()},
          [{"net": "cw", "match": "everything"}]))
  first = _apply_default_net(rules[0], gradient)
  assert np.any(first != 0)
  np.testing.assert_array_equal(_apply_default_net(rules[0], gradient), first)
  # The caller's seed decides the draw.
  np.testing.assert_array_equal(_apply_default_net(rules[1], gradient), first)
  config = json.loads(json.dumps(rules[0].to_config()))
  assert config["nets"]["cw"]["weights"]
  np.testing.assert_array_equal(_apply_default_net(
      update_rule.UpdateRule.from_config(config), gradient), first)


def test_a_rule_keeps_the_weights_it_was_made_with(tmp_path):
  _save_default_net(tmp_path, seed=3)
  rule = update_rule.UpdateRule.from_path(str(tmp_path))
  gradient = np.array([0.3, -2.0, 1e-4], np.float32)
  first = _apply_default_net(rule, gradient)
  config = rule.to_config()
  # The directory is retrained (other weights) after the rule was made: the
  # rule, its config and what it steps stay as they were.
  _save_default_net(tmp_path, seed=4)
  assert rule.to_config() == config
  np.testing.assert_array_equal(_apply_default_net(rule, gradient), first)
  (tmp_path / "cw.l2l").unlink()
  assert rule.to_config() == config


def _write_garbage(path):
  path.write_bytes(b"not a pickle")


@pytest.mark.parametrize("damage, message", [
    (_write_garbage, "cw.l2l"),
    # A net of another size: one hidden layer of 5.
    (lambda path: path.write_bytes(_other_net_bytes(path)), "cw.l2l"),
    # The same names, other shapes: found when the net's variables are
    # made, which the rule does at once.
    (lambda path: path.write_bytes(_other_net_bytes(path, layers=(10, 10))),
     r"lstm_1/w_gates.*shape \[11, 40\].*needs shape \[22, 80\]"),
], ids=["garbage", "another_net", "other_shapes"])
def test_a_bad_file_is_refused_when_the_rule_is_made(tmp_path, damage,
                                                     message):
  _save_default_net(tmp_path, seed=3)
  damage(tmp_path / "cw.l2l")
  with pytest.raises(ValueError, match=message) as raised:
    update_rule.UpdateRule.from_path(str(tmp_path))
  # No manifest here: a net that does not fit is told how it was read; a
  # file that is no checkpoint needs no such word.
  assert ("There is no manifest.json" in str(raised.value)) == (
      damage is not _write_garbage)


def _other_net_bytes(path, net="CoordinateWiseDeepLSTM", **options):
  """The bytes of a `net` file, by default one hidden layer of 5."""
  options.setdefault("layers", (5,))
  other = path.parent / "other.l2l"
  _save_net(other, net, options)
  return other.read_bytes()


def _save_net(path, net, options):
  """Saves a `net` with `options` and random weights into `path`."""
  with tf.Graph().as_default():
    made = networks.factory(net, options)
    inputs = tf.zeros(made.example_shape())
    made(inputs, made.initial_state_for_inputs(inputs, dtype=tf.float32))
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      networks.save(made, sess, str(path))


def test_a_kernel_net_file_is_checked_when_the_rule_is_made(tmp_path):
  # The rule builds each net on a variable it can update: for a kernel net,
  # a kernel of its shape.
  kernel = {"kernel_shape": [3, 3], "layers": (4,)}
  _save_net(tmp_path / "k.l2l", "KernelDeepLSTM", kernel)
  rule = [{"net": "k", "match": "everything"}]
  made = update_rule.UpdateRule(
      {"k": {"net": "KernelDeepLSTM", "net_options": kernel,
             "net_path": str(tmp_path / "k.l2l")}}, rule)
  with tf.Graph().as_default():
    net = made.make_nets()["k"]
    state = update_rule.initial_state(net, tf.zeros([3, 3, 2, 5]))
    assert [h.shape.as_list() for h, _ in state] == [[10, 4]]
  with pytest.raises(ValueError, match=r"lstm_1/w_gates.*shape \[13, 16\] but "
                     r"this network needs shape \[15, 24\]"):
    update_rule.UpdateRule(
        {"k": {"net": "KernelDeepLSTM",
               "net_options": dict(kernel, layers=(6,)),
               "net_path": str(tmp_path / "k.l2l")}}, rule)


def test_a_name_rule_reads_keras_variables_by_their_path(tmp_path):
  _save_default_net(tmp_path, seed=3)
  net = update_rule.UpdateRule.from_path(str(tmp_path)).net_configs["cw"]
  rule = update_rule.UpdateRule({"cw": net, "head": net}, [
      {"net": "cw", "match": "pattern", "pattern": "^encoder/"},
      {"net": "head", "match": "pattern", "pattern": "^head/"}])
  layers = [keras.layers.Dense(3, name="encoder"),
            keras.layers.Dense(2, name="head")]
  layers[0].build((None, 4))
  layers[1].build((None, 3))
  variables = layers[0].weights + layers[1].weights
  # Keras 3's own names are "kernel" and "bias" for both layers.
  assert {v.name for v in variables} == {"kernel", "bias"}
  assert rule.net_ids(variables) == ["cw", "cw", "head", "head"]


def test_lois_released_swarm_model_is_refused_not_read_as_one_point(tmp_path):
  # Its cw.l2l has the default net's layout and there is no manifest: only
  # the attention record says it is a swarm's.
  write_lois_released(str(tmp_path), 128 * 2)
  with pytest.raises(ValueError, match=r"\(LOIS's released model\) is a LOIS "
                     "swarm optimizer"):
    update_rule.UpdateRule.from_path(tmp_path)
  # Without the record it is read as the default net, which its LSTM (one
  # input feature, not LogAndSign's two) does not fit.
  (tmp_path / "loss_record.pickle").unlink()
  with pytest.raises(ValueError, match=r"lstm_1/w_gates in .*cw.l2l has shape "
                     r"\[21, 80\] but this network needs shape \[22, 80\].* "
                     r"\(There is no manifest.json in .*, so it was read as "
                     r"DeepMind's default net"):
    update_rule.UpdateRule.from_path(tmp_path)


def test_a_rule_read_while_a_run_saves_is_read_again(saved_and_later_save,
                                                     monkeypatch, caplog):
  live, late = saved_and_later_save
  # The nets' files, then the manifest, are replaced before the rule reads
  # the nets' weights.
  reads = save_after_first_call(monkeypatch, manifest, "net_configs", late,
                                live)
  with caplog.at_level(logging.WARNING):
    rule = update_rule.UpdateRule.from_path(str(live))
  assert len(reads) == 2 and "was saved into while it was read" in caplog.text
  assert manifest.read(str(live))["training"]["epochs_done"] == 6
  wanted = l2l_file.load(late / "cw.l2l")
  got = rule.net_configs["cw"]["net_options"]["initializer"]
  for module, values in wanted.items():
    for name, value in values.items():
      np.testing.assert_array_equal(got[module][name], value)
