"""Tests for l2l/swarm/lois_released.py: LOIS's released models as they ran.

The files are written in LOIS's format (conftest.write_lois_released: a
dill-free stand-in of `cw.l2l` and a plain pickle of `loss_record.pickle`); the numpy reference
below restates the released code's evaluation step loop by loop.
"""

import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from l2l.checkpoint import l2l_file
from l2l.swarm import lois_released
import problems

from conftest import write_lois_released

K = 4
BATCH = 3
DIMS = 2
HIDDEN = 10


def _softmax(logits, axis):
  shifted = np.exp(logits - np.max(logits, axis=axis, keepdims=True))
  return shifted / np.sum(shifted, axis=axis, keepdims=True)


def _released_step(ref, values, record, x, state, momentum, previous):
  """One step of the released code on Rastrigin rows, in numpy.

  Args:
    x: [k, batch, d] particles.
    state: the LSTM state over k * batch * d coordinates.
    momentum, previous: the fixed noises, [k, batch * d].

  Returns:
    `(x, state)` after the step.
  """
  k = x.shape[0]
  flat = x.reshape(k, -1).astype(np.float64)
  rows = np.sum(x**2 - 10 * np.cos(2 * np.pi * x), -1) + 10 * x.shape[-1]
  f = rows.mean(axis=1)
  grads = ((2 * x + 20 * np.pi * np.sin(2 * np.pi * x)) /
           x.shape[1]).reshape(k, -1)
  # Attention across particles, as its loops wrote it.
  by_gradient = _softmax((grads @ grads.T).T, axis=1)
  products = np.concatenate(
      [flat[i:i + 1] @ (np.tile(flat[i:i + 1], [k, 1]) - flat).T
       for i in range(k)])
  by_position = _softmax((-0.5 * products).T, axis=1)
  attended = grads + (1.0 / k) * (by_gradient @ by_position) @ grads
  # Attraction: x_i - x_r unless r is better, then a softmax pull.
  pulls = []
  for i in range(k):
    d = np.stack([np.zeros_like(flat[i]) if f[i] > f[r] else flat[i] - flat[r]
                  for r in range(k)])
    pulls.append(_softmax(-np.sum(d * d, 1)[None], axis=1) @ d)
  pull = np.concatenate(pulls)
  features = np.concatenate([attended, 0.9 * momentum, flat - flat, pull])
  concat = np.concatenate([features, np.concatenate([previous] * 4)], 1)
  bias = np.tile(record["fc_bias"][0], [1, k])
  hidden = np.tanh(record["fc_weights"][0] @ concat.T + bias)
  scores = record["fc_va"][0] @ hidden
  p = _softmax(scores.reshape(k, -1), axis=1).reshape(4 * k, 1)
  inputs = (p * features).reshape(4, -1).sum(0)
  delta, state = ref.deep_lstm(values, inputs.reshape(-1, 1), state)
  return x + delta.reshape(x.shape), state


def _graph_variable(name):
  (variable,) = [v for v in tf.compat.v1.global_variables()
                 if v.name == name + ":0"]
  return variable


def test_steps_match_the_released_code(tmp_path, ref):
  values, record = write_lois_released(str(tmp_path), BATCH * DIMS)
  problem = problems.square_cos(batch_size=BATCH, num_dims=DIMS, mode="test",
                                init_stddev=0.2)
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    tf.compat.v1.set_random_seed(3)
    swarm = lois_released.build(problem, K, str(tmp_path))
    sess.run(swarm.setup)
    sess.run(swarm.reset)
    noises = sess.run([_graph_variable("lois_released/momentum_noise"),
                       _graph_variable("lois_released/previous_update_noise")])
    seen = [sess.run([swarm.positions, swarm.losses])]
    for _ in range(3):
      sess.run(swarm.step)
      seen.append(sess.run([swarm.positions, swarm.losses]))
  x = seen[0][0].reshape(K, BATCH, DIMS).astype(np.float64)
  assert 0.05 < np.std(x) < 0.5  # Starts N(0, 0.2) in 2-d.
  for noise in noises:
    assert noise.shape == (K, BATCH * DIMS) and 0 < np.std(noise) < 0.03
  state = ref.zero_state(K * BATCH * DIMS, (20, 20))
  for positions, losses in seen[1:]:
    x, state = _released_step(ref, values, record, x, state, *noises)
    np.testing.assert_allclose(positions, x.reshape(K, -1), rtol=1e-4,
                               atol=1e-5)
    rastrigin = np.mean(np.sum(x**2 - 10 * np.cos(2 * np.pi * x), -1) +
                        10 * DIMS, -1)
    np.testing.assert_allclose(losses, rastrigin, rtol=1e-4, atol=1e-5)
  assert np.any(np.abs(seen[-1][0] - seen[0][0]) > 1e-3)


