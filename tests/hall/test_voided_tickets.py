"""A ticket whose print failed is voided at the hall (event ``ticket_voided``): out of the call
order, people ahead and wait estimates, its identity free for a new ticket; a called, ended,
foreign or unknown ticket is never harmed, and staff get an alarm where a person may hold it."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hall.errors import NothingWaiting, QuotaExhausted
from hall.service import Hall
from hall.store import SCHEMA, open_db
from hallkiosk.clock import ManualClock
from tests.hall.helpers import TZ, local, make_hall
from tests.hall.test_appointments_prereview import id_number, import_bookings
from uplink.messages import Event

ID_A = "a" * 64
KIOSK = "kiosk-01"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 0))


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Hall:
    made = make_hall(tmp_path, clock)
    yield made
    made.close()


def issue(hall: Hall, category: str = "ss-submit", **args: object) -> dict[str, Any]:
    return hall.handle_request(KIOSK, "ticket.issue", {"category": category, **args})


def event(kind: str, data: dict[str, object], *, device: str = KIOSK, seq: int = 1) -> Event:
    return Event(
        v=1,
        id=uuid.uuid4().hex,
        seq=seq,
        ts=local(2026, 11, 23, 9, 0),
        type=kind,
        device=device,
        component="kiosk",
        data=data,
    )


def voided(ticket: dict[str, Any], **data: object) -> Event:
    """The kiosk's event, as kiosk/assembly.py report_unprinted records it."""
    return event(
        "ticket_voided",
        {
            "ticket_id": ticket["ticket_id"],
            "label": ticket["ticket"],
            "category": ticket["category"],
            "reason": "print_failed",
            "partly_printed": True,
            "error": "printer_print_failed",
            **data,
        },
    )


def status(hall: Hall, ticket: dict[str, Any]) -> dict[str, Any]:
    return hall.handle_request(KIOSK, "ticket.status", {"ticket_id": ticket["ticket_id"]})


def alarms(hall: Hall) -> list[tuple[str, str]]:
    rows = hall.store.all("SELECT code, subject FROM alarms WHERE state != 'resolved'")
    return [(r["code"], r["subject"]) for r in rows]


def test_a_voided_ticket_is_never_called_and_frees_its_place_and_its_identity(
    hall: Hall,
) -> None:
    first = issue(hall, identity_hash=ID_A)
    second = issue(hall)
    third = issue(hall)
    before = status(hall, third)
    assert before["people_ahead"] == 2 and before["wait_estimate_s"] > 0
    # the same identity is offered a reprint of the ticket it never got ...
    assert issue(hall, identity_hash=ID_A)["reprint"]

    assert hall.registry.ingest(voided(first))

    gone = status(hall, first)
    assert (gone["state"], gone["people_ahead"], gone["wait_estimate_s"]) == ("voided", 0, 0)
    after = status(hall, third)
    assert after["people_ahead"] == 1
    assert after["wait_estimate_s"] == before["wait_estimate_s"] // 2
    assert [t.label for t in hall.queue.waiting()] == [second["ticket"], third["ticket"]]
    # ... and after the void a new ticket, last in line (the void left no gap to fill)
    again = issue(hall, identity_hash=ID_A)
    assert not again["reprint"] and again["ticket"] == "A004" and again["people_ahead"] == 2
    # the window never calls it
    called = [hall.queue.call_next(3).label for _ in range(3)]
    assert called == ["A002", "A003", "A004"]
    with pytest.raises(NothingWaiting):
        hall.queue.call_next(3)
    assert hall.queue.get(first["ticket_id"]).state == "voided"
    [listed] = hall.queue.voided()
    assert (listed.ticket.label, listed.reason, listed.voided_by) == ("A001", "print_failed", KIOSK)
    assert alarms(hall) == []  # the kiosk's own ticket_not_printed tells staff about the printer
    # the day ends: a voided ticket stays voided, it is not "expired"
    assert hall.queue.expire_past_days() == 0


