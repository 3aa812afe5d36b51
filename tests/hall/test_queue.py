"""The queue authority: numbers, the midnight reset, quotas, one ticket per identity, priority
fairness, offline merge, people ahead, the calling side, and numbers across a crash."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hall.errors import NothingWaiting, QuotaExhausted, QuotaWindowClosed, UnknownCategory
from hall.queue import CLEAN_STOP_KEY
from hall.service import Hall
from hallkiosk.clock import ManualClock
from tests.hall.helpers import local, make_hall

ID_A = "a" * 64
ID_B = "b" * 64


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 0))


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Hall:
    made = make_hall(tmp_path, clock)
    yield made
    made.close()


def issue(hall: Hall, category: str = "ss-submit", **args: object) -> dict[str, object]:
    return hall.handle_request("kiosk-01", "ticket.issue", {"category": category, **args})


def test_numbers_increase_per_category_and_reset_at_local_midnight(
    hall: Hall, clock: ManualClock
) -> None:
    assert [issue(hall)["ticket"] for _ in range(3)] == ["A001", "A002", "A003"]
    assert issue(hall, "re-submit")["ticket"] == "D001"
    clock.advance((local(2026, 11, 23, 23, 59, 59) - clock.now()).total_seconds())
    assert issue(hall)["ticket"] == "A004"
    clock.advance(2)  # 00:00:01 local on the 24th: a new service day
    ticket = issue(hall)
    assert ticket["ticket"] == "A001"
    assert ticket["service_day"] == "2026-11-24"
    # yesterday's waiting tickets cannot be called today
    assert [t.label for t in hall.queue.waiting(["ss-submit"])] == ["A001"]
    assert hall.queue.expire_past_days() == 5  # A001-A004 and D001


def test_midnight_is_the_halls_zone_not_utc(hall: Hall, clock: ManualClock) -> None:
    clock.advance((local(2026, 11, 24, 7, 59) - clock.now()).total_seconds())  # 23:59 UTC
    assert issue(hall)["service_day"] == "2026-11-24"


def test_quota_window_exhausted_and_closed(tmp_path: Path, clock: ManualClock) -> None:
    extra = """
[hall.queue]
[[hall.queue.categories]]
id = "q"
area = "a"
area_zh = "甲"
area_en = "A"
ticket_type = "submit"
prefix = "Q"
quotas = [{ start = "08:00", end = "12:00", max_tickets = 2 }]
"""
    hall = make_hall(tmp_path, clock, extra)
    try:
        issue(hall, "q")
        issue(hall, "q")
        with pytest.raises(QuotaExhausted) as exc:
            issue(hall, "q")
        assert "号源已发完" in exc.value.message_zh
        clock.advance(4 * 3600)  # 13:00: outside every window
        with pytest.raises(QuotaWindowClosed):
            issue(hall, "q")
    finally:
        hall.close()


def test_number_range_end_is_a_quota(tmp_path: Path, clock: ManualClock) -> None:
    extra = """
