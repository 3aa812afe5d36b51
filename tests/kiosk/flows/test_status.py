"""Case status (办件查询) against the real hall: submissions made through its own requests,
decided by its department desk, looked up by receipt QR or by card."""

from __future__ import annotations

import pytest

from drivers.identity.vcard.sim import SimIdentityReader
from hall.service import Hall
from kiosk.flows.base import Bilingual, FlowStateError, InlineWorker, Msg, QueueWorker
from kiosk.flows.home import Cancelled, Finished
from kiosk.flows.status import StatusFlow, StatusState, parse_receipt_no
from kiosk.services.hall_gateway import EmbeddedTransport
from kiosk.services.hall_service import HallGateway
from tests.kiosk.flows.conftest import (
    DEVICE,
    ELDER,
    YOUNG,
    SwitchableTransport,
    read_card,
    read_citizen_card,
    submit_prereview,
)

S = StatusState
RETURN_ITEMS = ["户口簿首页缺失", "身份证反面模糊"]


def test_receipt_payloads() -> None:
    assert parse_receipt_no("hallkiosk:receipt:YS2026112300001") == "YS2026112300001"
    assert parse_receipt_no(" ys2026112300001\n") == "YS2026112300001"
    assert parse_receipt_no("HK1:B:YY202611230013") is None
    assert parse_receipt_no("YS20261123") is None


def test_by_card_lists_every_submission_and_every_missing_item(
    inline: InlineWorker, hall: Hall, hall_service: HallGateway, id_reader: SimIdentityReader
) -> None:
    card = read_citizen_card(id_reader, YOUNG)
    assert card.id_hash is not None
    first = submit_prereview(hall, card.id_hash)
    second = submit_prereview(hall, card.id_hash, matter="RE-0201")
    submit_prereview(hall, read_citizen_card(id_reader, ELDER).id_hash)  # someone else's
    hall.prereview.return_(first, by="staff-7", items=RETURN_ITEMS)

    flow = StatusFlow(inline, hall_service, page_size=1)
    assert flow.state is S.IDENTIFY and flow.prompt is not None
    assert flow.card_read(card) is True
    assert flow.state is S.LIST
    view = flow.view
    assert view.page_count == 2
    listed = [s.receipt_no for s in view.submissions]
    flow.next_page()
    listed += [s.receipt_no for s in flow.view.submissions]
    assert sorted(listed) == sorted([first, second])

    flow.select(first)
    assert flow.state is S.DETAIL
    returned = flow.view.selected
    assert returned is not None and returned.state == "returned"
    assert returned.return_items == tuple(RETURN_ITEMS)  # all of them, at once
    assert returned.matter == Bilingual(
        "城乡居民养老保险参保登记", "Residents' pension insurance enrolment"
    )
    assert returned.state_text == Msg.of(
        "Returned. Please supply every item listed below, all at once."
    )
    assert returned.decided_at is not None
    assert flow.prompt == returned.state_text
    flow.back()
    assert flow.state is S.LIST
    flow.select(second)
    pending = flow.view.selected
    assert pending is not None and pending.state == "pending" and pending.return_items == ()
    flow.finish()
    assert flow.ended == Finished("status", evaluate=False)
    assert flow.state is S.CLOSED and flow.view.selected is None


def test_by_receipt_qr_shows_the_one_submission(
    inline: InlineWorker, hall: Hall, hall_service: HallGateway
) -> None:
    receipt = submit_prereview(hall, None)
    hall.prereview.accept(receipt, by="staff-7")
    flow = StatusFlow(inline, hall_service)
    assert flow.code_scanned(f"hallkiosk:receipt:{receipt}") is True
    assert flow.state is S.DETAIL
    shown = flow.view.selected
    assert shown is not None and shown.receipt_no == receipt and shown.state == "accepted"
    assert shown.state_text == Msg.of(
        "Passed pre-review. Please bring the original documents to the hall."
    )
    flow.back()
    flow.back()
    assert flow.state is S.IDENTIFY
    assert flow.code_scanned(receipt) is True  # the bare number works as well
    assert flow.state is S.DETAIL


def test_nothing_found_and_codes_that_are_no_receipt(
    inline: InlineWorker, hall_service: HallGateway, id_reader: SimIdentityReader
) -> None:
    flow = StatusFlow(inline, hall_service)
    assert flow.code_scanned("HK1:B:YY202611230013") is True
    assert flow.notice is not None and flow.notice.code == "not_a_receipt"
    assert flow.state is S.IDENTIFY
    flow.code_scanned("YS2026112399999")
    assert flow.state is S.NONE_FOUND
    assert flow.notice is not None and flow.notice.code == "submission_not_found"
    assert flow.card_read(read_card(id_reader, "citizen")) is False  # not in this state
    flow.back()
    assert flow.card_read(read_card(id_reader, "idcard")) is True
    assert flow.notice is not None and flow.notice.code == "card_without_number"
    assert flow.card_read(read_card(id_reader, "staff")) is False


def test_hall_unreachable(inline: InlineWorker, hall: Hall) -> None:
    transport = SwitchableTransport(EmbeddedTransport(hall, DEVICE))
    transport.down = True
    flow = StatusFlow(inline, HallGateway(transport))
    flow.code_scanned("YS2026112300001")
    assert flow.state is S.REFUSED
    assert flow.notice is not None and flow.notice.code == "hall_unreachable"
    flow.back()
    assert flow.state is S.IDENTIFY


def test_busy_and_a_wipe_before_the_answer(
    queued: QueueWorker, hall: Hall, hall_service: HallGateway, id_reader: SimIdentityReader
) -> None:
    card = read_citizen_card(id_reader, YOUNG)
    assert card.id_hash is not None
    submit_prereview(hall, card.id_hash)
    flow = StatusFlow(queued, hall_service)
    flow.card_read(card)
    assert flow.busy == Msg.of("Looking up your applications…")
    with pytest.raises(FlowStateError):
        flow.cancel()
    queued.pump()
    assert flow.state is S.DETAIL
    flow.back()
    assert flow.state is S.LIST and len(flow.view.submissions) == 1
    flow.back()
    flow.card_read(card)
    flow.wipe()
    queued.pump()
    assert flow.state is S.CLOSED and flow.view.submissions == () and flow.view.selected is None
    assert flow._pager.items == ()


def test_cancel_and_wrong_states(inline: InlineWorker, hall_service: HallGateway) -> None:
    flow = StatusFlow(inline, hall_service)
    for call in (flow.finish, flow.back):
        with pytest.raises(FlowStateError):
            call()
    with pytest.raises(FlowStateError):
        flow.select("YS2026112300001")
    flow.cancel()
    assert flow.ended == Cancelled()
