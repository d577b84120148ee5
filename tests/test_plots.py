"""Tests for plots.py on hand-made records files (see conftest's
`records_files`)."""

import os

import numpy as np
import pytest

from l2l.experiment import plots
from l2l.experiment import records
from l2l.experiment import scores

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# What `curve_data` must make of `records_files.losses()`, whose best
# particle per (epoch, step) is `records_files.BEST`: 4 epochs, 3 steps.
MEAN = np.array([2.5, 25.0, 1.5])
P25 = np.array([1.75, 17.5, 0.5])
P75 = np.array([3.25, 32.5, 1.5])


def _lines(fig):
  return fig.axes[0].get_lines()


def _labels(fig):
  return [line.get_label() for line in _lines(fig)]


# ------------------------------------------------------------ curve_data ---


def test_curve_data_of_a_hand_made_array(records_files):
  losses = records_files.losses()
  assert losses[1, 0, 1] == 2.0 and losses[1, 0, 0] == 7.0
  np.testing.assert_array_equal(scores.best_curve(losses),
                                records_files.BEST)
  mean, low, high = plots.curve_data(losses)
  np.testing.assert_array_equal(mean, MEAN)
  np.testing.assert_array_equal(low, P25)
  np.testing.assert_array_equal(high, P75)


def test_curve_data_of_one_particle(records_files):
  mean, low, high = plots.curve_data(records_files.BEST[:, :, None])
  np.testing.assert_array_equal(mean, MEAN)
  np.testing.assert_array_equal(low, P25)
  np.testing.assert_array_equal(high, P75)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_curve_data_blanks_steps_that_are_not_finite(bad, records_files):
  losses = records_files.losses()
  losses[2, 1, :] = bad  # Both particles of epoch 2 at step 1.
  mean, low, high = plots.curve_data(losses)
  for values, expected in ((mean, MEAN), (low, P25), (high, P75)):
    assert values[0] == expected[0] and values[2] == expected[2]
    assert np.isnan(values[1])


def test_curve_data_counts_a_diverged_particle_even_if_not_the_best(
    records_files):
  # As records.summary: np.min propagates NaN.
  losses = records_files.losses()
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
    # Other budgets and models never share a label.
    ({"optimizer": "Adam", "learning_rate": 0.01,
      "swarm_options": {"num_particles": 4}}, 4,
     "Adam (lr=0.01, best of 4 restarts)"),
    ({"optimizer": "NAG", "learning_rate": 0.1}, 3,
     "NAG (lr=0.1, best of 3 restarts)"),
    ({"optimizer": "L2L", "swarm_options": {"num_particles": 4,
                                            "lois_released": True}}, 4,
     "L2L swarm, LOIS as released (k=4)"),
    ({"optimizer": "Adam", "learning_rate": "fast"}, 1, "Adam (lr=fast)"),
    # evaluate.py --untrained records no optimizer directory.
    ({"optimizer": "L2L", "path": None}, 1, "L2L (untrained)"),
    ({"optimizer": "L2L", "path": None}, 4, "L2L swarm (k=4, untrained)"),
    ({"optimizer": "L2L", "path": "/models/quadratic"}, 1, "L2L"),
    ({}, 1, "unknown optimizer"),
])
def test_label(settings, num_particles, expected):
  assert plots.label(settings, num_particles) == expected


# ------------------------------------------------------------ the figure ---


def test_build_figure_draws_one_curve_per_file(tmp_path, records_files):
  adam = records_files.write(tmp_path, records_files.losses(),
                             optimizer="Adam", learning_rate=0.01)
  swarm_losses = np.exp(-np.arange(6.0))[None, :, None] * np.ones((2, 1, 4))
  swarm = records_files.write(tmp_path, swarm_losses, optimizer="L2L",
                              learning_rate=None,
                              swarm_options={"num_particles": 4})

  fig = plots.build_figure([adam, swarm])

  axes = fig.axes[0]
  # The fixture's losses have two particles: Adam's best of 2 restarts.
  assert _labels(fig) == ["Adam (lr=0.01, best of 2 restarts)",
                          "L2L swarm (k=4)"]
  assert [t.get_text() for t in axes.get_legend().get_texts()] == [
      "Adam (lr=0.01, best of 2 restarts)", "L2L swarm (k=4)"]
  adam_line, swarm_line = _lines(fig)
  # Each file on its own x range: steps 0..2 and 0..5.
  np.testing.assert_array_equal(adam_line.get_xdata(), [0, 1, 2])
  np.testing.assert_array_equal(adam_line.get_ydata(), MEAN)
  np.testing.assert_array_equal(swarm_line.get_xdata(), np.arange(6))
  np.testing.assert_array_equal(swarm_line.get_ydata(), np.exp(-np.arange(6.0)))
  assert len(axes.collections) == 2  # The two percentile bands.
  assert axes.get_yscale() == "log"
  assert axes.get_xlabel() == "step"
  assert axes.get_ylabel().startswith("best-particle loss, mean over epochs")
  assert "25th-75th percentile over epochs" in axes.get_ylabel()
  assert "log scale" in axes.get_ylabel()
  assert axes.get_title() == "quadratic"


