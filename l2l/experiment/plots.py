"""Loss-versus-step plots of records files, for comparing optimizers.

Each records file (see records.py) becomes one curve: at every step, the mean
over epochs of the best particle's loss, each start set (batch row) keeping
its own best particle as scores.py's rule says (single-point optimizers have
one particle), with a shaded band between the 25th and 75th percentiles
over epochs.

    from l2l.experiment import plots
    plots.loss_curves(["records/a.npz", "records/b.npz"], "comparison.png")

The image is rendered with Agg, so no display is needed.
"""

import collections
import sys

from absl import logging
import matplotlib

# The non-interactive backend: machines running this have no display. A
# process that already chose a backend for pyplot (a notebook, say) keeps it,
# since switching would close its figures; this module never uses pyplot and
# renders through Agg explicitly either way.
if "matplotlib.pyplot" not in sys.modules:
  matplotlib.use("Agg")

# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib.backends import backend_agg
from matplotlib import figure as mpl_figure
from matplotlib import ticker
import numpy as np

from l2l import files
from l2l.experiment import records
from l2l.experiment import scores
# pylint: enable=g-import-not-at-top,wrong-import-position

# Percentiles over epochs that bound the shaded band.
BAND_PERCENTILES = (25, 75)
# On a symlog axis, the linear range around 0 ends no lower than this
# fraction of the largest magnitude, so the log range spans at most 6 decades.
SYMLOG_MAX_RANGE = 1e-6

Curve = collections.namedtuple(
    "Curve", "label, steps, mean, low, high, diverged, problem, "
    "num_particles")
Curve.__doc__ = """One plotted curve.

label: legend label, ending in " (diverged)" if some loss is not finite.
steps: int array [num_steps + 1], the x values 0, 1, ..., num_steps.
mean, low, high: float64 arrays [num_steps + 1] from `band`.
diverged: True if some best-particle loss is NaN or infinite.
problem: the problem named in the records' settings, or None.
num_particles: points per start set; 1 for a single-point optimizer.
"""


def curve_data(losses):
  """The numbers one curve plots.

  Args:
    losses: array [epochs, steps + 1, particles(, rows)], scored per start
      set as `scores.best_curve` does.

  Returns:
    See `band`.

  Raises:
    ValueError: if `losses` is not a non-empty 3-d or 4-d array.
  """
  losses = np.asarray(losses, np.float64)
  if losses.ndim not in (3, 4) or 0 in losses.shape:
    raise ValueError("losses must be a non-empty array [epochs, steps + 1, "
                     "particles(, rows)], got shape {}.".format(
                         list(losses.shape)))
  return band(scores.best_curve(losses))


def band(best):
  """A curve's mean and quartiles over epochs.

  Args:
    best: array [epochs, steps + 1], each epoch's loss at every step (the
      mean over its start sets of their best particle: `scores.best_curve`).

  Returns:
    `(mean, low, high)`, float64 arrays [steps + 1]: the mean over epochs,
    and the 25th and 75th percentiles over epochs (linear interpolation). A
    step at which some epoch's loss is NaN or infinite is NaN in all three,
    so the curve stops where a run diverged.
  """
  best = np.asarray(best, np.float64)
  finite = np.all(np.isfinite(best), axis=0)
  # Percentiles of non-finite columns are not needed; compute them on zeros
  # to keep numpy quiet, then blank them.
  safe = np.where(finite, best, 0.0)
  mean = np.mean(safe, axis=0)
  low, high = np.percentile(safe, BAND_PERCENTILES, axis=0)
  blank = np.where(finite, 0.0, np.nan)
  return mean + blank, low + blank, high + blank


def label(settings, num_particles=1):
  """A legend label from a records file's settings.

  Args:
    settings: the settings dict of a records file.
    num_particles: particles per swarm if the settings' swarm_options do
      not say (the losses' last dimension).

  Returns:
    E.g. "Adam (lr=0.01)", "Adam (lr=0.01, best of 4 restarts)", "L2L",
    "L2L (untrained)", "L2L swarm (k=4)", "L2L swarm, LOIS as released
    (k=4)" or "PSO (k=4)": runs of other budgets or models never share a
    label, bar two trained optimizers or swarm options (`told_apart_by_run`).
  """
  optimizer = settings.get("optimizer") or "unknown optimizer"
  options = settings.get("swarm_options") or {}
  if not isinstance(options, dict):
    options = {}
  if options.get("num_particles"):
    num_particles = int(options["num_particles"])
  learning_rate = settings.get("learning_rate")
  if optimizer == "PSO":
    return "PSO (k={})".format(num_particles)
  if optimizer == "L2L":
    # evaluate.py records the optimizer's directory, None for --untrained.
    untrained = "path" in settings and settings["path"] is None
    if num_particles <= 1:
      return "L2L (untrained)" if untrained else "L2L"
    return "L2L swarm{} (k={}{})".format(
        ", LOIS as released" if options.get("lois_released") else "",
        num_particles, ", untrained" if untrained else "")
  details = []
  if isinstance(learning_rate, (int, float)):
    details.append("lr={:.3g}".format(learning_rate))
  elif learning_rate is not None:
    details.append("lr={}".format(learning_rate))
  if num_particles > 1:
    details.append("best of {} restarts".format(num_particles))
  if details:
    return "{} ({})".format(optimizer, ", ".join(details))
  return str(optimizer)


