"""Evaluates a learned optimizer, or a hand-designed baseline, on a problem.

    python evaluate.py --problem=quadratic --optimizer=L2L --path=./quadratic
    python evaluate.py --problem=quadratic --optimizer=Adam --learning_rate=0.01
"""

from absl import app
from absl import flags
import numpy as np

import evaluation
import util

FLAGS = flags.FLAGS
flags.DEFINE_enum("optimizer", "L2L", list(evaluation.OPTIMIZERS),
                  "Optimizer to evaluate.")
flags.DEFINE_string("path", None, "Directory of a saved L2L optimizer.")
flags.DEFINE_float("learning_rate", 0.001, "Learning rate of a baseline.")
flags.DEFINE_integer("num_epochs", 100, "Number of evaluation instances.")
flags.DEFINE_integer("seed", 0, "Seed of the problem instances; the same seed "
                     "gives every optimizer the same instances.")
flags.DEFINE_string("problem", "simple", "Problem to evaluate on.")
flags.DEFINE_integer("num_steps", 100, "Optimizer steps per instance.")
flags.DEFINE_integer("num_particle", 1, "Particles per swarm (LOIS).")


def main(argv):
  del argv
  swarm_options = {}
  if FLAGS.num_particle > 1:
    swarm_options["num_particles"] = FLAGS.num_particle
  result = evaluation.evaluate(
      FLAGS.optimizer, FLAGS.problem, num_steps=FLAGS.num_steps,
      num_epochs=FLAGS.num_epochs, seed=FLAGS.seed,
      learning_rate=FLAGS.learning_rate, path=FLAGS.path,
      swarm_options=swarm_options)
  util.print_stats("Epoch {}".format(FLAGS.num_epochs),
                   np.sum(result.losses[:, -1]), np.sum(result.seconds),
                   FLAGS.num_epochs)


def run():
  """Entry point of the installed command."""
  app.run(main)


if __name__ == "__main__":
  run()