def test_single_point_curves_are_labelled_loss_not_best_particle(
    tmp_path, records_files):
  one_point = np.exp(-np.arange(3.0))[None, :, None] * np.ones((2, 1, 1))
  adam = records_files.write(tmp_path, one_point, optimizer="Adam",
                             learning_rate=0.01)

  axes = plots.build_figure([adam]).axes[0]

  assert plots.curves([adam])[0].num_particles == 1
  assert axes.get_ylabel().startswith("loss, mean over epochs")


def test_curves_expose_the_plotted_numbers(tmp_path, records_files):
  path = records_files.write(tmp_path, records_files.losses(),
                             optimizer="Momentum", learning_rate=0.5)
  curve, = plots.curves([path])
  assert curve.label == "Momentum (lr=0.5, best of 2 restarts)"
  assert not curve.diverged
  assert curve.problem == "quadratic"
  np.testing.assert_array_equal(curve.steps, [0, 1, 2])
  np.testing.assert_array_equal(curve.mean, MEAN)
  np.testing.assert_array_equal(curve.low, P25)
  np.testing.assert_array_equal(curve.high, P75)


def test_band_spans_the_percentiles(tmp_path, records_files):
  path = records_files.write(tmp_path, records_files.losses())
  fig = plots.build_figure([path])
  band, = fig.axes[0].collections
  vertices = np.concatenate([p.vertices for p in band.get_paths()])
  assert vertices[:, 1].min() == P25.min()
  assert vertices[:, 1].max() == P75.max()


def test_title_and_labels_can_be_given(tmp_path, records_files):
  first = records_files.write(tmp_path, records_files.losses(),
                              optimizer="Adam")
  second = records_files.write(tmp_path, records_files.losses() * 2,
                               optimizer="SGD")
  fig = plots.build_figure([first, second], title="Figure 3",
                           labels=["ours", "theirs"])
  assert _labels(fig) == ["ours", "theirs"]
  assert fig.axes[0].get_title() == "Figure 3"


def test_several_problems_are_named_in_labels_and_title(tmp_path,
                                                        records_files):
  first = records_files.write(tmp_path, records_files.losses(),
                              optimizer="PSO", problem="square_cos_2",
                              swarm_options={"num_particles": 2})
  second = records_files.write(tmp_path, records_files.BEST[:, :, None],
                               optimizer="L2L", learning_rate=None)
  fig = plots.build_figure([first, second])
  assert _labels(fig) == ["PSO (k=2) on square_cos_2", "L2L on quadratic"]
  assert fig.axes[0].get_title() == "square_cos_2, quadratic"


def test_runs_on_other_instances_are_told_apart_in_labels(tmp_path,
                                                          records_files):
  # The same optimizer and rate on another seed, or on fewer instances,
  # would otherwise share one label.
  paths = [records_files.write(tmp_path, records_files.losses(), seed=seed)
           for seed in (0, 1)]
  paths.append(records_files.write(tmp_path, records_files.losses()[:2],
                                   seed=1))
  labels = _labels(plots.build_figure(paths))
  assert len(set(labels)) == 3
  assert labels == [
      "SGD (lr=0.1, best of 2 restarts), seed 0, 4 instances",
      "SGD (lr=0.1, best of 2 restarts), seed 1, 4 instances",
      "SGD (lr=0.1, best of 2 restarts), seed 1, 2 instances"]
  same = _labels(plots.build_figure(paths[:1] * 2))
  assert "seed" not in same[0] and "instances" not in same[0]