def test_a_voided_ticket_gives_its_place_in_the_quota_window_back(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Two tickets a morning: the one whose print failed is not one of them."""
    quota = """
[[hall.queue.categories]]
id = "q"
area = "a"
area_zh = "甲"
area_en = "A"
ticket_type = "submit"
prefix = "Q"
quotas = [{ start = "08:00", end = "12:00", max_tickets = 2 }]
"""
    hall = make_hall(tmp_path, clock, quota)
    try:
        first = issue(hall, "q")
        issue(hall, "q")
        with pytest.raises(QuotaExhausted):
            issue(hall, "q")
        assert hall.registry.ingest(voided(first))
        assert issue(hall, "q")["ticket"] == "Q003"
        with pytest.raises(QuotaExhausted):
            issue(hall, "q")
    finally:
        hall.close()


def test_a_replayed_or_repeated_void_changes_nothing(hall: Hall) -> None:
    ticket = issue(hall, identity_hash=ID_A)
    void = voided(ticket)
    assert hall.registry.ingest(void)
    new = issue(hall, identity_hash=ID_A)
    assert not hall.registry.ingest(void)  # redelivered: deduplicated by the registry
    assert hall.registry.duplicates == 1
    assert hall.registry.ingest(voided(ticket))  # another event for the same ticket
    assert hall.queue.get(ticket["ticket_id"]).state == "voided"
    assert hall.queue.get(new["ticket_id"]).state == "waiting"  # the new one is untouched
    assert len(hall.queue.voided()) == 1
    assert alarms(hall) == []


def test_a_called_ticket_is_not_voided_and_staff_are_told(hall: Hall) -> None:
    ticket = issue(hall)
    assert hall.queue.call_next(4).id == ticket["ticket_id"]
    assert hall.registry.ingest(voided(ticket))
    still = hall.queue.get(ticket["ticket_id"])
    assert (still.state, still.window) == ("called", 4)
    assert alarms(hall) == [("ticket_void_refused", ticket["ticket_id"])]
    [alarm] = hall.registry.alarms()
    assert alarm["details"]["ticket"] == "A001" and "window 4" in alarm["details"]["problem"]


def test_a_finished_or_skipped_ticket_stays_as_it_is(hall: Hall) -> None:
    done, skipped = issue(hall), issue(hall)
    hall.queue.call_next(1)
    hall.queue.call_next(1)  # finishes the first
    hall.queue.skip(1)
    for ticket, state in ((done, "done"), (skipped, "skipped")):
        assert hall.registry.ingest(voided(ticket))
        assert hall.queue.get(ticket["ticket_id"]).state == state
    assert alarms(hall) == []


def test_another_devices_ticket_is_not_voided(hall: Hall) -> None:
    ticket = hall.handle_request("kiosk-02", "ticket.issue", {"category": "ss-submit"})
    assert hall.registry.ingest(voided(ticket))  # from kiosk-01
    assert hall.queue.get(ticket["ticket_id"]).state == "waiting"
    assert alarms(hall) == [("ticket_void_refused", ticket["ticket_id"])]


@pytest.mark.parametrize(
    ("data", "subject"),
    [
        ({"reason": "changed_my_mind"}, "ticket"),
        ({"ticket_id": 42}, "event"),
        ({"ticket_id": "x" * 500}, "event"),
    ],
)
def test_a_malformed_void_raises_an_alarm_and_voids_nothing(
    hall: Hall, data: dict[str, object], subject: str
) -> None:
    ticket = issue(hall)
    void = voided(ticket, **data)
    assert hall.registry.ingest(void)  # handled (not crashed): the stream goes on
    assert hall.queue.get(ticket["ticket_id"]).state == "waiting"
    expected = ticket["ticket_id"] if subject == "ticket" else void.id
    assert alarms(hall) == [("ticket_void_refused", expected)]


def test_an_unknown_ticket_raises_an_alarm_and_is_voided_if_it_arrives_later(
    hall: Hall, clock: ManualClock
) -> None:
    ghost = {"ticket_id": uuid.uuid4().hex, "ticket": "A9999", "category": "ss-submit"}
    assert hall.registry.ingest(voided(ghost))
    assert alarms(hall) == [("ticket_void_unknown", ghost["ticket_id"])]

    # an offline ticket whose ticket_issued_offline was held back behind its void
    offline_id = uuid.uuid4().hex
    early = voided({"ticket_id": offline_id, "ticket": "A1001", "category": "ss-submit"})
    assert hall.registry.ingest(early)
    assert ("ticket_void_unknown", offline_id) in alarms(hall)
    clock.advance(60)
    merged = event(
        "ticket_issued_offline",
        {
            "ticket_id": offline_id,
            "category": "ss-submit",
            "number": 1001,
            "issued_at": "2026-11-23T08:59:00+08:00",
            "priority": "normal",
            "identity_hash": ID_A,
        },
        seq=2,
    )
    assert hall.registry.ingest(merged)
    assert hall.queue.get(offline_id).state == "voided"
    assert hall.queue.waiting() == []
    assert alarms(hall) == [("ticket_void_unknown", ghost["ticket_id"])]  # that one resolved
    assert not issue(hall, identity_hash=ID_A)["reprint"]
    # a void that never finds its ticket is forgotten after a week
    clock.advance(8 * 24 * 3600)
    hall.sweep()
    assert hall.store.all("SELECT * FROM ticket_voids_pending") == []


def test_an_offline_ticket_merged_then_voided_in_order(hall: Hall) -> None:
    normal = issue(hall)
    offline_id = uuid.uuid4().hex
    merged = event(
        "ticket_issued_offline",
        {
            "ticket_id": offline_id,
            "category": "ss-submit",
            "number": 1001,
            "issued_at": "2026-11-23T08:30:00+08:00",
            "priority": "green",
        },
    )
    assert hall.registry.ingest(merged)
    assert status(hall, normal)["people_ahead"] == 1
    void = voided({"ticket_id": offline_id, "ticket": "A1001", "category": "ss-submit"})
    assert hall.registry.ingest(void)
    assert status(hall, normal)["people_ahead"] == 0
    assert hall.queue.call_next(2).id == normal["ticket_id"]
    assert alarms(hall) == []


def test_the_v2_database_is_migrated_with_its_tickets(tmp_path: Path) -> None:
    path = tmp_path / "hall.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number in range(2):
        for statement in SCHEMA[number].split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version=2")
    conn.execute(
        "INSERT INTO tickets (id, service_day, category, number, label, priority, device,"
        " issued_at, received_at, state, window, called_at) VALUES ('t1', '2026-11-23', 'c', 1,"
        " 'A001', 'normal', 'k', 'x', 'x', 'called', 2, 'y')"
    )
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE tickets SET state = 'voided'")
    conn.close()

    migrated = open_db(path)
    try:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)
        row = migrated.execute("SELECT * FROM tickets").fetchone()
        assert (row["id"], row["state"], row["window"], row["void_reason"]) == (
            "t1",
            "called",
            2,
            None,
        )
        migrated.execute("UPDATE tickets SET state = 'voided'")  # allowed now
        with pytest.raises(sqlite3.IntegrityError):
            migrated.execute("UPDATE tickets SET state = 'lost'")
        indexes = {r["name"] for r in migrated.execute("PRAGMA index_list(tickets)")}
        assert {"tickets_queue", "tickets_identity"} <= indexes
    finally:
        migrated.close()


def test_hall_queue_lists_voided_tickets_apart(tmp_path: Path) -> None:
    # the CLI reads today on the system clock
    hall = make_hall(tmp_path, ManualClock(datetime.now(TZ)))
    try:
        first, second = issue(hall), issue(hall)
        assert hall.registry.ingest(voided(first))
    finally:
        hall.close()

    def cli(*args: str) -> str:
        shown = subprocess.run(
            [sys.executable, "-m", "hall", "--config", str(tmp_path / "site.toml"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        return shown.stdout

    text = cli("queue")
    assert text.splitlines()[0].split() == ["1.", second["ticket"], "normal"]
    assert "voided today (never called): A001" in text
    assert [t["ticket"] for t in json.loads(cli("--json", "queue"))] == ["A002"]
    [listed] = json.loads(cli("--json", "queue", "--voided"))
    assert (listed["ticket"], listed["state"], listed["reason"], listed["voided_by"]) == (
        "A001",
        "voided",
        "print_failed",
        KIOSK,
    )
    assert cli("queue", "--voided").startswith("VOID A001 print_failed by kiosk-01")
    called = json.loads(cli("--json", "call", "--window", "1", "next"))
    assert called["ticket"] == "A002"


def test_checking_in_again_after_a_void_gives_a_new_ticket_the_booking_points_to(
    hall: Hall,
) -> None:
    """Online check-in, the slip fails and is voided, the applicant checks in again: a new
    priority ticket (not a reprint of the voided one), and the booking names it."""
    person = id_number(7)
    import_bookings(hall, [("BK0007", person, "09:10")])
    identity = hall.hasher.hash_id_number(person)
    first = hall.handle_request(KIOSK, "appointment.checkin", {"identity_hash": identity})
    assert hall.appointments.get("BK0007").ticket_id == first["ticket_id"]
    again = hall.handle_request(KIOSK, "appointment.checkin", {"identity_hash": identity})
    assert again["reprint"] and again["ticket_id"] == first["ticket_id"]

    assert hall.registry.ingest(voided(first))
    renewed = hall.handle_request(KIOSK, "appointment.checkin", {"identity_hash": identity})
    assert not renewed["reprint"] and renewed["ticket_id"] != first["ticket_id"]
    assert renewed["priority"] == "appointment"
    assert hall.appointments.get("BK0007").ticket_id == renewed["ticket_id"]
    assert [t.id for t in hall.queue.waiting()] == [renewed["ticket_id"]]
