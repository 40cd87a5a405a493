"""`suitctl clients …`: the studio's clients, their screenings, history and export."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from suit_controller.cli.errors import EXIT_INVALID, err_console
from suit_controller.studio.screening import (
    BY_KEY,
    CONTRAINDICATIONS,
    SitePolicy,
    check_client,
    validate_answers,
)
from suit_controller.studio.store import Store, StoreError, default_db_path, utcnow

console = Console(soft_wrap=True)

db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The studio database (default $SUITCTL_DB or ~/.local/share/suit-controller/studio.db).",
)


def open_store(db_path: Path | None) -> Store:
    """Open the studio database, reporting sessions found interrupted since the last start."""
    path = db_path or default_db_path()
    try:
        store = Store(path)
    except StoreError as e:
        err_console.print(f"[red]error[/]: {e}")
        sys.exit(EXIT_INVALID)
    for sid in store.recovered:
        err_console.print(
            f"[yellow]note[/]: session {sid} was interrupted (the program stopped "
            "during the class); its record is kept up to its last write"
        )
    return store


def _fail(e: Exception) -> None:
    err_console.print(f"[red]error[/]: {e}")
    sys.exit(EXIT_INVALID)


@click.group()
def clients() -> None:
    """Clients, screenings, session history and export."""


@clients.command()
@click.argument("name")
@click.option("--birth", "birth_date", help="YYYY-MM-DD")
@click.option("--notes", default="")
@db_option
def add(name: str, birth_date: str | None, notes: str, db_path: Path | None) -> None:
    """Add a client."""
    store = open_store(db_path)
    try:
        store.add_client(name, birth_date, notes)
    except StoreError as e:
        _fail(e)
    console.print(f"added {name}; next: suitctl clients screen {name!r} --by TRAINER")


@clients.command("list")
@db_option
def list_(db_path: Path | None) -> None:
    """List every client with their screening and last session."""
    store = open_store(db_path)
    table = Table(title="Clients")
    for col in ("name", "screened", "sessions", "last session", "may train now"):
        table.add_column(col)
    now = utcnow()
    for c in store.clients():
        h = store.history(c.name)
        d = check_client(h, now)
        table.add_row(
            c.name,
            h.screening.taken_at.date().isoformat() if h.screening else "—",
            str(h.sessions),
            h.last_session_at.strftime("%Y-%m-%d %H:%M") if h.last_session_at else "—",
            "[green]yes[/]" if d.allowed else f"[red]no[/]: {d.reasons[0]}",
        )
    console.print(table)


@clients.command()
@click.argument("name")
@db_option
def show(name: str, db_path: Path | None) -> None:
    """A client's screening, calibrated levels, and whether they may train now."""
    store = open_store(db_path)
    try:
        h = store.history(name)
        calibration = store.calibration(name)
    except StoreError as e:
        _fail(e)
        return
    d = check_client(h, utcnow())
    console.print(f"[bold]{name}[/]: {h.sessions} session(s)")
    if h.screening is None:
        console.print("screening: none on file")
    else:
        s = h.screening
        yes = ", ".join(BY_KEY[k].question for k in sorted(s.yes) if k in BY_KEY) or "none"
        console.print(
            f"screening: {s.taken_at:%Y-%m-%d} by {s.taken_by}; answered yes: {yes}; "
            f"clearances: {', '.join(sorted(s.clearances)) or 'none'}"
        )
    if calibration:
        console.print(
            "calibrated levels (mA): "
            + ", ".join(f"{ch} {v:g}" for ch, v in calibration.items() if v > 0)
        )
    if d.allowed:
        console.print("[green]may train now[/]")
    for r in d.reasons:
        console.print(f"[red]not now[/]: {r}")
    for g in d.guidance:
        console.print(f"guidance: {g}")


@clients.command()
@click.argument("name")
@click.option("--by", "taken_by", required=True, help="The trainer taking the screening.")
@click.option(
    "--yes",
    "yes",
    multiple=True,
    metavar="KEY",
    help="A contraindication answered yes (repeatable). See --list.",
)
@click.option(
    "--clearance",
    "clearances",
    multiple=True,
    metavar="KEY",
    help="A medical clearance on file for a relative contraindication (repeatable).",
)
@click.option("--none", "none_", is_flag=True, help="Every question answered no.")
@click.option("--list", "list_keys", is_flag=True, help="List the questions and their keys.")
@db_option
def screen(
    name: str,
    taken_by: str,
    yes: tuple[str, ...],
    clearances: tuple[str, ...],
    none_: bool,
    list_keys: bool,
    db_path: Path | None,
) -> None:
    """Record a contraindication screening (asks each question on a terminal)."""
    if list_keys:
        for c in CONTRAINDICATIONS:
            kind = "absolute" if c.absolute else "relative: needs a medical clearance"
            console.print(f"{c.key:22} {c.question} ({kind})")
        return
    answers = set(yes)
    if not yes and not none_:
        if not sys.stdin.isatty():
            _fail(ValueError("give --yes KEY for each yes answer, or --none"))
        for c in CONTRAINDICATIONS:
            if click.confirm(f"Does {name} have {c.question}?", default=False):
                answers.add(c.key)
                if not c.absolute and click.confirm("  Is a medical clearance on file?"):
                    clearances += (c.key,)
    problems = validate_answers(answers, set(clearances))
    if problems:
        _fail(ValueError("; ".join(problems)))
    store = open_store(db_path)
    try:
        store.add_screening(
            name, taken_by, answers, set(clearances), [c.key for c in CONTRAINDICATIONS]
        )
        h = store.history(name)
    except StoreError as e:
        _fail(e)
        return
    d = check_client(h, utcnow(), policy=SitePolicy())
    console.print(f"screening of {name} recorded")
    if d.allowed:
        console.print("[green]may train[/]")
    for r in d.reasons:
        console.print(f"[red]may not train[/]: {r}")


@clients.command()
@click.argument("name")
@db_option
def history(name: str, db_path: Path | None) -> None:
    """Every session of a client, newest first."""
    store = open_store(db_path)
    try:
        sessions = store.sessions_of(name)
    except StoreError as e:
        _fail(e)
        return
    table = Table(title=f"{name}: sessions")
    for col in (
        "session",
        "started (UTC)",
        "workout",
        "status",
        "min",
        "trainer",
        "max mA",
        "charge mC",
    ):
        table.add_column(col)
    for s in sessions:
        ch = s["channels"].values()
        table.add_row(
            str(s["session"]),
            s["started_at"][:16].replace("T", " "),
            s["workout"],
            s["status"],
            f"{s['class_s'] / 60:.1f}",
            s["trainer"] or "—",
            f"{max((c['max_mA'] for c in ch), default=0):g}",
            f"{sum(c['charge_uC'] for c in ch) / 1000:.0f}",
        )
    console.print(table)


@clients.command()
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to a file instead of standard output.",
)
@db_option
def export(fmt: str, out: Path | None, db_path: Path | None) -> None:
    """Export clients, screenings and sessions for gym systems."""
    store = open_store(db_path)
    text = store.export_csv() if fmt == "csv" else store.export_json()
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {out}")
