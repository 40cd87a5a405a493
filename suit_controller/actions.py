"""Actions files: timed trainer commands for scripted and simulated classes.

```yaml
- {at: 5m, do: set_intensity, client: 2, channel: quads, mA: 42}
- {at: 7m10s, do: estop}
```
`at` is class time (seconds since the class started, pauses included), at
most `AFTER_PLAN_MAX_S` after the plan's end (a pause or two fits; a typo of a
year, or `1e308`, is refused: it would keep a class open, e-stopped, forever).
Every entry is checked when the file is loaded (a typo is an error before the
class starts); at its time the entry goes, as raw input, through the same
entry as the console's and MQTT's commands (`commands.submit`), with the file
as its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from channels.user_files import UserFileTooBig, read_user_file
from suit_controller.commands import Command, CommandRefused, check_shape, parse_command, printable
from workouts.durations import format_duration, parse_duration

#: How far after the plan's end an action may come (class time counts pauses).
AFTER_PLAN_MAX_S = 30 * 60.0


class ActionsError(ValueError):
    """An actions file that cannot be used; lists every bad entry."""


@dataclass(frozen=True)
class Action:
    """A command to carry out at a class time."""

    at_s: float
    command: Command
    #: The entry as written (without `at`), submitted raw at its time.
    raw: dict[str, Any]


def _when(seconds: float) -> str:
    return format_duration(seconds) if seconds < 1e6 else f"{seconds:g} s"


#: The most values an actions file may expand to: YAML aliases let a small file stand for
#: billions of values (a "bomb" that took 45 s to refuse).
MAX_VALUES = 100_000


def _expands_beyond(node: object, limit: int) -> bool:
    """Whether walking `node` (aliases expanded) meets more than `limit` values."""
    left = limit
    stack = [node]
    while stack:
        item = stack.pop()
        left -= 1
        if left < 0:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def load_actions_text(
    text: str, source: str = "actions", *, class_end_s: float | None = None
) -> list[Action]:
    """Parse an actions file's text; raises ActionsError listing every bad entry.

    `class_end_s` is the plan's length: an action later than `AFTER_PLAN_MAX_S`
    after it is refused.
    """
    try:
        data = YAML(typ="safe").load(text)
    except (YAMLError, ValueError) as e:
        raise ActionsError(f"{source}: not valid YAML: {printable(str(e))}") from None
    except RecursionError:
        raise ActionsError(f"{source}: nested too deeply to be an actions file") from None
    if data is None:
        return []
    if _expands_beyond(data, MAX_VALUES):
        raise ActionsError(
            f"{source}: the file expands to more than {MAX_VALUES:,} values (YAML aliases repeated)"
        )
    if not isinstance(data, list):
        raise ActionsError(f"{source}: an actions file is a list of '- {{at: …, do: …}}' entries")
    actions, problems = [], []
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "at" not in entry:
            problems.append(f"[{i}]: each entry needs 'at' and 'do'")
            continue
        body = {k: v for k, v in entry.items() if k != "at"}
        odd = [k for k in body if not _plain_key(k)]
        if odd:  # named as what it is, not as a problem with a field it made unreadable
            problems.append(f"[{i}]: {printable(repr(odd[0]))} is not a field of an action")
            continue
        try:
            check_shape(body)
            at = parse_duration(entry["at"])
            if class_end_s is not None and at > class_end_s + AFTER_PLAN_MAX_S:
                raise ValueError(
                    f"at {_when(at)} is after the class: it ends at {_when(class_end_s)},"
                    f" and an action may come at most {_when(AFTER_PLAN_MAX_S)} later"
                )
            actions.append(Action(at, parse_command(body), body))
        except (ValueError, CommandRefused) as e:
            problems.append(f"[{i}]: {printable(str(e))}")
    if problems:
        raise ActionsError(f"{source}: " + "; ".join(problems))
    return sorted(actions, key=lambda a: a.at_s)


def _plain_key(key: object) -> bool:
    """A field name a person could have typed: text that encodes, printable characters."""
    if not isinstance(key, str) or not key.isprintable():
        return False
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def load_actions_file(path: str | Path, *, class_end_s: float | None = None) -> list[Action]:
    """Load an actions file (see `load_actions_text`). Raises OSError or ActionsError."""
    try:
        text = read_user_file(path, "an actions file").decode("utf-8")
    except UserFileTooBig as e:
        raise ActionsError(f"{path}: {e}") from None
    except UnicodeDecodeError:
        raise ActionsError(f"{path}: not UTF-8 text (is it a binary file?)") from None
    return load_actions_text(text, source=str(path), class_end_s=class_end_s)
