"""Tests of l2l/checkpoint/manifest.py: the saved optimizer's manifest."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import save_as_a_run_does
import l2l
from l2l.checkpoint import manifest
import meta
import networks
import problems
import util


def test_single_net_rule_covers_everything():
  rule = manifest.rule_from_assignments(["cw"], ["a", "b"], [2, 1], [[0, 1]])
  assert rule == [{"net": "cw", "match": "everything"}]
  assignments, net_of = manifest.assign(rule, ["w", "b", "s"], [4, 1, 0])
  assert assignments == [("cw", ["w", "b", "s"])]
  assert net_of == ["cw", "cw", "cw"]


def test_disjoint_ranks_give_a_rank_rule():
  # DeepMind's cifar-multi: conv kernels (rank 4) on one net, the rest on
  # another.
  names = ["conv/w", "conv/b", "mlp/w", "mlp/b"]
  rule = manifest.rule_from_assignments(["conv", "fc"], names, [4, 1, 2, 1],
                                        [[0], [1, 2, 3]])
  assert rule == [{"net": "conv", "match": "rank", "ranks": [4]},
                  {"net": "fc", "match": "rank", "ranks": [1, 2]}]
  assignments, net_of = manifest.assign(
      rule, ["k1", "dense/kernel", "dense/bias", "k2"], [4, 2, 1, 4])
  assert assignments == [("conv", ["k1", "k2"]),
                         ("fc", ["dense/kernel", "dense/bias"])]
  assert net_of == ["conv", "fc", "fc", "conv"]
  with pytest.raises(ValueError, match=r"covers the variables odd \(rank 3\)"):
    manifest.assign(rule, ["odd"], [3])


def test_overlapping_ranks_give_exact_name_patterns():
  rule = manifest.rule_from_assignments(["cw", "adam"], ["x_0", "x.1"],
                                        [0, 0], [[0], [1]])
  assert [entry["match"] for entry in rule] == ["pattern", "pattern"]
  _, net_of = manifest.assign(rule, ["x_0", "x.1"], [0, 0])
  assert net_of == ["cw", "adam"]
  # The dot is escaped; a name that merely contains another does not match.
  with pytest.raises(ValueError, match=r"x_1 \(rank 0\), scope/x_0"):
    manifest.assign(rule, ["x_1", "scope/x_0"], [0, 0])


def test_variables_left_out_of_every_net_stay_fixed_by_the_rule():
  # Training keeps them fixed; so do evaluation and the drop-in.
  rule = manifest.rule_from_assignments(["cw"], ["x", "y", "z"], [1, 1, 0],
                                        [[0]])
  assert rule == [{"net": None, "match": "pattern", "pattern": "^(?:y|z)$"},
                  {"net": "cw", "match": "everything"}]
  assignments, net_of = manifest.assign(rule, ["x", "y", "z"], [1, 1, 0])
  assert assignments == [("cw", ["x"])]
  assert net_of == ["cw", None, None]
  two = manifest.rule_from_assignments(["a", "b"], ["w", "v", "u"],
                                       [2, 1, 1], [[0], [1]])
  assert two[0] == {"net": None, "match": "pattern", "pattern": "^(?:u)$"}
  assert manifest.assign(two, ["w", "v", "u"], [2, 1, 1])[1] == [
      "a", "b", None]


def test_a_variable_under_two_nets_cannot_become_a_rule():
  with pytest.raises(ValueError) as error:
    manifest.rule_from_assignments(["a", "b"], ["x", "y"], [1, 1],
                                   [[0, 1], [0]])
  assert str(error.value) == (
      "net_assignments put variable x under nets 'a' and 'b': it moves by "
      "the sum of their steps, which a saved optimizer cannot record (its "
      "rule gives each variable one net); assign each variable to one net.")


def test_net_entry_is_json_safe_and_drops_paths():
  config = dict(networks.default_config(), net_path="/somewhere/cw.l2l")
  entry = manifest.net_entry(config)
  assert entry == {"net": "CoordinateWiseDeepLSTM", "net_options": {
      "layers": [20, 20], "preprocess_name": "LogAndSign",
      "preprocess_options": {"k": 5}, "scale": 0.01}}
  # Values as an initializer are replaced by the saved file; a name stays.
  arrays = {"net": "Sgd", "net_options": {"initializer": {"a": np.ones(2)}}}
  assert manifest.net_entry(arrays)["net_options"] == {}
  named = {"net": "Sgd", "net_options": {"initializer": "zeros"}}
  assert manifest.net_entry(named)["net_options"] == {"initializer": "zeros"}
  with pytest.raises(ValueError, match="cannot be written"):
    manifest.json_safe({"a": object()})


def test_meta_optimizer_save_writes_the_manifest(fresh_session, tmp_path):
  problem, net_config, assignments = util.get_config("simple-multi")
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(**net_config)
    optimizer.meta_loss(problem, 2, net_assignments=assignments)
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, tmp_path, problem="simple-multi",
                   training={"num_epochs": 3, "shape": (1, 2)})
  written = json.loads((tmp_path / manifest.FILENAME).read_text())
  assert written["library_version"] == l2l.__version__
  assert written["problem"] == "simple-multi"
  assert written["training"] == {"num_epochs": 3, "shape": [1, 2]}
  assert written["swarm"]["num_particles"] == 1
  assert written["nets"]["adam"] == {"net": "Adam",
                                     "net_options": {"learning_rate": 0.1}}
  assert written["nets"]["cw"]["net_options"] == {"layers": [],
                                                  "initializer": "zeros"}
  read = manifest.read(tmp_path)
  assert read == written
  _, net_of = manifest.assign(read["assignment"], ["x_0", "x_1"], [0, 0])
  assert net_of == ["cw", "adam"]
  configs = manifest.net_configs(read, tmp_path)
  assert configs["cw"]["net_path"] == str(tmp_path / "cw.l2l")


def test_script_save_leaves_problem_and_training_empty(fresh_session,
                                                       tmp_path):
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(num_particles=2, use_entropy=False)
    optimizer.meta_loss(problems.quadratic(batch_size=2, num_dims=2), 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, tmp_path)
  read = manifest.read(tmp_path)
  assert read["problem"] is None and read["training"] == {}
  assert read["swarm"]["num_particles"] == 2
  assert read["swarm"]["use_entropy"] is False


def _saved_simple(fresh_session, directory, **save_args):
  with fresh_session() as sess:
    optimizer = meta.MetaOptimizer(cw={"net": "Sgd"})
    optimizer.meta_loss(problems.simple(), 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    return optimizer.save(sess, directory, **save_args)


def test_a_manifest_json_that_is_not_l2l_s_is_never_replaced(fresh_session,
                                                            tmp_path):
  # Many tools name a file manifest.json (web apps, extensions).
  theirs = tmp_path / manifest.FILENAME
  theirs.write_text('{"name": "my web app", "version": 3}')
  with pytest.raises(manifest.ManifestError,
                     match=r"manifest.json is not an l2l manifest .* will not "
                     "replace it"):
    _saved_simple(fresh_session, tmp_path)
  assert theirs.read_text() == '{"name": "my web app", "version": 3}'
  # Refused before any net was written beside it.
  assert sorted(p.name for p in tmp_path.iterdir()) == [manifest.FILENAME]
  # An earlier save's manifest is this library's: a later save replaces it.
  _saved_simple(fresh_session, tmp_path / "ours")
  _saved_simple(fresh_session, tmp_path / "ours", problem="simple")
  assert manifest.read(tmp_path / "ours")["problem"] == "simple"


def test_a_save_path_must_be_a_directory(fresh_session, tmp_path):
  mine = tmp_path / "a_file"
  mine.write_text("mine")
  with pytest.raises(ValueError, match=r"save's path .*a_file is not a "
                     "directory; expected the directory to save"):
    _saved_simple(fresh_session, mine)
  with pytest.raises(ValueError, match="save's path is empty"):
    _saved_simple(fresh_session, "")
  assert mine.read_text() == "mine"


def test_a_save_writes_no_manifest_its_reader_would_refuse(fresh_session,
                                                           tmp_path):
  with pytest.raises(manifest.ManifestError, match="'problem' must be a "
                     "problem name, got 123"):
    _saved_simple(fresh_session, tmp_path, problem=123)
  with pytest.raises(manifest.ManifestError, match="'training' must be a "
                     "JSON object"):
    _saved_simple(fresh_session, tmp_path, training="x")
  # Nothing written: nets without their manifest would load as DeepMind's
  # default net.
  assert not tmp_path.exists() or not list(tmp_path.iterdir())


def test_a_manifest_that_is_no_file_is_refused_not_ignored(tmp_path):
  # Read as no manifest, the directory's nets would be DeepMind's default.
  (tmp_path / manifest.FILENAME).mkdir()
  with pytest.raises(manifest.ManifestError, match=r"manifest.json is not a "
                     "file; expected the JSON manifest"):
    manifest.read(tmp_path)
  dangling = tmp_path / "dangling"
  dangling.mkdir()
  (dangling / manifest.FILENAME).symlink_to(tmp_path / "gone.json")
  with pytest.raises(manifest.ManifestError, match="is not a file"):
    manifest.read(dangling)
  with pytest.raises(manifest.ManifestError, match="will not replace it"):
    manifest.check_replaceable(dangling)


def test_training_settings_of_null_read_as_none_given(fresh_session,
                                                      tmp_path):
  _saved_simple(fresh_session, tmp_path, problem="simple",
                training={"seed": 1})
  path = tmp_path / manifest.FILENAME
  edited = json.loads(path.read_text())
  edited["training"] = None
  path.write_text(json.dumps(edited))
  assert manifest.read(tmp_path, whole=False)["training"] == {}


def test_directory_without_manifest_reads_as_none(tmp_path):
  assert manifest.read(tmp_path) is None


def _save_swarm(fresh_session, path, seed):
  """Saves a 2-particle swarm (two files: cw.l2l, attention.l2l)."""
  with fresh_session(seed=seed) as sess:
    optimizer = meta.MetaOptimizer(num_particles=2, use_entropy=False)
    optimizer.meta_loss(problems.quadratic(batch_size=2, num_dims=2), 1)
    sess.run(tf.compat.v1.global_variables_initializer())
    optimizer.save(sess, path)


def test_a_save_cut_short_between_its_files_is_refused(fresh_session,
                                                       tmp_path):
  # A kill or a full disk between two files leaves one file of the new
  # save beside the old save's others and its manifest.
  old, new = tmp_path / "old", tmp_path / "new"
  _save_swarm(fresh_session, old, seed=1)
  _save_swarm(fresh_session, new, seed=2)
  digests = manifest.read(old)["file_digests"]
  assert sorted(digests) == ["attention.l2l", "cw.l2l"]
  assert digests["cw.l2l"] == hashlib.sha256(
      (old / "cw.l2l").read_bytes()).hexdigest()
  (old / "cw.l2l").write_bytes((new / "cw.l2l").read_bytes())
  with pytest.raises(manifest.ManifestError, match=(
      r"manifest.json: cw.l2l is missing or not the file this manifest was "
      r"saved with: the save was cut short .* Resume the run that wrote it "
      r"\(its train.py command with --resume\) or save again")):
    manifest.read(old)
  # A run resuming there reads it as it is: its next save rewrites all.
  assert manifest.read(old, whole=False)["nets"]
  (old / "attention.l2l").unlink()
  with pytest.raises(manifest.ManifestError, match="attention.l2l is missing"):
    manifest.read(old)


def test_a_run_stopped_before_its_first_save_is_named(tmp_path):
  # Its net file may be there, but no manifest yet: not DeepMind's files.
  states = tmp_path / manifest.TRAINING_STATE_DIRECTORY
  states.mkdir()
  (tmp_path / "cw.l2l").write_bytes(b"half")
  stopped = (r"holds a train.py run's training_state/ but no manifest.json: "
             r"the run stopped before it first saved a whole optimizer. ")
  # Killed while it wrote its first training state: nothing to resume.
  with pytest.raises(manifest.ManifestError, match=(
      stopped + r"It had not yet kept a training state either: start it "
      r"again \(its train.py command, without --resume\).")):
    manifest.read(str(tmp_path))
  (states / manifest.TRAINING_STATE_FILE).write_bytes(b"a state")
  with pytest.raises(manifest.ManifestError, match=(
      stopped + r"Resume it \(its train.py command with --resume\) to save "
      r"one.")):
    manifest.read(str(tmp_path))
  assert manifest.read(str(tmp_path), whole=False) is None


@pytest.mark.parametrize("text, message", [
    ("{not json", "not a JSON manifest"),
    ("[]", "expected a JSON object"),
    ('{"format_version": 1}', "missing keys nets, assignment"),
    ('{"format_version": 99, "nets": {}, "assignment": [], "swarm": {}, '
     '"library_version": "9"}', "format_version 99"),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "other", "match": "everything"}], "swarm": {}, '
     '"library_version": "0"}', "must name one of the nets cw"),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "pattern", "pattern": "("}], "swarm": {}, '
     '"library_version": "0"}', "needs 'pattern'"),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "size"}], "swarm": {}, '
     '"library_version": "0"}', "'match' must be one of"),
    # Hand-edited: each is one error naming what is wrong.
    ('{"format_version": "1", "nets": {}, "assignment": [], "swarm": {}, '
     '"library_version": "9"}', "format_version must be an integer >= 1, got "
     '"1".'),
    ("[" * 100000 + "]" * 100000, "not a JSON manifest"),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": ["cw"], "match": "everything"}], "swarm": {}, '
     '"library_version": "0"}', "must name one of the nets cw"),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "everything"}], "swarm": {}, '
     '"library_version": "0", "problem": 5}',
     "'problem' must be a problem name, got 5."),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "everything"}], "swarm": {}, '
     '"library_version": "0", "training": [1]}',
     "'training' must be a JSON object of training settings, got [1]."),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "everything"}], "swarm": {}, '
     '"library_version": "0", "training": {"seed": "3"}}',
     "training's 'seed' must be an integer, got \"3\"."),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "everything"}], "swarm": {}, '
     '"library_version": "0", "training": {"problem_module": 7}}',
     "training's 'problem_module' must be the path of a Python file, got 7."),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "everything"}], "swarm": {"bogus": 1}, '
     '"library_version": "0"}',
     "'swarm' has options this library does not know: bogus."),
    ('{"format_version": 1, "nets": {"cw": {"net": "Sgd"}}, "assignment": '
     '[{"net": "cw", "match": "everything"}], "swarm": {}, '
     '"library_version": "0", "file_digests": {"../cw.l2l": "0"}}',
     "'file_digests' must map file names to sha256 digests."),
])
def test_bad_manifests_are_refused_naming_the_file(tmp_path, text, message):
  (tmp_path / manifest.FILENAME).write_text(text)
  with pytest.raises(manifest.ManifestError) as error:
    manifest.read(tmp_path)
  assert str(error.value).startswith(str(tmp_path / manifest.FILENAME))
  assert message in str(error.value)


def test_a_read_gives_up_on_a_save_cut_short_and_on_endless_saves(
    trained_simple, tmp_path, monkeypatch):
  monkeypatch.setattr(manifest, "REREAD_SECONDS", 0.0)
  early, _ = trained_simple
  directory = tmp_path / "saved"
  shutil.copytree(early, directory)
  calls = []

  def cut_short():
    calls.append(1)
    raise manifest.ManifestError("cw.l2l is missing or not the file")

  # Files that stay as they are: a save cut short, said at once.
  with pytest.raises(manifest.ManifestError, match="cw.l2l is missing"):
    manifest.read_unsaved(str(directory), cut_short)
  assert len(calls) == 1

  def saved_into_each_time():
    calls.append(1)
    save_as_a_run_does(early, directory)

  calls.clear()
  with pytest.raises(ValueError, match="saved into during each of 5 reads"):
    manifest.read_unsaved(str(directory), saved_into_each_time)
  assert len(calls) == manifest.READ_ATTEMPTS == 5
