"""Taking a ticket on an assembled kiosk (``kiosk.assembly.assemble``) as an applicant does: the
ticket tile, the business area, the ticket type, an ID card or none, and what the printer did.
The simulated printer can run out of paper in the middle of the slip."""

from __future__ import annotations

from typing import Any

from drivers.identity import Identity
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.vcard.cards import CitizenCard
from kiosk.assembly import Kiosk
from kiosk.flows.base import QueueWorker
from kiosk.flows.home import TileId
from kiosk.flows.ticket import TicketFlow, TicketState


def read_card(kiosk: Kiosk, number: str, name: str = "张小三") -> Identity:
    """The kiosk's own (simulated) reader reads a citizen card: hashed with the kiosk's key."""
    reader: Any = kiosk.devices.identity
    reader.present_card(CitizenCard(PcscSettings().citizen, id_number=number, name=name))
    try:
        identity: Identity = reader.read(timeout_s=2.0)
        return identity
    finally:
        reader.remove_card()


def take_ticket(
    kiosk: Kiosk,
    worker: QueueWorker,
    identity: Identity | None,
    *,
    paper_out_after: int | None = None,
    category: str = "ss-submit",
) -> TicketFlow:
    """A ticket journey up to its end (DONE, PRINT_FAILED or REPRINT_OFFER). With
    ``paper_out_after`` the paper ends after that many slip items of this ticket."""
    session = kiosk.session
    session.go_home()
    session.start(TileId.TICKET)
    worker.pump()
    flow = session.journey
    assert isinstance(flow, TicketFlow) and flow.state is TicketState.CHOOSE_AREA, flow
    flow.choose_area("social-security")
    flow.choose_type(category)
    if paper_out_after is not None:
        kiosk.devices.printer.sim.run_out_after(paper_out_after)  # type: ignore[attr-defined]
    if identity is None:
        flow.skip_card()
    else:
        assert flow.card_read(identity)
    worker.pump()
    return flow
