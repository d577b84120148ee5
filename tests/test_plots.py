"""Tests for plots.py and compare.py on hand-made records files."""

import csv
import io
import math
import os
import subprocess
import sys

import numpy as np
import pytest

# The project has no package layout; make the modules importable regardless
# of how pytest sets up sys.path.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# pylint: disable=g-import-not-at-top,wrong-import-position
from l2l.experiment import compare
from l2l.experiment import evaluation
from l2l.experiment import plots
from l2l.experiment import records
# pylint: enable=g-import-not-at-top,wrong-import-position

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Best particle per (epoch, step) of `_hand_made_losses`, and what
# `curve_data` must make of it: 4 epochs, 3 steps (0, 1, 2).
BEST = np.array([[1.0, 10.0, 0.5],
                 [2.0, 20.0, 0.5],
                 [3.0, 30.0, 0.5],
                 [4.0, 40.0, 4.5]])
MEAN = np.array([2.5, 25.0, 1.5])
P25 = np.array([1.75, 17.5, 0.5])
P75 = np.array([3.25, 32.5, 1.5])


def _hand_made_losses():
  """[4, 3, 2]: the best particle is particle 0 in even epochs, 1 in odd."""
  worse = BEST * 3 + 1
  losses = np.stack([BEST, worse], axis=2)
  losses[1::2] = losses[1::2, :, ::-1]
  return losses


def _write(directory, losses, seconds=None, **settings):
  """Writes a records file of hand-made arrays; returns its path."""
  losses = np.asarray(losses, np.float64)
  if seconds is None:
    seconds = np.ones(losses.shape[0])
  base = {"optimizer": "SGD", "problem": "quadratic", "learning_rate": 0.1,
          "seed": 0, "num_steps": losses.shape[1] - 1,
          "num_epochs": losses.shape[0], "swarm_options": {}, "tuning": None}
  base.update(settings)
  return records.write(
      str(directory),
      evaluation.Evaluation(losses, np.asarray(seconds, np.float64), None),
      base)


def _lines(fig):
  return fig.axes[0].get_lines()


def _labels(fig):
  return [line.get_label() for line in _lines(fig)]


# ------------------------------------------------------------ curve_data ---


def test_curve_data_of_a_hand_made_array():
  losses = _hand_made_losses()
  assert losses[1, 0, 1] == 2.0 and losses[1, 0, 0] == 7.0
  np.testing.assert_array_equal(plots.best_particle(losses), BEST)
  mean, low, high = plots.curve_data(losses)
  np.testing.assert_array_equal(mean, MEAN)
  np.testing.assert_array_equal(low, P25)
  np.testing.assert_array_equal(high, P75)


def test_curve_data_of_one_particle():
  mean, low, high = plots.curve_data(BEST[:, :, None])
  np.testing.assert_array_equal(mean, MEAN)
  np.testing.assert_array_equal(low, P25)
  np.testing.assert_array_equal(high, P75)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_curve_data_blanks_steps_that_are_not_finite(bad):
  losses = _hand_made_losses()
  losses[2, 1, :] = bad  # Both particles of epoch 2 at step 1.
  mean, low, high = plots.curve_data(losses)
  for values, expected in ((mean, MEAN), (low, P25), (high, P75)):
    assert values[0] == expected[0] and values[2] == expected[2]
    assert np.isnan(values[1])


def test_curve_data_counts_a_diverged_particle_even_if_not_the_best():
  # As records.summary: np.min propagates NaN.
  losses = _hand_made_losses()
  losses[0, 2, 1] = np.nan  # Epoch 0's worse particle at the last step.
  mean, _, _ = plots.curve_data(losses)
  assert mean[:2].tolist() == MEAN[:2].tolist() and np.isnan(mean[2])


@pytest.mark.parametrize("shape", [(3,), (2, 3), (0, 3, 1), (2, 0, 1)])
def test_curve_data_rejects_other_shapes(shape):
  with pytest.raises(ValueError, match="epochs, steps"):
    plots.curve_data(np.ones(shape))


# ----------------------------------------------------------------- labels ---


