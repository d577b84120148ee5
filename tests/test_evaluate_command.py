"""Tests for evaluate_command.py through evaluate.py."""

import json
import os
import shutil
import signal
import sys

import numpy as np
import pytest

from l2l.checkpoint import l2l_file
from l2l.experiment import records
import commands
from conftest import bowl_losses
from conftest import interrupt_after
from conftest import write_lois_released
from conftest import validate
from conftest import write_problem_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_evaluate_command_line(ref, tmp_path):
  command = [sys.executable, "evaluate.py", "--problem=simple",
             "--optimizer=Adam", "--num_epochs=2", "--num_steps=3",
             "--records_dir=" + str(tmp_path)]
  done = commands.run(command, cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.returncode == 0, done.stderr
  final = ref.adam(lambda x, t: 2 * x, 1.0, 3, learning_rate=0.001)[-1]
  assert "Epoch 2\n" in done.stdout
  assert "Log Mean Final Error: {:.2f}\n".format(
      np.log10(final**2)) in done.stdout
  (records,) = os.listdir(tmp_path)
  assert "Records: {}\n".format(tmp_path / records) in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_during_an_evaluation_is_one_line_and_writes_nothing(
    tmp_path, signum):
  command = [sys.executable, "evaluate.py", "--problem=simple",
             "--optimizer=Adam", "--num_epochs=500", "--num_steps=100",
             "--records_dir=" + str(tmp_path)]
  # The command starts with Python's Ctrl-C handler, as in a terminal's
  # foreground job, even where the suite runs as a shell's background job
  # (whose children start with SIGINT ignored): commands.Popen sets it.
  process = commands.Popen(
      command, cwd=ROOT, stdout=commands.PIPE, stderr=commands.PIPE,
      text=True)
  # The first progress line says the evaluation is under way.
  interrupt_after(process, "Adam on simple:", signum)
  stdout, stderr = process.communicate(timeout=120)
  assert process.returncode == 128 + signum, stderr
  assert "Traceback" not in stderr
  assert stderr.strip().splitlines()[-1] == (
      "Interrupted ({}): the evaluation stopped; a records file is only "
      "written when it ends.".format(signal.Signals(signum).name))
  assert not stdout
  assert os.listdir(tmp_path) == []


def test_evaluate_help_lists_every_flag():
  done = commands.run([sys.executable, "evaluate.py", "--help"], cwd=ROOT,
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(
      "Usage: python evaluate.py [flags]\n\nEvaluates a learned optimizer, "
      "or a baseline, on held-out instances.")
  for flag in ("--optimizer", "--path", "--problem", "--num_particle",
               "--data_dir", "--tune", "--records_dir", "--pso_inertia",
               "--[no]untrained", "--problem_module"):
    assert flag in done.stdout, flag


def _evaluate(*args):
  return commands.run([sys.executable, "evaluate.py"] + list(args),
                        cwd=ROOT, capture_output=True, text=True,
                        timeout=300, check=False)


def test_every_bad_evaluate_flag_is_one_line_before_any_work(tmp_path):
  module = write_problem_module(tmp_path)
  cases = {
      ("--num_epochs=0",): "--num_epochs=0 is invalid: expected an integer "
                           ">= 1.",
      ("--num_steps=0",): "--num_steps=0 is invalid",
      ("--num_steps=-2",): "--num_steps=-2 is invalid",
      ("--num_particle=0",): "--num_particle=0 is invalid",
      ("--tune_epochs=0",): "--tune_epochs=0 is invalid",

      ("--record_positions=-1",): "--record_positions=-1 is invalid: "
                                  "expected an integer >= 0.",
      ("--optimizer=SGD", "--learning_rate=-1"):
          "--learning_rate=-1.0 is invalid: expected a finite number > 0.",
      ("--optimizer=PSO", "--pso_inertia=-5"):
          "--pso_inertia=-5.0 is invalid: expected a finite number >= 0.",
      # Checked whether or not the run uses it.
      ("--optimizer=Adam", "--swarm_step_noise=nan"):
          "--swarm_step_noise=nan is invalid: expected a finite number >= 0.",
      ("--problem=square_cos_0",): "--problem=square_cos_0 is invalid",
      ("--num_particle=99999999999",): "--num_particle=99999999999 is "
                                       "invalid: expected at most 2147483647",
      ("--records_dir=/proc/l2l-test",): "--records_dir=/proc/l2l-test is "
                                         "not writable",
      ("--optimizer=Adam", "--path=/proc"):
          "(/proc); the records file goes there unless --records_dir "
          "names another directory.",
      ("--path=",): "--path= is invalid: expected a path, got an empty "
                    "value.",
      ("--records_dir=",): "--records_dir= is invalid: expected a path",
      ("--data_dir=",): "--data_dir= is invalid: expected a path",
      ("--optimizer=L2L",): "--optimizer=L2L needs --path, the directory of "
                            "a trained optimizer (train.py's --save_path); "
                            "pass --untrained to evaluate the net before "
                            "meta-training on purpose.",
      ("--untrained", "--path=" + str(tmp_path)):
          "--untrained evaluates the net before meta-training and --path={} "
          "a trained one: pass one of them.".format(tmp_path),
      ("--untrained", "--optimizer=Adam"): "--untrained applies to "
                                           "--optimizer=L2L only, not "
                                           "--optimizer=Adam.",
      ("--optimizer=Adam", "--problem=digts"):
          "--problem=digts is invalid: Unknown problem 'digts'. Did you mean "
          "'digits' or 'digits-conv'?",
      ("--optimizer=Adam", "--problem=quadratik"):
          "--problem=quadratik is invalid: Unknown problem 'quadratik'. Did "
          "you mean 'quadratic' or 'quadratic-las' or 'quadratic-100'? ",
      # A problem module that is not there; a module's problem mistyped.
      ("--problem_module=" + str(tmp_path / "nope.py"), "--problem=bowl",
       "--optimizer=SGD"):
          "Error: --problem_module={0} is invalid: no problem module {0}: the "
          "file does not exist.".format(tmp_path / "nope.py"),
      ("--problem_module=" + module, "--problem=bwol", "--optimizer=SGD"):
          "--problem=bwol is invalid: Unknown problem 'bwol'. Did you mean "
          "'bowl'?",
  }
  fine = ("--record_positions=0", "--records_dir=" + str(tmp_path / "r"),
          "--optimizer=Adam")
  results = validate("evaluate_command", list(cases) + [fine])
  for argv, expected in cases.items():
    code, err = results[argv]
    assert code == 1, argv
    assert err.startswith("Error: ") and err.count("\n") == 1, (argv, err)
    assert expected in err, (argv, err)
  assert results[fine] == (0, "")


@pytest.mark.parametrize("seed", ["-1", "2147483648"])
def test_a_seed_tensorflow_would_reduce_to_another_is_one_line(seed):
  # TensorFlow reduces seeds modulo 2^31 - 1: -1 draws what 2147483646
  # does, 2147483648 what 1 does, and would pass for another seed than an
  # optimizer's training seed.
  done = _evaluate("--optimizer=Adam", "--seed=" + seed)
  assert done.returncode == 1
  assert done.stderr.endswith(
      "Error: flag --seed={0}: {0} is not an integer in the range [0, "
      "2147483646]; --helpfull lists every flag.\n".format(seed)), (
          done.stderr[-500:])
  assert done.stderr.count("Error") == 1


@pytest.mark.parametrize("problem, name", [
    ("square_cos_99999999999", "square_cos"),
    ("rastrigin:num_dims=99999999999", "rastrigin")])
def test_a_size_tensorflow_cannot_hold_is_one_line(tmp_path, problem, name):
  # It overflowed int32 in a traceback.
  done = _evaluate("--optimizer=SGD", "--problem=" + problem,
                   "--records_dir=" + str(tmp_path))
  assert done.returncode == 1
  assert done.stderr.endswith(
      "Error: {} num_dims must be at most 2147483647 (TensorFlow's sizes are "
      "32-bit integers), got 99999999999.\n".format(name)), (
          done.stderr[-500:])


def test_an_untrained_optimizer_is_evaluated_only_on_purpose(tmp_path):
  # Without --untrained, --optimizer=L2L needs --path: see the bad flags.
  done = _evaluate("--problem=simple", "--optimizer=L2L", "--untrained",
                   "--num_epochs=1", "--num_steps=3", "--learning_rate=0.1",
                   "--records_dir=" + str(tmp_path))
  assert done.returncode == 0, done.stderr
  # `simple`'s net starts at zero: it never moves x from 1.
  assert "Log Mean Final Error: 0.00\n" in done.stdout
  assert ("--learning_rate has no effect: --optimizer=L2L has no learning "
          "rate." in done.stderr)


@pytest.mark.slow
def test_a_problem_of_ones_own_evaluates_a_baseline_exactly(tmp_path):
  module = write_problem_module(tmp_path)
  done = _evaluate("--problem_module=" + module,
                   "--problem=bowl:num_dims=3,scale=0.5", "--optimizer=SGD",
                   "--learning_rate=0.1", "--num_epochs=2", "--num_steps=5",
                   "--records_dir=" + str(tmp_path / "records"))
  assert done.returncode == 0, done.stderr
  (name,) = os.listdir(tmp_path / "records")
  arrays, settings = records.read(str(tmp_path / "records" / name))
  assert settings["problem"] == "bowl:num_dims=3,scale=0.5"
  # SGD: x <- x - 0.1 * 2 * 0.5 * x = 0.9 x.
  closed_form = bowl_losses(5, 3, 0.5, lambda x, g: x - 0.1 * g)
  np.testing.assert_allclose(arrays["losses"][:, :, 0],
                             [closed_form, closed_form], rtol=1e-6)
  assert "Log Mean Final Error: {:.2f}\n".format(
      np.log10(closed_form[-1])) in done.stdout
  # A mistyped name and a missing module: in the bad flags above.


def test_nan_weights_are_refused_naming_the_file(trained_simple, tmp_path):
  # Evaluated, they would only read as a run that diverged; dropped in,
  # they would turn a model's weights into NaN.
  directory, _ = trained_simple
  values = l2l_file.load(directory / "cw.l2l")
  nan_values = {m: {v: np.full_like(a, np.nan) for v, a in variables.items()}
                for m, variables in values.items()}
  l2l_file.save(nan_values, tmp_path / "cw.l2l")
  done = _evaluate("--problem=simple", "--optimizer=L2L",
                   "--path=" + str(tmp_path), "--num_epochs=2",
                   "--num_steps=2")
  assert done.returncode == 1, done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: {}: parameter linear/b holds 1 NaN or infinite value(s) of 1, "
      "expected finite weights (the file is damaged, or was saved from a "
      "diverged run).".format(tmp_path / "cw.l2l"))
  assert "Log Mean Final Error" not in done.stdout
  assert not [f for f in os.listdir(tmp_path) if f.endswith(".npz")]


def _copy_with_manifest_problem(trained_simple, tmp_path, problem,
                                problem_module=None):
  """trained_simple's optimizer, its manifest naming `problem` (registered
  by `problem_module`, if given)."""
  directory, _ = trained_simple
  copy = tmp_path / "saved"
  shutil.copytree(directory, copy)
  saved = json.loads((copy / "manifest.json").read_text())
  saved["problem"] = problem
  if problem_module is not None:
    saved["training"]["problem_module"] = problem_module
  (copy / "manifest.json").write_text(json.dumps(saved))
  return copy


def test_without_problem_a_saved_optimizer_runs_on_its_training_problem(
    trained_simple, tmp_path):
  # Not on DeepMind's default `simple`: the manifest says which problem.
  copy = _copy_with_manifest_problem(trained_simple, tmp_path, "quadratic")
  relative = os.path.relpath(copy, ROOT)
  done = _evaluate("--optimizer=L2L", "--path=" + relative,
                   "--num_epochs=1", "--num_steps=2")
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(
      "Problem: quadratic, the one {} was meta-trained on (--problem "
      "chooses another).\n".format(relative))
  (record,) = [f for f in os.listdir(copy) if f.endswith(".npz")]
  assert record.startswith("quadratic_L2L_")
  settings = records.read(str(copy / record))[1]
  assert settings["problem"] == "quadratic"
  # The path is absolute: the records may be read from anywhere, and they
  # say what the optimizer there was.
  assert settings["path"] == str(copy) and os.path.isabs(settings["path"])
  assert settings["optimizer_manifest"] == json.loads(
      (copy / "manifest.json").read_text())
  # A given --problem wins, and says nothing.
  done = _evaluate("--optimizer=L2L", "--path=" + str(copy),
                   "--problem=simple", "--num_epochs=1", "--num_steps=2")
  assert done.returncode == 0, done.stderr
  assert not done.stdout.startswith("Problem:")
  # A script's save that named no problem runs on the default, saying so.
  unnamed = _copy_with_manifest_problem(trained_simple, tmp_path / "u", None)
  done = _evaluate("--optimizer=L2L", "--path=" + str(unnamed),
                   "--num_epochs=1", "--num_steps=2")
  assert done.returncode == 0, done.stderr
  assert done.stdout.startswith(
      "Problem: simple (the default: {}'s manifest names no problem; "
      "--problem chooses one).\n".format(unnamed))


def test_a_training_problem_unknown_here_is_one_line(trained_simple,
                                                     tmp_path):
  copy = _copy_with_manifest_problem(trained_simple, tmp_path, "ring")
  done = _evaluate("--optimizer=L2L", "--path=" + str(copy))
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1].startswith(
      "Error: {} was meta-trained on ring, which is not a problem here "
      "(".format(copy))
  assert done.stderr.strip().endswith(
      "pass --problem_module, the module that registers it, or --problem.")


