"""The case status screen (办件查询) on a real Kivy window, bound to a real ``StatusFlow`` with
the real hall in process: submissions made through the hall's own requests and decided by its
department desk, looked up by receipt QR or ID card."""

# ruff: noqa: F811  (the flow tests' fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from drivers.identity.vcard.sim import SimIdentityReader
from hall.service import Hall
from kiosk.flows.base import InlineWorker, QueueWorker
from kiosk.flows.home import Finished
from kiosk.flows.status import StatusFlow, StatusState
from kiosk.services.hall_gateway import EmbeddedTransport
from kiosk.services.hall_service import HallGateway
from kiosk.ui.context import UiContext
from kiosk.ui.screens.status import SCREENS
from tests.kiosk.flows.conftest import (  # noqa: F401  (fixtures are found by name)
    DEVICE,
    ELDER,
    YOUNG,
    SwitchableTransport,
    clock,
    hall,
    hall_service,
    id_reader,
    inline,
    queued,
    read_citizen_card,
    submit_prereview,
)
from tests.kiosk.ui.harness import KivyHarness
from tests.kiosk.ui.test_screen_ticket import (
    PAGE,
    Expect,
    busy_on_screen,
    mount_flow,
    notice_on_screen,
    render_states,
    tap_containing,
    text_shown,
)

S = StatusState
NAME = "status"
RETURN_ITEMS = [
    "户口簿首页缺失",
    "身份证反面照片模糊，请重新拍摄，四角完整、文字清楚",
    "缺少本人签名的参保登记表",
]
PENSION = "城乡居民养老保险参保登记"  # SS-0101 in the hall's catalog


@dataclass(frozen=True)
class Parts:
    worker: InlineWorker
    hall: Hall
    service: HallGateway
    reader: SimIdentityReader
    queued: QueueWorker


@pytest.fixture
def parts(
    inline: InlineWorker,
    hall: Hall,
    hall_service: HallGateway,
    id_reader: SimIdentityReader,
    queued: QueueWorker,
) -> Parts:
    return Parts(inline, hall, hall_service, id_reader, queued)


def make_flow(parts: Parts, page_size: int) -> StatusFlow:
    return StatusFlow(parts.worker, parts.service, page_size=page_size)


def returned_receipt(hall: Hall, identity_hash: str | None = None) -> str:
    receipt = submit_prereview(hall, identity_hash)
    hall.prereview.return_(receipt, by="staff-7", items=RETURN_ITEMS)
    return receipt


def states(parts: Parts) -> dict[S, tuple[Callable[[int], StatusFlow], Expect]]:
    hall = parts.hall
    cut = SwitchableTransport(EmbeddedTransport(hall, DEVICE))

    def identify(size: int) -> StatusFlow:
        return make_flow(parts, size)

    def listed(size: int) -> StatusFlow:
        card = read_citizen_card(parts.reader, YOUNG)
        submit_prereview(hall, card.id_hash)
        hall.prereview.accept(submit_prereview(hall, card.id_hash, matter="RE-0201"), by="s-1")
        returned_receipt(hall, card.id_hash)
        flow = make_flow(parts, size)
        flow.card_read(card)
        return flow

    def detail(size: int) -> StatusFlow:
        flow = make_flow(parts, size)
        flow.code_scanned(f"hallkiosk:receipt:{returned_receipt(hall)}")
        return flow

    def none_found(size: int) -> StatusFlow:
        flow = make_flow(parts, size)
        flow.code_scanned("YS2026112399999")
        return flow

    def refused(size: int) -> StatusFlow:
        cut.down = True
        flow = StatusFlow(parts.worker, HallGateway(cut), page_size=size)
        flow.code_scanned("YS2026112300001")
        return flow

    def closed(size: int) -> StatusFlow:
        flow = make_flow(parts, size)
        flow.cancel()
        return flow

    return {
        S.IDENTIFY: (identify, Expect(("办件查询", "回执二维码", "身份证"), ("Receipt QR code",))),
        S.LIST: (listed, Expect((PENSION, "已退回", "审核中"), ("Returned",))),
        S.DETAIL: (detail, Expect((PENSION, "已退回", *RETURN_ITEMS), ("Returned",))),
        S.NONE_FOUND: (none_found, Expect(("没有找到您的申请",), ("No application",))),
        S.REFUSED: (refused, Expect(("查询没有成功", "暂时连不上大厅系统"), ("did not work",))),
        S.CLOSED: (closed, Expect(("办件查询",), ())),
    }


@pytest.mark.parametrize("state", list(S))
def test_every_state_in_every_mode(ui: KivyHarness, ctx: UiContext, parts: Parts, state: S) -> None:
    build, expect = states(parts)[state]

    def built(size: int) -> StatusFlow:
        flow = build(size)
        assert flow.state is state
        return flow

    render_states(ui, ctx, state.value, screens=SCREENS, name=NAME, build=built, expect=expect)


# -- journeys ----------------------------------------------------------------------------------


def test_a_scanned_receipt_shows_every_returned_item_at_once(
    ui: KivyHarness, ctx: UiContext, parts: Parts
) -> None:
    receipt = returned_receipt(parts.hall)
    flow = StatusFlow(parts.queued, parts.service, page_size=PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    assert flow.code_scanned(f"hallkiosk:receipt:{receipt}") is True  # the scanner, via the app
    ui.settle()
    assert busy_on_screen(ui) and text_shown(ui, "正在查询您的申请")
    parts.queued.pump()
    ui.wait_for(lambda: flow.state is S.DETAIL and not busy_on_screen(ui), "the submission")

    assert text_shown(ui, PENSION)  # the matter's name from the hall catalog
    assert text_shown(ui, f"回执号：{receipt}")
    assert text_shown(ui, "已退回。请按下面列出的内容，一次补齐。")
    for number, item in enumerate(RETURN_ITEMS, start=1):
        assert text_shown(ui, f"{number}、{item}")  # every item, in the department's words
    assert not ui.overflows()
    ui.tap_text("返回")
    assert flow.state is S.LIST
    tap_containing(ui, PENSION)
    assert flow.state is S.DETAIL
    ui.tap_text("完成")
    assert flow.ended == Finished("status", evaluate=False)


def test_by_card_choose_one_of_several(ui: KivyHarness, ctx: UiContext, parts: Parts) -> None:
    card = read_citizen_card(parts.reader, ELDER)
    pending = submit_prereview(parts.hall, card.id_hash)
    accepted = submit_prereview(parts.hall, card.id_hash, matter="RE-0201")
    parts.hall.prereview.accept(accepted, by="staff-7")
    flow = make_flow(parts, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    flow.card_read(card)
    ui.settle()
    assert flow.state is S.LIST
    assert text_shown(ui, f"{pending} · 审核中") and text_shown(ui, f"{accepted} · 已通过")
    tap_containing(ui, accepted)
    assert flow.state is S.DETAIL and flow.view.selected is not None
    assert flow.view.selected.receipt_no == accepted
    assert text_shown(ui, "预审已通过。请带上材料原件到大厅办理。")
    assert not text_shown(ui, "需要补充的材料")


def test_nothing_found_then_back(ui: KivyHarness, ctx: UiContext, parts: Parts) -> None:
    flow = make_flow(parts, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    flow.code_scanned("YS2026112399999")
    ui.settle()
    box = notice_on_screen(ui)
    assert box is not None and "没有找到您的申请" in box.message.text
    ui.tap_text("确定")
    assert text_shown(ui, "请核对回执")
    ui.tap_text("返回")
    assert flow.state is S.IDENTIFY
    ui.tap_text("返回首页")
    assert flow.state is S.CLOSED