@pytest.mark.parametrize("settings, num_particles, expected", [
    ({"optimizer": "Adam", "learning_rate": 0.01}, 1, "Adam (lr=0.01)"),
    ({"optimizer": "SGD", "learning_rate": 10 ** -3.5}, 1,
     "SGD (lr=0.000316)"),
    ({"optimizer": "RMSProp", "learning_rate": 1.0}, 1, "RMSProp (lr=1)"),
    ({"optimizer": "L2L", "learning_rate": None, "swarm_options": {}}, 1,
     "L2L"),
    ({"optimizer": "L2L", "swarm_options": {"num_particles": 4}}, 4,
     "L2L swarm (k=4)"),
    ({"optimizer": "L2L", "swarm_options": {}}, 3, "L2L swarm (k=3)"),
    ({"optimizer": "PSO", "swarm_options": {"num_particles": 4,
                                            "inertia": 0.7}}, 4, "PSO (k=4)"),
    ({"optimizer": "PSO"}, 6, "PSO (k=6)"),
    ({"optimizer": "Adam", "learning_rate": None}, 1, "Adam"),
    ({"optimizer": "Adam", "learning_rate": "fast"}, 1, "Adam (lr=fast)"),
    ({}, 1, "unknown optimizer"),
])
def test_label(settings, num_particles, expected):
  assert plots.label(settings, num_particles) == expected


# ------------------------------------------------------------ the figure ---


def test_build_figure_draws_one_curve_per_file(tmp_path):
  adam = _write(tmp_path, _hand_made_losses(), optimizer="Adam",
                learning_rate=0.01)
  swarm_losses = np.exp(-np.arange(6.0))[None, :, None] * np.ones((2, 1, 4))
  swarm = _write(tmp_path, swarm_losses, optimizer="L2L",
                 learning_rate=None, swarm_options={"num_particles": 4})

  fig = plots.build_figure([adam, swarm])

  axes = fig.axes[0]
  assert _labels(fig) == ["Adam (lr=0.01)", "L2L swarm (k=4)"]
  assert [t.get_text() for t in axes.get_legend().get_texts()] == [
      "Adam (lr=0.01)", "L2L swarm (k=4)"]
  adam_line, swarm_line = _lines(fig)
  # Each file on its own x range: steps 0..2 and 0..5.
  np.testing.assert_array_equal(adam_line.get_xdata(), [0, 1, 2])
  np.testing.assert_array_equal(adam_line.get_ydata(), MEAN)
  np.testing.assert_array_equal(swarm_line.get_xdata(), np.arange(6))
  np.testing.assert_array_equal(swarm_line.get_ydata(), np.exp(-np.arange(6.0)))
  assert len(axes.collections) == 2  # The two percentile bands.
  assert axes.get_yscale() == "log"
  assert axes.get_xlabel() == "step"
  assert "25th-75th percentile over epochs" in axes.get_ylabel()
  assert "log scale" in axes.get_ylabel()
  assert axes.get_title() == "quadratic"


def test_curves_expose_the_plotted_numbers(tmp_path):
  path = _write(tmp_path, _hand_made_losses(), optimizer="Momentum",
                learning_rate=0.5)
  curve, = plots.curves([path])
  assert curve.label == "Momentum (lr=0.5)"
  assert not curve.diverged
  assert curve.problem == "quadratic"
  np.testing.assert_array_equal(curve.steps, [0, 1, 2])
  np.testing.assert_array_equal(curve.mean, MEAN)
  np.testing.assert_array_equal(curve.low, P25)
  np.testing.assert_array_equal(curve.high, P75)


def test_band_spans_the_percentiles(tmp_path):
  path = _write(tmp_path, _hand_made_losses())
  fig = plots.build_figure([path])
  band, = fig.axes[0].collections
  vertices = np.concatenate([p.vertices for p in band.get_paths()])
  assert vertices[:, 1].min() == P25.min()
  assert vertices[:, 1].max() == P75.max()


def test_title_and_labels_can_be_given(tmp_path):
  first = _write(tmp_path, _hand_made_losses(), optimizer="Adam")
  second = _write(tmp_path, _hand_made_losses() * 2, optimizer="SGD")
  fig = plots.build_figure([first, second], title="Figure 3",
                           labels=["ours", "theirs"])
  assert _labels(fig) == ["ours", "theirs"]
  assert fig.axes[0].get_title() == "Figure 3"


