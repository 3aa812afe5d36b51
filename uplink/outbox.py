"""The durable outbox of one process (one component): its events and latest telemetry, in SQLite.

DESIGN §3: every business fact reaches the hall, in order, across broker outages, network loss,
power cuts and process kills. An event lives here from the moment it is recorded until the broker
acknowledges it (PUBACK); the publisher drains ``pending()`` in seq order and calls ``ack()`` (or
``ack_many()`` for a batch).

Durability
    ``append`` is one transaction committed with ``synchronous=FULL`` (the WAL is fsynced): once it
    returns, the event survives a power cut. ``append_in`` writes into a transaction the caller
    already holds on the same database file (the transactional outbox): the business change and
    its event commit together or not at all, and the caller's commit is the durable one.
    ``ack``, ``put_telemetry`` and ``take_telemetry`` commit with ``synchronous=NORMAL``: safe
    against a process kill, and a power cut can at worst undo an ack, so an event is published
    twice, which the hall absorbs by deduplicating on (device, id). A later FULL commit fsyncs the
    WAL up to and including those commits, so nothing is reordered.

Sequence numbers
    ``outbox_state.last_seq`` is the last seq handed out. It is bumped in the same transaction that
    inserts the event, so seqs are strictly increasing and never reused: not after the row is acked
    and deleted, not after a kill. A rolled-back ``append_in`` takes its seq back with it; that
    event never existed and was never published, so the next event gets the same number. The seq is
    also the row's key, which is why a late or repeated ack can never delete a newer event.

Size policy
    Business events are never dropped. Past ``max_business_rows`` unacknowledged events ``append``
    still succeeds, and ``backlog().over_limit`` turns true so the process can raise an alarm for
    staff. Disk space is the real limit: when the disk is full, ``append`` raises ``OutboxFull``
    and records nothing, so the caller must not go on as if the fact were reported (durability
    before action). Telemetry is coalesced: one row, each ``put_telemetry`` replaces the previous
    snapshot; it never counts towards the backlog and never delays or displaces an event.

Schema
    The outbox may share its file with the process's business data (lockerd's locker.db), whose own
    migrations own ``PRAGMA user_version``. The outbox therefore keeps its schema version in its
    own one-row table ``outbox_schema`` (same scheme: a list of migrations, applied in order, a
    newer database refused), and every table it owns is prefixed ``outbox_``. A file holds the
    outbox of one component; opening it for another component is an error. All times are UTC
    ISO-8601 strings (RFC 3339 with offset ``+00:00``), so they sort and compare as text.

Threads
    The owning thread appends while the MQTT network thread acks. One connection is shared under a
    lock rather than one connection per thread: SQLite admits one writer at a time across
    connections anyway, so separate connections would not let an ack overlap an append's commit;
    they would only swap the lock's immediate hand-over for SQLite's busy handler, which polls with
    sleeps of 1-100 ms. The price is that reads (``pending``, ``backlog``) also wait out an
    append's fsync, one at most; the lock is never held across anything slower.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, NamedTuple, Self

from hallkiosk.clock import Clock, utc_iso
from uplink.errors import UplinkError
from uplink.messages import SCHEMA_VERSION
from uplink.schema import migrate_in

# device, component and event type are topic segments; the event type becomes the last level
# of .../evt/{type}, so a bad one is refused at append time, not at publish time
from uplink.topics import SEGMENT_RE

DEFAULT_MAX_BUSINESS_ROWS: Final = 1_000_000
BUSY_TIMEOUT_MS: Final = 5000  # another connection (the business store) may hold the write lock

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # version 1
    (
        """
        CREATE TABLE outbox_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            component TEXT NOT NULL,
            last_seq INTEGER NOT NULL CHECK (last_seq >= 0)
        )
        """,
        # seq is the rowid: ordered scans for free, and never reused because last_seq only grows
        """
        CREATE TABLE outbox_events (
            seq INTEGER PRIMARY KEY CHECK (seq >= 1),
            event_id TEXT NOT NULL,
            type TEXT NOT NULL,
            ts TEXT NOT NULL,
            payload BLOB NOT NULL
        )
        """,
        """
        CREATE TABLE outbox_telemetry (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            ts TEXT NOT NULL,
            payload BLOB NOT NULL
        )
        """,
    ),
)

_NEXT_SEQ: Final = "UPDATE outbox_state SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq"
_INSERT_EVENT: Final = (
    "INSERT INTO outbox_events (seq, event_id, type, ts, payload) VALUES (?, ?, ?, ?, ?)"
)
_PENDING: Final = (
    "SELECT seq, event_id, type, ts, payload FROM outbox_events WHERE seq > ? ORDER BY seq LIMIT ?"
)
_ACK: Final = "DELETE FROM outbox_events WHERE seq = ?"
# ack_many deletes this many rows per statement: far below SQLite's host-parameter limit
# (999 before 3.32), and a draining publisher has at most max_inflight acks to write at once.
ACK_MANY_CHUNK: Final = 500
_ACK_MANY: Final = "DELETE FROM outbox_events WHERE seq IN ({marks}) RETURNING seq"
_PUT_TELEMETRY: Final = (
    "INSERT INTO outbox_telemetry (id, ts, payload) VALUES (1, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET ts = excluded.ts, payload = excluded.payload"
)
_TAKE_TELEMETRY: Final = "DELETE FROM outbox_telemetry RETURNING payload"
_BACKLOG: Final = (
    "SELECT (SELECT count(*) FROM outbox_events WHERE seq > ?),"
    " (SELECT max(seq) FROM outbox_events),"
    " (SELECT ts FROM outbox_events ORDER BY seq LIMIT 1),"
    " EXISTS (SELECT 1 FROM outbox_telemetry)"
)
_SYNC_FULL: Final = "PRAGMA synchronous=FULL"
_SYNC_NORMAL: Final = "PRAGMA synchronous=NORMAL"


class OutboxError(UplinkError, RuntimeError):
    code = "outbox_error"
    message_zh = "设备记录待上报数据失败，请联系工作人员。"
    message_en = "The device could not record data for the hall. Please contact staff."


class OutboxFull(OutboxError, OSError):
    """The disk (or the database's page cap) is full; the event was not recorded."""

    code = "outbox_full"
    message_zh = "设备存储空间已满，暂停服务，请联系工作人员。"
    message_en = "The device storage is full. Service is paused; please contact staff."


class InvalidPayload(OutboxError, ValueError):
    """An event type that is not a topic segment, or data that is not strict JSON."""

    code = "outbox_invalid_payload"


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One recorded event. ``payload`` is the exact bytes to publish; ``row_id`` is what
    ``ack`` takes (today it equals ``seq``; callers should not rely on that)."""

    row_id: int
    id: str
    seq: int
    type: str
    ts: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Backlog:
    events: int  # unacknowledged business events
    oldest_ts: str | None  # ts of the oldest of them (lowest seq), UTC ISO-8601
    telemetry_pending: bool
    over_limit: bool  # events > max_business_rows: raise an alarm, nothing is dropped


class _Draft(NamedTuple):
    """An event encoded up to its seq, which only the transaction can assign."""

    type: str
    event_id: str
    ts: str
    head: bytes  # payload bytes before the seq
    tail: bytes  # payload bytes after the seq


class Outbox:
    """The durable outbox of one component, in the SQLite file at ``path``. Open one per file
    and process, and share it between threads."""

    def __init__(
        self,
        path: Path,
        *,
        device: str,
        component: str,
        clock: Clock,
        max_business_rows: int = DEFAULT_MAX_BUSINESS_ROWS,
    ) -> None:
        for name, value in (("device", device), ("component", component)):
            if not SEGMENT_RE.fullmatch(value):
                raise InvalidPayload(f"{name} {value!r} is not a valid topic segment")
        if max_business_rows < 1:
            raise ValueError(f"max_business_rows must be at least 1, not {max_business_rows}")
        self.path = path
        self.device = device
        self.component = component
        self._clock = clock
        self._max_business_rows = max_business_rows
        # the parts of every payload that never change, encoded once
        self._origin_json = f'"device":{json.dumps(device)},"component":{json.dumps(component)}'
        self._encode = json.JSONEncoder(
            ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode
        self._lock = threading.Lock()
        self._conn, self._db_file = _open(path, component)
        self._synchronous = _SYNC_FULL
        # backlog() must not count a million rows under the lock appends wait for. Rows with
        # seq <= _counted_through are counted once, then kept exact by the acks (seqs are never
        # reused, so nothing new appears below that mark); only newer rows are counted per call.
        # Exact as long as this object is the only one acking this file, as the design has it.
        self._counted_through = 0
        self._counted_events = 0

    # -- recording -----------------------------------------------------------------------------

    def append(self, event_type: str, data: Mapping[str, Any]) -> OutboxEvent:
        """Record one event in its own durable (fsynced) transaction and return it.

        Raises ``InvalidPayload`` (nothing recorded, no seq used), ``OutboxFull`` or
        ``OutboxError``; after any of them the event is not in the outbox.
        """
        draft = self._prepare(event_type, data)
        with self._lock:
            conn = self._conn
            try:
                self._set_synchronous(_SYNC_FULL)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    event = _write(conn, draft)
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, "append") from exc
        return event

    def append_in(
        self, conn: sqlite3.Connection, event_type: str, data: Mapping[str, Any]
    ) -> OutboxEvent:
        """Record one event inside the caller's open transaction on ``conn``.

        ``conn`` must be a connection to this outbox's database file with a transaction open,
        best ``BEGIN IMMEDIATE`` (a deferred read transaction may be refused the write lock).
        The caller commits: the event exists exactly when the caller's transaction commits, and a
        rollback removes the event and returns its seq. Durability is that of the caller's
        commit (use ``synchronous=FULL``). After an error the caller's transaction is still open
        and the caller should roll it back. Do not call ``append`` while holding that transaction
        on the same thread: it would wait for the caller's write lock until the busy timeout.
        """
        if not conn.in_transaction:
            raise OutboxError("append_in needs the caller's open transaction (BEGIN IMMEDIATE)")
        draft = self._prepare(event_type, data)
        try:
            self._check_same_file(conn)
            return _write(conn, draft)
        except sqlite3.Error as exc:
            raise _translate(exc, "append_in") from exc

    def put_telemetry(self, metrics: Mapping[str, Any]) -> None:
        """Replace the pending telemetry snapshot with this one (latest wins)."""
        ts = self._utc_now()
        body = self._encode_object(metrics, "metrics")
        payload = (
            f'{{"v":{SCHEMA_VERSION},"ts":"{ts}",{self._origin_json},"metrics":{body}}}'
        ).encode()
        with self._lock:
            try:
                # a snapshot lost to a power cut is replaced by the next one: no fsync needed
                self._set_synchronous(_SYNC_NORMAL)
                self._conn.execute(_PUT_TELEMETRY, (ts, payload))  # one statement: atomic alone
            except sqlite3.Error as exc:
                raise _translate(exc, "put_telemetry") from exc

    # -- draining ------------------------------------------------------------------------------

    def pending(self, limit: int, *, after_seq: int = 0) -> list[OutboxEvent]:
        """Up to ``limit`` unacknowledged events with seq > ``after_seq``, oldest (lowest seq)
        first. A publisher passes the last seq it has in flight, so it never re-reads those."""
        if limit < 1:
            # SQLite reads a negative LIMIT as "no limit"; refuse rather than load everything
            raise ValueError(f"limit must be at least 1, not {limit}")
        with self._lock:
            try:
                rows = self._conn.execute(_PENDING, (after_seq, limit)).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, "pending") from exc
        return [
            OutboxEvent(seq, event_id, seq, type_, ts, payload)
            for seq, event_id, type_, ts, payload in rows
        ]

    def ack(self, row_id: int) -> None:
        """Delete an event the broker acknowledged. Acking twice or an unknown row does nothing."""
        with self._lock:
            try:
                # an ack undone by a power cut only means one duplicate publish: no fsync
                self._set_synchronous(_SYNC_NORMAL)
                deleted = self._conn.execute(_ACK, (row_id,)).rowcount  # atomic alone
            except sqlite3.Error as exc:
                raise _translate(exc, "ack") from exc
            if deleted > 0 and row_id <= self._counted_through:
                self._counted_events -= 1

    def ack_many(self, row_ids: Sequence[int]) -> None:
        """Delete many acknowledged events in one transaction: ``ack`` for each, one commit.
        Repeated or unknown rows do nothing, as with ``ack``. All or none are deleted."""
        if not row_ids:
            return
        with self._lock:
            conn = self._conn
            try:
                self._set_synchronous(_SYNC_NORMAL)  # no fsync, for the reason given in ack()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    deleted: list[tuple[int]] = []
                    for start in range(0, len(row_ids), ACK_MANY_CHUNK):
                        chunk = row_ids[start : start + ACK_MANY_CHUNK]
                        # only "?" marks go into the text; the seqs are bound parameters
                        marks = ",".join("?" * len(chunk))
                        statement = _ACK_MANY.format(marks=marks)
                        deleted += conn.execute(statement, tuple(chunk)).fetchall()
                    conn.execute("COMMIT")
                except BaseException:
                    _rollback(conn)
                    raise
            except sqlite3.Error as exc:
                raise _translate(exc, "ack_many") from exc
            self._counted_events -= sum(1 for (seq,) in deleted if seq <= self._counted_through)

    def take_telemetry(self) -> bytes | None:
        """The latest telemetry payload, removed from the outbox; None when there is none.
        Telemetry is QoS 0 and latest-wins, so it is cleared before it is published."""
        with self._lock:
            try:
                self._set_synchronous(_SYNC_NORMAL)
                rows = self._conn.execute(_TAKE_TELEMETRY).fetchall()
            except sqlite3.Error as exc:
                raise _translate(exc, "take_telemetry") from exc
        return bytes(rows[0][0]) if rows else None

    def backlog(self) -> Backlog:
        """What waits for the broker. Reads only the events recorded since the last call (the
        first call after opening counts them all); one statement, so one consistent snapshot."""
        with self._lock:
            try:
                newer, highest_seq, oldest_ts, telemetry = self._conn.execute(
                    _BACKLOG, (self._counted_through,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise _translate(exc, "backlog") from exc
            self._counted_events += newer
            self._counted_through = max(self._counted_through, highest_seq or 0)
            events = self._counted_events
        return Backlog(
            events=events,
            oldest_ts=oldest_ts,
            telemetry_pending=bool(telemetry),
            over_limit=events > self._max_business_rows,
        )

    # -- lifetime ------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; later calls raise ``OutboxError``. Closing twice is harmless."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------------------

    def _prepare(self, event_type: str, data: Mapping[str, Any]) -> _Draft:
        """Everything but the seq, done before any lock is taken: a payload that cannot be
        encoded costs no seq and holds no one up."""
        if not SEGMENT_RE.fullmatch(event_type):
            raise InvalidPayload(f"event type {event_type!r} is not a valid topic segment")
        body = self._encode_object(data, "data")
        event_id = uuid.uuid4().hex
        ts = self._utc_now()
        # assembled by hand in the contract's key order; every piece is already valid JSON (the
        # id is hex, ts is ISO, the type matched SEGMENT_RE), and the tests compare the result
        # with json.dumps
        head = f'{{"v":{SCHEMA_VERSION},"id":"{event_id}","seq":'.encode()
        tail = f',"ts":"{ts}","type":"{event_type}",{self._origin_json},"data":{body}}}'.encode()
        return _Draft(event_type, event_id, ts, head, tail)

    def _encode_object(self, value: Mapping[str, Any], what: str) -> str:
        try:
            return self._encode(value if isinstance(value, dict) else dict(value))
        except (TypeError, ValueError) as exc:
            raise InvalidPayload(f"{what} is not strict JSON: {exc}") from exc

    def _utc_now(self) -> str:
        now = self._clock.now()
        if now.utcoffset() is None:
            raise OutboxError("the clock returned a naive time")
        return utc_iso(now)

    def _set_synchronous(self, statement: str) -> None:
        """Switch only on change: acks come in runs while draining, appends in bursts."""
        if statement != self._synchronous:
            self._conn.execute(statement)
            self._synchronous = statement

    def _check_same_file(self, conn: sqlite3.Connection) -> None:
        main_file = _main_file(conn)
        if main_file == self._db_file:
            return
        # the same file reached by another spelling (symlink, relative path) is fine
        with contextlib.suppress(OSError):
            if main_file and self._db_file and os.path.samefile(main_file, self._db_file):
                return
        raise OutboxError(f"append_in got a connection to {main_file!r}, not {self._db_file!r}")


def _write(conn: sqlite3.Connection, draft: _Draft) -> OutboxEvent:
    """The counter bump and the insert; the caller owns the transaction around them."""
    row = conn.execute(_NEXT_SEQ).fetchone()
    if row is None:
        raise OutboxError("outbox_state has no row; the outbox schema is damaged")
    seq = int(row[0])
    payload = draft.head + str(seq).encode() + draft.tail
    conn.execute(_INSERT_EVENT, (seq, draft.event_id, draft.type, draft.ts, payload))
    return OutboxEvent(seq, draft.event_id, seq, draft.type, draft.ts, payload)


def _rollback(conn: sqlite3.Connection) -> None:
    # a failed COMMIT may already have ended the transaction; the original error matters more
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _translate(exc: sqlite3.Error, doing: str) -> OutboxError:
    if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return OutboxFull(f"{doing}: {exc}")
    return OutboxError(f"{doing}: {exc}")


def _main_file(conn: sqlite3.Connection) -> str:
    for _seq, name, file in conn.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(file)
    return ""


def _open(path: Path, component: str) -> tuple[sqlite3.Connection, str]:
    """Open (creating if needed) and migrate; returns the connection and its main file name."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise OutboxError(f"cannot open outbox database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OutboxError(f"{path} refused WAL mode (got {mode!r})")
        conn.execute(_SYNC_FULL)
        _migrate(conn, component)
        return conn, _main_file(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise _translate(exc, f"open {path}") from exc
    except BaseException:
        conn.close()
        raise


def _migrate(conn: sqlite3.Connection, component: str) -> None:
    """Bring the outbox tables to the current version and claim the file for ``component``.

    One IMMEDIATE transaction, so two processes opening a new file at once cannot both migrate.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        migrate_in(conn, "outbox", MIGRATIONS, OutboxError)
        conn.execute(
            "INSERT INTO outbox_state (id, component, last_seq) VALUES (1, ?, 0)"
            " ON CONFLICT (id) DO NOTHING",
            (component,),
        )
        owner = conn.execute("SELECT component FROM outbox_state WHERE id = 1").fetchone()[0]
        if owner != component:
            raise OutboxError(
                f"this database holds the outbox of {owner!r}, not {component!r};"
                " each component needs its own database file"
            )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
