"""The durable notification queue, in the caller's SQLite database (the hall DB, WAL).

``enqueue`` runs inside the caller's open transaction and never commits: the business change
(a deposit recorded, a pre-review decided) and its SMS commit together or not at all. A repeated
``dedup_key`` is ignored, so a re-delivered event never sends twice.

What is stored: the kind, the normalised phone (needed to send) and its masked form (the only
one any listing shows), the template parameters as JSON (never the password), and, for a
pickup password, the device's sealed bytes, which only the dispatcher opens, in memory, at send
time. A sent message drops its sealed bytes; a failed one keeps them so ops can ``requeue``.

States: pending -> sending (leased to one dispatcher) -> sent | pending (retry) | failed.
A ``sending`` row whose lease ran out belongs to a dispatcher that died mid-send: it is due
again, so an SMS may repeat but is never lost (at-least-once). All times are UTC ISO-8601 text
(``hallkiosk.clock.utc_iso``); an empty ``next_attempt_at`` means "due at once".

The dispatcher-side functions (``claim_next``, ``mark_*``) commit; the caller-side ones
(``enqueue``, ``requeue``, ``purge_finished``) do not.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from hall.notify.errors import NotifyError, TemplateError
from hall.notify.message import mask_phone, normalise_phone
from hall.notify.templates import KINDS, Lang, check_length, template_for, validate_params
from hallkiosk.clock import utc_iso

TABLE: Final = "notify_messages"
STATES: Final = ("pending", "sending", "sent", "failed")
MAX_SEALED_BYTES: Final = 4096
MAX_DEDUP_KEY_CHARS: Final = 200

_KIND_LIST = ", ".join(f"'{k}'" for k in sorted(KINDS))
SCHEMA: Final[tuple[str, ...]] = (
    f"""
    CREATE TABLE IF NOT EXISTS notify_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dedup_key TEXT NOT NULL UNIQUE,
        out_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL CHECK (kind IN ({_KIND_LIST})),
        lang TEXT NOT NULL CHECK (lang IN ('zh', 'en')),
        phone TEXT NOT NULL,
        phone_masked TEXT NOT NULL,
        params TEXT NOT NULL,
        sealed_secret BLOB,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL DEFAULT '',
        lease_until TEXT,
        sent_at TEXT,
        finished_at TEXT,
        provider_id TEXT,
        last_error TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS notify_messages_due ON notify_messages (state, next_attempt_at)",
)

# The caller may not pass a time: SQLite's own UTC clock then stamps created_at, in the same
# format as utc_iso. It is informational only; scheduling never reads it.
_SQL_NOW: Final = "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now')"
_INSERT: Final = f"""
    INSERT INTO notify_messages
        (dedup_key, out_id, kind, lang, phone, phone_masked, params, sealed_secret,
         created_at, next_attempt_at)
    VALUES (:dedup_key, :out_id, :kind, :lang, :phone, :phone_masked, :params, :sealed,
            coalesce(:created_at, {_SQL_NOW}), :next_attempt_at)
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id
"""  # noqa: S608 - constant SQL only
_CLAIM: Final = """
    UPDATE notify_messages
    SET state = 'sending', attempts = attempts + 1, lease_until = :lease_until
    WHERE id = (
        SELECT id FROM notify_messages
        WHERE (state = 'pending' AND next_attempt_at <= :now)
           OR (state = 'sending' AND lease_until <= :now)
        ORDER BY next_attempt_at, id
        LIMIT 1
    )
    RETURNING id, out_id, kind, lang, phone, params, sealed_secret, attempts
"""
_RECORD_COLUMNS: Final = (
    "id, kind, state, phone_masked, attempts, dedup_key, created_at, next_attempt_at, "
    "sent_at, provider_id, last_error"
)


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A row leased to one dispatcher for one attempt. ``attempts`` counts this one."""

    id: int
    out_id: str
    kind: str
    lang: Lang
    phone: str
    params: dict[str, str | list[str]]
    sealed_secret: bytes | None
    attempts: int

    def __repr__(self) -> str:  # never the phone, the parameters or the sealed bytes
        return (
            f"ClaimedMessage(id={self.id}, kind={self.kind!r}, phone={mask_phone(self.phone)!r},"
            f" attempts={self.attempts}, sealed={self.sealed_secret is not None})"
        )


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    """One row as a CLI or dashboard may show it: the phone masked, no parameters."""

    id: int
    kind: str
    state: str
    phone_masked: str
    attempts: int
    dedup_key: str
    created_at: str
    next_attempt_at: str
    sent_at: str | None
    provider_id: str | None
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class QueueStats:
    pending: int  # waiting for their first or next attempt
    sending: int  # leased to a dispatcher right now (or left by one that died)
    sent: int
    failed: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the table and index if missing (idempotent). Commits: call it at start-up, not in
    the middle of the caller's transaction; the hall's migration may run ``SCHEMA`` instead."""
    for statement in SCHEMA:
        conn.execute(statement)
    conn.commit()


