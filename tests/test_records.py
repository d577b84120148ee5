"""Tests for records.py and for the tuning/evaluation split of evaluation.py.

The records tests use hand-made arrays; only the tuning tests build graphs.
"""

import datetime
import io
import json
import os
import platform
import zipfile

import numpy as np
import pytest


import l2l
from l2l import files
from l2l.experiment import records

SETTINGS = {
    "optimizer": "Adam", "problem": "quadratic", "learning_rate": 0.01,
    "seed": 3, "num_steps": 2, "num_epochs": 2, "path": None,
    "swarm_options": {}, "tuning": None,
}


class _Evaluation:
  """Stands in for `evaluation.Evaluation` without importing TensorFlow."""

  def __init__(self, losses, seconds, positions, row_losses=None,
               lstm_step=None):
    self.losses = losses
    self.seconds = seconds
    self.positions = positions
    self.row_losses = row_losses
    self.lstm_step = lstm_step


def _arrays():
  losses = np.array([[[3.5, 2.25], [1.0 / 3, 0.1], [1e-300, 7.0]],
                     [[4.0, -1.5], [np.pi, 2.0], [0.5, np.e]]])
  seconds = np.array([0.125, 1.0 / 7])
  positions = (np.arange(2 * 3 * 2 * 5, dtype=np.float32)
               .reshape(2, 3, 2, 5) / 3)
  return losses, seconds, positions


class _FixedClock:
  """A stand-in for the `datetime` module whose `now` never moves."""

  timezone = datetime.timezone

  class datetime:  # pylint: disable=invalid-name
    @staticmethod
    def now(tz=None):
      return datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=tz)


def _files(directory):
  return sorted(os.listdir(directory))


def test_write_read_round_trip(tmp_path):
  losses, seconds, positions = _arrays()
  path = records.write(str(tmp_path), _Evaluation(losses, seconds,
                                                  positions), SETTINGS)
  assert os.path.dirname(path) == str(tmp_path)
  assert os.path.basename(path).startswith("quadratic_Adam_")
  assert path.endswith(".npz")

  arrays, settings = records.read(path)

  assert sorted(arrays) == ["best_curve", "final_row_losses", "losses",
                            "positions", "seconds"]
  assert arrays["losses"].dtype == np.float64
  np.testing.assert_array_equal(arrays["losses"], losses)
  # Without per-row losses, each particle's batch mean is its one row.
  np.testing.assert_array_equal(arrays["final_row_losses"],
                                losses[:, -1, :, np.newaxis])
  np.testing.assert_array_equal(arrays["best_curve"], np.min(losses, 2))
  np.testing.assert_array_equal(arrays["seconds"], seconds)
  assert arrays["positions"].dtype == np.float32
  np.testing.assert_array_equal(arrays["positions"], positions)
  added = {"versions", "machine", "command", "created", "final_status"}
  assert set(settings) == set(SETTINGS) | added
  assert {k: settings[k] for k in SETTINGS} == SETTINGS
  # The seconds are only comparable on a machine like this one.
  assert settings["machine"]["cpus"] == os.cpu_count()
  assert settings["machine"]["processor"] == (
      files.cpuinfo_field("model name") or platform.processor())
  assert isinstance(settings["versions"]["tensorflow"], str)
  assert settings["versions"]["numpy"] == np.__version__
  assert settings["versions"]["l2l"] == l2l.__version__
  created = datetime.datetime.fromisoformat(settings["created"])
  assert created.utcoffset() == datetime.timedelta(0)
  assert created.microsecond == 0
  assert _files(tmp_path) == [os.path.basename(path)]


def test_write_without_positions_and_with_given_versions(tmp_path):
  losses, seconds, _ = _arrays()
  given = dict(SETTINGS, versions={"tensorflow": "0.0"},
               created="2000-01-01T00:00:00+00:00", command="made by hand",
               machine={"cpus": 64}, lstm_step="TensorFlow ops")
  path = records.write(str(tmp_path / "new" / "dir"),
                       _Evaluation(losses, seconds, None,
                                   lstm_step="native kernel"), given)
  arrays, settings = records.read(path)
  assert sorted(arrays) == ["best_curve", "final_row_losses", "losses",
                            "seconds"]
  # The verdict of scores.py is always added from the losses.
  assert settings == dict(given, final_status="finite")


