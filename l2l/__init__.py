"""l2l: learned optimizers (L2L and LOIS) as TF-1.x-style graphs.

The research-script API lives in the top-level modules `meta`, `networks`,
`problems`, `preprocess` and `util`. This package holds everything else,
arranged by role:

  l2l.core        optimizee plumbing and the unroll machinery every unroll uses
  l2l.swarm       the LOIS swarm: its features, attention, posterior and unroll
  l2l.baselines   hand-designed optimizers and PSO
  l2l.data        offline readers of MNIST, CIFAR-10 and scikit-learn's digits
  l2l.tasks       the task family: a new optimizee every epoch
  l2l.checkpoint  the .l2l file format
  l2l.experiment  training loop, evaluation, records, plots, compare, CLI
  l2l.dropin      a trained optimizer on one's own model: `LearnedOptimizer`
                  (graph mode) and `keras_optimizer` (Keras 3)
  l2l.requirements  the TensorFlow it needs, checked on import

`l2l.LearnedOptimizer` and `l2l.keras_optimizer` are imported on first use:
importing `l2l` stays light (the commands import it before TensorFlow is
quieted). It checks that TensorFlow 2.21 is installed (`l2l.requirements`):
pip does not, since TensorFlow is an extra of the distribution.
"""

import importlib

from l2l import requirements

__version__ = "0.2.0"

requirements.check_tensorflow()

# Public names of subpackages, imported when first asked for.
_LAZY_EXPORTS = {
    "LearnedOptimizer": "l2l.dropin.learned_optimizer",
    "keras_optimizer": "l2l.dropin.keras_optimizer",
}


def __getattr__(name):
  if name in _LAZY_EXPORTS:
    return getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
  raise AttributeError("module 'l2l' has no attribute {!r}".format(name))


def __dir__():
  return sorted(list(globals()) + list(_LAZY_EXPORTS))