def test_a_problem_of_ones_own_needs_its_module_even_under_a_built_in_name(
    trained_simple, tmp_path):
  # Trained on a `quadratic` that a module registered in place of the
  # built-in one: without that module, `quadratic` is another problem.
  module = str(tmp_path / "train_machine" / "replacing.py")
  os.makedirs(os.path.dirname(module))
  with open(module, "w") as stream:
    stream.write("import util\n"
                 "util.register_problem('quadratic', lambda mode: None, "
                 "replace=True)\n")
  replaced = _copy_with_manifest_problem(trained_simple, tmp_path / "q",
                                         "quadratic", problem_module=module)
  unknown = _copy_with_manifest_problem(trained_simple, tmp_path / "r",
                                        "ring", problem_module=module)
  # The same module elsewhere (another machine's copy) will do.
  elsewhere = str(tmp_path / "replacing.py")
  shutil.copy(module, elsewhere)
  results = validate("evaluate_command", [
      ("--optimizer=L2L", "--path=" + str(replaced)),
      ("--optimizer=L2L", "--path=" + str(unknown)),
      ("--optimizer=L2L", "--path=" + str(replaced),
       "--problem_module=" + elsewhere)])
  without, not_here, with_a_copy = results.values()
  assert without == (
      1, "Error: {0} was meta-trained on quadratic as {1} registers it, "
         "which was not given here (without it, quadratic is the built-in "
         "problem); pass --problem_module={1}, or --problem.\n".format(
             replaced, module))
  # A name unknown here is told which module registers it.
  assert not_here[0] == 1 and not_here[1].endswith(
      "; pass --problem_module={}, the module that registers it, or "
      "--problem.\n".format(module))
  assert with_a_copy == (0, "")
  # Named on purpose, the built-in problem runs, with a warning.
  done = _evaluate("--optimizer=L2L", "--path=" + str(replaced),
                   "--problem=quadratic", "--num_epochs=1", "--num_steps=2")
  assert done.returncode == 0, done.stderr
  assert ("{0} was meta-trained on quadratic as {1} registers it; without "
          "that module, --problem=quadratic is the built-in problem "
          "(--problem_module={1} gives the one trained on).".format(
              replaced, module)) in done.stderr


