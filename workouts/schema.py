"""The workout file format as pydantic models: validation and the published JSON Schema.

These models mirror the YAML a trainer writes (see DESIGN.md). Range limits
come from `channels`; cross-field rules that need a field path (ramps inside
the impulse, program references) are field validators so every problem is
reported with its own path.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from channels.limits import FREQUENCY_RANGE_HZ, PULSE_WIDTH_RANGE_US
from channels.muscles import LocationError, parse_channel_key
from channels.showable import unshowable
from workouts.durations import DURATION_HELP, parse_duration


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except ValueError as e:
        raise PydanticCustomError("duration", str(e)) from None


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*(\d+(\.\d+)?\s*[hms]\s*)+$"},
            ],
            "description": f"a duration: {DURATION_HELP}",
        }
    ),
]


def _not_a_number(value: object) -> str | None:
    """What a YAML value is when it is not a number (None when it is one): a boolean or
    a text such as "1" is never read as a number, whatever it looks like."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "text"
    return None


def _whole(unit: str) -> Any:
    def check(value: object) -> object:
        found = _not_a_number(value)
        if found is not None:
            raise PydanticCustomError(
                "whole_number",
                "must be a whole number of {unit}, not {found} (found {got})",
                {"unit": unit, "found": found, "got": _shown(value)},
            )
        if isinstance(value, float):
            if not math.isfinite(value) or not value.is_integer():
                raise PydanticCustomError(
                    "whole_number",
                    "must be a whole number of {unit}: the suit applies whole {unit} and every "
                    "safety cap is computed from exactly that value (got {got})",
                    {"unit": unit, "got": repr(value)},
                )
            return int(value)
        return value

    return BeforeValidator(check)


def _channel_key(value: object) -> str:
    try:
        return str(parse_channel_key(value))  # type: ignore[arg-type]
    except LocationError as e:
        raise PydanticCustomError("channel", str(e)) from None


ChannelName = Annotated[
    str,
    BeforeValidator(_channel_key),
    WithJsonSchema({"type": "string", "description": "a muscle group, optionally _left/_right"}),
]


