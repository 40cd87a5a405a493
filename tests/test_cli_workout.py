"""`suitctl workout …` as a user runs it."""

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from suit_controller.cli import suitctl
from workouts import builtin_names, builtin_text

from .workout_files import GOOD


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(suitctl, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_a_good_builtin() -> None:
    code, out, _ = run("workout", "validate", "builtin:classic_strength")
    assert code == 0
    assert "valid" in out and "153 contractions" in out


def test_validate_json_shape(tmp_path: Path) -> None:
    code, out, _ = run("workout", "validate", "--json", "builtin:classic_strength")
    assert code == 0
    doc = json.loads(out)
    assert doc == {
        "valid": True,
        "errors": [],
        "warnings": [],
        "summary": {"total_s": 1880.0, "suit_s": 1220.0, "exercises": 8, "contractions": 153},
    }


def test_validate_invalid_file_exits_1_with_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(GOOD.replace("frequency_hz: 85", "frequency_hz: 200").replace("{quads", "{neck"))
    code, out, _ = run("workout", "validate", "--json", str(f))
    assert code == 1
    doc = json.loads(out)
    assert doc["valid"] is False
    assert {e["path"] for e in doc["errors"]} == {
        "programs.strength.frequency_hz",
        "phases[1].exercises[0].channels.neck",
    }
    assert all(set(e) == {"path", "line", "message"} for e in doc["errors"])
    code, _, err = run("workout", "validate", str(f))
    assert code == 1
    assert "forbidden electrode location" in err
    assert "Traceback" not in err


def test_validate_with_warnings_is_still_valid(tmp_path: Path) -> None:
    f = tmp_path / "short.yaml"
    f.write_text(GOOD.replace("duration: 6m", "duration: 10m"))
    code, out, _ = run("workout", "validate", "--json", str(f))
    assert code == 0
    assert json.loads(out)["warnings"][0]["path"] == "phases[0].duration"


@pytest.mark.parametrize("target", ["/no/such/file.yaml", "builtin:nope"])
def test_unreadable_exits_2(target: str) -> None:
    code, _, _ = run("workout", "validate", target)
    assert code == 2


def test_bad_usage_exits_2() -> None:
    assert run("workout", "validate")[0] == 2


def test_show_prints_the_timeline() -> None:
    code, out, _ = run("workout", "show", "builtin:classic_strength")
    assert code == 0
    for word in ("warmup", "Squat", "Deadlift", "stretch", "85 Hz"):
        assert word in out


def test_list_names_every_builtin() -> None:
    code, out, _ = run("workout", "list")
    assert code == 0
    for name in builtin_names():
        assert name[:10] in out


def test_schema_accepts_every_builtin_and_rejects_a_bad_one() -> None:
    code, out, _ = run("workout", "schema")
    assert code == 0
    schema = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema)
    yaml = YAML(typ="safe")
    for name in builtin_names():
        jsonschema.validate(yaml.load(builtin_text(name)), schema)
    bad = yaml.load(GOOD.replace("pulse_width_us: 350", "pulse_width_us: 900"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_python_dash_m_works() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "suit_controller", "workout", "validate", "builtin:metabolic"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


def test_validate_refuses_a_fractional_pulse_width_with_the_reason(tmp_path: Path) -> None:
    f = tmp_path / "fraction.yaml"
    f.write_text(GOOD.replace("pulse_width_us: 350", "pulse_width_us: 376.56"))
    code, _, err = run("workout", "validate", str(f))
    assert code == 1
    assert "pulse_width_us" in err and "376.56" in err and "whole number" in err
    assert "Traceback" not in err