def test_several_problems_are_named_in_labels_and_title(tmp_path):
  first = _write(tmp_path, _hand_made_losses(), optimizer="PSO",
                 problem="square_cos_2", swarm_options={"num_particles": 2})
  second = _write(tmp_path, BEST[:, :, None], optimizer="L2L",
                  learning_rate=None)
  fig = plots.build_figure([first, second])
  assert _labels(fig) == ["PSO (k=2) on square_cos_2", "L2L on quadratic"]
  assert fig.axes[0].get_title() == "square_cos_2, quadratic"


def test_non_positive_losses_use_a_symlog_axis(tmp_path):
  # Rastrigin reaches 0; its train-mode variant goes below it.
  losses = np.array([[[4.0], [0.25], [0.0]], [[4.0], [0.25], [-1.0]]])
  path = _write(tmp_path, losses, optimizer="PSO", problem="square_cos_2")
  fig = plots.build_figure([path])
  axes = fig.axes[0]
  assert axes.get_yscale() == "symlog"
  assert axes.yaxis.get_transform().linthresh == 0.25
  assert "symlog scale: linear for |loss| < 0.25" in axes.get_ylabel()
  np.testing.assert_array_equal(_lines(fig)[0].get_ydata(), [4.0, 0.25, -0.5])


def test_symlog_linear_range_spans_at_most_six_decades(tmp_path):
  losses = np.array([[[100.0], [1e-20], [0.0]]])
  fig = plots.build_figure([_write(tmp_path, losses)])
  assert fig.axes[0].yaxis.get_transform().linthresh == 100.0 * 1e-6


def test_diverged_record_still_plots(tmp_path):
  good = _write(tmp_path, _hand_made_losses(), optimizer="Adam",
                learning_rate=0.01)
  losses = _hand_made_losses()
  losses[3, 2, :] = np.nan
  diverged = _write(tmp_path, losses, optimizer="SGD", learning_rate=1.0)
  output = str(tmp_path / "diverged.png")

  fig = plots.build_figure([good, diverged])
  path = plots.loss_curves([good, diverged], output)

  assert _labels(fig) == ["Adam (lr=0.01)", "SGD (lr=1) (diverged)"]
  ydata = _lines(fig)[1].get_ydata()
  assert ydata[:2].tolist() == MEAN[:2].tolist() and np.isnan(ydata[2])
  assert fig.axes[0].get_yscale() == "log"
  assert path == output
  with open(output, "rb") as stream:
    assert stream.read(8) == PNG_SIGNATURE


def test_entirely_diverged_record_still_plots(tmp_path):
  losses = np.full((2, 4, 1), np.inf)
  losses[0, 0, 0] = np.nan
  path = _write(tmp_path, losses, optimizer="Adam", learning_rate=3.0)
  output = plots.loss_curves([path], str(tmp_path / "all.png"))
  fig = plots.build_figure([path])
  assert _labels(fig) == ["Adam (lr=3) (diverged)"]
  assert np.all(np.isnan(_lines(fig)[0].get_ydata()))
  assert fig.axes[0].get_yscale() == "linear"
  assert os.path.getsize(output) > 1000


# ----------------------------------------------------------- loss_curves ---


def test_loss_curves_writes_a_png_atomically(tmp_path):
  first = _write(tmp_path, _hand_made_losses(), optimizer="Adam",
                 learning_rate=0.01)
  second = _write(tmp_path, _hand_made_losses() / 2, optimizer="L2L",
                  learning_rate=None)
  output = str(tmp_path / "plots" / "comparison.png")
  old_umask = os.umask(0o022)
  try:
    path = plots.loss_curves([first, second], output)
  finally:
    os.umask(old_umask)

  assert path == output
  with open(output, "rb") as stream:
    data = stream.read()
  assert data[:8] == PNG_SIGNATURE
  assert len(data) > 10000
  assert os.listdir(tmp_path / "plots") == ["comparison.png"]
  # Readable as any new file, not private as a temporary file is.
  assert os.stat(output).st_mode & 0o777 == 0o644

  # Writing again replaces the file.
  plots.loss_curves([first], output)
  assert os.listdir(tmp_path / "plots") == ["comparison.png"]
  with open(output, "rb") as stream:
    again = stream.read()
  assert again[:8] == PNG_SIGNATURE and again != data