def test_two_trained_optimizers_are_told_apart_by_their_directories(
    tmp_path, records_files):
  paths = [records_files.write(tmp_path, records_files.losses(),
                               optimizer="L2L", learning_rate=None,
                               path=path)
           for path in ("/a/quadratic", "/a/digits", "/a/digits", None)]
  assert _labels(plots.build_figure(paths)) == [
      "L2L swarm (k=2) from quadratic", "L2L swarm (k=2) from digits",
      "L2L swarm (k=2) from digits", "L2L swarm (k=2, untrained)"]
  # Directories of one base name are named by their paths.
  assert plots.told_apart_by_run(
      ["L2L", "L2L", "Adam"],
      [{"path": "/a/q"}, {"path": "/b/q"}, {"path": None}]) == [
          "L2L from /a/q", "L2L from /b/q", "Adam"]
  # One saved swarm run as saved and as ablated: the options differing.
  swarm = {"path": "/a/s", "swarm_options": {"num_particles": 4,
                                             "attraction_gain": "adaptive"}}
  ablated = dict(swarm, swarm_options={"num_particles": 4,
                                       "attraction_gain": "hop"})
  assert plots.told_apart_by_run(["L2L swarm (k=4)"] * 2,
                                 [swarm, ablated]) == [
      "L2L swarm (k=4) (attraction_gain='adaptive')",
      "L2L swarm (k=4) (attraction_gain='hop')"]


def test_saved_optimizers_are_known_by_their_files_not_their_directory():
  def evaluated(path, digest, epochs):
    return {"path": path, "optimizer_manifest": {
        "file_digests": {"cw.l2l": digest},
        "training": {"epochs_done": epochs}}}
  # One directory evaluated before and after a resumed training: two
  # optimizers, told apart by their epochs (else by their digests).
  assert plots.told_apart_by_run(["L2L"] * 2, [
      evaluated("/a/q", "1111aaaa99", 6),
      evaluated("/a/q", "2222bbbb99", 12)]) == [
          "L2L from q (epoch 6)", "L2L from q (epoch 12)"]
  assert plots.told_apart_by_run(["L2L"] * 2, [
      evaluated("/a/q", "1111aaaa99", 6),
      evaluated("/a/q", "2222bbbb99", 6)]) == [
          "L2L from q (digest 1111aaaa)", "L2L from q (digest 2222bbbb)"]
  # One optimizer evaluated from two places (moved, copied): one label.
  assert plots.told_apart_by_run(["L2L"] * 2, [
      evaluated("/a/q", "1111aaaa99", 6),
      evaluated("/b/moved", "1111aaaa99", 6)]) == ["L2L", "L2L"]


def test_non_positive_losses_use_a_symlog_axis(tmp_path, records_files):
  # Rastrigin reaches 0; its train-mode variant goes below it.
  losses = np.array([[[4.0], [0.25], [0.0]], [[4.0], [0.25], [-1.0]]])
  path = records_files.write(tmp_path, losses, optimizer="PSO",
                             problem="square_cos_2")
  fig = plots.build_figure([path])
  axes = fig.axes[0]
  assert axes.get_yscale() == "symlog"
  assert axes.yaxis.get_transform().linthresh == 0.25
  assert "symlog scale: linear for |loss| < 0.25" in axes.get_ylabel()
  np.testing.assert_array_equal(_lines(fig)[0].get_ydata(), [4.0, 0.25, -0.5])


def test_symlog_linear_range_spans_at_most_six_decades(tmp_path, records_files):
  losses = np.array([[[100.0], [1e-20], [0.0]]])
  fig = plots.build_figure([records_files.write(tmp_path, losses)])
  assert fig.axes[0].yaxis.get_transform().linthresh == 100.0 * 1e-6


