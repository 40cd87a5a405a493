"""The workout as the rest of the program sees it: validated, in seconds, with `Program`s."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from channels.muscles import ChannelKey
from channels.program import Program


class PhaseKind(StrEnum):
    """The three blocks of an EMS class."""

    WARMUP = "warmup"
    SUIT = "suit"
    STRETCH = "stretch"


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in a workout file.

    `path` is like `phases[1].exercises[0].program.frequency_hz`; `line` is
    1-based, None when the file had no such place.
    """

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path or '(file)'}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "line": self.line, "message": self.message}


class WorkoutError(Exception):
    """A workout file that cannot be used; `problems` lists every reason at once."""

    def __init__(
        self,
        problems: list[Problem],
        source: str = "workout",
        warnings: list[Problem] | None = None,
    ) -> None:
        self.problems = problems
        self.warnings = warnings or []
        self.source = source
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


@dataclass(frozen=True)
class Exercise:
    """One exercise of the suit block: what to do, how long, which program on which groups."""

    name: str
    duration_s: float
    program: Program
    program_name: str | None
    channels: dict[ChannelKey, float]
    cues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Phase:
    """Warm-up, suit block or stretching. Only a suit phase has exercises."""

    kind: PhaseKind
    duration_s: float
    cues: tuple[str, ...] = ()
    exercises: tuple[Exercise, ...] = ()


@dataclass(frozen=True)
class Workout:
    """A validated workout. `warnings` are problems that do not stop a class."""

    name: str
    phases: tuple[Phase, ...]
    programs: dict[str, Program] = field(default_factory=dict)
    description: str = ""
    warnings: tuple[Problem, ...] = ()

    @property
    def total_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    @property
    def suit_s(self) -> float:
        return sum(p.duration_s for p in self.phases if p.kind is PhaseKind.SUIT)
