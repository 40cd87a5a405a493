"""S8 and the guidelines on whole workouts, on raw data (so they run on broken files too).

Each boundary is tried on both sides: 25 minutes of suit block is allowed and a
second more is not; a warm-up of exactly 5 or 7 minutes earns no warning.
"""

from __future__ import annotations

from typing import Any

import pytest

from channels import Channel, MuscleGroup, SuitLayout
from workouts.rules import workout_problems

WARM = {"kind": "warmup", "duration": "6m"}
STRETCH = {"kind": "stretch", "duration": "5m"}


def suit(*durations: Any, channels: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "kind": "suit",
        "exercises": [
            {"name": f"e{i}", "duration": d, "channels": channels or {"quads": 1.0}}
            for i, d in enumerate(durations)
        ],
    }


def problems(*phases: Any) -> tuple[list[Any], list[Any]]:
    return workout_problems({"phases": list(phases)})


def messages(found: list[Any]) -> list[str]:
    return [m for _, m in found]


def test_a_good_workout_has_no_problem() -> None:
    assert problems(WARM, suit("10m", "10m", "2m"), STRETCH) == ([], [])


@pytest.mark.parametrize(
    "durations",
    [("25m",), ("10m", "15m"), (1500,), (600, "5m", "10m")],
)
def test_25_minutes_of_suit_block_is_allowed(durations: tuple[Any, ...]) -> None:
    assert problems(WARM, suit(*durations), STRETCH) == ([], [])


@pytest.mark.parametrize("durations", [("25m1s",), ("10m", "15m", 1), (1500.5,), ("20m", "6m")])
def test_more_than_25_minutes_of_suit_block_is_an_error_at_the_suit_block(
    durations: tuple[Any, ...],
) -> None:
    errors, warnings = problems(WARM, suit(*durations), STRETCH)
    assert warnings == []
    [(where, message)] = errors
    assert where == ("phases", 1)
    assert "at most 25m is allowed (S8)" in message


def test_every_suit_phase_counts_and_the_first_one_is_blamed() -> None:
    errors, _ = problems(WARM, suit("13m"), STRETCH, suit("13m"))
    [(where, message)] = errors
    assert where == ("phases", 1)
    assert "holds 26m of stimulation" in message


def test_under_20_minutes_is_a_warning() -> None:
    assert problems(WARM, suit("20m"), STRETCH) == ([], [])
    errors, warnings = problems(WARM, suit("19m59s"), STRETCH)
    assert errors == []
    [(where, message)] = warnings
    assert where == ("phases", 1)
    assert message == "the suit block is 19m59s; a full session is 20m-25m"


@pytest.mark.parametrize("duration", ["5m", "7m", 300, 420, "6m30s"])
def test_a_warmup_of_5_to_7_minutes_is_fine(duration: Any) -> None:
    assert problems({"kind": "warmup", "duration": duration}, suit("22m"), STRETCH) == ([], [])


@pytest.mark.parametrize("duration", ["4m59s", "7m1s", 0, "1h"])
def test_a_warmup_outside_5_to_7_minutes_is_a_warning(duration: Any) -> None:
    errors, warnings = problems({"kind": "warmup", "duration": duration}, suit("22m"), STRETCH)
    assert errors == []
    [(where, message)] = warnings
    assert where == ("phases", 0, "duration")
    assert message.startswith("a warm-up of ") and "outside the recommended 5m-7m" in message


def test_an_unreadable_duration_is_left_to_the_schema() -> None:
    # the schema reports it; the rules neither crash nor count it
    assert problems({"kind": "warmup", "duration": "soon"}, suit("22m"), STRETCH) == ([], [])
    errors, warnings = problems(WARM, suit("22m", "later", None), STRETCH)
    assert errors == [] and warnings == []
    _, warnings = problems(WARM, suit("19m", "ten minutes"), STRETCH)
    assert messages(warnings) == ["the suit block is 19m; a full session is 20m-25m"]