def _shown(value: object) -> str:
    """A value found in the file as the trainer wrote it (YAML spelling for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)[:60]


def _level(value: object) -> object:
    found = _not_a_number(value)
    if found is not None:
        # the loader adds the exercise's name and the channel (see loader._message)
        raise PydanticCustomError(
            "level_type",
            "a level is a number from 0 to 1, not {found} (found {got})",
            {"found": found, "got": _shown(value)},
        )
    return value


Level = Annotated[
    float,
    BeforeValidator(_level),
    Field(ge=0.0, le=1.0, description="relative level 0..1"),
]


def _showable(value: str) -> str:
    bad = unshowable(value)
    if bad is not None:
        raise PydanticCustomError(
            "unshowable",
            "cannot contain control or invisible characters (found {bad}): a terminal would "
            "run them instead of showing them; type it again with letters, digits and "
            "punctuation only",
            {"bad": bad},
        )
    return value


#: A name or a cue as a screen shows it: no control, format or separator character
#: (the rule `suit_controller.commands.refuse_unshowable` applies to client names).
Shown = Annotated[str, AfterValidator(_showable)]


def _description(value: str) -> str:
    _showable(value.replace("\n", "").replace("\t", ""))
    return value


#: A description may run over several lines (YAML `|`): new lines and tabs are allowed.
Description = Annotated[str, AfterValidator(_description)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProgramSpec(_Strict):
    """A stimulation program: pulse parameters and the contraction rhythm."""

    # strict: `continuous: 1` or `continuous: "no"` is refused, not read as true or false
    continuous: Annotated[bool, Strict()] = Field(
        False, description="no pauses: ramps up once and stays on"
    )
    frequency_hz: Annotated[int, _whole("Hz")] = Field(
        ge=FREQUENCY_RANGE_HZ[0], le=FREQUENCY_RANGE_HZ[1], description="whole hertz"
    )
    pulse_width_us: Annotated[int, _whole("µs")] = Field(
        ge=PULSE_WIDTH_RANGE_US[0], le=PULSE_WIDTH_RANGE_US[1], description="whole microseconds"
    )
    impulse_s: Duration | None = Field(None, validate_default=True)
    pause_s: Duration = Field(0.0, validate_default=True)
    ramp_up_s: Duration = 0.5
    ramp_down_s: Duration = 0.3

    @field_validator("impulse_s")
    @classmethod
    def _impulse_needed(cls, v: float | None, info: ValidationInfo) -> float | None:
        if not info.data.get("continuous", False) and (v is None or v <= 0):
            raise PydanticCustomError(
                "impulse", "a program with pauses needs an impulse (contraction) time above 0 s"
            )
        return v

    @field_validator("pause_s")
    @classmethod
    def _no_pause_when_continuous(cls, v: float, info: ValidationInfo) -> float:
        if info.data.get("continuous", False) and v != 0:
            raise PydanticCustomError(
                "pause", "a continuous program has no pause: use 0 or leave it out"
            )
        return v

    @field_validator("ramp_down_s")
    @classmethod
    def _ramps_fit(cls, v: float, info: ValidationInfo) -> float:
        impulse, up = info.data.get("impulse_s"), info.data.get("ramp_up_s")
        if info.data.get("continuous", False) or impulse is None or up is None:
            return v
        if up + v > impulse + 1e-9:
            raise PydanticCustomError(
                "ramps",
                "the ramps ({up} s up + {down} s down) must fit inside the {impulse} s impulse",
                {"up": f"{up:g}", "down": f"{v:g}", "impulse": f"{impulse:g}"},
            )
        return v


def _program_tag(v: Any) -> str:
    return "name" if isinstance(v, str) else "inline"


class ExerciseSpec(_Strict):
    """One exercise of the suit block."""

    name: Shown = Field(min_length=1)
    duration: Duration
    program: Annotated[
        Annotated[str, Tag("name")] | Annotated[ProgramSpec, Tag("inline")],
        Discriminator(_program_tag),
    ] = Field(description="a name from programs:, or an inline program")
    channels: dict[ChannelName, Level] = Field(min_length=1)
    cues: list[Shown] = Field(default_factory=list)

    @field_validator("program")
    @classmethod
    def _program_exists(cls, v: str | ProgramSpec, info: ValidationInfo) -> str | ProgramSpec:
        known = (info.context or {}).get("programs")
        if isinstance(v, str) and known is not None and v not in known:
            names = ", ".join(sorted(known)) or "none are defined"
            raise PydanticCustomError(
                "program_ref",
                "no program named '{name}' (programs: {names})",
                {"name": v, "names": names},
            )
        return v


class WarmupSpec(_Strict):
    """Warm-up without the suit: never stimulates (S8)."""

    kind: Literal["warmup"]
    duration: Duration
    cues: list[Shown] = Field(default_factory=list)


class StretchSpec(_Strict):
    """Stretching without the suit: never stimulates (S8)."""

    kind: Literal["stretch"]
    duration: Duration
    cues: list[Shown] = Field(default_factory=list)


class SuitSpec(_Strict):
    """The suit block: strength exercises with stimulation."""

    kind: Literal["suit"]
    exercises: list[ExerciseSpec] = Field(min_length=1)
    cues: list[Shown] = Field(default_factory=list)


PhaseSpec = Annotated[WarmupSpec | SuitSpec | StretchSpec, Field(discriminator="kind")]


class WorkoutSpec(_Strict):
    """A workout file."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={"title": "suit-controller workout", "$id": "suit-controller/workout"},
    )

    name: Shown = Field(min_length=1)
    description: Description = ""
    programs: dict[Shown, ProgramSpec] = Field(default_factory=dict)
    phases: list[PhaseSpec] = Field(min_length=1)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the workout file format (for editors and gym tools)."""
    schema = WorkoutSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
