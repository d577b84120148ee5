"""Tests for shared_flags.py: the flags train and evaluate both take."""

import pytest

from l2l.experiment import shared_flags
from l2l.swarm import config as swarm_config
import util

FLAGS = shared_flags.FLAGS


@pytest.fixture(name="parse")
def fixture_parse():
  """Parses an argument list into the shared flags; unparses afterwards."""
  shared_flags.define_flags()
  shared_flags.define_flags()  # A second call defines nothing twice.

  def parse(*args):
    FLAGS(["prog"] + list(args))

  yield parse
  FLAGS.unparse_flags()


def test_check_names_the_bad_particle_count(parse, capsys):
  parse("--num_particle=0")
  with pytest.raises(SystemExit) as exit_info:
    shared_flags.check_flags()
  assert exit_info.value.code == 1
  assert capsys.readouterr().err == (
      "Error: --num_particle=0 is invalid: expected an integer >= 1.\n")


def test_a_problem_module_that_is_not_there_is_one_line(parse, tmp_path,
                                                        capsys):
  missing = tmp_path / "nowhere.py"
  parse("--problem_module=" + str(missing))
  with pytest.raises(SystemExit):
    shared_flags.check_flags()
  err = capsys.readouterr().err
  assert err.startswith("Error: --problem_module={} is invalid: ".format(
      missing)) and err.count("\n") == 1, err


def test_a_problem_module_registers_its_problems(parse, tmp_path):
  module = tmp_path / "my_problems.py"
  module.write_text(
      "import problems, util\n"
      "util.register_problem('shared_flags_test_bowl',\n"
      "                      lambda mode: problems.simple())\n")
  parse("--problem_module=" + str(module))
  shared_flags.check_flags()
  try:
    assert "shared_flags_test_bowl" in util.problem_names()
  finally:
    util.unregister_problem("shared_flags_test_bowl")


def test_swarm_options_all_or_only_those_given(parse):
  parse("--swarm_step_noise=0.25", "--swarm_attraction_gain=hop")
  defaults = swarm_config.SwarmConfig()
  assert shared_flags.swarm_flag_options() == {
      "per_instance": defaults.per_instance, "step_noise": 0.25,
      "step_scale": defaults.step_scale, "attraction_gain": "hop",
      "hop_noise": defaults.hop_noise, "step_shrink": defaults.step_shrink}
  assert shared_flags.swarm_flag_options(only_given=True) == {
      "step_noise": 0.25, "attraction_gain": "hop"}
