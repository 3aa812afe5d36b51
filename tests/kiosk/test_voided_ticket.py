"""The embedded default: a ticket whose print failed is voided in the hall in this process (the
outbox event reaches its registry through ``EmbeddedEventPump``), and the applicant can take a
new one; a failed reprint voids nothing. Real parts: the embedded hall, the simulated printer
and card reader from the packaged defaults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hall.errors import NothingWaiting
from hall.service import Hall
from kiosk.assembly import Kiosk, assemble
from kiosk.flows.base import QueueWorker
from kiosk.flows.ticket import TicketState
from kiosk.settings import load_kiosk_settings
from tests.kiosk.flows.locker_fixtures import id_number
from tests.kiosk.test_assembly import UiThread, write_site
from tests.kiosk.ticket_journey import read_card, take_ticket


@pytest.fixture
def worker() -> Iterator[QueueWorker]:
    made = QueueWorker()
    yield made
    made.close()


@pytest.fixture
def kiosk(tmp_path: Path, worker: QueueWorker) -> Iterator[Kiosk]:
    made = assemble(load_kiosk_settings([write_site(tmp_path)]), worker, UiThread().post)
    try:
        yield made
    finally:
        made.close()


def embedded(kiosk: Kiosk) -> Hall:
    hall = kiosk.runtime.embedded_hall
    assert hall is not None
    return hall


def not_printed(hall: Hall) -> list[dict[str, Any]]:
    return [a for a in hall.registry.alarms() if a["code"] == "ticket_not_printed"]


def test_a_ticket_whose_print_failed_is_voided_and_the_applicant_takes_a_new_one(
    kiosk: Kiosk, worker: QueueWorker
) -> None:
    hall = embedded(kiosk)
    person = read_card(kiosk, id_number(21))
    ahead = take_ticket(kiosk, worker, None)
    assert ahead.state is TicketState.DONE
    first = ahead.view.ticket  # kept: going home wipes the journey
    assert first is not None

    flow = take_ticket(kiosk, worker, person, paper_out_after=5)  # the paper ends mid-slip
    assert flow.state is TicketState.PRINT_FAILED
    unprinted = flow.view.unprinted
    assert unprinted is not None and unprinted.partly_printed and not unprinted.reprint

    # delivered at once, in this process
    assert kiosk.runtime.outbox.backlog().events == 0
    assert hall.queue.get(unprinted.ticket_id).state == "voided"
    [alarm] = not_printed(hall)
    assert alarm["subject"] == unprinted.label
    assert alarm["details"]["voided"] is True
    assert alarm["details"]["error"] == "printer_print_failed"
    assert [t.label for t in hall.queue.waiting()] == [first.label]

    kiosk.devices.printer.sim.load_paper()  # type: ignore[attr-defined]
    again = take_ticket(kiosk, worker, person)
    assert again.state is TicketState.DONE  # a new number, no reprint offer
    shown = again.view.ticket
    assert shown is not None and shown.ticket_id != unprinted.ticket_id
    assert shown.people_ahead == 1  # the voided ticket is not counted
    called = [hall.queue.call_next(1).id for _ in range(2)]
    assert called == [first.ticket_id, shown.ticket_id]
    with pytest.raises(NothingWaiting):  # never the voided one
        hall.queue.call_next(1)


def test_a_failed_reprint_voids_nothing(kiosk: Kiosk, worker: QueueWorker) -> None:
    hall = embedded(kiosk)
    person = read_card(kiosk, id_number(22))
    first = take_ticket(kiosk, worker, person)
    assert first.state is TicketState.DONE
    held = first.view.ticket
    assert held is not None

    offer = take_ticket(kiosk, worker, person)
    assert offer.state is TicketState.REPRINT_OFFER
    kiosk.devices.printer.sim.run_out_after(5)  # type: ignore[attr-defined]
    offer.reprint()
    worker.pump()
    assert offer.state is TicketState.PRINT_FAILED
    assert hall.queue.get(held.ticket_id).state == "waiting"  # the first slip is still valid
    [alarm] = not_printed(hall)
    assert alarm["details"]["voided"] is False
    assert "ticket_voided" not in {
        r["type"] for r in hall.store.all("SELECT type FROM events_seen")
    }
