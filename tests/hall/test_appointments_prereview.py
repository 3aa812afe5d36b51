"""Appointments (import, check-in windows, no-shows, the kiosk list) and pre-review intake
(resumable chunks, submission, the department's decision and the notification it queues)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall import cli
from hall.appointments.importer import parse_csv
from hall.errors import AppointmentForfeited, AppointmentTooEarly, RequestInvalid, UploadError
from hall.notify.queue import list_recent
from hall.prereview.review import AlreadyDecided
from hall.service import Hall
from hallkiosk.clock import ManualClock
from hallkiosk.privacy import gb11643_check_digit
from tests.hall.helpers import local, make_hall
from uplink.messages import Event


def id_number(serial: int) -> str:
    first17 = f"33010619800101{serial:03d}"
    return first17 + gb11643_check_digit(first17)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 8, 0))


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Hall:
    made = make_hall(tmp_path, clock)
    yield made
    made.close()


def import_bookings(hall: Hall, rows: list[tuple[str, str, str]]) -> None:
    lines = ["booking_code,id_number,name,matter_code,matter_name,area,slot_start,slot_end,phone"]
    for code, idn, start in rows:
        lines.append(
            f"{code},{idn},张小三,SS-0101,养老保险参保,social-security,"
            f"2026-11-23 {start}:00,2026-11-23 {start[:2]}:59:00,13800138000"
        )
    result = parse_csv("\n".join(lines).encode(), hasher=hall.hasher, tz=hall.clock.tz)
    assert not result.errors, result.errors
    hall.appointments.store_records(result.records)


def test_check_in_windows_and_no_show(hall: Hall, clock: ManualClock) -> None:
    person = id_number(1)
    import_bookings(hall, [("BK0001", person, "10:00"), ("BK0002", id_number(2), "09:00")])
    identity = hall.hasher.hash_id_number(person)
    synced = hall.handle_request("kiosk-01", "appointment.sync", {})
    assert [a["booking_code"] for a in synced["appointments"]] == ["BK0002", "BK0001"]
    assert person not in repr(synced)  # hashed identities only
    assert synced["appointments"][1]["identity_hash"] == identity
    # 08:00 is more than 30 minutes before 10:00
    with pytest.raises(AppointmentTooEarly):
        hall.handle_request("kiosk-01", "appointment.checkin", {"identity_hash": identity})
    clock.advance(90 * 60)  # 09:30: inside the window
    checked = hall.handle_request("kiosk-01", "appointment.checkin", {"identity_hash": identity})
    assert checked["priority"] == "appointment" and checked["appointment"]["status"] == "checked_in"
    # BK0002 (09:00) lapses after 10:00; the sweep marks it no-show
    clock.advance(31 * 60 + 1)  # 10:01:01
    assert hall.appointments.sweep_no_shows() == ["BK0002"]
    with pytest.raises(AppointmentForfeited) as exc:
        hall.handle_request("kiosk-01", "appointment.checkin", {"booking_code": "BK0002"})
    assert "放弃" in exc.value.message_zh


def test_late_check_in_past_an_hour_is_given_up_at_once(hall: Hall, clock: ManualClock) -> None:
    import_bookings(hall, [("BK0003", id_number(3), "08:00")])
    clock.advance(3600 + 1)  # 09:00:01, before any sweep
    with pytest.raises(AppointmentForfeited):
        hall.handle_request("kiosk-01", "appointment.checkin", {"booking_code": "BK0003"})
    assert hall.appointments.get("BK0003").status == "no_show"


def test_checked_in_booking_is_ordered_by_slot_time_ahead_of_normal(
    hall: Hall, clock: ManualClock
) -> None:
    import_bookings(hall, [("BK0010", id_number(10), "09:00")])
    clock.advance(3600)  # 09:00
    normal = hall.handle_request("kiosk-01", "ticket.issue", {"category": "ss-submit"})
    clock.advance(60)
    booked = hall.handle_request("kiosk-01", "appointment.checkin", {"booking_code": "BK0010"})
    order = [t.id for t in hall.queue.waiting(["ss-submit"])]
    assert order == [booked["ticket_id"], normal["ticket_id"]]


def upload(hall: Hall, data: bytes, chunk: int, only: list[int] | None = None) -> tuple[str, dict]:
    upload_id = uuid.uuid4().hex
    total = len(data)
    chunks = -(-total // chunk)
    state: dict[str, object] = {}
    for index in only if only is not None else range(chunks):
        part = data[index * chunk : (index + 1) * chunk]
        state = hall.handle_request(
            "kiosk-01",
            "prereview.upload",
            {
                "upload_id": upload_id,
                "file_name": "id_card.jpg",
                "total_bytes": total,
                "sha256": hashlib.sha256(data).hexdigest(),
                "chunk_bytes": chunk,
                "index": index,
                "chunk_sha256": hashlib.sha256(part).hexdigest(),
                "data": base64.b64encode(part).decode(),
            },
        )
    return upload_id, state


def test_chunked_upload_resumes_and_checks_every_checksum(hall: Hall) -> None:
    data = os.urandom(10_000)
    upload_id, state = upload(hall, data, 4096, only=[0, 2])
    assert state["missing"] == [1] and state["complete"] is False
    status = hall.handle_request("kiosk-01", "prereview.upload", {"upload_id": upload_id})
    assert status["missing"] == [1]
    part = data[4096:8192]
    args = {
        "upload_id": upload_id,
        "file_name": "id_card.jpg",
        "total_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "chunk_bytes": 4096,
        "index": 1,
        "chunk_sha256": hashlib.sha256(bytes([part[0] ^ 0xFF]) + part[1:]).hexdigest(),
        "data": base64.b64encode(part).decode(),
    }
    with pytest.raises(UploadError, match="checksum"):
        hall.handle_request("kiosk-01", "prereview.upload", args)
    args["chunk_sha256"] = hashlib.sha256(part).hexdigest()
    done = hall.handle_request("kiosk-01", "prereview.upload", args)
    assert done["complete"] is True and done["missing"] == []
    assert hall.intake.file_path(upload_id).read_bytes() == data


def submit(hall: Hall, files: list[tuple[str, str]], key: str | None = None) -> dict:
    return hall.handle_request(
        "kiosk-01",
        "prereview.submit",
        {
            "submission_key": key or uuid.uuid4().hex,
            "matter_code": "SS-0101",
            "identity_hash": "c" * 64,
            "id_masked": "3301**********0012",
            "name_masked": "张*三",
            "phone": "13800138000",
            "files": [{"item_id": item, "upload_id": up} for item, up in files],
        },
    )


def test_submission_return_lists_every_item_once_and_notifies(hall: Hall) -> None:
    id_up, _ = upload(hall, b"id-card-image", 8)
    with pytest.raises(RequestInvalid, match="hukou"):
        submit(hall, [("id_card", id_up)])
    hukou_up, _ = upload(hall, b"hukou-image", 8)
    key = uuid.uuid4().hex
    first = submit(hall, [("id_card", id_up), ("hukou", hukou_up)], key)
    assert submit(hall, [("id_card", id_up), ("hukou", hukou_up)], key) == first  # idempotent
    receipt = first["receipt_no"]
    with pytest.raises(RequestInvalid, match="一次性告知"):
        hall.prereview.return_(receipt, by="staff-7", items=[])
    returned = hall.prereview.return_(
        receipt, by="staff-7", items=["户口簿首页缺失", "身份证反面模糊"]
    )
    assert returned.state == "returned" and len(returned.return_items) == 2
    with pytest.raises(AlreadyDecided):
        hall.prereview.accept(receipt, by="staff-7")
    status = hall.handle_request("kiosk-01", "prereview.status", {"receipt_no": receipt})
    assert status["submissions"][0]["return_items"] == ["户口簿首页缺失", "身份证反面模糊"]
    queued = list_recent(hall.store.conn, 10)
    assert [n.kind for n in queued] == ["prereview_returned"]
    assert "13800138000" not in repr(queued)


def _offline_checkin_event(  # noqa: PLR0917
    code: str, ticket_id: str, number: int, at: str, identity: str, seq: int
) -> Event:
    return Event(
        v=1,
        id=uuid.uuid4().hex,
        seq=seq,
        ts=local(2026, 11, 23, 8, 0),
        type="ticket_issued_offline",
        device="kiosk-01",
        component="kiosk",
        data={
            "ticket_id": ticket_id,
            "category": "ss-submit",
            "number": number,
            "issued_at": f"2026-11-23T{at}:00+08:00",
            "priority": "appointment",
            "identity_hash": identity,
            "booking_code": code,
        },
    )


def test_an_offline_check_in_marks_the_booking_even_after_the_no_show_sweep(
    hall: Hall, clock: ManualClock
) -> None:
    person = id_number(10)
    identity = hall.hasher.hash_id_number(person)
    import_bookings(hall, [("BK0010", person, "09:00"), ("BK0011", id_number(11), "09:30")])
    normal = hall.handle_request("kiosk-02", "ticket.issue", {"category": "ss-submit"})
    # the kiosk checked BK0010 in at 08:50 while the hall was unreachable; the hall only
    # hears of it at 10:05, after its sweep marked the booking no-show
    clock.advance(2 * 3600 + 5 * 60)
    assert "BK0010" in hall.appointments.sweep_no_shows()
    event = _offline_checkin_event("BK0010", uuid.uuid4().hex, 1001, "08:50", identity, 1)
    assert hall.registry.ingest(event)
    booking = hall.appointments.get("BK0010")
    assert booking.status == "checked_in"
    assert booking.ticket_id == event.data["ticket_id"]
    order = hall.queue.waiting(["ss-submit"])
    # a checked-in booking's ticket goes ahead of the normal one issued before it
    assert [t.label for t in order][:2] == ["A1001", normal["ticket"]]
    assert order[0].priority == "appointment" and order[0].slot_start is not None
    assert not hall.registry.ingest(event)  # a replay changes nothing
    assert not hall.store.all("SELECT * FROM alarms WHERE state = 'active'")


def test_an_offline_check_in_the_hall_cannot_honour_raises_an_alarm_and_keeps_the_ticket(
    hall: Hall, clock: ManualClock
) -> None:
    person = id_number(12)
    identity = hall.hasher.hash_id_number(person)
    import_bookings(hall, [("BK0012", person, "09:00")])
    clock.advance(3600)  # 09:00: online check-in first
    hall.handle_request("kiosk-02", "appointment.checkin", {"booking_code": "BK0012"})
    twice = _offline_checkin_event("BK0012", uuid.uuid4().hex, 1002, "09:01", identity, 1)
    unknown = _offline_checkin_event("BK9999", uuid.uuid4().hex, 1003, "09:02", identity, 2)
    late = _offline_checkin_event("BK0013", uuid.uuid4().hex, 1004, "11:30", identity, 3)
    import_bookings(hall, [("BK0013", id_number(13), "10:00")])
    for event in (twice, unknown, late):
        assert hall.registry.ingest(event)
    alarms = {
        (r["code"], r["subject"])
        for r in hall.store.all("SELECT code, subject FROM alarms WHERE state = 'active'")
    }
    assert alarms == {
        ("offline_checkin_twice", "BK0012"),
        ("offline_checkin_unknown_booking", "BK9999"),
        ("offline_checkin_outside_window", "BK0013"),
    }
    # the applicants hold these tickets: every one is in the queue
    labels = {t.label for t in hall.queue.waiting(["ss-submit"])}
    assert {"A1002", "A1003", "A1004"} <= labels
    assert hall.appointments.get("BK0013").status == "booked"


def test_prereview_times_are_given_in_the_halls_time_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a hall in Xinjiang time (UTC+6), not the Asia/Shanghai default: 02:30 UTC is 08:30 there
    clock = ManualClock(datetime(2026, 11, 23, 2, 30, tzinfo=UTC), tz="Asia/Urumqi")
    hall = make_hall(tmp_path, clock, 'timezone = "Asia/Urumqi"\n')
    try:
        id_up, _ = upload(hall, b"id-card-image", 8)
        hukou_up, _ = upload(hall, b"hukou-image", 8)
        submitted = submit(hall, [("id_card", id_up), ("hukou", hukou_up)])
        assert submitted["submitted_at"] == "2026-11-23T08:30:00+06:00"
        receipt = submitted["receipt_no"]
        clock.advance(3600 + 15)
        hall.prereview.return_(receipt, by="staff-7", items=["户口簿首页缺失"])
        expected = ("2026-11-23T08:30:00+06:00", "2026-11-23T09:30:15+06:00")
        for args in ({"receipt_no": receipt}, {"identity_hash": "c" * 64}):
            (status,) = hall.handle_request("kiosk-01", "prereview.status", args)["submissions"]
            assert (status["submitted_at"], status["decided_at"]) == expected
    finally:
        hall.close()
    # staff see the same local times (`hall prereview show`, the hall's own clock and zone)
    assert (
        cli.main(["--config", str(tmp_path / "site.toml"), "--json", "prereview", "show", receipt])
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert (shown["submitted_at"], shown["decided_at"]) == expected
