"""The evaluation screen (好差评) on a real Kivy window, bound to a real ``EvaluationFlow``
whose rating goes through the real gateway into the real hall's evaluations table."""

# ruff: noqa: F811  (the flow tests' fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from hall.service import Hall
from kiosk.flows.base import InlineWorker
from kiosk.flows.evaluation import EvaluationFlow, EvaluationState
from kiosk.flows.home import Cancelled, Finished
from kiosk.services.hall_service import HallGateway
from kiosk.ui.context import UiContext
from kiosk.ui.screens.evaluation import SCREENS
from tests.kiosk.flows.conftest import (  # noqa: F401  (fixtures are found by name)
    clock,
    hall,
    hall_service,
    inline,
)
from tests.kiosk.ui.harness import KivyHarness
from tests.kiosk.ui.test_screen_ticket import (
    Expect,
    mount_flow,
    notice_on_screen,
    render_states,
    text_shown,
)

S = EvaluationState
NAME = "evaluation"
REFERENCE = "t-0001"


def make_flow(worker: InlineWorker, service: HallGateway) -> EvaluationFlow:
    return EvaluationFlow(worker, service, service="ticket", reference=REFERENCE)


def rows(hall: Hall) -> list[tuple[str, str, int, list[str]]]:
    found = hall.store.conn.execute(
        "SELECT service, reference, level, reasons FROM evaluations"
    ).fetchall()
    return [(r["service"], r["reference"], r["level"], json.loads(r["reasons"])) for r in found]


CASES: dict[str, tuple[Callable[[EvaluationFlow], None], S, Expect]] = {
    "choose_level": (
        lambda flow: None,
        S.CHOOSE_LEVEL,
        Expect(("您对本次服务满意吗", "非常满意", "基本满意", "非常不满意"), ("Very satisfied",)),
    ),
    "choose_reasons_bad": (
        lambda flow: (flow.choose_level(1), flow.toggle_reason("long_wait")),
        S.CHOOSE_REASONS,
        Expect(
            ("请告诉我们哪里做得不好", "非常不满意", "✓ 等候时间太长", "要求的材料太多", "提交"),
            ("✓ I waited too long",),
        ),
    ),
    "choose_reasons_good": (
        lambda flow: flow.choose_level(5),
        S.CHOOSE_REASONS,
        Expect(("您可以选择满意的地方", "办理快", "工作人员热心"), ("Helpful staff",)),
    ),
    "thanks": (
        lambda flow: (flow.choose_level(4), flow.submit()),
        S.THANKS,
        Expect(("感谢您的评价", "完成"), ("Thank you",)),
    ),
    "closed": (lambda flow: flow.skip(), S.CLOSED, Expect(("服务评价",), ())),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_state_in_every_mode(
    ui: KivyHarness, ctx: UiContext, inline: InlineWorker, hall_service: HallGateway, case: str
) -> None:
    drive, state, expect = CASES[case]

    def built(_size: int) -> EvaluationFlow:  # no pages: the same flow in every mode
        flow = make_flow(inline, hall_service)
        drive(flow)
        assert flow.state is state
        return flow

    render_states(ui, ctx, case, screens=SCREENS, name=NAME, build=built, expect=expect)


def test_a_bad_rating_needs_a_reason_then_reaches_the_hall(
    ui: KivyHarness, ctx: UiContext, inline: InlineWorker, hall: Hall, hall_service: HallGateway
) -> None:
    flow = make_flow(inline, hall_service)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    ui.tap_text("不满意")  # level 2
    assert flow.state is S.CHOOSE_REASONS
    assert text_shown(ui, "请告诉我们哪里做得不好") and text_shown(ui, "请至少选一项")
    ui.tap_text("提交")
    box = notice_on_screen(ui)
    assert box is not None and box.message.text == "请至少选择一个原因。"
    assert rows(hall) == []
    ui.tap_text("确定")

    ui.tap_text("机器不好用")
    ui.tap_text("等候时间太长")
    ui.tap_text("✓ 机器不好用")  # a second touch takes it back
    assert flow.view.chosen == frozenset({"long_wait"})
    assert text_shown(ui, "✓ 等候时间太长") and ui.find_text("机器不好用")
    ui.tap_text("提交")
    assert flow.state is S.THANKS and text_shown(ui, "感谢您的评价")
    assert rows(hall) == [("ticket", REFERENCE, 2, ["long_wait"])]
    ui.tap_text("完成")
    assert flow.ended == Finished("evaluation", REFERENCE, evaluate=False)


def test_another_level_and_skip(
    ui: KivyHarness, ctx: UiContext, inline: InlineWorker, hall: Hall, hall_service: HallGateway
) -> None:
    flow = make_flow(inline, hall_service)
    mount_flow(ui, ctx, SCREENS, NAME, flow)
    ui.tap_text("满意")
    assert text_shown(ui, "您的评价：满意") and ui.find_text("办理快")
    ui.tap_text("返回")
    assert flow.state is S.CHOOSE_LEVEL
    ui.tap_text("非常满意")
    ui.tap_text("跳过")
    assert flow.ended == Cancelled() and rows(hall) == []
