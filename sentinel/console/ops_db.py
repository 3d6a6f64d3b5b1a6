"""The console's own SQLite file: users, tokens, audit trail, notes, silences and rule versions.

Kept apart from the results store on purpose: the processor (or a fleet of Faust workers) owns the store
and may be rebuilt from a replay at any time, while who did what, and which rules were active when, must
survive that. Every method opens its own short connection (WAL, busy timeout), so one OpsDB may be used
from any thread and several processes may share the file.

Secrets: passwords are kept as scrypt hashes (sentinel/console/passwords.py) and tokens as their SHA-256;
the plain token exists only in the response that issues it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sentinel.console.passwords import DUMMY_HASH, hash_password, verify_password

Role = Literal["viewer", "operator", "engineer"]
ROLES: tuple[str, ...] = ("viewer", "operator", "engineer")  # each includes what the previous may do
TokenKind = Literal["session", "api"]
USERNAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
TOKEN_PREFIX = "lss_"  # recognisable in a leaked-secrets scan
LAST_USED_EVERY_NS = 60 * 10**9  # refresh a token's last_used at most this often (a write per request is waste)

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username   TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    password   TEXT NOT NULL,              -- scrypt$n$r$p$salt$hash
    created_ns INTEGER NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    id           TEXT PRIMARY KEY,         -- public handle, for listing and revoking
    digest       TEXT NOT NULL UNIQUE,     -- sha256 of the token: the token itself is never stored
    username     TEXT NOT NULL,
    role         TEXT NOT NULL,            -- at most the user's role
    kind         TEXT NOT NULL,            -- session (login) or api (machines)
    name         TEXT NOT NULL,
    created_ns   INTEGER NOT NULL,
    expires_ns   INTEGER NOT NULL,
    revoked_ns   INTEGER,
    last_used_ns INTEGER
);
CREATE INDEX IF NOT EXISTS tokens_user ON tokens (username);
CREATE TABLE IF NOT EXISTS audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT NOT NULL                  -- JSON object
);
CREATE INDEX IF NOT EXISTS audit_target ON audit (target);
CREATE TABLE IF NOT EXISTS notes (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    time_ns  INTEGER NOT NULL,
    author   TEXT NOT NULL,
    text     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_alert ON notes (alert_id);
CREATE TABLE IF NOT EXISTS silences (
    id         TEXT PRIMARY KEY,
    state      TEXT NOT NULL,              -- JSON: Silence.to_state()
    created_ns INTEGER NOT NULL,
    expired_by TEXT,
    expired_ns INTEGER
);
CREATE TABLE IF NOT EXISTS rule_versions (
    version     INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    comment     TEXT NOT NULL,
    text        TEXT NOT NULL,
    digest      TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_activations (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL,
    action  TEXT NOT NULL,                 -- activate | rollback | adopt (found on disk)
    actor   TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    comment TEXT NOT NULL
);
"""


