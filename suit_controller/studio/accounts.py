"""Trainer and manager accounts, logins, read-only API tokens and the audit trail.

Theory of operation
-------------------
A password is kept as an scrypt hash (`hashlib.scrypt`, a fresh 16-byte salt
each, n=2**14, r=8, p=1), compared in constant time. A login is a random token
(32 bytes, URL-safe) the browser keeps in an HttpOnly, SameSite=Strict cookie;
the database keeps only its SHA-256, so a copy of the records lets nobody in.
Each browser login also has a CSRF token the page echoes in the
`X-CSRF-Token` header on every change (the server compares it with the one
stored for that login). An API token is a login of kind `api_token`: it reads,
it never changes anything. A one-time login link (`kind = link`) is spent by
its first use and turned into a browser login.

Every command to a class and every change to a client's record is written to
`audit_log` with the account's name and the time (`Accounts.audit`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select

from suit_controller.studio.schema import audit_log, logins, users
from suit_controller.studio.store import Store, StoreError, iso, new_id, parse_iso, utcnow

ROLES = ("manager", "trainer")
#: A browser login lasts this long (a studio day and then some).
LOGIN_HOURS = 16
LINK_HOURS = 24
MIN_PASSWORD = 8
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (hex) of `password` with a fresh salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (constant-time comparison)."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except (ValueError, UnicodeEncodeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Account:
    """Someone who may use the studio: a manager or a trainer."""

    id: str
    name: str
    role: str


@dataclass(frozen=True)
class Login:
    """Who a request comes from: the account, and how (browser login or read-only token)."""

    account: Account
    kind: str
    csrf: str | None

    @property
    def read_only(self) -> bool:
        return self.kind == "api_token"


@dataclass(frozen=True)
class NewLogin:
    """A login just made: the secret token (shown once) and, for a browser, its CSRF token."""

    token: str
    csrf: str | None
    account: Account


class Accounts:
    """The accounts, logins and audit trail kept in a studio `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    # -- accounts -------------------------------------------------------------------
    def count(self) -> int:
        with self.engine.begin() as c:
            return int(c.execute(select(func.count()).select_from(users)).scalar_one())

    def add(self, name: str, role: str, password: str, *, by: str = "terminal") -> Account:
        """A new account. Names are unique; passwords have at least MIN_PASSWORD characters."""
        name = name.strip()
        if not name or len(name) > 80:
            raise StoreError("an account needs a name of 1 to 80 characters")
        if role not in ROLES:
            raise StoreError(f"role must be one of: {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise StoreError(f"a password needs at least {MIN_PASSWORD} characters")
        with self.engine.begin() as c:
            taken = c.execute(select(users.c.id).where(users.c.name == name)).first()
            if taken is not None:
                raise StoreError(f"there is already an account named '{name}'")
            uid = new_id()
            c.execute(
                users.insert().values(
                    uuid=uid,
                    name=name,
                    role=role,
                    password_hash=hash_password(password),
                    created_at=iso(utcnow()),
                )
            )
            self._audit(c, by, "account_added", name, {"role": role})
        return Account(uid, name, role)

    def accounts(self) -> list[Account]:
        with self.engine.begin() as c:
            rows = c.execute(
                select(users.c.uuid, users.c.name, users.c.role).order_by(users.c.name)
            )
            return [Account(*r) for r in rows]

    def verify(self, name: str, password: str) -> Account | None:
        """The account when the password is right, else None (same work either way)."""
        with self.engine.begin() as c:
            row = c.execute(select(users).where(users.c.name == name.strip())).mappings().first()
        if row is None:
            check_password(password, hash_password("not an account"))
            return None
        if not check_password(password, row["password_hash"]):
            return None
        return Account(row["uuid"], row["name"], row["role"])

    # -- logins ---------------------------------------------------------------------
    def _new(self, account: Account, kind: str, hours: float | None, label: str = "") -> NewLogin:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24) if kind == "browser" else None
        now = utcnow()
        with self.engine.begin() as c:
            uid = c.execute(select(users.c.id).where(users.c.uuid == account.id)).scalar_one()
            c.execute(
                logins.insert().values(
                    token_sha256=_sha(token),
                    user_id=uid,
                    kind=kind,
                    csrf=csrf,
                    label=label,
                    created_at=iso(now),
                    expires_at=None if hours is None else iso(now + dt.timedelta(hours=hours)),
                )
            )
        return NewLogin(token, csrf, account)

    def log_in(self, account: Account) -> NewLogin:
        """A browser login for `account` (token for the cookie, CSRF token for the page)."""
        return self._new(account, "browser", LOGIN_HOURS)

    def api_token(self, account: Account, label: str) -> NewLogin:
        """A read-only API token (it never expires; shown once)."""
        token = self._new(account, "api_token", None, label)
        self.audit(account.name, "api_token_added", account.name, {"label": label})
        return token

    def login_link(self, account: Account) -> str:
        """A one-time login token, spent by its first use (`use_link`)."""
        return self._new(account, "link", LINK_HOURS).token

    def use_link(self, token: str) -> NewLogin | None:
        """Spend a one-time login link: a browser login, or None when unknown or spent."""
        with self.engine.begin() as c:
            found = c.execute(
                select(logins.c.id, logins.c.expires_at, users.c.uuid, users.c.name, users.c.role)
                .select_from(logins.join(users, logins.c.user_id == users.c.id))
                .where(logins.c.token_sha256 == _sha(token), logins.c.kind == "link")
            ).first()
            if found is None:
                return None
            c.execute(delete(logins).where(logins.c.id == found[0]))
        if found[1] is not None and parse_iso(found[1]) < utcnow():
            return None
        return self.log_in(Account(found[2], found[3], found[4]))

    def login(self, token: str) -> Login | None:
        """Who holds `token` (a browser login or an API token), or None."""
        with self.engine.begin() as c:
            row = c.execute(
                select(logins.c.kind, logins.c.csrf, logins.c.expires_at, users.c.uuid)
                .add_columns(users.c.name, users.c.role)
                .select_from(logins.join(users, logins.c.user_id == users.c.id))
                .where(logins.c.token_sha256 == _sha(token))
            ).first()
        if row is None or row[0] == "link":
            return None
        if row[2] is not None and parse_iso(row[2]) < utcnow():
            return None
        return Login(Account(row[3], row[4], row[5]), row[0], row[1])

    def log_out(self, token: str) -> None:
        with self.engine.begin() as c:
            c.execute(delete(logins).where(logins.c.token_sha256 == _sha(token)))

    # -- the audit trail --------------------------------------------------------------
    def audit(self, who: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        """Record that `who` did `action` about `subject` (a client or class id), now."""
        with self.engine.begin() as c:
            self._audit(c, who, action, subject, detail)

    def _audit(self, c: Any, who: str, action: str, subject: str, detail: dict[str, Any]) -> None:
        c.execute(
            audit_log.insert().values(
                at=iso(utcnow()),
                who=who,
                action=action,
                subject=subject,
                detail=json.dumps(detail, default=str),
            )
        )

    def audit_trail(self, *, subject: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """The newest entries first (of one subject, when given)."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(audit_log.c.subject == subject)
        with self.engine.begin() as c:
            return [
                {
                    "at": r["at"],
                    "who": r["who"],
                    "action": r["action"],
                    "subject": r["subject"],
                    "detail": json.loads(r["detail"]),
                }
                for r in c.execute(query).mappings()
            ]
