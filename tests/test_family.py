"""Tests for l2l/tasks/family.py: the task family, its sampler and switches."""

import collections
import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from l2l.tasks import family
import meta

# A small family: fast graphs, every kind.
SMALL = family.FamilyConfig(datasets=("iris", "wine"), max_width=6,
                            min_width=2, max_dims=5, quadratic_batch=2,
                            batch_size=16, exclude=())


def _draws(config, count=200, seed=0):
  sampler = family.TaskSampler(config, seed)
  return [sampler.draw_task() for _ in range(count)]


def test_sampler_is_deterministic_under_a_seed(graph):
  del graph
  first = family.TaskFamily(SMALL, seed=3)
  second = family.TaskFamily(SMALL, seed=3)
  other = family.TaskFamily(SMALL, seed=4)
  for _ in range(10):
    tasks = [f.sampler.draw_task() for f in (first, second, other)]
    values = [f.task_values(t) for f, t in zip((first, second, other), tasks)]
    assert tasks[0] == tasks[1]
    for name in values[0]:
      np.testing.assert_array_equal(values[0][name], values[1][name])
  assert _draws(SMALL, seed=3) != _draws(SMALL, seed=4)


def test_default_draws_cover_every_kind_table_and_activation():
  tasks = _draws(family.FamilyConfig(), count=400)
  kinds = collections.Counter(t.kind for t in tasks)
  # Weights 0.5 / 0.25 / 0.25.
  assert 160 < kinds["mlp"] < 240 and 60 < kinds["quadratic"] < 140
  mlps = [t for t in tasks if t.kind == "mlp"]
  assert {t.dataset for t in mlps} == set(family.FamilyConfig().datasets)
  assert {t.activation for t in mlps} == {"sigmoid", "relu", "tanh"}
  assert {len(t.layers) for t in mlps} == {1, 2}
  widths = [w for t in mlps for w in t.layers]
  assert min(widths) >= 4 and max(widths) <= 32
  quadratics = [t for t in tasks if t.kind == "quadratic"]
  assert all(2 <= t.dims <= 32 and 0 <= t.log10_condition <= 3
             for t in quadratics)


def test_default_family_never_draws_the_held_out_mlps():
  config = family.FamilyConfig(datasets=("digits",), min_width=20,
                               max_width=20, max_depth=2,
                               activations=("sigmoid", "relu"),
                               mlp_weight=1, logistic_weight=0,
                               quadratic_weight=0)
  drawn = {(t.dataset, t.layers, t.activation) for t in _draws(config)}
  assert drawn == {("digits", (20,), "sigmoid"),
                   ("digits", (20, 20), "relu")}


@pytest.mark.parametrize("options, check", [
    ("quadratic_weight=0,logistic_weight=0",
     lambda t: t.kind == "mlp"),
    ("mlp_weight=0,quadratic_weight=0", lambda t: t.kind == "logistic"),
    ("mlp_weight=0,logistic_weight=0", lambda t: t.kind == "quadratic"),
    ("random_width=0", lambda t: all(w == 20 for w in t.layers)),
    ("random_depth=0", lambda t: len(t.layers) <= 1),
    ("random_activation=0",
     lambda t: t.activation in (None, "sigmoid")),
    ("datasets=iris+wine", lambda t: t.dataset in (None, "iris", "wine")),
])
def test_each_switch_restricts_the_draws(options, check):
  config = family.parse_options(options)
  assert all(check(t) for t in _draws(config))