def test_no_stretching_phase_is_a_warning() -> None:
    errors, warnings = problems(WARM, suit("22m"))
    assert errors == []
    assert warnings == [(("phases",), "no stretching phase: end the class with stretching")]


def test_no_suit_block_is_a_warning() -> None:
    assert problems(WARM, STRETCH) == (
        [],
        [(("phases",), "the workout has no suit block: nothing will be stimulated")],
    )


def test_broken_parts_are_skipped_and_the_rest_still_checked() -> None:
    # a phase that is not a mapping, exercises that are not a list, an exercise that is not a
    # mapping: each is skipped, and what comes after it is still checked
    errors, warnings = problems(
        "not a phase",
        WARM,
        {"kind": "suit", "exercises": "squats"},
        suit("26m"),
        {"kind": "suit", "exercises": ["not an exercise", {"duration": "1m"}]},
        STRETCH,
    )
    [(where, message)] = errors
    assert where == ("phases", 2)  # the first suit phase, even an empty one
    assert "holds 27m of stimulation" in message
    assert warnings == []


@pytest.mark.parametrize("phases", [None, "phases", {"kind": "suit"}, 3])
def test_no_list_of_phases_gives_nothing_to_check(phases: Any) -> None:
    assert workout_problems({"phases": phases}) == ([], [])
    assert workout_problems({}) == ([], [])


def test_a_muscle_group_the_layout_lacks_is_a_warning_at_that_channel() -> None:
    errors, warnings = problems(
        WARM,
        suit("11m", channels={"neck": 1.0, "biceps": 1.0, "chest_left": 1.0}),
        {
            "kind": "suit",
            "exercises": [{"duration": "11m", "channels": {"triceps": 0.5, "chest": 1.0}}],
        },
        STRETCH,
    )
    assert errors == []
    assert warnings == [
        (
            ("phases", 1, "exercises", 0, "channels", "biceps"),
            "suit layout standard-12 has no channel for biceps: it will not be stimulated",
        ),
        (
            ("phases", 2, "exercises", 0, "channels", "triceps"),
            "suit layout standard-12 has no channel for triceps: it will not be stimulated",
        ),
    ]


def test_channels_that_are_not_a_mapping_are_left_to_the_schema() -> None:
    phase = {"kind": "suit", "exercises": [{"duration": "22m", "channels": ["biceps"]}]}
    assert problems(WARM, phase, STRETCH) == ([], [])


def test_another_layout_is_checked_against_its_own_channels() -> None:
    arms = SuitLayout("arms-2", (Channel("biceps", MuscleGroup.BICEPS, None, 40.0, 80.0),))
    _, warnings = workout_problems(
        {"phases": [WARM, suit("22m", channels={"biceps": 1, "quads": 1}), STRETCH]}, arms
    )
    assert warnings == [
        (
            ("phases", 1, "exercises", 0, "channels", "quads"),
            "suit layout arms-2 has no channel for quads: it will not be stimulated",
        )
    ]


def test_a_phase_of_unknown_or_missing_kind_is_no_phase_at_all() -> None:
    # the schema reports the kind; the rules must not take it for a warm-up, a stretch or
    # a suit block (kinds before and after each real one, in alphabetical order)
    odd = [
        {"duration": "1m"},
        {"kind": None, "duration": "1m"},
        {"kind": "cooldown", "duration": "1m", "exercises": [{"duration": "26m"}]},
        {"kind": "massage", "duration": "1m", "exercises": [{"duration": "26m"}]},
        {"kind": "tabata", "duration": "1m", "exercises": [{"duration": "26m"}]},
        {"kind": "yoga", "duration": "1m", "exercises": [{"duration": "26m"}]},
    ]
    for phase in odd:
        assert problems(WARM, phase, suit("22m"), STRETCH) == ([], []), phase
        errors, warnings = problems(WARM, phase, suit("26m"))
        assert [w for w, _ in errors] == [("phases", 2)], phase
        assert messages(warnings) == ["no stretching phase: end the class with stretching"]
        assert problems(WARM, phase, STRETCH)[1] == [
            (("phases",), "the workout has no suit block: nothing will be stimulated")
        ], phase