def test_the_step_moves_the_points_only_after_positions_read_them(tmp_path):
  # Run together ([positions, row_losses, step], as evaluation records a
  # swarm), positions must be where the step starts: every assignment of
  # the step waits for the positions' reads.
  write_lois_released(str(tmp_path), BATCH * DIMS)
  problem = problems.square_cos(batch_size=BATCH, num_dims=DIMS, mode="test")
  with tf.Graph().as_default():
    swarm = lois_released.build(problem, K, str(tmp_path))
    assigns = []
    pending = list(swarm.step.control_inputs)
    while pending:
      op = pending.pop()
      if op.type == "NoOp":
        pending.extend(op.control_inputs)
      elif op not in (swarm.positions.op, swarm.row_losses.op):
        assigns.append(op)
    assert len(assigns) == 1 + 2 * 2  # The points; each LSTM layer's c, h.
    for op in assigns:
      assert op.type == "AssignVariableOp", op.type
      assert swarm.positions.op in op.control_inputs, op.name
      assert swarm.row_losses.op in op.control_inputs, op.name


def test_reset_redraws_particles_but_keeps_the_noise(tmp_path):
  write_lois_released(str(tmp_path), BATCH * DIMS)
  problem = problems.square_cos(batch_size=BATCH, num_dims=DIMS, mode="test")
  with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
    swarm = lois_released.build(problem, K, str(tmp_path))
    noise = _graph_variable("lois_released/momentum_noise")
    sess.run(swarm.setup)
    sess.run(swarm.reset)
    first, noise_before = sess.run([swarm.positions, noise])
    sess.run(swarm.step)
    sess.run(swarm.reset)
    second, noise_after = sess.run([swarm.positions, noise])
  assert not np.allclose(first, second)
  np.testing.assert_array_equal(noise_before, noise_after)


def test_released_directory_is_recognised(tmp_path):
  assert not lois_released.is_released_model(None)
  assert not lois_released.is_released_model(str(tmp_path))
  write_lois_released(str(tmp_path), 4)
  assert lois_released.is_released_model(str(tmp_path))
  # A directory this library wrote has its own attention checkpoint.
  l2l_file.save({"feature_attention": {"w": np.zeros([10, 2])}},
                tmp_path / "attention.l2l")
  assert not lois_released.is_released_model(str(tmp_path))


@pytest.mark.usefixtures("graph")
def test_attention_sized_for_another_batch_is_refused(tmp_path):
  write_lois_released(str(tmp_path), 128 * DIMS)
  problem = problems.square_cos(batch_size=BATCH, num_dims=DIMS, mode="test")
  with pytest.raises(ValueError, match=r"fc_weights has shape \[10, 512\] "
                     r"but this problem needs \[10, 12\]") as error:
    lois_released.build(problem, K, str(tmp_path))
  assert "loss_record.pickle" in str(error.value)


@pytest.mark.usefixtures("graph")
def test_record_without_weights_is_refused(tmp_path):
  write_lois_released(str(tmp_path), 4)
  with open(tmp_path / "loss_record.pickle", "wb") as stream:
    pickle.dump({"loss_record": [1.0]}, stream)
  with pytest.raises(ValueError, match="has no fc_weights, fc_bias, fc_va"):
    lois_released.load_attention(str(tmp_path), [4])


class _Exploit:

  def __reduce__(self):
    return (os.system, ("echo unsafe",))


def test_record_is_read_through_the_restricted_unpickler(tmp_path):
  path = tmp_path / "loss_record.pickle"
  with open(path, "wb") as stream:
    pickle.dump({"fc_weights": [_Exploit()]}, stream)
  with pytest.raises(l2l_file.CheckpointError, match="refused"):
    l2l_file.load_record(path)
