"""`suitctl sim …`: run a class against simulated suits."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import click
import numpy as np
import trio
import trio.testing
import trio_asyncio
from rich.console import Console
from rich.live import Live

from sim.body import make_population, simulate_body
from sim.body.document import body_document, plan_segments
from sim.faults import FaultSpecError, parse_faults
from sim.plan_mode import planned_delivery
from sim.report import write_report
from suit_controller.actions import ActionsError, load_actions_file
from suit_controller.cli.clients import db_option, open_store
from suit_controller.cli.errors import EXIT_INVALID, EXIT_USAGE, err_console, open_workout
from suit_controller.cli.live import ClassView
from suit_controller.cli.roster import CheckIn, ClassRefused, check_in
from suit_controller.cli.simclass import SimulatedClass
from suit_controller.clients import ClientSpec
from suit_controller.mqtt import BrokerUrl, MqttConfigError, Topics
from suit_controller.mqtt.bridge import MqttBridge
from suit_controller.records import SessionEvent
from suit_controller.studio.recorder import RosterEntry, SessionRecorder

console = Console(soft_wrap=True)
#: Event kinds printed as lines when the output is not a terminal.
LOGGED = {
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
}


@click.group()
def sim() -> None:
    """Run classes against simulated suits (and, later, simulated bodies)."""


@sim.command("run")
@click.argument("workout_ref", metavar="WORKOUT")
@click.option("--clients", "n_clients", type=click.IntRange(1, 500), default=4, show_default=True)
@click.option("--virtual", is_flag=True, help="Virtual time: a 35-minute class runs in seconds.")
@click.option("--speed", type=click.FloatRange(min=0.01), help="Run X times faster than real time.")
@click.option(
    "--rate",
    "rate_hz",
    type=click.FloatRange(1, 200),
    default=40.0,
    show_default=True,
    help="Engine ticks per second.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--intensity",
    "intensity_mA",
    type=click.FloatRange(0, 120),
    default=40.0,
    show_default=True,
    help="Starting target intensity of every channel, mA.",
)
@click.option(
    "--actions",
    "actions_file",
    type=click.Path(dir_okay=False),
    help="YAML list of timed trainer commands.",
)
@click.option("--faults", "faults_spec", default="", help="e.g. 'drop:client=2,at=8m,for=5s'.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Where session.json goes.")
@click.option(
    "--client",
    "client_names",
    multiple=True,
    metavar="NAME",
    help="A client from the studio's records (repeatable): checks the rules and "
    "records the session.",
)
@click.option(
    "--trainer",
    "trainers",
    multiple=True,
    metavar="NAME",
    help="A supervising trainer (repeatable; at most 2 clients each).",
)
@click.option(
    "--ate-recently",
    "ate_recently",
    multiple=True,
    metavar="NAME",
    help="A client who ate less than 1.5 h ago: abdominal channels stay off.",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    metavar="URL",
    help="Publish the class to an MQTT broker and take commands from it "
    "(mqtt://user:password@host:port or mqtts://…).",
)
@click.option(
    "--site", default="studio", show_default=True, help="MQTT topic prefix: ems/SITE/ROOM."
)
@click.option("--room", default="room-1", show_default=True)
@db_option
def run(
    workout_ref: str,
    n_clients: int,
    virtual: bool,
    speed: float | None,
    rate_hz: float,
    seed: int,
    intensity_mA: float,
    actions_file: str | None,
    faults_spec: str,
    out_dir: str | None,
    client_names: tuple[str, ...],
    trainers: tuple[str, ...],
    ate_recently: tuple[str, ...],
    mqtt_url: str | None,
    site: str,
    room: str,
    db_path: Path | None,
) -> None:
    """Run the real engine against N simulated suits and write DIR/session.json."""
    if virtual and speed is not None:
        raise click.UsageError("--virtual and --speed exclude each other")
    _, plan = open_workout(workout_ref)
    specs, db = None, None
    roster: list[RosterEntry] = []
    if client_names:
        n_clients = len(client_names)
        unknown = set(ate_recently) - set(client_names)
        if unknown:
            raise click.UsageError(
                f"--ate-recently names no client of this class: {sorted(unknown)}"
            )
        store = open_store(db_path)
        arrivals = [
            CheckIn(name, f"SIM-{i + 1:02d}", name in ate_recently)
            for i, name in enumerate(client_names)
        ]
        try:
            specs, roster, guidance = check_in(
                store, arrivals, list(trainers), plan.layout, default_intensity_mA=intensity_mA
            )
        except ClassRefused as e:
            err_console.print("[red]the class cannot start[/]:")
            for reason in e.reasons:
                err_console.print(f"  - {reason}", highlight=False)
            sys.exit(EXIT_INVALID)
        for line in guidance:
            console.print(f"[cyan]guidance[/] {line}", highlight=False)
        db = store.path
        store.close()
    try:
        actions = load_actions_file(actions_file) if actions_file else []
        faults = parse_faults(faults_spec)
    except OSError as e:
        err_console.print(f"[red]error[/]: cannot read {actions_file}: {e.strerror or e}")
        sys.exit(EXIT_USAGE)
    except (ActionsError, FaultSpecError) as e:
        err_console.print(f"[red]error[/]: {e}")
        sys.exit(EXIT_INVALID)
    out = (
        Path(out_dir) if out_dir else Path("out") / dt.datetime.now().strftime("sim-%Y%m%d-%H%M%S")
    )
    simclass = SimulatedClass(
        plan,
        n_clients,
        intensity_mA=intensity_mA,
        rate_hz=rate_hz,
        seed=seed,
        actions=actions,
        faults=faults,
        clients=specs,
    )
    companions: list[Callable[..., Awaitable[None]]] = []
    if db is not None:
        companions.append(SessionRecorder(db, simclass.session, roster).run)
    if mqtt_url:
        try:
            broker, topics = BrokerUrl.parse(mqtt_url), Topics.for_room(site, room)
        except MqttConfigError as e:
            raise click.UsageError(str(e)) from None
        companions.append(MqttBridge(simclass.session, broker, topics).run)
        console.print(f"MQTT: {broker} under {topics.prefix}/", highlight=False)
    simclass.companions = companions
    if virtual:
        clock: trio.abc.Clock | None = trio.testing.MockClock(autojump_threshold=0)
        mode, refresh_s = "virtual time", 1.0
    elif speed is not None:
        clock = trio.testing.MockClock(rate=speed)
        mode, refresh_s = f"{speed:g}× speed", 0.25 * speed
    else:
        clock, mode, refresh_s = None, "real time", 0.25
    view = ClassView(mode)
    live = console.is_terminal

    def on_event(e: SessionEvent) -> None:
        if e.kind not in LOGGED or (e.kind == "command" and e.data.get("source") == "engine"):
            return
        who = f"{e.client}: " if e.client else ""
        line = f"[{int(e.t) // 60:02d}:{e.t % 60:04.1f}] {who}{e.message}"
        if live:
            view.add_event(line)
        else:
            console.print(line, highlight=False, markup=False)

    simclass.session.events.subscribe(on_event)

    live_display: Live | None = None

    async def refresher() -> None:
        # Render in the engine's thread, at most 4 times a second of wall time: a render
        # thread would fight the engine for the GIL and make ticks late.
        last = 0.0
        while True:
            wall = time.monotonic()
            if live_display is not None and wall - last >= 0.25:
                last = wall
                view.snapshot = simclass.session.snapshot()
                live_display.refresh()
            await trio.sleep(refresh_s)

    terminated = {"by": 0}

    async def class_with_companions() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_signal, nursery.cancel_scope, terminated)
            if live:
                nursery.start_soon(refresher)
            await simclass.run()
            nursery.cancel_scope.cancel()

    async def main() -> None:
        if mqtt_url:  # aiomqtt is asyncio: give it a loop on top of Trio
            async with trio_asyncio.open_loop():
                await class_with_companions()
        else:
            await class_with_companions()

    interrupted = False
    try:
        if live:
            with Live(view, console=console, auto_refresh=False, transient=False) as live_display:
                trio.run(main, clock=clock)
        else:
            trio.run(main, clock=clock)
    except* KeyboardInterrupt:  # Trio raises it inside an exception group
        interrupted = True
    finally:
        path = simclass.write_record(out)
    _summary(simclass, path)
    _write_report(path.parent)
    if interrupted:
        sys.exit(128 + signal.SIGINT)
    if terminated["by"]:
        sys.exit(128 + terminated["by"])


async def _cancel_on_signal(scope: trio.CancelScope, terminated: dict[str, int]) -> None:
    """SIGTERM or SIGHUP end the class like Ctrl-C does: every suit stops first."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGHUP) as signals:
        async for signum in signals:
            terminated["by"] = signum
            scope.cancel()
            return


