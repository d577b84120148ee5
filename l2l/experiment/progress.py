"""Progress readout for long runs: a tqdm bar on a terminal, log lines off it."""

import sys
import timeit

from absl import logging
import tqdm


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
    total = len(iterable)
  if sys.stderr.isatty():
    return tqdm.tqdm(iterable, desc=desc, total=total, leave=False)
  every = max(1, (total or 10) // 10)
  return _log_lines(iterable, desc, total, every)
