"""Subprocess tests of `python -m l2l.experiment.compare_command`."""

import csv
import io
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _compare(*args):
  return subprocess.run(
      [sys.executable, "-m", "l2l.experiment.compare_command"] + list(args),
      cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_compare_command_on_a_bad_file(tmp_path, records_files):
  good = records_files.write(tmp_path, records_files.losses())
  bad = tmp_path / "broken.npz"
  bad.write_bytes(b"PK\x03\x04 not really a zip")
  result = _compare(good, str(bad))
  assert result.returncode == 1
  assert "Traceback" not in result.stderr
  errors = [line for line in result.stderr.splitlines()
            if line.startswith("Error:")]
  assert len(errors) == 1 and str(bad) in errors[0]
  assert result.stdout == ""


def test_compare_command_writes_table_warnings_and_plot(tmp_path,
                                                        records_files):
  adam, l2l, _, _ = records_files.comparison(tmp_path)
  other_seed = records_files.write(
      tmp_path / "seed", [[[9.0], [20.0]], [[9.0], [20.0]]],
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


def test_the_plot_never_replaces_a_records_file_or_another_file(
    tmp_path, records_files):
  good = records_files.write(tmp_path, records_files.losses())
  notes = tmp_path / "notes.png"
  notes.write_text("my notes, not a plot")
  before = open(good, "rb").read()
  for output, message in (
      (good, "Error: --output={} is invalid: the plot is a PNG image; "
             "expected a path ending in .png.".format(good)),
      (str(notes), "Error: --output={} exists and is not a PNG image; the "
                   "plot replaces only an earlier plot: choose another "
                   "path.".format(notes))):
    result = _compare(good, "--output=" + output)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == message
    assert result.stdout == ""
  assert open(good, "rb").read() == before
  assert notes.read_text() == "my notes, not a plot"
  # A records file renamed .png is one of the inputs all the same.
  renamed = tmp_path / "records.png"
  os.rename(good, renamed)
  result = _compare(str(renamed), "--output=" + str(renamed))
  assert result.returncode == 1
  assert "is one of the records files to compare" in result.stderr
  # An earlier plot is replaced.
  plot = str(tmp_path / "plot.png")
  for _ in range(2):
    result = _compare(str(renamed), "--output=" + plot)
    assert result.returncode == 0, result.stderr


def test_compare_help_names_its_records_files_and_exits_0():
  # Every command's help flags are cli.run's; this command starts fast.
  outputs = {}
  for flag in ("--help", "-h", "--helpfull"):
    result = _compare(flag)
    assert result.returncode == 0, (flag, result.stderr)
    assert result.stdout.startswith(
        "Usage: python -m l2l.experiment.compare_command [flags] "
        "RECORDS.npz [RECORDS.npz ...]\n\nCompares evaluations"), flag
    assert "records files (.npz) that evaluate.py wrote" in result.stdout
    assert "--output" in result.stdout and "--format" in result.stdout
    outputs[flag] = result.stdout
  # -h is --help; --helpfull adds the libraries' flags.
  assert outputs["-h"] == outputs["--help"]
  assert "--verbosity" not in outputs["--help"]
  assert "--verbosity" in outputs["--helpfull"]
  assert "Try --helpfull" in outputs["--help"]


def test_compare_without_files_or_with_an_empty_output_is_one_line():
  result = _compare()
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "Error: no records files given: expected python -m "
      "l2l.experiment.compare_command RECORDS.npz [RECORDS.npz ...] (the "
      ".npz files evaluate.py wrote).")
  result = _compare("--output=", "a.npz")
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "Error: --output= is invalid: expected a path, got an empty value.")
