"""`suitctl sim …`: run a class against simulated suits."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import trio
import trio.testing
from rich.console import Console

from sim.body import make_population, simulate_body
from sim.body.document import body_document, plan_segments
from sim.designer import Group, advice
from sim.faults import FaultSpecError, parse_faults
from sim.plan_mode import planned_delivery
from sim.report import write_report
from suit_controller.actions import ActionsError, load_actions_file
from suit_controller.cli.clients import db_option
from suit_controller.cli.errors import (
    EXIT_INVALID,
    EXIT_USAGE,
    FiniteFloatRange,
    err_console,
    open_workout,
    shown,
)
from suit_controller.cli.runner import (
    ClassRecords,
    check_in_or_exit,
    companions_for,
    drive,
    mqtt_tls_options,
    unstarted_class_discarded,
    web_option,
)
from suit_controller.clients import ClientSpec
from suit_controller.pace import Pace
from workouts.plan import Plan

console = Console(soft_wrap=True)


@click.group()
def sim() -> None:
    """Run classes against simulated suits (and, later, simulated bodies)."""


@sim.command("run")
@click.argument("workout_ref", metavar="WORKOUT")
@click.option("--clients", "n_clients", type=click.IntRange(1, 500), default=4, show_default=True)
@click.option("--virtual", is_flag=True, help="Virtual time: a 35-minute class runs in seconds.")
@click.option(
    "--speed",
    type=FiniteFloatRange(0.01, 1000),
    help="Run X times faster than real time (at most 1000).",
)
@click.option(
    "--rate",
    "rate_hz",
    type=FiniteFloatRange(1, 200),
    default=40.0,
    show_default=True,
    help="Engine ticks per second.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--intensity",
    "intensity_mA",
    type=FiniteFloatRange(0, 120),
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
    help="A client from the studio's records, by id, member id or name (repeatable): "
    "checks the rules and records the session as simulated.",
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
@click.option(
    "--link",
    type=click.Choice(["inprocess", "ble"]),
    default="inprocess",
    show_default=True,
    help="How the engine reaches the simulated suits: in-process, or bleak's API over "
    "a bumble Bluetooth host stack.",
)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="NAME",
    help="With --link ble: a simulated Bluetooth adapter (repeatable; suits spread over "
    "them, at most 10 connections each at a 7.5 ms interval: docs/radio.md).",
)
@click.option(
    "--enrolled",
    is_flag=True,
    help="Enroll every simulated suit first (docs/security.md): each gets a random key, "
    "every frame is signed with it, and unsigned frames are refused.",
)
@mqtt_tls_options
@web_option
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
    link: str,
    adapters: tuple[str, ...],
    enrolled: bool,
    web: str | None,
    db_path: str | None,
) -> None:
    """Run the real engine against N simulated suits and write DIR/session.json."""
    if virtual and speed is not None:
        raise click.UsageError("--virtual and --speed exclude each other")
    if adapters and link != "ble":
        raise click.UsageError("--adapter needs --link ble")
    if len(set(adapters)) != len(adapters):
        raise click.UsageError(f"--adapter: a name is given twice ({', '.join(adapters)})")
    _, plan = open_workout(workout_ref)
    try:
        actions = load_actions_file(actions_file, class_end_s=plan.total_s) if actions_file else []
        faults = parse_faults(
            faults_spec,
            len(client_names) if client_names else n_clients,
            class_end_s=plan.total_s,
        )
    except OSError as e:
        err_console.print(f"[red]error[/]: cannot read {actions_file}: {e.strerror or e}")
        sys.exit(EXIT_USAGE)
    except (ActionsError, FaultSpecError) as e:
        err_console.print(f"[red]error[/]: {shown(str(e))}", highlight=False)
        sys.exit(EXIT_INVALID)
    specs: list[ClientSpec] | None = None
    records: ClassRecords | None = None
    if client_names:  # last: the class is recorded from here on
        n_clients = len(client_names)
        specs, records = check_in_or_exit(
            db_path,
            [(name, f"SIM-{i + 1:02d}") for i, name in enumerate(client_names)],
            trainers,
            ate_recently,
            plan.layout,
            intensity_mA,
            workout=plan.workout.name,
            workout_ref=workout_ref,
            simulated=True,
            room=room,
        )
    with unstarted_class_discarded(records):  # not left `running` if it never starts
        faces = companions_for(records, mqtt_url, site, room, web)
        out = (
            Path(out_dir)
            if out_dir
            else Path("out") / dt.datetime.now().strftime("sim-%Y%m%d-%H%M%S")
        )
        # imported here: it brings the Bluetooth stack (bumble), which `sim plan` never needs
        from suit_controller.cli.simclass import SimulatedClass

        simclass = SimulatedClass(
            plan,
            n_clients,
            intensity_mA=intensity_mA,
            rate_hz=rate_hz,
            seed=seed,
            actions=actions,
            faults=faults,
            clients=specs,
            link=link,
            adapters=adapters or ("sim-hci0",),
            authenticated=enrolled,
            actions_source=f"actions:{Path(actions_file).name}" if actions_file else "actions",
        )
        if virtual:
            clock: trio.abc.Clock | None = trio.testing.MockClock(autojump_threshold=0)
            mode, refresh_s = "virtual time", 1.0
        elif speed is not None:
            clock = trio.testing.MockClock(rate=speed)
            mode, refresh_s = f"{speed:g}× speed", 0.25 * speed
            # slows the clock down, and says so, when this computer cannot keep up (issue 15)
            simclass.session.tick_observers.append(Pace(simclass.session, clock))
        else:
            clock, mode, refresh_s = None, "real time", 0.25
        exit_code = drive(
            simclass,
            out,
            clock=clock,
            mode=mode,
            refresh_s=refresh_s,
            asyncio_loop=bool(mqtt_url) or (link == "ble" and virtual),
            faces=faces,
            # in real time and at --speed the engine keeps time in a thread of its own
            own_thread=not virtual,
            engine_asyncio=link == "ble" and not virtual,
        )
    _write_report(out)
    if exit_code:
        sys.exit(exit_code)


def _write_report(out: Path, doc: dict[str, Any] | None = None) -> None:
    """Write the report from `doc`, or from `out/session.json` (not read again when given)."""
    if doc is None:
        doc = json.loads((out / "session.json").read_text(encoding="utf-8"))
    if "body" not in doc:
        return
    path = write_report(doc, out)
    console.print(f"report: {path}")
    for w in doc["body"]["warnings"][:10]:
        console.print(f"  [yellow]warning[/] {shown(w['message'])}", highlight=False)
    if len(doc["body"]["warnings"]) > 10:
        console.print(f"  … and {len(doc['body']['warnings']) - 10} more in the report")


@sim.command("plan")
@click.argument("workout_ref", metavar="WORKOUT")
@click.option("--clients", "n_clients", type=click.IntRange(1, 500), default=4, show_default=True)
@click.option(
    "--intensity",
    "intensity_mA",
    type=FiniteFloatRange(0, 120),
    default=40.0,
    show_default=True,
    help="Target intensity of every channel, mA.",
)
@click.option("--first-session", is_flag=True, help="Every client is in their first session.")
@click.option("--rate", "rate_hz", type=FiniteFloatRange(1, 200), default=40.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--compare",
    "compare_ref",
    metavar="WORKOUT",
    help="Another version to try on the same simulated group, side by side in the report.",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Where the report goes.")
def plan_cmd(
    workout_ref: str,
    n_clients: int,
    intensity_mA: float,
    first_session: bool,
    rate_hz: float,
    seed: int,
    compare_ref: str | None,
    out_dir: str | None,
) -> None:
    """Evaluate the plan and the simulated bodies for the whole class at once (no engine)."""
    _, plan = open_workout(workout_ref)
    other = open_workout(compare_ref)[1] if compare_ref else None
    t = time.perf_counter()
    doc = _plan_doc(plan, n_clients, intensity_mA, first_session, rate_hz, seed)
    if other is not None:
        theirs = _plan_doc(other, n_clients, intensity_mA, first_session, rate_hz, seed)
        doc["compare"] = {
            "workout": theirs["workout"],
            "trainer": theirs["trainer"],
            "max_cr10": [c["max_cr10"] for c in theirs["body"]["clients"]],
        }
    doc["compute_s"] = round(time.perf_counter() - t, 2)
    out = (
        Path(out_dir) if out_dir else Path("out") / dt.datetime.now().strftime("plan-%Y%m%d-%H%M%S")
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "session.json").write_text(json.dumps(doc), encoding="utf-8")
    console.print(
        f"planned {n_clients} client(s) over {plan.total_s / 60:.1f} min in "
        f"{doc['compute_s']} s; record: {out / 'session.json'}"
    )
    for suggestion in doc["trainer"]["suggestions"][:10]:
        console.print(f"  [cyan]suggestion[/] {shown(suggestion['text'])}", highlight=False)
    _write_report(out, doc)


def _plan_doc(
    plan: Plan,
    n_clients: int,
    intensity_mA: float,
    first_session: bool,
    rate_hz: float,
    seed: int,
) -> dict[str, Any]:
    """The planning simulation of one workout on one group, with the trainer's words."""
    specs = [
        ClientSpec(f"client-{i + 1}", intensity_mA=intensity_mA, first_session=first_session)
        for i in range(n_clients)
    ]
    targets = np.stack([c.targets(plan.layout) for c in specs])
    caps = np.stack([c.caps(plan.layout) for c in specs])
    delivery = planned_delivery(plan, targets, caps, rate_hz)
    population = make_population(n_clients, plan.layout, seed)
    result = simulate_body(
        delivery.currents_mA,
        delivery.tick_s,
        delivery.pulse_width_us,
        delivery.frequency_hz,
        population,
        plan.layout,
        [c.name for c in specs],
        [first_session] * n_clients,
    )
    group = Group(
        n_clients, first_session, seed, tuple((ch, intensity_mA) for ch in plan.layout.names)
    )
    words = advice(plan, result, population, targets, caps, group, rate_hz=rate_hz)
    return {
        "mode": "plan",
        "workout": plan.workout.name,
        "layout": plan.layout.name,
        "ended": "planned",
        "plan_s": plan.total_s,
        "rate_hz": rate_hz,
        "channels": list(plan.layout.names),
        "segments": plan_segments(plan),
        "body": body_document(result),
        "trainer": {"suggestions": words["suggestions"], "clients": words["clients"]},
    }


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


__all__ = ["sim"]
