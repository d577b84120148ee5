"""Options of LOIS swarm mode, each defaulting to the paper's value."""

import dataclasses

from l2l import checks

# The net id under which the swarm's feature-attention weights are saved
# (`attention.l2l`); reserved, so no optimizer net may take it.
ATTENTION_ID = "attention"
# The id under which the learned attraction gate is saved (`gate.l2l`);
# reserved likewise.
GATE_ID = "gate"
# The ids no optimizer net may take, and what is saved under each.
RESERVED_IDS = {ATTENTION_ID: "attention", GATE_ID: "attraction gate"}

# The per-coordinate features, in the order they are stacked.
FEATURES = ("gradient", "momentum", "personal_best", "attraction")

# The meta-objectives of `SwarmConfig.objective` (docs/design.md, "What the
# swarm is trained to do").
OBJECTIVES = ("sum", "best_so_far", "final_best")
# The weightings over an unroll's steps of `SwarmConfig.time_weighting`.
TIME_WEIGHTINGS = ("uniform", "increasing", "final")
# The kinds of `SwarmConfig.attraction_gain`.
ATTRACTION_GAINS = ("off", "learned", "jump", "hop")
# The options that take one of a few names, and the names.
_CHOICES = {"objective": OBJECTIVES, "time_weighting": TIME_WEIGHTINGS,
            "attraction_gain": ATTRACTION_GAINS}


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
      schedule (in every meta-loss, h is the entropy a first pass at
      h = d ln 5 measures).
    objective: what the unroll's loss F[t, j, i] (step t, particle j,
      instance i) is summed into. "sum" (LOIS's): sum_t sum_j mean_i F, every
      particle paid for every step, so greedy descent from each start is
      what it rewards. "best_so_far": sum_t mean_i B[t, i], with
      B[t, i] = min over the particles and the steps s <= t (and the
      instance's best before the unroll) of F[s, j, i]: only improving the
      best point found pays, so moving away from a basin costs nothing.
      "final_best": mean_i min_j F[T, j, i], the best particle at the end.
    final_weight: with "best_so_far", adds
      `final_weight * (T + 1) * mean_j mean_i F[T, j, i]`, every particle's
      loss at the unroll's end, so the record pays for exploring and this
      term for ending in the best basin found (0: off).
    time_weighting: "uniform"; "increasing": step t of an unroll of T
      counts w_t = 2 (t + 1) / (T + 2) (mean 1), so late steps matter more
      than early ones; or "final": only the unroll's last step counts, with
      weight T + 1 (unused by "final_best", which is final already).
    normalise_entropy: when True, the entropy enters as
      `entropy_weight * |L| / H * H` with |L| and H held constant, so
      `entropy_weight` is the entropy's share of the objective L's scale
      instead of an absolute factor.
    per_instance: when the problem is a batch of independent instances (one
      [batch, d] variable, one loss per row), each row is a swarm of its own:
      personal bests, attraction and gradient attention compare the
      particles' points and losses in that row. When False they compare
      whole particles by their mean loss over the batch (the rows' swarms
      then mix, and attraction softmaxes over distances summed over every
      row).
    step_noise: standard deviation of Gaussian noise added to every
      coordinate of every move (0: none), in training and evaluation alike.
    step_scale: factor of the nets' updates in the swarm (> 0). The default
      net's outputs are scaled by 0.01, so a jump of one Rastrigin basin
      needs an LSTM output near 100, which a brief meta-training never
      reaches; a larger factor makes long moves reachable.
    attraction_gain: a move toward the best point the particle's instance
      has found (its record), added to the net's update:
      `x' = x + delta + c (x_record - x)`, with `c` from a learned gate
      g = sigmoid(logit) per particle and instance (`features.AttractionGate`:
      it reads how much worse the particle is than the record and whether it
      has stopped improving). "off": c = 0 (no gate). "learned": c = g,
      trained through the move like every other weight. "jump": c ~
      Bernoulli(g), a jump onto the record, trained by the score-function
      (REINFORCE) estimator, since the loss after a jump across basins has
      no useful gradient in g (docs/design.md, "What the swarm is trained to
      do"). The gate starts at g ~ 0.018 (logit -4). "hop": basin hopping
      by the swarm. A particle jumps as with "jump", but onto the record
      plus uniform noise in [-hop_noise, hop_noise] per coordinate, and the
      gate's stillness input measures its progress since its previous step
      (a particle that has just hopped counts as improving), so particles
      descend, stall, hop near the record and descend again. The gate starts
      as the stall rule: g = 1/2 at stillness `hop_threshold`, shut while a
      particle improves fast, open once it stalls.
    hop_noise: with "hop", the half-width of the uniform noise around the
      record that a hop lands in, per coordinate (> 0).
    hop_noise_range: with "hop", the ratio of the largest particle's noise
      to the smallest's: particle j of k hops with half-width
      `hop_noise * hop_noise_range ** (j / (k - 1) - 1/2)`, a portfolio of
      scales around `hop_noise` for functions whose basins differ in size
      (1: every particle alike).
    hop_threshold: with "hop", the stillness in [0, 1] at which the initial
      gate opens halfway (stillness s means relative progress 1e-8^s per
      step: 0.4 is about 6e-4).
    step_shrink: each particle's own step size on each instance, a factor
      of the nets' updates that adapts by the "bold driver" rule: after a
      step that made the particle's loss worse it is multiplied by
      `step_shrink`, after one that did not, divided by its square root, up
      to 1; a hop resets it to 1. A learned update that does not shrink by
      itself near a minimum (on a cone, whose gradient does not vanish) then
      still converges. With "hop", each instance's record holder then
      refines the record instead of hopping: it descends on with its
      shrinking steps while the others hop around it. In (0, 1]; 1: off.
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
  objective: str = "sum"
  time_weighting: str = "uniform"
  final_weight: float = 0.0
  normalise_entropy: bool = False
  per_instance: bool = False
  step_noise: float = 0.0
  step_scale: float = 1.0
  attraction_gain: str = "off"
  hop_noise: float = 0.5
  hop_noise_range: float = 1.0
  hop_threshold: float = 0.4
  step_shrink: float = 1.0

  def __post_init__(self):
    for name, choices in _CHOICES.items():
      if getattr(self, name) not in choices:
        raise ValueError("Swarm option {}={!r} must be one of {}.".format(
            name, getattr(self, name), ", ".join(choices)))
    checks.check_fields(self, "Swarm option ")
    if not self.step_scale > 0:
      raise ValueError("Swarm option step_scale must be > 0, got {!r}."
                       .format(self.step_scale))
    if self.step_noise < 0:
      raise ValueError("Swarm option step_noise must be >= 0, got {!r}."
                       .format(self.step_noise))
    if not self.hop_noise > 0:
      raise ValueError("Swarm option hop_noise must be > 0, got {!r}."
                       .format(self.hop_noise))
    if not self.hop_noise_range >= 1:
      raise ValueError("Swarm option hop_noise_range must be >= 1, got {!r}."
                       .format(self.hop_noise_range))
    if not 0 < self.step_shrink <= 1:
      raise ValueError("Swarm option step_shrink must be in (0, 1], got {!r}."
                       .format(self.step_shrink))
    if not 0 <= self.hop_threshold <= 1:
      raise ValueError("Swarm option hop_threshold must be in [0, 1], got "
                       "{!r}.".format(self.hop_threshold))

  @classmethod
  def option_names(cls):
    """The keyword names reserved for swarm options."""
    return {field.name for field in dataclasses.fields(cls)}

  @property
  def active(self):
    return self.num_particles > 1

  @property
  def gated(self):
    """True when the swarm moves particles toward the record by a gate."""
    return self.attraction_gain != "off"

  @property
  def jumps(self):
    """True when the gate's moves are random jumps ("jump", "hop")."""
    return self.attraction_gain in ("jump", "hop")

  def feature_names(self):
    """The enabled features, in the order they are stacked."""
    return tuple(name for name in FEATURES
                 if name == "gradient" or getattr(self, "use_" + name))
