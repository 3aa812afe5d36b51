"""``HallGateway`` on the embedded hall: every ``HallService`` method against a real ``Hall``
(SQLite in a temp dir, ManualClock), bare and as the runtime assembles it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hall.errors import AppointmentTooEarly, UnknownCategory
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.runtime import start_runtime
from kiosk.services.hall_gateway import (
    EmbeddedTransport,
    Evaluation,
    HallRefusal,
    MaterialFile,
    PreReviewReceipt,
    PreReviewSubmission,
)
from kiosk.services.hall_service import EvaluationRejected, HallGateway, new_submission_key
from kiosk.settings import load_kiosk_settings
from tests.hall.helpers import local, make_hall
from tests.kiosk.services.helpers import id_number, import_bookings

DAY = "2026-11-23"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 0))


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Iterator[Hall]:
    (tmp_path / "hall").mkdir()
    made = make_hall(tmp_path / "hall", clock)
    yield made
    made.close()


def submission(files: dict[str, bytes]) -> PreReviewSubmission:
    return PreReviewSubmission(
        submission_key=new_submission_key(),
        matter_code="SS-0101",
        phone="13800138000",
        identity_hash="ab" * 32,
        id_masked="3301**********1234",
        name_masked="张*三",
        files=tuple(MaterialFile(item, f"{item}.jpg", data) for item, data in files.items()),
    )


def test_every_method_against_the_embedded_hall(hall: Hall, clock: ManualClock) -> None:
    gateway = HallGateway(EmbeddedTransport(hall, "kiosk-01"))
    assert gateway.online

    catalog = gateway.catalog()
    assert not catalog.cached and catalog.hall_name_zh == hall.settings.hall.name_zh
    assert [c.id for c in catalog.categories] == [c.id for c in hall.settings.hall.queue.categories]
    matter = next(m for m in catalog.matters if m.code == "SS-0101")
    assert [(i.id, i.required) for i in matter.items] == [
        ("id_card", True),
        ("hukou", True),
        ("bank_card", False),
    ]

    person = hall.hasher.hash_id_number(id_number(1))
    first = gateway.issue_ticket("ss-submit", identity_hash=person, priority="normal")
    assert (first.label, first.people_ahead, first.offline, first.reprint) == (
        "A001",
        0,
        False,
        False,
    )
    again = gateway.issue_ticket("ss-submit", identity_hash=person, priority="normal")
    assert again.ticket_id == first.ticket_id and again.reprint
    green = gateway.issue_ticket("ss-submit", identity_hash=None, priority="green")
    assert green.priority == "green" and green.people_ahead == 0  # the green channel goes first
    assert gateway.ticket_status(first.ticket_id).people_ahead == 1
    assert hall.queue.get(first.ticket_id).device == "kiosk-01"
    with pytest.raises(HallRefusal) as refused:
        gateway.issue_ticket("no-such", identity_hash=None, priority="normal")
    assert (refused.value.code, refused.value.message_zh) == (
        UnknownCategory.code,
        UnknownCategory.message_zh,
    )

    booker = hall.hasher.hash_id_number(id_number(2))
    import_bookings(hall, [("BK000002", 2, DAY, "10:00")])
    [booking] = gateway.find_bookings(identity_hash=booker)
    assert (booking.booking_code, booking.status) == ("BK000002", "booked")
    with pytest.raises(HallRefusal) as early:
        gateway.check_in(identity_hash=booker)  # 09:00 is before 09:30
    assert early.value.code == AppointmentTooEarly.code
    clock.advance(45 * 60)
    checked = gateway.check_in(booking_code="BK000002")
    assert checked.booking.status == "checked_in" and not checked.offline
    assert checked.ticket.priority == "appointment" and not checked.ticket.offline

    id_card, hukou = os.urandom(150_000), os.urandom(10_000)
    sub = submission({"id_card": id_card, "hukou": hukou})
    done: list[PreReviewReceipt] = []
    gateway.on_prereview_done(done.append)
    receipt = gateway.submit_prereview(sub)
    assert receipt.receipt_no is not None and receipt.receipt_no.startswith("YS20261123")
    assert not receipt.queued and done == [receipt]
    assert gateway.upload_stats.chunks_sent == 3 + 1  # 64 KiB chunks
    stored = hall.prereview.get(sub.submission_key)
    uploaded = {
        f["item_id"]: hall.intake.file_path(f["upload_id"]).read_bytes() for f in stored.files
    }
    assert uploaded == {"id_card": id_card, "hukou": hukou}
    assert gateway.submit_prereview(sub).receipt_no == receipt.receipt_no  # idempotent

    [status] = gateway.prereview_status(receipt_no=receipt.receipt_no)
    assert (status.state, status.return_items) == ("pending", ())
    hall.prereview.return_(receipt.receipt_no, by="staff-7", items=["户口簿页面不清晰"])
    [status] = gateway.prereview_status(identity_hash="ab" * 32)
    assert (status.state, status.return_items) == ("returned", ("户口簿页面不清晰",))

    gateway.record_evaluation(Evaluation("ticket", first.ticket_id, 4, ("fast",)))
    rows = hall.store.all("SELECT device, service, reference, level, reasons FROM evaluations")
    assert [tuple(r) for r in rows] == [("kiosk-01", "ticket", first.ticket_id, 4, '["fast"]')]
    with pytest.raises(EvaluationRejected):
        gateway.record_evaluation(Evaluation("ticket", first.ticket_id, 6, ()))
    assert len(hall.store.all("SELECT * FROM evaluations")) == 1


def test_the_runtime_runs_the_hall_in_process_and_hands_it_the_outbox(
    tmp_path: Path, clock: ManualClock
) -> None:
    site = tmp_path / "site.toml"
    site.write_text(f"schema_version = 1\n[site]\ndata_dir = {json.dumps(str(tmp_path))}\n")
    runtime = start_runtime(load_kiosk_settings([site]), clock=clock, background=False)
    try:
        hall = runtime.embedded_hall
        assert hall is not None and runtime.connection is None
        gateway = runtime.hall
        ticket = gateway.issue_ticket("ss-consult", identity_hash=None, priority="normal")
        assert ticket.label == "C001" and hall.queue.get(ticket.ticket_id).device == "locker-01"

        gateway.record_evaluation(Evaluation("ticket", ticket.ticket_id, 2, ("slow", "rude")))
        assert runtime.outbox.backlog().events == 0  # handed over as it was recorded
        [row] = hall.store.all("SELECT device, level, reasons FROM evaluations")
        assert tuple(row) == ("locker-01", 2, '["slow", "rude"]')
        seen = hall.store.all("SELECT type, component FROM events_seen")
        assert [tuple(r) for r in seen] == [("evaluation", "kiosk")]

        sub = submission({"id_card": os.urandom(70_000), "hukou": os.urandom(5_000)})
        receipt = gateway.submit_prereview(sub)
        assert receipt.receipt_no and not receipt.queued
        assert gateway.pending_prereviews() == []
        # the hall has the files: the kiosk's copies are gone, the receipt stays
        assert not (runtime.settings.spool_dir / sub.submission_key).exists()
        assert gateway.prereview_receipt(sub.submission_key) == receipt
        kept = runtime.store.one(
            "SELECT phone, state FROM kiosk_prereviews WHERE submission_key = ?",
            sub.submission_key,
        )
        assert kept is not None and (kept["phone"], kept["state"]) == (None, "submitted")
        assert gateway.catalog().cached is False
        assert runtime.offline.cached_catalog() is not None
    finally:
        runtime.close()
