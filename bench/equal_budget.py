"""Baselines of bench/swarm.py on numpy test-function instances.

Every method gets the same number of function evaluations per start set
(one batch row of a test-function problem: one instance), a gradient
costing one evaluation together with its value, and is scored by the lowest
loss among the points it evaluated within that budget. The functions are
`l2l.tasks.test_functions`' numpy instantiation of the very definitions the
TensorFlow problems use, on the instances (optima, rotations, scales) that
`read_instances` reads from the problem's own TensorFlow draws, so the
numpy methods and the TensorFlow ones (the learned swarm, PSO) see the same
instances. Starting points are drawn from the problem's start distribution,
N(0, init_stddev), by each method's numpy generator.

scipy is single-threaded here only if OPENBLAS_NUM_THREADS=1 was set before
numpy was imported (bench/swarm.py does): with OpenBLAS threads, each tiny
L-BFGS-B iteration costs ~20x more on a busy machine.
"""

import collections
import warnings

import cma
import numpy as np
from scipy import optimize
import tensorflow as tf

from l2l.core import interception
from l2l.tasks import test_functions
import util

# The problem options the numpy side needs, with `problems.test_function`'s
# defaults.
_DEFAULTS = {"num_dims": 10, "init_stddev": 1.3}


class OutOfBudget(Exception):
  """The evaluation budget of a start set is spent."""


class Instances:
  """A test-function problem's instances, as numpy arrays.

  Attributes:
    name: the function, a key of `test_functions.FUNCTIONS`.
    optimum: [N, d] each start set's minimizer (N = epochs * rows).
    rotation: None, or [N, d, d].
    scales: None, or [N, d].
    init_stddev: the spread of the starting points.
  """

  def __init__(self, name, optimum, rotation, scales, init_stddev):
    self.name = name
    self.optimum = optimum
    self.rotation = rotation
    self.scales = scales
    self.init_stddev = init_stddev

  @property
  def count(self):
    return self.optimum.shape[0]

  @property
  def dims(self):
    return self.optimum.shape[1]

  def _posed(self, index):
    pick = lambda a: None if a is None else a[index]
    return (pick(self.optimum), pick(self.rotation), pick(self.scales))

  def value(self, x, index=slice(None)):
    """Losses at x [..., d] of the start sets `index` (broadcast)."""
    return test_functions.objective(test_functions.NUMPY, self.name, x,
                                    *self._posed(index))

  def gradient(self, x, index=slice(None)):
    return test_functions.gradient(self.name, x, *self._posed(index))

  def subset(self, count):
    """The first `count` start sets."""
    pick = lambda a: None if a is None else a[:count]
    return Instances(self.name, self.optimum[:count], pick(self.rotation),
                     pick(self.scales), self.init_stddev)


def problem_options(problem_name):
  """(function name, options dict) of "name:key=value,..."."""
  name, _, text = problem_name.partition(":")
  return name, dict(_DEFAULTS, **util.parse_problem_options(text))


def read_instances(problem_name, seed, epochs):
  """The instances `evaluation.evaluate(..., seed=seed)` draws, in numpy.

  The problem's variables are built first in a graph seeded like
  evaluation's, and the initializers re-run once per epoch, as evaluation's
  resets do, so their random draws are the same.

  Args:
    problem_name: a test-function problem, e.g. "ackley:random_shift=2".
    seed: the graph-level seed.
    epochs: how many instances of `rows` start sets.

  Returns:
    `(Instances, starts [N, d])`: the start sets and the first particle's
    starting point in each (for checking that the draws agree).
  """
  name, options = problem_options(problem_name)
  graph = tf.Graph()
  with graph.as_default():
    tf.compat.v1.set_random_seed(seed)
    problem = util.get_config(problem_name, mode="test")[0]
    x, constants = interception.get_variables(problem)
    reset = tf.compat.v1.global_variables_initializer()
    by_name = {interception.variable_name(v): v for v in constants}
  draws = collections.defaultdict(list)
  with tf.compat.v1.Session(graph=graph) as sess:
    for _ in range(epochs):
      sess.run(reset)
      values = sess.run({"x": x[0], **by_name})
      for key, value in values.items():
        draws[key].append(np.asarray(value, np.float64))
  joined = {key: np.concatenate(value) for key, value in draws.items()}
  scales = joined.get("log_scales")
  optimum = joined["offset"] + test_functions.MINIMA[name]
  return Instances(name, optimum, joined.get("rotation"),
                   None if scales is None else np.exp(scales),
                   float(options["init_stddev"])), joined["x"]


def _starts(instances, rng, count):
  """[N, count, d] starting points from the start distribution."""
  return rng.normal(0.0, instances.init_stddev,
                    (instances.count, count, instances.dims))


