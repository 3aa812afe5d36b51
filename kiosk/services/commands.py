"""What the hall may ask the kiosk to do by signed command (docs/mqtt.md "Commands"), and the
ops lock those commands set.

- ``lock``: args ``reason`` and optionally ``where_instead``, each one text (shown in both
  languages) or ``{"zh": ..., "en": ...}``, 1-200 characters on one line. Result
  ``{"ops_locked": true, "already_locked", "since"}``. Locking a locked kiosk replaces the texts.
- ``unlock``: no args. Result ``{"ops_locked": false, "was_locked", "staff_locked"}``; with
  ``staff_locked`` true the kiosk stays out of service (a clerk locked it on site).
- ``status``: no args. Result: the telemetry snapshot (kiosk/services/telemetry.py), which is
  also queued for the hall, and ``ops_lock``: its texts, ``since`` and ``command_id``, or null.

The command handler (``uplink.commands.CommandHandler``) checks the signature, the window and
the replay store, and validates the args against the models below before anything here runs; a
replayed or expired ``lock`` never reaches ``OpsLock``.

**The ops lock** is the hall's decision, so it outlives the process: ``OpsLock`` keeps it in
``kiosk.db`` (``kiosk_ops_lock``, fsynced) and a kiosk restarted while locked comes back locked.
The actions run on the command worker thread, and ``OpsLock`` calls its subscribers there, after
the change is on disk; the kiosk's session lives on the UI thread, so the assembly
(kiosk/assembly.py) posts each change to it and reads ``state()`` there. Only ``unlock`` lifts an
ops lock: a clerk's unlock on site lifts the clerk's own lock (docs/kiosk.md "Out of service").
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Discriminator, Field, Tag

from hallkiosk.clock import Clock, utc_iso
from hallkiosk.config import StrictModel
from kiosk.flows.base import Bilingual
from kiosk.services.store import KioskStore

if TYPE_CHECKING:  # only a kiosk over MQTT runs commands: the embedded one never imports them
    from uplink.commands import Action
    from uplink.messages import Command

log = logging.getLogger(__name__)

TEXT_MAX_CHARS = 200


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("must be one line without control characters")
    return value


Line = Annotated[str, Field(min_length=1, max_length=TEXT_MAX_CHARS), AfterValidator(_one_line)]


class BilingualArg(StrictModel):
    zh: Line
    en: Line


def _text_kind(value: Any) -> str:
    return "zh_en" if isinstance(value, dict | BilingualArg) else "text"


# One text for both languages, or {"zh": ..., "en": ...}; the error names the form that was sent.
TextArg = Annotated[
    Annotated[Line, Tag("text")] | Annotated[BilingualArg, Tag("zh_en")],
    Discriminator(_text_kind),
]


class LockArgs(StrictModel):
    reason: TextArg
    where_instead: TextArg | None = None


class NoArgs(StrictModel):
    pass


def _bilingual(value: str | BilingualArg) -> Bilingual:
    if isinstance(value, BilingualArg):
        return Bilingual(value.zh, value.en)
    return Bilingual(value, value)


@dataclass(frozen=True)
class OpsLockState:
    """An ops lock in force: what the out-of-service page says, and which command set it."""

    reason: Bilingual
    where_instead: Bilingual | None  # None: the kiosk's own "where to go instead"
    command_id: str
    since: str  # UTC, ISO 8601

    def describe(self) -> dict[str, Any]:
        where = self.where_instead
        return {
            "reason_zh": self.reason.zh,
            "reason_en": self.reason.en,
            "where_instead_zh": where.zh if where else None,
            "where_instead_en": where.en if where else None,
            "command_id": self.command_id,
            "since": self.since,
        }


OpsLockListener = Callable[[OpsLockState | None], None]


class OpsLock:
    """The ops lock, persisted in ``kiosk.db``; readable and observable from any thread.

    ``state()`` is None when the kiosk is not ops-locked. Subscribers are called on the thread
    that made the change (the command worker), after it was committed; they must not block and
    must not touch the UI (post instead)."""

    def __init__(self, store: KioskStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[OpsLockListener] = []
        self._state = self._load()
        if self._state is not None:
            log.warning(
                "kiosk is locked by ops since %s (command %s)",
                self._state.since,
                self._state.command_id,
            )

    def state(self) -> OpsLockState | None:
        with self._lock:
            return self._state

    @property
    def locked(self) -> bool:
        return self.state() is not None

    def subscribe(self, listener: OpsLockListener) -> Callable[[], None]:
        """Call ``listener(state)`` after every change; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def lock(
        self, reason: Bilingual, where_instead: Bilingual | None, command_id: str
    ) -> tuple[OpsLockState, bool]:
        """Lock (or replace the texts of a lock in force); returns the state and whether the
        kiosk was ops-locked already."""
        state = OpsLockState(reason, where_instead, command_id, utc_iso(self._clock.now()))
        with self._lock:
            already = self._state is not None
            with self._store.transaction() as conn:
                conn.execute(
                    "INSERT INTO kiosk_ops_lock (id, reason_zh, reason_en, where_instead_zh,"
                    " where_instead_en, command_id, locked_at) VALUES (1, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (id) DO UPDATE SET reason_zh = excluded.reason_zh,"
                    " reason_en = excluded.reason_en,"
                    " where_instead_zh = excluded.where_instead_zh,"
                    " where_instead_en = excluded.where_instead_en,"
                    " command_id = excluded.command_id, locked_at = excluded.locked_at",
                    (
                        reason.zh,
                        reason.en,
                        where_instead.zh if where_instead else None,
                        where_instead.en if where_instead else None,
                        command_id,
                        state.since,
                    ),
                )
            self._state = state
            listeners = list(self._listeners)
        log.warning("kiosk locked by ops (command %s): %s", command_id, reason.en)
        self._notify(listeners, state)
        return state, already

    def unlock(self, command_id: str) -> OpsLockState | None:
        """Lift the ops lock; returns the lock that was in force (None: there was none)."""
        with self._lock:
            was = self._state
            with self._store.transaction() as conn:
                conn.execute("DELETE FROM kiosk_ops_lock WHERE id = 1")
            self._state = None
            listeners = list(self._listeners)
        log.warning("kiosk unlocked by ops (command %s)", command_id)
        self._notify(listeners, None)
        return was

    def _load(self) -> OpsLockState | None:
        row = self._store.one("SELECT * FROM kiosk_ops_lock WHERE id = 1")
        if row is None:
            return None
        where = None
        if row["where_instead_zh"] is not None and row["where_instead_en"] is not None:
            where = Bilingual(row["where_instead_zh"], row["where_instead_en"])
        return OpsLockState(
            Bilingual(row["reason_zh"], row["reason_en"]),
            where,
            row["command_id"],
            row["locked_at"],
        )

    @staticmethod
    def _notify(listeners: list[OpsLockListener], state: OpsLockState | None) -> None:
        for listener in listeners:
            try:
                listener(state)
            except Exception:  # the lock is on disk; one listener must not stop the others
                log.exception("ops lock listener %r failed", listener)


