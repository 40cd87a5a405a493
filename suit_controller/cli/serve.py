"""`suitctl serve` (the studio controller) and `suitctl users` (its accounts)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
import trio
import trio_asyncio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from rich.console import Console

from channels.user_files import UserFileTooBig, read_user_file
from suit_controller.cli.clients import db_option, open_store
from suit_controller.cli.errors import EXIT_INVALID, err_console
from suit_controller.cli.runner import mqtt_tls_options
from suit_controller.mqtt import BrokerUrl, MqttConfigError, Topics
from suit_controller.mqtt.broker_check import broker_refuses_v5
from suit_controller.studio.accounts import ROLES, Accounts
from suit_controller.studio.rooms import Studio, StudioMqtt, SuitRack
from suit_controller.studio.store import Store, StoreError
from suit_controller.ticks import settled_memory

console = Console(soft_wrap=True)

DEMO_MANAGER = "demo-manager"


@click.group()
def users() -> None:
    """The studio's trainer and manager accounts."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), default="trainer", show_default=True)
@click.option(
    "--password-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the password from this file's first line (for scripts); else it is asked.",
)
@db_option
def users_add(name: str, role: str, password_file: Path | None, db_path: str | None) -> None:
    """Add an account: NAME, a role, a password."""
    if password_file is not None:
        try:  # a password is short: a file far larger is not a password file
            text = read_user_file(password_file, "a password file", limit=4096).decode("utf-8")
        except (OSError, UnicodeDecodeError, UserFileTooBig) as e:
            raise click.ClickException(f"{password_file}: {e}") from None
        lines = text.splitlines()
        password = lines[0] if lines else ""
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    store = open_store(db_path)
    try:
        account = Accounts(store).add(name, role, password, by="terminal")
    except StoreError as e:
        err_console.print(f"[red]error[/]: {e}", highlight=False)
        sys.exit(EXIT_INVALID)
    finally:
        store.close()
    console.print(f"added {account.role} {account.name}", highlight=False)


@users.command("list")
@db_option
def users_list(db_path: str | None) -> None:
    """List the accounts."""
    store = open_store(db_path)
    try:
        for a in Accounts(store).accounts():
            click.echo(f"{a.name}\t{a.role}")
    finally:
        store.close()


def first_manager(store: Store, simulated: int, host: str, port: int) -> str | None:
    """On a database without accounts: a demo manager's one-time link, or ask for a manager.

    Returns the login link's path (with `--simulated`), or None.
    """
    accounts = Accounts(store)
    if accounts.count() > 0:
        return None
    if simulated:
        account = accounts.add(DEMO_MANAGER, "manager", secrets.token_urlsafe(18), by="serve")
        return f"/login/link?token={accounts.login_link(account)}"
    if not sys.stdin.isatty():
        err_console.print(
            "[red]error[/]: no accounts yet: add a manager first with "
            "`suitctl users add --role manager NAME --password-file FILE`",
            highlight=False,
        )
        sys.exit(EXIT_INVALID)
    console.print("No accounts yet: create the studio's manager account.")
    name = click.prompt("manager's name")
    password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        accounts.add(name, "manager", password, by="terminal")
    except StoreError as e:
        err_console.print(f"[red]error[/]: {e}", highlight=False)
        sys.exit(EXIT_INVALID)
    return None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--simulated",
    type=click.IntRange(1, 24),
    default=None,
    metavar="N",
    help="N simulated suits (SIM-01 …) instead of real ones over Bluetooth: try the whole "
    "studio without hardware.",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    default=None,
    envvar="SUITCTL_MQTT",
    help="Publish every room's class to this MQTT broker (mqtt://user:password@host:port "
    "or mqtts://…) under ems/SITE/ROOM, and take commands and e-stops from it.",
)
@click.option(
    "--site", default="studio", show_default=True, help="MQTT topic prefix: ems/SITE/ROOM."
)
@mqtt_tls_options
@db_option
def serve(
    host: str,
    port: int,
    simulated: int | None,
    mqtt_url: str | None,
    site: str,
    db_path: str | None,
) -> None:
    """Run the studio controller: the trainer's pages, the API, one class per room."""
    mqtt = None
    if mqtt_url:
        try:
            mqtt = StudioMqtt(BrokerUrl.parse(mqtt_url), site)
            Topics.for_room(site, "room")  # the site must be a topic segment
        except MqttConfigError as e:
            raise click.UsageError(str(e)) from None
        refused = broker_refuses_v5(mqtt.broker)
        if refused is not None:  # MQTT v5 only: 3.1.1 would run retained commands (F1)
            raise click.ClickException(refused)
    store = open_store(db_path)
    link = first_manager(store, simulated or 0, host, port)
    rack: SuitRack
    sim_rack = None
    if simulated:
        from sim.studio_suits import SimulatedRack

        rack = sim_rack = SimulatedRack(simulated)
    else:
        from suit_controller.studio.ble_rack import BleRack

        rack = BleRack()
    try:
        with settled_memory():  # no 100 ms garbage collection in the middle of a class
            trio.run(_serve, store, rack, host, port, link, mqtt)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    if sim_rack is not None:  # what each simulated suit's firmware says at the end
        for suit in sim_rack.suits:
            outputs = "every output 0 mA" if not suit.firmware.applied_mA.any() else "OUTPUT ON"
            console.print(f"{suit.address}: {suit.firmware.state.name}, {outputs}", highlight=False)


async def _serve(
    store: Store,
    rack: SuitRack,
    host: str,
    port: int,
    link: str | None,
    mqtt: StudioMqtt | None = None,
) -> None:
    import signal

    from suit_controller.studio.site import StudioSite

    studio = Studio(store, rack, mqtt=mqtt)
    site = StudioSite(studio, Accounts(store))
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    # The receiver stays open until every class has ended: a second SIGTERM or Ctrl-C
    # while the suits are being stopped is taken, not left to kill the program mid-stop.
    # Trio hands signals still pending when the receiver closes to the handlers it found:
    # by then every suit is stopped, so those handlers do nothing.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _already_stopping)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
            await nursery.start(studio.run)
            binds: list[str] = await nursery.start(hypercorn_serve, site.app, config)
            url = binds[0].replace("0.0.0.0", host)
            console.print(f"studio: {url}/", highlight=False)
            if mqtt is not None:
                console.print(f"MQTT: {mqtt.broker} under ems/{mqtt.site}/<room>/", highlight=False)
                where = Topics(f"ems/{mqtt.site}/<room>").where_to_send()
                console.print(f"MQTT: {where}", highlight=False, soft_wrap=True)
            if link is not None:
                console.print(f"log in once as the demo manager: {url}{link}", highlight=False)
            async for _ in signals:
                console.print("stopping: every class ends, every suit stops", highlight=False)
                nursery.cancel_scope.cancel()
                break
    console.print("stopped: every class ended, every suit told to stop", highlight=False)


def _already_stopping(signum: int, frame: object) -> None:
    """A stop signal after the stop that is under way (or done): nothing more to do."""