def test_loss_curves_of_no_files():
  with pytest.raises(ValueError, match="No records files"):
    plots.loss_curves([], "never.png")
  with pytest.raises(ValueError, match="No records files"):
    plots.build_figure([])


def test_loss_curves_with_the_wrong_number_of_labels(tmp_path):
  path = _write(tmp_path, _hand_made_losses())
  with pytest.raises(ValueError, match="2 labels for 1 records files"):
    plots.build_figure([path], labels=["a", "b"])


def test_loss_curves_of_a_bad_file_writes_nothing(tmp_path):
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"PK\x03\x04" + bytes(20))
  output = tmp_path / "out.png"
  with pytest.raises(records.RecordsError, match="bad.npz"):
    plots.loss_curves([str(bad)], str(output))
  assert sorted(os.listdir(tmp_path)) == ["bad.npz"]


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
])
def test_read_records_checks_the_contents(tmp_path, arrays, message):
  path = str(tmp_path / "odd.npz")
  np.savez(path, **arrays)
  with pytest.raises(records.RecordsError, match=message):
    records.read(path)


# ---------------------------------------------------------------- compare ---


def _comparison(tmp_path):
  """Four records files; returns their paths in the order written."""
  adam = _write(tmp_path, [[[9.0], [5.0]], [[9.0], [15.0]]],
                seconds=[0.5, 1.5], optimizer="Adam", learning_rate=0.01)
  l2l = _write(tmp_path, [[[9.0, 9.0], [1.0, 4.0]], [[9.0, 9.0], [6.0, 3.0]]],
               seconds=[2.0, 4.0], optimizer="L2L", learning_rate=None,
               swarm_options={"num_particles": 2})
  sgd = _write(tmp_path, [[[9.0], [np.nan]], [[9.0], [1.0]]],
               seconds=[0.25, 0.25], optimizer="SGD", learning_rate=0.1,
               tuning={"seed": 100003, "epochs": 2, "scores": {}})
  pso = _write(tmp_path, [[[9.0, 9.0], [0.0, 1.0]], [[9.0, 9.0], [-1.0, 2.0]]],
               seconds=[1.0, 1.0], optimizer="PSO", learning_rate=None,
               swarm_options={"num_particles": 2})
  return adam, l2l, sgd, pso


def test_rows_are_sorted_by_mean_final_loss(tmp_path):
  adam, l2l, sgd, pso = _comparison(tmp_path)
  rows = compare.rows([adam, l2l, sgd, pso])
  assert [row.path for row in rows] == [pso, l2l, adam, sgd]
  by_path = {row.path: row for row in rows}
  assert by_path[adam][1:] == (
      "Adam (lr=0.01)", "quadratic", 0.01, False, 0, 2, 1, 10.0, 5.0, 1.0,
      1.0)
  assert by_path[l2l][1:] == (
      "L2L swarm (k=2)", "quadratic", None, False, 0, 2, 1, 2.0, 1.0,
      math.log10(2.0), 3.0)
  assert by_path[pso].final == -0.5 and by_path[pso].final_std == 0.5
  assert math.isnan(by_path[pso].log_final)
  assert by_path[sgd].label == "SGD (lr=0.1) (diverged)"
  assert by_path[sgd].tuned
  assert math.isnan(by_path[sgd].final)
  assert by_path[sgd].seconds == 0.25


def test_markdown_table(tmp_path):
  adam, l2l, sgd, pso = _comparison(tmp_path)
  text = compare.table([adam, l2l, sgd, pso])
  assert text.split("\n") == [
      "| Optimizer | Problem | Learning rate | Seed | Epochs | Steps | "
      "Final loss (mean ± std) | Log Mean Final Error | Seconds / epoch |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|",
      "| PSO (k=2) | quadratic | - | 0 | 2 | 1 | -0.5 ± 0.5 | "
      "none (negative mean) | 1 |",
      "| L2L swarm (k=2) | quadratic | - | 0 | 2 | 1 | 2 ± 1 | 0.30 | 3 |",
      "| Adam (lr=0.01) | quadratic | 0.01 | 0 | 2 | 1 | 10 ± 5 | 1.00 | 1 |",
      "| SGD (lr=0.1) (diverged) | quadratic | 0.1 (tuned) | 0 | 2 | 1 | "
      "diverged | diverged | 0.25 |",
      "",
  ]


