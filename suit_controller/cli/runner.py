"""Running a class from the command line: check-in, companions, the live view, signals.

Shared by `suitctl sim run` (simulated suits) and `suitctl class run` (real suits).
"""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import urlencode

import click
import trio
import trio_asyncio
from rich.console import Console
from rich.live import Live

from channels.layouts import SuitLayout
from channels.user_files import UserFileTooBig, read_user_file
from suit_controller.cli.clients import open_store
from suit_controller.cli.errors import EXIT_INVALID, err_console, shown
from suit_controller.cli.live import ClassView
from suit_controller.cli.roster import CheckIn, ClassRefused, check_in
from suit_controller.clients import ClientSpec
from suit_controller.commands import printable, refuse_unshowable
from suit_controller.mqtt import BrokerUrl, MqttConfigError, Topics
from suit_controller.mqtt.bridge import MqttBridge, recorded_ids
from suit_controller.mqtt.broker_check import broker_refuses_v5
from suit_controller.records import SessionEvent
from suit_controller.session import ClassSession
from suit_controller.studio.library import Library
from suit_controller.studio.recorder import SessionRecorder
from suit_controller.studio.screening import DEFAULT_POLICY
from suit_controller.studio.store import CheckInRefused, OpenedClass, Store, StoreError
from suit_controller.ticks import settled_memory
from workouts.library import BUILTIN_PREFIX, builtin_text

console = Console(soft_wrap=True)
#: Event kinds printed as lines when the output is not a terminal.
LOGGED = {
    "client_request",
    "segment",
    "estop",
    "ended",
    "link_lost",
    "link_up",
    "command",
    "command_refused",
    "fault",
    "suit_safe_state",
    "limit",
    "suit_refused",
    "suit_key_mismatch",
    "controller_late",
    "program_unconfirmed",
    "suit_clamped",
    "slowed_down",
}