def test_second_write_in_the_same_second_never_overwrites(tmp_path,
                                                          monkeypatch):
  monkeypatch.setattr(records, "datetime", _FixedClock)
  losses, seconds, _ = _arrays()
  first = records.write(str(tmp_path), _Evaluation(losses, seconds, None),
                        SETTINGS)
  with open(first, "rb") as stream:
    first_bytes = stream.read()
  second = records.write(str(tmp_path),
                         _Evaluation(losses * 2, seconds, None), SETTINGS)
  third = records.write(str(tmp_path),
                        _Evaluation(losses * 3, seconds, None), SETTINGS)

  stem = "quadratic_Adam_20240506-070809"
  assert os.path.basename(first) == stem + ".npz"
  assert os.path.basename(second) == stem + "-1.npz"
  assert os.path.basename(third) == stem + "-2.npz"
  with open(first, "rb") as stream:
    assert stream.read() == first_bytes
  np.testing.assert_array_equal(records.read(first)[0]["losses"], losses)
  np.testing.assert_array_equal(records.read(second)[0]["losses"],
                                losses * 2)
  assert records.read(first)[1]["created"] == "2024-05-06T07:08:09+00:00"
  # No temporary files are left behind.
  assert _files(tmp_path) == sorted(
      os.path.basename(p) for p in (first, second, third))


def test_file_name_is_slugged(tmp_path, monkeypatch):
  monkeypatch.setattr(records, "datetime", _FixedClock)
  losses, seconds, _ = _arrays()
  settings = dict(SETTINGS, problem="../a b/c", optimizer="L2L swarm",
                  versions={})
  path = records.write(str(tmp_path), _Evaluation(losses, seconds, None),
                       settings)
  # No path separators survive: the file stays in the directory.
  assert os.path.basename(path) == "a-b-c_L2L-swarm_20240506-070809.npz"
  assert os.path.dirname(path) == str(tmp_path)


def test_read_of_a_file_that_is_not_npz(tmp_path):
  path = tmp_path / "notes.npz"
  path.write_text("not a records file\n")
  with pytest.raises(records.RecordsError, match="notes.npz"):
    records.read(str(path))


def test_read_of_an_npz_without_losses(tmp_path):
  path = str(tmp_path / "other.npz")
  np.savez(path, seconds=np.zeros(2), settings=np.asarray("{}"))
  with pytest.raises(records.RecordsError, match="other.npz.*losses"):
    records.read(path)


def test_read_of_an_npz_without_settings(tmp_path):
  path = str(tmp_path / "bare.npz")
  np.savez(path, losses=np.zeros((1, 1, 1)))
  with pytest.raises(records.RecordsError, match="bare.npz.*settings"):
    records.read(path)


def test_read_of_an_npz_with_pickled_arrays(tmp_path):
  path = str(tmp_path / "pickled.npz")
  np.savez(path, losses=np.array([None, 1.0], dtype=object),
           settings=np.asarray("{}"))
  with pytest.raises(records.RecordsError, match="pickled.npz"):
    records.read(path)


def test_read_of_a_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="missing.npz"):
    records.read(str(tmp_path / "missing.npz"))


def test_read_of_an_npy_file(tmp_path):
  path = str(tmp_path / "single.npy")
  np.save(path, np.zeros((1, 2, 1)))
  with pytest.raises(records.RecordsError, match="single.npy"):
    records.read(path)


def test_read_of_a_truncated_npz(tmp_path):
  path = tmp_path / "truncated.npz"
  path.write_bytes(b"PK\x03\x04" + bytes(20))
  with pytest.raises(records.RecordsError, match="truncated.npz"):
    records.read(str(path))


def test_read_of_settings_that_are_not_json(tmp_path):
  path = str(tmp_path / "badjson.npz")
  np.savez(path, losses=np.zeros((1, 2, 1)), settings=np.asarray("{oops"))
  with pytest.raises(records.RecordsError, match="badjson.npz"):
    records.read(path)


def test_summary_of_a_hand_made_array():
  # Two epochs, two steps, three particles; only step 1 is the final one.
  losses = np.array([
      [[9.0, 9.0, 9.0], [8.0, 5.0, 7.0]],    # best final: 5 (particle 1)
      [[9.0, 9.0, 9.0], [15.0, 21.0, 17.0]],  # best final: 15 (particle 0)
  ])
  figures = records.summary(losses)
  assert figures == {
      "final": 10.0,
      "log_final": 1.0,
      "status": "finite",
      "final_std": 5.0,
      "start_sets": 2,
      "final_by_mean": 10.0,
      "particle_means": [11.5, 13.0, 12.0],
  }