def test_csv_table(tmp_path):
  adam, l2l, _, _ = _comparison(tmp_path)
  text = compare.table([adam, l2l], fmt="csv")
  rows = list(csv.DictReader(io.StringIO(text)))
  assert [row["optimizer"] for row in rows] == ["L2L swarm (k=2)",
                                                 "Adam (lr=0.01)"]
  assert rows[1] == {
      "optimizer": "Adam (lr=0.01)", "problem": "quadratic",
      "learning_rate": "0.01", "tuned": "0", "seed": "0", "epochs": "2",
      "steps": "1", "final_loss_mean": "10.0", "final_loss_std": "5.0",
      "log_mean_final_error": "1.0", "seconds_per_epoch": "1.0"}
  assert rows[0]["learning_rate"] == ""
  assert float(rows[0]["log_mean_final_error"]) == math.log10(2.0)


def test_csv_table_says_diverged(tmp_path):
  _, _, sgd, pso = _comparison(tmp_path)
  rows = list(csv.DictReader(io.StringIO(compare.table([sgd, pso],
                                                       fmt="csv"))))
  assert [(r["final_loss_mean"], r["final_loss_std"],
           r["log_mean_final_error"]) for r in rows] == [
               ("-0.5", "0.5", "none (negative mean)"),
               ("diverged", "", "diverged")]


def test_table_rejects_no_files_and_unknown_formats(tmp_path):
  with pytest.raises(ValueError, match="No records files"):
    compare.table([])
  path = _write(tmp_path, _hand_made_losses())
  with pytest.raises(ValueError, match="latex"):
    compare.table([path], fmt="latex")


def test_table_names_a_file_whose_settings_it_cannot_show(tmp_path):
  path = _write(tmp_path, _hand_made_losses(), learning_rate="fast")
  with pytest.raises(records.RecordsError,
                     match="SGD.*npz has settings the table cannot show"):
    compare.table([path])


def test_differences(tmp_path):
  same = [_write(tmp_path / "a", _hand_made_losses(), optimizer=name)
          for name in ("SGD", "Adam")]
  assert compare.differences(compare.rows(same)) == []
  other_seed = _write(tmp_path / "b", _hand_made_losses(), seed=5)
  longer = _write(tmp_path / "c", np.ones((2, 9, 1)), problem="square_cos_2")
  rows = compare.rows(same + [other_seed, longer])
  assert rows[0].path == longer  # Final loss 1 before 1.5: values in row order.
  assert compare.differences(rows) == [
      "the records differ in problem: square_cos_2, quadratic",
      "the records differ in seed: 0, 5",
      "the records differ in num_steps: 8, 2",
  ]


def _compare(*args):
  return subprocess.run(
      [sys.executable, "-m", "l2l.experiment.compare_command"] + list(args),
      cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_compare_command_on_a_bad_file(tmp_path):
  good = _write(tmp_path, _hand_made_losses())
  bad = tmp_path / "broken.npz"
  bad.write_bytes(b"PK\x03\x04 not really a zip")
  result = _compare(good, str(bad))
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines()
            if line.startswith("Error:")]
  assert len(errors) == 1 and str(bad) in errors[0]
  assert result.stdout == ""


def test_compare_command_writes_table_warnings_and_plot(tmp_path):
  adam, l2l, _, _ = _comparison(tmp_path)
  other_seed = _write(tmp_path / "seed", [[[9.0], [20.0]], [[9.0], [20.0]]],
                      optimizer="RMSProp", learning_rate=0.001, seed=1)
  output = str(tmp_path / "comparison.png")
  result = _compare(adam, l2l, other_seed, "--format=csv",
                    "--output=" + output)
  assert result.returncode == 0, result.stderr
  assert "Traceback" not in result.stderr
  rows = list(csv.DictReader(io.StringIO(result.stdout)))
  assert [row["optimizer"] for row in rows] == [
      "L2L swarm (k=2)", "Adam (lr=0.01)", "RMSProp (lr=0.001)"]
  assert ("Warning: the records differ in seed: 0, 1; the optimizers were "
          "not compared on the same instances.") in result.stderr
  assert "differ in problem" not in result.stderr
  with open(output, "rb") as stream:
    assert stream.read(8) == PNG_SIGNATURE
