"""One MQTT account per tablet: its name and its ACL lines (Mosquitto's acl_file). Pure.

With one account shared by a room's tablets, a login can invent client ids and so dodge
the per-client-id rate limit (review finding F2): MQTT does not tell the controller who
logged in. A tablet account of its own may write commands only on
`ems/<site>/<room>/commands/from/<tablet>`, so the controller's rate-limit key for that
topic (`mqtt:<tablet>`) is the account, whatever client id the tablet picks. It may also
press the e-stop and ask for missed events (`…/estop`, `…/events/replay`), and read what a
tablet reads: `online`, `state`, `events`, telemetry, command and replay results, and its
own v5 replies (`…/replies/<tablet>`). Nothing else: not another room, not another
tablet's commands, nothing the controller publishes.

The lines of each tablet sit between two marker comments in the ACL file, so `suitctl
mqtt tablet remove` takes out exactly what `add` put in, and `list` finds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-]+$")
#: Between site, room and tablet in a tablet's account name: never in a topic segment, so a
#: shared room account's `%u` patterns can never match a real room for a tablet account.
SEPARATOR = "~"
_BEGIN = "# suitctl mqtt tablet {key} (begin: `suitctl mqtt tablet remove` deletes to end)"
_END = "# suitctl mqtt tablet {key} (end)"
_MARK = re.compile(r"^# suitctl mqtt tablet (\S+)/(\S+)/(\S+) \(begin")
#: What a tablet reads, under its room's prefix (`{tablet}`: its own v5 replies).
READS = (
    "online",
    "state",
    "events",
    "clients/+/telemetry",
    "commands/result",
    "events/replay/result",
    "replies/{tablet}/#",
)
#: What a tablet writes, under its room's prefix: its commands, the e-stop, replay requests.
WRITES = ("commands/from/{tablet}", "estop", "events/replay")


class TabletError(ValueError):
    """A tablet that cannot be added or removed as asked (the message says why)."""


@dataclass(frozen=True)
class Tablet:
    """One tablet of one room: its MQTT account and topics."""

    site: str
    room: str
    name: str

    def __post_init__(self) -> None:
        for what, value in (("site", self.site), ("room", self.room), ("tablet", self.name)):
            if not _SEGMENT.match(value):
                raise TabletError(
                    f"{what} '{value}' may use only letters, digits, '.', '_' and '-'"
                )

    @property
    def key(self) -> str:
        return f"{self.site}/{self.room}/{self.name}"

    @property
    def username(self) -> str:
        """The tablet's MQTT username, e.g. `studio~room-1~tablet-7`."""
        return SEPARATOR.join((self.site, self.room, self.name))

    @property
    def prefix(self) -> str:
        return f"ems/{self.site}/{self.room}"

    @property
    def commands_topic(self) -> str:
        """The only topic where this tablet's commands are carried out."""
        return f"{self.prefix}/commands/from/{self.name}"

    def acl_lines(self) -> list[str]:
        """The tablet's block of the ACL file, marker comments included."""
        lines = [_BEGIN.format(key=self.key), f"user {self.username}"]
        lines += [f"topic read {self.prefix}/{t.format(tablet=self.name)}" for t in READS]
        lines += [f"topic write {self.prefix}/{t.format(tablet=self.name)}" for t in WRITES]
        lines.append(_END.format(key=self.key))
        return lines


def tablets_in(acl: str) -> list[Tablet]:
    """The tablets whose blocks an ACL file holds, in file order."""
    out = []
    for line in acl.splitlines():
        m = _MARK.match(line)
        if m:
            out.append(Tablet(*m.groups()))
    return out


def with_tablet(acl: str, tablet: Tablet) -> str:
    """The ACL file with the tablet's block appended (refused if it is there already)."""
    if tablet in tablets_in(acl) or re.search(
        rf"^user {re.escape(tablet.username)}\s*$", acl, re.MULTILINE
    ):
        raise TabletError(
            f"tablet {tablet.name} of {tablet.site}/{tablet.room} is already in the ACL file "
            f"(account {tablet.username}); remove it first to give it a new password"
        )
    head = acl if not acl or acl.endswith("\n") else acl + "\n"
    return head + "\n" + "\n".join(tablet.acl_lines()) + "\n"


def without_tablet(acl: str, tablet: Tablet) -> str:
    """The ACL file without the tablet's block (refused if it is not there)."""
    lines = acl.splitlines(keepends=True)
    begin, end = _BEGIN.format(key=tablet.key), _END.format(key=tablet.key)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == begin]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == end]
    if not starts or not ends or ends[0] < starts[0]:
        raise TabletError(
            f"tablet {tablet.name} of {tablet.site}/{tablet.room} is not in the ACL file "
            "(`suitctl mqtt tablet list` shows the tablets there)"
        )
    first, last = starts[0], ends[0]
    if first > 0 and lines[first - 1].strip() == "":
        first -= 1  # the blank line `add` put before it
    return "".join(lines[:first] + lines[last + 1 :])
