"""Tests of l2l/dropin/learned_optimizer.py: the graph-mode drop-in."""

import numpy as np
import pytest
import sonnet as snt
import tensorflow as tf

import l2l
from l2l.checkpoint import manifest
from l2l.dropin import learned_optimizer
from l2l.experiment import training
import meta
import problems
import util

from conftest import assert_a_path_or_a_rate_is_refused
from conftest import save_matrices_only_sgd
from conftest import save_x0_only_sgd
from conftest import SMALL_FAMILY


def _unroll_trajectory(sess, problem, len_unroll, num_unrolls,
                       net_config=None):
  """Builds DeepMind's unroll and runs it; returns (optimizer, values).

  Returns the MetaOptimizer (of `net_config`, else the default), the losses
  of every step of `num_unrolls` consecutive unrolls (the point each step
  starts from, then the final one), and the problem's starting variable
  values by name.
  """
  optimizer = meta.MetaOptimizer(**(net_config or {}))
  info = optimizer.meta_loss(problem, len_unroll)
  sess.run(tf.compat.v1.global_variables_initializer())
  start = {v.op.name: sess.run(v) for v in tf.compat.v1.global_variables()
           if v.op.name.startswith(("x", "w", "y"))}
  losses = []
  for _ in range(num_unrolls):
    history, _ = sess.run([optimizer.fx_history, info.update])
    losses.extend(history[:-1])
  losses.append(history[-1])
  return optimizer, np.asarray(losses), start


def _drop_in_losses(fresh_session, problem, optimizer, start, steps):
  """The losses of `steps` drop-in steps from `_unroll_trajectory`'s start.

  Builds the problem in a fresh graph, loads the values the unroll started
  from and returns the loss before each step, then the final one.
  """
  with fresh_session(seed=7) as sess:
    loss = problems.mean_loss(problem())
    train_op = optimizer.minimize(loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    for variable in tf.compat.v1.global_variables():
      if variable.op.name in start:
        variable.load(start[variable.op.name], sess)
    losses = []
    for _ in range(steps):
      losses.append(sess.run(loss))
      sess.run(train_op)
    losses.append(sess.run(loss))
  return losses


def test_reproduces_the_meta_loss_unroll(fresh_session):
  problem = problems.quadratic(batch_size=8, num_dims=5)
  with fresh_session(seed=3) as sess:
    optimizer, expected, start = _unroll_trajectory(sess, problem, 10, 5)
    learned = learned_optimizer.LearnedOptimizer.from_meta_optimizer(
        optimizer, sess)
  losses = _drop_in_losses(fresh_session, problem, learned, start, 50)
  assert len(expected) == 51
  # The trajectory moves, so matching it is not trivial.
  assert abs(expected[-1] - expected[0]) > 1e-3 * abs(expected[0])
  np.testing.assert_allclose(losses, expected, rtol=1e-6, atol=1e-6)


# Both nets a family trains: the adaptive net and DeepMind's LSTM.
@pytest.mark.parametrize("net_option", ["", ",net=cw"])
def test_family_trained_optimizer_drops_in_on_held_out_tasks(fresh_session,
                                                             tmp_path,
                                                             net_option):
  # A few epochs on a small family: what train.py --problem=family saves.
  family = SMALL_FAMILY + net_option
  result = training.train(family, save_path=str(tmp_path),
                          num_epochs=3, evaluation_period=3,
                          evaluation_epochs=1, num_steps=4, unroll_length=2,
                          seed=1, show_progress=False)
  assert result.saved
  assert manifest.read(tmp_path)["problem"] == family
  # quadratic-100 is held out (this family's quadratics are 3-d at most) and
  # draws no minibatch: the drop-in must repeat the saved rule's unroll.
  problem, _, _ = util.get_config("quadratic-100", str(tmp_path))
  # The nets as saved, whatever the held-out problem's own config says.
  net_config = manifest.net_configs(manifest.read(tmp_path), tmp_path)
  with fresh_session(seed=3) as sess:
    _, expected, start = _unroll_trajectory(sess, problem, 10, 3, net_config)
  losses = _drop_in_losses(fresh_session, problem,
                           l2l.LearnedOptimizer.from_path(tmp_path), start, 30)
  np.testing.assert_allclose(losses, expected, rtol=1e-5, atol=1e-6)
  # And it descends: when this was written, from 33.8 to 7.3 in 30 steps
  # (the adaptive net; last ten losses 7.9 on average against 15.9 for the
  # first ten) and to 19.1 (DeepMind's LSTM; 13.4 against 27.9).
  assert losses[-1] < 0.75 * losses[0]
  assert np.mean(losses[-10:]) < 0.75 * np.mean(losses[:10])
  # digits-20-relu, a held-out MLP: the drop-in lowers its loss.
  problem, _, _ = util.get_config("digits-20-relu", str(tmp_path))
  with fresh_session(seed=3) as sess:
    loss = problems.mean_loss(problem())
    train_op = l2l.LearnedOptimizer.from_path(tmp_path).minimize(loss)
    sess.run(tf.compat.v1.global_variables_initializer())
    losses = [sess.run([loss, train_op])[0] for _ in range(100)]
  # Minibatch losses over the first and the last ten steps when this was
  # written: 1.97 and 0.014 (the adaptive net), 2.35 and 1.17 (the LSTM).
  assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])


