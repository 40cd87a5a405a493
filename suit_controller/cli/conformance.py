"""`suitctl suits conformance`: the suit makers' conformance kit, over Bluetooth LE.

Against a real suit (ADDRESS) it runs in real time through bleak. With
`--simulated` it runs against the simulated suit served over a bumble host
stack (bleak's API on the bumble backend, as `suits scan --simulated` does),
on the Python firmware or the portable C core, in virtual time: the checks'
waits (watchdog, status periods) take no wall time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import trio
import trio.testing
import trio_asyncio

from suit_controller.cli.errors import EXIT_INVALID, EXIT_USAGE, err_console
from suit_controller.conformance import ConformanceRun, LinkTarget, run_conformance
from suit_controller.conformance.report import print_table, write_reports
from suit_controller.conformance.target import LARGE_ATT_PAYLOAD
from suit_controller.links.base import LinkError, SuitLink
from suit_controller.links.ble import BleLink, scan_suits
from suit_controller.protocol import MAX_CHANNELS, REQUIRED_ATT_PAYLOAD

EXIT_NOT_CONFORMING = 1
SCAN_S = 2.0


async def _advertised(address: str, **scanner: object) -> bool:
    try:
        found = await scan_suits(SCAN_S, **scanner)  # type: ignore[arg-type]
    except LinkError:
        return False
    return any(f.address.upper() == address.upper() for f in found)


def _gatt(link: SuitLink) -> dict[str, frozenset[str]]:
    if not isinstance(link, BleLink):
        raise TypeError("the GATT is read over a BleLink")
    return link.characteristics()


async def real_run(address: str) -> ConformanceRun:
    """The kit against a real suit, over the system's Bluetooth (bleak)."""
    async with trio_asyncio.open_loop():
        target = LinkTarget(
            address,
            lambda _payload: BleLink(address),
            advertised=lambda: _advertised(address),
            characteristics=_gatt,
        )
        return await run_conformance(target, label="over Bluetooth LE")


async def simulated_run(firmware: str, channels: int) -> ConformanceRun:
    """The kit against a freshly powered-on simulated suit, served over bumble."""
    from sim.ble_world import BleRoom
    from sim.suit import AnyFirmware, SimulatedSuit

    fw: AnyFirmware
    if firmware == "c":
        from sim.c_firmware import CSuitFirmware

        fw = CSuitFirmware(channels)
    else:
        from sim.firmware import SuitFirmware

        fw = SuitFirmware(channels)
    suit = SimulatedSuit("SIM-01", firmware=fw)
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        await nursery.start(suit.run)
        room = BleRoom([suit])
        await nursery.start(room.run)
        address = room.addresses[0]

        def link_at(payload: int | None) -> SuitLink:
            mtu = (payload or LARGE_ATT_PAYLOAD) + 3
            return BleLink(address, **room.client_kwargs(), bumble_mtu=mtu)

        target = LinkTarget(
            address,
            link_at,
            att_payload_choices=(REQUIRED_ATT_PAYLOAD, LARGE_ATT_PAYLOAD),
            advertised=lambda: _advertised(address, **room.scanner_kwargs()),
            characteristics=_gatt,
        )
        run = await run_conformance(
            target, label=f"simulated suit, {firmware} firmware, over bumble"
        )
        nursery.cancel_scope.cancel()
    return run


@click.command()
@click.argument("address", required=False)
@click.option(
    "--simulated",
    is_flag=True,
    help="Test the simulated suit (served over a bumble host stack, in virtual time).",
)
@click.option(
    "--firmware",
    type=click.Choice(["python", "c"]),
    default="python",
    show_default=True,
    help="With --simulated: the Python firmware or the portable C core (firmware/).",
)
@click.option(
    "--channels",
    type=click.IntRange(1, MAX_CHANNELS),
    default=MAX_CHANNELS,
    show_default=True,
    help="With --simulated: the suit's channels (32 splits its status at the minimum MTU).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write conformance.xml (JUnit) and conformance.html here.",
)
def conformance(
    address: str | None, simulated: bool, firmware: str, channels: int, out_dir: Path | None
) -> None:
    """Check a suit against the suit protocol, rule by rule (docs/protocol.md).

    Power the suit on freshly and put a test load (a resistor per channel) on
    its outputs: the kit stimulates. Never run it on a person. Exits 0 only
    if every required check holds.
    """
    if simulated == (address is not None):
        err_console.print("[red]error[/]: give a suit's ADDRESS, or --simulated (not both)")
        sys.exit(EXIT_USAGE)
    ctx = click.get_current_context()
    explicit = [
        f"--{name}"
        for name in ("firmware", "channels")
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
    ]
    if explicit and not simulated:
        err_console.print(
            f"[red]error[/]: {' and '.join(explicit)} describe the simulated suit: "
            "use them with --simulated (a real suit runs its own firmware)"
        )
        sys.exit(EXIT_USAGE)
    if simulated and firmware == "c":
        from sim.c_firmware import unavailable_reason

        why = unavailable_reason()
        if why is not None:
            err_console.print(f"[red]error[/]: the C firmware cannot run here: {why}")
            sys.exit(EXIT_INVALID)
    try:
        if simulated:
            run = trio.run(
                simulated_run,
                firmware,
                channels,
                clock=trio.testing.MockClock(autojump_threshold=0),
            )
        else:
            assert address is not None
            run = trio.run(real_run, address)
    except* LinkError as group:
        err_console.print(f"[red]error[/]: {_first_leaf(group)} (is Bluetooth on?)")
        sys.exit(EXIT_NOT_CONFORMING)
    from suit_controller.cli.runner import console

    if out_dir is not None:
        for path in write_reports(run, out_dir):
            console.print(f"wrote {path}")
    if run.connect_error:
        err_console.print(
            f"[red]error[/]: {run.connect_error} (is Bluetooth on, and is the suit powered on, "
            "in range and not connected elsewhere?)",
            highlight=False,
        )
        sys.exit(EXIT_NOT_CONFORMING)
    print_table(run, console)
    sys.exit(0 if run.passed else EXIT_NOT_CONFORMING)


def _first_leaf(e: BaseException) -> BaseException:
    while isinstance(e, BaseExceptionGroup):
        e = e.exceptions[0]
    return e