class RunnableClass(Protocol):
    """What `drive` needs: a session, a run coroutine, and a record writer."""

    session: ClassSession
    #: The tasks beside the class its `run` starts (none when the engine has a thread of its own).
    companions: Sequence[Callable[..., Awaitable[Any]]]

    async def run(self) -> str: ...

    def write_record(self, out_dir: Path) -> Path: ...

    def record(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ClassRecords:
    """Where a class is recorded: the studio database and the class opened in it."""

    location: str
    opened: OpenedClass

    def discard_if_unstarted(self) -> bool:
        """Remove the class from the records if it never started; whether it was.

        `Store.discard_class` removes only a class still `running` with nothing
        recorded, so this is a no-op for a class that ran (closed, or interrupted
        with its record kept up to its last write).
        """
        store = Store(self.location)
        try:
            return store.discard_class(self.opened)
        finally:
            store.close()


@contextlib.contextmanager
def unstarted_class_discarded(records: ClassRecords | None) -> Iterator[None]:
    """Run a class's set-up and run; a class that failed before it started leaves no record.

    Without it, a command that opens the class in the records and then fails
    (a bad `--mqtt` URL, a console address in use) left the class `running` and
    its clients held by the rest-day rule for a class that stimulated nobody.
    """
    try:
        yield
    finally:
        if records is not None:
            try:
                records.discard_if_unstarted()
            except StoreError as e:
                err_console.print(f"[yellow]note[/]: {shown(str(e))}", highlight=False)


def keep_version(store: Store, ref: str, title: str, trainers: Sequence[str]) -> str:
    """The hash of the exact text of `ref` (a file or `builtin:NAME`), kept in the library."""
    if ref.startswith(BUILTIN_PREFIX):
        text, builtin = builtin_text(ref.removeprefix(BUILTIN_PREFIX)), ref
    else:
        try:
            text, builtin = read_user_file(ref, "a workout file").decode("utf-8"), None
        except (OSError, UnicodeDecodeError, UserFileTooBig) as e:
            raise StoreError(f"cannot read {ref} again to record it: {e}") from None
    by = trainers[0] if trainers else "suitctl"
    return Library(store).keep_run(text, title, by, builtin=builtin)


def check_in_or_exit(
    db_location: str | None,
    arrivals: Sequence[tuple[str, str]],
    trainers: Sequence[str],
    ate_recently: Sequence[str],
    layout: SuitLayout,
    intensity_mA: float,
    *,
    workout: str,
    simulated: bool,
    room: str | None = None,
    workout_ref: str | None = None,
) -> tuple[list[ClientSpec], ClassRecords]:
    """Check every client in (S5, S7) and open the class in the records, or print why not.

    A simulated class (`sim run`) stimulates nobody: the rest-day rule does not
    refuse it, and its sessions are recorded as simulated (they never count for
    that rule). A real class is checked again when it is opened, in the same
    transaction that records it (`Store.open_class`): another room may have
    checked the same client in a moment ago.
    """
    names = [n for n, _ in arrivals]
    for what, texts in (
        ("--client", names),
        ("--trainer", list(trainers)),
        ("--room", [room or ""]),
    ):
        for text in texts:
            try:
                refuse_unshowable(text, f"{what} '{printable(text)}'")
            except ValueError as e:
                raise click.UsageError(str(e)) from None
    unknown = set(ate_recently) - set(names)
    if unknown:
        raise click.UsageError(f"--ate-recently names no client of this class: {sorted(unknown)}")
    policy = replace(DEFAULT_POLICY, min_days_between_sessions=0) if simulated else DEFAULT_POLICY
    store = open_store(db_location)
    try:
        specs, roster, guidance = check_in(
            store,
            [CheckIn(n, suit, n in ate_recently) for n, suit in arrivals],
            list(trainers),
            layout,
            default_intensity_mA=intensity_mA,
            policy=policy,
        )
        version = (
            None if workout_ref is None else keep_version(store, workout_ref, workout, trainers)
        )
        opened = store.open_class(
            workout, roster, simulated=simulated, room=room, policy=policy, workout_hash=version
        )
    except (ClassRefused, CheckInRefused) as e:
        err_console.print("[red]the class cannot start[/]:")
        for reason in e.reasons:
            err_console.print(f"  - {shown(reason)}", highlight=False)
        sys.exit(EXIT_INVALID)
    except StoreError as e:
        err_console.print(f"[red]error[/]: {shown(str(e))}", highlight=False)
        sys.exit(EXIT_INVALID)
    finally:
        location = store.location
        store.close()
    for line in guidance:
        console.print(f"[cyan]guidance[/] {shown(line)}", highlight=False)
    if simulated:
        console.print(
            "recorded as a simulated class: it does not count for the rest-day rule",
            highlight=False,
        )
    return specs, ClassRecords(location, opened)


web_option = click.option(
    "--web",
    "web",
    is_flag=False,
    flag_value="127.0.0.1:0",
    default=None,
    metavar="[HOST:PORT]",
    help="Serve the trainer's console (default 127.0.0.1 on a free port). Binding to the LAN "
    "needs the access token shown as a URL and QR code.",
)


def mqtt_tls_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--mqtt-ca, --mqtt-cert and --mqtt-key (or SUITCTL_MQTT_CA, _CERT, _KEY).

    They are folded into the `--mqtt` URL's `?ca=&cert=&key=`, so a command
    that takes `mqtt_url` needs nothing else.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        files = {k: kwargs.pop(f"mqtt_{k}") for k in ("ca", "cert", "key")}
        given = {k: v for k, v in files.items() if v}
        if given:
            if not kwargs.get("mqtt_url"):
                raise click.UsageError("--mqtt-ca, --mqtt-cert and --mqtt-key need --mqtt")
            url = kwargs["mqtt_url"]
            kwargs["mqtt_url"] = url + ("&" if "?" in url else "?") + urlencode(given)
        return command(*args, **kwargs)

    for name, what in (
        ("key", "the client certificate's private key (PEM)"),
        ("cert", "a client certificate (PEM) for brokers with require_certificate"),
        ("ca", "the CA (PEM) that signed the broker's certificate"),
    ):
        wrapper = click.option(
            f"--mqtt-{name}",
            f"mqtt_{name}",
            metavar="FILE",
            envvar=f"SUITCTL_MQTT_{name.upper()}",
            help=f"With an mqtts:// broker: {what}.",
        )(wrapper)
    return wrapper


def parse_bind(text: str) -> tuple[str, int]:
    """`HOST:PORT`, `HOST` or `:PORT` -> (host, port); port 0 picks a free one."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, "0"
    try:
        number = int(port)
    except ValueError:
        raise click.UsageError(f"--web takes HOST:PORT, not {text!r}") from None
    if not 0 <= number <= 65535:
        raise click.UsageError(f"--web port {number} is out of range")
    return host or "127.0.0.1", number


def web_companion(session: ClassSession, bind: str) -> Callable[..., Awaitable[None]]:
    """Serve the console beside the class; print its URL (and a QR code on the LAN)."""
    from suit_controller.web.app import is_loopback, new_token, serve_console

    host, port = parse_bind(bind)
    token = None if is_loopback(host) else new_token()

    async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_console, session, host, port, token)
            console.print(f"trainer's console: {url}", highlight=False, soft_wrap=True)
            if token is not None:
                import io

                import qrcode

                qr = qrcode.QRCode(border=1)
                qr.add_data(url)
                buf = io.StringIO()
                qr.print_ascii(out=buf)
                console.print(buf.getvalue(), highlight=False)
            task_status.started()

    return run


Faces = Callable[[ClassSession], list[Callable[..., Awaitable[None]]]]


def companions_for(
    records: ClassRecords | None,
    mqtt_url: str | None,
    site: str,
    room: str,
    web: str | None = None,
) -> Faces:
    """The tasks that run beside a class (the session recorder, the MQTT bridge, the
    console), made for the session they serve: the class's own, or the faces' stand-in
    when the engine has a thread of its own (`drive`). A bad `--mqtt` is told here, before
    anything runs."""
    mqtt: tuple[BrokerUrl, Topics] | None = None
    if mqtt_url:
        try:
            mqtt = BrokerUrl.parse(mqtt_url), Topics.for_room(site, room)
        except MqttConfigError as e:
            raise click.UsageError(str(e)) from None
        refused = broker_refuses_v5(mqtt[0])
        if refused is not None:  # no class on a broker that would run retained commands (F1)
            raise click.ClickException(refused)
        console.print(
            f"MQTT: {shown(str(mqtt[0]))} under {shown(mqtt[1].prefix)}/", highlight=False
        )
        console.print(f"MQTT: {mqtt[1].where_to_send()}", highlight=False, soft_wrap=True)

    def faces(session: ClassSession) -> list[Callable[..., Awaitable[None]]]:
        out: list[Callable[..., Awaitable[None]]] = []
        if web is not None:
            out.append(web_companion(session, web))
        if records is not None:
            out.append(SessionRecorder(records.location, session, records.opened).run)
        if mqtt is not None:
            ids, store = None, None
            if records is not None:  # ids the records know, and earlier classes to replay
                ids, store = recorded_ids(records.location, records.opened.id), records.location
            out.append(MqttBridge(session, mqtt[0], mqtt[1], ids=ids, store=store).run)
        return out

    return faces


async def _cancel_on_signal(scope: trio.CancelScope, terminated: dict[str, int]) -> None:
    """SIGTERM or SIGHUP end the class like Ctrl-C does: every suit stops first."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            terminated["by"] = signum
            scope.cancel()
            return


def drive(
    klass: RunnableClass,
    out: Path,
    *,
    clock: trio.abc.Clock | None,
    mode: str,
    refresh_s: float,
    asyncio_loop: bool,
    faces: Faces | None = None,
    own_thread: bool = False,
    engine_asyncio: bool = False,
) -> int:
    """Run a class with the live view (or event lines), write its record; the exit code.

    `faces(session)` makes the tasks that run beside the class (console, recorder,
    MQTT bridge: `companions_for`). With `own_thread` the engine (the session, its
    drivers and links, the simulated suits) runs in a thread of its own with its own
    Trio loop and `clock` (`open_engine_thread`), and the faces and the terminal view
    in this one, served from the engine's publications: a busy console or a slow
    terminal never delays a tick (issue 15). `engine_asyncio` opens an asyncio loop
    in the engine's thread (bleak's links); `asyncio_loop` one in the faces' (aiomqtt).
    Without `own_thread` everything shares one loop (virtual time: nothing waits for
    the wall clock, so nothing is gained).
    """
    view = ClassView(mode)
    live = console.is_terminal

    def on_event(e: SessionEvent) -> None:
        if e.kind not in LOGGED or (e.kind == "command" and e.data.get("source") == "engine"):
            return
        who = f"{e.client}: " if e.client else ""
        # what a user wrote (names, ids, file names) never reaches the terminal raw
        line = printable(f"[{int(e.t) // 60:02d}:{e.t % 60:04.1f}] {who}{e.message}", 4000)
        if live:
            view.add_event(line)
        else:
            console.print(line, highlight=False, markup=False)

    live_display: Live | None = None
    shown_from: list[ClassSession] = [
        klass.session
    ]  # what the view reads: the session or its faces

    async def refresher() -> None:
        # At most 4 times a second of wall time, in the faces' loop (the engine's own when
        # they share one): a render thread of its own would fight the engine for the GIL.
        last = 0.0
        while True:
            wall = time.monotonic()
            if live_display is not None and wall - last >= 0.25:
                last = wall
                view.snapshot = shown_from[0].snapshot()
                live_display.refresh()
            await trio.sleep(refresh_s if not own_thread else 0.25)

    async def screen(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await refresher()

    terminated = {"by": 0}

    async def class_with_companions() -> None:
        klass.session.events.subscribe(on_event)
        if faces is not None:
            klass.companions = faces(klass.session)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signal, nursery.cancel_scope, terminated)
            if live:  # the screen is an interface: its failure never ends the class
                await nursery.start(klass.session.companion, "the terminal screen", screen)
            await klass.run()
            nursery.cancel_scope.cancel()

    async def engine() -> str:  # in the engine's thread
        if engine_asyncio:
            async with trio_asyncio.open_loop():
                return await klass.run()
        return await klass.run()

    async def class_in_its_own_thread() -> None:
        from suit_controller.engine_thread import FacesSession, open_engine_thread

        klass.companions = ()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signal, nursery.cancel_scope, terminated)
            async with open_engine_thread(klass.session, engine, clock=clock, hold=True) as port:
                # the faces take a session: this stand-in serves them from the port
                seen = cast(ClassSession, FacesSession(port, klass.session))
                shown_from[0] = seen
                port.events.subscribe(on_event)
                if live:  # the screen is an interface: its failure never ends the class
                    await port.start_companion(screen, "the terminal screen")
                for face in faces(seen) if faces is not None else ():
                    await port.start_companion(face)
                port.go()  # every face is listening: the class starts
                await port.wait_finished()
            nursery.cancel_scope.cancel()

    async def main() -> None:
        run = class_in_its_own_thread if own_thread else class_with_companions
        if asyncio_loop:  # bleak and aiomqtt are asyncio libraries: a loop on top of Trio
            async with trio_asyncio.open_loop():
                await run()
        else:
            await run()

    interrupted = False
    try:
        if live:
            with (
                settled_memory(),  # no 100 ms garbage collection in the middle of the class
                Live(view, console=console, auto_refresh=False, transient=False) as live_display,
            ):
                trio.run(main, clock=None if own_thread else clock)
        else:
            with settled_memory():
                trio.run(main, clock=None if own_thread else clock)
    except* KeyboardInterrupt:  # Trio raises it inside an exception group
        interrupted = True
    finally:
        path = klass.write_record(out)
    summary(klass.record(), path)
    if interrupted:
        return 128 + signal.SIGINT
    if terminated["by"]:
        return 128 + terminated["by"]
    return 0


def summary(rec: dict[str, Any], path: Path) -> None:
    console.print(
        f"class [bold]{rec['ended']}[/] after {rec['class_s'] / 60:.1f} min "
        f"({rec['ticks']} ticks); record: {path}"
    )
    slowed = [e for e in rec["events"] if e["kind"] == "slowed_down"]
    if slowed:
        first, last = slowed[0]["data"], slowed[-1]["data"]
        console.print(
            f"[yellow]slowed down[/] from {first['previous_speed']:g}× to {last['speed']:g}×: "
            "this computer could not keep up"
            + ("; the whole plan was played" if rec["ended"] == "finished" else ""),
            highlight=False,
        )
    for c in rec["clients"]:
        stim = max(ch["stim_s"] for ch in c["channels"].values())
        peak = max(ch["max_mA"] for ch in c["channels"].values())
        charge = sum(ch["charge_uC"] for ch in c["channels"].values()) / 1000
        console.print(
            f"  {shown(c['name'])} ({shown(c['suit'])}): up to {stim / 60:.1f} min stimulated per "
            f"channel, peak {peak:g} mA, {charge:.0f} mC in all, "
            f"{c['reconnects']} reconnects",
            highlight=False,
        )