def test_evaluating_on_the_training_seed_is_refused(trained_simple,
                                                   tmp_path):
  # Training drew its instances from seed 1: with that seed evaluation
  # would replay them.
  directory, _ = trained_simple
  done = _evaluate("--optimizer=L2L", "--path=" + str(directory),
                   "--problem=simple", "--seed=1", "--num_epochs=1",
                   "--num_steps=2", "--records_dir=" + str(tmp_path))
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: {} was meta-trained on simple with seed 1, and evaluating with "
      "that seed replays its training's random draws (starts, minibatches, "
      "instances): evaluate with another seed, so that the figures are on "
      "held-out instances.".format(
          directory))
  assert os.listdir(tmp_path) == []


def test_restarts_overflowing_to_inf_are_diverged_not_scored(tmp_path):
  # After 3 steps some restarts' losses are inf, not yet NaN: the start
  # sets holding them are diverged, not scored by their other restarts.
  done = _evaluate("--problem=rosenbrock:num_dims=2", "--optimizer=SGD",
                   "--learning_rate=0.3", "--num_particle=4",
                   "--num_epochs=1", "--num_steps=3",
                   "--records_dir=" + str(tmp_path))
  assert done.returncode == 2, done.stderr
  assert "Log Mean Final Error: diverged\n" in done.stdout
  assert ("Best particle per start set: mean final loss diverged (over 128 "
          "start sets)\n") in done.stdout
  (record,) = os.listdir(tmp_path)
  arrays, settings = records.read(str(tmp_path / record))
  finals = arrays["final_row_losses"]
  assert np.isinf(finals).any() and not np.isnan(finals).any()
  assert settings["final_status"] == "diverged"