def enqueue(
    conn: sqlite3.Connection,
    *,
    kind: str,
    recipient_phone: str,
    params: Mapping[str, str | Sequence[str]],
    dedup_key: str,
    sealed_secret: bytes | None = None,
    lang: Lang = "zh",
    now: datetime | None = None,
    not_before: datetime | None = None,
    max_chars: int | None = None,
) -> int | None:
    """Queue one SMS in the caller's transaction (no commit). Returns the new id, or ``None``
    when ``dedup_key`` is already queued (the earlier message stands, whatever its state).

    ``sealed_secret`` carries the pickup password sealed by the device; it is required for
    ``pickup_password`` and refused for every other kind. ``not_before`` schedules the message
    (a reminder the evening before); without it the message is due at once. ``max_chars``
    (pass ``settings.text_budget_chars``) refuses now a message too long to ever be sent.
    Raises ``TemplateError``, ``MessageTooLong``, ``InvalidPhone`` or ``NotifyError``.
    """
    template = template_for(kind)
    clean = validate_params(kind, params, with_secret=False)
    if lang not in ("zh", "en"):
        raise TemplateError(f"{kind}: lang must be 'zh' or 'en'")
    phone = normalise_phone(recipient_phone)
    if not isinstance(dedup_key, str) or not 1 <= len(dedup_key) <= MAX_DEDUP_KEY_CHARS:
        raise NotifyError(f"dedup_key must be 1 to {MAX_DEDUP_KEY_CHARS} characters")
    if not dedup_key.isprintable():
        raise NotifyError("dedup_key must be printable text")
    if template.needs_secret:
        if not isinstance(sealed_secret, bytes) or not sealed_secret:
            raise TemplateError(f"{kind}: the sealed password (sealed_secret) is required")
        if len(sealed_secret) > MAX_SEALED_BYTES:
            raise TemplateError(f"{kind}: sealed_secret is over {MAX_SEALED_BYTES} bytes")
    elif sealed_secret is not None:
        raise TemplateError(f"{kind}: this kind carries no secret; sealed_secret must be None")
    if max_chars is not None:
        check_length(kind, clean, lang=lang, max_chars=max_chars)
    for name, moment in (("now", now), ("not_before", not_before)):
        if moment is not None and moment.tzinfo is None:
            raise NotifyError(f"{name} must be an aware datetime")
    rows = conn.execute(
        _INSERT,
        {
            "dedup_key": dedup_key,
            "out_id": uuid.uuid4().hex,
            "kind": kind,
            "lang": lang,
            "phone": phone,
            "phone_masked": mask_phone(phone),
            "params": json.dumps(clean, ensure_ascii=False, sort_keys=True),
            "sealed": sealed_secret,
            "created_at": utc_iso(now) if now is not None else None,
            "next_attempt_at": utc_iso(not_before) if not_before is not None else "",
        },
    ).fetchall()
    return int(rows[0][0]) if rows else None


