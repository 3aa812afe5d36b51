"""The PC/SC card watch through a real pcscd: events, recovery after pcscd restarts, debounce."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from drivers.identity import (
    CardInserted,
    CardRemoved,
    IdentityReaderError,
    ReaderReady,
    WatchCallbacks,
)
from drivers.identity.pcsc.reader import PcscReader
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import IdentitySource
from drivers.identity.vcard.cards import SYNTHETIC_ID_NUMBER
from hallkiosk.privacy import IdentityHasher
from tests.fixtures import wait_until
from tests.fixtures.pcscd import READER, SECOND_READER, Pcscd

HASHER = IdentityHasher(b"test-identity-key-0123456789abcd")
EVENT_TIMEOUT_S = 10.0
Event = CardInserted | CardRemoved | IdentityReaderError | ReaderReady


@dataclass
class Recorder:
    """Watch callbacks that record every event, for waiting on with a deadline."""

    events: list[Event] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    fail_inserted: bool = False

    def callbacks(self) -> WatchCallbacks:
        return WatchCallbacks(self._inserted, self.add, self.add, self.add)

    def add(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)

    def _inserted(self, event: CardInserted) -> None:
        self.add(event)
        if self.fail_inserted:
            raise RuntimeError("a kiosk handler bug")

    def snapshot(self) -> list[Event]:
        with self.lock:
            return list(self.events)

    def names(self) -> list[str]:
        out = []
        for event in self.snapshot():
            if isinstance(event, IdentityReaderError):
                out.append(f"error:{event.code}")
            else:
                out.append(type(event).__name__)
        return out

    def wait(self, count: int, kind: type[object], after: int = 0) -> Event:
        def found() -> Event | None:
            matches = [e for e in self.snapshot()[after:] if isinstance(e, kind)]
            return matches[count - 1] if len(matches) >= count else None

        event = wait_until(found, timeout_s=EVENT_TIMEOUT_S, what=lambda: f"{kind}: {self.names()}")
        assert event is not None
        return event


@contextlib.contextmanager
def watching(settings: PcscSettings) -> Iterator[tuple[PcscReader, Recorder]]:
    recorder = Recorder()
    with PcscReader(settings, HASHER) as reader:
        reader.start_watch(recorder.callbacks())
        yield reader, recorder


@pytest.fixture
def watch(pcscd: Pcscd) -> Iterator[tuple[PcscReader, Recorder]]:
    with watching(PcscSettings(debounce_ms=0, reconnect_min_ms=20, reconnect_max_ms=200)) as pair:
        yield pair


def test_insert_and_remove(pcscd: Pcscd, watch: tuple[PcscReader, Recorder]) -> None:
    _reader, recorder = watch
    ready = recorder.wait(1, ReaderReady)
    assert isinstance(ready, ReaderReady) and ready.readers == (READER, SECOND_READER)
    recorder.fail_inserted = True  # the watch must survive a handler that raises
    vcard = pcscd.vcard("citizen")
    inserted = recorder.wait(1, CardInserted)
    assert isinstance(inserted, CardInserted)
    assert inserted.reader == READER
    assert inserted.identity.id_hash == HASHER.hash_id_number(SYNTHETIC_ID_NUMBER)
    assert inserted.atr == vcard.control.status()["atr"]
    vcard.control.remove()
    assert recorder.wait(1, CardRemoved) == CardRemoved(READER)
    vcard.control.insert("staff")
    staff = recorder.wait(2, CardInserted)
    assert isinstance(staff, CardInserted) and staff.identity.staff_id == "S0001234"
    assert recorder.names() == ["ReaderReady", "CardInserted", "CardRemoved", "CardInserted"]


def test_recovers_after_a_pcscd_restart_and_sees_the_next_insert(
    pcscd: Pcscd, watch: tuple[PcscReader, Recorder]
) -> None:
    reader, recorder = watch
    vcard = pcscd.vcard("idcard")
    recorder.wait(1, CardInserted)
    pcscd.stop()
    assert recorder.wait(1, CardRemoved) == CardRemoved(READER)
    down = recorder.wait(1, IdentityReaderError)
    assert isinstance(down, IdentityReaderError) and down.code == "pcscd_down"
    vcard.control.remove()
    pcscd.start()
    recorder.wait(2, ReaderReady)
    mark = len(recorder.snapshot())
    vcard.control.insert("citizen")
    inserted = recorder.wait(1, CardInserted, after=mark)
    assert isinstance(inserted, CardInserted)
    assert inserted.identity.source is IdentitySource.CITIZEN_CARD
    assert reader.watch is not None and reader.watch.recoveries >= 1
    assert recorder.names() == [
        "ReaderReady",
        "CardInserted",
        "CardRemoved",
        "error:pcscd_down",
        "ReaderReady",
        "CardInserted",
    ]


def test_reader_unplugged_and_back(pcscd: Pcscd, watch: tuple[PcscReader, Recorder]) -> None:
    _reader, recorder = watch
    pcscd.vcard("staff")
    recorder.wait(1, CardInserted)
    pcscd.restart(readers=False)  # pcscd back, but no reader: an unplugged USB reader
    gone = recorder.wait(2, IdentityReaderError)
    assert isinstance(gone, IdentityReaderError) and gone.code == "pcsc_no_reader"
    assert gone.message_zh == "未找到读卡器，请联系工作人员。"
    pcscd.restart()
    recorder.wait(2, ReaderReady)
    again = recorder.wait(2, CardInserted)  # the card still lies on the reader
    assert isinstance(again, CardInserted) and again.identity.staff_id == "S0001234"
    names = recorder.names()
    assert names.count("error:pcsc_no_reader") == 1  # reported once, not once per backoff


def test_a_card_that_leaves_and_returns_within_the_debounce_is_one_presence(
    pcscd: Pcscd,
) -> None:
    with watching(PcscSettings(debounce_ms=5_000)) as (reader, recorder):
        vcard = pcscd.vcard("idcard")
        recorder.wait(1, CardInserted)
        vcard.control.remove()
        vcard.wait_absent()
        vcard.control.insert()
        vcard.wait_present()
        watch = reader.watch
        assert watch is not None
        wait_until(lambda: watch.bounces == 1, what=lambda: f"one bounce: {watch.bounces}")
        assert recorder.names() == ["ReaderReady", "CardInserted"]
        # a different card within the window is a new presence, reported at once
        vcard.control.remove()
        vcard.wait_absent()
        vcard.control.insert("staff")
        recorder.wait(2, CardInserted)
        assert recorder.names() == ["ReaderReady", "CardInserted", "CardRemoved", "CardInserted"]


def test_an_unreadable_card_is_an_error_then_a_removal(
    pcscd: Pcscd, watch: tuple[PcscReader, Recorder]
) -> None:
    _reader, recorder = watch
    bad = SYNTHETIC_ID_NUMBER[:17] + ("1" if SYNTHETIC_ID_NUMBER[17] != "1" else "2")
    vcard = pcscd.vcard("citizen", "--id-number", bad)
    error = recorder.wait(1, IdentityReaderError)
    assert isinstance(error, IdentityReaderError) and error.code == "citizen_id_invalid"
    assert bad not in error.detail
    vcard.control.remove()
    recorder.wait(1, CardRemoved)
    assert recorder.names() == ["ReaderReady", "error:citizen_id_invalid", "CardRemoved"]
