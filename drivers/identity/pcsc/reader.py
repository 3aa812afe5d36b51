"""``PcscReader``: identity reads, staff PINs and the card watch over pcscd (pyscard).

One PC/SC context serves direct calls (``read``, ``verify_staff_pin``); the watch thread has its
own. A context dies for good when pcscd restarts: every call that finds it dead drops it and
establishes a new one once, so a kiosk never needs restarting after pcscd does.

Repeated reads of one card in the field are answered from memory: the key is the reader, the
ATR and pcsc-lite's card event counter (the high word of the reader state), which changes on
every insert and removal. The entry is dropped when the card leaves or pcscd goes away.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from drivers.identity import (
    IdentityReader,
    ReaderStatus,
    WatchCallbacks,
)
from drivers.identity.errors import IdentityReaderError, NoCard
from drivers.identity.pcsc import apps
from drivers.identity.pcsc.apps import CardChannel
from drivers.identity.pcsc.errors import ChipHung, NoReader, PcscServiceDown
from drivers.identity.pcsc.scard import PNP_READER, ReaderState, Scard
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from hallkiosk.privacy import IdentityHasher

if TYPE_CHECKING:
    from drivers.identity.pcsc.monitor import CardWatch

T = TypeVar("T")
CacheKey = tuple[str, int, bytes]  # reader, card event count, ATR


class PcscReader(IdentityReader):
    def __init__(
        self, settings: PcscSettings, hasher: IdentityHasher, *, scard: Scard | None = None
    ) -> None:
        self.settings = settings
        self.hasher = hasher
        self.scard = scard or Scard()  # PyscardMissing if pyscard is not installed
        # One card exchange at a time across the watch and direct calls (SELECTs interleaved
        # from two threads would read the wrong file); waits for a card hold only _direct.
        self.lock = threading.RLock()
        self._direct = threading.Lock()  # the direct-call context
        self._context: int | None = None
        self._cache: dict[str, tuple[CacheKey, Identity]] = {}
        self._watch: CardWatch | None = None

    # -- the interface ----------------------------------------------------------------------

    def read(self, timeout_s: float) -> Identity:
        deadline = time.monotonic() + timeout_s
        with self._direct:
            return self._with_context(lambda context: self._read_in(context, deadline))

    def verify_staff_pin(self, pin: str, timeout_s: float = 2.0) -> Identity:
        apps.check_pin_format(pin, self.settings.staff)  # before any card contact: no try lost
        deadline = time.monotonic() + timeout_s
        profile = self.settings.staff

        def verify(context: int) -> Identity:
            state = self._wait_for_card(context, deadline)
            # no automatic retry after a hang: the card may already have counted the try
            return self.card_session(
                context, state.name, lambda ch: apps.verify_staff_pin(ch, profile, pin), cycles=0
            )

        with self._direct:
            return self._with_context(verify)

    def staff_pin_tries_left(self, timeout_s: float = 2.0) -> int | None:
        """Tries left on the staff card in the field (0: blocked; None: already verified)."""
        deadline = time.monotonic() + timeout_s
        profile = self.settings.staff

        def query(context: int) -> int | None:
            state = self._wait_for_card(context, deadline)
            return self.card_session(
                context, state.name, lambda ch: apps.staff_pin_tries_left(ch, profile)
            )

        with self._direct:
            return self._with_context(query)

    def start_watch(self, callbacks: WatchCallbacks) -> None:
        from drivers.identity.pcsc.monitor import CardWatch  # noqa: PLC0415 - avoids a cycle

        self.stop_watch()
        watch = CardWatch(self, callbacks)
        self._watch = watch
        watch.start()

    def stop_watch(self) -> None:
        if self._watch is not None:
            self._watch.stop()
            self._watch = None

    @property
    def watch(self) -> CardWatch | None:
        """The running watch (its ``bounces``/``recoveries`` counters are for logs and tests)."""
        return self._watch

    def status(self) -> ReaderStatus:
        def look(context: int) -> ReaderStatus:
            names = self.matching_readers(context)
            if not names:
                return ReaderStatus(online=False, detail=NoReader.code)
            states = self.scard.get_status_change(
                context, 0, [(name, self.scard.STATE_UNAWARE) for name in names]
            )
            present = any(self.card_present(state) for state in states or [])
            return ReaderStatus(True, "ok", tuple(names), present)

        try:
            with self._direct:
                return self._with_context(look)
        except IdentityReaderError as exc:
            return ReaderStatus(online=False, detail=exc.code)

    def close(self) -> None:
        self.stop_watch()
        with self._direct:
            self._drop_context()

    # -- shared with the watch --------------------------------------------------------------

    def matching_readers(self, context: int) -> list[str]:
        wanted = self.settings.reader_name
        return [
            name
            for name in self.scard.list_readers(context)
            if name != PNP_READER and wanted in name
        ]

    def card_present(self, state: ReaderState) -> bool:
        scard = self.scard
        bits = state.event_state
        return bool(bits & scard.STATE_PRESENT) and not bits & (scard.STATE_MUTE | scard.STATE_GONE)

    def identify(self, context: int, state: ReaderState) -> Identity:
        """Read the card in ``state.name`` (from memory when it is the same card session)."""
        key: CacheKey = (state.name, state.event_count, state.atr)
        with self.lock:
            cached = self._cache.get(state.name)
            if cached is not None and cached[0] == key:
                return cached[1]
            identity = self.card_session(
                context,
                state.name,
                lambda channel: apps.read_identity(channel, self.settings, self.hasher),
            )
            self._cache[state.name] = (key, identity)
            return identity

    def forget(self, reader: str | None = None) -> None:
        """Drop remembered identities (one reader's card left; or all, when pcscd went away)."""
        with self.lock:
            if reader is None:
                self._cache.clear()
            else:
                self._cache.pop(reader, None)

    def card_session(
        self,
        context: int,
        reader: str,
        work: Callable[[CardChannel], T],
        *,
        cycles: int | None = None,
    ) -> T:
        """Connect, run ``work`` inside a PC/SC transaction, disconnect leaving the card powered.

        A hung chip (``ChipHung``) gets its field cycled (power off and on, which resets it)
        and ``work`` runs again, up to ``cycles`` times (default: ``settings.field_cycles``).
        """
        with self.lock:
            return self._session(context, reader, work, cycles)

    def _session(
        self, context: int, reader: str, work: Callable[[CardChannel], T], cycles: int | None
    ) -> T:
        scard = self.scard
        cycles_left = self.settings.field_cycles if cycles is None else cycles
        card, protocol = scard.connect(context, reader)
        try:
            while True:
                result = scard.begin(card)
                if result == scard.RESET_CARD:  # another client reset it: pick up the new state
                    protocol = scard.reconnect(card, unpower=False)
                    result = scard.begin(card)
                if result:
                    raise scard.error("SCardBeginTransaction", result, transmit=True)
                channel = CardChannel(functools.partial(scard.transmit, card, protocol))
                try:
                    return work(channel)
                except ChipHung:
                    if cycles_left <= 0:
                        raise
                    cycles_left -= 1
                finally:
                    scard.end(card)
                protocol = scard.reconnect(card, unpower=True)
        finally:
            scard.disconnect(card)

    # -- internals --------------------------------------------------------------------------

    def _with_context(self, work: Callable[[int], T]) -> T:
        """Run ``work`` on the direct-call context; re-establish it once if pcscd restarted."""
        for attempt in (1, 2):
            if self._context is None:
                self._context = self.scard.establish()
            try:
                return work(self._context)
            except PcscServiceDown:
                self._drop_context()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _drop_context(self) -> None:
        self.forget()
        if self._context is not None:
            self.scard.release(self._context)
            self._context = None

    def _read_in(self, context: int, deadline: float) -> Identity:
        return self.identify(context, self._wait_for_card(context, deadline))

    def _wait_for_card(self, context: int, deadline: float) -> ReaderState:
        scard = self.scard
        pnp_state = scard.STATE_UNAWARE
        while True:
            names = self.matching_readers(context)
            if not names:
                raise NoReader(f"pcscd lists no reader matching {self.settings.reader_name!r}")
            states = (
                scard.get_status_change(context, 0, [(name, scard.STATE_UNAWARE) for name in names])
                or []
            )
            for state in states:
                if self.card_present(state):
                    return state
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                raise NoCard("no card came within the timeout")
            # sleep in pcscd until a reader changes or one is added, then look again
            watch = [(s.name, s.event_state & ~scard.STATE_CHANGED) for s in states]
            watch.append((PNP_READER, pnp_state))
            changed = scard.get_status_change(
                context, min(remaining_ms, self.settings.poll_ms), watch
            )
            for state in changed or []:
                if state.name == PNP_READER:
                    pnp_state = state.event_state & ~scard.STATE_CHANGED
