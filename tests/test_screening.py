"""S5 and S7: the rules before stimulation, each refusal in words a trainer understands."""

from __future__ import annotations

import datetime as dt

import pytest

from suit_controller.studio.screening import (
    CONTRAINDICATIONS,
    ClientHistory,
    Screening,
    SitePolicy,
    assign_trainers,
    check_client,
    validate_answers,
)

NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)


def history(
    yes: set[str] = frozenset(),
    clearances: set[str] = frozenset(),
    *,  # type: ignore[assignment]
    screened_days_ago: float | None = 10,
    last_days_ago: float | None = None,
    first_days_ago: float | None = None,
    sessions: int = 0,
) -> ClientHistory:
    screening = (
        None
        if screened_days_ago is None
        else Screening(
            NOW - dt.timedelta(days=screened_days_ago), "Tom", frozenset(yes), frozenset(clearances)
        )
    )
    return ClientHistory(
        "Ana",
        screening,
        None if last_days_ago is None else NOW - dt.timedelta(days=last_days_ago),
        None if first_days_ago is None else NOW - dt.timedelta(days=first_days_ago),
        sessions,
    )


def test_a_clean_screening_allows_a_light_first_session() -> None:
    d = check_client(history(), NOW)
    assert d.allowed and d.reasons == []
    assert d.first_session and d.cap_mA == 50.0
    assert "first session" in d.guidance[0]


def test_no_screening_blocks() -> None:
    d = check_client(history(screened_days_ago=None), NOW)
    assert not d.allowed and "no contraindication screening" in d.reasons[0]


def test_an_expired_screening_blocks() -> None:
    d = check_client(history(screened_days_ago=400), NOW)
    assert not d.allowed and "screen again" in d.reasons[0]
    assert check_client(
        history(screened_days_ago=400), NOW, policy=SitePolicy(screening_valid_days=500)
    ).allowed


@pytest.mark.parametrize("key", [c.key for c in CONTRAINDICATIONS if c.absolute])
def test_every_absolute_contraindication_blocks_even_with_a_clearance(key: str) -> None:
    d = check_client(history({key}, {key}), NOW)
    assert not d.allowed
    assert "absolute contraindication" in d.reasons[0]


@pytest.mark.parametrize("key", [c.key for c in CONTRAINDICATIONS if not c.absolute])
def test_a_relative_contraindication_needs_a_clearance(key: str) -> None:
    d = check_client(history({key}), NOW)
    assert not d.allowed and "needs a recorded medical clearance" in d.reasons[0]
    assert check_client(history({key}, {key}), NOW).allowed


def test_the_design_list_is_covered() -> None:
    keys = {c.key for c in CONTRAINDICATIONS}
    assert {
        "active_implant",
        "pregnancy",
        "epilepsy",
        "cancer",
        "acute_illness",
        "thrombosis",
        "bleeding_disorder",
        "hernia",
        "heart_disease",
        "recent_surgery",
    } <= keys


def test_at_least_four_days_between_sessions() -> None:
    d = check_client(history(last_days_ago=3.5, first_days_ago=20, sessions=3), NOW)
    assert not d.allowed and "3.5 days ago" in d.reasons[0] and "at least 4 days" in d.reasons[0]
    assert check_client(history(last_days_ago=4.01, first_days_ago=20, sessions=3), NOW).allowed
    assert check_client(
        history(last_days_ago=2, sessions=3, first_days_ago=9),
        NOW,
        policy=SitePolicy(min_days_between_sessions=1),
    ).allowed


def test_guidance_for_the_first_ten_weeks_then_none() -> None:
    d = check_client(history(last_days_ago=7, first_days_ago=15, sessions=2), NOW)
    assert d.allowed and not d.first_session and d.cap_mA is None
    assert "week 3 of the first 10" in d.guidance[0]
    later = check_client(history(last_days_ago=7, first_days_ago=100, sessions=12), NOW)
    assert later.guidance == []


def test_abdominal_channels_off_when_the_client_ate_recently() -> None:
    d = check_client(history(), NOW, ate_recently=True)
    assert d.allowed and d.abdominal_off
    assert any("abdominal channels stay off" in g for g in d.guidance)


def test_every_reason_is_given_at_once() -> None:
    d = check_client(
        history(
            {"pregnancy", "diabetes"},
            screened_days_ago=400,
            last_days_ago=1,
            sessions=1,
            first_days_ago=1,
        ),
        NOW,
    )
    assert len(d.reasons) == 4


def test_at_most_two_clients_per_trainer() -> None:
    assert assign_trainers(["a", "b"], ["Tom"]) == {"a": "Tom", "b": "Tom"}
    assert assign_trainers(["a", "b", "c"], ["Tom", "Eva"]) == {"a": "Tom", "b": "Tom", "c": "Eva"}
    with pytest.raises(ValueError, match="3 clients need 2 supervising trainers"):
        assign_trainers(["a", "b", "c"], ["Tom"])
    with pytest.raises(ValueError, match="needs a supervising trainer"):
        assign_trainers(["a"], [])
    policy = SitePolicy(max_clients_per_trainer=4)
    assert set(assign_trainers(["a", "b", "c", "d"], ["Tom"], policy).values()) == {"Tom"}


def test_answers_are_validated() -> None:
    assert validate_answers({"pregnancy"}, set()) == []
    assert "unknown contraindication 'flu'" in validate_answers({"flu"}, set())[0]
    assert "no clearance can allow it" in validate_answers({"pregnancy"}, {"pregnancy"})[0]
