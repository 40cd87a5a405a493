"""Actions files: timed trainer commands for scripted and simulated classes.

```yaml
- {at: 5m, do: set_intensity, client: 2, channel: quads, mA: 42}
- {at: 7m10s, do: estop}
```
`at` is class time (seconds since the class started, pauses included).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from suit_controller.commands import Command, CommandRefused, parse_command
from workouts.durations import parse_duration


class ActionsError(ValueError):
    """An actions file that cannot be used; lists every bad entry."""


@dataclass(frozen=True)
class Action:
    """A command to carry out at a class time."""

    at_s: float
    command: Command


def load_actions_text(text: str, source: str = "actions") -> list[Action]:
    """Parse an actions file's text; raises ActionsError listing every bad entry."""
    try:
        data = YAML(typ="safe").load(text)
    except (YAMLError, ValueError) as e:
        raise ActionsError(f"{source}: not valid YAML: {e}") from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise ActionsError(f"{source}: an actions file is a list of '- {{at: …, do: …}}' entries")
    actions, problems = [], []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "at" not in entry:
            problems.append(f"[{i}]: each entry needs 'at' and 'do'")
            continue
        body = {k: v for k, v in entry.items() if k != "at"}
        try:
            at = parse_duration(entry["at"])
            actions.append(Action(at, parse_command(body)))
        except (ValueError, CommandRefused) as e:
            problems.append(f"[{i}]: {e}")
    if problems:
        raise ActionsError(f"{source}: " + "; ".join(problems))
    return sorted(actions, key=lambda a: a.at_s)


def load_actions_file(path: str | Path) -> list[Action]:
    """Load an actions file. Raises OSError or ActionsError."""
    return load_actions_text(Path(path).read_text(encoding="utf-8"), source=str(path))
