"""The PC/SC card watch: our own thread over SCardGetStatusChange, not pyscard's CardMonitor.

Why not CardMonitor/CardObserver: pyscard's monitor is a process-wide singleton whose thread
keeps one context for life. When pcscd stops it sees SCARD_E_NO_SERVICE and ends for good
(pyscard 2.3 ``CardMonitoringThread.run`` sets its stop event); other errors just print a
traceback and loop on the dead context. A kiosk must survive pcscd restarts and unplugged
readers on its own, so this thread owns its context and:

- on a service error (pcscd gone: NO_SERVICE, SERVICE_STOPPED, F_COMM_ERROR, INVALID_HANDLE)
  reports every card as removed, reports the fault once, releases the context, and
  re-establishes it with a doubling backoff (``reconnect_min_ms``..``reconnect_max_ms``);
- watches the ``\\\\?PnP?\\Notification`` pseudo reader, so a reader plugged in or pulled out
  is noticed without polling, and reports "no reader" once while none matches;
- reads each new card in the field right away (``CardInserted`` carries the identity);
- debounces: a card that leaves and comes back as the same card within ``debounce_ms`` fires
  nothing (the removal is held back that long). pcsc-lite's per-reader event counter (high
  word of the state) exposes a leave-and-return that happened between two waits.

``stop`` wakes a blocked wait with SCardCancel.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from drivers.identity import (
    CardInserted,
    CardRemoved,
    ReaderReady,
    WatchCallbacks,
    call_safely,
)
from drivers.identity.errors import IdentityReaderError, NoCard, ReaderOffline
from drivers.identity.pcsc.errors import NoReader
from drivers.identity.pcsc.reader import PcscReader
from drivers.identity.pcsc.scard import PNP_READER, Cancelled, ReaderState
from drivers.identity.types import Identity

log = logging.getLogger(__name__)


@dataclass
class _Presence:
    event_count: int
    identity: Identity | None  # None: present but not readable
    removal_due_s: float | None = None  # a removal held back for the debounce window


class CardWatch:
    def __init__(self, reader: PcscReader, callbacks: WatchCallbacks) -> None:
        self._reader = reader
        self._scard = reader.scard
        self._settings = reader.settings
        self._callbacks = callbacks
        self._stop = threading.Event()
        self._context_lock = threading.Lock()
        self._context: int | None = None
        self._present: dict[str, _Presence] = {}
        self._last_error: str | None = None
        self._backoff_s = self._settings.reconnect_min_ms / 1000
        self.bounces = 0  # leave-and-return events swallowed by the debounce (for tests, logs)
        self.recoveries = 0  # contexts re-established after a fault
        self._thread = threading.Thread(target=self._run, name="pcsc-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with self._context_lock:
            if self._context is not None:
                self._scard.cancel(self._context)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        faulted = False
        while not self._stop.is_set():
            try:
                context = self._scard.establish()
            except IdentityReaderError as exc:
                self._lost(exc)
                faulted = True
                self._back_off()
                continue
            if faulted:
                self.recoveries += 1
            with self._context_lock:
                self._context = context
            try:
                self._watch(context)
            except Cancelled:
                pass
            except IdentityReaderError as exc:
                self._lost(exc)
                faulted = True
                self._back_off()
            except Exception as exc:  # a bug must not end the watch: report it and start over
                log.exception("pcsc watch failed")
                self._lost(IdentityReaderError(f"watch failed: {exc!r}"))
                faulted = True
                self._back_off()
            finally:
                with self._context_lock:
                    self._context = None
                self._scard.release(context)
        # stopped on purpose: nothing left the field, so no removal events
        self._present.clear()
        self._reader.forget()

    def _back_off(self) -> None:
        self._stop.wait(self._backoff_s)
        self._backoff_s = min(self._backoff_s * 2, self._settings.reconnect_max_ms / 1000)

    def _watch(self, context: int) -> None:
        scard = self._scard
        names = self._readers_changed(context, [])
        states = [(name, scard.STATE_UNAWARE) for name in names]
        pnp_state = scard.STATE_UNAWARE
        while not self._stop.is_set():
            changed = scard.get_status_change(
                context, self._wait_ms(), [*states, (PNP_READER, pnp_state)]
            )
            if changed is not None:
                list_changed = False
                next_states: list[tuple[str, int]] = []
                for state in changed:
                    bits = state.event_state & ~scard.STATE_CHANGED
                    if state.name == PNP_READER:
                        list_changed |= bool(state.event_state & scard.STATE_CHANGED)
                        pnp_state = bits
                        continue
                    next_states.append((state.name, bits))
                    if state.event_state & scard.STATE_GONE:
                        list_changed = True
                    elif state.event_state & scard.STATE_CHANGED:
                        self._on_state(context, state)
                states = next_states
                if list_changed:
                    names = self._readers_changed(context, names)
                    known = dict(states)
                    states = [(name, known.get(name, scard.STATE_UNAWARE)) for name in names]
            self._backoff_s = self._settings.reconnect_min_ms / 1000  # pcscd answers: healthy
            self._expire_removals(time.monotonic())

    def _wait_ms(self) -> int:
        wait_ms = self._settings.poll_ms
        now = time.monotonic()
        for presence in self._present.values():
            if presence.removal_due_s is not None:
                wait_ms = min(wait_ms, max(1, int((presence.removal_due_s - now) * 1000) + 1))
        return wait_ms

    def _readers_changed(self, context: int, before: list[str]) -> list[str]:
        names = self._reader.matching_readers(context)
        for gone in [name for name in self._present if name not in names]:
            self._removed(gone)
        if not names:
            self._report(NoReader(f"no reader matching {self._settings.reader_name!r}"))
        elif names != before:
            self._last_error = None
            call_safely(self._callbacks.on_ready, ReaderReady(tuple(names)))
        return names

    # -- presence ---------------------------------------------------------------------------

    def _on_state(self, context: int, state: ReaderState) -> None:
        presence = self._present.get(state.name)
        if not self._reader.card_present(state):
            if presence is None or presence.removal_due_s is not None:
                return
            if self._settings.debounce_ms == 0:
                self._removed(state.name)
            else:
                presence.removal_due_s = time.monotonic() + self._settings.debounce_ms / 1000
            return
        if (
            presence is not None
            and presence.removal_due_s is None
            and presence.event_count == state.event_count
        ):
            return  # the same card session (e.g. only the in-use bit changed)
        identity, error = self._read(context, state)
        if presence is not None:
            if (
                self._settings.debounce_ms > 0
                and identity is not None
                and identity == presence.identity
            ):
                presence.removal_due_s = None
                presence.event_count = state.event_count
                self.bounces += 1
                return
            self._removed(state.name)
        self._present[state.name] = _Presence(state.event_count, identity)
        if identity is not None:
            call_safely(
                self._callbacks.on_inserted,
                CardInserted(state.name, identity, state.atr.hex().upper() or None),
            )
        elif error is not None:
            call_safely(self._callbacks.on_error, error)

    def _read(
        self, context: int, state: ReaderState
    ) -> tuple[Identity | None, IdentityReaderError | None]:
        try:
            return self._reader.identify(context, state), None
        except NoCard:
            return None, None  # gone again before it could be read: its removal follows
        except ReaderOffline:
            raise  # pcscd or the reader went away: the loop recovers
        except IdentityReaderError as exc:
            return None, exc

    def _expire_removals(self, now: float) -> None:
        due = [
            name
            for name, presence in self._present.items()
            if presence.removal_due_s is not None and presence.removal_due_s <= now
        ]
        for name in due:
            self._removed(name)

    def _removed(self, reader: str) -> None:
        self._present.pop(reader, None)
        self._reader.forget(reader)
        call_safely(self._callbacks.on_removed, CardRemoved(reader))

    def _drop_all(self) -> None:
        for name in list(self._present):
            self._removed(name)

    def _lost(self, exc: IdentityReaderError) -> None:
        """pcscd or the reader went away: nothing is known to be in the field any more."""
        self._drop_all()
        self._reader.forget()
        self._report(exc)

    def _report(self, exc: IdentityReaderError) -> None:
        if exc.code == self._last_error:
            return  # one report per fault, not one per backoff round
        self._last_error = exc.code
        log.warning("identity reader: %s", exc.detail)
        call_safely(self._callbacks.on_error, exc)