def curves(record_paths, labels=None):
  """The curves `build_figure` draws, one per records file.

  Args:
    record_paths: records files.
    labels: legend labels, one per file, or None to make them from the
      settings (see `label`, plus " on <problem>" when the files are of
      several problems, and ", seed <seed>" or ", <n> instances" where
      files that would share a label differ in those); " (diverged)" is
      appended to either when a loss is NaN or infinite.

  Returns:
    A list of `Curve`s, in the order of `record_paths`.

  Raises:
    ValueError: if `record_paths` is empty or `labels` has another length.
    records.RecordsError: if a file is not a records file.
    FileNotFoundError: if a file does not exist.
  """
  record_paths = list(record_paths)
  if not record_paths:
    raise ValueError("No records files to plot.")
  if labels is not None:
    labels = list(labels)
    if len(labels) != len(record_paths):
      raise ValueError("Got {} labels for {} records files.".format(
          len(labels), len(record_paths)))
  loaded = [records.read(path) for path in record_paths]
  problems = _unique(str(settings["problem"]) for _, settings in loaded
                     if settings.get("problem") is not None)
  result = []
  for i, (path, (arrays, settings)) in enumerate(zip(record_paths, loaded)):
    losses = arrays["losses"]
    best = records.best_curve(arrays)
    mean, low, high = band(best)
    diverged = not np.all(np.isfinite(best))
    problem = settings.get("problem")
    problem = None if problem is None else str(problem)
    if labels is not None:
      name = labels[i]
    else:
      name = label(settings, losses.shape[2])
      if len(problems) > 1 and problem is not None:
        name += " on " + problem
    if diverged:
      name += " (diverged)"
      logging.warning("%s: some losses are NaN or infinite; the curve skips "
                      "the steps at which any epoch's loss is.", path)
    result.append(Curve(name, np.arange(losses.shape[1]), mean, low, high,
                        diverged, problem, int(losses.shape[2])))
  if labels is None:
    result = _told_apart(result, loaded)
  return result


def told_apart_by_run(labels, settings):
  """Labels that collide, told apart by what ran where that differs: the
  saved optimizer each run evaluated (two trained L2L optimizers), then
  the swarm options (an ablation of one saved swarm).

  A saved optimizer is known by its files' digests where the records hold
  its manifest, else by its directory: one optimizer evaluated from two
  places is one, and two evaluated from one place (before and after a
  resumed training) are two.

  Args:
    labels: one label per records file.
    settings: the settings of each records file.

  Returns:
    The labels, those of such runs followed by " from <directory>" (its
    base name, or its path where base names repeat; with its epochs, or
    its digest, where one directory held several) and by the swarm options
    in which they differ, e.g. " (attraction_gain=hop)".
  """
  saved = {}
  identities = []
  for entry in settings:
    identity, where = _saved_optimizer(entry)
    saved.setdefault(identity, where)
    identities.append(identity)
  result = _told_apart_by(
      labels, identities,
      lambda group: _saved_optimizer_names([saved[i] for i in group]))
  return _told_apart_by(
      result, [_options(entry.get("swarm_options")) for entry in settings],
      _differing_options)


def _saved_optimizer(entry):
  """`(identity, (directory, epochs, digest))` of the optimizer a records
  file's run evaluated; the identity is None for none."""
  path = entry.get("path")
  if path is None:
    return None, None
  manifest = entry.get("optimizer_manifest")
  manifest = manifest if isinstance(manifest, dict) else {}
  digests = manifest.get("file_digests")
  if not isinstance(digests, dict) or not digests:
    return path, (path, None, None)
  training = manifest.get("training")
  epochs = training.get("epochs_done") if isinstance(training, dict) else None
  identity = tuple(sorted((str(name), str(digest))
                          for name, digest in digests.items()))
  return identity, (path, epochs, identity[0][1][:8])