def test_the_figures_are_printed_before_the_records_file_is_written(
    tmp_path):
  # A records file that cannot be written (a full disk) costs the file,
  # not the evaluation's figures.
  done = commands.run_patched(
      "l2l.experiment.evaluate_command",
      ["evaluate.py", "--problem=simple", "--optimizer=SGD", "--num_epochs=2",
       "--num_steps=3", "--records_dir=" + str(tmp_path)],
      "from l2l.experiment import records\n"
      "def full_disk(*args):\n"
      "  raise OSError(28, 'No space left on device')\n"
      "records.write = full_disk\n", cwd=ROOT)
  assert done.returncode == 1
  assert "Log Mean Final Error: " in done.stdout
  assert "Records:" not in done.stdout
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: [Errno 28] No space left on device")


def test_a_problem_option_of_no_number_is_one_line(tmp_path):
  # "nan" is no Python literal, but a number to whoever types it.
  done = _evaluate("--problem=rastrigin:num_dims=2,random_shift=nan",
                   "--optimizer=Adam", "--records_dir=" + str(tmp_path))
  assert done.returncode == 1
  assert "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: --problem=rastrigin:num_dims=2,random_shift=nan is invalid: "
      "problem 'rastrigin' option random_shift=nan: expected a number, not "
      "NaN.")
  assert not os.listdir(tmp_path)


