"""The ticket issuing path without its former per-ticket reads (bench/ticket_rtt.py): the issued
ticket is built instead of read back, the wait estimate's inputs are kept until the tickets
change, and WAL checkpoints run on the reserver's thread instead of inside a ticket's commit."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from statistics import fmean

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall.errors import NothingWaiting
from hall.number_blocks import CHECKPOINT_CHANGES
from hall.queue import ACTIVE_WINDOW_S
from hall.service import Hall
from hall.settings import load_hall_settings
from hallkiosk.clock import ManualClock, utc_iso
from tests.fixtures import wait_until
from tests.hall.helpers import local, make_hall

CATEGORY = "ss-collect"  # no quota windows: any hour issues


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 0))


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Hall:
    made = make_hall(tmp_path, clock)
    yield made
    made.close()


def test_an_issued_ticket_is_its_row_as_read_back(hall: Hall, clock: ManualClock) -> None:
    identity = "d" * 64
    issued = [
        hall.queue.issue(category_id=CATEGORY, device="kiosk-01"),
        hall.queue.issue(
            category_id="ss-consult", device="kiosk-02", identity_hash=identity, priority="green"
        ),
        hall.queue.issue(
            category_id=CATEGORY,
            device="kiosk-01",
            identity_hash="c" * 64,
            priority="appointment",
            booking_code="BK000001",
            slot_start=local(2026, 11, 23, 10, 30) + timedelta(microseconds=7),
        ),
    ]
    clock.advance(0.123456)
    issued.append(hall.queue.issue(category_id="re-submit", device="kiosk-03"))
    for one in issued:
        assert one.ticket == hall.queue.get(one.ticket.id)
        assert one.ticket.public() == hall.queue.get(one.ticket.id).public()
    assert issued[2].ticket.slot_start == local(2026, 11, 23, 10, 30) + timedelta(microseconds=7)


def _service_time_s(conn: sqlite3.Connection, hall: Hall) -> float:
    """The estimate's inputs as the queries read them, with nothing kept."""
    rows = conn.execute(
        "SELECT called_at, finished_at FROM tickets WHERE category = ? AND state = 'done'"
        " AND called_at IS NOT NULL AND finished_at IS NOT NULL"
        " ORDER BY finished_at DESC LIMIT ?",
        (CATEGORY, hall.settings.hall.queue.service_time_samples),
    ).fetchall()
    spans = [
        (datetime.fromisoformat(f) - datetime.fromisoformat(c)).total_seconds() for c, f in rows
    ]
    spans = [s for s in spans if s > 0]
    return fmean(spans) if spans else hall.settings.hall.queue.service_time_default_s


def _windows(conn: sqlite3.Connection, since: str) -> int:
    return int(
        conn.execute(
            "SELECT COUNT(DISTINCT window) FROM tickets WHERE category = ? AND called_at >= ?"
            " AND window IS NOT NULL",
            (CATEGORY, since),
        ).fetchone()[0]
    )


STEPS = ["issue", "green", "call", "finish", "skip", "recall", "void", "minutes", "back", "other"]


