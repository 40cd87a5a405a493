"""The studio's memory: clients, screenings, trainers, classes and every session.

Two backends behind one schema (`schema.py`) and one migration path
(`migrations.py`), through SQLAlchemy Core:

* SQLite, the embedded default: one file, WAL journal (readers never block the
  class's writer), every transaction `BEGIN IMMEDIATE` (it takes the write lock
  first, so a check and the insert that depends on it cannot interleave with
  another writer's).
* PostgreSQL, when several controllers share one studio's records: the
  rest-day rule then sees a session from any room.

Theory of operation of the check-in guard
-----------------------------------------
`open_class` re-reads each client's history and re-applies the S5 rules inside
the transaction that inserts the class's sessions. Before reading, it locks
the clients' rows (`SELECT … FOR UPDATE`, in id order so two controllers
never deadlock; on SQLite the database's write lock does the same). A second
controller checking in the same client waits for the first one's commit, then
sees its session and is refused (`CheckInRefused`). A simulated class takes no
lock and is never refused for the rest-day rule: it stimulates nobody, and its
sessions never count for that rule (`history`).

Every public id is a UUID (text); integer keys stay inside the store.
A class left `running` by a process that no longer exists is marked
`interrupted` the next time a store on the same host is opened (a class of
another host, when it has not written for `STALE_AFTER_S`).
A class whose session could not be built after `open_class` is removed
(`discard_class`): it never started, so it is neither left `running` nor
counted for the rest-day rule.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    RowMapping,
    and_,
    create_engine,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError

from suit_controller.commands import refuse_unshowable
from suit_controller.records import SessionEvent
from suit_controller.studio.migrations import MigrationError, migrate
from suit_controller.studio.schema import (
    calibrations,
    class_events,
    classes,
    clients,
    screenings,
    session_channels,
    sessions,
    trainers,
)
from suit_controller.studio.screening import (
    DEFAULT_POLICY,
    ClientHistory,
    Screening,
    SitePolicy,
    check_client,
)

#: A running class of another host that has not written for this long is taken as interrupted.
STALE_AFTER_S = 600.0


class StoreError(Exception):
    """A user-facing problem with the studio's records (unknown client, duplicate, …)."""


class CheckInRefused(StoreError):
    """The rules refused a client when the class was opened; `reasons`, one line each."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    """The one text form of a timestamp in the records: UTC, milliseconds."""
    return t.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def parse_iso(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text)
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def default_db_path() -> Path:
    """`$XDG_DATA_HOME/suit-controller/studio.db` (or ~/.local/share/…)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "suit-controller" / "studio.db"


def default_location() -> str:
    """`$SUITCTL_DB` (a file or a postgresql:// URL), else the default file."""
    return os.environ.get("SUITCTL_DB") or str(default_db_path())


