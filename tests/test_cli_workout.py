"""`suitctl workout …` as a user runs it."""

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from channels.user_files import MAX_USER_FILE_BYTES
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


# Review of issue 12, F7: a boolean or a text where a workout wants a number was read as one
# (`quads: true` ran at level 1.0, `glutes: "0.5"` at 0.5). These files are the reviewer's.
_ONE_EXERCISE = """name: X
programs:
  p: {{frequency_hz: {freq}, pulse_width_us: {pw}, continuous: {cont}}}
phases:
  - {{kind: warmup, duration: 10s}}
  - kind: suit
    exercises:
      - {{name: {name}, duration: 40s, program: p, channels: {channels}}}
"""


def _one_exercise(
    channels: str = "{quads: 1.0}",
    name: str = "Squat",
    freq: str = "85",
    pw: str = "300",
    cont: str = "true",
) -> str:
    return _ONE_EXERCISE.format(channels=channels, name=name, freq=freq, pw=pw, cont=cont)


@pytest.mark.parametrize(
    ("channels", "refusals"),
    [
        (
            "{quads: true}",
            ["channel quads: a level is a number from 0 to 1, not a boolean (found true)"],
        ),
        (
            "{quads: true, glutes: false}",
            [
                "channel quads: a level is a number from 0 to 1, not a boolean (found true)",
                "channel glutes: a level is a number from 0 to 1, not a boolean (found false)",
            ],
        ),
        (
            '{quads: "1", glutes: "0.5"}',
            [
                "channel quads: a level is a number from 0 to 1, not text (found '1')",
                "channel glutes: a level is a number from 0 to 1, not text (found '0.5')",
            ],
        ),
    ],
)
def test_validate_refuses_a_boolean_or_text_level_naming_exercise_channel_and_value(
    tmp_path: Path, channels: str, refusals: list[str]
) -> None:
    f = tmp_path / "level.yaml"
    f.write_text(_one_exercise(channels))
    code, out, _ = run("workout", "validate", "--json", str(f))
    assert code == 1, out
    messages = [e["message"] for e in json.loads(out)["errors"]]
    assert sorted(messages) == sorted(f"exercise 'Squat', {why}" for why in refusals)
    code, _, err = run("workout", "show", str(f))
    assert code == 1 and "exercise 'Squat', channel quads" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("field", "text", "why"),
    [
        ("freq", '"85"', "frequency_hz: must be a whole number of Hz, not text (found '85')"),
        ("pw", "true", "pulse_width_us: must be a whole number of µs, not a boolean (found true)"),
        ("pw", '"300"', "pulse_width_us: must be a whole number of µs, not text (found '300')"),
        ("cont", "1", "continuous: must be true or false"),
        ("cont", '"no"', "continuous: must be true or false"),
    ],
)
def test_validate_refuses_text_and_booleans_in_every_other_number_field(
    tmp_path: Path, field: str, text: str, why: str
) -> None:
    f = tmp_path / "field.yaml"
    f.write_text(_one_exercise(**{field: text}))
    code, _, err = run("workout", "validate", str(f))
    assert code == 1, err
    assert why in " ".join(err.split()), err


# F8: names with NUL / ESC / format characters validated, and `workout show` wrote them raw.
@pytest.mark.parametrize(
    ("name", "found"),
    [('"a\\0b\\e[31m"', "U+0000"), ('"\\e[2J"', "U+001B"), ('"evil\\u202e"', "U+202E")],
)
def test_an_exercise_name_a_terminal_cannot_show_is_refused(
    tmp_path: Path, name: str, found: str
) -> None:
    f = tmp_path / "name.yaml"
    f.write_text(_one_exercise(name=name))
    code, out, _ = run("workout", "validate", "--json", str(f))
    assert code == 1, out
    assert [(e["path"], e["message"][:61]) for e in json.loads(out)["errors"]] == [
        (
            "phases[1].exercises[0].name",
            f"cannot contain control or invisible characters (found {found})",
        )
    ]
    for command in ("validate", "show"):
        code, out, err = run("workout", command, str(f))
        assert code == 1, out
        assert "\x00" not in out + err and "\x1b" not in out + err and "\u202e" not in out + err
        assert f"cannot contain control or invisible characters (found {found})" in err


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("name: X", 'name: "X\\e[31m"', "name"),
        ("programs:\n  p:", 'programs:\n  "p\\0":', "programs.p\\u0000"),
        (
            "{kind: warmup, duration: 10s}",
            '{kind: warmup, duration: 10s, cues: ["go\\e[5m"]}',
            "cues[0]",
        ),
        ("name: X", 'name: X\ndescription: "a\\u202eb"', "description"),
    ],
)
def test_workout_names_program_names_cues_and_description_are_held_to_the_same_rule(
    tmp_path: Path, old: str, new: str, path: str
) -> None:
    f = tmp_path / "names.yaml"
    f.write_text(_one_exercise().replace(old, new, 1))
    code, _, err = run("workout", "validate", str(f))
    assert code == 1, err
    assert "cannot contain control or invisible characters" in err
    assert "\x00" not in err and "\x1b" not in err


def test_a_description_may_run_over_several_lines(tmp_path: Path) -> None:
    f = tmp_path / "lines.yaml"
    f.write_text(_one_exercise().replace("name: X", "name: X\ndescription: |\n  two\n  \tlines", 1))
    code, out, err = run("workout", "validate", str(f))
    assert code == 0, err
    assert "valid" in out


@pytest.mark.parametrize("where", ["/dev/zero", "big"])
def test_validate_a_file_too_big_or_endless_is_refused_unread(tmp_path: Path, where: str) -> None:
    """Review 5, L1: `workout validate /dev/zero` read the whole device into memory."""
    if where == "big":
        big = tmp_path / "big.yaml"
        big.write_text(GOOD + "#" * MAX_USER_FILE_BYTES + "\n")
        where = str(big)
    code, out, err = run("workout", "validate", where)
    assert code == 1, (out, err)
    assert "a workout file is at most 1024 kB" in " ".join((out + err).split())
    assert "Traceback" not in out + err