def test_heavy_tailed_unroll_factors_and_their_switch(graph):
  del graph
  tailed = family.FamilyConfig(unroll_tail=2.0, max_unroll_factor=1e9)
  factors = np.array([t.unroll_factor for t in _draws(tailed, count=4000)])
  # Pareto of index 2, minimum 0.5: mean 1, median 0.71, P(> 4) = 1/64.
  assert factors.min() >= 0.5
  np.testing.assert_allclose(np.median(factors), 2**-0.5, rtol=0.05)
  np.testing.assert_allclose((factors > 4).mean(), 1 / 64, rtol=0.3)
  assert 0.9 < factors.mean() < 1.15
  capped = family.FamilyConfig(unroll_tail=1.5, max_unroll_factor=3)
  assert max(t.unroll_factor for t in _draws(capped, count=400)) == 3
  # Off (the default): factor 1, and the problems drawn are the same ones.
  off = _draws(family.FamilyConfig())
  assert {t.unroll_factor for t in off} == {1.0}
  assert [dataclasses.replace(t, unroll_factor=1.0)
          for t in _draws(tailed)] == off
  # An epoch's unrolls: scaled, rounded, at least one.
  problem = family.TaskFamily(dataclasses.replace(SMALL, unroll_tail=2.0))
  assert problem.epoch_unrolls(5) == 5  # Before any draw.
  problem.task = family.Task("quadratic", dims=2, unroll_factor=0.5)
  assert problem.epoch_unrolls(5) == 2 and problem.epoch_unrolls(1) == 1
  problem.task = family.Task("quadratic", dims=2, unroll_factor=7.3)
  assert problem.epoch_unrolls(5) == 36


def test_scale_switch_and_masks_in_the_task_values(graph):
  del graph
  scaled = family.TaskFamily(SMALL, seed=0)
  task = family.Task("mlp", dataset="iris", layers=(3,), activation="relu")
  values = scaled.task_values(task)
  used = values["scale"] > 0
  # iris: 4 features, 3 classes; one layer of 3 units.
  assert used.sum() == 4 * 3 + 3 + 3 * 3 + 3
  assert values["scale"][used].min() >= 0.1
  assert values["scale"][used].max() <= 10
  assert values["scale"][used].std() > 0.5
  np.testing.assert_array_equal(values["unit_mask0"], [1, 1, 1, 0, 0, 0])
  assert values["layer_on1"] == 0
  np.testing.assert_array_equal(values["class_offsets"] < 0,
                                [False] * 3 + [True] * 0)
  weights = scaled._view(values["init_scale"], "mlp", "w0")
  np.testing.assert_allclose(weights[:4, :3], 0.5)
  assert weights[4:].sum() == 0 and weights[:, 3:].sum() == 0
  unscaled = family.TaskFamily(
      family.FamilyConfig(**dict(vars(SMALL), scale_range=1.0)), seed=0)
  values = unscaled.task_values(task)
  np.testing.assert_array_equal(np.unique(values["scale"]), [0.0, 1.0])


def test_quadratic_condition_number_and_its_switch():
  sampler = family.TaskSampler(SMALL, seed=0)
  matrices, targets = sampler.quadratic(4, 2.0)
  singular = np.linalg.svd(matrices[0, :4, :4], compute_uv=False)
  np.testing.assert_allclose(singular.max() / singular.min(), 100.0,
                             rtol=1e-4)
  assert not matrices[:, 4:].any() and not matrices[:, :, 4:].any()
  assert not targets[:, 4:].any()
  flat = family.TaskSampler(family.FamilyConfig(max_log10_condition=0,
                                                datasets=("iris",)), seed=0)
  matrices, _ = flat.quadratic(6, 0.0)
  np.testing.assert_allclose(matrices[0, :6, :6] @ matrices[0, :6, :6].T,
                             np.eye(6), atol=1e-5)


def test_standardize_switch():
  on = family.TaskSampler(SMALL, seed=0).tables["wine"][0]
  off = family.TaskSampler(family.FamilyConfig(datasets=("wine",),
                                               standardize=False),
                           seed=0).tables["wine"][0]
  np.testing.assert_allclose(on.mean(axis=0), 0, atol=1e-5)
  assert off.mean(axis=0).max() > 100  # Proline, in the hundreds.