def _saved_optimizer_names(saved):
  """"from <directory>" for each of `saved` ((directory, epochs, digest) or
  None), with the epochs, else the digest, where a directory held
  several."""
  names = _directory_names([None if entry is None else entry[0]
                            for entry in saved])
  held = collections.defaultdict(set)
  for name, entry in zip(names, saved):
    held[name].add(entry)
  result = []
  for name, entry in zip(names, saved):
    if name is None or len(held[name]) < 2:
      result.append(name)
      continue
    epochs = {other[1] for other in held[name]}
    result.append("{} ({})".format(name, "epoch {}".format(entry[1]) if (
        None not in epochs and len(epochs) == len(held[name])) else
                                   "digest " + str(entry[2])))
  return result


def _options(options):
  return tuple(sorted((str(key), repr(value)) for key, value in
                      (options.items() if isinstance(options, dict) else ())))


def _directory_names(values):
  directories = sorted(set(path for path in values if path is not None))
  names = dict(zip(directories, files.distinct_names(directories)))
  return [None if path is None else "from " + names[path] for path in values]


def _differing_options(values):
  """"(key=value, ...)" of the options in which each of `values` (sorted
  `(key, repr)` pairs) differs from the others."""
  everywhere = set.intersection(*(set(value) for value in values))
  return ["({})".format(", ".join("{}={}".format(key, text) for key, text in
                                  value if (key, text) not in everywhere))
          if set(value) - everywhere else None for value in values]


def _told_apart_by(labels, values, describe):
  """Each group of equal labels whose `values` differ, suffixed with
  `describe(group's values)` (None: no suffix)."""
  groups = collections.defaultdict(list)
  for i, text in enumerate(labels):
    groups[text].append(i)
  result = list(labels)
  for members in groups.values():
    if len(set(values[i] for i in members)) < 2:
      continue
    for i, suffix in zip(members, describe([values[i] for i in members])):
      if suffix is not None:
        result[i] = "{} {}".format(labels[i], suffix)
  return result


def _told_apart(all_curves, loaded):
  """Curves whose labels collide, told apart by what ran
  (`told_apart_by_run`), then by their seed and their number of instances
  where those differ (runs of one optimizer on other instances).

  Args:
    all_curves: the `Curve`s, in the order of `loaded`.
    loaded: `(arrays, settings)` of each records file.

  Returns:
    The curves, relabelled where needed.
  """
  all_curves = [curve._replace(label=text) for curve, text in zip(
      all_curves, told_apart_by_run(
          [curve.label for curve in all_curves],
          [settings for _, settings in loaded]))]
  groups = collections.defaultdict(list)
  for i, curve in enumerate(all_curves):
    groups[curve.label].append(i)
  result = list(all_curves)
  for members in groups.values():
    seeds = _unique(loaded[i][1].get("seed") for i in members)
    counts = _unique(loaded[i][0]["losses"].shape[0] for i in members)
    for i in members:
      suffix = []
      if len(seeds) > 1:
        suffix.append("seed {}".format(loaded[i][1].get("seed")))
      if len(counts) > 1:
        suffix.append("{} instances".format(loaded[i][0]["losses"].shape[0]))
      if suffix:
        result[i] = result[i]._replace(
            label=", ".join([all_curves[i].label] + suffix))
  return result


def _unique(values):
  return list(dict.fromkeys(values))


def _plotted_values(some_curves):
  """Every finite value the curves draw (means and band edges)."""
  values = np.concatenate([np.concatenate([c.mean, c.low, c.high])
                           for c in some_curves])
  return values[np.isfinite(values)]


def _framing(all_curves):
  """The curves the y axis is fitted to: those of runs that did not
  diverge, if any. A diverged run's losses grow by tens of decades before
  they overflow; fitted to them, every other curve would lie flat at the
  bottom."""
  finished = [c for c in all_curves if not c.diverged]
  return finished or all_curves


def _y_limits(axes, values, margin=0.05):
  """`(bottom, top)` that fit `values` on `axes`' y scale, with `margin`
  of the span (as drawn, e.g. in decades on a log axis) either side."""
  if axes.get_yscale() == "log":
    values = values[values > 0]
  transform = axes.yaxis.get_transform()
  drawn = transform.transform(values.reshape(-1, 1)).ravel()
  low, high = float(np.min(drawn)), float(np.max(drawn))
  pad = margin * (high - low) or 0.5
  return tuple(transform.inverted().transform(
      [[low - pad], [high + pad]]).ravel())