def test_a_records_file_scores_each_start_set_by_its_best_particle(
    tmp_path):
  # One instance of three rows; two restarts that each win some rows.
  row_losses = np.full((1, 2, 2, 3), 20.0)
  row_losses[0, -1] = [[1.0, 9.0, 1.0], [9.0, 1.0, 9.0]]
  path = records.write(str(tmp_path), _Evaluation(
      np.mean(row_losses, 3), np.ones(1), None, row_losses),
                       {"optimizer": "Adam", "problem": "square_cos_2"})
  arrays, _ = records.read(path)
  np.testing.assert_array_equal(arrays["final_row_losses"],
                                row_losses[:, -1])
  np.testing.assert_array_equal(arrays["best_curve"], [[20.0, 1.0]])
  figures = records.summary(records.scored_losses(arrays))
  assert figures["final"] == 1.0 and figures["final_std"] == 0.0
  assert figures["start_sets"] == 3
  assert figures["final_by_mean"] == pytest.approx(11 / 3)
  assert figures["particle_means"] == pytest.approx([11 / 3, 19 / 3])
  np.testing.assert_array_equal(records.best_curve(arrays), [[20.0, 1.0]])


def test_an_older_records_file_scores_as_one_row(tmp_path):
  losses = np.array([[[9.0, 9.0], [4.0, 2.0]]])
  path = str(tmp_path / "old.npz")
  np.savez(path, losses=losses, seconds=np.ones(1),
           settings=np.asarray('{"optimizer": "PSO"}'))
  arrays, _ = records.read(path)
  assert records.summary(records.scored_losses(arrays))["final"] == 2.0
  np.testing.assert_array_equal(records.best_curve(arrays), [[9.0, 2.0]])


def test_summary_of_one_particle():
  losses = np.array([[[5.0], [0.5]], [[6.0], [0.25]], [[7.0], [0.25]],
                     [[8.0], [0.0]]])
  figures = records.summary(losses)
  assert figures["final"] == 0.25
  assert figures["log_final"] == np.log10(0.25)
  assert figures["final_std"] == np.std([0.5, 0.25, 0.25, 0.0])
  assert figures["particle_means"] == [0.25]


def test_summary_of_non_positive_losses():
  # Rastrigin's minimum is 0: its log10 is -inf, the truth. The train-mode
  # variant can be negative: log10 of the mean is then undefined (NaN) and
  # the status says why.
  zero = records.summary(np.zeros((2, 3, 1)))
  assert zero["final"] == 0.0 and zero["log_final"] == -np.inf
  assert zero["status"] == "finite"
  negative = records.summary(np.full((2, 3, 2), -2.0))
  assert negative["final"] == -2.0 and np.isnan(negative["log_final"])
  assert negative["status"] == "negative"


def test_summary_and_records_file_of_a_diverged_run(tmp_path):
  losses = np.ones((2, 3, 1))
  losses[1, -1, 0] = np.nan
  figures = records.summary(losses)
  assert figures["status"] == "diverged"
  assert np.isnan(figures["final"]) and np.isnan(figures["log_final"])
  path = records.write(str(tmp_path), _Evaluation(losses, np.ones(2), None),
                       {"optimizer": "SGD", "problem": "simple"})
  assert records.read(path)[1]["final_status"] == "diverged"


def test_settings_are_stored_as_sorted_json(tmp_path):
  losses, seconds, _ = _arrays()
  path = records.write(str(tmp_path), _Evaluation(losses, seconds, None),
                       dict(SETTINGS, versions={}))
  with np.load(path, allow_pickle=False) as data:
    text = str(data["settings"])
  assert json.loads(text)["problem"] == "quadratic"
  assert list(json.loads(text)) == sorted(json.loads(text))


