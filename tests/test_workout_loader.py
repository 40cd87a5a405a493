"""Every validation rule of the workout loader, each with a failing file."""

import pytest

from workouts import WorkoutError, load_workout_text

from .workout_files import GOOD


def problems_of(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(WorkoutError) as info:
        load_workout_text(text)
    return [(p.path, p.line, p.message) for p in info.value.problems]


def test_the_good_file_loads_without_warnings() -> None:
    w = load_workout_text(GOOD)
    assert w.name == "Test class"
    assert w.suit_s == 1200
    assert w.warnings == ()


@pytest.mark.parametrize(
    ("old", "new", "path", "line", "fragment"),
    [
        (
            "frequency_hz: 85",
            "frequency_hz: 200",
            "programs.strength.frequency_hz",
            4,
            "at most 150",
        ),
        ("frequency_hz: 85", "frequency_hz: 0", "programs.strength.frequency_hz", 4, "at least 1"),
        (
            "pulse_width_us: 350",
            "pulse_width_us: 500",
            "programs.strength.pulse_width_us",
            5,
            "at most 450",
        ),
        (
            "pulse_width_us: 350",
            "pulse_width_us: fast",
            "programs.strength.pulse_width_us",
            5,
            "must be a whole number of µs, not text (found 'fast')",
        ),
        (
            "ramp_down_s: 0.3",
            "ramp_down_s: 3.8",
            "programs.strength.ramp_down_s",
            9,
            "must fit inside the 4 s impulse",
        ),
        ("impulse_s: 4", "impulse_s: 0", "programs.strength.impulse_s", 6, "impulse"),
        (
            "ramp_up_s: 0.5",
            "ramp_up_s: 0.5\n    continuous: true",
            "programs.strength.pause_s",
            7,
            "continuous program has no pause",
        ),
        (
            "    ramp_up_s: 0.5",
            "    ramp_up_s: 0.5\n    frequency: 3",
            "programs.strength.frequency",
            9,
            "did you mean 'frequency_hz'",
        ),
        (
            "program: strength\n        channels: {quads",
            "program: strenght\n        channels: {quads",
            "phases[1].exercises[0].program",
            18,
            "no program named 'strenght'",
        ),
        (
            "{quads: 1.0, glutes",
            "{quadz: 1.0, glutes",
            "phases[1].exercises[0].channels.quadz",
            19,
            "did you mean 'quads'",
        ),
        (
            "{quads: 1.0, glutes",
            "{neck: 1.0, glutes",
            "phases[1].exercises[0].channels.neck",
            19,
            "forbidden electrode location",
        ),
        (
            "{quads: 1.0, glutes",
            "{throat: 1.0, glutes",
            "phases[1].exercises[0].channels.throat",
            19,
            "forbidden electrode location",
        ),
        (
            "{quads: 1.0, glutes",
            "{groin: 1.0, glutes",
            "phases[1].exercises[0].channels.groin",
            19,
            "forbidden electrode location",
        ),
        (
            "{quads: 1.0, glutes",
            "{quads: 1.5, glutes",
            "phases[1].exercises[0].channels.quads",
            19,
            "at most 1",
        ),
        (
            "duration: 10m\n        program: strength\n        channels: {upper",
            "duration: 1x\n        program: strength\n        channels: {upper",
            "phases[1].exercises[1].duration",
            21,
            "not a duration",
        ),
        (
            "channels: {upper_back: 1.0, chest_left: 0.5}",
            "channels: {}",
            "phases[1].exercises[1].channels",
            23,
            "at least one muscle group",
        ),
        ("kind: stretch", "kind: yoga", "phases[2].kind", 24, "warmup, suit, stretch"),
        ("name: Test class\n", "", "name", 1, "required"),
        (
            "duration: 10m\n        program: strength\n        channels: {quads",
            "duration: 20m\n        program: strength\n        channels: {quads",
            "phases[1]",
            14,
            "at most 25m is allowed (S8)",
        ),
    ],
)
def test_each_rule_reports_path_line_and_message(
    old: str, new: str, path: str, line: int, fragment: str
) -> None:
    assert old in GOOD
    found = problems_of(GOOD.replace(old, new, 1))
    matching = [p for p in found if p[0] == path]
    assert matching, found
    assert matching[0][1] == line
    assert fragment in matching[0][2]


def test_empty_suit_block() -> None:
    text = "name: x\nphases:\n  - kind: suit\n    exercises: []\n"
    assert problems_of(text) == [
        ("phases[0].exercises", 4, "the suit block is empty: add at least one exercise")
    ]


def test_every_problem_is_reported_at_once() -> None:
    text = (
        GOOD.replace("frequency_hz: 85", "frequency_hz: 200")
        .replace("{quads: 1.0", "{neck: 1.0")
        .replace("kind: stretch", "kind: yoga")
    )
    paths = {p[0] for p in problems_of(text)}
    assert {
        "programs.strength.frequency_hz",
        "phases[1].exercises[0].channels.neck",
        "phases[2].kind",
    } <= paths


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        (
            "duration: 10m\n        program: strength\n        channels: {quads",
            "duration: 5m\n        program: strength\n        channels: {quads",
            "a full session is",
        ),
        ("duration: 6m", "duration: 10m", "outside the recommended 5m-7m"),
        ("duration: 6m", "duration: 3m", "outside the recommended 5m-7m"),
        ("  - kind: stretch\n    duration: 5m\n", "", "no stretching phase"),
        ("{quads: 1.0, glutes", "{biceps: 1.0, glutes", "has no channel for biceps"),
    ],
)
def test_warnings_do_not_stop_the_class(old: str, new: str, fragment: str) -> None:
    assert old in GOOD
    w = load_workout_text(GOOD.replace(old, new, 1))
    assert any(fragment in p.message for p in w.warnings), w.warnings