def _y_scale(values):
  """The y scale for plotted `values` (finite, `_plotted_values`):
  `(name, set_yscale options, label note)`.

  Log if every value is positive; otherwise symlog, linear below the
  smallest non-zero magnitude (but no lower than `SYMLOG_MAX_RANGE` times
  the largest); linear if there are none.
  """
  if values.size == 0:
    return "linear", {}, ""
  if np.all(values > 0):
    return "log", {}, "log scale"
  magnitudes = np.abs(values[values != 0])
  if magnitudes.size:
    threshold = float(max(np.min(magnitudes),
                          np.max(magnitudes) * SYMLOG_MAX_RANGE))
  else:
    threshold = 1.0
  return ("symlog", {"linthresh": threshold},
          "symlog scale: linear for |loss| < {:.2g}".format(threshold))


def build_figure(record_paths, title=None, labels=None):
  """Draws loss versus step for records files.

  Args:
    record_paths: records files; each becomes one curve on its own x range.
    title: the figure's title; defaults to the problem name(s).
    labels: legend labels, one per file, or None (see `curves`).

  Returns:
    A `matplotlib.figure.Figure` with one axes, one line per file in the
    order given, and one shaded band per file.

  Raises:
    ValueError: if `record_paths` is empty or `labels` has another length.
    records.RecordsError: if a file is not a records file.
    FileNotFoundError: if a file does not exist.
  """
  all_curves = curves(record_paths, labels)
  problems = _unique(c.problem for c in all_curves if c.problem is not None)
  fig = mpl_figure.Figure(figsize=(7.0, 4.5), dpi=150)
  backend_agg.FigureCanvasAgg(fig)
  axes = fig.add_subplot(1, 1, 1)
  for curve in all_curves:
    line, = axes.plot(curve.steps, curve.mean, label=curve.label,
                      linewidth=1.5)
    axes.fill_between(curve.steps, curve.low, curve.high,
                      color=line.get_color(), alpha=0.2, linewidth=0)
  framing = _framing(all_curves)
  framed = _plotted_values(framing)
  scale, options, note = _y_scale(framed)
  if scale != "linear":
    axes.set_yscale(scale, **options)
  if scale == "symlog":
    logging.info("Some losses are not positive; plotting on a symlog scale "
                 "(%s).", note)
  if len(framing) < len(all_curves) and framed.size:
    axes.set_ylim(*_y_limits(axes, framed))
    note = "\n".join(filter(None, [note, "fitted to runs that did not diverge"]))
  axes.set_xlabel("step")
  axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
  # "Best-particle" only means something when some curve is a swarm.
  swarm = any(c.num_particles > 1 for c in all_curves)
  ylabel = ("{}, mean over epochs\n(band: {}th-{}th percentile over "
            "epochs)").format("best-particle loss" if swarm else "loss",
                              *BAND_PERCENTILES)
  if note:
    ylabel += "\n" + note
  axes.set_ylabel(ylabel)
  axes.set_title(title if title is not None else
                 ", ".join(problems) or "loss versus step")
  axes.grid(True, which="major", alpha=0.3)
  axes.legend(loc="best", fontsize="small")
  fig.tight_layout()
  return fig


def save_figure(fig, output_path):
  """Writes a figure as a PNG atomically: a reader never sees a partial file.

  Args:
    fig: a `matplotlib.figure.Figure`.
    output_path: the `.png` to write (replaced if it exists); its directory
      is created if missing.

  Returns:
    `output_path`.
  """
  with files.atomic_writer(output_path) as stream:
    fig.savefig(stream, format="png")
  return output_path


def loss_curves(record_paths, output_path, title=None, labels=None):
  """Plots loss versus step of records files into a PNG.

  One curve per file: the mean over epochs of the best particle's loss at
  each step, on a log y-axis (symlog if some loss is not positive, as on
  Rastrigin), with a band between the 25th and 75th percentiles over epochs.
  Runs that diverged are drawn as far as their losses are finite and
  labelled "(diverged)"; the y axis fits the runs that did not, if any.
  Files may have different numbers of steps.

  Args:
    record_paths: records files.
    output_path: the PNG to write, atomically.
    title: the plot's title; defaults to the problem name(s).
    labels: legend labels, one per file, or None to make them from the
      settings, e.g. "Adam (lr=0.01)" or "L2L swarm (k=4)".

  Returns:
    `output_path`.

  Raises:
    ValueError: if `record_paths` is empty or `labels` has another length.
    records.RecordsError: if a file is not a records file.
    FileNotFoundError: if a file does not exist.
  """
  fig = build_figure(record_paths, title=title, labels=labels)
  save_figure(fig, output_path)
  logging.info("Wrote %s.", output_path)
  return output_path

