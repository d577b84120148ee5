"""Options of LOIS swarm mode, each defaulting to the paper's value."""

import dataclasses
import numbers

# The net id under which the swarm's feature-attention weights are saved
# (`attention.l2l`); reserved, so no optimizer net may take it.
ATTENTION_ID = "attention"

# The per-coordinate features, in the order they are stacked.
FEATURES = ("gradient", "momentum", "personal_best", "attraction")


@dataclasses.dataclass(frozen=True)
class SwarmConfig:
  """Options of LOIS swarm mode; each default is the paper's.

  Attributes:
    num_particles: k; swarm mode is on when k > 1.
    momentum_beta: decay of the momentum feature.
    attraction_alpha: inverse temperature of the attraction weights.
    attention_gamma: weight of inter-particle gradient attention (None: 1/k).
    attention_length_scale: length `l` of its position kernel.
    attention_hidden_size: width of the feature attention.
    gp_length_scale: RBF length of the posterior's Gaussian process.
    gp_nugget: added to the GP kernel's diagonal.
    entropy_weight: lambda, the weight of the posterior entropy.
    num_posterior_samples: M, candidate points of the posterior.
    posterior_sample_stddev: spread of candidates around visited points.
    entropy_scale: h of `rho = exp(sqrt(n) / h)`; None follows LOIS's
      schedule (d ln 5, then the first meta-iteration's entropy).
    use_gradient_attention, use_momentum, use_personal_best, use_attraction,
    use_feature_attention, use_entropy: switches for ablations. Without
      feature attention the enabled features are averaged.
  """
  num_particles: int = 1
  momentum_beta: float = 0.9
  attraction_alpha: float = 1.0
  attention_gamma: float = None
  attention_length_scale: float = 1.0
  attention_hidden_size: int = 10
  gp_length_scale: float = 1.0
  gp_nugget: float = 2.1
  entropy_weight: float = 0.001
  num_posterior_samples: int = 1000
  posterior_sample_stddev: float = 1.0
  entropy_scale: float = None
  use_gradient_attention: bool = True
  use_momentum: bool = True
  use_personal_best: bool = True
  use_attraction: bool = True
  use_feature_attention: bool = True
  use_entropy: bool = True

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if field.name.startswith("use_"):
        valid = isinstance(value, bool)
      elif field.default is None:
        valid = value is None or isinstance(value, numbers.Real)
      else:
        valid = (isinstance(value, numbers.Real) and
                 not isinstance(value, bool))
      if not valid:
        raise ValueError("Swarm option {}={!r} must be {}.".format(
            field.name, value, "True or False" if field.name.startswith(
                "use_") else "a number"))
    if (not isinstance(self.num_particles, numbers.Integral) or
        isinstance(self.num_particles, bool) or self.num_particles < 1):
      raise ValueError("Swarm option num_particles must be a positive "
                       "integer, got {!r}.".format(self.num_particles))

  @classmethod
  def option_names(cls):
    """The keyword names reserved for swarm options."""
    return {field.name for field in dataclasses.fields(cls)}

  @property
  def active(self):
    return self.num_particles > 1

  def feature_names(self):
    """The enabled features, in the order they are stacked."""
    return tuple(name for name in FEATURES
                 if name == "gradient" or getattr(self, "use_" + name))
