"""The pickup password reaches the applicant by SMS without the hall ever storing or logging it:
the locker seals it to the hall's X25519 key in ``deposit_stored``; the hall keeps the sealed
form and opens it only in the sender. Without a phone or a sealed password, staff get an alarm."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall.notify.file_sender import read_spool
from hall.service import Hall
from hallkiosk.clock import ManualClock
from tests.fixtures import wait_until
from tests.hall.helpers import local, make_hall
from uplink.messages import Event
from uplink.sealing import seal

PASSWORD = "482913"


@pytest.fixture
def hall(tmp_path: Path) -> Hall:
    made = make_hall(tmp_path, ManualClock(local(2026, 11, 23, 17, 0)))
    yield made
    made.close()


def deposit_event(hall: Hall, seq: int, case: str, sealed: str | None) -> Event:
    data: dict[str, object] = {
        "deposit_id": seq,
        "bay_id": "A03",
        "case_number": case,
        "recipient": "张*三",
        "deadline": "2026-11-30T17:00:00+08:00",
    }
    if sealed is not None:
        data["password_sealed"] = sealed
    return Event.model_validate(
        {
            "v": 1,
            "id": uuid.uuid4().hex,
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(),
            "type": "deposit_stored",
            "device": "locker-01",
            "component": "lockerd",
            "data": data,
        }
    )


def test_pickup_password_is_sent_sealed_end_to_end(
    hall: Hall, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hall.register_case("SB2026-0001", phone="13800138000", source="test")
    sealed = seal(PASSWORD, hall.seal_key.public_key(), "locker-01/1")
    event = deposit_event(hall, 1, "SB2026-0001", sealed)
    assert hall.registry.ingest(event) is True
    assert hall.registry.ingest(event) is False  # redelivered: not queued twice
    hall.notifier.run_once()  # the started sender may already have sent it
    sms = wait_until(lambda: read_spool(tmp_path / "notify-spool"), timeout_s=10, what="SMS")
    assert len(sms) == 1 and PASSWORD in sms[0]["text"] and "SB2026-0001" in sms[0]["text"]
    assert PASSWORD not in caplog.text
    db = b"".join(p.read_bytes() for p in tmp_path.glob("hall.db*"))
    assert PASSWORD.encode() not in db


def test_a_box_moved_to_another_deposit_does_not_open(hall: Hall, tmp_path: Path) -> None:
    hall.register_case("SB2026-0002", phone="13800138000", source="test")
    sealed = seal(PASSWORD, hall.seal_key.public_key(), "locker-01/99")  # another deposit's
    hall.registry.ingest(deposit_event(hall, 2, "SB2026-0002", sealed))
    hall.notifier.run_once()
    wait_until(lambda: hall.notifier.stats().failed == 1, timeout_s=10, what="send failed")
    assert read_spool(tmp_path / "notify-spool") == []
    assert any(a["code"] == "notification_failed" for a in hall.registry.alarms())


def test_unknown_phone_or_missing_password_raise_an_alarm(hall: Hall) -> None:
    hall.registry.ingest(deposit_event(hall, 3, "SB-NO-PHONE", "x"))
    hall.register_case("SB2026-0004", phone="13800138000", source="test")
    hall.registry.ingest(deposit_event(hall, 4, "SB2026-0004", None))
    alarms = {(a["code"], a["subject"]) for a in hall.registry.alarms()}
    assert alarms == {
        ("pickup_password_not_sent", "SB-NO-PHONE"),
        ("pickup_password_not_sent", "SB2026-0004"),
    }
