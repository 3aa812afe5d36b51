"""``SimIdentityReader``: the ``reader = "sim"`` backend, with hooks to present cards.

No pcscd: the virtual cards answer in process, but through the same card apps
(``drivers.identity.pcsc.apps``) as a real PC/SC reader, so the APDU exchanges, the profiles,
the GB 11643 check and the PIN rules are the real ones.

    reader.present_card("citizen")     # or "idcard", "staff", or a VirtualCard
    reader.hang_chip()                 # the next exchange sees 6F 00 until the field cycles
    reader.remove_card()
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from drivers.identity import (
    CardInserted,
    CardRemoved,
    IdentityReader,
    ReaderReady,
    ReaderStatus,
    SimSettings,
    WatchCallbacks,
    call_safely,
)
from drivers.identity.errors import IdentityReaderError, NoCard
from drivers.identity.pcsc import apps
from drivers.identity.pcsc.apps import CardChannel
from drivers.identity.pcsc.errors import ChipHung
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from drivers.identity.vcard.cards import (
    CardKind,
    CitizenCard,
    IdCardChip,
    StaffCard,
    VirtualCard,
)
from hallkiosk.privacy import IdentityHasher

T = TypeVar("T")
SIM_READER = "sim"


class SimIdentityReader(IdentityReader):
    def __init__(self, settings: SimSettings, pcsc: PcscSettings, hasher: IdentityHasher) -> None:
        self._pcsc = pcsc
        self._hasher = hasher
        self.cards: dict[CardKind, VirtualCard] = {
            "idcard": IdCardChip(),
            "citizen": CitizenCard(pcsc.citizen),
            "staff": StaffCard(pcsc.staff),
        }
        self._changed = threading.Condition()
        self._card: VirtualCard | None = None
        self._events: queue.SimpleQueue[tuple[str, VirtualCard | None] | None] | None = None
        self._watch_thread: threading.Thread | None = None
        if settings.card != "none":
            self.present_card(settings.card)

    # -- hooks ------------------------------------------------------------------------------

    def present_card(self, card: CardKind | VirtualCard) -> None:
        chosen = self.cards[card] if isinstance(card, str) else card
        with self._changed:
            if self._card is not None:
                self._post(("out", self._card))
            chosen.power_on()
            self._card = chosen
            self._post(("in", chosen))
            self._changed.notify_all()

    def remove_card(self) -> None:
        with self._changed:
            if self._card is not None:
                self._card.power_off()
                self._post(("out", self._card))
            self._card = None
            self._changed.notify_all()

    def hang_chip(self) -> None:
        with self._changed:
            if self._card is not None:
                self._card.hung = True

    # -- the interface ----------------------------------------------------------------------

    def read(self, timeout_s: float) -> Identity:
        return self._session(timeout_s, self._read_apps)

    def verify_staff_pin(self, pin: str, timeout_s: float = 2.0) -> Identity:
        apps.check_pin_format(pin, self._pcsc.staff)
        profile = self._pcsc.staff
        return self._session(
            timeout_s, lambda ch: apps.verify_staff_pin(ch, profile, pin), cycles=0
        )

    def start_watch(self, callbacks: WatchCallbacks) -> None:
        self.stop_watch()
        events: queue.SimpleQueue[tuple[str, VirtualCard | None] | None] = queue.SimpleQueue()
        with self._changed:
            self._events = events
            if self._card is not None:
                events.put(("in", self._card))
        thread = threading.Thread(
            target=self._watch, args=(events, callbacks), name="sim-watch", daemon=True
        )
        self._watch_thread = thread
        thread.start()

    def stop_watch(self) -> None:
        with self._changed:
            events, self._events = self._events, None
        if events is not None:
            events.put(None)
        if self._watch_thread is not None:
            self._watch_thread.join(5.0)
            self._watch_thread = None

    def status(self) -> ReaderStatus:
        with self._changed:
            return ReaderStatus(True, "ok", (SIM_READER,), self._card is not None)

    def close(self) -> None:
        self.stop_watch()

    # -- internals --------------------------------------------------------------------------

    def _post(self, event: tuple[str, VirtualCard | None]) -> None:
        if self._events is not None:
            self._events.put(event)

    def _watch(
        self,
        events: queue.SimpleQueue[tuple[str, VirtualCard | None] | None],
        callbacks: WatchCallbacks,
    ) -> None:
        call_safely(callbacks.on_ready, ReaderReady((SIM_READER,)))
        while (event := events.get()) is not None:
            kind, card = event
            if kind == "out":
                call_safely(callbacks.on_removed, CardRemoved(SIM_READER))
                continue
            try:
                # the card this event is about, even if it has left again since: the watch
                # reports every presence in order, as a real reader's event queue would
                identity = self._on_card(card, self._read_apps)
            except IdentityReaderError as exc:
                call_safely(callbacks.on_error, exc)
                continue
            atr = card.atr.hex().upper() if card is not None else None
            call_safely(callbacks.on_inserted, CardInserted(SIM_READER, identity, atr))

    def _read_apps(self, channel: CardChannel) -> Identity:
        return apps.read_identity(channel, self._pcsc, self._hasher)

    def _session(
        self, timeout_s: float, work: Callable[[CardChannel], T], cycles: int | None = None
    ) -> T:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while self._card is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NoCard("no card in the simulated reader")
                self._changed.wait(remaining)
            return self._on_card(self._card, work, cycles)

    def _on_card(
        self, card: VirtualCard | None, work: Callable[[CardChannel], T], cycles: int | None = None
    ) -> T:
        if card is None:
            raise NoCard("no card in the simulated reader")
        cycles_left = self._pcsc.field_cycles if cycles is None else cycles
        with self._changed:  # one exchange at a time, as on a real reader
            while True:
                try:
                    return work(CardChannel(card.process))
                except ChipHung:
                    if cycles_left <= 0:
                        raise
                    cycles_left -= 1
                    card.power_off()  # cycle the field, as SCardReconnect(UNPOWER) does
                    card.power_on()
