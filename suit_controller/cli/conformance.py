"""`suitctl suits conformance`: the suit makers' conformance kit, over Bluetooth LE.

Against a real suit (ADDRESS) it runs in real time through bleak. With
`--simulated` it runs against the simulated suit served over a bumble host
stack (bleak's API on the bumble backend, as `suits scan --simulated` does),
on the Python firmware or the portable C core, in virtual time: the checks'
waits (watchdog, status periods) take no wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import click
import trio
import trio.testing
import trio_asyncio

from suit_controller.cli.errors import EXIT_INVALID, EXIT_USAGE, err_console
from suit_controller.conformance import ConformanceRun, LinkTarget, run_conformance
from suit_controller.conformance.report import print_table, write_reports
from suit_controller.conformance.target import LARGE_ATT_PAYLOAD, Central, CentralFactory
from suit_controller.links.base import ConnectFailed, LinkError, LinkLost, SuitLink
from suit_controller.links.ble import BLE_ERRORS, CONNECT_TIMEOUT_S, BleLink, scan_suits
from suit_controller.protocol import MAX_CHANNELS, REQUIRED_ATT_PAYLOAD
from suit_controller.protocol.enrollment import (
    ENROLL_UUID,
    STUDIO_ID_LEN,
    SuitKey,
    check_setup_code,
)

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


class _BleakCentral:
    """Another central's connection through bleak (`Central`)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def connected(self) -> bool:
        return bool(self._client.is_connected)

    async def write(self, uuid: str, data: bytes) -> None:
        try:
            await trio_asyncio.aio_as_trio(self._client.write_gatt_char)(uuid, data, response=False)
        except BLE_ERRORS as e:
            raise LinkLost(f"{e or type(e).__name__}") from e


async def _enroll_write(address: str, message: bytes, **client_kwargs: Any) -> int:
    """One enrollment message on a bonded connection of its own: 0 or the ATT error code."""
    from bleak import BleakClient

    client = BleakClient(address, timeout=CONNECT_TIMEOUT_S, pair=True, **client_kwargs)
    try:
        await trio_asyncio.aio_as_trio(client.connect)()
        await trio_asyncio.aio_as_trio(client.write_gatt_char)(ENROLL_UUID, message, response=True)
    except BLE_ERRORS as e:
        code = getattr(e, "att_error", None)
        if code is None:
            raise ConnectFailed(f"{address}: {e or type(e).__name__}") from e
        return int(code)
    finally:
        with trio.move_on_after(2.0), contextlib.suppress(*BLE_ERRORS):
            await trio_asyncio.aio_as_trio(client.disconnect)()
    return 0


async def _test_key(address: str, setup_code: str, **client_kwargs: Any) -> tuple[bytes, SuitKey]:
    """Enroll a random test key (a studio id of its own) in an open suit."""
    import secrets

    from suit_controller.enrollment import enroll_suit

    studio = secrets.token_bytes(STUDIO_ID_LEN)
    return studio, await enroll_suit(address, setup_code, studio, **client_kwargs)


async def _forget_test_key(address: str, key: SuitKey, studio: bytes, **kw: Any) -> None:
    from suit_controller.enrollment import forget_suit

    with contextlib.suppress(LinkError, Exception):  # best effort: the report stands anyway
        await forget_suit(address, key, studio, **kw)


async def real_run(address: str, setup_code: str | None = None) -> ConformanceRun:
    """The kit against a real suit, over the system's Bluetooth (bleak).

    With `setup_code`, the kit first enrolls a random test key in the (open)
    suit, runs every check signed with it, and forgets it at the end.
    """
    async with trio_asyncio.open_loop():
        target = LinkTarget(
            address,
            lambda _payload: BleLink(address),
            advertised=lambda: _advertised(address),
            characteristics=_gatt,
            enroll=lambda message: _enroll_write(address, message),
        )
        if setup_code is None:
            return await run_conformance(target, label="over Bluetooth LE")
        studio, key = await _test_key(address, setup_code)
        try:
            return await run_conformance(
                target, label="over Bluetooth LE, enrolled with a test key", key=key
            )
        finally:
            with trio.CancelScope(shield=True):
                await _forget_test_key(address, key, studio)