def _saved_default(sess, directory, problem):
  optimizer = meta.MetaOptimizer()
  optimizer.meta_loss(problem, 1)
  sess.run(tf.compat.v1.global_variables_initializer())
  optimizer.save(sess, directory)
  return optimizer


def _run_steps(sess, train_op, variables, steps):
  for _ in range(steps):
    sess.run(train_op)
  return [sess.run(v) for v in variables]


# tf.compat.v1.layers is gone with Keras 3 (TF 2.21 without tf_keras); the
# "legacy" model stands for that style: v1 variable scopes of
# reference (non-resource) variables.
@pytest.mark.parametrize("model", ["raw", "legacy", "sonnet"])
def test_minimize_works_on_any_graph_model(fresh_session, tmp_path, model):
  with fresh_session() as sess:
    _saved_default(sess, tmp_path, problems.simple())
  rng = np.random.RandomState(0)
  inputs = rng.normal(size=(16, 3)).astype(np.float32)
  targets = inputs @ np.array([[1.0], [-2.0], [0.5]], np.float32)
  with fresh_session() as sess:
    if model == "raw":
      w = tf.compat.v1.get_variable("w", [3, 1],
                                    initializer=tf.zeros_initializer())
      prediction = tf.matmul(inputs, w)
    elif model == "legacy":
      with tf.compat.v1.variable_scope("dense", use_resource=False):
        kernel = tf.compat.v1.get_variable(
            "kernel", [3, 1], initializer=tf.zeros_initializer())
        bias = tf.compat.v1.get_variable(
            "bias", [1], initializer=tf.zeros_initializer())
      assert type(kernel).__name__ == "RefVariable"
      prediction = tf.compat.v1.nn.xw_plus_b(inputs, kernel, bias)
    else:
      prediction = snt.Linear(1, w_init=tf.zeros_initializer())(inputs)
    loss = tf.reduce_mean(tf.square(prediction - targets))
    global_step = tf.compat.v1.train.get_or_create_global_step()
    optimizer = l2l.LearnedOptimizer.from_path(tmp_path)
    train_op = optimizer.minimize(loss, global_step=global_step)
    # The optimizer's own nets are not trainable: only the model is.
    assert all("LearnedOptimizer" not in v.name
               for v in tf.compat.v1.trainable_variables())
    sess.run(tf.compat.v1.global_variables_initializer())
    before = sess.run(loss)
    for _ in range(20):
      sess.run(train_op)
    after = sess.run(loss)
    assert sess.run(global_step) == 20
    assert np.isfinite(after) and after != before