def adam_restarts(instances, rng, budget, restarts, learning_rate,
                  jump_fraction=None):
  """Adam from `restarts` starts, budget / restarts steps each.

  TensorFlow's Adam (beta1 0.9, beta2 0.999, epsilon 1e-8), vectorised
  over start sets and restarts. With `jump_fraction`, after that fraction
  of the steps every restart of a start set jumps to the best point it has
  evaluated and continues from there with a fresh Adam state.

  Returns:
    [N] each start set's best loss.
  """
  steps = budget // restarts
  x = _starts(instances, rng, restarts)
  index = np.arange(instances.count)[:, None]
  best = np.full(instances.count, np.inf)
  best_x = x[:, 0].copy()
  m = np.zeros_like(x)
  v = np.zeros_like(x)
  t = 0
  jump_at = None if jump_fraction is None else int(round(jump_fraction *
                                                         steps))
  for step in range(steps):
    if step == jump_at:
      x = np.repeat(best_x[:, None], restarts, axis=1)
      m[:] = 0.0
      v[:] = 0.0
      t = 0
    losses = instances.value(x, index)
    grad = instances.gradient(x, index)
    losses = np.where(np.isnan(losses), np.inf, losses)
    leader = np.argmin(losses, axis=1)
    leading = losses[np.arange(instances.count), leader]
    improved = leading < best
    best = np.where(improved, leading, best)
    best_x[improved] = x[np.arange(instances.count), leader][improved]
    t += 1
    m = 0.9 * m + 0.1 * grad
    v = 0.999 * v + 0.001 * grad * grad
    rate = learning_rate * np.sqrt(1.0 - 0.999 ** t) / (1.0 - 0.9 ** t)
    with np.errstate(invalid="ignore", over="ignore"):
      x = x - rate * m / (np.sqrt(v) + 1e-8)
  return best


class _Counter:
  """One start set's objective, counting evaluations and keeping the best."""

  def __init__(self, instances, index, budget):
    self._instances = instances
    self._index = index
    self.left = budget
    self.best = np.inf

  def _record(self, values):
    finite = values[np.isfinite(values)]
    if finite.size:
      self.best = min(self.best, float(finite.min()))

  def value_and_gradient(self, x):
    if self.left <= 0:
      raise OutOfBudget()
    self.left -= 1
    value = float(self._instances.value(x, self._index))
    self._record(np.asarray([value]))
    return value, self._instances.gradient(x, self._index)

  def values(self, points):
    """Losses of points [S, d], as many as the budget allows."""
    if self.left <= 0:
      raise OutOfBudget()
    points = points[:self.left]
    self.left -= len(points)
    values = self._instances.value(points, self._index)
    self._record(values)
    if self.left <= 0:
      raise OutOfBudget()
    return values


def _per_start_set(instances, budget, run):
  """Runs `run(counter, index)` for every start set until its budget ends."""
  best = np.empty(instances.count)
  for index in range(instances.count):
    counter = _Counter(instances, index, budget)
    try:
      run(counter, index)
    except OutOfBudget:
      pass
    best[index] = counter.best
  return best


def lbfgs_restarts(instances, rng, budget):
  """scipy's L-BFGS-B from fresh starts, each to convergence, in turn."""
  def run(counter, unused_index):
    while True:
      optimize.minimize(counter.value_and_gradient,
                        rng.normal(0.0, instances.init_stddev,
                                   instances.dims),
                        jac=True, method="L-BFGS-B")
  return _per_start_set(instances, budget, run)


def basin_hopping(instances, rng, budget, stepsize):
  """scipy's basinhopping (L-BFGS-B local searches, temperature 1)."""
  def run(counter, unused_index):
    optimize.basinhopping(
        counter.value_and_gradient,
        rng.normal(0.0, instances.init_stddev, instances.dims),
        niter=10 ** 9, stepsize=stepsize,
        minimizer_kwargs={"jac": True, "method": "L-BFGS-B"},
        seed=rng.integers(2 ** 31))
  return _per_start_set(instances, budget, run)


def differential_evolution(instances, rng, budget, popsize, bound=4.0):
  """scipy's differential evolution in the box of +-bound * init_stddev.

  Its polishing L-BFGS-B (finite-difference gradients) counts too; it runs
  until the budget ends, restarting with a fresh population if it
  converges first.
  """
  limit = bound * instances.init_stddev
  bounds = [(-limit, limit)] * instances.dims

  def run(counter, unused_index):
    while True:
      optimize.differential_evolution(
          lambda points: counter.values(np.asarray(points).T), bounds,
          popsize=popsize, maxiter=10 ** 9, tol=0, vectorized=True,
          updating="deferred", seed=rng.integers(2 ** 31), polish=False)
  return _per_start_set(instances, budget, run)


def cma_es(instances, rng, budget, sigma_factor):
  """CMA-ES (the `cma` package) with IPOP restarts.

  Each run starts from a draw of the start distribution with step size
  `sigma_factor * init_stddev`; when one stops, the next doubles the
  population, until the budget ends.
  """
  def run(counter, unused_index):
    popsize = None
    while True:
      options = {"seed": int(rng.integers(1, 2 ** 31)), "verbose": -9,
                 "verb_log": 0, "verb_disp": 0}
      if popsize is not None:
        options["popsize"] = popsize
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        strategy = cma.CMAEvolutionStrategy(
            rng.normal(0.0, instances.init_stddev, instances.dims),
            sigma_factor * instances.init_stddev, options)
        while not strategy.stop():
          points = strategy.ask()
          values = counter.values(np.asarray(points))
          strategy.tell(points, list(values))
      popsize = 2 * strategy.popsize
  return _per_start_set(instances, budget, run)
