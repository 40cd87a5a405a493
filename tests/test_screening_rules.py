"""S5 and S7 rule by rule, each to its boundary: the screening, the days between sessions,
the guidance weeks, meals, contraindications and trainers.

Written for the survivors of mutation testing (docs/mutation.md): each test
pins a behaviour a changed comparison or number left unnoticed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from channels import DEFAULT_LAYOUT
from suit_controller.cli.roster import CheckIn, ClassRefused, check_in
from suit_controller.studio.screening import (
    BY_KEY,
    CONTRAINDICATIONS,
    DEFAULT_POLICY,
    ClientHistory,
    Decision,
    Screening,
    assign_trainers,
    check_client,
    validate_answers,
)
from suit_controller.studio.store import Store

KEYS = [c.key for c in CONTRAINDICATIONS]
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


def history(
    yes: frozenset[str] = frozenset(),
    clearances: frozenset[str] = frozenset(),
    *,
    screened_days_ago: float | None = 10,
    last_days_ago: float | None = None,
    first_days_ago: float | None = None,
    sessions: int = 0,
) -> ClientHistory:
    screening = (
        None
        if screened_days_ago is None
        else Screening(NOW - dt.timedelta(days=screened_days_ago), "Tom", yes, clearances)
    )
    return ClientHistory(
        "Ana",
        screening,
        None if last_days_ago is None else NOW - dt.timedelta(days=last_days_ago),
        None if first_days_ago is None else NOW - dt.timedelta(days=first_days_ago),
        sessions,
    )


def test_a_screening_is_valid_for_365_days_to_the_day() -> None:
    assert check_client(history(screened_days_ago=365), NOW).allowed
    d = check_client(history(screened_days_ago=366), NOW)
    assert d.reasons == ["Ana's screening is 366 days old (valid for 365): screen again"]


def test_four_days_between_sessions_to_the_second() -> None:
    ok = check_client(history(last_days_ago=4, first_days_ago=30, sessions=2), NOW)
    assert ok.allowed
    one_second_short = 4 - 1 / 86400
    assert not check_client(
        history(last_days_ago=one_second_short, first_days_ago=30, sessions=2), NOW
    ).allowed
    d = check_client(history(last_days_ago=3.99, first_days_ago=30, sessions=2), NOW)
    assert d.reasons == [
        "Ana's last session was 4.0 days ago; at least 4 days must pass between sessions"
    ]


def test_only_the_first_session_is_capped() -> None:
    first = check_client(history(), NOW)
    assert first.first_session and first.cap_mA == 50.0
    second = check_client(history(last_days_ago=7, first_days_ago=7, sessions=1), NOW)
    assert not second.first_session and second.cap_mA is None


def test_guidance_weeks_are_counted_from_the_first_session() -> None:
    def week_line(days: float) -> list[str]:
        return check_client(history(last_days_ago=5, first_days_ago=days, sessions=3), NOW).guidance

    assert week_line(6) == [
        "week 1 of the first 10: one session a week, raise intensity gradually, CR10 up to 6-7"
    ]
    assert week_line(7)[0].startswith("week 2 of")
    assert week_line(69)[0].startswith("week 10 of")
    assert week_line(70) == []
    # a client with sessions but no recorded first one gets no week count
    assert check_client(history(last_days_ago=5, sessions=3), NOW).guidance == []


def test_eating_recently_keeps_the_abdominal_channels_off_and_says_so() -> None:
    d = check_client(history(), NOW, ate_recently=True)
    assert d.abdominal_off
    assert d.guidance[-1] == "ate less than 1.5 h ago: abdominal channels stay off"
    assert not check_client(history(), NOW).abdominal_off


def test_every_refusal_names_the_client_and_the_contraindication() -> None:
    # an unknown key ("acne", first in order) is skipped, the rest still checked
    d = check_client(history(frozenset({"epilepsy", "diabetes", "acne"})), NOW)
    assert not d.allowed
    assert d.reasons == [
        "Ana: diabetes — needs a recorded medical clearance",
        "Ana: epilepsy or another seizure disorder — an absolute contraindication, no EMS training",
    ]
    d = check_client(history(screened_days_ago=None), NOW)
    assert d.reasons == ["Ana has no contraindication screening on file: screen first"]
    assert not d.allowed


def test_an_unknown_answer_alone_does_not_refuse() -> None:
    d = check_client(history(frozenset({"flu"})), NOW)
    assert d.allowed and d.reasons == []


def test_a_clearance_allows_only_its_own_relative_contraindication() -> None:
    d = check_client(history(frozenset({"diabetes", "hypertension"}), frozenset({"diabetes"})), NOW)
    assert d.reasons == ["Ana: high blood pressure — needs a recorded medical clearance"]


def test_absolute_and_relative_contraindications_are_as_the_guidelines_say() -> None:
    absolute = {c.key for c in CONTRAINDICATIONS if c.absolute}
    assert absolute == {
        "active_implant",
        "pregnancy",
        "epilepsy",
        "cancer",
        "acute_illness",
        "thrombosis",
        "bleeding_disorder",
        "hernia",
        "heart_disease",
        "neurological_disease",
    }
    assert {c.key for c in CONTRAINDICATIONS if not c.absolute} == {
        "recent_surgery",
        "hypertension",
        "diabetes",
        "metal_implant",
        "back_problems",
        "skin_lesions",
    }
    assert set(BY_KEY) == {c.key for c in CONTRAINDICATIONS}


def test_a_decision_starts_allowed_and_claims_nothing() -> None:
    d = Decision("Ana")
    assert d.allowed and d.reasons == [] and d.guidance == []
    assert not d.first_session and not d.abdominal_off and d.cap_mA is None


@pytest.mark.parametrize(
    ("record", "attribute"),
    [
        (DEFAULT_POLICY, "first_session_cap_mA"),
        (CONTRAINDICATIONS[0], "absolute"),
        (Screening(NOW, "Tom", frozenset()), "yes"),
        (ClientHistory("Ana", None, None, None, 0), "sessions"),
    ],
)
def test_the_rules_and_the_records_they_read_cannot_be_changed_in_place(
    record: object, attribute: str
) -> None:
    # the site policy is shared by every check-in: nothing may raise its caps in passing
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(record, attribute, 100)


def test_the_default_policy_follows_din_33961_5() -> None:
    p = DEFAULT_POLICY
    assert p.max_clients_per_trainer == 2
    assert p.min_days_between_sessions == 4.0
    assert p.screening_valid_days == 365
    assert p.guidance_weeks == 10
    assert p.ate_within_h == 1.5
    assert p.calibration_margin_pct == 10.0


def test_answers_are_validated_each_problem_once_in_order() -> None:
    assert validate_answers({"zz", "aa"}, {"diabetes", "pregnancy", "bb"}) == [
        "unknown contraindication 'aa'",
        "unknown contraindication 'bb'",
        "unknown contraindication 'zz'",
        "'pregnancy' is an absolute contraindication: no clearance can allow it",
    ]
    assert validate_answers({"diabetes"}, {"diabetes"}) == []


@pytest.mark.parametrize(
    ("clients", "trainers", "expected"),
    [
        (4, 2, ["Tom", "Tom", "Eva", "Eva"]),
        (3, 2, ["Tom", "Tom", "Eva"]),
        (1, 1, ["Tom"]),
        (0, 1, []),
    ],
)
def test_trainers_take_two_clients_each_in_order(
    clients: int, trainers: int, expected: list[str]
) -> None:
    names = [f"c{i}" for i in range(clients)]
    assert list(assign_trainers(names, ["Tom", "Eva"][:trainers]).values()) == expected


def test_too_few_trainers_says_how_many_are_needed() -> None:
    with pytest.raises(ValueError) as info:
        assign_trainers([f"c{i}" for i in range(5)], ["Tom", "Eva"])
    assert str(info.value) == (
        "5 clients need 3 supervising trainers (at most 2 clients each, DIN 33961-5); 2 given"
    )
    with pytest.raises(ValueError, match="4 clients need 2 supervising trainers"):
        assign_trainers([f"c{i}" for i in range(4)], ["Tom"])


def test_check_in_refuses_a_class_with_too_few_trainers(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    for n in ("Ana", "Ben", "Cem"):
        store.add_client(n)
        store.add_screening(n, "Tom", set(), set(), KEYS)
    with pytest.raises(ClassRefused, match="3 clients need 2 supervising trainers"):
        check_in(
            store,
            [CheckIn(n, f"S{i}") for i, n in enumerate(["Ana", "Ben", "Cem"])],
            ["Tom"],
            DEFAULT_LAYOUT,
            default_intensity_mA=30,
        )


def test_what_the_client_ate_is_said_by_name_at_every_call() -> None:
    # `check_client(h, now, True)` would hide what True means: the rule takes it by keyword
    with pytest.raises(TypeError):
        check_client(history(), NOW, True)  # type: ignore[call-arg]
    assert check_client(history(), NOW, ate_recently=True).abdominal_off
