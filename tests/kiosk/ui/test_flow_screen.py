"""FlowScreen: renders only on the Kivy main thread, once per frame, and shows a flow's busy
text and notice as modal boxes."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from kiosk.flows.base import InlineWorker, Msg
from kiosk.ui.context import UiContext
from kiosk.ui.shell import KioskShell
from kiosk.ui.widgets import BusyOverlay, NoticeBox
from kiosk.ui.worker import KivyWorker
from tests.kiosk.ui.harness import KivyHarness
from tests.kiosk.ui.samples import SampleFlow, SampleScreen, SampleState

CHANGES_FROM_THREAD = 5


@pytest.fixture
def worker() -> Iterator[KivyWorker]:
    worker = KivyWorker()
    try:
        yield worker
    finally:
        worker.close()


def mount_sample(ui: KivyHarness, ctx: UiContext, flow: SampleFlow) -> SampleScreen:
    shell = KioskShell(ctx, {"sample": SampleScreen})
    ui.mount(shell)
    screen = shell.show("sample", flow)
    assert isinstance(screen, SampleScreen)
    ui.settle()
    return screen


def test_changes_from_another_thread_render_on_the_main_thread_once_per_frame(
    ui: KivyHarness, ctx: UiContext
) -> None:
    flow = SampleFlow(InlineWorker())
    screen = mount_sample(ui, ctx, flow)
    renders = screen.renders

    def worker_thread() -> None:
        for _ in range(CHANGES_FROM_THREAD):
            flow.set_title(Msg("Please choose a service"))

    thread = threading.Thread(target=worker_thread)
    thread.start()
    thread.join()
    # the listener ran on the worker thread; nothing may have rendered there
    assert screen.renders == renders
    ui.wait_for(lambda: screen.renders > renders, "the render after the thread's changes")
    assert screen.renders == renders + 1  # five changes, one frame, one render
    assert set(screen.render_threads) == {threading.main_thread().ident}
    assert "请选择办理的业务" in ui.texts()


def test_busy_box_blocks_touches_until_the_job_is_done(
    ui: KivyHarness, ctx: UiContext, worker: KivyWorker
) -> None:
    flow = SampleFlow(worker)
    screen = mount_sample(ui, ctx, flow)
    for digit in "123456":
        ui.tap_text(digit)
    ui.tap_text("确定")
    ui.wait_for(lambda: screen.busy_overlay.parent is not None, "the busy box")
    assert "正在核对密码…" in ui.texts()
    assert screen.busy_overlay.spinner.spinning
    ui.tap_text("1")  # under the box: it must not reach the keypad
    assert flow.keypad.count == 0
    flow.gate.set()
    ui.wait_for(lambda: flow.state is SampleState.DONE, "the job's result")
    ui.wait_for(lambda: screen.busy_overlay.parent is None, "the busy box to go")
    assert not screen.busy_overlay.spinner.spinning
    assert not [w for w in ui.visible_widgets() if isinstance(w, BusyOverlay)]


def test_a_notice_is_read_and_dismissed_by_touch(
    ui: KivyHarness, ctx: UiContext, worker: KivyWorker
) -> None:
    flow = SampleFlow(worker)
    flow.gate.set()
    screen = mount_sample(ui, ctx, flow)
    for digit in "000000":
        ui.tap_text(digit)
    ui.tap_text("确定")
    ui.wait_for(lambda: screen.notice_box.parent is not None, "the notice")
    assert "密码错误，请重新输入。" in ui.texts()
    assert "如需帮助，请联系服务台工作人员。" in ui.texts()  # call_staff
    ui.tap_text("确定")  # the frontmost 确定: the notice's, not the keypad's
    ui.wait_for(lambda: flow.notice is None, "the flow to drop the notice")
    ui.wait_for(lambda: screen.notice_box.parent is None, "the notice box to go")
    assert not [w for w in ui.visible_widgets() if isinstance(w, NoticeBox)]


def test_leaving_a_screen_unsubscribes_it(ui: KivyHarness, ctx: UiContext) -> None:
    first, second = SampleFlow(InlineWorker()), SampleFlow(InlineWorker())
    shell = KioskShell(ctx, {"a": SampleScreen, "b": SampleScreen})
    ui.mount(shell)
    screen_a = shell.show("a", first)
    ui.settle()
    shell.show("b", second)
    ui.wait_for(lambda: screen_a.flow is None, "screen a to let its flow go")
    renders = screen_a.renders
    first.set_title(Msg("Please choose a service"))
    ui.settle()
    assert screen_a.renders == renders
    assert first._status.listeners == []