def now_ns() -> int:
    return time.time_ns()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def role_allows(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class User:
    username: str
    role: str
    created_ns: int
    disabled: bool


@dataclass(frozen=True)
class TokenInfo:
    id: str
    username: str
    role: str
    kind: str
    name: str
    created_ns: int
    expires_ns: int
    revoked_ns: int | None
    last_used_ns: int | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    time_ns: int
    actor: str
    role: str
    action: str
    target: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Note:
    id: int
    alert_id: str
    time_ns: int
    author: str
    text: str


@dataclass(frozen=True)
class RuleVersion:
    version: int
    name: str
    comment: str
    text: str
    digest: str
    uploaded_by: str
    uploaded_ns: int


@dataclass(frozen=True)
class Activation:
    id: int
    version: int
    action: str
    actor: str
    time_ns: int
    comment: str


class OpsDB:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._db() as c:
            c.execute("PRAGMA journal_mode = WAL")
            c.executescript(SCHEMA)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """One connection per operation: thread-safe without a lock, and nothing stays open."""
        conn = sqlite3.connect(self.path, timeout=10.0)
        try:
            with conn:  # commit on success, roll back on error
                yield conn
        finally:
            conn.close()

    # -- users --------------------------------------------------------------------------------------

    def add_user(self, username: str, role: str, password: str) -> User:
        if not USERNAME.match(username):
            raise ValueError("a username is 1-64 letters, digits or _ . @ -")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        hashed = hash_password(password)
        created = now_ns()
        try:
            with self._db() as c:
                c.execute("INSERT INTO users VALUES (?, ?, ?, ?, 0)", (username, role, hashed, created))
        except sqlite3.IntegrityError:
            raise ValueError(f"user {username!r} exists") from None
        return User(username, role, created, False)

    def user(self, username: str) -> User | None:
        with self._db() as c:
            row = c.execute("SELECT username, role, created_ns, disabled FROM users WHERE username = ?",
                            (username,)).fetchone()
        return User(row[0], row[1], row[2], bool(row[3])) if row else None

    def users(self) -> list[User]:
        with self._db() as c:
            rows = c.execute("SELECT username, role, created_ns, disabled FROM users ORDER BY username").fetchall()
        return [User(r[0], r[1], r[2], bool(r[3])) for r in rows]

    def set_password(self, username: str, password: str) -> None:
        hashed = hash_password(password)
        with self._db() as c:
            if c.execute("UPDATE users SET password = ? WHERE username = ?", (hashed, username)).rowcount != 1:
                raise KeyError(username)

    def set_role(self, username: str, role: str) -> None:
        """Change a user's role; tokens holding more than the new role are cut down to it."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
        with self._db() as c:
            if c.execute("UPDATE users SET role = ? WHERE username = ?", (role, username)).rowcount != 1:
                raise KeyError(username)
            for r in ROLES[ROLES.index(role) + 1:]:
                c.execute("UPDATE tokens SET role = ? WHERE username = ? AND role = ?", (role, username, r))

    def set_disabled(self, username: str, disabled: bool = True) -> int:
        """Disable (or re-enable) a user; disabling revokes every token. Returns tokens revoked."""
        t = now_ns()
        with self._db() as c:
            if c.execute("UPDATE users SET disabled = ? WHERE username = ?", (int(disabled), username)).rowcount != 1:
                raise KeyError(username)
            if not disabled:
                return 0
            return c.execute("UPDATE tokens SET revoked_ns = ? WHERE username = ? AND revoked_ns IS NULL",
                             (t, username)).rowcount

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if the password is right and the account enabled; as slow for unknown users."""
        with self._db() as c:
            row = c.execute("SELECT username, role, created_ns, disabled, password FROM users WHERE username = ?",
                            (username,)).fetchone()
        ok = verify_password(password, row[4] if row else DUMMY_HASH)
        if not ok or row is None or row[3]:
            return None
        return User(row[0], row[1], row[2], False)

    # -- tokens -------------------------------------------------------------------------------------

    def issue_token(self, username: str, role: str, kind: str, name: str, ttl_s: float) -> tuple[str, TokenInfo]:
        """A new random token (returned once, in clear) for an enabled user, capped at the user's role."""
        user = self.user(username)
        if user is None or user.disabled:
            raise KeyError(username)
        if role not in ROLES or not role_allows(user.role, role):
            raise PermissionError(f"a token for {username} can have at most role {user.role}")
        plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = now_ns()
        info = TokenInfo(secrets.token_hex(6), username, role, kind, name, created, created + int(ttl_s * 1e9),
                         None, None)
        with self._db() as c:
            c.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                      (info.id, token_digest(plain), username, role, kind, name, info.created_ns, info.expires_ns))
        return plain, info

    def resolve_token(self, plain: str) -> TokenInfo | None:
        """The live token behind `plain` (not expired, not revoked, its user enabled), else None."""
        t = now_ns()
        with self._db() as c:
            row = c.execute(
                "SELECT t.id, t.username, t.role, t.kind, t.name, t.created_ns, t.expires_ns, t.revoked_ns,"
                " t.last_used_ns FROM tokens t JOIN users u ON u.username = t.username"
                " WHERE t.digest = ? AND u.disabled = 0", (token_digest(plain),)).fetchone()
            if row is None:
                return None
            info = TokenInfo(*row)
            if info.revoked_ns is not None or info.expires_ns <= t:
                return None
            if info.last_used_ns is None or t - info.last_used_ns > LAST_USED_EVERY_NS:
                c.execute("UPDATE tokens SET last_used_ns = ? WHERE id = ?", (t, info.id))
        return info

    def token(self, token_id: str) -> TokenInfo | None:
        with self._db() as c:
            row = c.execute("SELECT id, username, role, kind, name, created_ns, expires_ns, revoked_ns, last_used_ns"
                            " FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return TokenInfo(*row) if row else None

    def tokens(self, username: str | None = None, *, include_dead: bool = False) -> list[TokenInfo]:
        sql = ("SELECT id, username, role, kind, name, created_ns, expires_ns, revoked_ns, last_used_ns FROM tokens"
               " WHERE (? IS NULL OR username = ?)")
        args: list[Any] = [username, username]
        if not include_dead:
            sql += " AND revoked_ns IS NULL AND expires_ns > ?"
            args.append(now_ns())
        with self._db() as c:
            rows = c.execute(sql + " ORDER BY created_ns", args).fetchall()
        return [TokenInfo(*r) for r in rows]

    def revoke_token(self, token_id: str) -> bool:
        with self._db() as c:
            return c.execute("UPDATE tokens SET revoked_ns = ? WHERE id = ? AND revoked_ns IS NULL",
                             (now_ns(), token_id)).rowcount == 1

    # -- audit --------------------------------------------------------------------------------------

    def audit(self, actor: str, role: str, action: str, target: str, detail: dict[str, Any] | None = None) -> int:
        """Append one entry. `detail` must never hold a secret (callers pass what happened, not credentials)."""
        with self._db() as c:
            cur = c.execute("INSERT INTO audit (time_ns, actor, role, action, target, detail)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            (now_ns(), actor, role, action, target, json.dumps(detail or {}, ensure_ascii=False)))
            return int(cur.lastrowid or 0)

    def audit_entries(self, *, limit: int = 100, before_id: int | None = None, after_id: int | None = None,
                      actor: str | None = None, action: str | None = None, target: str | None = None
                      ) -> list[AuditEntry]:
        """Newest first (or, with `after_id`, oldest first: what a stream sends next)."""
        where, args = [], []
        for col, val in (("actor", actor), ("action", action), ("target", target)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if before_id is not None:
            where.append("id < ?")
            args.append(before_id)
        if after_id is not None:
            where.append("id > ?")
            args.append(after_id)
        sql = "SELECT id, time_ns, actor, role, action, target, detail FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY id {'ASC' if after_id is not None else 'DESC'} LIMIT ?"
        with self._db() as c:
            rows = c.execute(sql, [*args, limit]).fetchall()
        return [AuditEntry(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    def last_audit_id(self) -> int:
        with self._db() as c:
            return int(c.execute("SELECT coalesce(max(id), 0) FROM audit").fetchone()[0])

    # -- notes --------------------------------------------------------------------------------------

    def add_note(self, alert_id: str, author: str, text: str) -> Note:
        t = now_ns()
        with self._db() as c:
            cur = c.execute("INSERT INTO notes (alert_id, time_ns, author, text) VALUES (?, ?, ?, ?)",
                            (alert_id, t, author, text))
        return Note(int(cur.lastrowid or 0), alert_id, t, author, text)

    def notes(self, alert_id: str) -> list[Note]:
        with self._db() as c:
            rows = c.execute("SELECT id, alert_id, time_ns, author, text FROM notes WHERE alert_id = ? ORDER BY id",
                             (alert_id,)).fetchall()
        return [Note(*r) for r in rows]

    # -- silences (rows are Silence.to_state(); sentinel/console/silences.py keeps the book in step) ---------

    def save_silence(self, state: dict[str, Any], *, expired_by: str | None = None) -> None:
        with self._db() as c:
            c.execute("INSERT INTO silences (id, state, created_ns) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE"
                      " SET state = excluded.state", (state["id"], json.dumps(state, ensure_ascii=False), now_ns()))
            if expired_by is not None:
                c.execute("UPDATE silences SET expired_by = ?, expired_ns = ? WHERE id = ?",
                          (expired_by, now_ns(), state["id"]))

    def silence_rows(self) -> list[tuple[dict[str, Any], str | None]]:
        """(Silence state, who expired it) for every silence ever made."""
        with self._db() as c:
            rows = c.execute("SELECT state, expired_by FROM silences ORDER BY created_ns, id").fetchall()
        return [(json.loads(s), by) for s, by in rows]

    # -- rule versions --------------------------------------------------------------------------------

    def add_rule_version(self, text: str, name: str, comment: str, uploaded_by: str) -> RuleVersion:
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        t = now_ns()
        with self._db() as c:
            cur = c.execute("INSERT INTO rule_versions (name, comment, text, digest, uploaded_by, uploaded_ns)"
                            " VALUES (?, ?, ?, ?, ?, ?)", (name, comment, text, digest, uploaded_by, t))
        return RuleVersion(int(cur.lastrowid or 0), name, comment, text, digest, uploaded_by, t)

    def rule_version(self, version: int) -> RuleVersion | None:
        with self._db() as c:
            row = c.execute("SELECT version, name, comment, text, digest, uploaded_by, uploaded_ns FROM rule_versions"
                            " WHERE version = ?", (version,)).fetchone()
        return RuleVersion(*row) if row else None

    def rule_versions(self) -> list[RuleVersion]:
        with self._db() as c:
            rows = c.execute("SELECT version, name, comment, text, digest, uploaded_by, uploaded_ns FROM rule_versions"
                             " ORDER BY version DESC").fetchall()
        return [RuleVersion(*r) for r in rows]

    def add_activation(self, version: int, action: str, actor: str, comment: str) -> Activation:
        t = now_ns()
        with self._db() as c:
            cur = c.execute("INSERT INTO rule_activations (version, action, actor, time_ns, comment)"
                            " VALUES (?, ?, ?, ?, ?)", (version, action, actor, t, comment))
        return Activation(int(cur.lastrowid or 0), version, action, actor, t, comment)

    def activations(self) -> list[Activation]:
        """Oldest first."""
        with self._db() as c:
            rows = c.execute("SELECT id, version, action, actor, time_ns, comment FROM rule_activations"
                             " ORDER BY id").fetchall()
        return [Activation(*r) for r in rows]
