"""The kiosk's services over MQTT: a real mosquitto (TLS, the production ACL, persistence), a
real ``hall serve`` (``HallServer`` around ``Hall``) that the tests stop and start, and the
kiosk runtime built from a site file. The hall and the kiosk share one ManualClock, so check-in
windows and service days are the tests' to set."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hall.errors import (
    AppointmentForfeited,
    AppointmentNotFound,
    AppointmentTooEarly,
    TicketNotFound,
    UnknownCategory,
)
from hall.queue import Ticket as QueuedTicket
from hall.server import appointment_list
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.runtime import KioskRuntime
from kiosk.services.hall_gateway import (
    Evaluation,
    HallRefusal,
    HallUnreachable,
    MaterialFile,
    PreReviewReceipt,
    PreReviewSubmission,
)
from kiosk.services.hall_service import new_submission_key
from kiosk.services.offline import OfflineRangeExhausted
from kiosk.services.uploads import UploadProgress
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MqttProbe
from tests.hall.helpers import local
from tests.kiosk.services.helpers import (
    HALL_ID,
    KIOSK,
    WAIT_S,
    HallRunner,
    broker,  # noqa: F401
    hall,  # noqa: F401
    id_number,
    import_bookings,
    kiosk_site,
    start_kiosk,
    wait_online,
)
from uplink.messages import Event, decode
from uplink.topics import Topics

DAY = "2026-11-23"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 45))


class Kiosk:
    """The kiosk process: started, closed and started again on the same data directory."""

    def __init__(self, site: Path, clock: ManualClock) -> None:
        self.site, self.clock = site, clock
        self.runtime: KioskRuntime | None = None

    def start(self) -> KioskRuntime:
        self.runtime = start_kiosk(self.site, self.clock)
        return self.runtime

    def restart(self) -> KioskRuntime:
        self.close()
        return self.start()

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None


@pytest.fixture
def kiosk(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: ManualClock, hall: HallRunner
) -> Iterator[Kiosk]:
    made = Kiosk(kiosk_site(tmp_path / "kiosk", broker, test_ca), clock)
    runtime = made.start()
    wait_online(runtime)
    try:
        yield made
    finally:
        made.close()


def hall_probe(broker: Broker, test_ca: CertAuthority, topic: str) -> MqttProbe:
    probe = broker.connect("hall-probe", cert=test_ca.issue_client(f"hall.{HALL_ID}"))
    probe.subscribe(topic)
    return probe


def test_tickets_online_offline_from_the_range_and_merged_when_the_hall_is_back(
    kiosk: Kiosk, hall: HallRunner, broker: Broker, test_ca: CertAuthority, clock: ManualClock
) -> None:
    runtime = kiosk.runtime
    assert runtime is not None
    gateway = runtime.hall
    catalog = gateway.catalog()
    assert not catalog.cached
    online = gateway.issue_ticket("ss-submit", identity_hash=None, priority="normal")
    assert (online.label, online.offline, online.people_ahead) == ("A001", False, 0)
    with pytest.raises(HallRefusal) as refused:
        gateway.issue_ticket("no-such", identity_hash=None, priority="normal")
    assert (refused.value.code, refused.value.message_en) == (
        UnknownCategory.code,
        UnknownCategory.message_en,
    )
    events = hall_probe(
        broker, test_ca, Topics(HALL_ID, KIOSK, "kiosk").event("ticket_issued_offline")
    )

    hall.stop()
    wait_online(runtime, online=False)
    assert gateway.catalog() == replace(catalog, cached=True)
    clock.advance(60)
    identity = "c0" * 32  # the keyed hash of a card
    offline = gateway.issue_ticket("ss-submit", identity_hash=identity, priority="normal")
    assert (offline.label, offline.offline, offline.people_ahead) == ("A1001", True, None)
    again = gateway.issue_ticket("ss-submit", identity_hash=identity, priority="normal")
    assert again.ticket_id == offline.ticket_id and again.reprint
    assert gateway.ticket_status(offline.ticket_id) == offline
    green = gateway.issue_ticket("ss-submit", identity_hash=None, priority="green")
    assert (green.label, green.priority) == ("A1002", "green")

    # the event the hall will merge, exactly as the hall reads it
    wait_until(lambda: len(events.payloads()) == 2, timeout_s=WAIT_S, what="both events")
    sent = [decode(Event, p) for p in events.payloads()]
    assert sent[0].data == {
        "ticket_id": offline.ticket_id,
        "category": "ss-submit",
        "number": 1001,
        "issued_at": offline.issued_at.isoformat(),
        "priority": "normal",
        "identity_hash": identity,
    }
    assert sent[1].data["priority"] == "green" and "identity_hash" not in sent[1].data

    clock.advance(60)
    restarted = hall.start()
    merged = wait_until(
        lambda: _ticket(restarted, offline.ticket_id),
        timeout_s=WAIT_S,
        what="the offline ticket merged at the hall",
    )
    assert merged is not None
    assert (merged.label, merged.offline, merged.device) == ("A1001", True, KIOSK)
    assert merged.identity_hash == identity
    wait_online(runtime)
    later = gateway.issue_ticket("ss-submit", identity_hash=None, priority="normal")
    assert later.label == "A002" and not later.offline
    wait_until(lambda: _ticket(restarted, green.ticket_id), timeout_s=WAIT_S, what="green merged")
    normal_order = [
        t.label for t in restarted.queue.waiting(["ss-submit"]) if t.priority == "normal"
    ]
    assert normal_order == ["A001", "A1001", "A002"]  # by issue time
    assert restarted.queue.waiting(["ss-submit"])[0].label == "A1002"  # green first
    assert gateway.ticket_status(offline.ticket_id).offline  # the hall knows it now


def _ticket(hall: Hall, ticket_id: str) -> QueuedTicket | None:
    try:
        return hall.queue.get(ticket_id)
    except TicketNotFound:
        return None


def test_offline_numbers_survive_a_restart_and_run_out_with_a_clear_refusal(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: ManualClock, hall: HallRunner
) -> None:
    site = kiosk_site(tmp_path / "small", broker, test_ca, ranges="[{ first = 1001, last = 1002 }]")
    kiosk = Kiosk(site, clock)
    try:
        runtime = kiosk.start()
        wait_online(runtime)
        runtime.hall.catalog()
        hall.stop()
        wait_online(runtime, online=False)
        first = runtime.hall.issue_ticket("ss-collect", identity_hash=None, priority="normal")
        assert first.label == "B1001"
        runtime = kiosk.restart()
        second = runtime.hall.issue_ticket("ss-collect", identity_hash=None, priority="normal")
        assert second.label == "B1002"  # the counter is on disk: 1001 is never handed out again
        with pytest.raises(OfflineRangeExhausted) as exhausted:
            runtime.hall.issue_ticket("ss-collect", identity_hash=None, priority="normal")
        assert exhausted.value.code == "offline_range_exhausted"
        assert exhausted.value.message_zh and exhausted.value.message_en
        other = runtime.hall.issue_ticket("ss-consult", identity_hash=None, priority="normal")
        assert other.label == "C1001"  # per category
        clock.advance(24 * 3600)  # the next service day starts again
        tomorrow = runtime.hall.issue_ticket("ss-collect", identity_hash=None, priority="normal")
        assert tomorrow.label == "B1001" and tomorrow.ticket_id != first.ticket_id
    finally:
        kiosk.close()

    # a kiosk that never reached the hall has no catalog, so no label: it says so
    fresh = Kiosk(kiosk_site(tmp_path / "fresh", broker, test_ca), clock)
    try:
        runtime = fresh.start()
        with pytest.raises(HallUnreachable):
            runtime.hall.issue_ticket("ss-collect", identity_hash=None, priority="normal")
        with pytest.raises(HallUnreachable):
            runtime.hall.catalog()
    finally:
        fresh.close()


def test_offline_check_in_from_the_retained_list_survives_a_kiosk_restart(
    kiosk: Kiosk, hall: HallRunner, broker: Broker, clock: ManualClock
) -> None:
    import_bookings(
        hall.running,
        [
            ("BK000001", 1, DAY, "10:00"),  # opens at 09:30: now
            ("BK000002", 2, DAY, "08:30"),  # given up at 09:30
            ("BK000003", 3, DAY, "11:00"),  # opens at 10:30
            ("BK000004", 4, "2026-11-24", "10:00"),  # tomorrow: not in today's list
        ],
    )
    runtime = kiosk.runtime
    assert runtime is not None
    appointments = runtime.appointments
    wait_until(
        lambda: (listed := appointments.today()) is not None and len(listed.appointments) == 3,
        timeout_s=WAIT_S,
        what="today's list pushed to the kiosk",
    )
    gateway = runtime.hall
    gateway.catalog()
    person = hall.running.hasher.hash_id_number(id_number(1))
    hall.stop()
    wait_online(runtime, online=False)

    for code, error in (
        ("BK000003", AppointmentTooEarly),
        ("BK000002", AppointmentForfeited),
        ("BK999999", AppointmentNotFound),
        ("BK000004", AppointmentNotFound),
    ):
        with pytest.raises(HallRefusal) as refused:
            gateway.check_in(booking_code=code)
        got = refused.value
        assert (got.code, got.message_zh, got.message_en) == (
            error.code,
            error.message_zh,
            error.message_en,
        ), code
    [found] = gateway.find_bookings(identity_hash=person)
    assert (found.booking_code, found.status) == ("BK000001", "booked")

    checked = gateway.check_in(identity_hash=person)
    assert checked.offline and checked.booking.status == "checked_in"
    ticket = checked.ticket
    assert (ticket.label, ticket.priority, ticket.offline) == ("A1001", "appointment", True)
    twice = gateway.check_in(booking_code="BK000001")
    assert twice.ticket.ticket_id == ticket.ticket_id and twice.ticket.reprint

    # the kiosk restarts with no broker at all: the list and the check-in are on its disk
    broker.stop()
    runtime = kiosk.restart()
    assert not runtime.hall.online
    listed = runtime.appointments.today()
    assert listed is not None and len(listed.appointments) == 3
    [found] = runtime.hall.find_bookings(identity_hash=person)
    assert found.status == "checked_in"
    again = runtime.hall.check_in(identity_hash=person)
    assert again.ticket.ticket_id == ticket.ticket_id and again.ticket.reprint
    with pytest.raises(HallRefusal) as early:
        runtime.hall.check_in(booking_code="BK000003")
    assert early.value.code == AppointmentTooEarly.code

    # back online: the hall merges the ticket and marks the booking checked in
    broker.restart()
    back = hall.start()
    wait_until(
        lambda: back.appointments.get("BK000001").status == "checked_in",
        timeout_s=WAIT_S,
        what="the booking checked in at the hall",
    )
    booking = back.appointments.get("BK000001")
    assert booking.ticket_id == ticket.ticket_id
    merged = back.queue.get(ticket.ticket_id)
    assert (merged.label, merged.priority, merged.offline) == ("A1001", "appointment", True)


def test_a_pre_review_interrupted_by_a_broker_restart_resumes_with_the_missing_chunks(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: ManualClock, hall: HallRunner
) -> None:
    site = kiosk_site(tmp_path / "kiosk", broker, test_ca)
    text = site.read_text().replace(
        "retry_interval_s = 1.0", "retry_interval_s = 1.0\nupload_chunk_bytes = 16384"
    )
    site.write_text(text)
    kiosk = Kiosk(site, clock)
    try:
        runtime = kiosk.start()
        wait_online(runtime)
        gateway = runtime.hall
        id_card, hukou = os.urandom(150_000), os.urandom(50_000)  # 10 + 4 chunks of 16 KiB
        sub = PreReviewSubmission(
            submission_key=new_submission_key(),
            matter_code="SS-0101",
            phone="13900139000",
            identity_hash="d1" * 32,
            id_masked="3301**********0011",
            name_masked="李*四",
            files=(
                MaterialFile("id_card", "id_card.jpg", id_card),
                MaterialFile("hukou", "hukou.jpg", hukou),
            ),
        )
        cut = threading.Event()

        def pull_the_plug(progress: UploadProgress) -> None:
            # after the hall acknowledged the 4th chunk of the first file
            if progress.file_index == 0 and progress.chunk_index == 3 and not cut.is_set():
                cut.set()
                broker.stop()

        gateway.on_upload_progress(pull_the_plug)
        done: list[PreReviewReceipt] = []
        finished = threading.Event()

        def accepted(receipt: PreReviewReceipt) -> None:
            done.append(receipt)
            finished.set()

        gateway.on_prereview_done(accepted)

        queued = gateway.submit_prereview(sub)
        assert queued.queued and queued.receipt_no is None
        assert [p.submission_key for p in gateway.pending_prereviews()] == [sub.submission_key]
        sent_before = gateway.upload_stats.chunks_sent
        assert sent_before == 4
        spooled = runtime.settings.spool_dir / sub.submission_key
        assert sorted(p.stat().st_size for p in spooled.iterdir()) == [50_000, 150_000]
        assert {stat.S_IMODE(p.stat().st_mode) for p in spooled.iterdir()} == {0o600}

        broker.restart()  # the retry thread resumes once the hall is back
        assert finished.wait(WAIT_S), "the queued pre-review was not sent"
        [receipt] = done
        assert receipt.submission_key == sub.submission_key and not receipt.queued
        assert gateway.upload_stats.chunks_sent - sent_before == 10 + 4 - 4  # only the missing
        stored = hall.running.prereview.get(sub.submission_key)
        assert stored.receipt_no == receipt.receipt_no
        files = {
            f["item_id"]: hall.running.intake.file_path(f["upload_id"]).read_bytes()
            for f in stored.files
        }
        assert files == {"id_card": id_card, "hukou": hukou}
        assert not spooled.exists() and gateway.pending_prereviews() == []
        assert gateway.prereview_receipt(sub.submission_key) == receipt
    finally:
        kiosk.close()


def test_evaluations_wait_in_the_outbox_and_reach_the_hall(
    kiosk: Kiosk, hall: HallRunner, broker: Broker
) -> None:
    runtime = kiosk.runtime
    assert runtime is not None
    broker.stop()
    wait_online(runtime, online=False)
    runtime.hall.record_evaluation(Evaluation("ticket", "t-1", 5, ()))
    runtime.hall.record_evaluation(Evaluation("prereview", "YS2026112300001", 1, ("slow",)))
    backlog = runtime.outbox.backlog()
    assert backlog.events == 2
    broker.restart()
    wait_until(
        lambda: len(hall.running.store.all("SELECT * FROM evaluations")) == 2,
        timeout_s=WAIT_S,
        what="both ratings at the hall",
    )
    rows = hall.running.store.all(
        "SELECT device, service, reference, level FROM evaluations ORDER BY level"
    )
    assert [tuple(r) for r in rows] == [
        (KIOSK, "prereview", "YS2026112300001", 1),
        (KIOSK, "ticket", "t-1", 5),
    ]
    wait_until(
        lambda: runtime.outbox.backlog().events == 0,
        timeout_s=WAIT_S,
        what="the outbox emptied by the broker's acknowledgements",
    )


def test_queued_pre_reviews_survive_a_kiosk_restart_and_a_refusal_reaches_staff(
    kiosk: Kiosk, hall: HallRunner
) -> None:
    runtime = kiosk.runtime
    assert runtime is not None
    hall.stop()
    wait_online(runtime, online=False)
    good, bad = (
        PreReviewSubmission(
            submission_key=new_submission_key(),
            matter_code=matter,
            phone="13700137000",
            identity_hash=None,
            id_masked=None,
            name_masked=None,
            files=(
                MaterialFile("id_card", "id.jpg", os.urandom(20_000)),
                MaterialFile("hukou", "hukou.jpg", os.urandom(9_000)),
            ),
        )
        for matter in ("SS-0101", "XX-9999")  # the hall has no matter XX-9999
    )
    for sub in (good, bad):
        receipt = runtime.hall.submit_prereview(sub)
        assert receipt.queued and receipt.receipt_no is None
    assert runtime.hall.upload_stats.chunks_sent == 0

    runtime = kiosk.restart()  # still no hall: the submissions are on the kiosk's disk
    assert {r.submission_key for r in runtime.hall.pending_prereviews()} == {
        good.submission_key,
        bad.submission_key,
    }
    finished = threading.Event()
    runtime.hall.on_prereview_done(lambda _receipt: finished.set())
    back = hall.start()
    assert finished.wait(WAIT_S), "the queued pre-review was not sent after the restart"
    accepted = back.prereview.get(good.submission_key)
    kept = runtime.hall.prereview_receipt(good.submission_key)
    assert kept is not None and (kept.receipt_no, kept.queued) == (accepted.receipt_no, False)
    alarms = wait_until(
        lambda: [a for a in back.registry.alarms() if a["code"] == "prereview_refused"],
        timeout_s=WAIT_S,
        what="the refused submission's alarm at the hall",
    )
    assert [(a["device"], a["subject"]) for a in alarms] == [(KIOSK, bad.submission_key)]
    assert alarms[0]["details"]["code"] == "request_invalid"
    assert runtime.hall.pending_prereviews() == []
    assert not (runtime.settings.spool_dir / bad.submission_key).exists()


def test_the_list_comes_by_the_retained_subscription_and_by_sync(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: ManualClock, hall: HallRunner
) -> None:
    import_bookings(hall.running, [("BK000011", 11, DAY, "10:00"), ("BK000012", 12, DAY, "11:00")])
    # no retry thread: nothing asks appointment.sync, only the subscription can bring the list
    runtime = start_kiosk(kiosk_site(tmp_path / "kiosk", broker, test_ca), clock, background=False)
    try:
        wait_online(runtime)
        cache = runtime.appointments
        wait_until(
            lambda: (listed := cache.today()) is not None and len(listed.appointments) == 2,
            timeout_s=WAIT_S,
            what="the retained list",
        )
        pushed = cache.today()
        assert pushed is not None and pushed.revision == appointment_list(hall.running).revision
        import_bookings(hall.running, [("BK000013", 13, DAY, "12:00")])
        wait_until(
            lambda: (listed := cache.today()) is not None and len(listed.appointments) == 3,
            timeout_s=WAIT_S,
            what="the changed list pushed",
        )
        # an older copy (e.g. a retained message after a fresher sync answer) is ignored
        assert not cache.store(pushed.model_copy(update={"generated_at": local(2026, 11, 23, 9)}))
        current = cache.today()
        assert current is not None and len(current.appointments) == 3
        clock.advance(60)
        stored = cache.stats["stored"]
        assert runtime.hall.sync_appointments()  # the hall's answer, newer: kept
        assert cache.stats["stored"] == stored + 1
        synced = cache.today()
        assert synced is not None
        assert [a.booking_code for a in synced.appointments] == [
            "BK000011",
            "BK000012",
            "BK000013",
        ]
    finally:
        runtime.close()