def test_non_finite_settings_are_stored_as_strict_json(tmp_path):
  losses, seconds, _ = _arrays()
  tuning = {"scores": {"0.1": float("inf"), "0.01": np.float32(0.25),
                       "1.0": float("nan")}, "bounds": [float("-inf"), 2.0]}
  path = records.write(str(tmp_path), _Evaluation(losses, seconds, None),
                       dict(SETTINGS, versions={}, tuning=tuning))
  with np.load(path, allow_pickle=False) as data:
    text = str(data["settings"])

  def refuse(constant):
    raise ValueError("not JSON: " + constant)

  stored = json.loads(text, parse_constant=refuse)["tuning"]
  assert stored == {"scores": {"0.1": "inf", "0.01": 0.25, "1.0": "nan"},
                    "bounds": ["-inf", 2.0]}
  assert records.read(path)[1]["tuning"] == stored


# ------------------------------------------------------------- tuning ---


@pytest.fixture(scope="module")
def evaluation():
  from l2l.experiment import evaluation as module
  return module


def test_tuning_seed_differs_from_every_evaluation_seed(evaluation):
  seeds = list(range(200)) + [12345, 2**31 - 1]
  for seed in seeds:
    assert evaluation.tuning_seed(seed) != seed
  # Nor does one evaluation's tuning seed coincide with another's seed.
  assert not {evaluation.tuning_seed(s) for s in range(200)} & set(range(200))


def _initial_losses(evaluation, seed):
  result = evaluation.evaluate("SGD", "quadratic", num_steps=1,
                               num_epochs=2, seed=seed, show_progress=False)
  assert result.losses.shape == (2, 2, 1)
  assert result.seconds.shape == (2,)
  assert result.positions is None
  return result.losses[:, 0, 0]


@pytest.mark.parametrize("seed", [0, 7])
def test_tuning_instances_differ_from_evaluation_instances(evaluation, seed):
  first = _initial_losses(evaluation, seed)
  again = _initial_losses(evaluation, seed)
  tuning = _initial_losses(evaluation, evaluation.tuning_seed(seed))
  np.testing.assert_array_equal(first, again)
  # Each epoch draws a fresh instance...
  assert first[0] != first[1]
  # ...and none of the tuning instances is an evaluation instance.
  assert not set(tuning.tolist()) & set(first.tolist())


def test_tune_picks_the_lower_score_on_tuning_instances_only(evaluation,
                                                             monkeypatch):
  real_evaluate = evaluation.evaluate
  calls = []

  def recording_evaluate(optimizer, problem_name, **kwargs):
    result = real_evaluate(optimizer, problem_name, **kwargs)
    calls.append((kwargs["seed"], kwargs["learning_rate"], result))
    return result

  monkeypatch.setattr(evaluation, "evaluate", recording_evaluate)
  best, scores = evaluation.tune("SGD", "quadratic", seed=0,
                                 grid=(1e-3, 1e-2), num_steps=3,
                                 num_epochs=2, show_progress=False)

  assert [(seed, lr) for seed, lr, _ in calls] == [
      (evaluation.tuning_seed(0), 1e-3), (evaluation.tuning_seed(0), 1e-2)]
  expected = {lr: evaluation.final_error(result.losses)
              for _, lr, result in calls}
  assert scores == expected
  assert scores[1e-2] < scores[1e-3]
  assert best == 1e-2
  for _, _, result in calls:
    assert result.losses.shape == (2, 4, 1)


def test_tune_rejects_optimizers_without_a_learning_rate(evaluation):
  with pytest.raises(ValueError, match="PSO"):
    evaluation.tune("PSO", "quadratic")


@pytest.mark.parametrize("name, content, message", [
    ("single.npy", None, "single.npy is not a records file"),
    ("zip.npz", b"PK\x03\x04" + bytes(20), "zip.npz is not a records file"),
    ("text.npz", b"hello", "text.npz is not a records file"),
])
def test_read_records_names_the_file(tmp_path, name, content, message):
  path = tmp_path / name
  if content is None:
    np.save(str(path), np.zeros((1, 2, 1)))
  else:
    path.write_bytes(content)
  with pytest.raises(records.RecordsError, match=message):
    records.read(str(path))


