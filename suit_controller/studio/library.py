"""The studio's workout library: the built-in workouts and the studio's own, every version kept.

Theory of operation
-------------------
The YAML text stays the source of truth. A *version* of a workout is its exact
text, named by the SHA-256 of its UTF-8 bytes (`workout_hash`); the table
`workout_versions` keeps every version a trainer saved or a class ran, so a
class's `workout_hash` always leads back to the text it ran. A *library
workout* (`library_workouts`) is the studio's own: a uuid, its current
version, archived or not, and what it was duplicated from. The built-in
workouts live in the package (`builtin:NAME`); their versions are stored the
first time a class runs them.

Text from outside (the editor, an import) is checked before any YAML parser
sees it (`hostile_text`): its size, binary control characters, lone
surrogates, anchors and aliases (a "billion laughs" bomb), and nesting depth.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
)
from ruamel.yaml.util import load_yaml_guess_indent
from sqlalchemy import Connection, select

from suit_controller.studio.schema import library_workouts, workout_versions
from suit_controller.studio.store import Store, StoreError, iso, utcnow
from workouts.library import BUILTIN_PREFIX, builtin_names, builtin_text
from workouts.loader import load_workout_text
from workouts.model import Workout

#: The longest workout text the studio takes (the longest built-in is about 3 KB).
MAX_YAML_CHARS = 32 * 1024
#: Deepest nesting of mappings and lists a workout may have (the format needs 5).
MAX_YAML_DEPTH = 12
#: Most mappings, lists and values one workout may hold.
MAX_YAML_NODES = 5000


class LibraryError(StoreError):
    """A library request that cannot be done (no such workout, a built-in changed, …)."""


class HostileText(ValueError):
    """Text refused before parsing; the message says why in plain words."""


def workout_hash(text: str) -> str:
    """The version's name: SHA-256 of the YAML text's UTF-8 bytes, hex."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hostile_text(text: str) -> None:
    """Refuse text no workout needs, before any YAML parser builds it (raises HostileText)."""
    if len(text) > MAX_YAML_CHARS:
        raise HostileText(f"a workout is at most {MAX_YAML_CHARS // 1024} KB of text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise HostileText("the text holds a lone surrogate (broken Unicode)") from None
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text) or "\x7f" in text:
        raise HostileText("the text holds binary control characters: not a YAML workout")
    depth = nodes = 0
    try:
        for event in YAML(typ="safe", pure=True).parse(io.StringIO(text)):
            if isinstance(event, AliasEvent) or (
                isinstance(event, NodeEvent) and event.anchor is not None
            ):
                line = event.start_mark.line + 1 if event.start_mark else None
                where = f" (line {line})" if line else ""
                raise HostileText(f"YAML anchors and aliases (& and *) are not allowed{where}")
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    raise HostileText(f"the workout nests deeper than {MAX_YAML_DEPTH} levels")
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            if isinstance(event, NodeEvent):
                nodes += 1
                if nodes > MAX_YAML_NODES:
                    raise HostileText(f"a workout holds at most {MAX_YAML_NODES} values")
    except YAMLError:
        return  # the validator reports broken YAML with its line


@dataclass(frozen=True)
class Entry:
    """One workout of the library as the pages list it."""

    id: str  # `builtin:NAME` or the library workout's uuid
    title: str
    hash: str
    builtin: bool
    archived: bool
    updated_at: str | None
    copied_from: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "hash": self.hash,
            "builtin": self.builtin,
            "archived": self.archived,
            "updated_at": self.updated_at,
            "copied_from": self.copied_from,
        }


@dataclass(frozen=True)
class Resolved:
    """A workout a class is about to run: what the record names, its text and its hash."""

    record_name: str  # the built-in's name (`classic_strength`) or the library workout's title
    text: str
    hash: str
    workout: Workout


def parse_checked(text: str, source: str = "workout") -> Workout:
    """`hostile_text`, then the validator of `suitctl workout validate` (raises either error)."""
    hostile_text(text)
    return load_workout_text(text, source=source)


