"""The ticket screen (取号) on a real Kivy window, bound to a real ``TicketFlow`` with the real
hall in process and the ESC/POS printer simulator on a pty: every state drawn in Chinese,
English and elderly mode, and whole journeys driven by synthetic touches.

The helpers at the top (``render_states``, ``Expect``) serve the check-in, status and evaluation
screen tests too."""

# ruff: noqa: F811  (the flow tests' fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hall.errors import QuotaExhausted
from hall.service import Hall
from kiosk.flows.base import Flow, QueueWorker, Worker
from kiosk.flows.home import Cancelled, Finished
from kiosk.flows.session import SessionSettings
from kiosk.flows.ticket import TicketFlow, TicketState
from kiosk.i18n import Language
from kiosk.services.hall_gateway import EmbeddedTransport
from kiosk.services.hall_service import HallGateway
from kiosk.ui.context import UiContext
from kiosk.ui.screens.common_a import PageLabel, break_lines
from kiosk.ui.screens.ticket import SCREENS, TicketScreen
from kiosk.ui.shell import KioskShell, ScreenFactory
from kiosk.ui.widgets import BusyOverlay, NoticeBox
from tests.kiosk.flows.conftest import (  # noqa: F401  (fixtures are found by name)
    DEVICE,
    ELDER,
    YOUNG,
    Rig,
    clock,
    hall,
    hall_service,
    id_reader,
    inline,
    open_hall,
    printed_qr,
    printed_texts,
    printer,
    printer_sim,
    printer_sim_process,
    queued,
    read_citizen_card,
    rig,
)
from tests.kiosk.ui.harness import KivyHarness

S = TicketState
PAGE = SessionSettings().page_size
ELDERLY_PAGE = SessionSettings().elderly_page_size
NAME = "ticket"


# -- rendering every state in every mode (shared with the other screen tests) ------------------


@dataclass(frozen=True)
class Expect:
    """Texts (substrings) that must be on screen: ``zh`` in Chinese and elderly mode."""

    zh: tuple[str, ...] = ()
    en: tuple[str, ...] = ()


def shell_showing(
    ctx: UiContext, screens: Mapping[str, ScreenFactory], name: str, flow: Any
) -> KioskShell:
    shell = KioskShell(ctx, screens)
    shell.show(name, flow)
    return shell


def render_states(
    ui: KivyHarness,
    ctx: UiContext,
    case: str,
    *,
    screens: Mapping[str, ScreenFactory],
    name: str,
    build: Callable[[int], Flow[Any]],
    expect: Expect | Callable[[Any], Expect],
) -> None:
    """Chinese, then English (the same flow, switched as a user would), on a flow built with
    the standard page size; then elderly mode on a flow built with the elderly page size, as
    the session starts journeys. Each mode: a screenshot, no overflowing text, and the
    expected texts on screen."""
    problems: list[str] = []
    runs = ((("zh", "en"), PAGE, False), (("elderly",), ELDERLY_PAGE, True))
    for modes, page_size, elderly in runs:
        ctx.set_language(Language.ZH_CN)
        ctx.set_elderly(elderly)
        flow = build(page_size)
        wanted_texts = expect(flow) if callable(expect) else expect
        shell = shell_showing(ctx, screens, name, flow)
        ui.mount(shell)
        try:
            for mode in modes:
                if mode == "en":
                    ctx.set_language(Language.EN)
                ui.settle()
                shown = " | ".join(ui.texts())
                wanted = wanted_texts.en if mode == "en" else wanted_texts.zh
                problems += [
                    f"{mode}: {w!r} not on screen: {shown}"
                    for w in wanted
                    if flat(w) not in flat(shown)
                ]
                ui.screenshot(f"{case}-{mode}")
                problems += [f"{mode}: {o}" for o in ui.overflows()]
        finally:
            shell.stop()
            ui.window.remove_widget(shell)
            ctx.set_language(Language.ZH_CN)
            ctx.set_elderly(False)
    assert not problems, f"{case}:\n" + "\n".join(problems)


