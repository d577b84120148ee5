"""Tests for progress.py: a bar on a terminal, log lines off it, and the
statistics blocks of a run."""

import io
import itertools

from absl import logging

from l2l.experiment import progress


def test_disabled_returns_the_iterable_itself():
  items = [1, 2, 3]
  assert progress.bar(items, "x", enabled=False) is items


def test_off_a_terminal_it_logs_every_tenth_and_the_last(monkeypatch):
  monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
  lines = []
  monkeypatch.setattr(logging, "info",
                      lambda fmt, *args: lines.append(fmt % args))
  assert list(progress.bar(range(25), "Training")) == list(range(25))
  done = [line.split(",")[0] for line in lines]
  assert done == ["Training: {}/25 done".format(n)
                  for n in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25)]


def test_unknown_length_is_shown_as_a_question_mark(monkeypatch):
  monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
  lines = []
  monkeypatch.setattr(logging, "info",
                      lambda fmt, *args: lines.append(fmt % args))
  assert list(progress.bar(iter(range(10)), "Eval")) == list(range(10))
  assert lines[0].startswith("Eval: 1/? done")
  assert len(lines) == 10


def test_a_range_too_long_for_len_is_shown_as_of_unknown_length(
    monkeypatch):
  # len() of a range past sys.maxsize raises OverflowError.
  monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False)
  lines = []
  monkeypatch.setattr(logging, "info",
                      lambda fmt, *args: lines.append(fmt % args))
  long_range = range(10 ** 23)
  assert list(itertools.islice(progress.bar(long_range, "Eval"), 3)) == [
      0, 1, 2]
  assert lines[0].startswith("Eval: 1/? done")


def test_a_report_writes_deepminds_blocks_to_its_stream():
  stream = io.StringIO()
  report = progress.Report(stream)
  report.stats("Epoch 4", 0.4, 2.0, 4)
  report.saving("/runs/q")
  assert stream.getvalue() == ("Epoch 4\nLog Mean Final Error: -1.00\n"
                               "Mean epoch time: 0.50 s\n"
                               "Saving meta-optimizer to /runs/q\n")


def test_a_report_without_a_stream_logs_each_block_once(monkeypatch):
  lines = []
  monkeypatch.setattr(logging, "info",
                      lambda fmt, *args: lines.append(fmt % args))
  progress.Report().stats("EVALUATION", float("nan"), 1.0, 1)
  # One record, no trailing blank line; NaN is never a score.
  assert lines == ["EVALUATION\nLog Mean Final Error: diverged\n"
                   "Mean epoch time: 1.00 s"]


def test_a_swarms_blocks_say_they_are_a_mean_over_its_particles():
  stream = io.StringIO()
  progress.Report(stream, num_particles=4).stats("Epoch 2", 0.2, 1.0, 2)
  assert stream.getvalue().startswith(
      "Epoch 2 (mean of the 4 particles)\nLog Mean Final Error: -1.00\n")
