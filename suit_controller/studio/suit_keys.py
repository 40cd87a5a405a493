"""The studio's records of its suits' keys (issue 18): enrolled, rotated, forgotten.

A key is created at enrollment (`suit_controller.enrollment`), stored here and
read by every class that drives the suit. The studio id is made once, on first
use. Kept apart from `store.py` so the security records have one place.

Keys at rest: the database never holds a suit key in the clear. Each is
sealed with AES-256-GCM under the studio's *key file* (32 random bytes, kept
outside the database, mode 0600, made on the first enrollment), with the
suit's address and key id as associated data (a sealed key copied to another
suit's row does not open). The key file sits next to a SQLite database
(`studio.db` → `studio.db.keys`); for PostgreSQL it is
`$XDG_DATA_HOME/suit-controller/suit-keys-<database>.key`; `$SUITCTL_KEY_FILE`
overrides both. Whoever copies the database alone cannot drive the suits; the
key file must be backed up with it (without it, every suit must be factory
reset and enrolled again). A key recorded in the clear by an older version
(64 hex digits) is still read, and sealed when next written.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select

from suit_controller.protocol.enrollment import SuitKey, new_studio_id
from suit_controller.studio.schema import classes, sessions, studio_identity, suit_keys
from suit_controller.studio.store import (
    Store,
    StoreError,
    database_url,
    default_db_path,
    iso,
    utcnow,
)

#: A sealed key's prefix in the `key` column (version 1: AES-256-GCM, 12-byte nonce).
SEALED = "aesgcm1:"
KEY_FILE_ENV = "SUITCTL_KEY_FILE"


def _address(address: str) -> str:
    return address.strip().upper()


def key_file_path(store: Store) -> Path:
    """Where this studio's key file is (see the module's docstring)."""
    override = os.environ.get(KEY_FILE_ENV)
    if override:
        return Path(override).expanduser()
    url = database_url(store.location)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        db = Path(str(url.database))
        return db.with_name(db.name + ".keys")
    safe = url.set(password=None).render_as_string(hide_password=True)
    digest = hashlib.sha256(safe.encode()).hexdigest()[:12]
    return default_db_path().parent / f"suit-keys-{digest}.key"


def _read_key_file(path: Path) -> bytes | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if os.name == "posix" and stat.S_IMODE(info.st_mode) & 0o077:
        raise StoreError(
            f"the studio's key file {path} can be read by others "
            f"(mode {stat.S_IMODE(info.st_mode):o}): run chmod 600 {path}"
        )
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as e:
        raise StoreError(f"the studio's key file {path} cannot be read: {e}") from None
    if len(raw) != 32:
        raise StoreError(f"the studio's key file {path} is damaged (not 32 bytes)")
    return raw


def _file_key(store: Store, *, create: bool) -> bytes:
    path = key_file_path(store)
    found = _read_key_file(path)
    if found is not None:
        return found
    if not create:
        raise StoreError(
            f"the suits' keys in the records are sealed with the studio's key file {path}, "
            "which is missing: restore it from the backup made with the database (or "
            f"set ${KEY_FILE_ENV} to where it is); without it, factory reset and enroll every "
            "suit again"
        )
    new = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by another process: use that one
        again = _read_key_file(path)
        assert again is not None
        return again
    with os.fdopen(fd, "w") as f:
        f.write(new.hex() + "\n")
    return new


def _aad(address: str, key_id: int) -> bytes:
    return f"suit-key|{_address(address)}|{key_id}".encode()


def seal_key(store: Store, address: str, key: SuitKey) -> str:
    """The `key` column's text for `key`: sealed under the key file (made if missing)."""
    nonce = secrets.token_bytes(12)
    box = AESGCM(_file_key(store, create=True))
    return SEALED + (nonce + box.encrypt(nonce, key.key, _aad(address, key.key_id))).hex()