def notice_on_screen(ui: KivyHarness) -> NoticeBox | None:
    return next((w for w in ui.visible_widgets() if isinstance(w, NoticeBox)), None)


def busy_on_screen(ui: KivyHarness) -> bool:
    return any(isinstance(w, BusyOverlay) for w in ui.visible_widgets())


def flat(text: str) -> str:
    """Text without its whitespace: the pages break lines themselves (common_a.PageLabel)."""
    return "".join(text.split())


def text_shown(ui: KivyHarness, part: str) -> bool:
    return any(flat(part) in flat(t) for t in ui.texts())


def mount_flow(
    ui: KivyHarness, ctx: UiContext, screens: Mapping[str, ScreenFactory], name: str, flow: Any
) -> KioskShell:
    shell = shell_showing(ctx, screens, name, flow)
    ui.mount(shell)
    return shell


# -- the ticket flow in each state ----------------------------------------------------------------


def make_flow(rig: Rig, page_size: int, worker: Worker | None = None) -> TicketFlow:
    return TicketFlow(
        worker or rig.inline, rig.clock, rig.hall_service, rig.printer, page_size=page_size
    )


@pytest.fixture
def quota_hall(tmp_path: Path, rig: Rig) -> Iterator[Hall]:
    """A hall with one more business whose quota is one ticket this morning."""
    made = open_hall(tmp_path / "quota", rig.clock, QUOTA_CATEGORY)
    yield made
    made.close()


QUOTA_CATEGORY = """
[[hall.queue.categories]]
id = "q"
area = "a"
area_zh = "甲业务"
area_en = "Business A"
ticket_type = "submit"
prefix = "Q"
quotas = [{ start = "08:00", end = "12:00", max_tickets = 1 }]
"""


def states(
    rig: Rig, queued: QueueWorker, quota_hall: Hall
) -> dict[str, tuple[Callable[[int], TicketFlow], Expect]]:
    def checking(size: int) -> TicketFlow:
        return make_flow(rig, size, queued)  # the printer check never reported back

    def unavailable(size: int) -> TicketFlow:
        rig.printer_sim.control.pull_paper()
        return make_flow(rig, size)

    def area(size: int) -> TicketFlow:
        return make_flow(rig, size)

    def kind(size: int) -> TicketFlow:
        flow = make_flow(rig, size)
        flow.choose_area("real-estate")
        return flow

    def identify(size: int) -> TicketFlow:
        flow = kind(size)
        flow.choose_type("re-submit")
        return flow

    def green(size: int) -> TicketFlow:
        flow = identify(size)
        flow.ask_green_channel()
        return flow

    def done(size: int) -> TicketFlow:
        for _ in range(2):  # two people ahead
            rig.hall.handle_request(DEVICE, "ticket.issue", {"category": "re-submit"})
        flow = identify(size)
        flow.skip_card()
        return flow

    def reprint(size: int) -> TicketFlow:
        card = read_citizen_card(rig.id_reader, ELDER)
        first = identify(size)
        first.card_read(card)
        again = identify(size)
        again.card_read(card)
        return again

    def print_failed(size: int) -> TicketFlow:
        flow = identify(size)
        rig.printer_sim.control.run_out_after(5)
        flow.skip_card()
        return flow

    def refused(size: int) -> TicketFlow:
        service = HallGateway(EmbeddedTransport(quota_hall, DEVICE))
        if not quota_hall.queue.waiting(["q"]):
            quota_hall.handle_request(DEVICE, "ticket.issue", {"category": "q"})  # the only one
        flow = TicketFlow(rig.inline, rig.clock, service, rig.printer, page_size=size)
        flow.choose_area("a")
        flow.choose_type("q")
        flow.skip_card()
        return flow

    def closed(size: int) -> TicketFlow:
        flow = make_flow(rig, size)
        flow.cancel()
        return flow

    return {
        S.CHECKING: (checking, Expect(("取号", "正在检查打印机"), ("Checking the printer",))),
        S.UNAVAILABLE: (unavailable, Expect(("打印纸已用完", "暂时无法取号"), ("out of paper",))),
        S.CHOOSE_AREA: (area, Expect(("社保医保", "不动产登记", "企业开办"), ("Social security",))),
        S.CHOOSE_TYPE: (
            kind,
            Expect(("不动产登记", "收件", "取件", "咨询"), ("Submit documents",)),
        ),
        S.IDENTIFY: (identify, Expect(("身份证", "不刷卡"), ("without a card",))),
        S.GREEN_CONFIRM: (green, Expect(("绿色通道",), ("green channel",))),
        S.DONE: (done, ticket_on_screen),
        S.REPRINT_OFFER: (reprint, Expect(("D001", "重新打印"), ("Print it again",))),
        S.PRINT_FAILED: (print_failed, Expect(("工作人员",), ("staff",))),
        S.REFUSED: (refused, Expect((QuotaExhausted.message_zh,), (QuotaExhausted.message_en,))),
        S.CLOSED: (closed, Expect(("取号",), ())),
    }