def kiosk_actions(ops_lock: OpsLock, snapshot: Callable[[], Mapping[str, Any]]) -> list[Action]:
    """The kiosk's actions; ``snapshot`` is the telemetry's (``KioskTelemetry.take``): it
    returns the current metrics and queues them for the hall."""
    from uplink.commands import Action  # noqa: PLC0415 - see TYPE_CHECKING above

    def lock(command: Command, args: LockArgs) -> Mapping[str, Any]:
        where = _bilingual(args.where_instead) if args.where_instead is not None else None
        state, already = ops_lock.lock(_bilingual(args.reason), where, command.command_id)
        return {"ops_locked": True, "already_locked": already, "since": state.since}

    def unlock(command: Command, _args: NoArgs) -> Mapping[str, Any]:
        was = ops_lock.unlock(command.command_id)
        # a clerk's lock on site stays: the kiosk is still out of service while it holds
        staff_locked = snapshot().get("staff_locked")
        return {"ops_locked": False, "was_locked": was is not None, "staff_locked": staff_locked}

    def status(_command: Command, _args: NoArgs) -> Mapping[str, Any]:
        state = ops_lock.state()
        return {**snapshot(), "ops_lock": state.describe() if state is not None else None}

    return [
        Action("lock", LockArgs, lock),
        Action("unlock", NoArgs, unlock),
        Action("status", NoArgs, status),
    ]