def test_state_persists_and_reset_restarts(fresh_session, tmp_path):
  with fresh_session() as sess:
    _saved_default(sess, tmp_path, problems.simple())
  with fresh_session() as sess:
    x = tf.compat.v1.get_variable("x", [4], initializer=tf.ones_initializer())
    optimizer = l2l.LearnedOptimizer.from_path(tmp_path)
    assert optimizer.reset_ops() == []
    train_op = optimizer.minimize(tf.reduce_sum(tf.square(x)))
    slots = [optimizer.get_slot(x, name) for name in optimizer.get_slot_names()]
    assert len(slots) == 4  # (h, c) of each of the two LSTM layers.
    init = tf.compat.v1.global_variables_initializer()
    sess.run(init)
    first = [_run_steps(sess, train_op, [x], 1)[0] for _ in range(3)]
    assert np.abs(sess.run(slots[0])).max() > 0
    # A fresh start (variables and state) repeats the same three steps.
    sess.run(tf.compat.v1.variables_initializer([x]))
    sess.run(optimizer.reset_ops())
    assert np.abs(sess.run(slots[0])).max() == 0
    again = [_run_steps(sess, train_op, [x], 1)[0] for _ in range(3)]
    np.testing.assert_array_equal(again, first)
    # Without resetting the state, the same start moves differently.
    sess.run(tf.compat.v1.variables_initializer([x]))
    carried = _run_steps(sess, train_op, [x], 1)[0]
    assert not np.array_equal(carried, first[0])
  # The same optimizer in another graph: its own state, its own reset.
  with fresh_session() as sess:
    x = tf.compat.v1.get_variable("x", [4], initializer=tf.ones_initializer())
    assert optimizer.reset_ops() == []
    train_op = optimizer.minimize(tf.reduce_sum(tf.square(x)))
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(optimizer.reset_ops())
    np.testing.assert_array_equal(_run_steps(sess, train_op, [x], 1)[0],
                                  first[0])


def test_a_float64_model_steps_as_its_float32_copy(fresh_session, tmp_path):
  with fresh_session() as sess:
    _saved_default(sess, tmp_path, problems.simple())
  trajectories = {}
  for dtype in (tf.float32, tf.float64):
    with fresh_session() as sess:
      x = tf.compat.v1.get_variable("x", [4], dtype=dtype,
                                    initializer=tf.ones_initializer())
      optimizer = l2l.LearnedOptimizer.from_path(tmp_path)
      train_op = optimizer.minimize(tf.reduce_sum(tf.square(x)))
      sess.run(tf.compat.v1.global_variables_initializer())
      trajectories[dtype] = [_run_steps(sess, train_op, [x], 1)[0]
                             for _ in range(3)]
  single, double = trajectories[tf.float32], trajectories[tf.float64]
  assert double[0].dtype == np.float64
  assert np.abs(single[-1] - 1.0).max() > 1e-4
  np.testing.assert_allclose(double, single, rtol=1e-6)


def test_multi_net_assignment_by_rule(fresh_session, tmp_path):
  config = {
      "sgd": {"net": "Sgd", "net_options": {"learning_rate": 0.5}},
      "adam": {"net": "Adam", "net_options": {"learning_rate": 0.1}},
  }
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(**config)
    optimizer.meta_loss(problems.simple_multi_optimizer(2), 1,
                        net_assignments=[("sgd", ["x_0"]), ("adam", ["x_1"])])
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, tmp_path)
  learned = l2l.LearnedOptimizer.from_path(tmp_path)
  # SGD: 1 - 0.5 * 2; Adam's first step: 1 - 0.1 (times 1 - tiny epsilon).
  np.testing.assert_allclose(_one_step_on_x0_x1(fresh_session, learned),
                             [0.0, 0.9], rtol=1e-6)
  with fresh_session():
    other = tf.compat.v1.get_variable("other", [], initializer=tf.ones_initializer())
    with pytest.raises(ValueError, match="No net of .* covers the variables other"):
      learned.minimize(tf.square(other))