def _write_report(out: Path) -> None:
    doc = json.loads((out / "session.json").read_text(encoding="utf-8"))
    if "body" not in doc:
        return
    path = write_report(doc, out)
    console.print(f"report: {path}")
    for w in doc["body"]["warnings"][:10]:
        console.print(f"  [yellow]warning[/] {w['message']}", highlight=False)
    if len(doc["body"]["warnings"]) > 10:
        console.print(f"  … and {len(doc['body']['warnings']) - 10} more in the report")


@sim.command("plan")
@click.argument("workout_ref", metavar="WORKOUT")
@click.option("--clients", "n_clients", type=click.IntRange(1, 500), default=4, show_default=True)
@click.option(
    "--intensity",
    "intensity_mA",
    type=click.FloatRange(0, 120),
    default=40.0,
    show_default=True,
    help="Target intensity of every channel, mA.",
)
@click.option("--first-session", is_flag=True, help="Every client is in their first session.")
@click.option("--rate", "rate_hz", type=click.FloatRange(1, 200), default=40.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Where the report goes.")
def plan_cmd(
    workout_ref: str,
    n_clients: int,
    intensity_mA: float,
    first_session: bool,
    rate_hz: float,
    seed: int,
    out_dir: str | None,
) -> None:
    """Evaluate the plan and the simulated bodies for the whole class at once (no engine)."""
    _, plan = open_workout(workout_ref)
    t = time.perf_counter()
    specs = [
        ClientSpec(f"client-{i + 1}", intensity_mA=intensity_mA, first_session=first_session)
        for i in range(n_clients)
    ]
    targets = np.stack([c.targets(plan.layout) for c in specs])
    caps = np.stack([c.caps(plan.layout) for c in specs])
    delivery = planned_delivery(plan, targets, caps, rate_hz)
    result = simulate_body(
        delivery.currents_mA,
        delivery.tick_s,
        delivery.pulse_width_us,
        delivery.frequency_hz,
        make_population(n_clients, plan.layout, seed),
        plan.layout,
        [c.name for c in specs],
        [first_session] * n_clients,
    )
    doc = {
        "mode": "plan",
        "workout": plan.workout.name,
        "layout": plan.layout.name,
        "ended": "planned",
        "plan_s": plan.total_s,
        "rate_hz": rate_hz,
        "channels": list(plan.layout.names),
        "segments": plan_segments(plan),
        "body": body_document(result),
        "compute_s": round(time.perf_counter() - t, 2),
    }
    out = (
        Path(out_dir) if out_dir else Path("out") / dt.datetime.now().strftime("plan-%Y%m%d-%H%M%S")
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "session.json").write_text(json.dumps(doc), encoding="utf-8")
    console.print(
        f"planned {n_clients} client(s) over {plan.total_s / 60:.1f} min in "
        f"{doc['compute_s']} s; record: {out / 'session.json'}"
    )
    _write_report(out)


@sim.command("report")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, exists=True))
def report_cmd(out_dir: str) -> None:
    """Rebuild DIR/report.html from DIR/session.json."""
    path = Path(out_dir) / "session.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        err_console.print(f"[red]error[/]: cannot read {path}: {e.strerror or e}")
        sys.exit(EXIT_USAGE)
    except json.JSONDecodeError as e:
        err_console.print(f"[red]error[/]: {path} is not valid JSON: {e}")
        sys.exit(EXIT_INVALID)
    if not isinstance(doc, dict) or "body" not in doc:
        err_console.print(f"[red]error[/]: {path} has no simulated body to report on")
        sys.exit(EXIT_INVALID)
    _write_report(Path(out_dir))


def _summary(simclass: SimulatedClass, path: Path) -> None:
    rec = simclass.record()
    console.print(
        f"class [bold]{rec['ended']}[/] after {rec['class_s'] / 60:.1f} min "
        f"({rec['ticks']} ticks); record: {path}"
    )
    for c in rec["clients"]:
        stim = max(ch["stim_s"] for ch in c["channels"].values())
        peak = max(ch["max_mA"] for ch in c["channels"].values())
        charge = sum(ch["charge_uC"] for ch in c["channels"].values()) / 1000
        console.print(
            f"  {c['name']} ({c['suit']}): up to {stim / 60:.1f} min stimulated per "
            f"channel, peak {peak:g} mA, {charge:.0f} mC in all, "
            f"{c['reconnects']} reconnects",
            highlight=False,
        )


__all__ = ["sim"]
