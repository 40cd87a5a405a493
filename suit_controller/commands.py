"""Trainer commands: the one command path's vocabulary, parsed from any interface.

Every interface (CLI, actions files, MQTT, web) turns its input into one of
these dataclasses with `parse_command`, and hands it to
`ClassSession.execute`, where every limit applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from channels.limits import DEVICE_MAX_MA


class CommandRefused(Exception):
    """A command that cannot be carried out now; the message says why, for a trainer."""


@dataclass(frozen=True)
class CommandResult:
    """What became of a command: accepted, or refused with the reason."""

    ok: bool
    command: str
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "command": self.command, "message": self.message}


class _Cmd(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Start(_Cmd):
    """Start the class."""

    do: Literal["start"] = "start"


class Pause(_Cmd):
    """Pause: every output to zero, the class clock stops."""

    do: Literal["pause"] = "pause"


class Resume(_Cmd):
    """Resume after a pause: intensities ramp up again from zero (S2)."""

    do: Literal["resume"] = "resume"


class Skip(_Cmd):
    """Go to the next exercise or phase now."""

    do: Literal["skip"] = "skip"


class Stop(_Cmd):
    """End the class: every output to zero."""

    do: Literal["stop"] = "stop"


class EmergencyStop(_Cmd):
    """Every output of every suit to zero at once, latched until reset (S3)."""

    do: Literal["estop"] = "estop"


class Reset(_Cmd):
    """Clear a latched emergency stop; the class stays paused until resumed."""

    do: Literal["reset"] = "reset"


class SetIntensity(_Cmd):
    """Set or nudge a set intensity (peak mA at relative level 1).

    `client` None means every client (the class master); `channel` None means
    every channel of the client (the client's master). Give `mA` (a target)
    or `delta_mA` (a nudge). The set intensity moves in steps of at most 1 mA.
    """

    do: Literal["set_intensity"] = "set_intensity"
    client: int | str | None = None
    channel: str | None = None
    mA: Annotated[float, Field(ge=0, le=DEVICE_MAX_MA)] | None = None
    delta_mA: Annotated[float, Field(ge=-DEVICE_MAX_MA, le=DEVICE_MAX_MA)] | None = None


Command = Annotated[
    Start | Pause | Resume | Skip | Stop | EmergencyStop | Reset | SetIntensity,
    Field(discriminator="do"),
]
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
COMMAND_NAMES = ("start", "pause", "resume", "skip", "stop", "estop", "reset", "set_intensity")


def parse_command(data: Any) -> Command:
    """A command from a mapping such as `{"do": "set_intensity", "client": 2, "mA": 42}`.

    Raises CommandRefused with a readable reason for anything malformed.
    """
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        parts = []
        for err in e.errors(include_url=False):
            loc = ".".join(str(p) for p in err["loc"][1:]) or "do"
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                parts.append(f"'do' must be one of: {', '.join(COMMAND_NAMES)}")
            else:
                parts.append(f"{loc}: {err['msg']}")
        raise CommandRefused("; ".join(parts)) from None


def command_name(cmd: Command) -> str:
    return cmd.do
