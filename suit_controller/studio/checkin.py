"""Checking in a class's clients (S5, S7): who may train today, and why not."""

from __future__ import annotations

from dataclasses import dataclass

from channels.layouts import SuitLayout
from channels.limits import DEVICE_MAX_MA
from suit_controller.clients import ClientSpec
from suit_controller.studio.screening import (
    DEFAULT_POLICY,
    SitePolicy,
    assign_trainers,
    check_client,
)
from suit_controller.studio.store import ClientRecord, RosterEntry, Store, StoreError, utcnow


class ClassRefused(Exception):
    """The class cannot start; `reasons` says why, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass(frozen=True)
class CheckIn:
    """A client at the door: who (id, member id or name), suit, ate in the last 1.5 hours."""

    name: str
    suit: str
    ate_recently: bool = False


def class_names(records: list[ClientRecord]) -> dict[str, str]:
    """Each client's name as one class shows it, by client id: unique within the class.

    Names may repeat in a studio (two "Ana Weber"); a class still needs one name a card
    for the trainer. A repeated name gets the member id, or a number when there is none
    ("Ana Weber (M-1)", "Ana Weber (2)"); clients are still told apart by id everywhere.
    """
    counts: dict[str, int] = {}
    for r in records:
        counts[r.name] = counts.get(r.name, 0) + 1
    taken = {r.name for r in records if counts[r.name] == 1}
    names: dict[str, str] = {}
    for r in records:
        if counts[r.name] == 1:
            names[r.id] = r.name
            continue
        candidate = f"{r.name} ({r.member_id})" if r.member_id else ""
        n = 1
        while not candidate or candidate in taken:
            n += 1
            candidate = f"{r.name} ({n})"
        taken.add(candidate)
        names[r.id] = candidate
    return names


def check_in(
    store: Store,
    arrivals: list[CheckIn],
    trainers: list[str],
    layout: SuitLayout,
    *,
    default_intensity_mA: float,
    policy: SitePolicy = DEFAULT_POLICY,
) -> tuple[list[ClientSpec], list[RosterEntry], list[str]]:
    """Apply every rule; return client settings, the roster to record and guidance lines.

    Each client starts from the last session's calibrated levels less the
    policy's margin (or `default_intensity_mA` the first time).
    Raises ClassRefused listing every reason at once.
    """
    reasons: list[str] = []
    found = []
    for a in arrivals:
        try:
            found.append((a, store.client(a.name)))
        except StoreError as e:
            reasons.append(str(e))
    ids = [r.id for _, r in found]
    if len(set(ids)) != len(ids):
        reasons.append("a client is listed twice")
    unknown = [f"unknown {i}" for i in range(len(arrivals) - len(found))]  # they count too
    try:
        supervisors = assign_trainers([r.id for _, r in found] + unknown, trainers, policy)
    except ValueError as e:
        reasons.append(str(e))
        supervisors = {}
    now = utcnow()
    specs, roster, guidance = [], [], []
    shown_as = class_names([r for _, r in found])
    for a, record in found:
        name = shown_as[record.id]
        decision = check_client(
            store.history(record.id), now, ate_recently=a.ate_recently, policy=policy
        )
        calibration = store.calibration(record.id)
        if not decision.allowed:
            reasons.extend(decision.reasons)
            continue
        guidance += [f"{name}: {g}" for g in decision.guidance]
        keep = 1.0 - policy.calibration_margin_pct / 100.0
        intensity: float | dict[str, float]
        if calibration:
            intensity = {ch: round(calibration.get(ch, 0.0) * keep * 2) / 2 for ch in layout.names}
            guidance.append(
                f"{name}: starts from the last session's levels less "
                f"{policy.calibration_margin_pct:g} %"
            )
        else:
            intensity = default_intensity_mA
        cap = decision.cap_mA if decision.cap_mA is not None else DEVICE_MAX_MA
        specs.append(
            ClientSpec(
                name,
                intensity_mA=intensity,
                cap_mA=cap,
                first_session=decision.first_session,
                abdominal_off=decision.abdominal_off,
                trainer=supervisors.get(record.id),
            )
        )
        roster.append(
            RosterEntry(
                record.id,
                record.name,
                a.suit,
                supervisors.get(record.id),
                decision.first_session,
                decision.abdominal_off,
            )
        )
    if len({s.name for s in specs}) != len(specs):  # before anything is recorded
        reasons.append("two clients of this class would show under one name")
    if reasons:
        raise ClassRefused(reasons)
    return specs, roster, guidance
