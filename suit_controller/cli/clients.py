"""`suitctl clients …`: the studio's clients, their screenings, history and export."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from suit_controller.cli.errors import EXIT_INVALID, err_console, shown
from suit_controller.commands import printable
from suit_controller.studio.export import export_csv, export_document, export_json, parse_since
from suit_controller.studio.screening import (
    BY_KEY,
    CONTRAINDICATIONS,
    SitePolicy,
    check_client,
    validate_answers,
)
from suit_controller.studio.store import Store, StoreError, default_location, utcnow

console = Console(soft_wrap=True)

db_option = click.option(
    "--db",
    "db_path",
    metavar="FILE|URL",
    default=None,
    help="The studio database: a SQLite file, or postgresql://user@host/db for records "
    "shared by several controllers (default $SUITCTL_DB or "
    "~/.local/share/suit-controller/studio.db).",
)


def open_store(db_path: str | Path | None) -> Store:
    """Open the studio database, reporting classes found interrupted since the last start."""
    location = str(db_path) if db_path else default_location()
    try:
        store = Store(location)
    except StoreError as e:
        err_console.print(f"[red]error[/]: {shown(str(e))}", highlight=False)
        sys.exit(EXIT_INVALID)
    for class_id in store.recovered:
        err_console.print(
            f"[yellow]note[/]: class {class_id} was interrupted (the program stopped "
            "during the class); its record is kept up to its last write",
            highlight=False,
        )
    return store


def _fail(e: Exception) -> None:
    err_console.print(f"[red]error[/]: {shown(str(e))}", highlight=False)
    sys.exit(EXIT_INVALID)


@click.group()
def clients() -> None:
    """Clients, screenings, session history and export."""


@clients.command()
@click.argument("name")
@click.option("--birth", "birth_date", help="YYYY-MM-DD")
@click.option("--notes", default="")
@click.option("--member-id", "member_id", help="The gym's own id for this client (unique).")
@db_option
def add(
    name: str, birth_date: str | None, notes: str, member_id: str | None, db_path: str | None
) -> None:
    """Add a client (they get an id of their own; two clients may share a name)."""
    store = open_store(db_path)
    try:
        record = store.add_client(name, birth_date, notes, member_id)
    except StoreError as e:
        _fail(e)
        return
    ref = record.member_id or (record.id if len(store.clients()) > 1 else name)
    console.print(f"added {shown(record.name)} (id {record.id})", highlight=False)
    console.print(f"next: suitctl clients screen {ref!r} --by TRAINER", highlight=False)


@clients.command("list")
@db_option
def list_(db_path: str | None) -> None:
    """List every client with their screening and last session."""
    store = open_store(db_path)
    table = Table(title="Clients")
    for col in ("name", "member id", "id", "screened", "sessions", "last session", "may train now"):
        table.add_column(col)
    now = utcnow()
    for c in store.clients():
        h = store.history(c.id)
        d = check_client(h, now)
        table.add_row(
            shown(c.name),
            shown(c.member_id or "—"),
            c.id[:8],
            h.screening.taken_at.date().isoformat() if h.screening else "—",
            str(h.sessions),
            h.last_session_at.strftime("%Y-%m-%d %H:%M") if h.last_session_at else "—",
            "[green]yes[/]" if d.allowed else f"[red]no[/]: {shown(d.reasons[0])}",
        )
    console.print(table)


@clients.command()
@click.argument("name")
@db_option
def show(name: str, db_path: str | None) -> None:
    """A client's screening, calibrated levels, and whether they may train now."""
    store = open_store(db_path)
    try:
        record = store.client(name)
        h = store.history(record.id)
        calibration = store.calibration(record.id)
    except StoreError as e:
        _fail(e)
        return
    d = check_client(h, utcnow())
    console.print(f"[bold]{shown(record.name)}[/]: {h.sessions} session(s)", highlight=False)
    console.print(
        f"id {record.id}; member id {printable(record.member_id or '—')}",
        highlight=False,
        markup=False,
    )
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
        console.print(f"[red]not now[/]: {shown(r)}", highlight=False)
    for g in d.guidance:
        console.print(f"guidance: {shown(g)}", highlight=False)


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
    db_path: str | None,
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
            if click.confirm(f"Does {printable(name)} have {c.question}?", default=False):
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
    console.print(f"screening of {shown(name)} recorded", highlight=False)
    if d.allowed:
        console.print("[green]may train[/]")
    for r in d.reasons:
        console.print(f"[red]may not train[/]: {shown(r)}", highlight=False)


@clients.command()
@click.argument("name")
@db_option
def history(name: str, db_path: str | None) -> None:
    """Every session of a client, newest first (simulated ones marked)."""
    store = open_store(db_path)
    try:
        sessions = store.sessions_of(name)
    except StoreError as e:
        _fail(e)
        return
    table = Table(title=f"{shown(name)}: sessions")
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
            s["session_id"][:8],
            s["started_at"][:16].replace("T", " "),
            shown(s["workout"]),
            s["status"] + (" (simulated)" if s["simulated"] else ""),
            f"{s['class_s'] / 60:.1f}",
            shown(s["trainer"] or "—"),
            f"{max((c['max_mA'] for c in ch), default=0):g}",
            f"{sum(c['charge_uC'] for c in ch) / 1000:.0f}",
        )
    console.print(table)


@clients.command()
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--table",
    type=click.Choice(["sessions", "clients"]),
    default="sessions",
    show_default=True,
    help="CSV only: one row per session, or one per client (JSON holds both).",
)
@click.option(
    "--include-health",
    is_flag=True,
    help="Add health data: screening answers, clearances, notes (left out by default).",
)
@click.option(
    "--since",
    metavar="TIME",
    help="Only sessions of classes changed at or after TIME (UTC unless given), e.g. the "
    "previous export's exported_at.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to a file instead of standard output.",
)
@db_option
def export(
    fmt: str,
    table: str,
    include_health: bool,
    since: str | None,
    out: Path | None,
    db_path: str | None,
) -> None:
    """Export clients and sessions for gym systems (columns in docs/records.md)."""
    try:
        when = parse_since(since) if since else None
    except StoreError as e:
        _fail(e)
        return
    store = open_store(db_path)
    doc = export_document(store, include_health=include_health, since=when)
    text = export_json(doc) if fmt == "json" else export_csv(doc, table)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(
            f"wrote {out}: {len(doc['sessions'])} session(s), {len(doc['clients'])} client(s); "
            f"next incremental export: --since {doc['exported_at']}",
            highlight=False,
        )