def ticket_on_screen(flow: TicketFlow) -> Expect:
    """The number the hall issued, huge, and the people ahead (two more each time)."""
    ticket = flow.view.ticket
    assert ticket is not None and ticket.people_ahead is not None
    ahead = ticket.people_ahead
    return Expect(
        (ticket.label, f"您前面还有{ahead}人"), (ticket.label, f"{ahead} people are ahead")
    )


@pytest.mark.parametrize("state", list(S))
def test_every_state_in_every_mode(  # noqa: PLR0917 - fixtures arrive positionally
    ui: KivyHarness, ctx: UiContext, rig: Rig, queued: QueueWorker, quota_hall: Hall, state: S
) -> None:
    build, expect = states(rig, queued, quota_hall)[state]

    def built(size: int) -> TicketFlow:
        rig.printer_sim.control.load_paper()
        flow = build(size)
        assert flow.state is state
        return flow

    render_states(ui, ctx, state.value, screens=SCREENS, name=NAME, build=built, expect=expect)


# -- journeys by touch -------------------------------------------------------------------------


def tap_containing(ui: KivyHarness, part: str) -> None:
    """Tap the frontmost visible label whose text contains ``part`` (tiles with a note)."""
    labels = [w for w in ui.visible_labels() if part in w.text]
    assert labels, f"nothing on screen contains {part!r}: {ui.texts()}"
    ui.tap(labels[-1])


def waiting_labels(hall: Hall) -> list[str]:
    return sorted(t.label for t in hall.queue.waiting())


def test_take_a_ticket_by_touch_shows_the_number_the_hall_issued_and_printed(
    ui: KivyHarness, ctx: UiContext, rig: Rig, queued: QueueWorker
) -> None:
    flow = make_flow(rig, PAGE, queued)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    assert busy_on_screen(ui) and text_shown(ui, "正在检查打印机")  # progress, before any choice
    queued.pump()
    ui.wait_for(lambda: not busy_on_screen(ui), "the printer check to finish")
    assert flow.state is S.CHOOSE_AREA

    ui.tap_text("不动产登记")
    assert flow.state is S.CHOOSE_TYPE and text_shown(ui, "请选择：递交材料")
    ui.tap_text("递交材料（收件）")
    assert flow.state is S.IDENTIFY
    ui.tap_text("不刷卡，直接取号")
    assert busy_on_screen(ui) and text_shown(ui, "正在为您取号")
    assert flow.state is S.IDENTIFY  # nothing behind the busy box can be touched meanwhile
    queued.pump()
    ui.wait_for(lambda: flow.state is S.DONE and not busy_on_screen(ui), "the ticket")

    shown = flow.view.ticket
    assert shown is not None
    issued = rig.hall.queue.get(shown.ticket_id)
    assert (issued.label, issued.category, issued.priority) == (shown.label, "re-submit", "normal")
    assert issued.label in printed_texts(rig.printer_sim)  # the printer sim printed that number
    assert printed_qr(rig.printer_sim) == [f"hallkiosk:ticket:{issued.id}"]
    number = ui.find_text(issued.label)
    assert number.font_size >= 3 * ctx.theme.sizes.font_display_px  # huge
    assert text_shown(ui, "下一位就是您")  # nobody ahead: said plainly, big
    ui.tap_text("完成")
    assert flow.ended == Finished("ticket", issued.id, evaluate=True)


