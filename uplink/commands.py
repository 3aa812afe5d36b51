"""Signed commands on the device: verification, the replay store, the audit, two-stage acks.

docs/mqtt.md "Commands" is the contract. A command arrives on the device's ``{base}/cmd`` and is
checked in this order; the first failure is the rejection reason:

1. ``malformed``: it does not decode (strict schema).
2. ``wrong_device``: ``device``/``component`` are not ours (or not the topic's).
3. ``window_too_long``: ``expires_at - issued_at`` is over ``max_window_s``. This bounds how
   long an id must be remembered, and so the replay store. (Both windows are ``[uplink]``
   settings.)
4. ``not_yet_valid`` / ``expired``: ``issued_at`` is more than ``clock_skew_s`` ahead of our clock,
   or ``expires_at`` has passed.
5. ``bad_signature``: Ed25519 over the signing bytes fails with the hall's key (or no key is
   installed on this device, which is logged as such).
6. ``replay``: the id is in the replay store (a redelivery of a command already accepted).
7. ``unknown_action`` / ``invalid_args``: no such action on this component, or its arguments do not
   fit the action's strict model.

Everything from decoding to "accepted" happens on the MQTT network thread and ends in ONE durable
(fsynced) SQLite transaction: the audit row, the id in the replay store (if accepted) and the ack
to send. Only after that commit is the action queued, so a command runs at most once, even when
the broker redelivers it or the process dies right after accepting it. The action then runs on a
worker thread (never the network thread), and its physical result is committed the same way: an
audit row, the replay-store row marked done, and the ``result`` ack.

Acks wait in the ``command_replies`` table until the broker has acknowledged them (QoS 1 PUBACK),
so an ack is not lost to a disconnect or a restart; a sender thread publishes them in order.
After a crash between "accepted" and "result", start-up reports ``{"error": "interrupted"}`` as
the result: the action may or may not have happened, and the device's events (e.g. an ``opening``)
say which.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.client import MQTTMessage
from pydantic import BaseModel, ValidationError

from hallkiosk.clock import Clock, utc_iso
from uplink.connection import NotConnected, UplinkConnection
from uplink.errors import UplinkError
from uplink.messages import (
    SCHEMA_VERSION,
    AckAccepted,
    AckRejected,
    AckResult,
    Command,
    MessageError,
    check_topic,
    decode,
    describe_errors,
    encode,
)
from uplink.schema import migrate_in
from uplink.signing import verify_command
from uplink.topics import Leaf, TopicError, Topics, parse

log = logging.getLogger(__name__)

PUBACK_TIMEOUT_S: Final = 10.0
RESEND_INTERVAL_S: Final = 5.0  # a reply whose PUBACK did not come is tried again after this
STOP_JOIN_S: Final = 10.0
_SHOWN_CHARS: Final = 500  # reason texts are capped like every text field of the contract

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    # version 1
    (
        """
        CREATE TABLE command_seen (
            command_id TEXT PRIMARY KEY,
            action TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            accepted_at TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('accepted', 'done'))
        )
        """,
        "CREATE INDEX command_seen_expiry ON command_seen (expires_at)",
        """
        CREATE TABLE command_audit (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            command_id TEXT,
            action TEXT,
            stage TEXT NOT NULL CHECK (stage IN ('accepted', 'rejected', 'result')),
            reason TEXT,
            detail TEXT NOT NULL DEFAULT '{}'
        )
        """,
        """
        CREATE TRIGGER command_audit_no_update BEFORE UPDATE ON command_audit
        BEGIN SELECT RAISE(ABORT, 'command audit is append-only'); END
        """,
        """
        CREATE TRIGGER command_audit_no_delete BEFORE DELETE ON command_audit
        BEGIN SELECT RAISE(ABORT, 'command audit is append-only'); END
        """,
        "CREATE TABLE command_replies (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)",
    ),
)


class Rejection(StrEnum):
    MALFORMED = "malformed"
    WRONG_DEVICE = "wrong_device"
    WINDOW_TOO_LONG = "window_too_long"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad_signature"
    REPLAY = "replay"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_ARGS = "invalid_args"


class CommandStoreError(UplinkError, RuntimeError):
    code = "command_store_error"


class ActionFailed(UplinkError, RuntimeError):
    """Raised by an action for a known physical failure; becomes ``{"error": code, ...}``."""

    code = "action_failed"

    def __init__(self, code: str, message: str = "", **fields: Any) -> None:
        super().__init__(message or code, code=code)
        self.fields = fields


ActionRunner = Callable[[Command, Any], Mapping[str, Any]]


@dataclass(frozen=True)
class Action:
    """One thing the hall may ask this component to do.

    ``args_model`` is a strict pydantic model of the arguments; ``run(command, args)`` does the
    work on the command worker thread and returns the result object of the ``result`` ack (or
    raises ``ActionFailed``; any other exception is reported as ``internal_error``).
    """

    name: str
    args_model: type[BaseModel]
    run: ActionRunner


@dataclass(frozen=True)
class Verdict:
    command_id: str | None
    action: str | None
    rejection: Rejection | None
    reason: str  # the logged explanation; for acceptance "accepted"

    @property
    def accepted(self) -> bool:
        return self.rejection is None


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str
    command_id: str | None
    action: str | None
    stage: str
    reason: str | None
    detail: dict[str, Any]


class CommandStore:
    """The replay store, the command audit and the pending acks, in one SQLite file (which may
    be the component's own database). Shared between threads; every call is one transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA busy_timeout=5000")
            # the replay store must be on disk before an action runs: fsync every commit
            self._conn.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise CommandStoreError(f"cannot open command store {path}: {exc}") from exc

    def _migrate(self) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrate_in(conn, "command", MIGRATIONS, CommandStoreError)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise CommandStoreError(f"command store: {exc}") from exc

    def record_verdict(
        self,
        at: datetime,
        verdict: Verdict,
        reply: bytes | None,
        *,
        expires_at: datetime | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> bool:
        """Audit a verdict, remember an accepted id, queue its ack: one durable commit.

        Returns False (and records nothing of the acceptance) if an accepted id is already in
        the store: a concurrent duplicate, which the caller then treats as a replay.
        """
        with self._transaction() as conn:
            if verdict.accepted:
                assert verdict.command_id is not None and expires_at is not None
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO command_seen"
                    " (command_id, action, expires_at, accepted_at, state)"
                    " VALUES (?, ?, ?, ?, 'accepted')",
                    (verdict.command_id, verdict.action, utc_iso(expires_at), utc_iso(at)),
                ).rowcount
                if not inserted:
                    return False
            self._audit(
                conn,
                at,
                command_id=verdict.command_id,
                action=verdict.action,
                stage="accepted" if verdict.accepted else "rejected",
                reason=None if verdict.accepted else verdict.reason,
                detail=detail or {},
            )
            if reply is not None:
                conn.execute("INSERT INTO command_replies (payload) VALUES (?)", (reply,))
        return True

    def record_result(
        self, at: datetime, command_id: str, action: str, result: Mapping[str, Any], reply: bytes
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE command_seen SET state = 'done' WHERE command_id = ?", (command_id,)
            )
            self._audit(
                conn,
                at,
                command_id=command_id,
                action=action,
                stage="result",
                reason=None,
                detail={"result": dict(result)},
            )
            conn.execute("INSERT INTO command_replies (payload) VALUES (?)", (reply,))

    def seen(self, command_id: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM command_seen WHERE command_id = ?", (command_id,)
            ).fetchone()
        return row is not None

    def interrupted(self) -> list[tuple[str, str]]:
        """(command_id, action) of commands accepted but never finished (a crash)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT command_id, action FROM command_seen WHERE state = 'accepted'"
                " ORDER BY accepted_at"
            ).fetchall()
        return [(str(a), str(b)) for a, b in rows]

    def forget_expired(self, before: datetime) -> int:
        """Drop finished ids whose command expired before ``before``; they cannot be valid again."""
        with self._transaction() as conn:
            return conn.execute(
                "DELETE FROM command_seen WHERE state = 'done' AND expires_at < ?",
                (utc_iso(before),),
            ).rowcount

    def next_reply(self) -> tuple[int, bytes] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT id, payload FROM command_replies ORDER BY id LIMIT 1"
            ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def pending_replies(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM command_replies").fetchone()[0])

    def delete_reply(self, reply_id: int) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM command_replies WHERE id = ?", (reply_id,))

    def audit(self, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, at, command_id, action, stage, reason, detail FROM command_audit"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [
            AuditEntry(seq, at, command_id, action, stage, reason, json.loads(detail))
            for seq, at, command_id, action, stage, reason, detail in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @staticmethod
    def _audit(
        conn: sqlite3.Connection,
        at: datetime,
        *,
        command_id: str | None,
        action: str | None,
        stage: str,
        reason: str | None,
        detail: Mapping[str, Any],
    ) -> None:
        conn.execute(
            "INSERT INTO command_audit (at, command_id, action, stage, reason, detail)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                utc_iso(at),
                command_id,
                action,
                stage,
                reason,
                json.dumps(dict(detail), ensure_ascii=False, sort_keys=True),
            ),
        )


class CommandHandler:
    """Verifies, records and runs the commands of one component (see the module docstring)."""

    def __init__(
        self,
        store: CommandStore,
        topics: Topics,
        clock: Clock,
        public_key: Ed25519PublicKey | None,
        actions: Iterable[Action],
        *,
        max_window_s: float,
        clock_skew_s: float,
    ) -> None:
        self._store = store
        self._topics = topics
        self._clock = clock
        self._public_key = public_key
        self._actions = {action.name: action for action in actions}
        self._max_window = timedelta(seconds=max_window_s)
        self._skew = timedelta(seconds=clock_skew_s)
        self._connection: UplinkConnection | None = None
        self._work: queue.SimpleQueue[tuple[Command, Any] | None] = queue.SimpleQueue()
        self._wake_sender = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        if public_key is None:
            log.warning("no hall command key installed: every command will be rejected")

    # -- wiring --------------------------------------------------------------------------------

    def attach(self, connection: UplinkConnection) -> None:
        """Receive this component's commands from ``connection`` and send acks through it."""
        self._connection = connection
        connection.on_message(self.on_message)
        connection.on_connected(self._wake_sender.set)

    def start(self) -> None:
        """Finish what a crash interrupted, then start the worker and the ack sender."""
        now = self._clock.now()
        for command_id, action in self._store.interrupted():
            log.error("command %s (%s) was interrupted by a restart", command_id, action)
            self._record_result(command_id, action, {"error": "interrupted"}, now)
        self._store.forget_expired(now - self._skew)
        self._threads = [
            threading.Thread(target=self._work_loop, name="command-worker", daemon=True),
            threading.Thread(target=self._send_loop, name="command-acks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._wake_sender.set()

    def stop(self, timeout_s: float = STOP_JOIN_S) -> None:
        """Let the running action finish; unsent acks stay in the store for the next start."""
        self._stopping.set()
        self._work.put(None)
        self._wake_sender.set()
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.error("%s did not stop within %s s", thread.name, timeout_s)
        self._threads = []

    # -- receiving (network thread) ------------------------------------------------------------

    def on_message(self, message: MQTTMessage) -> None:
        if message.topic == self._topics.command:
            self.handle(message.topic, bytes(message.payload))

    def handle(self, topic: str, payload: bytes) -> Verdict:
        """Check one command, record the verdict durably, queue the action if accepted."""
        now = self._clock.now()
        verdict, command, args = self._check(topic, payload, now)
        detail: dict[str, Any] = {"bytes": len(payload)}
        if command is not None:
            detail["issued_at"] = command.model_dump(mode="json")["issued_at"]
            detail["args"] = command.args
        reply = self._ack(verdict, now)
        recorded = self._store.record_verdict(
            now,
            verdict,
            reply,
            expires_at=command.expires_at if command is not None else None,
            detail=detail,
        )
        if not recorded:  # a duplicate won the race between our replay check and the insert
            verdict = Verdict(verdict.command_id, verdict.action, Rejection.REPLAY, "replay")
            self._store.record_verdict(now, verdict, self._ack(verdict, now), detail=detail)
        self._wake_sender.set()
        if verdict.accepted:
            assert command is not None
            log.info("command %s accepted: %s", command.command_id, command.action)
            self._work.put((command, args))
        else:
            log.warning(
                "command %s rejected: %s (%s)",
                verdict.command_id or "(no id)",
                verdict.rejection,
                verdict.reason,
            )
        return verdict

    def _check(
        self, topic: str, payload: bytes, now: datetime
    ) -> tuple[Verdict, Command | None, Any]:
        def reject(
            why: Rejection, reason: str, command: Command | None = None
        ) -> tuple[Verdict, Command | None, Any]:
            command_id = command.command_id if command else _loose_command_id(payload)
            action = command.action if command else None
            return Verdict(command_id, action, why, reason[:_SHOWN_CHARS]), command, None

        try:
            command = decode(Command, payload)
        except MessageError as exc:
            return reject(Rejection.MALFORMED, str(exc))
        if (command.device, command.component) != (self._topics.device_id, self._topics.component):
            return reject(
                Rejection.WRONG_DEVICE,
                f"addressed to {command.device}/{command.component}",
                command,
            )
        try:
            check_topic(command, parse(topic))
        except (MessageError, TopicError) as exc:
            return reject(Rejection.WRONG_DEVICE, str(exc), command)
        if command.expires_at - command.issued_at > self._max_window:
            return reject(
                Rejection.WINDOW_TOO_LONG,
                f"valid for {(command.expires_at - command.issued_at).total_seconds():.0f} s, "
                f"at most {self._max_window.total_seconds():.0f} s allowed",
                command,
            )
        if command.issued_at > now + self._skew:
            return reject(
                Rejection.NOT_YET_VALID, f"issued at {command.issued_at}, our clock {now}", command
            )
        if command.expires_at <= now:
            return reject(
                Rejection.EXPIRED, f"expired at {command.expires_at}, our clock {now}", command
            )
        if self._public_key is None:
            return reject(Rejection.BAD_SIGNATURE, "no hall command key installed", command)
        if not verify_command(self._public_key, command):
            return reject(Rejection.BAD_SIGNATURE, "signature does not verify", command)
        if self._store.seen(command.command_id):
            return reject(Rejection.REPLAY, "command id already accepted", command)
        action = self._actions.get(command.action)
        if action is None:
            known = ", ".join(sorted(self._actions)) or "none"
            return reject(
                Rejection.UNKNOWN_ACTION, f"no action {command.action!r} (known: {known})", command
            )
        try:
            args = action.args_model.model_validate(command.args)
        except ValidationError as exc:
            problems = describe_errors(action.args_model, exc)
            return reject(Rejection.INVALID_ARGS, "; ".join(problems), command)
        verdict = Verdict(command.command_id, command.action, None, "accepted")
        return verdict, command, args

    def _ack(self, verdict: Verdict, now: datetime) -> bytes | None:
        if verdict.command_id is None:
            return None  # nothing to refer to: audited and logged only
        base = {
            "v": SCHEMA_VERSION,
            "device": self._topics.device_id,
            "component": self._topics.component,
            "command_id": verdict.command_id,
            "ts": now,
        }
        if verdict.accepted:
            return encode(AckAccepted.model_validate({**base, "status": "accepted"}))
        return encode(
            AckRejected.model_validate(
                {**base, "status": "rejected", "reason": str(verdict.rejection)}
            )
        )

    # -- running (worker thread) ---------------------------------------------------------------

    def _work_loop(self) -> None:
        while (item := self._work.get()) is not None:
            command, args = item
            result = self._run(command, args)
            try:
                self._record_result(command.command_id, command.action, result, self._clock.now())
            except Exception:
                log.exception("could not record the result of command %s", command.command_id)

    def _run(self, command: Command, args: Any) -> dict[str, Any]:
        action = self._actions[command.action]
        try:
            return dict(action.run(command, args))
        except ActionFailed as exc:
            log.warning("command %s failed: %s %s", command.command_id, exc.code, exc)
            return {"error": exc.code, **exc.fields}
        except Exception as exc:
            log.exception("command %s (%s) raised", command.command_id, command.action)
            return {"error": str(getattr(exc, "code", "internal_error"))}

    def _record_result(
        self, command_id: str, action: str, result: Mapping[str, Any], now: datetime
    ) -> None:
        reply = encode(
            AckResult.model_validate(
                {
                    "v": SCHEMA_VERSION,
                    "device": self._topics.device_id,
                    "component": self._topics.component,
                    "command_id": command_id,
                    "status": "result",
                    "result": dict(result),
                    "ts": now,
                }
            )
        )
        self._store.record_result(now, command_id, action, result, reply)
        log.info("command %s result: %s", command_id, result)
        self._wake_sender.set()

    # -- acks (sender thread) ------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake_sender.wait(RESEND_INTERVAL_S)
            self._wake_sender.clear()
            try:
                self._send_pending()
            except Exception:
                log.exception("sending command acks failed; retrying")

    def _send_pending(self) -> None:
        connection = self._connection
        while connection is not None and not self._stopping.is_set():
            row = self._store.next_reply()
            if row is None:
                return
            reply_id, payload = row
            try:
                info = connection.publish(self._topics.ack, payload, qos=Leaf.ACK.qos)
                info.wait_for_publish(PUBACK_TIMEOUT_S)  # returns at PUBACK or timeout
                published = info.is_published()
            except (NotConnected, RuntimeError, ValueError) as exc:
                log.info("command ack waits for the connection: %s", exc)
                return
            if not published:
                return  # the connection went away; on_connected wakes us again
            self._store.delete_reply(reply_id)


def _loose_command_id(payload: bytes) -> str | None:
    """The command_id of an undecodable command, if it has a usable one, to address the ack."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    command_id = document.get("command_id") if isinstance(document, dict) else None
    if isinstance(command_id, str) and 1 <= len(command_id) <= 64:
        return command_id
    return None