def _one_step_on_x0_x1(fresh_session, learned):
  """x_0 and x_1, both 1, after one step of `learned` on x_0^2 + x_1^2."""
  with fresh_session() as sess:
    x_0 = tf.compat.v1.get_variable("x_0", [], initializer=tf.ones_initializer())
    x_1 = tf.compat.v1.get_variable("x_1", [], initializer=tf.ones_initializer())
    train_op = learned.minimize(tf.square(x_0) + tf.square(x_1))
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train_op)
    return sess.run([x_0, x_1])


def test_a_variable_training_left_out_stays_fixed(fresh_session, tmp_path,
                                                 caplog):
  # As in training: x_1 belonged to no net, so the drop-in leaves it, and
  # says so.
  save_x0_only_sgd(tmp_path)
  learned = l2l.LearnedOptimizer.from_path(tmp_path)
  np.testing.assert_allclose(_one_step_on_x0_x1(fresh_session, learned),
                             [0.0, 1.0], rtol=1e-6)
  assert any(r.getMessage().endswith("out of every net: x_1.")
             for r in caplog.records)


def test_an_assignment_of_ones_own_gives_the_nets_a_models_variables(
    fresh_session, tmp_path):
  # The saved rule, made from the training problem's names, keeps any
  # variable named x_1 fixed; an assignment of one's own replaces it.
  save_x0_only_sgd(tmp_path)
  for assignment, expected in (
      (None, [1.0, 2.0]),
      ([{"net": "cw", "match": "pattern", "pattern": "^x_"}], [0.0, 0.0])):
    with fresh_session() as sess:
      weights = tf.compat.v1.get_variable("x_1", initializer=[1.0, 2.0])
      learned = l2l.LearnedOptimizer.from_path(tmp_path,
                                               assignment=assignment)
      train_op = learned.minimize(tf.reduce_sum(tf.square(weights)))
      sess.run(tf.compat.v1.global_variables_initializer())
      sess.run(train_op)
      # SGD at rate 0.5 on sum(w^2): w - 0.5 * 2w = 0.
      np.testing.assert_allclose(sess.run(weights), expected, atol=1e-7)
  with pytest.raises(ValueError, match=r"The assignment rule of .*: "
                     r"assignment entry \{'net': 'fc', 'match': "
                     r"'everything'\} must name one of the nets cw"):
    l2l.LearnedOptimizer.from_path(
        tmp_path, assignment=[{"net": "fc", "match": "everything"}])


def test_a_variable_not_floating_point_is_refused_naming_it(fresh_session,
                                                            saved_default):
  with fresh_session():
    counts = tf.compat.v1.get_variable("counts", initializer=[1, 2])
    with pytest.raises(ValueError, match=r"cannot update counts \(int32\)"):
      l2l.LearnedOptimizer.from_path(saved_default).apply_gradients(
          [(tf.ones(2, tf.int32), counts)])


def test_a_variable_constraint_applies_after_the_step(fresh_session,
                                                      tmp_path):
  # As tf.compat.v1.train.GradientDescentOptimizer: SGD at rate 0.5 takes
  # x from 1 to 0, and the constraint puts it back to 0.5.
  save_x0_only_sgd(tmp_path)
  with fresh_session() as sess:
    x_0 = tf.compat.v1.get_variable(
        "x_0", [], initializer=tf.ones_initializer(),
        constraint=lambda v: tf.clip_by_value(v, 0.5, 10.0))
    learned = l2l.LearnedOptimizer.from_path(tmp_path)
    reference = tf.compat.v1.train.GradientDescentOptimizer(0.5)
    reference_x = tf.compat.v1.get_variable(
        "reference", [], initializer=tf.ones_initializer(),
        constraint=x_0.constraint)
    ops = [learned.minimize(tf.square(x_0)),
           reference.minimize(tf.square(reference_x))]
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(ops)
    assert sess.run([x_0, reference_x]) == [0.5, 0.5]


