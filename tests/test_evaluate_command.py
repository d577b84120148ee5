"""Tests for evaluate_command.py through evaluate.py."""

import os
import subprocess
import sys

import numpy as np

from conftest import write_lois_released

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_evaluate_command_line(ref, tmp_path):
  command = [sys.executable, "evaluate.py", "--problem=simple",
             "--optimizer=Adam", "--num_epochs=2", "--num_steps=3",
             "--records_dir=" + str(tmp_path)]
  done = subprocess.run(command, cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.returncode == 0, done.stderr
  final = ref.adam(lambda x, t: 2 * x, 1.0, 3, learning_rate=0.001)[-1]
  assert "Epoch 2\n" in done.stdout
  assert "Log Mean Final Error: {:.2f}\n".format(
      np.log10(final**2)) in done.stdout
  (records,) = os.listdir(tmp_path)
  assert "Records: {}\n".format(tmp_path / records) in done.stdout


def test_evaluate_help_lists_every_flag():
  done = subprocess.run([sys.executable, "evaluate.py", "--help"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        check=False)
  for flag in ("--optimizer", "--path", "--problem", "--num_particle",
               "--data_dir", "--tune", "--records_dir", "--pso_inertia"):
    assert flag in done.stdout, flag


def test_evaluate_command_on_a_released_directory(tmp_path):
  write_lois_released(str(tmp_path), 128 * 2)
  completed = subprocess.run(
      [sys.executable, "evaluate.py", "--problem=square_cos_2",
       "--num_particle=4", "--optimizer=L2L", "--path=" + str(tmp_path),
       "--num_steps=3", "--num_epochs=1", "--records_dir=" +
       str(tmp_path / "records")],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr
  assert "Best particle mean final loss" in completed.stdout
  assert "LOIS released model" in completed.stderr


def test_an_optimizer_saved_by_a_script_loads_in_evaluate(tmp_path):
  # The README's "In your own scripts" route: MetaOptimizer() with its
  # default net, saved by the script, evaluated by the command.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import meta  # pylint: disable=g-import-not-at-top
  import problems  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    optimizer = meta.MetaOptimizer()
    optimizer.meta_minimize(problems.quadratic(batch_size=4, num_dims=3), 2)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      saved = optimizer.save(sess, str(tmp_path / "mine"))
  assert sorted(saved) == [str(tmp_path / "mine" / "cw.l2l")]
  done = subprocess.run(
      [sys.executable, "evaluate.py", "--problem=quadratic", "--optimizer=L2L",
       "--path=" + str(tmp_path / "mine"), "--num_epochs=1", "--num_steps=2",
       "--records_dir=" + str(tmp_path / "records")],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "Log Mean Final Error: " in done.stdout