def _loss_and_gradient(sess, tasks_family, task):
  loss = tasks_family()
  delta = next(v for v in tf.compat.v1.global_variables()
               if v.name.startswith("family/delta"))
  gradient = tf.gradients(loss, delta)[0]
  sess.run(tf.compat.v1.global_variables_initializer())
  values = tasks_family.set_task(sess, task)
  assert tasks_family.task is task
  return sess.run([loss, gradient]) + [values]


@pytest.mark.parametrize("task", [
    family.Task("mlp", dataset="iris", layers=(3, 5), activation="tanh"),
    family.Task("logistic", dataset="wine"),
    family.Task("quadratic", dims=3, log10_condition=1.0),
])
def test_gradient_only_reaches_the_coordinates_a_task_uses(sess, task):
  tasks_family = family.TaskFamily(SMALL, seed=0)
  loss, gradient, values = _loss_and_gradient(sess, tasks_family, task)
  assert math.isfinite(loss) and loss > 0
  assert np.abs(gradient[values["scale"] == 0]).max() == 0
  assert (gradient[values["scale"] > 0] != 0).mean() > 0.5


def test_logistic_regression_starts_at_log_of_its_classes(sess):
  # Weights start at 0: uniform over wine's 3 classes, the absent ones masked.
  tasks_family = family.TaskFamily(SMALL, seed=0)
  loss, _, _ = _loss_and_gradient(sess, tasks_family,
                                  family.Task("logistic", dataset="wine"))
  np.testing.assert_allclose(loss, math.log(3), rtol=1e-5)


def test_quadratic_loss_matches_numpy(sess):
  tasks_family = family.TaskFamily(SMALL, seed=0)
  task = family.Task("quadratic", dims=4, log10_condition=1.5)
  loss, _, values = _loss_and_gradient(sess, tasks_family, task)
  start = sess.run(next(v for v in tf.compat.v1.global_variables()
                        if v.name.startswith("family/start")))
  x = tasks_family._view(start * values["init_scale"], "quadratic", "x")
  residual = np.einsum("bij,bj->bi", values["quadratic_matrices"], x)
  residual -= values["quadratic_targets"]
  np.testing.assert_allclose(loss, np.mean((residual**2).sum(1) / 4),
                             rtol=1e-5)


def test_graph_does_not_grow_with_the_tasks_drawn(sess):
  problem = family.TaskFamily(SMALL, seed=0)
  optimizer = meta.MetaOptimizer()
  step, update, reset, cost, _ = optimizer.meta_minimize(problem, 2)
  sess.run(tf.compat.v1.global_variables_initializer())
  graph = tf.compat.v1.get_default_graph()
  sizes = []
  kinds = set()
  for _ in range(12):
    kinds.add(problem.next_task(sess).kind)
    sess.run(reset)
    sess.run([step, update])
    assert math.isfinite(sess.run(cost))
    sizes.append(len(graph.get_operations()))
  assert kinds == set(family.KINDS)
  assert len(set(sizes)) == 1


def test_family_seed_defaults_to_the_graph_seed():
  tasks = []
  for _ in range(2):
    with tf.Graph().as_default():
      tf.compat.v1.set_random_seed(7)
      problem = family.family(SMALL)
      tasks.append([problem.sampler.draw_task() for _ in range(5)])
  assert tasks[0] == tasks[1]
  assert tasks[0] == _draws(SMALL, count=5, seed=7)