def test_rank_rule_and_uncovered_variable(fresh_session, tmp_path):
  save_matrices_only_sgd(tmp_path)
  with fresh_session() as sess:
    w = tf.compat.v1.get_variable("w", [2, 2], initializer=tf.ones_initializer())
    b = tf.compat.v1.get_variable("b", [2], initializer=tf.ones_initializer())
    learned = l2l.LearnedOptimizer.from_path(tmp_path)
    train_op = learned.minimize(tf.reduce_sum(w), var_list=[w])
    sess.run(tf.compat.v1.global_variables_initializer())
    sess.run(train_op)
    np.testing.assert_array_equal(sess.run(w), np.zeros([2, 2]))
    with pytest.raises(ValueError, match=r"covers the variables b \(rank 1\)"):
      learned.minimize(tf.reduce_sum(b))


def test_directory_without_manifest_uses_the_default_net(fresh_session,
                                                          tmp_path):
  with fresh_session() as sess:
    _saved_default(sess, tmp_path, problems.simple())
  (tmp_path / manifest.FILENAME).unlink()
  learned = l2l.LearnedOptimizer.from_path(tmp_path)
  assert list(learned.update_rule.net_configs) == ["cw"]
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="No checkpoint 'cw.l2l'"):
    l2l.LearnedOptimizer.from_path(tmp_path / "empty")


def test_learning_rate_is_refused(fresh_session, tmp_path):
  with fresh_session() as sess:
    _saved_default(sess, tmp_path, problems.simple())
  with pytest.raises(ValueError, match="learning_rate=0.1 is not accepted"):
    l2l.LearnedOptimizer.from_path(tmp_path, learning_rate=0.1)
  with pytest.raises(ValueError, match="lr=0.01 is not accepted"):
    l2l.LearnedOptimizer.from_path(tmp_path, lr=0.01)


def test_swarm_save_is_refused(fresh_session, tmp_path):
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(num_particles=2, use_entropy=False)
    optimizer.meta_loss(problems.quadratic(batch_size=2, num_dims=2), 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, tmp_path)
    with pytest.raises(ValueError, match="LOIS swarm optimizer"):
      learned_optimizer.LearnedOptimizer.from_meta_optimizer(optimizer, sess)
  with pytest.raises(ValueError, match="cannot be used as a single-point"):
    l2l.LearnedOptimizer.from_path(tmp_path)


@pytest.fixture
def saved_default(fresh_session, tmp_path):
  """The directory of the default optimizer, saved untrained."""
  with fresh_session() as sess:
    _saved_default(sess, tmp_path, problems.simple())
  return tmp_path


def _minimizing_x(directory):
  """x = (1, 1, 1, 1), minimizing sum(x^2): (x, optimizer, train op)."""
  x = tf.compat.v1.get_variable("x", [4], initializer=tf.ones_initializer())
  optimizer = l2l.LearnedOptimizer.from_path(directory)
  return x, optimizer, optimizer.minimize(tf.reduce_sum(tf.square(x)))


def test_a_positional_learning_rate_is_refused_when_made(saved_default):
  # tf.compat.v1.train.AdamOptimizer(0.01) style: the number would land in
  # use_locking or name.
  rule = l2l.LearnedOptimizer.from_path(saved_default).update_rule
  for args in ((0.01,), (False, 3)):
    with pytest.raises(ValueError, match="takes no learning rate"):
      l2l.LearnedOptimizer(rule, *args)
  with pytest.raises(ValueError, match="LearnedOptimizer.from_path: name must "
                     "be a string, got 0.01; a learned optimizer takes no "
                     "learning rate"):
    l2l.LearnedOptimizer.from_path(saved_default, 0.01)


