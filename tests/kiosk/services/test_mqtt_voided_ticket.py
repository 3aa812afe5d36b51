"""A ticket whose print failed is voided at the hall, over MQTT: a real mosquitto (TLS, the
production ACL, persistence), a real ``hall serve`` that the tests stop and start, and the whole
kiosk assembled from a site file (``hall_mode = "mqtt"``) with its simulated printer running out
of paper in the middle of the slip. The hall and the kiosk share one ManualClock."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hall.errors import NothingWaiting, TicketNotFound
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.assembly import Kiosk, assemble
from kiosk.flows.base import QueueWorker
from kiosk.flows.ticket import TicketState
from kiosk.settings import load_kiosk_settings
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker
from tests.hall.helpers import local
from tests.kiosk.services.helpers import (
    WAIT_S,
    HallRunner,
    broker,  # noqa: F401
    hall,  # noqa: F401
    id_number,
    kiosk_site,
    wait_online,
)
from tests.kiosk.test_assembly import UiThread
from tests.kiosk.ticket_journey import read_card, take_ticket
from uplink.messages import Event, decode


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 45))


@pytest.fixture
def worker() -> Iterator[QueueWorker]:
    made = QueueWorker()
    yield made
    made.close()


@pytest.fixture
def kiosk(  # noqa: PLR0917 - fixtures arrive positionally
    tmp_path: Path,
    broker: Broker,
    test_ca: CertAuthority,
    clock: ManualClock,
    hall: HallRunner,
    worker: QueueWorker,
) -> Iterator[Kiosk]:
    settings = load_kiosk_settings([kiosk_site(tmp_path / "kiosk", broker, test_ca)])
    made = assemble(settings, worker, UiThread().post, clock=clock)
    try:
        wait_online(made.runtime)
        yield made
    finally:
        made.close()


def state_of(hall: Hall, ticket_id: str) -> str | None:
    try:
        return hall.queue.get(ticket_id).state
    except TicketNotFound:
        return None


def not_printed(hall: Hall) -> list[dict[str, Any]]:
    return [a for a in hall.registry.alarms() if a["code"] == "ticket_not_printed"]


def test_paper_out_mid_ticket_voids_it_at_the_hall(
    kiosk: Kiosk, hall: HallRunner, worker: QueueWorker
) -> None:
    person = read_card(kiosk, id_number(31))
    flow = take_ticket(kiosk, worker, person, paper_out_after=5)
    assert flow.state is TicketState.PRINT_FAILED
    unprinted = flow.view.unprinted
    assert unprinted is not None and unprinted.partly_printed and unprinted.label == "A001"

    running = hall.running
    wait_until(
        lambda: state_of(running, unprinted.ticket_id) == "voided",
        timeout_s=WAIT_S,
        what="the ticket voided at the hall",
    )
    assert running.queue.waiting() == []
    with pytest.raises(NothingWaiting):
        running.queue.call_next(1)
    [listed] = running.queue.voided()
    assert (listed.ticket.label, listed.reason, listed.voided_by) == (
        "A001",
        "print_failed",
        "kiosk-01",
    )
    alarms = wait_until(lambda: not_printed(running), timeout_s=WAIT_S, what="the alarm")
    assert alarms[0]["subject"] == "A001" and alarms[0]["details"]["voided"] is True
    assert {a["code"] for a in running.registry.alarms()} == {"ticket_not_printed"}

    # paper loaded again: the same applicant gets a new number, not the offer of a reprint
    kiosk.devices.printer.sim.load_paper()  # type: ignore[attr-defined]
    again = take_ticket(kiosk, worker, person)
    assert again.state is TicketState.DONE
    shown = again.view.ticket
    assert shown is not None and shown.label == "A002" and shown.people_ahead == 0
    assert running.queue.call_next(1).id == shown.ticket_id


def test_an_offline_ticket_whose_print_failed_is_merged_then_voided_when_the_hall_is_back(
    kiosk: Kiosk, hall: HallRunner, worker: QueueWorker, clock: ManualClock
) -> None:
    runtime = kiosk.runtime
    runtime.hall.catalog()  # cached: offline tickets take their label from it
    hall.stop()
    wait_online(runtime, online=False)
    person = read_card(kiosk, id_number(32))

    flow = take_ticket(kiosk, worker, person, paper_out_after=5)
    assert flow.state is TicketState.PRINT_FAILED
    unprinted = flow.view.unprinted
    assert unprinted is not None and unprinted.label == "A1001"
    voided_id = unprinted.ticket_id
    # the kiosk forgot it: its last word on that ticket is "voided", and the same card gets a
    # new offline number instead of the offer to reprint a ticket nobody holds
    assert runtime.hall.ticket_status(voided_id).state == "voided"
    clock.advance(60)
    kiosk.devices.printer.sim.load_paper()  # type: ignore[attr-defined]
    again = take_ticket(kiosk, worker, person)
    assert again.state is TicketState.DONE
    held = again.view.ticket
    assert held is not None and held.label == "A1002" and held.offline

    # in the outbox, in this order, waiting for the hall
    pending = [decode(Event, row.payload) for row in runtime.outbox.pending(10)]
    assert [e.type for e in pending] == [
        "ticket_issued_offline",
        "ticket_voided",
        "alarm",
        "ticket_issued_offline",
    ]
    assert pending[1].data == {
        "ticket_id": voided_id,
        "label": "A1001",
        "category": "ss-submit",
        "reason": "print_failed",
        "partly_printed": True,
        "error": "printer_print_failed",
    }

    back = hall.start()
    wait_until(
        lambda: state_of(back, held.ticket_id) == "waiting",
        timeout_s=WAIT_S,
        what="both offline tickets merged",
    )
    assert state_of(back, voided_id) == "voided"  # merged, then voided
    assert [t.label for t in back.queue.waiting()] == ["A1002"]
    assert back.queue.call_next(1).id == held.ticket_id
    with pytest.raises(NothingWaiting):  # A1001 is never called
        back.queue.call_next(1)
    codes = [a["code"] for a in back.registry.alarms()]
    assert codes == ["ticket_not_printed"]  # no void was refused or unknown
    wait_until(
        lambda: runtime.outbox.backlog().events == 0,
        timeout_s=WAIT_S,
        what="the outbox emptied by the broker's acknowledgements",
    )