[[hall.queue.categories]]
id = "q"
area = "a"
area_zh = "甲"
area_en = "A"
ticket_type = "submit"
prefix = "Q"
first = 1
last = 2
"""
    hall = make_hall(tmp_path, clock, extra)
    try:
        issue(hall, "q")
        issue(hall, "q")
        with pytest.raises(QuotaExhausted):
            issue(hall, "q")
    finally:
        hall.close()


def test_one_waiting_ticket_per_identity_and_business_offers_a_reprint(hall: Hall) -> None:
    first = issue(hall, identity_hash=ID_A)
    again = issue(hall, identity_hash=ID_A)
    assert again["reprint"] is True
    assert again["ticket_id"] == first["ticket_id"]
    assert issue(hall, "ss-consult", identity_hash=ID_A)["reprint"] is False  # other business
    assert issue(hall, identity_hash=ID_B)["ticket"] == "A002"
    hall.queue.call_next(1, ["ss-submit"])
    hall.queue.finish(1)
    # served: a new ticket is allowed again
    assert issue(hall, identity_hash=ID_A)["reprint"] is False


def test_priority_goes_first_but_overtakes_a_waiting_ticket_at_most_n_times(
    hall: Hall, clock: ManualClock
) -> None:
    normal = issue(hall)["ticket"]  # A001, waiting first
    clock.advance(60)
    greens = [issue(hall, priority="green")["ticket"] for _ in range(5)]
    called = []
    for _ in range(6):
        called.append(hall.queue.call_next(1, ["ss-submit"]).label)
        clock.advance(60)
    # priority_overtake_max = 3: A001 is overtaken by three green tickets, then called
    assert called == [*greens[:3], normal, *greens[3:]]


def test_people_ahead_and_wait_estimate_from_recent_service_times(
    hall: Hall, clock: ManualClock
) -> None:
    for _ in range(3):
        issue(hall)
    for _ in range(2):  # two services of 300 s each
        hall.queue.call_next(1, ["ss-submit"])
        clock.advance(300)
        hall.queue.finish(1)
    ticket = issue(hall)
    assert ticket["people_ahead"] == 1
    assert ticket["wait_estimate_s"] == 300
    status = hall.handle_request("kiosk-01", "ticket.status", {"ticket_id": ticket["ticket_id"]})
    assert status["people_ahead"] == 1


def test_calling_side_recall_skip_finish(hall: Hall) -> None:
    with pytest.raises(NothingWaiting):
        hall.queue.call_next(5)
    issue(hall)
    issue(hall)
    first = hall.queue.call_next(5)
    assert hall.queue.recall(5).recalls == 1
    assert hall.queue.skip(5).state == "skipped"
    second = hall.queue.call_next(5)
    assert (first.label, second.label) == ("A001", "A002")
    third_call = issue(hall)
    hall.queue.call_next(5)  # finishes A002 and calls A003
    assert hall.queue.get(second.id).state == "done"
    assert hall.queue.current(5).id == third_call["ticket_id"]  # type: ignore[union-attr]


def test_offline_tickets_merge_by_issue_time(hall: Hall, clock: ManualClock) -> None:
    a1 = issue(hall)  # 09:00
    clock.advance(600)
    a2 = issue(hall)  # 09:10
    offline = hall.queue.merge_offline(
        ticket_id="f" * 32,
        device="kiosk-01",
        category_id="ss-submit",
        number=1001,
        issued_at=local(2026, 11, 23, 9, 5),
    )
    assert offline.offline and offline.label == "A1001"
    assert [t.label for t in hall.queue.waiting(["ss-submit"])] == [
        a1["ticket"],
        "A1001",
        a2["ticket"],
    ]
    # the same event merged again changes nothing
    hall.queue.merge_offline(
        ticket_id="f" * 32,
        device="kiosk-01",
        category_id="ss-submit",
        number=1001,
        issued_at=local(2026, 11, 23, 9, 5),
    )
    assert len(hall.queue.waiting(["ss-submit"])) == 3


def test_unknown_category_is_a_plain_error(hall: Hall) -> None:
    with pytest.raises(UnknownCategory) as exc:
        issue(hall, "nope")
    assert exc.value.message_en


def test_a_crash_skips_the_reserved_block_and_never_repeats_a_number(
    tmp_path: Path, clock: ManualClock
) -> None:
    hall = make_hall(tmp_path, clock)
    assert issue(hall)["ticket"] == "A001"
    hall._stop.set()
    hall.notifier.stop()
    hall.queue.blocks.stop()
    hall.store.close()  # no clean stop: as after a power cut
    again = make_hall(tmp_path, clock)  # recover_numbers runs at start
    try:
        assert issue(again)["ticket"] == "A021"  # number_block = 20
        clean = again.store.one("SELECT value FROM hall_meta WHERE key = ?", CLEAN_STOP_KEY)
        assert clean is not None and clean["value"] == "0"
    finally:
        again.close()
    after_clean = make_hall(tmp_path, clock)
    try:
        assert issue(after_clean)["ticket"] == "A022"  # a clean stop skips nothing
    finally:
        after_clean.close()


def _reserved_upto(hall: Hall, category: str = "ss-submit") -> int:
    row = hall.store.one("SELECT reserved_upto FROM ticket_counters WHERE category = ?", category)
    assert row is not None
    return int(row["reserved_upto"])


def test_number_blocks_are_reserved_ahead_off_the_request_path(hall: Hall) -> None:
    numbers = []
    for _ in range(100):
        numbers.append(int(str(issue(hall)["ticket"])[1:]))
        assert hall.queue.blocks.wait_idle(timeout_s=10)
        # the synced reservation always covers every number handed out
        assert _reserved_upto(hall) >= numbers[-1]
    assert numbers == list(range(1, 101))
    # only the first ticket of the day synced on the request path; the rest was done ahead
    assert hall.queue.blocks.stats.inline == 1
    assert hall.queue.blocks.stats.ahead >= 100 // 20


def test_a_slow_disk_falls_back_to_an_inline_reservation_and_never_outruns_the_sync(
    tmp_path: Path, clock: ManualClock
) -> None:
    import threading

    hall = make_hall(tmp_path, clock)
    disk_slow = threading.Event()
    release = threading.Event()
    sync_wal = hall.store.sync_wal

    def slow_sync() -> None:
        if threading.current_thread().name == "hall-numbers":
            disk_slow.set()
            release.wait(timeout=30)  # the reserver's fsync hangs on a slow card
        sync_wal()

    hall.store.sync_wal = slow_sync  # type: ignore[method-assign]
    try:
        for _ in range(11):  # A011 leaves less than half a block: the reserver starts
            issue(hall)
        assert disk_slow.wait(timeout=10)
        # its commit is in, but not yet synced: the issuing path must not trust it
        assert _reserved_upto(hall) > 20
        assert hall.queue.blocks.durable_upto(("ss-submit", hall.queue.service_day())) == 20
        labels = [issue(hall)["ticket"] for _ in range(10)]
        assert labels[-1] == "A021"
        assert hall.queue.blocks.stats.inline == 2  # A021 reserved and synced inline
        release.set()
        assert hall.queue.blocks.wait_idle(timeout_s=10)
    finally:
        release.set()
        hall.close()
    again = make_hall(tmp_path, clock)  # a clean stop: nothing skipped
    try:
        assert issue(again)["ticket"] == "A022"
    finally:
        again.close()


def test_offline_range_overlapping_an_online_range_is_refused(
    tmp_path: Path, clock: ManualClock
) -> None:
    from hallkiosk.config import ConfigError

    extra = '\n[[hall.queue.offline_ranges]]\ndevice = "kiosk-09"\nfirst = 500\nlast = 600\n'
    with pytest.raises(ConfigError, match="overlaps the online range"):
        make_hall(tmp_path, clock, extra)


_ = timedelta


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.sampled_from(["normal", "green", "call", "minute"]), min_size=1, max_size=25)
)
def test_a_new_normal_tickets_people_ahead_equals_its_place_in_the_full_call_order(
    steps: list[str],
) -> None:
    # issue() counts instead of ordering the queue for a normal ticket; this checks the count
    # against the full call order after any mix of green tickets, overtakes and calls
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(local(2026, 11, 23, 9, 0))
        hall = make_hall(Path(tmp), clock)
        try:
            for step in steps:
                if step == "call":
                    with contextlib.suppress(NothingWaiting):
                        hall.queue.call_next(1, ["ss-submit"])
                elif step == "minute":
                    clock.advance(60)
                else:
                    issue(hall, priority=step)
            ticket = issue(hall)
            order = [t.id for t in hall.queue.waiting(["ss-submit"])]
            assert ticket["people_ahead"] == order.index(ticket["ticket_id"]) == len(order) - 1
            status = hall.handle_request(
                "kiosk-01", "ticket.status", {"ticket_id": ticket["ticket_id"]}
            )
            assert status["people_ahead"] == ticket["people_ahead"]
        finally:
            hall.close()