@pytest.mark.parametrize("text, message", [
    ("nonsense=1", "Bad family option 'nonsense=1'"),
    ("scale_range", "Bad family option 'scale_range'"),
    ("random_width=maybe", "random_width must be true or false"),
    ("max_width=wide", "Family option max_width must be an integer, got "
                       "'wide'"),
    ("scale_range=big", "Family option scale_range must be a number"),
    # float() reads these; they are no finite number.
    ("mlp_weight=nan", "Family option mlp_weight must be a finite number, "
                       "got nan"),
    ("scale_range=inf", "Family option scale_range must be a finite number"),
    ("max_log10_condition=1e400", "max_log10_condition must be a finite "
                                  "number, got inf"),
    ("fixed_width=0", "Family option fixed_width must be a positive integer"),
    ("mlp_weight=0,logistic_weight=0,quadratic_weight=0",
     "must be >= 0, not all 0, and sum to a finite number"),
    # Each finite, their sum not.
    ("mlp_weight=1e308,logistic_weight=1e308",
     "must be >= 0, not all 0, and sum to a finite number"),
    ("datasets=mnist", "datasets must be a non-empty subset"),
    ("scale_range=0.5", r"scale_range must be in \[1, 1e\+06\]"),
    # Past float32: scales overflow, matrices lose their rank.
    ("scale_range=1e300", r"scale_range must be in \[1, 1e\+06\] \(1: no "
                          r"scaling; float32 parameters overflow past it\)"),
    ("max_log10_condition=40", r"max_log10_condition must be in \[0, 6\]"),
    # Only held-out MLPs left: the draw would never end.
    ("datasets=digits,min_width=20,max_width=20,max_depth=1,"
     "activations=relu,logistic_weight=0,quadratic_weight=0",
     "The MLP options leave only excluded \\(held-out\\) MLPs to draw"),
    ("datasets=digits,random_width=false,random_depth=false,"
     "random_activation=false,max_width=40,fixed_width=40",
     "The MLP options leave only excluded"),
    ("unroll_tail=1", "unroll_tail must be 0 \\(off\\) or a tail index > 1"),
    ("max_unroll_factor=0.5", "max_unroll_factor must be >= 1"),
])
def test_parse_options_rejects_bad_options(text, message):
  with pytest.raises(ValueError, match=message):
    family.parse_options(text)


@pytest.mark.parametrize("options, message", [
    ({"max_width": 8.0}, "Family option max_width must be a positive "
                         "integer, got 8.0"),
    ({"standardize": 1}, "Family option standardize must be True or False"),
    ({"scale_range": "2"}, "Family option scale_range must be a finite "
                           "number, got '2'"),
])
def test_family_config_checks_the_type_of_every_field(options, message):
  with pytest.raises(ValueError, match=message):
    family.FamilyConfig(**options)


def test_without_random_activations_the_first_given_is_drawn():
  sampler = family.TaskSampler(family.parse_options(
      "activations=relu+tanh,random_activation=false,logistic_weight=0,"
      "quadratic_weight=0"), seed=0)
  assert {sampler.draw_task().activation for _ in range(20)} == {"relu"}
  # The defaults keep the paper's sigmoid.
  sampler = family.TaskSampler(family.parse_options(
      "random_activation=false,logistic_weight=0,quadratic_weight=0"),
                               seed=0)
  assert {sampler.draw_task().activation for _ in range(20)} == {"sigmoid"}


def _first_tasks(problem):
  return [problem.sampler.draw_task() for _ in range(5)]


def test_an_unseeded_graph_draws_a_sampler_seed_of_its_own():
  # Seed 0's tasks would be an unseeded training's, replayed by an
  # evaluation at the default seed 0.
  config = family.FamilyConfig()
  with tf.Graph().as_default():
    seeded = _first_tasks(family.TaskFamily(config, seed=0))
    unseeded = [_first_tasks(family.family(config)) for _ in range(2)]
  assert seeded not in unseeded and unseeded[0] != unseeded[1]
  with tf.Graph().as_default():
    tf.compat.v1.set_random_seed(7)
    assert _first_tasks(family.family(config)) == _first_tasks(
        family.TaskFamily(config, seed=7))


def test_parse_options_reads_every_type():
  config = family.parse_options(
      "scale_range=2.5,max_width=8,standardize=false,datasets=iris+wine")
  assert config.scale_range == 2.5 and config.max_width == 8
  assert config.standardize is False
  assert config.datasets == ("iris", "wine")
  assert family.parse_options("") == family.FamilyConfig()