def _phones(room: Any, address: str) -> CentralFactory:
    """Phones in the simulated gym: each a bumble central of its own, bonded or not."""
    numbers = itertools.count(1)

    @asynccontextmanager
    async def phone(bonded: bool) -> AsyncIterator[Central]:
        from bleak import BleakClient

        from sim.bleak_bumble import BumbleClient

        central = await room.phone(f"F0:5C:0E:BA:D1:{next(numbers) % 256:02X}")
        client = BleakClient(
            address,
            backend=BumbleClient,
            bumble_central=central,
            bumble_passkey=room.passkey(address) if bonded else None,
            pair=bonded,
            timeout=CONNECT_TIMEOUT_S,
        )
        try:
            await trio_asyncio.aio_as_trio(client.connect)()
        except (*BLE_ERRORS, asyncio.CancelledError):
            pass  # the suit refused the phone (the check sees it is not connected)
        try:
            yield _BleakCentral(client)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2.0):
                with contextlib.suppress(*BLE_ERRORS):
                    await trio_asyncio.aio_as_trio(client.disconnect)()
                with contextlib.suppress(*BLE_ERRORS):
                    await trio_asyncio.aio_as_trio(central.power_off)()

    return phone


async def simulated_run(
    firmware: str, channels: int, enrolled: bool = False, fw: Any = None
) -> ConformanceRun:
    """The kit against a freshly powered-on simulated suit, served over bumble.

    `enrolled`: the kit first enrolls a test key (with the suit's setup code) and
    signs every frame with it. `fw`: a firmware of the caller's (the tests' broken ones).
    """
    from sim.ble_world import BleRoom
    from sim.suit import SimulatedSuit

    if fw is not None:
        pass
    elif firmware == "c":
        from sim.c_firmware import CSuitFirmware

        fw = CSuitFirmware(channels)
    else:
        from sim.firmware import SuitFirmware

        fw = SuitFirmware(channels)
    suit = SimulatedSuit("SIM-01", firmware=fw)
    return await simulated_room_run(BleRoom([suit]), firmware, enrolled)


async def simulated_room_run(
    room: Any, firmware: str, enrolled: bool, only: Collection[str] | None = None
) -> ConformanceRun:
    """The kit against the one suit of a simulated BLE room (`sim.ble_world.BleRoom`);
    `only`: these checks alone."""
    suit = room.suits[0]
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        await nursery.start(suit.run)
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
            second_central=_phones(room, address),
            enroll=lambda message: _enroll_write(address, message, **room.client_kwargs()),
        )
        key = None
        label = f"simulated suit, {firmware} firmware, over bumble"
        if enrolled:
            _, key = await _test_key(address, suit.setup_code, **room.client_kwargs())
            label += ", enrolled"
        run = await run_conformance(target, label=label, key=key, only=only)
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
    "--enroll",
    "enrolled",
    is_flag=True,
    help="First enroll a random test key in the suit (it must be open: not enrolled) and "
    "sign every frame with it, so the security checks run too; the key is forgotten at "
    "the end. A real suit needs --setup-code.",
)
@click.option(
    "--setup-code",
    default=None,
    help="With --enroll on a real suit: the six-digit setup code printed on it.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write conformance.xml (JUnit) and conformance.html here.",
)
def conformance(
    address: str | None,
    simulated: bool,
    firmware: str,
    channels: int,
    enrolled: bool,
    setup_code: str | None,
    out_dir: Path | None,
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
    if setup_code is not None and (simulated or not enrolled):
        err_console.print(
            "[red]error[/]: --setup-code goes with --enroll on a real suit "
            "(a simulated suit's setup code is known)"
        )
        sys.exit(EXIT_USAGE)
    if setup_code is not None:
        try:
            check_setup_code(setup_code)
        except ValueError as e:
            err_console.print(f"[red]error[/]: {e}")
            sys.exit(EXIT_USAGE)
    if enrolled and not simulated and setup_code is None:
        err_console.print(
            "[red]error[/]: --enroll on a real suit needs its --setup-code (printed on the suit)"
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
                enrolled,
                clock=trio.testing.MockClock(autojump_threshold=0),
            )
        else:
            assert address is not None
            run = trio.run(real_run, address, setup_code)
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
