"""Trainer commands: the one command path's vocabulary, and its one entry for every interface.

Every interface (the console, MQTT, actions files, and later the studio's HTTP
API) holds only raw input and a source id, and hands both to `submit` (or to
`CommandDesk.take`, its synchronous first half). The desk parses the input
with bounded size and depth, reads the request id, recognises an emergency
stop as soon as its bytes are parsed and latches it ahead of everything
queued, refuses a source above its rate limit, and queues the rest for the
session's `execute`, where every limit of the class applies. Refusals are
events and results like everything else.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, Literal

import trio
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from channels.limits import DEVICE_MAX_MA
from channels.showable import UNSHOWABLE_CATEGORIES as UNSHOWABLE_CATEGORIES
from channels.showable import refuse_unshowable as refuse_unshowable
from channels.showable import unshowable as unshowable

if TYPE_CHECKING:
    from suit_controller.session import ClassSession


class CommandRefused(Exception):
    """A command that cannot be carried out now; the message says why, for a trainer.

    `request_id`: the input's `id` when it could be read before the refusal (set by
    `decode`), so even a refused command's answer can be matched to its request.
    """

    request_id: str | None = None


@dataclass(frozen=True)
class CommandResult:
    """What became of a command: accepted, or refused with the reason.

    `command` is the command's name ("" if it could not be read); `request_id`
    echoes the input's `id` whenever it could be read, refusals included.
    """

    ok: bool
    command: str
    message: str = ""
    request_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        """As every interface answers: {"id", "ok", "command", "message"}."""
        return {
            "id": self.request_id,
            "ok": self.ok,
            "command": self.command or None,
            "message": self.message,
        }


#: Longest client or channel name a command may carry.
MAX_TEXT = 100
#: A command's raw bytes (JSON text) larger than this are refused unread.
MAX_COMMAND_BYTES = 4096
#: Deepest nesting of lists and objects a command may have (a command is one flat object).
MAX_DEPTH = 4
#: Longest request id.
MAX_ID = 100
#: Nesting up to which a command too deep is still parsed, only to read its id for the
#: answer (flat, small: far from any recursion limit; deeper input is refused unread).
ID_READ_DEPTH = 32
#: Fields that must be numbers, and the one that may be a number or a name.
_NUMBERS = ("mA", "delta_mA")


def _showable_pattern() -> str:
    """A regular expression (for documents such as OpenAPI) matching text without any
    character of UNSHOWABLE_CATEGORIES: the rule `unshowable` applies, as a pattern."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x110000):
        if unicodedata.category(chr(cp)) in UNSHOWABLE_CATEGORIES:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))

    def esc(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"

    parts = "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)
    return f"^[^{parts}]*$"


#: `_showable_pattern()` written out (computing it takes 0.4 s; a test checks they agree).
SHOWABLE_PATTERN = (
    "^[^\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u0600-\\u0605\\u061c\\u06dd\\u070f\\u0890-\\u0891\\"
    "u08e2\\u180e\\u200b-\\u200f\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u206f\\ud800-\\udfff\\ufe"
    "ff\\ufff9-\\ufffb\\U000110bd\\U000110cd\\U00013430-\\U00013438\\U0001bca0-\\U0001bca3\\U0"
    "001d173-\\U0001d17a\\U000e0001\\U000e0020-\\U000e007f]*$"
)


def printable(text: str, limit: int = 500) -> str:
    """Text with each non-printable character (lone surrogate, NUL, escape) as \\uXXXX."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text[:limit])


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


def _printable_name(value: Any) -> Any:
    """Names that cannot be printed are kept as their escaped text: they name nobody."""
    return printable(value) if isinstance(value, str) and not value.isprintable() else value


_Name = Annotated[StrictStr, BeforeValidator(_printable_name), Field(max_length=MAX_TEXT)]


class SetIntensity(_Cmd):
    """Set or nudge a set intensity (peak mA at relative level 1).

    `client` None means every client (the class master); `channel` None means
    every channel of the client (the client's master). Give `mA` (a target)
    or `delta_mA` (a nudge). The set intensity moves in steps of at most 1 mA.
    """

    do: Literal["set_intensity"] = "set_intensity"
    client: StrictInt | _Name | None = None
    channel: _Name | None = None
    mA: (
        Annotated[
            float,
            Field(strict=True, allow_inf_nan=False, ge=0, le=DEVICE_MAX_MA),
            AfterValidator(_zero_not_minus_zero),
        ]
        | None
    ) = None
    delta_mA: (
        Annotated[
            float,
            Field(strict=True, allow_inf_nan=False, ge=-DEVICE_MAX_MA, le=DEVICE_MAX_MA),
            AfterValidator(_zero_not_minus_zero),
        ]
        | None
    ) = None


Command = Annotated[
    Start | Pause | Resume | Skip | Stop | EmergencyStop | Reset | SetIntensity,
    Field(discriminator="do"),
]
_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
COMMAND_NAMES = ("start", "pause", "resume", "skip", "stop", "estop", "reset", "set_intensity")


def shown(value: object, limit: int = 40) -> str:
    """User text as it may go into a message: quoted, non-printables escaped, bounded.

    A lone surrogate, NUL or escape sequence from outside never reaches a terminal,
    a log or a page through a message.
    """
    text = value if isinstance(value, str) else repr(value)
    return f"'{printable(text, limit)}{'…' if len(text) > limit else ''}'"


def check_shape(data: Any, depth: int = 0) -> None:
    """Refuse nesting deeper than MAX_DEPTH and non-finite numbers anywhere in decoded data."""
    if depth > MAX_DEPTH:
        raise CommandRefused(f"a command is nested more than {MAX_DEPTH} levels deep")
    if isinstance(data, float) and not math.isfinite(data):
        raise CommandRefused("numbers must be finite (no NaN or infinity)")
    if isinstance(data, Mapping):
        for v in data.values():
            check_shape(v, depth + 1)
    elif isinstance(data, list | tuple):
        for v in data:
            check_shape(v, depth + 1)


def json_depth(text: str) -> int:
    """How deeply JSON text nests arrays and objects (scanned, never recursed; strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "]}":
            depth -= 1
    return deepest


def _readable_id(data: Mapping[str, Any]) -> str | None:
    """The command's `id` if it is a valid one, else None (never raises)."""
    rid = data.get("id")
    return rid if isinstance(rid, str) and len(rid) <= MAX_ID else None


def _zero_not_minus_zero(value: float) -> float:
    """-0.0 is 0 (a trainer reads "0 mA", never "-0 mA")."""
    return value + 0.0


#: Never refused for a source's rate: the e-stop (taken before any limit) and `stop`, which
#: ends the class (it still spends from its source's limit). A pause is limited like any
#: other command: a page or tablet flooding pauses gets refusals (logged as one counted line,
#: never one audit entry each), and its e-stop is still obeyed at once.
NEVER_LIMITED = frozenset({"stop"})
_SAYS_ESTOP = re.compile(r'"do"\s*:\s*"estop"')


def says_estop(raw: object) -> bool:
    """True if `raw` asks for an emergency stop, whatever else is in it or wrong with it.

    Fail-safe: an e-stop with a bad id, an extra field, a NaN, too deep, too big or
    with trailing bytes is still an e-stop (anything else in it is ignored).
    """
    if isinstance(raw, Mapping):
        try:
            return raw.get("do") == "estop"
        except Exception:  # a hostile mapping: not recognisable as an e-stop
            return False
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", errors="replace")
    return isinstance(raw, str) and _SAYS_ESTOP.search(raw) is not None


def decode(raw: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """Raw input (JSON bytes or text, or an already decoded mapping) -> a plain dict.

    Size and depth are bounded before anything recursive runs; raises CommandRefused.
    """
    if isinstance(raw, Mapping):
        check_shape(raw)
        return dict(raw)
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    if not isinstance(raw, bytes | bytearray | str):
        raise CommandRefused("a command is JSON text or a mapping")
    if len(raw) > MAX_COMMAND_BYTES:
        raise CommandRefused(f"a command of {len(raw)} bytes is over {MAX_COMMAND_BYTES}")
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise CommandRefused("a command is not JSON: these bytes are not UTF-8") from None
    else:
        text = raw
    depth = json_depth(text)
    too_deep = CommandRefused(f"a command is nested more than {MAX_DEPTH} levels deep")
    if depth > ID_READ_DEPTH:
        raise too_deep
    constants: list[str] = []
    twice: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen = dict(items)
        if len(seen) < len(items):
            keys = [k for k, _ in items]
            twice.extend(k for k in dict.fromkeys(keys) if keys.count(k) > 1)
        return seen

    def constant(name: str) -> float:
        constants.append(name)
        return math.nan

    try:
        data = json.loads(text, parse_constant=constant, object_pairs_hook=pairs)
    except ValueError:
        raise CommandRefused("a command is not JSON") from None
    if not isinstance(data, dict):
        raise CommandRefused('a command is a JSON object such as {"do": "estop"}')
    try:
        if depth > MAX_DEPTH + 1:  # the command object itself is one level
            raise too_deep
        if twice:
            raise CommandRefused(
                f"{shown(twice[0])} is given twice in one command: give each field once"
            )
        if constants:
            raise CommandRefused(f"numbers must be finite (no {constants[0]})")
        check_shape(data)
    except CommandRefused as e:  # keep the id for the answer whenever it could be read
        e.request_id = None if "id" in twice else _readable_id(data)
        raise
    return data


def parse_command(data: Any) -> Command:
    """A command from a mapping such as `{"do": "set_intensity", "client": 2, "mA": 42}`.

    Raises CommandRefused with a readable reason for anything malformed.
    Booleans are never numbers: JSON `true` is neither 1 mA nor client 1.
    """
    if isinstance(data, Mapping):
        for key in (*_NUMBERS, "client"):
            if isinstance(data.get(key), bool):
                what = "a client number or name" if key == "client" else "a number of mA"
                raise CommandRefused(f"{key}: {str(data[key]).lower()} is a boolean, not {what}")
        check_shape(data)
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        parts = []
        for err in e.errors(include_url=False):
            loc = str(err["loc"][1]) if len(err["loc"]) > 1 else "do"
            if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                parts.append(f"'do' must be one of: {', '.join(COMMAND_NAMES)}")
            elif loc == "client":
                parts.append("client: a client number (1, 2, …) or name")
            else:
                parts.append(f"{loc}: {err['msg']}")
        raise CommandRefused(printable("; ".join(dict.fromkeys(parts)))) from None


def command_name(cmd: Command) -> str:
    return cmd.do


# -- the one entry for every interface --------------------------------------------------------
@dataclass(frozen=True)
class RateLimit:
    """Commands a source may send: `burst` at once, refilled at `per_s` a second.

    E-stops are never limited. Each source (a WebSocket, an MQTT client id, an
    actions file) has a bucket of its own, so no interface can starve another.
    """

    per_s: float = 20.0
    burst: int = 40


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass(eq=False)
class Request:
    """One command from one source, from the moment its bytes were read to its result."""

    source: str
    request_id: str | None
    command: Command | None
    result: CommandResult | None = None
    #: taken when its source was over its rate limit (refused, or a stop carried out anyway):
    #: interfaces do not audit such refusals one by one (the desk counts them)
    over_limit: bool = False
    _done: trio.Event = field(default_factory=trio.Event, repr=False)

    @property
    def is_estop(self) -> bool:
        return isinstance(self.command, EmergencyStop)

    def finish(self, result: CommandResult) -> None:
        if self.result is None:
            self.result = replace(result, request_id=self.request_id)
            self._done.set()

    async def wait(self) -> CommandResult:
        """The result, once the command has been carried out or refused."""
        await self._done.wait()
        assert self.result is not None
        return self.result


def _request_id(data: Mapping[str, Any]) -> str | None:
    rid = data.get("id")
    if rid is None:
        return None
    if not isinstance(rid, str) or len(rid) > MAX_ID:
        raise CommandRefused(f"'id' must be a string of at most {MAX_ID} characters")
    return rid


class CommandDesk:
    """Where every command of a class arrives: e-stops first, then each in its turn.

    `take` is synchronous and fast, so an interface reads every message the
    moment it arrives; an e-stop is latched right there (outputs zero, state
    ESTOPPED) and its STOP_ALL is sent by the desk's own task before any
    queued command runs. Other commands run one at a time, in arrival order,
    in the desk's worker (`run`, started by the session).
    """

    #: Refusals logged one by one, per source; the rest are counted and logged as one line
    #: ("N more commands from … refused") with the source's next logged refusal, or at the end.
    REFUSALS_LOGGED = RateLimit(per_s=1.0, burst=10)

    def __init__(self, session: ClassSession, limit: RateLimit | None = None) -> None:
        self.session = session
        self.limit = limit or RateLimit()
        self._refusal_buckets: dict[str, _Bucket] = {}
        #: refusals not logged one by one, per source, since its last logged one
        self.unlogged: dict[str, int] = {}
        self.queue: deque[Request] = deque()
        self.estops: list[Request] = []
        self.taken = 0
        self.rate_limited = 0
        self._buckets: dict[str, _Bucket] = {}
        #: limits shared by several sources (`take(..., ceiling=)`): two sources' worth, and
        #: shared fairly (`_within_ceiling`): however many flood, none starves another
        self.ceiling_limit = RateLimit(per_s=2 * self.limit.per_s, burst=2 * self.limit.burst)
        self._ceilings: dict[str, _Bucket] = {}
        #: per ceiling, what each source sharing it has taken lately (a level that drains at
        #: its fair share's rate), from its first command until it is forgotten
        self._taken_lately: dict[str, dict[str, _Bucket]] = {}
        #: sources held to another limit than `limit` (`limit_source`)
        self._limits: dict[str, RateLimit] = {}
        self._work = trio.Event()
        self._stop = trio.Event()
        self._closed = False

    # -- the synchronous half: parse, recognise an e-stop, rate-limit, queue ----------------
    def take(
        self, raw: bytes | str | Mapping[str, Any], source: str, *, ceiling: str | None = None
    ) -> Request:
        """Read one command from `source` now. Never raises; the Request says what became of it.

        `ceiling` names a limit `source` shares with others (e.g. every console connection
        of the class): a command spends from its source's bucket and from that shared one,
        so opening more connections cannot multiply the rate; when the shared one is spent,
        only sources that took more than their fair share are refused (`_within_ceiling`).
        E-stops spend from neither.
        """
        self.taken += 1
        request_id: str | None = None
        if says_estop(raw):  # recognised before anything else is checked: stop first
            try:
                request_id = _request_id(decode(raw))
            except CommandRefused as e:
                request_id = e.request_id
            except (TypeError, ValueError):
                request_id = None
            request = Request(source, request_id, EmergencyStop())
            if self._closed:
                request.finish(CommandResult(True, "estop", "the class has ended"))
                return request
            self.session.latch_estop()
            self.estops.append(request)
            self._stop.set()
            return request
        try:
            data = decode(raw)
            request_id = _request_id(data)
            data.pop("id", None)
            if data.get("do") == "estop":  # (says_estop saw it already; kept for clarity)
                request = Request(source, request_id, EmergencyStop())
                if self._closed:
                    request.finish(CommandResult(True, "estop", "the class has ended"))
                    return request
                self.session.latch_estop()
                self.estops.append(request)
                self._stop.set()
                return request
            command = parse_command(data)
        except CommandRefused as e:
            request_id = request_id or e.request_id
            # what cannot be carried out counts against the source's rate too
            spent = self._over(source, ceiling) is not None
            return self._refuse(Request(source, request_id, None, over_limit=spent), str(e))
        request = Request(source, request_id, command)
        why = self._over(source, ceiling)  # every command spends, a stop too
        request.over_limit = why is not None
        if self._closed:
            return self._refuse(request, "the class has ended")
        if why is not None and command.do not in NEVER_LIMITED:
            self.rate_limited += 1
            return self._refuse(request, why)
        self.queue.append(request)
        self._work.set()
        return request

    def refuse(
        self, raw: bytes | str, source: str, reason: str, *, limited: bool = False
    ) -> Request:
        """Answer input an interface will not carry out (e.g. a retained MQTT message).

        `limited`: the refusal spends from `source`'s rate limit like a command
        (past it the Request is `over_limit`, so an interface may answer such
        refusals together).
        """
        request_id = None
        try:
            request_id = _request_id(decode(raw))
        except CommandRefused as e:
            request_id = e.request_id
        over = limited and self._over(source) is not None
        return self._refuse(Request(source, request_id, None, over_limit=over), reason)

    def _refuse(self, request: Request, reason: str) -> Request:
        name = request.command.do if request.command is not None else None
        source = request.source
        if _spend(self._refusal_buckets, source, self.REFUSALS_LOGGED):
            self._log_unlogged(source)
            self.session.emit(
                "command_refused",
                f"{name or 'command'} from {source} refused: {reason}",
                source=source,
            )
        else:  # a flood: counted, logged as one line later
            self.unlogged[source] = self.unlogged.get(source, 0) + 1
        request.finish(CommandResult(False, name or "", reason))
        return request

    def _log_unlogged(self, source: str) -> None:
        n = self.unlogged.pop(source, 0)
        if n:
            self.session.emit(
                "command_refused",
                f"{n} more commands from {printable(source, MAX_ID)} refused"
                " (too many to log one by one)",
                source=source,
                count=n,
            )

    def _over(self, source: str, ceiling: str | None = None) -> str | None:
        """Spend one command from `source` (and its shared `ceiling`); why not, when over."""
        limit = self.limit_of(source)
        if not _spend(self._buckets, source, limit):
            return (
                f"more than {limit.burst} commands at once or {limit.per_s:g} a second "
                f"from {source}; this one was not carried out"
            )
        if ceiling is not None and not self._within_ceiling(source, ceiling):
            share, whole = self.fair_share(ceiling), self.ceiling_limit
            return (
                f"more than {whole.burst} commands at once or {whole.per_s:g} a second "
                f"from {ceiling} together, and {source} took more than its fair share "
                f"({share.burst} at once, {share.per_s:.3g} a second: the limit shared by "
                f"{len(self._taken_lately[ceiling])}); this one was not carried out"
            )
        return None

    def fair_share(self, ceiling: str) -> RateLimit:
        """The part of `ceiling` each source sharing it may count on: split evenly."""
        n = max(1, len(self._taken_lately.get(ceiling, {})))
        whole = self.ceiling_limit
        return RateLimit(per_s=whole.per_s / n, burst=max(1, whole.burst // n))

    def _within_ceiling(self, source: str, ceiling: str) -> bool:
        """Spend one command of `ceiling` for `source`; False when it may not.

        The ceiling is one bucket all its sources spend from, so more sources (e.g. more
        console connections) never bring more rate. When it is spent, a source that has
        taken lately no more than its fair share (`fair_share`: the ceiling split among
        the n sources sharing it) is still let through, the bucket going into debt; only
        sources past their share are refused. Why: with one bucket alone, a few sources
        flooding at their own limit spent it all and starved the rest (the session-5
        review's M2: 4 flooding console connections refused 7 of 20 of a trainer's "turn
        client 1 down"). Shares, rather than a bucket per source, because the ceiling
        stays whole for a lone busy page, and a share is only claimed against floods.
        The shares' rates add up to the ceiling's, so the debt stays below one ceiling's
        burst (it is floored there): the sources together never carry out more than two
        bursts at once plus the ceiling's rate. At most 8 consoles steer: a share is at
        least 10 at once and 5 a second, far above a trainer tapping at a human pace.
        """
        now = trio.current_time()
        whole = self.ceiling_limit
        pool = self._ceilings.get(ceiling)
        if pool is None:
            pool = self._ceilings[ceiling] = _Bucket(float(whole.burst), now)
        pool.tokens = min(float(whole.burst), pool.tokens + (now - pool.at) * whole.per_s)
        pool.at = now
        lately = self._taken_lately.setdefault(ceiling, {})
        mine = lately.get(source)
        if mine is None:
            mine = lately[source] = _Bucket(0.0, now)
        share = self.fair_share(ceiling)
        mine.tokens = max(0.0, mine.tokens - (now - mine.at) * share.per_s)
        mine.at = now
        within_share = mine.tokens + 1.0 <= share.burst and pool.tokens - 1.0 >= -whole.burst
        if pool.tokens < 1.0 and not within_share:
            return False
        pool.tokens -= 1.0
        mine.tokens += 1.0
        return True

    def limit_of(self, source: str) -> RateLimit:
        """The rate limit `source` is held to (the desk's `limit` unless `limit_source` said)."""
        return self._limits.get(source, self.limit)

    def limit_source(self, source: str, limit: RateLimit) -> None:
        """Hold `source` to `limit` from now on, until it is forgotten (what it has spent
        stays spent: a new limit never refills a bucket)."""
        bucket = self._buckets.get(source)
        if bucket is not None:  # refilled at the old rate until now, then the new limit
            now, old = trio.current_time(), self.limit_of(source)
            refilled = min(float(old.burst), bucket.tokens + (now - bucket.at) * old.per_s)
            bucket.tokens, bucket.at = min(refilled, float(limit.burst)), now
        self._limits[source] = limit

    def rested(self, source: str) -> bool:
        """True when `source`'s bucket is full (or it has none): forgetting it loses nothing."""
        bucket = self._buckets.get(source)
        if bucket is None:
            return True
        limit = self.limit_of(source)
        refilled = bucket.tokens + (trio.current_time() - bucket.at) * limit.per_s
        return refilled >= float(limit.burst)

    def forget(self, source: str) -> None:
        """Drop a rested source's bucket (its refusals not yet logged are logged now)."""
        if not self.rested(source):
            raise ValueError(f"{source} is still within its rate limit's window")
        self._log_unlogged(source)
        self._buckets.pop(source, None)
        self._limits.pop(source, None)
        for lately in self._taken_lately.values():
            lately.pop(source, None)
        self._refusal_buckets.pop(source, None)

    # -- the desk's tasks ---------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send e-stops the moment they are taken; carry out the queue in order. Until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stopper)
            task_status.started()
            while True:
                while not self.queue:
                    self._work = trio.Event()
                    await self._work.wait()
                request = self.queue.popleft()
                assert request.command is not None
                request.finish(await self.session.execute(request.command, request.source))
                await trio.lowlevel.checkpoint()  # an e-stop taken meanwhile goes first

    async def _stopper(self) -> None:
        while True:
            await self._stop.wait()
            self._stop = trio.Event()
            waiting, self.estops = self.estops, []
            await self.session.emergency_stop()
            for request in waiting:
                request.finish(
                    self.session.record_command(request.command or EmergencyStop(), request.source)
                )

    def close(self) -> None:
        """The class has ended: answer everything still waiting (e-stops: already stopped)."""
        self._closed = True
        for request in self.estops:
            request.finish(CommandResult(True, "estop", "every suit was told to stop"))
        self.estops = []
        while self.queue:
            self._refuse(self.queue.popleft(), "the class ended before its turn")
        for source in list(self.unlogged):
            self._log_unlogged(source)


def _spend(buckets: dict[str, _Bucket], source: str, limit: RateLimit) -> bool:
    """Take one token from `source`'s bucket; False when it is empty."""
    now = trio.current_time()
    bucket = buckets.get(source)
    if bucket is None:
        bucket = buckets[source] = _Bucket(float(limit.burst), now)
    bucket.tokens = min(float(limit.burst), bucket.tokens + (now - bucket.at) * limit.per_s)
    bucket.at = now
    if bucket.tokens < 1.0:
        return False
    bucket.tokens -= 1.0
    return True


async def submit(
    session: ClassSession, raw: bytes | str | Mapping[str, Any], source: str
) -> CommandResult:
    """The one entry for every interface: take `raw` from `source` and wait for its result.

    `raw` is JSON (bytes or text) or an already decoded mapping (an actions
    file's entry); `source` names the interface connection (`web:3`,
    `mqtt:tablet-7`, `actions:class.yaml`): rate limits are per source. Never
    raises for anything in `raw`; the returned Request carries `request_id`
    (the input's `id`, if it could be read).
    """
    return await session.desk.take(raw, source).wait()
