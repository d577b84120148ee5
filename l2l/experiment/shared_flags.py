"""The flags train and evaluate share: data, problems of one's own, swarms.

They are apart from cli.py because checking them imports the problem
registry (util), and with it TensorFlow, which the other commands need not.
"""

from absl import flags

from l2l.data import datasets
from l2l.experiment import cli
from l2l.swarm import config as swarm_config
import util

FLAGS = flags.FLAGS


def define_flags():
  """Defines the flags train and evaluate both take (once).

  `check_flags` validates them.
  """
  if "num_particle" in FLAGS:
    return
  flags.DEFINE_string("data_dir", None, "Directory of the mnist/cifar data "
                      "files, searched first; then $" + datasets.ENV_VAR +
                      ", then the cache (l2l-data's downloads).")
  flags.DEFINE_integer("num_particle", 1, "Particles per swarm (LOIS); 1 is "
                       "plain L2L.")
  flags.DEFINE_multi_string(
      "problem_module", [], "A Python file or module name to import first: "
      "it registers problems of one's own with util.register_problem, which "
      "--problem can then name. Repeat the flag for several.")
  defaults = swarm_config.SwarmConfig()
  flags.DEFINE_boolean(
      "swarm_per_instance", defaults.per_instance, "Swarm: on a batch of "
      "independent instances (Rastrigin's rows) each row is a swarm of its "
      "own; off, particles compare their mean loss over the batch. Train "
      "and evaluate a swarm with the same setting.")
  flags.DEFINE_float("swarm_step_noise", defaults.step_noise, "Swarm: "
                     "stddev of Gaussian noise added to every move (>= 0).",
                     lower_bound=0.0)
  flags.DEFINE_float("swarm_step_scale", defaults.step_scale, "Swarm: factor "
                     "of the net's updates (> 0). Train and evaluate a swarm "
                     "with the same setting.")
  flags.DEFINE_enum("swarm_attraction_gain", defaults.attraction_gain,
                    list(swarm_config.ATTRACTION_GAINS), "Swarm: a learned "
                    "gate moves each particle toward its instance's best "
                    "point: off, learned (a pull by the gate's value), "
                    "jump (onto that point with the gate's probability) or "
                    "hop (basin hopping: once a particle stalls, onto that "
                    "point plus uniform noise of --swarm_hop_noise). "
                    "Evaluation takes the saved swarm's unless given.")
  flags.DEFINE_float("swarm_hop_noise", defaults.hop_noise, "Swarm, with "
                     "--swarm_attraction_gain=hop: half-width of the noise "
                     "around the best point a hop lands in (> 0).")
  flags.DEFINE_float("swarm_step_shrink", defaults.step_shrink, "Swarm: "
                     "each particle's step size is multiplied by this after "
                     "a step that made its loss worse and grows back after "
                     "one that did not, in (0, 1]; 1 is off. With "
                     "--swarm_attraction_gain=hop each instance's record "
                     "holder then refines the record instead of hopping. "
                     "Evaluation takes the saved swarm's unless given.")


def warn_unused_swarm_flags(attraction_gain):
  """Warns of shared swarm flags given that a swarm of `attraction_gain`
  does not use (the hop noise of a swarm that does not hop)."""
  if attraction_gain != "hop":
    cli.warn_unused(cli.given_flags("swarm_hop_noise"),
                    "the swarm's attraction gain is {!r}, not 'hop'".format(
                        attraction_gain))


def swarm_flag_options(only_given=False):
  """The swarm options the shared flags set (for --num_particle > 1).

  Args:
    only_given: only the flags given on the command line, so that a saved
      swarm's manifest supplies the others.

  Returns:
    A dict of `SwarmConfig` options.
  """
  flag_of = {"per_instance": "swarm_per_instance",
             "step_noise": "swarm_step_noise",
             "step_scale": "swarm_step_scale",
             "attraction_gain": "swarm_attraction_gain",
             "hop_noise": "swarm_hop_noise",
             "step_shrink": "swarm_step_shrink"}
  return {option: FLAGS[flag].value for option, flag in flag_of.items()
          if not only_given or FLAGS[flag].present}


def check_flags():
  """Validates the flags of `define_flags` (exits on a bad one).

  It also imports the `--problem_module`s, so that the problems they
  register are known when `--problem` is checked.
  """
  cli.check_at_least(1, "num_particle")
  # Checked whether or not the run uses them: a NaN is never passed over.
  cli.check_positive_number("swarm_step_scale", "swarm_hop_noise")
  cli.check_non_negative_number("swarm_step_noise")
  cli.check_with("swarm_step_shrink",
                 lambda shrink: swarm_config.SwarmConfig(step_shrink=shrink))
  cli.check_not_empty("data_dir", "problem_module")
  for spec in FLAGS.problem_module:
    try:
      util.load_problem_module(spec)
    except ValueError as error:
      cli.fail("--problem_module={} is invalid: {}".format(spec, error))
