"""Tests for l2l/swarm/config.py: the swarm's options."""

import dataclasses

import pytest

from l2l.swarm import config


@pytest.mark.parametrize("options, name", [
    ({"num_particles": 0}, "num_particles"),
    ({"num_particles": -2}, "num_particles"),
    ({"num_particles": 2.5}, "num_particles"),
    ({"num_particles": "3"}, "num_particles"),
    ({"num_particles": True}, "num_particles"),
    ({"num_particles": float("inf")}, "num_particles"),
    ({"num_particles": float("nan")}, "num_particles"),
    ({"num_particles": 2, "momentum_beta": "x"}, "momentum_beta"),
    ({"num_particles": 2, "entropy_weight": None}, "entropy_weight"),
    ({"num_particles": 2, "use_entropy": "no"}, "use_entropy"),
    ({"num_particles": 2, "use_entropy": 1}, "use_entropy"),
    ({"num_particles": 2, "attention_gamma": "1/k"}, "attention_gamma"),
    ({"objective": "greedy"}, "objective"),
    ({"objective": None}, "objective"),
    ({"time_weighting": "late"}, "time_weighting"),
    ({"final_weight": None}, "final_weight"),
    ({"normalise_entropy": 1}, "normalise_entropy"),
    ({"per_instance": "yes"}, "per_instance"),
    ({"step_noise": -0.1}, "step_noise"),
    ({"step_scale": 0.0}, "step_scale"),
    ({"step_scale": -1.0}, "step_scale"),
    ({"hop_noise": 0.0}, "hop_noise"),
    ({"hop_threshold": 1.5}, "hop_threshold"),
    ({"hop_noise_range": 0.5}, "hop_noise_range"),
    ({"hop_threshold": -0.1}, "hop_threshold"),
    ({"step_shrink": 0.0}, "step_shrink"),
    ({"step_shrink": 1.5}, "step_shrink"),
    # No finite number: each passed every range check once.
    ({"momentum_beta": float("nan")}, "momentum_beta must be a finite"),
    ({"gp_nugget": float("inf")}, "gp_nugget must be a finite number"),
    ({"step_noise": float("nan")}, "step_noise must be a finite number"),
    ({"attention_hidden_size": 2.5},
     "attention_hidden_size must be a positive integer, got 2.5"),
    ({"num_posterior_samples": 0}, "num_posterior_samples must be a positive"),
])
def test_bad_options_name_the_option(options, name):
  with pytest.raises(ValueError, match="Swarm option " + name):
    config.SwarmConfig(**options)


def test_defaults_are_the_papers():
  swarm = config.SwarmConfig()
  assert swarm.num_particles == 1 and not swarm.active
  assert swarm.momentum_beta == 0.9
  assert swarm.gp_nugget == 2.1
  assert swarm.entropy_weight == 0.001
  assert swarm.num_posterior_samples == 1000
  assert swarm.attention_gamma is None and swarm.entropy_scale is None
  # LOIS's objective and whole-particle features stay the default: nothing
  # measured beat them clearly (docs/design.md, "Training a swarm").
  assert swarm.objective == "sum" and swarm.time_weighting == "uniform"
  assert swarm.final_weight == 0.0 and not swarm.normalise_entropy
  assert not swarm.per_instance
  assert swarm.step_noise == 0.0 and swarm.step_scale == 1.0
  assert swarm.step_shrink == 1.0


def test_optional_numbers_take_none_or_a_number():
  swarm = config.SwarmConfig(num_particles=4, attention_gamma=0.5,
                             entropy_scale=2)
  assert swarm.active
  assert swarm.attention_gamma == 0.5
  assert swarm.entropy_scale == 2


def test_options_are_frozen():
  with pytest.raises(dataclasses.FrozenInstanceError):
    config.SwarmConfig().num_particles = 3


def test_option_names():
  names = config.SwarmConfig.option_names()
  assert len(names) == 30
  assert {"num_particles", "momentum_beta", "use_entropy",
          "use_feature_attention", "entropy_scale", "objective",
          "time_weighting", "final_weight", "normalise_entropy",
          "per_instance", "step_noise", "step_scale",
          "attraction_gain", "hop_noise", "hop_threshold",
          "hop_noise_range", "step_shrink"} <= names
  assert not set(config.RESERVED_IDS) & names


def test_attraction_gain_takes_one_of_its_kinds():
  assert not config.SwarmConfig(num_particles=2).gated
  assert config.SwarmConfig(num_particles=2, attraction_gain="jump").gated
  with pytest.raises(ValueError, match="attraction_gain='always'.*off, "
                     "learned, jump"):
    config.SwarmConfig(num_particles=2, attraction_gain="always")


@pytest.mark.parametrize("switches, expected", [
    ({}, ("gradient", "momentum", "personal_best", "attraction")),
    ({"use_momentum": False}, ("gradient", "personal_best", "attraction")),
    ({"use_momentum": False, "use_personal_best": False,
      "use_attraction": False}, ("gradient",)),
    ({"use_attraction": False}, ("gradient", "momentum", "personal_best")),
])
def test_feature_names_keep_the_stacking_order(switches, expected):
  assert config.SwarmConfig(num_particles=2, **switches).feature_names() == (
      expected)
  assert expected == tuple(f for f in config.FEATURES if f in expected)


def test_jumps_are_the_random_gates():
  assert [config.SwarmConfig(attraction_gain=gain).jumps
          for gain in config.ATTRACTION_GAINS] == [False, False, True, True]
