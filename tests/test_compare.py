"""Tests for compare.py on hand-made records files."""

import csv
import io
import math
import os

import numpy as np
import pytest

from l2l.experiment import compare
from l2l.experiment import records


def test_rows_are_sorted_by_mean_final_loss(tmp_path, records_files):
  adam, l2l, sgd, pso = records_files.comparison(tmp_path)
  rows = compare.rows([adam, l2l, sgd, pso])
  assert [row.path for row in rows] == [pso, l2l, adam, sgd]
  by_path = {row.path: row for row in rows}
  assert by_path[adam][1:] == (
      "Adam (lr=0.01)", "quadratic", 0.01, False, 0, 2, 1, 10.0, 5.0, 1.0,
      1.0, 1, 2, 10.0)
  assert by_path[l2l][1:] == (
      "L2L swarm (k=2)", "quadratic", None, False, 0, 2, 1, 2.0, 1.0,
      math.log10(2.0), 3.0, 2, 2, 2.0)
  assert by_path[pso].final == -0.5 and by_path[pso].final_std == 0.5
  assert math.isnan(by_path[pso].log_final)
  assert by_path[sgd].label == "SGD (lr=0.1) (diverged)"
  assert by_path[sgd].tuned
  assert math.isnan(by_path[sgd].final)
  assert by_path[sgd].seconds == 0.25


def test_two_trained_optimizers_are_told_apart_in_their_labels(
    tmp_path, records_files):
  paths = [records_files.write(tmp_path, records_files.losses(),
                               optimizer="L2L", learning_rate=None, path=path)
           for path in ("/a/quadratic", "/a/digits", None)]
  assert sorted(row.label for row in compare.rows(paths)) == [
      "L2L swarm (k=2) from digits", "L2L swarm (k=2) from quadratic",
      "L2L swarm (k=2, untrained)"]


def test_markdown_table(tmp_path, records_files):
  adam, l2l, sgd, pso = records_files.comparison(tmp_path)
  text = compare.table([adam, l2l, sgd, pso])
  assert text.split("\n") == [
      "| Optimizer | Problem | Learning rate | Seed | Epochs | Steps | "
      "Final loss (mean ± std over start sets) | Log Mean Final Error | "
      "Seconds / epoch | Best particle by batch mean |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
      "| PSO (k=2) | quadratic | - | 0 | 2 | 1 | -0.5 ± 0.5 | "
      "none (negative mean) | 1 | -0.5 |",
      "| L2L swarm (k=2) | quadratic | - | 0 | 2 | 1 | 2 ± 1 | 0.30 | 3 | "
      "2 |",
      "| Adam (lr=0.01) | quadratic | 0.01 | 0 | 2 | 1 | 10 ± 5 | 1.00 | 1 | "
      "10 |",
      "| SGD (lr=0.1) (diverged) | quadratic | 0.1 (tuned) | 0 | 2 | 1 | "
      "diverged | diverged | 0.25 | diverged |",
      "",
  ]
  # With one particle everywhere the older figure is the same: no column.
  assert "by batch mean" not in compare.table([adam, sgd])


def test_a_rate_kept_after_every_tuning_rate_diverged_is_not_called_tuned(
    tmp_path, records_files):
  tuned = {"seed": 100003, "epochs": 2, "scores": {"0.1": 0.5, "1.0": "inf"}}
  failed = {"seed": 100003, "epochs": 2,
            "scores": {"0.1": float("inf"), "1.0": float("nan")}}
  paths = [records_files.write(tmp_path, records_files.losses(),
                               optimizer="SGD", learning_rate=0.1,
                               tuning=tuning) for tuning in (tuned, failed)]
  assert [row.tuned for row in compare.rows(paths)] == [True, False]
  assert compare.table(paths).count(" (tuned)") == 1


def test_restarts_are_scored_per_start_set(tmp_path, records_files):
  # Two restarts on an instance of two rows: each wins one row (1 and 2),
  # so the best per start set averages 1.5, where picking one restart for
  # the whole batch would give min(5, 5.5).
  row_losses = np.full((1, 2, 2, 2), 10.0)
  row_losses[0, -1] = [[1.0, 9.0], [9.0, 2.0]]
  path = records_files.write(tmp_path, row_losses, optimizer="Adam",
                             learning_rate=0.1,
                             swarm_options={"num_particles": 2})
  (row,) = compare.rows([path])
  assert (row.final, row.final_std, row.start_sets) == (1.5, 0.5, 2)
  assert row.final_by_mean == 5.0
  assert "| 1.5 ± 0.5 | 0.18 | 1 | 5 |" in compare.table([path])


