"""What the studio's HTTP API accepts: request bodies as strict pydantic models.

Strict: a boolean is never a number, a number never a string; unknown fields
are refused. Every string is bounded. These models are also the request
schemas of the OpenAPI document (`openapi.py`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from channels.limits import DEVICE_MAX_MA
from suit_controller.commands import SHOWABLE_PATTERN, refuse_unshowable

#: The rule `refuse_unshowable` applies, as the document's pattern (the validator checks it,
#: with a message a person reads; the pattern tells integrators).
_SHOWN = {"pattern": SHOWABLE_PATTERN}
#: A person's or a room's name: shown on pages and terminals, so no control characters.
Name = Annotated[
    str,
    Field(min_length=1, max_length=80, json_schema_extra=_SHOWN),
    AfterValidator(refuse_unshowable),
]
Ref = Annotated[str, Field(min_length=1, max_length=80)]
Key = Annotated[str, Field(min_length=1, max_length=40)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LoginBody(_Body):
    """Log in with an account's name and password."""

    name: Name
    password: Annotated[str, Field(min_length=1, max_length=200)]


class NewClient(_Body):
    """A new client: a name, and optionally the gym's member id, birth date and notes."""

    name: Name
    member_id: Annotated[str, Field(min_length=1, max_length=80)] | None = None
    birth_date: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    notes: Annotated[str, Field(max_length=2000)] = ""


class ScreeningBody(_Body):
    """A screening: the questions answered yes, and the medical clearances on file."""

    yes: Annotated[list[Key], Field(max_length=40)] = []
    clearances: Annotated[list[Key], Field(max_length=40)] = []


class ArrivalBody(_Body):
    """One client of a class: who (id), which suit, and the check-in answers."""

    client: Ref
    suit: Annotated[str, Field(min_length=1, max_length=40)]
    ate_recently: bool = False
    unwell: bool = False


class NewClass(_Body):
    """A class to set up in a room: the workout, its clients and the supervising trainers."""

    room: Annotated[
        str,
        Field(min_length=1, max_length=40, json_schema_extra=_SHOWN),
        AfterValidator(refuse_unshowable),
    ] = "Room 1"
    workout: Annotated[str, Field(min_length=1, max_length=80)]
    trainers: Annotated[list[Name], Field(min_length=1, max_length=10)]
    clients: Annotated[list[ArrivalBody], Field(min_length=1, max_length=12)]


class CommandBody(_Body):
    """A trainer's command, as the engine's command path reads it (`do` names it)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    do: Literal["start", "pause", "resume", "skip", "stop", "estop", "reset", "set_intensity"]
    client: Annotated[int, Field(ge=1, le=12)] | Annotated[str, Field(max_length=80)] | None = None
    channel: Annotated[str, Field(max_length=40)] | None = None
    # the engine's own bounds (commands.SetIntensity): the document never allows what it refuses
    mA: Annotated[float, Field(ge=0, le=DEVICE_MAX_MA, allow_inf_nan=False)] | None = None
    delta_mA: (
        Annotated[float, Field(ge=-DEVICE_MAX_MA, le=DEVICE_MAX_MA, allow_inf_nan=False)] | None
    ) = None


class NewAccount(_Body):
    """A trainer or manager account (managers only)."""

    name: Name
    role: Literal["manager", "trainer"]
    password: Annotated[str, Field(min_length=8, max_length=200)]


class NewToken(_Body):
    """A read-only API token for an integration (managers only); `label` says what for."""

    label: Annotated[str, Field(min_length=1, max_length=80)]


#: Workout text as the API takes it (the library refuses more than 32 KB with a clear message).
YamlText = Annotated[str, Field(min_length=1, max_length=60_000)]


class WorkoutText(_Body):
    """A workout's YAML text (the format of docs/workouts.md)."""

    yaml: YamlText


class ArchiveBody(_Body):
    """Archive a workout (hidden from lists and class set-up), or bring it back."""

    archived: bool = True


class DesignerRun(_Body):
    """Try a workout on simulated bodies: how many clients, first session or experienced.

    `intensity_mA`: the set intensity per body area (a channel or muscle group,
    `lower_back`, `chest`), default 40 mA; a suggestion's `apply` goes here.
    `studio_clients`: the studio's own clients (ids) instead of `clients`
    seeded ones: each at the set intensities of their last session and with
    their first-session status; `shift_mA` is added to everyone's setting of
    an area (a suggestion's `apply` for them goes here).
    """

    yaml: YamlText
    clients: Annotated[int, Field(ge=1, le=20)] = 8
    first_session: bool = False
    seed: Annotated[int, Field(ge=0, le=2**31)] = 0
    intensity_mA: Annotated[
        dict[Key, Annotated[float, Field(ge=0, le=DEVICE_MAX_MA, allow_inf_nan=False)]],
        Field(max_length=40),
    ] = {}
    studio_clients: Annotated[list[Ref], Field(max_length=20)] = []
    shift_mA: Annotated[
        dict[Key, Annotated[float, Field(ge=-120, le=120, allow_inf_nan=False)]],
        Field(max_length=40),
    ] = {}


PathStep = Annotated[str, Field(min_length=1, max_length=40)] | Annotated[int, Field(ge=0, le=200)]


class FormChange(_Body):
    """One field of the editor's form: where in the workout (keys and list indexes), its value.

    `value` null removes the key (an area's weight set to nothing).
    """

    path: Annotated[
        list[
            Annotated[str, Field(min_length=1, max_length=40)] | Annotated[int, Field(ge=0, le=200)]
        ],
        Field(min_length=1, max_length=8),
    ]
    value: (
        Annotated[str, Field(max_length=200)]
        | Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]
        | None
    )


class FormEdit(_Body):
    """Changes from the editor's form applied to the workout's YAML (comments and order kept)."""

    yaml: YamlText
    changes: Annotated[list[FormChange], Field(min_length=1, max_length=50)]


BODIES: tuple[type[BaseModel], ...] = (
    FormChange,
    FormEdit,
    WorkoutText,
    ArchiveBody,
    DesignerRun,
    LoginBody,
    NewClient,
    ScreeningBody,
    ArrivalBody,
    NewClass,
    CommandBody,
    NewAccount,
    NewToken,
)
