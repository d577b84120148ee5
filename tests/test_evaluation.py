"""Tests for l2l/experiment/evaluation.py.

Most of evaluation's tests still run through the command line in
test_cli.py.
"""

from l2l.data import datasets
from l2l.experiment import evaluation


def test_evaluation_uses_the_test_split(monkeypatch):
  splits = []
  real_load = datasets.load_digits

  def recording_load(split="train", **kwargs):
    splits.append(split)
    return real_load(split, **kwargs)

  monkeypatch.setattr(datasets, "load_digits", recording_load)
  evaluation.evaluate("SGD", "digits", num_steps=1, num_epochs=1,
                      show_progress=False)
  assert splits == ["test"]