def test_csv_table(tmp_path, records_files):
  adam, l2l, _, _ = records_files.comparison(tmp_path)
  text = compare.table([adam, l2l], fmt="csv")
  rows = list(csv.DictReader(io.StringIO(text)))
  assert [row["optimizer"] for row in rows] == ["L2L swarm (k=2)",
                                                 "Adam (lr=0.01)"]
  assert rows[1] == {
      "optimizer": "Adam (lr=0.01)", "problem": "quadratic",
      "learning_rate": "0.01", "tuned": "0", "seed": "0", "epochs": "2",
      "steps": "1", "start_sets": "2", "final_loss_mean": "10.0",
      "final_loss_std": "5.0", "log_mean_final_error": "1.0",
      "final_loss_best_particle_by_batch_mean": "10.0",
      "seconds_per_epoch": "1.0", "records_file": adam}
  assert rows[0]["learning_rate"] == ""
  assert float(rows[0]["log_mean_final_error"]) == math.log10(2.0)


def test_runs_of_the_same_settings_name_their_files(tmp_path,
                                                  records_files):
  # Two evaluations alike but for their figures: only the file tells them
  # apart, so the table names it (base names, or whole paths where those
  # are the same).
  first = records_files.write(tmp_path, records_files.losses(),
                              optimizer="Adam", learning_rate=0.01)
  second = records_files.write(tmp_path, records_files.losses() * 2,
                               optimizer="Adam", learning_rate=0.01)
  lines = compare.table([first, second]).split("\n")
  assert lines[0].endswith("| Records file |")
  assert lines[1].endswith("|---|")
  assert sorted(line.split(" | ")[-1].rstrip(" |") for line in lines[2:4]) == (
      sorted(os.path.basename(p) for p in (first, second)))
  (tmp_path / "other").mkdir()
  third = records_files.write(tmp_path / "other", records_files.losses(),
                              optimizer="Adam", learning_rate=0.01)
  assert os.path.basename(third) == os.path.basename(first)
  assert str(third) in compare.table([first, third])
  # Rows that differ in their settings need no file column.
  assert "Records file" not in compare.table(
      list(records_files.comparison(tmp_path / "other")))


def test_csv_table_says_diverged(tmp_path, records_files):
  _, _, sgd, pso = records_files.comparison(tmp_path)
  rows = list(csv.DictReader(io.StringIO(compare.table([sgd, pso],
                                                       fmt="csv"))))
  assert [(r["final_loss_mean"], r["final_loss_std"],
           r["log_mean_final_error"]) for r in rows] == [
               ("-0.5", "0.5", "none (negative mean)"),
               ("diverged", "", "diverged")]


def test_table_rejects_no_files_and_unknown_formats(tmp_path, records_files):
  with pytest.raises(ValueError, match="No records files"):
    compare.table([])
  path = records_files.write(tmp_path, records_files.losses())
  with pytest.raises(ValueError, match="latex"):
    compare.table([path], fmt="latex")


def test_table_names_a_file_whose_settings_it_cannot_show(tmp_path,
                                                          records_files):
  path = records_files.write(tmp_path, records_files.losses(),
                             learning_rate="fast")
  with pytest.raises(records.RecordsError,
                     match=r"SGD.*npz is not a records file: its settings' "
                     r"learning_rate is \"fast\", expected a number\."):
    compare.table([path])


def test_differences(tmp_path, records_files):
  same = [records_files.write(tmp_path / "a", records_files.losses(),
                              optimizer=name) for name in ("SGD", "Adam")]
  assert compare.differences(compare.rows(same)) == []
  other_seed = records_files.write(tmp_path / "b", records_files.losses(),
                                   seed=5)
  longer = records_files.write(tmp_path / "c", np.ones((2, 9, 1)),
                               problem="square_cos_2")
  rows = compare.rows(same + [other_seed, longer])
  assert rows[0].path == longer  # Final loss 1 before 1.5: values in row order.
  assert compare.differences(rows) == [
      "the records differ in problem: square_cos_2, quadratic",
      "the records differ in seed: 0, 5",
      "the records differ in num_epochs: 2, 4",
      "the records differ in num_steps: 8, 2",
  ]
  # One seed, fewer instances: the first of them only, another sample.
  fewer = records_files.write(tmp_path / "d",
                              records_files.losses()[:1], optimizer="RMSProp")
  assert compare.differences(compare.rows(same + [fewer])) == [
      "the records differ in num_epochs: 1, 4"]