def create_private(path: Path) -> None:
    """Create the database file readable and writable by its owner only (0600), whatever
    the umask, if it does not exist yet; SQLite gives its -wal and -shm files the same
    mode. An existing file is left as it is."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        if os.name == "posix":
            os.fchmod(fd, 0o600)  # the umask may have taken bits away (never adds any)
    finally:
        os.close(fd)


def database_url(location: str | Path) -> URL:
    """A file path means SQLite; `postgresql://…` means PostgreSQL (through psycopg 3)."""
    text = str(location)
    if "://" not in text:
        path = Path(text).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        if text not in ("", ":memory:"):
            create_private(path)
        return URL.create("sqlite+pysqlite", database=str(path))
    try:
        url = make_url(text)
    except ArgumentError:
        raise StoreError(f"'{text}' is neither a file nor a database URL") from None
    if url.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg")
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        return url.set(drivername="sqlite+pysqlite")
    raise StoreError(
        f"the studio database must be a file or a postgresql:// URL, not {url.drivername}://"
    )


def open_engine(location: str | Path) -> Engine:
    """An engine with the studio's settings (see the module's docstring)."""
    url = database_url(location)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30.0, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are ours (BEGIN IMMEDIATE below)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                dbapi_conn.execute(f"PRAGMA {pragma}")

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    try:
        return create_engine(url, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError):
        raise StoreError(
            "PostgreSQL needs psycopg: pip install 'suit-controller[postgresql]'"
        ) from None


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class ClientRecord:
    """A client as the studio knows them. `id` is theirs for good; names may repeat."""

    id: str
    member_id: str | None
    name: str
    birth_date: str | None
    notes: str
    created_at: str


@dataclass(frozen=True)
class RosterEntry:
    """One client of a class as the records keep them (`client_id` is the client's UUID)."""

    client_id: str | None
    name: str
    suit: str
    trainer: str | None
    first_session: bool
    abdominal_off: bool


@dataclass(frozen=True)
class OpenedClass:
    """A class the store has opened: its id and its sessions' ids, in roster order.

    `row` and `session_rows` are the database's own keys, for the store's use.
    """

    id: str
    sessions: tuple[str, ...]
    names: tuple[str, ...]
    row: int
    session_rows: tuple[int, ...]


@dataclass(frozen=True)
class ChannelTotals:
    """What one channel delivered so far in a session."""

    charge_uC: float
    stim_s: float
    max_mA: float
    contractions: int


def _client(row: RowMapping) -> ClientRecord:
    return ClientRecord(
        row["uuid"],
        row["member_id"],
        row["name"],
        row["birth_date"],
        row["notes"],
        row["created_at"],
    )


class Store:
    """The studio database: a SQLite file or a PostgreSQL URL (`location`)."""

    def __init__(self, location: str | Path, *, recover: bool = True) -> None:
        self.location = str(location)
        self.engine = open_engine(location)
        try:
            migrate(self.engine)
        except MigrationError as e:
            self.engine.dispose()
            raise StoreError(str(e)) from None
        except DBAPIError as e:
            self.engine.dispose()
            raise StoreError(f"cannot open the studio database: {e.orig}") from None
        self.backend = self.engine.dialect.name
        self.recovered = self.recover_interrupted() if recover else []

    def close(self) -> None:
        self.engine.dispose()

    # -- clients and trainers -----------------------------------------------------------
    def add_client(
        self,
        name: str,
        birth_date: str | None = None,
        notes: str = "",
        member_id: str | None = None,
    ) -> ClientRecord:
        """A new client with a new UUID; `member_id` is the gym's own id (unique when given)."""
        name = name.strip()
        if not name:
            raise StoreError("a client needs a name")
        try:
            refuse_unshowable(name, "a client's name")
            refuse_unshowable(member_id or "", "a member id")
        except ValueError as e:
            raise StoreError(str(e)) from None
        member_id = member_id.strip() if member_id else None
        if birth_date is not None:
            try:
                dt.date.fromisoformat(birth_date)
            except ValueError:
                raise StoreError(f"birth date '{birth_date}' is not YYYY-MM-DD") from None
        client_id = new_id()
        try:
            with self.engine.begin() as c:
                c.execute(
                    clients.insert().values(
                        uuid=client_id,
                        member_id=member_id,
                        name=name,
                        birth_date=birth_date,
                        notes=notes,
                        created_at=iso(utcnow()),
                    )
                )
        except IntegrityError:
            owner = self.client(member_id or "")
            raise StoreError(f"member id '{member_id}' already belongs to {owner.name}") from None
        return self.client(client_id)

    def client(self, ref: str) -> ClientRecord:
        """A client by id (or its first 8+ characters), member id, or name (when unique)."""
        with self.engine.begin() as c:
            return _client(self._client_row(c, ref))

    def _client_row(self, c: Connection, ref: str) -> RowMapping:
        ref = ref.strip()
        for column in (clients.c.uuid, clients.c.member_id):
            row = c.execute(select(clients).where(column == ref)).mappings().first()
            if row is not None:
                return row
        if len(ref) >= 8 and all(ch in "0123456789abcdef-" for ch in ref.lower()):
            rows = (
                c.execute(select(clients).where(clients.c.uuid.startswith(ref.lower())))
                .mappings()
                .all()
            )
            if len(rows) == 1:  # the first characters of an id, as `clients list` shows them
                return rows[0]
        rows = c.execute(select(clients).where(clients.c.name == ref)).mappings().all()
        if len(rows) == 1:
            return rows[0]
        if rows:
            ids = ", ".join(r["member_id"] or r["uuid"] for r in rows)
            raise StoreError(
                f"{len(rows)} clients are named '{ref}': give a client id or member id ({ids})"
            )
        known = c.execute(select(clients.c.name).order_by(clients.c.name)).scalars().all()
        hint = f" (clients: {', '.join(known)})" if known else " (no clients yet: clients add)"
        raise StoreError(f"no client named '{ref}'{hint}")

    def clients(self) -> list[ClientRecord]:
        with self.engine.begin() as c:
            rows = c.execute(select(clients).order_by(clients.c.name, clients.c.id)).mappings()
            return [_client(r) for r in rows]

    def ensure_trainer(self, name: str) -> None:
        with self.engine.begin() as c:
            self._ensure_trainer(c, name)

    def _ensure_trainer(self, c: Connection, name: str) -> None:
        exists = c.execute(select(trainers.c.id).where(trainers.c.name == name)).first()
        if exists is None:
            c.execute(trainers.insert().values(name=name, created_at=iso(utcnow())))

    # -- screenings ------------------------------------------------------------------
    def add_screening(
        self,
        client: str,
        taken_by: str,
        yes: set[str],
        clearances: set[str],
        all_keys: Sequence[str],
        taken_at: dt.datetime | None = None,
    ) -> None:
        answers = {k: k in yes for k in all_keys}
        with self.engine.begin() as c:
            row = self._client_row(c, client)
            self._ensure_trainer(c, taken_by)
            c.execute(
                screenings.insert().values(
                    client_id=row["id"],
                    taken_at=iso(taken_at or utcnow()),
                    taken_by=taken_by,
                    answers=json.dumps(answers),
                    clearances=json.dumps(sorted(clearances)),
                )
            )

    def latest_screening(self, client: str) -> Screening | None:
        with self.engine.begin() as c:
            return self._latest_screening(c, int(self._client_row(c, client)["id"]))

    def _latest_screening(self, c: Connection, pk: int) -> Screening | None:
        row = (
            c.execute(
                select(screenings)
                .where(screenings.c.client_id == pk)
                .order_by(screenings.c.taken_at.desc(), screenings.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        answers = json.loads(row["answers"])
        return Screening(
            parse_iso(row["taken_at"]),
            row["taken_by"],
            frozenset(k for k, v in answers.items() if v),
            frozenset(json.loads(row["clearances"])),
        )

    # -- history ----------------------------------------------------------------------
    def history(self, client: str) -> ClientHistory:
        """What the S5 rules need: screening, last and first session, count.

        For the rest-day rule (`last_session_at`) every session of a real class
        counts, a running one included (another room may be stimulating the
        client right now). The count and the first session (which decide the
        first-session cap) take only sessions in which some channel stimulated:
        a class that ended before stimulating leaves the next one capped as a
        first session. A simulated class never counts.
        """
        with self.engine.begin() as c:
            row = self._client_row(c, client)
            return self._history(c, int(row["id"]), row["name"])

    def _history(self, c: Connection, pk: int, name: str) -> ClientHistory:
        real = sessions.join(classes, sessions.c.class_id == classes.c.id)
        mine = (sessions.c.client_id == pk, classes.c.simulated.is_(False))
        last = c.execute(select(func.max(classes.c.started_at)).select_from(real).where(*mine))
        stimulated = (
            select(session_channels.c.session_id)
            .where(session_channels.c.session_id == sessions.c.id, session_channels.c.stim_s > 0)
            .exists()
        )
        n, first = c.execute(
            select(func.count(), func.min(classes.c.started_at))
            .select_from(real)
            .where(*mine, stimulated)
        ).one()
        last_at = last.scalar()
        return ClientHistory(
            name,
            self._latest_screening(c, pk),
            parse_iso(last_at) if last_at else None,
            parse_iso(first) if first else None,
            int(n),
        )

    def histories(self) -> dict[str, ClientHistory]:
        """Every client's `history`, by client id, read in one transaction (a list page)."""
        real = sessions.join(classes, sessions.c.class_id == classes.c.id)
        counted = (classes.c.simulated.is_(False), sessions.c.client_id.is_not(None))
        stimulated = (
            select(session_channels.c.session_id)
            .where(session_channels.c.session_id == sessions.c.id, session_channels.c.stim_s > 0)
            .exists()
        )
        with self.engine.begin() as c:
            people = c.execute(select(clients.c.id, clients.c.uuid, clients.c.name)).all()
            last = dict(
                c.execute(
                    select(sessions.c.client_id, func.max(classes.c.started_at))
                    .select_from(real)
                    .where(*counted)
                    .group_by(sessions.c.client_id)
                ).all()
            )
            firsts = {
                pk: (int(n), first)
                for pk, n, first in c.execute(
                    select(sessions.c.client_id, func.count(), func.min(classes.c.started_at))
                    .select_from(real)
                    .where(*counted, stimulated)
                    .group_by(sessions.c.client_id)
                ).all()
            }
            latest: dict[int, Screening] = {}
            for row in c.execute(
                select(screenings).order_by(screenings.c.taken_at, screenings.c.id)
            ).mappings():
                answers = json.loads(row["answers"])
                latest[int(row["client_id"])] = Screening(
                    parse_iso(row["taken_at"]),
                    row["taken_by"],
                    frozenset(k for k, v in answers.items() if v),
                    frozenset(json.loads(row["clearances"])),
                )
        out = {}
        for pk, uid, name in people:
            n, first = firsts.get(pk, (0, None))
            last_at = last.get(pk)
            out[str(uid)] = ClientHistory(
                name,
                latest.get(pk),
                parse_iso(last_at) if last_at else None,
                parse_iso(first) if first else None,
                n,
            )
        return out

    # -- a class ------------------------------------------------------------------------
    def open_class(
        self,
        workout: str,
        roster: Sequence[RosterEntry],
        *,
        simulated: bool,
        room: str | None = None,
        policy: SitePolicy = DEFAULT_POLICY,
        now: dt.datetime | None = None,
        workout_hash: str | None = None,
    ) -> OpenedClass:
        """Check every client in again and record the class as running, in one transaction.

        Raises CheckInRefused when a rule no longer holds (another controller was
        faster); nothing is recorded then.
        """
        with self.engine.begin() as c:
            pks: list[int | None] = []
            for r in roster:
                pks.append(
                    None if r.client_id is None else int(self._client_row(c, r.client_id)["id"])
                )
            if not simulated:
                reasons: list[str] = []
                known = sorted({pk for pk in pks if pk is not None})
                locked = c.execute(
                    select(clients.c.id, clients.c.name)
                    .where(clients.c.id.in_(known))
                    .order_by(clients.c.id)
                    .with_for_update()
                ).all()
                now = now or utcnow()  # after the wait: a session recorded meanwhile is past
                for pk, name in locked:
                    decision = check_client(self._history(c, pk, name), now, policy=policy)
                    reasons += decision.reasons
                if reasons:
                    raise CheckInRefused(reasons)
            now = now or utcnow()
            stamp = iso(now)
            class_id = new_id()
            row = c.execute(
                classes.insert()
                .values(
                    uuid=class_id,
                    workout=workout,
                    workout_hash=workout_hash,
                    started_at=stamp,
                    status="running",
                    simulated=simulated,
                    room=room,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    last_write_at=stamp,
                    updated_at=stamp,
                    class_s=0.0,
                )
                .returning(classes.c.id)
            ).scalar_one()
            ids, rows = [], []
            for r, pk in zip(roster, pks, strict=True):
                if r.trainer:
                    self._ensure_trainer(c, r.trainer)
                sid = new_id()
                rows.append(
                    c.execute(
                        sessions.insert()
                        .values(
                            uuid=sid,
                            class_id=row,
                            client_id=pk,
                            client_name=r.name,
                            suit=r.suit,
                            trainer=r.trainer,
                            first_session=r.first_session,
                            abdominal_off=r.abdominal_off,
                        )
                        .returning(sessions.c.id)
                    ).scalar_one()
                )
                ids.append(sid)
        return OpenedClass(
            class_id, tuple(ids), tuple(r.name for r in roster), int(row), tuple(rows)
        )

    def discard_class(self, opened: OpenedClass) -> bool:
        """Remove a class that never started (its session could not be built): row and sessions.

        Called when set-up fails after `open_class`, so the class is not left
        `running` (and its clients are not held by the rest-day rule for a class
        that stimulated nobody). Only a class still `running` with nothing
        recorded (no event, no totals, no time) is removed; returns whether it was.
        """
        with self.engine.begin() as c:
            row = c.execute(
                select(classes.c.status, classes.c.class_s)
                .where(classes.c.id == opened.row)
                .with_for_update()
            ).first()
            if row is None or row.status != "running" or row.class_s:
                return False
            rows = list(opened.session_rows)
            recorded = c.execute(
                select(func.count())
                .select_from(class_events)
                .where(class_events.c.class_id == opened.row)
            ).scalar_one()
            recorded += c.execute(
                select(func.count())
                .select_from(session_channels)
                .where(session_channels.c.session_id.in_(rows))
            ).scalar_one()
            recorded += c.execute(
                select(func.count())
                .select_from(calibrations)
                .where(calibrations.c.session_id.in_(rows))
            ).scalar_one()
            if recorded:
                return False
            c.execute(sessions.delete().where(sessions.c.class_id == opened.row))
            c.execute(classes.delete().where(classes.c.id == opened.row))
        return True

    def record_progress(
        self,
        opened: OpenedClass,
        channels: Sequence[Mapping[str, ChannelTotals]],
        events: Sequence[SessionEvent],
        class_s: float,
        *,
        ended: str | None = None,
        calibration: Sequence[Mapping[str, float]] | None = None,
    ) -> None:
        """One write of a running class: totals so far, new events; `ended` closes it.

        `channels` and `calibration` hold one mapping per session, in roster order.
        """
        now = iso(utcnow())
        by_name: dict[str, int | None] = {}  # a name twice in one class: no session
        for name, row in zip(opened.names, opened.session_rows, strict=True):
            by_name[name] = None if name in by_name else row
        with self.engine.begin() as c:
            for row, totals in zip(opened.session_rows, channels, strict=True):
                c.execute(session_channels.delete().where(session_channels.c.session_id == row))
                if totals:
                    c.execute(
                        session_channels.insert(),
                        [
                            {
                                "session_id": row,
                                "channel": ch,
                                "charge_uC": t.charge_uC,
                                "stim_s": t.stim_s,
                                "max_mA": t.max_mA,
                                "contractions": t.contractions,
                            }
                            for ch, t in totals.items()
                        ],
                    )
            if events:
                c.execute(
                    class_events.insert(),
                    [
                        {
                            "class_id": opened.row,
                            "session_id": by_name.get(e.client) if e.client else None,
                            "t": e.t,
                            "kind": e.kind,
                            "client": e.client,
                            "message": e.message,
                            "data": json.dumps(e.data, default=str),
                        }
                        for e in events
                    ],
                )
            values: dict[str, Any] = {"last_write_at": now, "updated_at": now, "class_s": class_s}
            if ended is not None:
                values |= {"status": ended, "ended_at": now}
                for row, levels in zip(opened.session_rows, calibration or (), strict=False):
                    c.execute(calibrations.delete().where(calibrations.c.session_id == row))
                    if levels:
                        c.execute(
                            calibrations.insert(),
                            [{"session_id": row, "channel": k, "mA": v} for k, v in levels.items()],
                        )
            c.execute(update(classes).where(classes.c.id == opened.row).values(**values))

    # -- reading sessions back --------------------------------------------------------
    def sessions_of(self, client: str, *, events: bool = False) -> list[dict[str, Any]]:
        """Every session of a client, newest first (the fields of `session_record`)."""
        with self.engine.begin() as c:
            pk = int(self._client_row(c, client)["id"])
            return self._session_records(c, sessions.c.client_id == pk, events=events)

    def session_records(
        self, *, since: dt.datetime | None = None, events: bool = True
    ) -> list[dict[str, Any]]:
        """Every session (of classes changed at or after `since`), oldest first."""
        where = None if since is None else classes.c.updated_at >= iso(since)
        with self.engine.begin() as c:
            return list(reversed(self._session_records(c, where, events=events)))

    def _session_records(self, c: Connection, where: Any, *, events: bool) -> list[dict[str, Any]]:
        query = (
            select(
                sessions.c.id.label("row"),
                sessions.c.uuid.label("session_id"),
                classes.c.uuid.label("class_id"),
                classes.c.id.label("class_row"),
                clients.c.uuid.label("client_id"),
                clients.c.member_id,
                sessions.c.client_name,
                classes.c.workout,
                classes.c.workout_hash,
                classes.c.room,
                classes.c.started_at,
                classes.c.ended_at,
                classes.c.updated_at,
                classes.c.status,
                classes.c.class_s,
                classes.c.simulated,
                sessions.c.suit,
                sessions.c.trainer,
                sessions.c.first_session,
                sessions.c.abdominal_off,
            )
            .select_from(
                sessions.join(classes, sessions.c.class_id == classes.c.id).outerjoin(
                    clients, sessions.c.client_id == clients.c.id
                )
            )
            .order_by(classes.c.started_at.desc(), sessions.c.id.desc())
        )
        if where is not None:
            query = query.where(where)
        rows = c.execute(query).mappings().all()
        rows_of = [int(r["row"]) for r in rows]
        channels: dict[int, dict[str, dict[str, Any]]] = {r: {} for r in rows_of}
        for ch in c.execute(
            select(session_channels)
            .where(session_channels.c.session_id.in_(rows_of))
            .order_by(session_channels.c.session_id, session_channels.c.channel)
        ).mappings():
            channels[int(ch["session_id"])][ch["channel"]] = {
                "charge_uC": ch["charge_uC"],
                "stim_s": ch["stim_s"],
                "max_mA": ch["max_mA"],
                "contractions": ch["contractions"],
                "calibration_mA": None,
            }
        for cal in c.execute(
            select(calibrations).where(calibrations.c.session_id.in_(rows_of))
        ).mappings():
            entry = channels[int(cal["session_id"])].setdefault(
                cal["channel"],
                {"charge_uC": 0.0, "stim_s": 0.0, "max_mA": 0.0, "contractions": 0},
            )
            entry["calibration_mA"] = cal["mA"]
        class_events_of: dict[int, list[dict[str, Any]]] = {}
        if events:
            class_rows = sorted({int(r["class_row"]) for r in rows})
            for e in c.execute(
                select(class_events)
                .where(class_events.c.class_id.in_(class_rows))
                .order_by(class_events.c.id)
            ).mappings():
                class_events_of.setdefault(int(e["class_id"]), []).append(dict(e))
        out = []
        for r in rows:
            record = {k: v for k, v in r.items() if k not in ("row", "class_row")}
            record["simulated"] = bool(r["simulated"])
            record["first_session"] = bool(r["first_session"])
            record["abdominal_off"] = bool(r["abdominal_off"])
            record["channels"] = channels[int(r["row"])]
            if events:
                record["events"] = [
                    _event(e)
                    for e in class_events_of.get(int(r["class_row"]), [])
                    if e["session_id"] in (None, r["row"])
                ]
            out.append(record)
        return out

    def sessions_of_class(self, class_id: str, *, events: bool = False) -> list[dict[str, Any]]:
        """Every session of one class, in roster order (the fields of `session_record`)."""
        with self.engine.begin() as c:
            # newest first, and within a class the last session first: reversed, roster order
            return list(
                reversed(self._session_records(c, classes.c.uuid == class_id, events=events))
            )

    def session(self, session_id: str) -> dict[str, Any]:
        """One session by its id, with its events; StoreError when there is none."""
        with self.engine.begin() as c:
            found = self._session_records(c, sessions.c.uuid == session_id, events=True)
        if not found:
            raise StoreError(f"no session {session_id}")
        return found[0]

    def calibration(self, client: str) -> dict[str, float]:
        """The set intensities per channel at the end of the client's last real session."""
        for s in self.sessions_of(client):
            if s["simulated"]:
                continue
            levels = {
                ch: float(v["calibration_mA"])
                for ch, v in s["channels"].items()
                if v["calibration_mA"] is not None
            }
            if levels:
                return levels
        return {}

    def class_record(self, class_id: str) -> dict[str, Any]:
        """A class's row (id, workout, times, status, simulated, room, host, class_s)."""
        with self.engine.begin() as c:
            row = c.execute(select(classes).where(classes.c.uuid == class_id)).mappings().first()
            if row is None:
                raise StoreError(f"no class {class_id}")
            out = {k: v for k, v in row.items() if k not in ("id", "uuid")}
            out["id"] = row["uuid"]
            out["simulated"] = bool(row["simulated"])
            return out

    def class_events(self, class_id: str) -> list[dict[str, Any]]:
        """Every recorded event of a class, in order."""
        with self.engine.begin() as c:
            row = c.execute(select(classes.c.id).where(classes.c.uuid == class_id)).first()
            if row is None:
                raise StoreError(f"no class {class_id}")
            found = c.execute(
                select(class_events, sessions.c.uuid.label("session_uuid"))
                .select_from(
                    class_events.outerjoin(sessions, class_events.c.session_id == sessions.c.id)
                )
                .where(class_events.c.class_id == row[0])
                .order_by(class_events.c.id)
            ).mappings()
            return [_event(dict(e)) for e in found]

    # -- recovery ---------------------------------------------------------------------
    def recover_interrupted(self) -> list[str]:
        """Mark classes whose process is gone as interrupted; returns their ids."""
        host = socket.gethostname()
        stale = iso(utcnow() - dt.timedelta(seconds=STALE_AFTER_S))
        done = []
        with self.engine.begin() as c:
            running = c.execute(
                select(classes.c.id, classes.c.uuid, classes.c.pid, classes.c.host)
                .where(classes.c.status == "running")
                .where(
                    or_(
                        classes.c.host == host,
                        classes.c.host.is_(None),
                        and_(classes.c.host != host, classes.c.last_write_at < stale),
                    )
                )
                .with_for_update()
            ).all()
            now = iso(utcnow())
            for pk, class_id, pid, its_host in running:
                if its_host == host and _pid_alive(pid):
                    continue
                c.execute(
                    update(classes)
                    .where(classes.c.id == pk)
                    .values(
                        status="interrupted",
                        ended_at=func.coalesce(classes.c.last_write_at, classes.c.started_at),
                        updated_at=now,
                    )
                )
                done.append(str(class_id))
        return done


def _event(e: Mapping[str, Any]) -> dict[str, Any]:
    out = {
        "t": e["t"],
        "kind": e["kind"],
        "client": e["client"],
        "message": e["message"],
        "data": json.loads(e["data"]),
    }
    if "session_uuid" in e:
        out["session_id"] = e["session_uuid"]
    return out
