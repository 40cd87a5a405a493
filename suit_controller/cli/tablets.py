"""`suitctl mqtt tablet add|remove|list`: one MQTT account per tablet on a Mosquitto broker.

`add` appends the tablet's lines to the broker's ACL file and sets its password with
`mosquitto_passwd` (the password is generated, fed on stdin, never on a command line, and
shown once); `remove` takes both out again; `list` shows the tablets an ACL file holds.
The broker applies them when it reloads (`systemctl reload mosquitto`, or SIGHUP).
suit_controller.mqtt.tablets says why (review finding F2) and what the lines allow.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from suit_controller.cli.errors import shown
from suit_controller.mqtt.tablets import (
    Tablet,
    TabletError,
    tablets_in,
    with_tablet,
    without_tablet,
)

ACL_FILE = "/etc/mosquitto/suit-controller.acl"
PASSWORD_FILE = "/etc/mosquitto/suit-controller.passwd"
console = Console(soft_wrap=True)
RELOAD = "reload the broker to apply it: sudo systemctl reload mosquitto (or kill -HUP its pid)"


@click.group("mqtt")
def mqtt() -> None:
    """The gym's MQTT broker (Mosquitto): accounts for tablets."""


@mqtt.group("tablet")
def tablet() -> None:
    """One MQTT account per tablet: it may command only as itself, in its own room."""


def _files(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--acl",
        "acl_file",
        default=ACL_FILE,
        show_default=True,
        envvar="SUITCTL_MOSQUITTO_ACL",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The broker's acl_file (a copy of deploy/mosquitto/acl).",
    )(command)
    return click.option(
        "--passwd",
        "password_file",
        default=PASSWORD_FILE,
        show_default=True,
        envvar="SUITCTL_MOSQUITTO_PASSWD",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The broker's password_file.",
    )(command)


def _site(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--site", default="studio", show_default=True, help="Topic prefix: ems/SITE/ROOM."
    )(command)


def _tablet(site: str, room: str, name: str) -> Tablet:
    try:
        return Tablet(site, room, name)
    except TabletError as e:
        raise click.UsageError(str(e)) from None


def _read_acl(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(
            f"the ACL file {shown(str(path))} does not exist: copy deploy/mosquitto/acl there "
            "first (docs/mqtt.md, Security), or name the broker's acl_file with --acl"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"cannot read the ACL file {shown(str(path))}: {e}") from None


def _write_acl(path: Path, text: str) -> None:
    """Replace the ACL file in one step (the broker never reads half of it)."""
    tmp = path.with_name(f".{path.name}.suitctl-new")
    try:
        tmp.write_text(text, encoding="utf-8")
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write the ACL file {shown(str(path))}: {e}") from None


def _mosquitto_passwd(args: list[str], stdin: str = "") -> None:
    tool = shutil.which("mosquitto_passwd") or (
        "/usr/bin/mosquitto_passwd" if Path("/usr/bin/mosquitto_passwd").exists() else None
    )
    if tool is None:
        raise click.ClickException(
            "mosquitto_passwd was not found: run this on the broker's host (Debian: apt install "
            "mosquitto)"
        )
    done = subprocess.run([tool, *args], input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip() or f"exit status {done.returncode}"
        raise click.ClickException(f"mosquitto_passwd failed: {shown(said)}")


@tablet.command("add")
@click.argument("room")
@click.argument("name", metavar="TABLET")
@_site
@_files
def add(room: str, name: str, site: str, acl_file: Path, password_file: Path) -> None:
    """Give tablet TABLET of room ROOM an MQTT account of its own (prints its password once)."""
    who = _tablet(site, room, name)
    acl = _read_acl(acl_file)
    try:
        new_acl = with_tablet(acl, who)
    except TabletError as e:
        raise click.ClickException(str(e)) from None
    password = secrets.token_urlsafe(18)
    _write_acl(acl_file, new_acl)
    create = [] if password_file.exists() else ["-c"]
    try:  # the password on stdin (twice: mosquitto_passwd asks again), never in argv
        _mosquitto_passwd([*create, str(password_file), who.username], f"{password}\n{password}\n")
    except click.ClickException:
        _write_acl(acl_file, acl)  # nothing half done
        raise
    out = console.print
    out(f"Tablet {shown(who.name)} of {shown(site)}/{shown(room)}: MQTT account", highlight=False)
    out(f"  username  {shown(who.username)}", highlight=False)
    out(f"  password  {password}   (shown only now: set it in the tablet's app)", highlight=False)
    out(f"  commands  {shown(who.commands_topic)}", highlight=False)
    out(f"  e-stops   {shown(who.prefix)}/estop", highlight=False)
    out(f"Written to {shown(str(acl_file))} and {shown(str(password_file))}; {RELOAD}.")


@tablet.command("remove")
@click.argument("room")
@click.argument("name", metavar="TABLET")
@_site
@_files
def remove(room: str, name: str, site: str, acl_file: Path, password_file: Path) -> None:
    """Take tablet TABLET of room ROOM off the broker (its ACL lines and its password)."""
    who = _tablet(site, room, name)
    acl = _read_acl(acl_file)
    try:
        new_acl = without_tablet(acl, who)
    except TabletError as e:
        raise click.ClickException(str(e)) from None
    if password_file.exists() and any(
        line.split(":", 1)[0] == who.username for line in password_file.read_text().splitlines()
    ):
        _mosquitto_passwd(["-D", str(password_file), who.username])
    _write_acl(acl_file, new_acl)
    console.print(
        f"Tablet {shown(who.name)} of {shown(site)}/{shown(room)} removed "
        f"(account {shown(who.username)}); {RELOAD}.",
        highlight=False,
    )


@tablet.command("list")
@_files
def list_(acl_file: Path, password_file: Path) -> None:
    """The tablets with an account of their own, and where each sends commands."""
    found = tablets_in(_read_acl(acl_file))
    if not found:
        console.print(f"No tablet accounts in {shown(str(acl_file))}.", highlight=False)
        return
    for t in found:
        console.print(
            f"{shown(t.site)}/{shown(t.room)}  {shown(t.name)}  account {shown(t.username)}  "
            f"commands on {shown(t.commands_topic)}",
            highlight=False,
            soft_wrap=True,
        )