def test_a_deeply_nested_checkpoint_is_one_line(tmp_path):
  (tmp_path / "cw.l2l").write_bytes(b"\x80\x02}K\x01" + b"\x85" * 200000 +
                                    b"}s.")
  done = _evaluate("--problem=simple", "--optimizer=L2L",
                   "--path=" + str(tmp_path))
  assert done.returncode == 1
  assert "Traceback" not in done.stderr
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: {} is not an l2l checkpoint: its objects nest more than 32 "
      "deep (a checkpoint nests about 6)".format(tmp_path / "cw.l2l"))


def test_evaluate_command_on_a_released_directory(tmp_path):
  write_lois_released(str(tmp_path), 128 * 2)
  completed = commands.run(
      [sys.executable, "evaluate.py", "--problem=square_cos_2",
       "--num_particle=4", "--optimizer=L2L", "--path=" + str(tmp_path),
       "--num_steps=3", "--num_epochs=1", "--records_dir=" +
       str(tmp_path / "records")],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert completed.returncode == 0, completed.stderr
  assert "LOIS released model" in completed.stderr
  (name,) = os.listdir(tmp_path / "records")
  arrays, _ = records.read(str(tmp_path / "records" / name))
  finals = np.min(arrays["final_row_losses"], axis=1)  # [epochs, rows]
  assert finals.shape == (1, 128)
  assert ("Best particle per start set: mean final loss {:.6g} (std {:.3g} "
          "over 128 start sets)\n".format(np.mean(finals), np.std(finals))
          in completed.stdout)
  assert "Log Mean Final Error: {:.2f}\n".format(
      np.log10(np.mean(finals))) in completed.stdout
  by_mean = np.min(np.mean(arrays["final_row_losses"], axis=2))
  assert by_mean > np.mean(finals)
  assert ("Best particle by batch mean (the older figure): {:.6g}\n".format(
      by_mean) in completed.stdout)


@pytest.mark.slow
def test_a_swarm_flag_overrides_the_saved_swarm_without_num_particle(
    tmp_path):
  # It was ignored unless --num_particle came with it.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import meta  # pylint: disable=g-import-not-at-top
  import problems  # pylint: disable=g-import-not-at-top
  problem = "rastrigin:num_dims=2,batch_size=8"
  with tf.Graph().as_default():
    optimizer = meta.MetaOptimizer(num_particles=4, per_instance=True,
                                   attraction_gain="hop", step_shrink=0.5)
    optimizer.meta_loss(problems.test_function("rastrigin", num_dims=2,
                                               batch_size=8), 2)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      optimizer.save(sess, str(tmp_path / "swarm"))
  finals = {}
  for name, flags in (("saved", []), ("flag", ["--swarm_step_shrink=1"])):
    done = _evaluate("--problem=" + problem, "--optimizer=L2L",
                     "--path=" + str(tmp_path / "swarm"), "--num_epochs=1",
                     "--num_steps=30", "--records_dir=" + str(tmp_path / name),
                     *flags)
    assert done.returncode == 0, done.stderr[-2000:]
    (records_file,) = os.listdir(tmp_path / name)
    arrays, settings = records.read(str(tmp_path / name / records_file))
    assert arrays["final_row_losses"].shape == (1, 4, 8)
    finals[name] = arrays["final_row_losses"]
    # The records say what ran: the saved option, or the flag over it.
    assert settings["swarm_options"]["step_shrink"] == (1 if flags else 0.5)
  # Same swarm, same starts: only the step sizes differ.
  assert not np.array_equal(finals["flag"], finals["saved"])
  # --num_particle=1 is a flag given too: the swarm cannot run one point.
  done = _evaluate("--problem=" + problem, "--optimizer=L2L",
                   "--path=" + str(tmp_path / "swarm"), "--num_particle=1",
                   "--records_dir=" + str(tmp_path / "one"))
  assert done.returncode == 1
  assert done.stderr.strip().splitlines()[-1] == (
      "Error: {} holds a swarm optimizer of 4 particles, which cannot run as "
      "one point (its LSTM reads the swarm's features); give num_particles "
      "of 2 or more, or none for its 4.".format(tmp_path / "swarm"))
  assert not (tmp_path / "one").exists()


def test_pso_runs_the_particles_given_even_one(tmp_path):
  # It ran PSO's default 4 unless the number given was above 1.
  done = _evaluate("--problem=square_cos_2", "--optimizer=PSO",
                   "--num_particle=1", "--num_epochs=1", "--num_steps=2",
                   "--records_dir=" + str(tmp_path))
  assert done.returncode == 0, done.stderr[-2000:]
  (records_file,) = os.listdir(tmp_path)
  arrays, settings = records.read(str(tmp_path / records_file))
  assert arrays["losses"].shape == (1, 3, 1)
  assert settings["swarm_options"]["num_particles"] == 1


def test_flags_the_evaluation_does_not_use_are_named(tmp_path):
  done = _evaluate("--problem=simple", "--optimizer=Adam", "--num_epochs=1",
                   "--num_steps=2", "--swarm_hop_noise=0.3",
                   "--pso_inertia=0.5", "--tune", "--tune_epochs=1",
                   "--learning_rate=0.1", "--records_dir=" + str(tmp_path))
  assert done.returncode == 0, done.stderr[-2000:]
  assert ("--swarm_hop_noise has no effect: --optimizer=Adam is no learned "
          "swarm." in done.stderr)
  assert ("--pso_inertia has no effect: --optimizer=Adam is not PSO."
          in done.stderr)
  assert ("--learning_rate has no effect: --tune picks the learning rate."
          in done.stderr)
  (records_file,) = os.listdir(tmp_path)
  _, settings = records.read(str(tmp_path / records_file))
  assert settings["tuning"]["mode"] == "validation"
  assert settings["tuning"]["epochs"] == 1
  assert len(settings["tuning"]["scores"]) == 11


def test_tune_epochs_without_tune_is_named(tmp_path):
  done = _evaluate("--problem=simple", "--optimizer=SGD", "--num_epochs=1",
                   "--num_steps=2", "--tune_epochs=50",
                   "--records_dir=" + str(tmp_path))
  assert done.returncode == 0, done.stderr[-2000:]
  assert ("--tune_epochs has no effect: without --tune nothing is tuned."
          in done.stderr)
  (records_file,) = os.listdir(tmp_path)
  assert records.read(str(tmp_path / records_file))[1]["tuning"] is None


def test_an_optimizer_saved_by_a_script_loads_in_evaluate(tmp_path):
  # The README's "In your own scripts" route: MetaOptimizer() with its
  # default net, saved by the script, evaluated by the command.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import meta  # pylint: disable=g-import-not-at-top
  import problems  # pylint: disable=g-import-not-at-top
  with tf.Graph().as_default():
    optimizer = meta.MetaOptimizer()
    optimizer.meta_minimize(problems.quadratic(batch_size=4, num_dims=3), 2)
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      saved = optimizer.save(sess, str(tmp_path / "mine"))
  assert sorted(saved) == [str(tmp_path / "mine" / "cw.l2l")]
  done = commands.run(
      [sys.executable, "evaluate.py", "--problem=quadratic", "--optimizer=L2L",
       "--path=" + str(tmp_path / "mine"), "--num_epochs=1", "--num_steps=2",
       "--records_dir=" + str(tmp_path / "records")],
      cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "Log Mean Final Error: " in done.stdout
