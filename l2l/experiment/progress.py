"""What a long run shows as it goes: a progress readout (a tqdm bar on a
terminal, log lines off it) and its statistics blocks (`Report`)."""

import sys
import timeit

from absl import logging
import tqdm

import util


def _log_lines(iterable, desc, total, every):
  start = timeit.default_timer()
  for i, item in enumerate(iterable):
    yield item
    done = i + 1
    if done % every == 0 or done == total:
      elapsed = timeit.default_timer() - start
      logging.info("%s: %d/%s done, %.1f s elapsed", desc, done,
                   total if total is not None else "?", elapsed)


def bar(iterable, desc, enabled=True, total=None):
  """Wraps `iterable` with a progress readout.

  Args:
    iterable: what to iterate over.
    desc: label of the readout.
    enabled: False returns `iterable` unchanged.
    total: its length, if `len()` does not give it.

  Returns:
    An iterable yielding the same items.
  """
  if not enabled:
    return iterable
  if total is None and hasattr(iterable, "__len__"):
    try:
      total = len(iterable)
    except OverflowError:
      # A range longer than sys.maxsize: counted, but of no known length.
      total = None
  if sys.stderr.isatty():
    return tqdm.tqdm(iterable, desc=desc, total=total, leave=False)
  every = max(1, (total or 10) // 10)
  return _log_lines(iterable, desc, total, every)


class Report:
  """Where a run's statistics blocks go.

  DeepMind's train.py printed its blocks ("Epoch 100", "Log Mean Final
  Error: ...", "Mean epoch time: ...") on stdout, where scripts grep them;
  the commands pass `sys.stdout` for that. Library callers that pass no
  stream get the blocks in the log.
  """

  def __init__(self, stream=None, num_particles=1):
    """Creates the report.

    Args:
      stream: a text stream for the blocks, or None to log them.
      num_particles: the swarm's particles; for a swarm the figures are the
        mean of every particle's final loss (what training compares), which
        each header says.
    """
    self._stream = stream
    self._unit = (" (mean of the {} particles)".format(num_particles)
                  if num_particles > 1 else "")

  def text(self, text):
    """Reports `text`, one or more whole lines."""
    if self._stream is None:
      logging.info("%s", text.rstrip("\n"))
      return
    # Above any progress bar, which tqdm then redraws.
    tqdm.tqdm.write(text.rstrip("\n"), file=self._stream)
    self._stream.flush()

  def stats(self, header, total_error, total_time, n):
    """Reports the originals' statistics block (`util.format_stats`)."""
    self.text(util.format_stats(header + self._unit, total_error,
                                total_time, n))

  def saving(self, path):
    """Reports that the best optimizer so far is being saved in `path`."""
    self.text("Saving meta-optimizer to {}\n".format(path))
