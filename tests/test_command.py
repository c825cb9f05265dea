"""growjax.command: what counts as a user's mistake, and how it is told."""

import pathlib

import pytest

from growjax import command
from growjax.checkpoint import CheckpointError
from growjax.experiment import ExperimentError

TOY = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "toy.py"


@pytest.mark.parametrize("error", [
    ExperimentError("stages[1].tokens: -5 is not an integer >= 1"),
    CheckpointError("checkpoint w/stage_0/5: cannot read its meta"),
    command.UsageError("--suite='bleu': unknown suite\n(one of ppl, length)")])
def test_user_errors_are_one_line_on_stderr_and_exit_2(error, capsys):
  with pytest.raises(SystemExit) as done:
    with command.reported():
      raise error
  assert done.value.code == 2
  err = capsys.readouterr().err
  assert err == "error: " + " ".join(str(error).split()) + "\n"


def test_verbose_user_error_shows_its_traceback(capsys):
  with pytest.raises(SystemExit):
    with command.reported(verbose=True):
      raise command.UsageError("--windows: 0 is not an integer >= 1")
  assert "Traceback" in capsys.readouterr().err


def test_a_value_error_from_inside_the_code_is_a_bug_not_a_user_error():
  with pytest.raises(ValueError, match="Incompatible shapes"):
    with command.reported():
      raise ValueError("Incompatible shapes for broadcasting")


def test_user_input_checks_become_usage_errors():
  from growjax import checks  # pylint: disable=g-import-not-at-top
  with pytest.raises(command.UsageError, match="--top_p: 2 is not"):
    with command.user_input("--"):
      checks.number("top_p", 2, low=0.0, low_open=True, high=1.0)


def test_experiment_file_problems_are_named(tmp_path):
  with pytest.raises(command.UsageError, match="nope.py: not found"):
    command.load_experiment(str(tmp_path / "nope.py"))
  broken = tmp_path / "broken.py"
  broken.write_text("import no_such_module\n")
  with pytest.raises(command.UsageError, match=r"broken.py: fails to import "
                     r"\(ModuleNotFoundError"):
    command.load_experiment(str(broken))
  empty = tmp_path / "empty.py"
  empty.write_text("x = 1\n")
  with pytest.raises(command.UsageError, match="defines no get_config"):
    command.load_experiment(str(empty))
  failing = tmp_path / "failing.py"
  failing.write_text("def get_config(arg=None):\n  return {}[arg]\n")
  with pytest.raises(command.UsageError, match=r"get_config\('x'\) fails "
                     r"\(KeyError"):
    command.load_experiment(f"{failing}:x")


def test_experiment_file_is_read_with_its_argument(tmp_path):
  f = tmp_path / "exp.py"
  f.write_text("def get_config(arg='none'):\n  return {'arg': arg}\n")
  assert command.load_experiment(str(f)).to_dict() == {"arg": "none"}
  assert command.load_experiment(f"{f}:runlocal").to_dict() == {"arg": "runlocal"}


def test_override_of_a_field_the_experiment_lacks_is_named():
  argv = ["main", "--config", str(TOY), "--config.stages[0].tokns=3"]
  with pytest.raises(command.UsageError, match=r"--config\.stages\[0\]\.tokns: "
                     "not a field of the experiment"):
    command._experiment_flag(argv)  # pylint: disable=protected-access


@pytest.mark.parametrize("override, hint", [
    ("sede", "did you mean --config.seed?"),
    ("model.d_mdoel", "did you mean --config.model.d_model?"),
    ("stages[1].model.d_mdoel", "did you mean --config.stages[1].model.d_model?"),
    ("stages[1].lr.peek", "did you mean --config.stages[1].lr.peak?"),
    ("stages[7].tokens", "stages has 3 entries ([0] to [2]), no [7]"),
    ("seed.x", "seed is int, with no field 'x'")])
def test_an_override_typo_gets_a_suggestion_at_every_depth(override, hint):
  argv = ["main", "--config", str(TOY), f"--config.{override}=3"]
  with pytest.raises(command.UsageError) as raised:
    command._experiment_flag(argv)  # pylint: disable=protected-access
  assert hint in str(raised.value)


def test_a_value_error_from_inside_jax_keeps_its_traceback_in_user_input():
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match="equal division") as raised:
    with command.user_input("--"):
      jnp.split(jnp.ones(5), 2)
  assert not isinstance(raised.value, command.USER_ERRORS)


def test_user_errors_are_growjax_classes_never_a_builtin():
  for cls in command.USER_ERRORS:
    assert cls not in (ValueError, OSError, RuntimeError, TypeError, KeyError)
    assert not issubclass(ValueError, cls) and not issubclass(OSError, cls)


def test_invocation_repeats_the_command_without_the_flags_named(monkeypatch):
  monkeypatch.setattr("sys.argv", ["/x/growjax/main.py", "--config", "a b.py",
                                   "--stop_at_step", "7", "--workdir=w"])
  monkeypatch.setattr("sys.modules", dict(__import__("sys").modules,
                                          __main__=type("M", (), {"__spec__": None})))
  assert command.invocation(without=("--stop_at_step",)) == (
      "python /x/growjax/main.py --config 'a b.py' --workdir=w")


def test_get_config_returning_no_config_dict_is_named(tmp_path):
  f = tmp_path / "three.py"
  f.write_text("def get_config(arg=None):\n  return 3\n")
  with pytest.raises(command.UsageError, match=r"three.py: get_config\(''\) "
                     "returns 3, not a ConfigDict"):
    command.load_experiment(str(f))