class Library:
    """The workout library over the studio's `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- reading ----------------------------------------------------------------------
    def entries(self, query: str = "", *, archived: bool = False) -> list[Entry]:
        """Built-ins first, then the studio's own (newest first); `query` searches titles."""
        q = query.strip().casefold()
        out = []
        for name in builtin_names():
            text = builtin_text(name)
            title = load_workout_text(text, source=f"{BUILTIN_PREFIX}{name}").name
            ref = f"{BUILTIN_PREFIX}{name}"
            out.append(Entry(ref, title, workout_hash(text), True, False, None))
        with self.engine.begin() as c:
            rows = c.execute(
                select(library_workouts).order_by(library_workouts.c.updated_at.desc())
            ).mappings()
            out += [_entry(r) for r in rows if archived or not r["archived"]]
        return [e for e in out if not q or q in e.title.casefold() or q in e.id.casefold()]

    def text(self, ref: str) -> tuple[Entry, str]:
        """A workout's entry and the YAML text of its current version."""
        if ref.startswith(BUILTIN_PREFIX):
            name = ref.removeprefix(BUILTIN_PREFIX)
            try:
                text = builtin_text(name)
            except KeyError as e:
                raise LibraryError(str(e.args[0])) from None
            title = load_workout_text(text, source=ref).name
            return Entry(ref, title, workout_hash(text), True, False, None), text
        with self.engine.begin() as c:
            row = self._row(c, ref)
            text = c.execute(
                select(workout_versions.c.yaml).where(
                    workout_versions.c.hash == row["current_hash"]
                )
            ).scalar_one()
            return _entry(row), str(text)

    def versions(self, ref: str) -> list[dict[str, Any]]:
        """Every saved version of a library workout, newest first."""
        if ref.startswith(BUILTIN_PREFIX):
            entry, _ = self.text(ref)
            return [{"hash": entry.hash, "title": entry.title, "created_at": None,
                     "created_by": "built in"}]  # fmt: skip
        with self.engine.begin() as c:
            row = self._row(c, ref)
            rows = c.execute(
                select(workout_versions)
                .where(workout_versions.c.workout_id == row["id"])
                .order_by(workout_versions.c.created_at.desc())
            ).mappings()
            return [
                {"hash": r["hash"], "title": r["title"], "created_at": r["created_at"],
                 "created_by": r["created_by"]}
                for r in rows
            ]  # fmt: skip

    def version_text(self, hash_: str) -> str:
        """The text of the version named `hash_` (a saved one or one a class ran)."""
        with self.engine.begin() as c:
            text = c.execute(
                select(workout_versions.c.yaml).where(workout_versions.c.hash == hash_)
            ).scalar()
        if text is None:
            for name in builtin_names():
                if workout_hash(builtin_text(name)) == hash_:
                    return builtin_text(name)
            raise LibraryError(f"no workout version {hash_[:12]}")
        return str(text)

    # -- changing ---------------------------------------------------------------------
    def add(self, text: str, by: str, *, copied_from: str | None = None) -> Entry:
        """A new workout of the studio from YAML text (validated; raises its errors)."""
        workout = parse_checked(text)
        h = workout_hash(text)
        now = iso(utcnow())
        with self.engine.begin() as c:
            pk = c.execute(
                library_workouts.insert()
                .values(uuid=str(uuid.uuid4()), title=workout.name, current_hash=h,
                        archived=False, copied_from=copied_from, created_at=now,
                        created_by=by, updated_at=now)
                .returning(library_workouts.c.id)
            ).scalar_one()  # fmt: skip
            self._keep_version(c, h, text, workout.name, by, workout_id=int(pk))
            return _entry(self._row_by_pk(c, int(pk)))

    def save(self, ref: str, text: str, by: str) -> Entry:
        """A new version of a library workout (the same text again changes nothing)."""
        if ref.startswith(BUILTIN_PREFIX):
            raise LibraryError("a built-in workout cannot be changed: duplicate it first")
        workout = parse_checked(text)
        h = workout_hash(text)
        with self.engine.begin() as c:
            row = self._row(c, ref)
            if row["current_hash"] != h:
                self._keep_version(c, h, text, workout.name, by, workout_id=int(row["id"]))
                c.execute(
                    library_workouts.update()
                    .where(library_workouts.c.id == row["id"])
                    .values(current_hash=h, title=workout.name, updated_at=iso(utcnow()))
                )
            return _entry(self._row_by_pk(c, int(row["id"])))

    def duplicate(self, ref: str, by: str) -> Entry:
        """A copy of any workout (built-in or own), named "… (copy)", comments and order kept."""
        entry, text = self.text(ref)
        return self.add(renamed(text, f"{entry.title} (copy)"), by, copied_from=entry.id)

    def archive(self, ref: str, archived: bool) -> Entry:
        """Archive (hide from the list and from class set-up) or bring back a workout."""
        if ref.startswith(BUILTIN_PREFIX):
            raise LibraryError("the built-in workouts cannot be archived")
        with self.engine.begin() as c:
            row = self._row(c, ref)
            c.execute(
                library_workouts.update()
                .where(library_workouts.c.id == row["id"])
                .values(archived=archived, updated_at=iso(utcnow()))
            )
            return _entry(self._row_by_pk(c, int(row["id"])))

    def resolve(self, ref: str, by: str) -> Resolved:
        """The workout a class will run (`classic_strength`, `builtin:…`, a uuid); version kept."""
        name = ref if ref.startswith(BUILTIN_PREFIX) or _is_uuid(ref) else BUILTIN_PREFIX + ref
        entry, text = self.text(name)
        if entry.archived:
            raise LibraryError(f"'{entry.title}' is archived: bring it back first")
        workout = load_workout_text(text, source=entry.id)
        with self.engine.begin() as c:
            self._keep_version(c, entry.hash, text, entry.title, by, builtin=entry.builtin and name)
        record = name.removeprefix(BUILTIN_PREFIX) if entry.builtin else entry.title
        return Resolved(record, text, entry.hash, workout)

    def keep_run(self, text: str, title: str, by: str, *, builtin: str | None = None) -> str:
        """Keep the version of a workout a class runs from outside the library; its hash.

        `suitctl class run` and `sim run` give a workout file or `builtin:NAME`:
        the class records this hash, and the text stays readable by it.
        """
        h = workout_hash(text)
        with self.engine.begin() as c:
            self._keep_version(c, h, text, title, by, builtin=builtin or False)
        return h

    # -- helpers ----------------------------------------------------------------------
    def _keep_version(
        self,
        c: Connection,
        h: str,
        text: str,
        title: str,
        by: str,
        *,
        workout_id: int | None = None,
        builtin: str | bool = False,
    ) -> None:
        if c.execute(select(workout_versions.c.hash).where(workout_versions.c.hash == h)).first():
            return
        c.execute(
            workout_versions.insert().values(
                hash=h, yaml=text, title=title, workout_id=workout_id,
                builtin=builtin or None, created_at=iso(utcnow()), created_by=by,
            )
        )  # fmt: skip

    def _row(self, c: Connection, ref: str) -> Any:
        row = None
        if _is_uuid(ref):
            row = (
                c.execute(select(library_workouts).where(library_workouts.c.uuid == ref))
                .mappings()
                .first()
            )
        if row is None:
            raise LibraryError(f"no workout '{ref}' in the library")
        return row

    def _row_by_pk(self, c: Connection, pk: int) -> Any:
        query = select(library_workouts).where(library_workouts.c.id == pk)
        return c.execute(query).mappings().one()