def test_a_path_or_a_rate_where_the_rule_goes_is_refused_when_made(
    saved_default):
  # tf.compat.v1.train.GradientDescentOptimizer(0.01) style, or a path:
  # both used to fail at the first step, inside the library.
  assert_a_path_or_a_rate_is_refused(
      l2l.LearnedOptimizer, saved_default, "LearnedOptimizer",
      "l2l.LearnedOptimizer.from_path(directory)")


def test_no_gradient_names_the_variables_of_a_zip(fresh_session,
                                                  saved_default):
  with fresh_session():
    a = tf.compat.v1.get_variable("a", [2])
    b = tf.compat.v1.get_variable("b", [3])
    optimizer = l2l.LearnedOptimizer.from_path(saved_default)
    with pytest.raises(ValueError, match=r"\['a:0', 'b:0'\]"):
      optimizer.apply_gradients(zip([None, None], [a, b]))


def test_reset_ops_are_made_once_and_work_in_a_finalized_graph(
    fresh_session, saved_default):
  with fresh_session() as sess:
    x, optimizer, train_op = _minimizing_x(saved_default)
    reset = optimizer.reset_ops()
    graph = tf.compat.v1.get_default_graph()
    num_ops = len(graph.get_operations())
    assert optimizer.reset_ops() == reset
    assert len(graph.get_operations()) == num_ops
    sess.run(tf.compat.v1.global_variables_initializer())
    graph.finalize()
    sess.run(train_op)
    slot = optimizer.get_slot(x, optimizer.get_slot_names()[0])
    assert np.abs(sess.run(slot)).max() > 0
    sess.run(optimizer.reset_ops())
    assert np.abs(sess.run(slot)).max() == 0


def test_variables_include_the_nets_so_they_can_be_initialized(
    fresh_session, saved_default):
  with fresh_session() as sess:
    x, optimizer, train_op = _minimizing_x(saved_default)
    # The model restored (here: initialized) apart from the optimizer.
    sess.run(tf.compat.v1.variables_initializer([x]))
    sess.run(tf.compat.v1.variables_initializer(optimizer.variables()))
    assert not sess.run(tf.compat.v1.report_uninitialized_variables()).size
    sess.run(train_op)
    moved = sess.run(x)
  with fresh_session() as sess:
    x, _, train_op = _minimizing_x(saved_default)
    sess.run(tf.compat.v1.global_variables_initializer())
    np.testing.assert_array_equal(_run_steps(sess, train_op, [x], 1)[0], moved)
  assert np.abs(moved - 1).max() > 1e-4


def test_eager_use_points_to_the_keras_optimizer(saved_default):
  assert tf.executing_eagerly()
  optimizer = l2l.LearnedOptimizer.from_path(saved_default)
  x = tf.Variable(tf.ones([4]))

  @tf.function
  def traced_step():
    optimizer.apply_gradients([(tf.ones([4]), x)])

  for call in (lambda: optimizer.apply_gradients([(tf.ones([4]), x)]),
               traced_step, optimizer.reset_ops):
    with pytest.raises(RuntimeError, match=r"l2l.keras_optimizer\(path\)"):
      call()
  np.testing.assert_array_equal(x.numpy(), np.ones(4))


def test_reset_ops_after_a_run_change_nothing_that_ran(fresh_session,
                                                       saved_default, capfd):
  # The README's order: train, then reset for a new run. An op made only
  # then would reuse initializers that ran, which TensorFlow warns about.
  with fresh_session() as sess:
    x, optimizer, train_op = _minimizing_x(saved_default)
    sess.run(tf.compat.v1.global_variables_initializer())
    capfd.readouterr()
    sess.run(train_op)
    sess.run(optimizer.reset_ops())
    assert "was changed by setting attribute" not in capfd.readouterr().err