def test_yaml_syntax_error_has_a_line() -> None:
    found = problems_of("name: x\nphases: [\n  - kind: suit\n")
    assert found[0][2].startswith("not valid YAML")
    assert found[0][1] is not None


def test_not_a_mapping() -> None:
    assert "must be a mapping" in problems_of("- 1\n- 2\n")[0][2]


def test_durations_in_every_form() -> None:
    text = GOOD.replace("duration: 6m", "duration: 5m30s").replace(
        "duration: 5m\n", "duration: 300\n"
    )
    w = load_workout_text(text)
    assert w.phases[0].duration_s == 330
    assert w.phases[2].duration_s == 300


def test_inline_program() -> None:
    text = GOOD.replace(
        "program: strength\n        channels: {quads",
        "program: {frequency_hz: 7, pulse_width_us: 350, continuous: true}\n        channels: {quads",
    )
    w = load_workout_text(text)
    assert w.phases[1].exercises[0].program.continuous
    assert w.phases[1].exercises[0].program_name is None


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        ("pulse_width_us: 350", "pulse_width_us: 376.56", "programs.strength.pulse_width_us"),
        ("frequency_hz: 85", "frequency_hz: 85.5", "programs.strength.frequency_hz"),
    ],
)
def test_pulse_parameters_are_whole_numbers_as_the_suit_applies_them(
    old: str, new: str, path: str
) -> None:
    """Class 3: caps are computed from exactly what the wire carries, so no fractions."""
    found = problems_of(GOOD.replace(old, new))
    assert len(found) == 1
    where, _, message = found[0]
    assert where == path
    assert "whole number" in message and new.split(": ")[1] in message


def test_whole_numbers_written_with_a_point_are_fine() -> None:
    w = load_workout_text(GOOD.replace("pulse_width_us: 350", "pulse_width_us: 350.0"))
    program = w.phases[1].exercises[0].program
    assert program.pulse_width_us == 350 and isinstance(program.pulse_width_us, int)


@pytest.mark.parametrize("text", ["90", "90s", "6m", "1m30s", "1h 30m", "1.5m", "12.5s", " 6m "])
def test_durations_as_trainers_write_them(text: str) -> None:
    from workouts.durations import parse_duration

    assert parse_duration(text) > 0


@pytest.mark.parametrize(
    "text", ["5m5m", "30s1m", "1_0", "\u0663", "1e3", "inf", "nan", "s", "", "m30", "-1", "1 0s"]
)
def test_durations_that_only_look_like_one_are_refused(text: str) -> None:
    """Python's float() reads "1_0" as 10 and Arabic-Indic digits as numbers; a unit twice
    ("5m5m") is a typo, not 10 minutes."""
    from workouts.durations import parse_duration

    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
