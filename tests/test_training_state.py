"""Tests for training_state.py: the kept state of a resumable run."""

import re

import numpy as np
import pytest
import tensorflow as tf

from l2l.experiment import training_state


def test_write_then_read_round_trips_values_and_info(tmp_path):
  values = {"vars_optimizer/linear/w:0": np.arange(6, dtype=np.float32)
            .reshape(2, 3), "beta1_power:0": np.float32(0.81)}
  written = training_state.write(str(tmp_path), values,
                                 {"epoch": 7, "resets": 7, "best": 0.25})
  assert written == training_state.path(str(tmp_path))
  assert training_state.exists(str(tmp_path))
  read_values, info = training_state.read(str(tmp_path))
  assert sorted(read_values) == sorted(values)
  np.testing.assert_array_equal(read_values["vars_optimizer/linear/w:0"],
                                values["vars_optimizer/linear/w:0"])
  assert float(read_values["beta1_power:0"]) == pytest.approx(0.81)
  assert info["epoch"] == 7 and info["best"] == 0.25
  assert info["version"] == training_state.VERSION


def test_missing_or_corrupt_state_is_one_clear_error(tmp_path):
  with pytest.raises(training_state.TrainingStateError,
                     match="No training state"):
    training_state.read(str(tmp_path))
  where = training_state.path(str(tmp_path))
  training_state.write(str(tmp_path), {}, {"epoch": 0, "resets": 0})
  with open(where, "wb") as stream:
    stream.write(b"PK\x03\x04 not an npz")
  with pytest.raises(training_state.TrainingStateError,
                     match="not a readable training state"):
    training_state.read(str(tmp_path))
  # A file of text once got numpy's advice to load it with pickle.
  with open(where, "w") as stream:
    stream.write("hi\n")
  with pytest.raises(training_state.TrainingStateError) as error:
    training_state.read(str(tmp_path))
  assert str(error.value) == (
      "{} is not a readable training state: it is not an .npz archive (a "
      "zip file of arrays)".format(where))
  # An archive without the settings said only "'info'".
  np.savez(where, var_x=np.zeros(2))
  with pytest.raises(training_state.TrainingStateError) as error:
    training_state.read(str(tmp_path))
  assert str(error.value) == (
      "{} is not a readable training state: it has no 'info' array (the "
      "run's settings)".format(where))


@pytest.mark.parametrize("info, values, message", [
    ({"resets": 0}, {}, "its epoch is null, expected a count (an integer "
     ">= 0)"),
    ({"epoch": "six", "resets": 0}, {}, "its epoch is \"six\", expected a "
     "count (an integer >= 0)"),
    ({"epoch": 6, "resets": None}, {}, "its resets is null, expected a count "
     "(an integer >= 0)"),
    ({"epoch": 6, "resets": 6, "best_evaluation": "nan"}, {},
     "its best_evaluation is \"nan\", expected a finite number or null"),
    ({"epoch": 6, "resets": 6, "settings": [1]}, {},
     "its settings are [1], expected an object"),
    ({"epoch": 6, "resets": 6, "cluster": {"w": 1}}, {},
     "its cluster is {\"w\": 1}, expected an object with a count of "
     "workers"),
    ({"epoch": 6, "resets": 6}, {"w:0": np.array(["x"])},
     "variable w:0 holds <U1 values, not real numbers"),
    ({"epoch": 6, "resets": 6}, {"w:0": np.array([1j])},
     "variable w:0 holds complex128 values, not real numbers"),
])
def test_a_damaged_state_is_one_error_naming_what_is_wrong(tmp_path, info,
                                                            values, message):
  training_state.write(str(tmp_path), values, info)
  with pytest.raises(training_state.TrainingStateError) as error:
    training_state.read(str(tmp_path))
  assert str(error.value) == (
      "{} is not a readable training state: {}; resume from an intact "
      "state, or start afresh.".format(training_state.path(str(tmp_path)),
                                       message))


# A state's trajectory settings, as a run before the meta-objective wrote.
_SETTINGS = {"problem": "simple", "num_steps": 4, "unroll_length": 2,
             "learning_rate": 0.001, "second_derivatives": False, "seed": 1,
             "num_particles": 1}


def test_resuming_with_other_settings_names_the_flag():
  saved = dict(_SETTINGS)
  training_state.check_settings(saved, dict(saved), "state.npz")
  with pytest.raises(training_state.TrainingStateError,
                     match="--seed=1, but this run has --seed=2"):
    training_state.check_settings(saved, dict(saved, seed=2), "state.npz")


def test_a_state_older_than_the_meta_objective_resumes_as_sum():
  saved = dict(_SETTINGS)
  training_state.check_settings(saved, dict(saved, meta_objective="sum"),
                                "state.npz")
  with pytest.raises(training_state.TrainingStateError,
                     match="--meta_objective=sum, but this run has "
                     "--meta_objective=log"):
    training_state.check_settings(saved, dict(saved, meta_objective="log"),
                                  "state.npz")


def test_resuming_with_other_swarm_options_names_the_option():
  saved = {"num_particles": 4, "objective": "sum", "attraction_gain": "jump"}
  training_state.check_swarm_options(saved, dict(saved), "state.npz")
  with pytest.raises(training_state.TrainingStateError,
                     match="state.npz was written with the swarm option "
                     "objective='sum', but this run has "
                     "objective='final_best'"):
    training_state.check_swarm_options(
        saved, dict(saved, objective="final_best"), "state.npz")
  # An option an older record lacks counts as its default.
  older = {"num_particles": 4, "objective": "sum"}
  training_state.check_swarm_options(
      older, dict(older, attraction_gain="off"), "manifest.json")
  with pytest.raises(training_state.TrainingStateError,
                     match="attraction_gain='off', but this run has "
                     "attraction_gain='learned'"):
    training_state.check_swarm_options(
        older, dict(older, attraction_gain="learned"), "manifest.json")


def test_random_ops_that_no_replay_covers_are_found():
  with tf.Graph().as_default() as graph:
    replayed = tf.random.uniform([2], name="instance")
    tf.random.normal([3], name="minibatch")
    found = training_state.unreplayed_random_ops(graph, [replayed])
  assert found == ["minibatch/RandomStandardNormal"]


def test_no_state_to_resume_names_the_absolute_directory(tmp_path,
                                                        monkeypatch):
  # A resume command pasted in another directory looks elsewhere: the
  # message says where.
  monkeypatch.chdir(tmp_path)
  with pytest.raises(training_state.TrainingStateError, match=(
      r"No training state in {0} \(expected {0}/training_state/state.npz\); "
      r"if the run is elsewhere, give its directory".format(
          re.escape(str(tmp_path / "run"))))):
    training_state.read("run")
