"""The check-in screen (预约签到) on a real Kivy window, bound to a real ``CheckinFlow`` with the
real hall in process (bookings imported from its CSV format, windows on a ManualClock) and the
ESC/POS printer simulator: every state in every mode, and journeys by synthetic touches."""

# ruff: noqa: F811  (the flow tests' fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from collections.abc import Callable

import pytest

from drivers.scanner.formats import make_booking_code
from hall.errors import AppointmentForfeited, AppointmentNotFound, AppointmentTooEarly
from kiosk.flows.base import QueueWorker, Worker
from kiosk.flows.checkin import CheckinFlow, CheckinState
from kiosk.flows.home import Finished, HandOver, JourneyKind
from kiosk.services.hall_gateway import EmbeddedTransport
from kiosk.services.hall_service import HallGateway
from kiosk.ui.context import UiContext
from kiosk.ui.screens.checkin import SCREENS
from tests.kiosk.flows.conftest import (  # noqa: F401  (fixtures are found by name)
    BOOK_0930,
    BOOK_10,
    BOOK_EARLY,
    BOOK_ELDER,
    BORN_60_TOMORROW,
    DEVICE,
    YOUNG,
    Rig,
    SwitchableTransport,
    clock,
    hall,
    hall_service,
    id_reader,
    inline,
    printed_texts,
    printer,
    printer_sim,
    printer_sim_process,
    queued,
    read_citizen_card,
    rig,
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

S = CheckinState
NAME = "checkin"


def make_flow(rig: Rig, page_size: int, worker: Worker | None = None) -> CheckinFlow:
    return CheckinFlow(
        worker or rig.inline, rig.clock, rig.hall_service, rig.printer, page_size=page_size
    )


def scanned(rig: Rig, size: int, code: str) -> CheckinFlow:
    flow = make_flow(rig, size)
    flow.code_scanned(f"HK1:B:{code}")
    return flow


def status_of(rig: Rig, code: str) -> str:
    return rig.hall.appointments.get(code).status


Build = Callable[[int], CheckinFlow]


def states(rig: Rig, queued: QueueWorker) -> dict[S, tuple[Build, Expect]]:
    fresh = iter([BOOK_ELDER, BOOK_0930])  # a booking not checked in yet, per build
    failing = iter([BOOK_0930, BOOK_ELDER])
    cut = SwitchableTransport(EmbeddedTransport(rig.hall, DEVICE))

    def checking(size: int) -> CheckinFlow:
        return make_flow(rig, size, queued)  # the printer check never reported back

    def unavailable(size: int) -> CheckinFlow:
        rig.printer_sim.control.pull_paper()
        return make_flow(rig, size)

    def identify(size: int) -> CheckinFlow:
        return make_flow(rig, size)

    def enter_code(size: int) -> CheckinFlow:
        flow = make_flow(rig, size)
        flow.enter_code()
        for digit in "2026":
            flow.press(digit)
        return flow

    def choose(size: int) -> CheckinFlow:
        flow = make_flow(rig, size)
        flow.card_read(read_citizen_card(rig.id_reader, YOUNG))  # two bookings today
        return flow

    def done(size: int) -> CheckinFlow:
        return scanned(rig, size, next(fresh))

    def reprint(size: int) -> CheckinFlow:
        scanned(rig, size, BOOK_ELDER)
        return scanned(rig, size, BOOK_ELDER)

    def print_failed(size: int) -> CheckinFlow:
        flow = make_flow(rig, size)
        rig.printer_sim.control.run_out_after(4)
        flow.code_scanned(next(failing))
        return flow

    def refused(size: int) -> CheckinFlow:
        cut.down = False
        flow = CheckinFlow(rig.inline, rig.clock, HallGateway(cut), rig.printer, page_size=size)
        cut.down = True  # the network goes after the start
        flow.code_scanned(BOOK_0930)
        return flow

    def closed(size: int) -> CheckinFlow:
        flow = make_flow(rig, size)
        flow.cancel()
        return flow

    return {
        S.CHECKING: (checking, Expect(("预约签到", "正在检查打印机"), ("Checking the printer",))),
        S.UNAVAILABLE: (unavailable, Expect(("暂时无法签到", "打印纸已用完"), ("out of paper",))),
        S.IDENTIFY: (
            identify,
            Expect(("身份证", "预约二维码", "输入预约号"), ("Booking QR code",)),
        ),
        S.ENTER_CODE: (enter_code, Expect(("YY2026", "请输入您的预约号"), ("YY2026",))),
        S.CHOOSE_BOOKING: (choose, Expect(("09:30", "10:00", "一楼3号窗口"), ("09:30",))),
        S.DONE: (done, Expect(("签到成功", "预约事项", "一楼3号窗口"), ("You are checked in",))),
        S.REPRINT_OFFER: (reprint, Expect(("D001", "重新打印"), ("D001", "Print it again"))),
        S.PRINT_FAILED: (print_failed, Expect(("工作人员",), ("contact staff",))),
        S.TOO_EARLY: (
            lambda size: scanned(rig, size, BOOK_10),
            Expect((AppointmentTooEarly.message_zh, "10:00"), (AppointmentTooEarly.message_en,)),
        ),
        S.FORFEITED: (
            lambda size: scanned(rig, size, BOOK_EARLY),
            Expect((AppointmentForfeited.message_zh, "取普通号"), ("Take a normal ticket",)),
        ),
        S.NOT_FOUND: (
            lambda size: scanned(rig, size, make_booking_code("99999999999")),
            Expect((AppointmentNotFound.message_zh, "取普通号", "输入预约号"), ()),
        ),
        S.REFUSED: (
            refused,
            Expect(("签到没有成功", "暂时连不上大厅系统"), ("cannot be reached",)),
        ),
        S.CLOSED: (closed, Expect(("预约签到",), ())),
    }


@pytest.mark.parametrize("state", list(S))
def test_every_state_in_every_mode(
    ui: KivyHarness, ctx: UiContext, rig: Rig, queued: QueueWorker, state: S
) -> None:
    build, expect = states(rig, queued)[state]

    def built(size: int) -> CheckinFlow:
        rig.printer_sim.control.load_paper()
        flow = build(size)
        assert flow.state is state
        return flow

    render_states(ui, ctx, state.value, screens=SCREENS, name=NAME, build=built, expect=expect)


# -- journeys by touch -------------------------------------------------------------------------


def test_check_in_by_typing_the_booking_number(
    ui: KivyHarness, ctx: UiContext, rig: Rig, queued: QueueWorker
) -> None:
    flow = make_flow(rig, PAGE, queued)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    queued.pump()
    ui.settle()
    ui.tap_text("输入预约号")
    assert flow.state is S.ENTER_CODE
    digits = BOOK_ELDER.removeprefix("YY")
    for digit in digits[:5]:
        ui.tap_text(digit)
    assert ui.find_text("YY" + digits[:5])  # the entry box shows what was typed
    ui.tap_text("确定")  # too short: the flow says how many digits
    box = notice_on_screen(ui)
    assert box is not None and box.message.text == "请输入全部12位数字。"
    ui.tap_text("确定")
    ui.tap_text("删除")
    for digit in digits[4:]:
        ui.tap_text(digit)
    assert ui.find_text(BOOK_ELDER)
    ui.tap_text("确定")
    assert busy_on_screen(ui) and text_shown(ui, "正在查找您的预约")
    queued.pump()
    ui.wait_for(lambda: flow.state is S.DONE and not busy_on_screen(ui), "the check-in")

    shown = flow.view.ticket
    assert shown is not None
    ticket = rig.hall.queue.get(shown.ticket_id)
    assert (ticket.label, ticket.priority) == (shown.label, "appointment")  # called first
    assert status_of(rig, BOOK_ELDER) == "checked_in"
    printed = printed_texts(rig.printer_sim)
    assert shown.label in printed and "预约收件号" in printed
    assert ui.find_text(shown.label).font_size >= 3 * ctx.theme.sizes.font_display_px
    assert text_shown(ui, f"签到成功。您的号码是{shown.label}")
    assert not any(digits in t for t in ui.texts())  # the typed number is not kept on screen
    ui.tap_text("完成")
    assert flow.ended == Finished("checkin", shown.ticket_id, evaluate=True)


def test_several_bookings_choose_one_by_touch(ui: KivyHarness, ctx: UiContext, rig: Rig) -> None:
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    flow.card_read(read_citizen_card(rig.id_reader, YOUNG))
    ui.settle()
    assert flow.state is S.CHOOSE_BOOKING
    tap_containing(ui, "09:30")
    assert flow.state is S.DONE
    assert status_of(rig, BOOK_0930) == "checked_in" and status_of(rig, BOOK_10) == "booked"


def test_too_early_is_said_with_the_booking_time(ui: KivyHarness, ctx: UiContext, rig: Rig) -> None:
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    assert flow.code_scanned(f"HK1:B:{BOOK_10}") is True  # the scanner, through the app
    ui.settle()
    assert flow.state is S.TOO_EARLY
    box = notice_on_screen(ui)
    assert box is not None and box.message.text == AppointmentTooEarly.message_zh
    ui.tap_text("确定")
    assert text_shown(ui, "还没到这个预约的签到时间")
    assert text_shown(ui, AppointmentTooEarly.message_zh) and text_shown(ui, "10:00–10:59")
    assert printed_texts(rig.printer_sim) == [] and status_of(rig, BOOK_10) == "booked"
    ui.tap_text("返回")
    assert flow.state is S.IDENTIFY


def test_forfeited_booking_hands_over_to_a_normal_ticket(
    ui: KivyHarness, ctx: UiContext, rig: Rig
) -> None:
    card = read_citizen_card(rig.id_reader, BORN_60_TOMORROW)  # booked 07:30, now 09:00
    flow = make_flow(rig, PAGE)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    flow.card_read(card)
    ui.settle()
    assert flow.state is S.FORFEITED
    ui.tap_text("确定")
    assert text_shown(ui, AppointmentForfeited.message_zh)
    ui.tap_text("取普通号")
    assert flow.ended == HandOver(JourneyKind.TICKET, area="social-security", identity=card)
    assert printed_texts(rig.printer_sim) == []