def test_areas_page_by_touch(ui: KivyHarness, ctx: UiContext, rig: Rig) -> None:
    flow = make_flow(rig, 2)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    assert text_shown(ui, "社保医保") and not text_shown(ui, "企业开办")
    ui.tap_text("下一页")
    assert text_shown(ui, "企业开办") and not text_shown(ui, "社保医保")
    ui.tap_text("上一页")
    ui.tap_text("下一页")
    ui.tap_text("企业开办")
    assert flow.state is S.CHOOSE_TYPE and flow.view.area is not None
    assert flow.view.area.area == "business"


def test_back_and_home_on_every_choosing_page(ui: KivyHarness, ctx: UiContext, rig: Rig) -> None:
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    ui.tap_text("社保医保")
    ui.tap_text("咨询")
    assert flow.state is S.IDENTIFY
    ui.tap_text("返回")
    assert flow.state is S.CHOOSE_TYPE
    ui.tap_text("返回")
    assert flow.state is S.CHOOSE_AREA
    ui.tap_text("返回首页")
    assert flow.ended == Cancelled()
    assert waiting_labels(rig.hall) == [] and printed_texts(rig.printer_sim) == []


def test_green_channel_asked_and_confirmed_by_touch(
    ui: KivyHarness, ctx: UiContext, rig: Rig
) -> None:
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    ui.tap_text("企业开办")
    ui.tap_text("递交材料（收件）")
    ui.tap_text("残疾人绿色通道")
    assert flow.state is S.GREEN_CONFIRM and text_shown(ui, "工作人员可能会查看您的残疾人证")
    ui.tap_text("是，我需要绿色通道")
    assert flow.state is S.IDENTIFY and text_shown(ui, "绿色通道：残疾人优先办理。")
    ui.tap_text("不刷卡，直接取号")
    shown = flow.view.ticket
    assert shown is not None and rig.hall.queue.get(shown.ticket_id).priority == "green"
    assert text_shown(ui, "绿色通道：您将优先办理。")
    assert "绿色通道 优先办理" in printed_texts(rig.printer_sim)


def test_a_card_with_a_waiting_ticket_is_offered_a_reprint(
    ui: KivyHarness, ctx: UiContext, rig: Rig
) -> None:
    card = read_citizen_card(rig.id_reader, YOUNG)
    first = make_flow(rig, PAGE)
    first.choose_area("social-security")
    first.choose_type("ss-submit")
    first.card_read(card)
    held = first.view.ticket
    assert held is not None
    rig.printer_sim.control.clear()

    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    ui.tap_text("社保医保")
    ui.tap_text("递交材料（收件）")
    assert flow.card_read(card) is True  # the reader's callback, as the app passes it on
    ui.settle()
    assert flow.state is S.REPRINT_OFFER
    assert text_shown(ui, f"您已经取过号了，号码是{held.label}")
    assert ui.find_text(held.label)  # the ticket already held, shown as it is
    assert printed_texts(rig.printer_sim) == []  # nothing printed before the applicant says so
    ui.tap_text("重新打印")
    assert flow.state is S.DONE
    assert held.label in printed_texts(rig.printer_sim)
    assert waiting_labels(rig.hall) == [held.label]  # still the one ticket


