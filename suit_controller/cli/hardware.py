"""`suitctl suits scan` and `suitctl class run`: real suits over Bluetooth LE."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click
import trio
import trio_asyncio
from rich.table import Table

from suit_controller.cli.clients import db_option
from suit_controller.cli.errors import FiniteFloatRange, err_console, open_workout, shown
from suit_controller.cli.runner import (
    ClassRecords,
    check_in_or_exit,
    companions_for,
    console,
    drive,
    mqtt_tls_options,
    unstarted_class_discarded,
    web_option,
)
from suit_controller.clients import ClientSpec
from suit_controller.links.adapters import AdapterError, AdapterPool
from suit_controller.links.base import ConnectFailed
from suit_controller.links.ble import FoundSuit, scan_suits
from suit_controller.realclass import RealClass

EXIT_NO_BLUETOOTH = 1


@click.group()
def suits() -> None:
    """Find suits over Bluetooth LE, enroll them in this studio (rotate keys, forget them), and
    check them against the suit protocol."""


@suits.command()
@click.option("--seconds", type=FiniteFloatRange(0.5, 60), default=5.0, show_default=True)
@click.option(
    "--simulated",
    type=click.IntRange(1, 50),
    default=None,
    help="Scan N simulated suits served over a bumble host stack instead of the radio.",
)
def scan(seconds: float, simulated: int | None) -> None:
    """List suits advertising the EMS suit service: address, name, signal, battery."""

    async def real() -> list[FoundSuit]:
        async with trio_asyncio.open_loop():
            return await scan_suits(seconds)

    async def sim_room() -> list[FoundSuit]:
        from sim.ble_world import BleRoom
        from sim.suit import SimulatedSuit

        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            suits_ = [SimulatedSuit(f"SIM-{i + 1:02d}") for i in range(simulated or 0)]
            for s in suits_:
                await nursery.start(s.run)
            room = BleRoom(suits_)
            await nursery.start(room.run)
            found = await scan_suits(seconds, **room.scanner_kwargs())
            nursery.cancel_scope.cancel()
        return found

    found: list[FoundSuit] = []
    try:
        found = trio.run(sim_room if simulated else real)
    except* ConnectFailed as group:  # raised inside trio-asyncio's loop: an exception group
        err_console.print(
            f"[red]error[/]: {_first_leaf(group)} (is Bluetooth on, and is there an adapter?)"
        )
        sys.exit(EXIT_NO_BLUETOOTH)
    table = Table(title=f"Suits found in {seconds:g} s")
    for col in ("address", "name", "signal", "battery"):
        table.add_column(col)
    for f in found:
        table.add_row(
            f.address,
            shown(f.name or "?"),  # a suit's advertised name is anyone's to choose
            f"{f.rssi} dBm",
            f"{f.battery_pct} %" if f.battery_pct is not None else "?",
        )
    console.print(table)
    if not found:
        console.print("no suits found: are they switched on and not connected elsewhere?")


def _first_leaf(e: BaseException) -> BaseException:
    while isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    return e


@click.group("class")
def class_() -> None:
    """Run classes on real suits."""


@class_.command("run")
@click.argument("workout_ref", metavar="WORKOUT")
@click.option(
    "--suit",
    "suit_addresses",
    multiple=True,
    metavar="ADDRESS",
    help="A suit for an anonymous client (repeatable).",
)
@click.option(
    "--client",
    "client_suits",
    multiple=True,
    metavar="NAME=ADDRESS",
    help="A client from the studio's records (id, member id or name) in the suit at "
    "ADDRESS (repeatable).",
)
@click.option("--trainer", "trainers", multiple=True, metavar="NAME")
@click.option("--ate-recently", "ate_recently", multiple=True, metavar="NAME")
@click.option(
    "--intensity",
    "intensity_mA",
    type=FiniteFloatRange(0, 120),
    default=20.0,
    show_default=True,
    help="Starting target of clients without a calibration, mA.",
)
@click.option("--rate", "rate_hz", type=FiniteFloatRange(1, 200), default=40.0, show_default=True)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="hciN",
    help="A Bluetooth adapter to use (repeatable; BlueZ/Linux only): suits spread over "
    "them and move to another when one drops. See docs/radio.md.",
)
@click.option("--mqtt", "mqtt_url", metavar="URL")
@click.option("--site", default="studio", show_default=True)
@click.option("--room", default="room-1", show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False))
@click.option(
    "--screened-on-paper",
    "unscreened",
    is_flag=True,
    help="With --suit: you screened these clients yourself (S5).",
)
@mqtt_tls_options
@web_option
@db_option
def run(
    workout_ref: str,
    suit_addresses: tuple[str, ...],
    client_suits: tuple[str, ...],
    trainers: tuple[str, ...],
    ate_recently: tuple[str, ...],
    intensity_mA: float,
    rate_hz: float,
    adapters: tuple[str, ...],
    mqtt_url: str | None,
    site: str,
    room: str,
    out_dir: str | None,
    unscreened: bool,
    web: str | None,
    db_path: str | None,
) -> None:
    """Run a class on real suits over Bluetooth LE (bleak's platform backend)."""
    _, plan = open_workout(workout_ref)
    if bool(suit_addresses) == bool(client_suits):
        raise click.UsageError(
            "give either --suit ADDRESS … (anonymous) or --client NAME=ADDRESS …"
        )
    pool: AdapterPool | None = None
    if adapters:
        try:
            pool = AdapterPool.bluez(list(adapters))
        except AdapterError as e:
            raise click.UsageError(str(e)) from None
    records: ClassRecords | None = None
    if client_suits:
        pairs = []
        for item in client_suits:
            name, eq, address = item.partition("=")
            if not eq or not name or not address:
                raise click.UsageError(f"--client takes NAME=ADDRESS, not {item!r}")
            pairs.append((name, address))
        specs, records = check_in_or_exit(
            db_path,
            pairs,
            trainers,
            ate_recently,
            plan.layout,
            intensity_mA,
            workout=plan.workout.name,
            workout_ref=workout_ref,
            simulated=False,
            room=room,
        )
        addresses = [a for _, a in pairs]
    else:
        # S5: nobody is stimulated without a screening on file, unless the trainer says
        # they screened on paper; even then every channel keeps the first-session cap.
        if not unscreened:
            raise click.UsageError(
                "--suit runs clients the studio has no screening for (S5). Use "
                "--client NAME=ADDRESS for clients on file, or add --screened-on-paper to "
                "confirm you screened them yourself (every channel then stays under the "
                "first-session cap)."
            )
        specs = [
            ClientSpec(f"client-{i + 1}", intensity_mA=intensity_mA, first_session=True)
            for i in range(len(suit_addresses))
        ]
        addresses = list(suit_addresses)
        err_console.print(
            "[yellow]warning[/]: clients without records: no history, first-session "
            "cap on every channel, session not saved to the studio's records"
        )
    with unstarted_class_discarded(records):  # not left `running` if it never starts
        faces = companions_for(records, mqtt_url, site, room, web)
        from suit_controller.cli.security import keys_for_class

        keys = keys_for_class(db_path)  # enrolled suits: every frame signed with the suit's key
        klass = RealClass(plan, specs, addresses, rate_hz=rate_hz, keys=keys, adapters=pool)
        out = (
            Path(out_dir)
            if out_dir
            else Path("out") / dt.datetime.now().strftime("class-%Y%m%d-%H%M%S")
        )
        code = drive(
            klass,
            out,
            clock=None,
            mode="real suits",
            refresh_s=0.25,
            asyncio_loop=bool(mqtt_url),
            faces=faces,
            own_thread=True,  # the engine keeps time whatever the console and MQTT are doing
            engine_asyncio=True,  # bleak
        )
    if code:
        sys.exit(code)


def _register_conformance() -> None:
    from suit_controller.cli.conformance import conformance

    suits.add_command(conformance)


_register_conformance()