def claim_next(conn: sqlite3.Connection, *, now: datetime, lease_s: float) -> ClaimedMessage | None:
    """Lease the next due message (oldest due first) for one attempt, and commit."""
    rows = conn.execute(
        _CLAIM, {"now": utc_iso(now), "lease_until": utc_iso(now + timedelta(seconds=lease_s))}
    ).fetchall()
    conn.commit()
    if not rows:
        return None
    row_id, out_id, kind, lang, phone, params, sealed, attempts = rows[0]
    return ClaimedMessage(
        id=int(row_id),
        out_id=str(out_id),
        kind=str(kind),
        lang="en" if lang == "en" else "zh",
        phone=str(phone),
        params=json.loads(params),
        sealed_secret=bytes(sealed) if sealed is not None else None,
        attempts=int(attempts),
    )


def mark_sent(
    conn: sqlite3.Connection, message_id: int, *, provider_id: str, now: datetime
) -> None:
    """Delivered: record the provider id, drop the sealed password, commit."""
    conn.execute(
        "UPDATE notify_messages SET state = 'sent', provider_id = ?, sent_at = ?,"
        " finished_at = ?, sealed_secret = NULL, lease_until = NULL, last_error = NULL"
        " WHERE id = ? AND state = 'sending'",
        (provider_id, utc_iso(now), utc_iso(now), message_id),
    )
    conn.commit()


def mark_retry(
    conn: sqlite3.Connection, message_id: int, *, next_attempt_at: datetime, reason: str
) -> None:
    conn.execute(
        "UPDATE notify_messages SET state = 'pending', next_attempt_at = ?, last_error = ?,"
        " lease_until = NULL WHERE id = ? AND state = 'sending'",
        (utc_iso(next_attempt_at), reason, message_id),
    )
    conn.commit()


def mark_failed(conn: sqlite3.Connection, message_id: int, *, reason: str, now: datetime) -> None:
    conn.execute(
        "UPDATE notify_messages SET state = 'failed', finished_at = ?, last_error = ?,"
        " lease_until = NULL WHERE id = ? AND state = 'sending'",
        (utc_iso(now), reason, message_id),
    )
    conn.commit()


def requeue(conn: sqlite3.Connection, message_id: int) -> bool:
    """Give a failed message a fresh set of attempts, due at once (ops, after fixing the cause).
    No commit. False if the id is not a failed message."""
    cur = conn.execute(
        "UPDATE notify_messages SET state = 'pending', attempts = 0, next_attempt_at = '',"
        " finished_at = NULL WHERE id = ? AND state = 'failed'",
        (message_id,),
    )
    return cur.rowcount == 1


def purge_finished(conn: sqlite3.Connection, *, before: datetime) -> int:
    """Delete sent and failed messages finished before ``before``; no commit. A purged
    ``dedup_key`` can be queued again, so keep rows longer than events can be re-delivered."""
    cur = conn.execute(
        "DELETE FROM notify_messages WHERE state IN ('sent', 'failed') AND finished_at < ?",
        (utc_iso(before),),
    )
    return cur.rowcount


def stats(conn: sqlite3.Connection) -> QueueStats:
    counts = dict.fromkeys(STATES, 0)
    for state, count in conn.execute("SELECT state, count(*) FROM notify_messages GROUP BY state"):
        counts[str(state)] = int(count)
    return QueueStats(**counts)


def list_recent(
    conn: sqlite3.Connection, limit: int = 20, *, state: str | None = None
) -> list[NotificationRecord]:
    """Newest first, phones masked, parameters left out: safe to print."""
    if not 1 <= limit <= 10_000:
        raise NotifyError("limit must be 1 to 10000")
    if state is not None and state not in STATES:
        raise NotifyError(f"state must be one of {', '.join(STATES)}")
    sql = f"SELECT {_RECORD_COLUMNS} FROM notify_messages"  # noqa: S608 - constant columns
    args: tuple[object, ...] = ()
    if state is not None:
        sql += " WHERE state = ?"
        args = (state,)
    rows = conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
    return [NotificationRecord(*row) for row in rows]