@pytest.mark.parametrize("arrays, message", [
    ({"losses": np.zeros((2, 3)), "settings": np.asarray("{}")},
     r"shape \[2, 3\]"),
    ({"losses": np.zeros((0, 3, 1)), "settings": np.asarray("{}")},
     r"shape \[0, 3, 1\]"),
    ({"losses": np.array([[["a"]]]), "settings": np.asarray("{}")},
     "not numbers"),
    ({"losses": np.zeros((1, 2, 1)), "settings": np.asarray("[1]")},
     "JSON list"),
    ({"losses": np.zeros((1, 2, 1)), "settings": np.asarray("{x")},
     "odd.npz is not a records file"),
    ({"losses": np.zeros((1, 2, 1)), "settings": np.asarray("{}"),
      "final_row_losses": np.zeros((1, 2, 3))},
     r"final_row_losses are float64 of shape \[1, 2, 3\], which does not "
     r"fit its losses of shape \[1, 2, 1\]"),
    ({"losses": np.zeros((1, 2, 1)), "settings": np.asarray("{}"),
      "best_curve": np.zeros((1, 3))}, "best_curve are float64"),
])
def test_read_records_checks_the_contents(tmp_path, arrays, message):
  path = str(tmp_path / "odd.npz")
  np.savez(path, **arrays)
  with pytest.raises(records.RecordsError, match=message):
    records.read(path)


@pytest.mark.parametrize("settings, message", [
    ({"seed": [1, 2]}, "its settings' seed is [1, 2], expected an integer."),
    ({"problem": {"a": 1}}, "its settings' problem is {\"a\": 1}, expected "
     "a problem name."),
    ({"swarm_options": {"num_particles": 1e999}}, "its settings' "
     "swarm_options.num_particles is \"inf\", expected a positive "
     "integer."),
])
def test_settings_of_the_wrong_type_are_named(tmp_path, records_files,
                                              settings, message):
  path = records_files.write(tmp_path, records_files.losses(), **settings)
  with pytest.raises(records.RecordsError) as error:
    records.read(path)
  assert str(error.value) == "{} is not a records file: {}".format(path,
                                                                   message)


def _rewrite_member(path, name, data):
  """Replaces one member of an .npz archive (to damage it)."""
  with zipfile.ZipFile(path) as archive:
    members = {info.filename: (info, archive.read(info))
               for info in archive.infolist()}
  with zipfile.ZipFile(path, "w") as archive:
    for filename, (info, content) in members.items():
      archive.writestr(info, data if filename == name else content)


def _patch_central_entry(path, name, flag_bits=0, method=None):
  """Sets a member's flag bits (0x1: encrypted) or compression method in
  the archive's central directory, which zipfile reads them from."""
  raw = bytearray(open(path, "rb").read())
  start = 0
  while True:
    start = raw.index(b"PK\x01\x02", start)
    length = int.from_bytes(raw[start + 28:start + 30], "little")
    if raw[start + 46:start + 46 + length] == name.encode():
      break
    start += 4
  flags = int.from_bytes(raw[start + 8:start + 10], "little") | flag_bits
  raw[start + 8:start + 10] = flags.to_bytes(2, "little")
  if method is not None:
    raw[start + 10:start + 12] = method.to_bytes(2, "little")
  open(path, "wb").write(bytes(raw))


def test_hostile_archives_are_refused_in_one_error(tmp_path, records_files):
  # A header claiming 1e12 values in a few bytes would allocate 7 TiB.
  bomb = records_files.write(tmp_path / "bomb", records_files.losses())
  header = io.BytesIO()
  np.lib.format.write_array_header_1_0(
      header, {"descr": "<f8", "fortran_order": False,
               "shape": (10**12,)})
  _rewrite_member(bomb, "losses.npy", header.getvalue() + b"\0" * 64)
  with pytest.raises(records.RecordsError, match=(
      r"is not a records file: losses.npy declares an array of shape "
      r"\(1000000000000,\) \(8000000000000 bytes\) in \d+ bytes")):
    records.read(bomb)
  # An encrypted member, and a compression zipfile cannot read.
  locked = records_files.write(tmp_path / "locked", records_files.losses())
  _patch_central_entry(locked, "losses.npy", flag_bits=0x1)
  with pytest.raises(records.RecordsError, match="is not a records file"):
    records.read(locked)
  odd = records_files.write(tmp_path / "odd", records_files.losses())
  _patch_central_entry(odd, "losses.npy", method=97)
  with pytest.raises(records.RecordsError, match="is not a records file"):
    records.read(odd)


def test_settings_nested_too_deep_are_refused(tmp_path, records_files):
  path = records_files.write(tmp_path, records_files.losses())
  arrays = dict(np.load(path))
  arrays["settings"] = np.array("[" * 100000 + "]" * 100000)
  np.savez(path, **arrays)
  with pytest.raises(records.RecordsError, match="its settings are not JSON"):
    records.read(path)
