"""Contraindication screening and the rules before stimulation (S5, S7). Pure logic, no I/O.

Theory of operation
-------------------
A client is stimulated only if every rule below holds; each refusal says why
in a trainer's words (DIN 33961-5 and the WB-EMS guidelines):

* a screening exists, is not older than the site's validity (12 months);
* no absolute contraindication was answered yes;
* every relative contraindication answered yes has a recorded medical clearance;
* at least `min_days_between_sessions` (4) since the client's last session;
* the first session is capped lower (`FIRST_SESSION_CAP_MA`), and the first ten
  weeks come with guidance;
* abdominal channels stay off if the client ate less than 1.5 h ago;
* at most `max_clients_per_trainer` (2) clients per supervising trainer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from channels.limits import FIRST_SESSION_CAP_MA


@dataclass(frozen=True)
class Contraindication:
    """A question of the screening."""

    key: str
    question: str
    absolute: bool


CONTRAINDICATIONS: tuple[Contraindication, ...] = (
    Contraindication("active_implant", "a pacemaker, defibrillator or other active implant", True),
    Contraindication("pregnancy", "pregnancy", True),
    Contraindication("epilepsy", "epilepsy or another seizure disorder", True),
    Contraindication("cancer", "cancer or a tumour under treatment", True),
    Contraindication("acute_illness", "an acute illness, infection or fever", True),
    Contraindication("thrombosis", "thrombosis, phlebitis or a high risk of them", True),
    Contraindication("bleeding_disorder", "a bleeding disorder (e.g. haemophilia)", True),
    Contraindication("hernia", "an abdominal or inguinal hernia", True),
    Contraindication("heart_disease", "heart disease or cardiac arrhythmia", True),
    Contraindication("neurological_disease", "a neurological disease (e.g. MS)", True),
    Contraindication("recent_surgery", "surgery in the last 6 months", False),
    Contraindication("hypertension", "high blood pressure", False),
    Contraindication("diabetes", "diabetes", False),
    Contraindication("metal_implant", "a metal implant (not active) under an electrode", False),
    Contraindication("back_problems", "acute back pain or a disc problem", False),
    Contraindication("skin_lesions", "wounds or skin disease where electrodes sit", False),
)
BY_KEY = {c.key: c for c in CONTRAINDICATIONS}


@dataclass(frozen=True)
class SitePolicy:
    """The studio's rules; defaults follow DIN 33961-5 and the guidelines."""

    max_clients_per_trainer: int = 2
    min_days_between_sessions: float = 4.0
    screening_valid_days: int = 365
    first_session_cap_mA: float = FIRST_SESSION_CAP_MA
    guidance_weeks: int = 10
    ate_within_h: float = 1.5
    calibration_margin_pct: float = 10.0


DEFAULT_POLICY = SitePolicy()


@dataclass(frozen=True)
class Screening:
    """A screening's answers: the keys answered yes, and the clearances on file."""

    taken_at: dt.datetime
    taken_by: str
    yes: frozenset[str]
    clearances: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ClientHistory:
    """What the rules need to know about a client's past."""

    name: str
    screening: Screening | None
    last_session_at: dt.datetime | None
    first_session_at: dt.datetime | None
    sessions: int


@dataclass
class Decision:
    """May this client be stimulated now, and how."""

    client: str
    allowed: bool = True
    reasons: list[str] = field(default_factory=list)
    first_session: bool = False
    abdominal_off: bool = False
    cap_mA: float | None = None
    guidance: list[str] = field(default_factory=list)

    def refuse(self, reason: str) -> None:
        self.allowed = False
        self.reasons.append(reason)


def validate_answers(yes: set[str], clearances: set[str]) -> list[str]:
    """Problems with a screening's keys (unknown keys, clearance for an absolute one)."""
    problems = [
        f"unknown contraindication '{k}'" for k in sorted(yes | clearances) if k not in BY_KEY
    ]
    problems += [
        f"'{k}' is an absolute contraindication: no clearance can allow it"
        for k in sorted(clearances)
        if k in BY_KEY and BY_KEY[k].absolute
    ]
    return problems


def check_client(
    history: ClientHistory,
    now: dt.datetime,
    *,
    ate_recently: bool = False,
    policy: SitePolicy = DEFAULT_POLICY,
) -> Decision:
    """Apply S5 to one client."""
    d = Decision(history.name)
    s = history.screening
    if s is None:
        d.refuse(f"{history.name} has no contraindication screening on file: screen first")
    else:
        age = (now - s.taken_at).days
        if age > policy.screening_valid_days:
            d.refuse(
                f"{history.name}'s screening is {age} days old (valid for "
                f"{policy.screening_valid_days}): screen again"
            )
        for key in sorted(s.yes):
            c = BY_KEY.get(key)
            if c is None:
                continue
            if c.absolute:
                d.refuse(
                    f"{history.name}: {c.question} — an absolute contraindication, no EMS training"
                )
            elif key not in s.clearances:
                d.refuse(f"{history.name}: {c.question} — needs a recorded medical clearance")
    if history.last_session_at is not None:
        days = (now - history.last_session_at).total_seconds() / 86400
        if days < policy.min_days_between_sessions:
            d.refuse(
                f"{history.name}'s last session was {days:.1f} days ago; at least "
                f"{policy.min_days_between_sessions:g} days must pass between sessions"
            )
    d.first_session = history.sessions == 0
    if d.first_session:
        d.cap_mA = policy.first_session_cap_mA
        d.guidance.append(
            f"first session: every channel capped at {policy.first_session_cap_mA:g} mA;"
            " keep it light (Borg CR10 5-6), no exercise to exhaustion"
        )
    elif history.first_session_at is not None:
        week = int((now - history.first_session_at).days // 7) + 1
        if week <= policy.guidance_weeks:
            d.guidance.append(
                f"week {week} of the first {policy.guidance_weeks}: one session a "
                "week, raise intensity gradually, CR10 up to 6-7"
            )
    if ate_recently:
        d.abdominal_off = True
        d.guidance.append(
            f"ate less than {policy.ate_within_h:g} h ago: abdominal channels stay off"
        )
    return d


def assign_trainers(
    clients: list[str], trainers: list[str], policy: SitePolicy = DEFAULT_POLICY
) -> dict[str, str]:
    """S7: give every client a supervising trainer, at most `max_clients_per_trainer` each.

    Clients are assigned in order. Raises ValueError with the reason when
    there are too few trainers.
    """
    per = policy.max_clients_per_trainer
    if not trainers:
        raise ValueError("a class needs a supervising trainer: give --trainer NAME")
    if len(clients) > per * len(trainers):
        need = -(-len(clients) // per)
        raise ValueError(
            f"{len(clients)} clients need {need} supervising trainers (at most {per} clients "
            f"each, DIN 33961-5); {len(trainers)} given"
        )
    return {c: trainers[i // per] for i, c in enumerate(clients)}
