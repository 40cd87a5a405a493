"""`suitctl suits enroll | rotate-key | forget | enrolled`: which suits this studio may drive.

The work is in `enroll_into_records`, `rotate_in_records` and
`forget_in_records` (async, any bleak backend), so tests drive them over
bumble exactly as the commands do over the platform's radio.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import trio
import trio_asyncio
from rich.table import Table

from suit_controller.cli.clients import db_option, open_store
from suit_controller.cli.errors import err_console
from suit_controller.cli.hardware import suits
from suit_controller.cli.runner import console
from suit_controller.enrollment import EnrollmentRefused, enroll_suit, forget_suit, rotate_key
from suit_controller.links.base import ConnectFailed
from suit_controller.protocol.enrollment import Refusal, SuitKey, check_setup_code
from suit_controller.studio.store import Store, StoreError, default_location
from suit_controller.studio.suit_keys import (
    all_suit_keys,
    enrolled_suits,
    forget_suit_key,
    save_suit_key,
    studio_id,
    suit_in_open_class,
    suit_key,
)

EXIT_REFUSED = 1
EXIT_USAGE = 2


class RecordsRefused(Exception):
    """What the records say makes the request impossible (a sentence for the trainer)."""


async def enroll_into_records(
    store: Store, address: str, setup_code: str, **backend_kwargs: Any
) -> int:
    """Enroll the suit and record its key; returns the key id."""
    held = suit_key(store, address)
    if held is not None:
        raise RecordsRefused(
            f"suit {address} is already enrolled in this studio (key {held.key_id}); "
            "use `suitctl suits rotate-key` for a new key"
        )
    key = await enroll_suit(address, setup_code, studio_id(store), **backend_kwargs)
    save_suit_key(store, address, key)
    return key.key_id


async def rotate_in_records(store: Store, address: str, **backend_kwargs: Any) -> int:
    """Give the suit a new random key and record it; returns the new key id."""
    held = suit_key(store, address)
    if held is None:
        raise RecordsRefused(f"suit {address} is not enrolled in this studio")
    _not_in_an_open_class(store, address)
    key = await rotate_key(address, held, **backend_kwargs)
    save_suit_key(store, address, key, rotated=True)
    return key.key_id


async def forget_in_records(
    store: Store, address: str, *, records_only: bool = False, **backend_kwargs: Any
) -> str:
    """Tell the suit to drop this studio's key, then drop it from the records."""
    held = suit_key(store, address)
    if held is None:
        raise RecordsRefused(f"suit {address} is not enrolled in this studio")
    _not_in_an_open_class(store, address)
    note = f"suit {address} forgotten: it can be enrolled in any studio now"
    if not records_only:
        try:
            await forget_suit(address, held, studio_id(store), **backend_kwargs)
        except EnrollmentRefused as e:
            if e.refusal not in (Refusal.NOT_ENROLLED, Refusal.BAD_PROOF):
                raise
            note = f"suit {address} no longer held this studio's key; removed from the records"
    else:
        note = (
            f"suit {address} removed from the records only; the suit keeps its key until "
            "it is factory reset (its button)"
        )
    forget_suit_key(store, address)
    return note


def _not_in_an_open_class(store: Store, address: str) -> None:
    """Refuse to change the key of a suit whose class has not ended (the records say)."""
    busy = suit_in_open_class(store, address)
    if busy is not None:
        raise RecordsRefused(busy)


def keys_for_class(db_path: str | None) -> dict[str, SuitKey]:
    """The enrolled suits' keys from the studio's records (none if there are no records)."""
    location = str(db_path) if db_path else default_location()
    if "://" not in location and not Path(location).exists():
        return {}
    return all_suit_keys(open_store(location))


def _run_ble(work: Any) -> Any:
    import logging

    logging.getLogger("bumble").setLevel(logging.ERROR)  # its pairing warnings: ours say it

    async def main() -> Any:
        async with trio_asyncio.open_loop():
            return await work()

    try:
        return trio.run(main)
    except* (EnrollmentRefused, RecordsRefused, ConnectFailed, StoreError) as group:
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        err_console.print(f"[red]error[/]: {leaf}", highlight=False)
        sys.exit(EXIT_REFUSED)


@suits.command()
@click.argument("address")
@click.option(
    "--setup-code",
    required=True,
    metavar="CODE",
    help="The six digits printed on the suit (or shown on its display).",
)
@click.option(
    "--simulated",
    type=click.IntRange(1, 50),
    default=None,
    help="Enroll one of N simulated suits (SIM-01 at F0:5C:0E:00:00:00, …) served over a "
    "bumble host stack instead of the radio (a rehearsal: they vanish afterwards).",
)
@db_option
def enroll(address: str, setup_code: str, simulated: int | None, db_path: str | None) -> None:
    """Enroll the suit at ADDRESS in this studio: only this studio can drive it afterwards.

    Pairs with the suit (LE Secure Connections, the setup code as passkey; your
    system may ask you to type it), gives it a new random key and keeps the key in
    the studio's records.
    """
    try:
        check_setup_code(setup_code)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--setup-code") from None
    store = open_store(db_path)

    async def on_simulated_suits() -> int:
        from sim.ble_world import BleRoom
        from sim.suit import SimulatedSuit

        async with trio.open_nursery() as nursery:
            suits_ = [SimulatedSuit(f"SIM-{i + 1:02d}") for i in range(simulated or 0)]
            for s in suits_:
                await nursery.start(s.run)
            room = BleRoom(suits_)
            await nursery.start(room.run)
            key_id = await enroll_into_records(store, address, setup_code, **room.client_kwargs())
            nursery.cancel_scope.cancel()
        return key_id

    if simulated:
        key_id = _run_ble(on_simulated_suits)
    else:
        key_id = _run_ble(lambda: enroll_into_records(store, address, setup_code))
    console.print(f"suit {address} enrolled (key {key_id}); classes drive it with its key")


@suits.command("rotate-key")
@click.argument("address")
@db_option
def rotate_key_command(address: str, db_path: str | None) -> None:
    """Give the enrolled suit at ADDRESS a new random key (the old one stops working)."""
    store = open_store(db_path)
    key_id = _run_ble(lambda: rotate_in_records(store, address))
    console.print(f"suit {address} has a new key (key {key_id})")


@suits.command()
@click.argument("address")
@click.option(
    "--records-only",
    is_flag=True,
    help="The suit is lost or broken: only drop its key from the records.",
)
@db_option
def forget(address: str, records_only: bool, db_path: str | None) -> None:
    """Release the suit at ADDRESS from this studio (it may join another one)."""
    store = open_store(db_path)
    note = _run_ble(lambda: forget_in_records(store, address, records_only=records_only))
    console.print(note)


@suits.command()
@db_option
def enrolled(db_path: str | None) -> None:
    """List the suits enrolled in this studio (never their keys)."""
    store = open_store(db_path)
    rows = enrolled_suits(store)
    table = Table(title=f"Suits enrolled in this studio: {len(rows)}")
    for col in ("address", "key", "enrolled", "key rotated"):
        table.add_column(col)
    for address, key_id, at, rotated in rows:
        table.add_row(address, str(key_id), at[:19], (rotated or "")[:19])
    console.print(table)