def _is_uuid(ref: str) -> bool:
    try:
        uuid.UUID(ref)
    except ValueError:
        return False
    return len(ref) == 36


def _entry(r: Any) -> Entry:
    return Entry(
        r["uuid"], r["title"], r["current_hash"], False, bool(r["archived"]), r["updated_at"],
        r["copied_from"],
    )  # fmt: skip


def renamed(text: str, title: str) -> str:
    """`text` with its `name:` set to `title`, keeping the trainer's comments and key order."""
    yaml = YAML(typ="rt")
    yaml.width = 100
    tree = yaml.load(text)
    tree["name"] = title
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()


#: One change the editor's form makes: where (a path of keys and list indexes) and the new value
#: (None removes the key).
Change = tuple[tuple[str | int, ...], "str | float | int | None"]


class EditError(ValueError):
    """A form change that does not fit the workout's YAML (the message says where)."""


def edit_yaml(text: str, changes: list[Change]) -> str:
    """`text` with `changes` applied, keeping the trainer's comments, key order and style."""
    hostile_text(text)
    yaml = YAML(typ="rt")
    yaml.width = 4096  # never re-wrap the trainer's lines
    yaml.preserve_quotes = True
    try:
        tree = yaml.load(text)
        _, indent, offset = load_yaml_guess_indent(text)
    except YAMLError as e:
        raise EditError(f"fix the YAML first: {e}") from None
    if indent is not None:  # write lists the way the trainer wrote them ("  - name:")
        offset = offset or 0
        yaml.indent(mapping=max(2, indent - offset), sequence=indent, offset=offset)
    for path, value in changes:
        if not path:
            raise EditError("a change needs a place")
        node: Any = tree
        for key in path[:-1]:
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                raise EditError(f"no {'.'.join(map(str, path))} in this workout") from None
        last = path[-1]
        if isinstance(node, dict) and isinstance(last, str):
            if value is None:
                node.pop(last, None)
            else:
                node[last] = value
        elif isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node):
            node[last] = value
        else:
            raise EditError(f"no {'.'.join(map(str, path))} in this workout")
    out = io.StringIO()
    yaml.dump(tree, out)
    return out.getvalue()