def test_diverged_record_still_plots(tmp_path, records_files):
  good = records_files.write(tmp_path, records_files.losses(),
                             optimizer="Adam", learning_rate=0.01)
  losses = records_files.losses()
  losses[3, 2, :] = np.nan
  diverged = records_files.write(tmp_path, losses, optimizer="SGD",
                                 learning_rate=1.0)
  output = str(tmp_path / "diverged.png")

  fig = plots.build_figure([good, diverged])
  path = plots.loss_curves([good, diverged], output)

  assert _labels(fig) == ["Adam (lr=0.01, best of 2 restarts)",
                          "SGD (lr=1, best of 2 restarts) (diverged)"]
  ydata = _lines(fig)[1].get_ydata()
  assert ydata[:2].tolist() == MEAN[:2].tolist() and np.isnan(ydata[2])
  assert fig.axes[0].get_yscale() == "log"
  assert path == output
  with open(output, "rb") as stream:
    assert stream.read(8) == PNG_SIGNATURE


def test_the_y_axis_fits_the_runs_that_did_not_diverge(tmp_path,
                                                       records_files):
  # A diverged run grows by tens of decades before it overflows; fitted to
  # it, the other curves would lie flat at the bottom.
  good = records_files.write(tmp_path, records_files.losses(),
                             optimizer="Adam", learning_rate=0.01)
  losses = np.array([[[1.0], [1e30], [np.inf]], [[1.0], [1e36], [np.inf]]])
  diverged = records_files.write(tmp_path, losses, optimizer="SGD",
                                 learning_rate=1.0)
  axes = plots.build_figure([good, diverged]).axes[0]
  assert axes.get_yscale() == "log"
  bottom, top = axes.get_ylim()
  # The good run's values span 0.5 (P25) to 32.5 (P75): 1.81 decades, and
  # 5% of that either side.
  np.testing.assert_allclose(np.log10([bottom, top]),
                             [np.log10(0.5) - 0.0906, np.log10(32.5) + 0.0906],
                             atol=1e-3)
  assert "fitted to runs that did not diverge" in axes.get_ylabel()


def test_a_symlog_axis_fits_the_runs_that_did_not_diverge(tmp_path,
                                                          records_files):
  # A run that reaches exactly 0 puts the axis on symlog; a diverged one
  # beside it must not set its linear range (it was 3.9e30 on an audit's
  # records, flattening every finished curve onto 0).
  converged = np.array([[[4.0], [0.25], [0.0]], [[4.0], [0.25], [0.0]]])
  good = records_files.write(tmp_path, converged, optimizer="SGD",
                             learning_rate=0.1)
  losses = np.array([[[4.0], [1e36], [np.inf]], [[4.0], [1e36], [np.inf]]])
  diverged = records_files.write(tmp_path, losses, optimizer="SGD",
                                 learning_rate=1.0)
  axes = plots.build_figure([good, diverged]).axes[0]
  assert axes.get_yscale() == "symlog"
  assert axes.yaxis.get_transform().linthresh == 0.25
  assert axes.get_ylim()[1] < 10.0


def test_entirely_diverged_record_still_plots(tmp_path, records_files):
  losses = np.full((2, 4, 1), np.inf)
  losses[0, 0, 0] = np.nan
  path = records_files.write(tmp_path, losses, optimizer="Adam",
                             learning_rate=3.0)
  output = plots.loss_curves([path], str(tmp_path / "all.png"))
  fig = plots.build_figure([path])
  assert _labels(fig) == ["Adam (lr=3) (diverged)"]
  assert np.all(np.isnan(_lines(fig)[0].get_ydata()))
  assert fig.axes[0].get_yscale() == "linear"
  assert os.path.getsize(output) > 1000


# ----------------------------------------------------------- loss_curves ---


def test_loss_curves_writes_a_png_atomically(tmp_path, records_files):
  first = records_files.write(tmp_path, records_files.losses(),
                              optimizer="Adam", learning_rate=0.01)
  second = records_files.write(tmp_path, records_files.losses() / 2,
                               optimizer="L2L", learning_rate=None)
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


def test_loss_curves_with_the_wrong_number_of_labels(tmp_path, records_files):
  path = records_files.write(tmp_path, records_files.losses())
  with pytest.raises(ValueError, match="2 labels for 1 records files"):
    plots.build_figure([path], labels=["a", "b"])


def test_loss_curves_of_a_bad_file_writes_nothing(tmp_path):
  bad = tmp_path / "bad.npz"
  bad.write_bytes(b"PK\x03\x04" + bytes(20))
  output = tmp_path / "out.png"
  with pytest.raises(records.RecordsError, match="bad.npz"):
    plots.loss_curves([str(bad)], str(output))
  assert sorted(os.listdir(tmp_path)) == ["bad.npz"]


