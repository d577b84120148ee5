"""l2l: learned optimizers (L2L and LOIS) as TF-1.x-style graphs.

The research-script API lives in the top-level modules `meta`, `networks`,
`problems`, `preprocess` and `util`. This package holds everything else,
arranged by role:

  l2l.core        optimizee plumbing and the unroll machinery every unroll uses
  l2l.swarm       the LOIS swarm: its features, attention, posterior and unroll
  l2l.baselines   hand-designed optimizers and PSO
  l2l.data        offline readers of MNIST, CIFAR-10 and scikit-learn's digits
  l2l.checkpoint  the .l2l file format
  l2l.experiment  training loop, evaluation, records, plots, compare, CLI
"""

__version__ = "0.2.0"