def test_quota_used_up_is_shown_in_the_halls_words(
    ui: KivyHarness, ctx: UiContext, rig: Rig, quota_hall: Hall
) -> None:
    service = HallGateway(EmbeddedTransport(quota_hall, DEVICE))
    quota_hall.handle_request(DEVICE, "ticket.issue", {"category": "q"})  # the only one today
    flow = TicketFlow(rig.inline, rig.clock, service, rig.printer, page_size=PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    ui.tap_text("甲业务")
    ui.tap_text("递交材料（收件）")
    ui.tap_text("不刷卡，直接取号")
    assert flow.state is S.REFUSED
    box = notice_on_screen(ui)
    assert box is not None and box.message.text == QuotaExhausted.message_zh
    ui.tap_text("确定")
    assert notice_on_screen(ui) is None
    assert text_shown(ui, "没有取到号") and text_shown(ui, QuotaExhausted.message_zh)  # still said
    assert printed_texts(rig.printer_sim) == []
    ui.tap_text("返回")
    assert flow.state is S.CHOOSE_AREA and not text_shown(ui, QuotaExhausted.message_zh)


def test_printer_out_of_paper_says_so_and_where_to_go(
    ui: KivyHarness, ctx: UiContext, rig: Rig
) -> None:
    rig.printer_sim.control.pull_paper()
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    assert flow.state is S.UNAVAILABLE
    box = notice_on_screen(ui)
    assert box is not None and "打印纸已用完" in box.message.text
    assert text_shown(ui, "如需帮助")  # staff are called for
    ui.tap_text("确定")
    assert notice_on_screen(ui) is None
    for part in ("暂时无法取号", "打印纸已用完", "请到服务窗口办理"):
        assert text_shown(ui, part), part
    assert not text_shown(ui, "社保医保")  # no business offered at all
    ui.screenshot("after-ok")
    ui.tap_text("返回首页")
    assert flow.ended == Cancelled() and waiting_labels(rig.hall) == []


def test_a_wipe_leaves_no_personal_data_on_screen(
    ui: KivyHarness, ctx: UiContext, rig: Rig
) -> None:
    flow = make_flow(rig, PAGE)
    shell = mount_flow(ui, ctx, SCREENS, NAME, flow)
    flow.card_read(read_citizen_card(rig.id_reader, YOUNG, name="李小明"))
    ui.settle()
    assert text_shown(ui, "已读取身份证：李*明")
    flow.wipe()  # the session's idle timeout
    ui.settle()
    assert not any("李" in t for t in ui.texts())
    screen = shell.current
    assert isinstance(screen, TicketScreen)
    screen.detach()  # the router shows another screen
    assert not any("李" in getattr(w, "text", "") for w in screen.walk())


def test_a_touch_on_a_page_the_flow_has_left_is_ignored(
    ui: KivyHarness, ctx: UiContext, rig: Rig
) -> None:
    """Two taps inside one frame: the second lands on a button of the page before. It must
    not raise into the Kivy loop (a traceback for the applicant), nor act twice."""
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    ui.tap_text("社保医保")
    stale = ui.find_text("咨询")
    ui.tap(stale)
    assert flow.state is S.IDENTIFY
    stale.dispatch("on_release")  # the same button again, before the next frame removed it
    assert flow.state is S.IDENTIFY and flow.view.category is not None
    assert flow.view.category.category_id == "ss-consult"


def test_rebuilt_pages_are_freed(ui: KivyHarness, ctx: UiContext, rig: Rig) -> None:
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    for _ in range(6):
        ui.tap_text("社保医保")
        ui.tap_text("返回")
    ctx.set_elderly(True)
    ui.settle()
    ctx.set_elderly(False)
    ui.settle()
    on_screen = [w for w in ui.visible_widgets() if isinstance(w, PageLabel)]
    gc.collect()
    alive = [o for o in gc.get_objects() if issubclass(type(o), PageLabel)]
    assert len(alive) == len(on_screen)


@pytest.mark.parametrize(
    ("text", "width", "lines"),
    [
        ("您前面还有5人，预计等候约50分钟。", 16, ["您前面还有5人，预计等候约50分", "钟。"]),
        ("排队号没有打印出来，请联系工作人员。", 17, ["排队号没有打印出来，请联系工作人", "员。"]),
        ("请选择（收件）业务", 4, ["请选择", "（收件）", "业务"]),
        ("2 people are ahead of you", 12, ["2 people are", "ahead of you"]),
        ("A\nB", 10, ["A", "B"]),
    ],
)
def test_lines_never_start_with_closing_punctuation(
    text: str, width: int, lines: list[str]
) -> None:
    # one unit of width per character: where the breaks go, not how wide glyphs are
    assert break_lines(text, width, len).split("\n") == lines