@settings(max_examples=30, deadline=None)
@given(steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=30))
def test_kept_estimate_inputs_always_equal_a_fresh_read(steps: list[str]) -> None:
    # every kind of change, by this process or another one (hall call), and time passing or set
    # back: what the queue answers must equal what the queries answer now
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        clock = ManualClock(local(2026, 11, 23, 9, 0))
        hall = make_hall(directory, clock)
        # another process on the same database, as `hall call` is (not started: a CLI)
        other = Hall(load_hall_settings([directory / "site.toml"]), clock)
        fresh = sqlite3.connect(hall.settings.db_path)
        try:
            for i, step in enumerate(steps):
                window = i % 3 + 1
                with contextlib.suppress(NothingWaiting):
                    if step in ("issue", "green"):
                        hall.queue.issue(
                            category_id=CATEGORY,
                            device="kiosk-01",
                            priority="normal" if step == "issue" else "green",
                        )
                    elif step == "call":
                        hall.queue.call_next(window, [CATEGORY])
                    elif step == "finish":
                        clock.advance(60 + i)  # services of different lengths
                        hall.queue.finish(window)
                    elif step == "skip":
                        hall.queue.skip(window)
                    elif step == "recall":
                        hall.queue.recall(window)
                    elif step == "void":
                        waiting = hall.queue.waiting([CATEGORY])
                        if waiting:
                            hall.queue.void(waiting[-1].id, "print_failed", waiting[-1].device)
                    elif step == "minutes":
                        clock.advance(25 * 60)
                    elif step == "back":
                        clock.advance(-40 * 60)
                    elif step == "other":
                        other.queue.call_next(7, [CATEGORY])
                        clock.advance(90)
                        other.queue.finish(7)
                assert hall.queue.service_time_s(CATEGORY) == _service_time_s(fresh, hall)
                since = utc_iso(clock.now() - timedelta(seconds=ACTIVE_WINDOW_S))
                assert hall.queue._estimates.windows(CATEGORY, since) == _windows(fresh, since)
            issued = hall.queue.issue(category_id=CATEGORY, device="kiosk-01")
            since = utc_iso(clock.now() - timedelta(seconds=ACTIVE_WINDOW_S))
            windows = max(1, _windows(fresh, since))
            assert issued.wait_estimate_s == round(
                issued.people_ahead * _service_time_s(fresh, hall) / windows
            )
        finally:
            fresh.close()
            other.store.close()
            hall.close()


def test_open_windows_age_out_and_come_back_when_the_clock_is_set_back(
    hall: Hall, clock: ManualClock
) -> None:
    for _ in range(4):
        hall.queue.issue(category_id=CATEGORY, device="kiosk-01")
    hall.queue.call_next(1, [CATEGORY])
    clock.advance(20 * 60)
    hall.queue.call_next(2, [CATEGORY])

    def open_windows() -> int:
        since = clock.now() - timedelta(seconds=ACTIVE_WINDOW_S)
        return hall.queue._estimates.windows(CATEGORY, utc_iso(since))

    assert open_windows() == 2
    clock.advance(45 * 60)  # window 1 called 65 minutes ago
    assert open_windows() == 1
    clock.advance(30 * 60)
    assert open_windows() == 0
    hall.queue.call_next(3, [CATEGORY])  # a change: read again, for the last hour only
    assert open_windows() == 1
    clock.advance(-60 * 60)  # set back (NTP): the first two calls are within the hour again
    assert open_windows() == 3


def test_without_the_trigger_the_estimate_inputs_are_read_every_time(
    tmp_path: Path, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("hall.queue._TICKET_EPOCH_SETUP", ("CREATE TEMP TRIGGER broken",))
    hall = make_hall(tmp_path, clock)
    try:
        for _ in range(3):
            hall.queue.issue(category_id=CATEGORY, device="kiosk-01")
        hall.queue.call_next(1, [CATEGORY])
        clock.advance(240)
        hall.queue.finish(1)
        issued = hall.queue.issue(category_id=CATEGORY, device="kiosk-01")
        assert hall.queue.service_time_s(CATEGORY) == 240
        assert (issued.people_ahead, issued.wait_estimate_s) == (2, 480)
    finally:
        hall.close()


def test_the_wal_is_checkpointed_off_the_request_path(hall: Hall) -> None:
    # the serving process checkpoints on the reserver's thread; SQLite's own checkpoint in a
    # commit is only a backstop, far behind
    assert hall.store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
    db = hall.settings.db_path
    size_before = db.stat().st_size
    for n in range(CHECKPOINT_CHANGES):  # 2 changed rows a ticket
        category = ("ss-collect", "re-submit")[n % 2]
        hall.handle_request("kiosk-01", "ticket.issue", {"category": category})
    wait_until(
        lambda: hall.queue.blocks.stats.checkpoints >= 1,
        timeout_s=10,
        what="a checkpoint on the reserver's thread",
    )
    # only a checkpoint writes the database file in WAL mode
    assert db.stat().st_size > size_before
    hall.queue.blocks.stop()  # a stopped reserver hands checkpoints back to SQLite
    assert hall.store.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