def open_key(store: Store, address: str, key_id: int, text: str) -> SuitKey:
    """The suit key from its `key` column text (sealed, or hex from before sealing)."""
    if not text.startswith(SEALED):
        return SuitKey(key_id, bytes.fromhex(text))
    raw = bytes.fromhex(text[len(SEALED) :])
    box = AESGCM(_file_key(store, create=False))
    try:
        key = box.decrypt(raw[:12], raw[12:], _aad(address, key_id))
    except InvalidTag:
        raise StoreError(
            f"the key recorded for suit {_address(address)} does not open with the studio's "
            f"key file {key_file_path(store)}: the file is not the one it was sealed with "
            "(restore the right one), or the records were altered"
        ) from None
    return SuitKey(key_id, key)


def studio_id(store: Store) -> bytes:
    """This studio's id (16 bytes), created on first use."""
    with store.engine.begin() as c:
        row = c.execute(select(studio_identity.c.studio_id)).first()
        if row is not None:
            return bytes.fromhex(row[0])
        new = new_studio_id()
        c.execute(studio_identity.insert().values(studio_id=new.hex(), created_at=iso(utcnow())))
        return new


def suit_key(store: Store, address: str) -> SuitKey | None:
    """The key this studio holds for the suit at `address` (None: not enrolled here)."""
    with store.engine.begin() as c:
        row = c.execute(
            select(suit_keys.c.key_id, suit_keys.c.key).where(
                suit_keys.c.address == _address(address)
            )
        ).first()
    return None if row is None else open_key(store, address, int(row[0]), str(row[1]))


def suit_in_open_class(store: Store, address: str) -> str | None:
    """Why the suit's key may not change now: it is in a class that has not ended.

    A sentence for the trainer, or None. A new key (or none) mid-class would make
    the suit refuse every frame of its class: the client would silently drop out.
    """
    with store.engine.begin() as c:
        row = c.execute(
            select(classes.c.room)
            .select_from(classes.join(sessions, sessions.c.class_id == classes.c.id))
            .where(classes.c.ended_at.is_(None))
            .where(func.upper(func.trim(sessions.c.suit)) == _address(address))
            .order_by(classes.c.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    return in_class_message(address, row[0])


def in_class_message(address: str, room: str | None) -> str:
    """The trainer's sentence for a suit whose key cannot change during its class."""
    where = f"{room}'s class" if room else "a class that has not ended"
    return f"suit {_address(address)} is in {where} now; end the class first"


def all_suit_keys(store: Store) -> dict[str, SuitKey]:
    """Every enrolled suit's key, by address."""
    with store.engine.begin() as c:
        rows = c.execute(select(suit_keys.c.address, suit_keys.c.key_id, suit_keys.c.key)).all()
    return {str(a): open_key(store, str(a), int(i), str(k)) for a, i, k in rows}


def enrolled_suits(store: Store) -> list[tuple[str, int, str, str | None]]:
    """(address, key id, enrolled at, rotated at) of every enrolled suit; no keys."""
    with store.engine.begin() as c:
        rows = c.execute(
            select(
                suit_keys.c.address,
                suit_keys.c.key_id,
                suit_keys.c.enrolled_at,
                suit_keys.c.rotated_at,
            ).order_by(suit_keys.c.address)
        ).all()
    return [(str(a), int(i), str(e), r) for a, i, e, r in rows]


def save_suit_key(store: Store, address: str, key: SuitKey, *, rotated: bool = False) -> None:
    """Record a suit's new key (enrolled, or rotated from the one recorded)."""
    now = iso(utcnow())
    sealed = seal_key(store, address, key)
    with store.engine.begin() as c:
        if rotated:
            done = c.execute(
                suit_keys.update()
                .where(suit_keys.c.address == _address(address))
                .values(key_id=key.key_id, key=sealed, rotated_at=now)
            )
            if done.rowcount != 1:
                raise StoreError(f"suit {address} is not enrolled in this studio")
            return
        c.execute(suit_keys.delete().where(suit_keys.c.address == _address(address)))
        c.execute(
            suit_keys.insert().values(
                address=_address(address),
                key_id=key.key_id,
                key=sealed,
                enrolled_at=now,
                rotated_at=None,
            )
        )


def forget_suit_key(store: Store, address: str) -> bool:
    """Drop the suit's key from the records; False if it was not enrolled here."""
    with store.engine.begin() as c:
        done = c.execute(suit_keys.delete().where(suit_keys.c.address == _address(address)))
    return bool(done.rowcount)
