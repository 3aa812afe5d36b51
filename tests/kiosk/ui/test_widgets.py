"""The shell and its widgets under synthetic touches: language and elderly switches, the idle
countdown, the keypad."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kiosk.ui.context import UiContext
from kiosk.ui.demo import DemoHome, TileId
from kiosk.ui.screens.home import HomeScreen
from kiosk.ui.shell import KioskShell
from kiosk.ui.widgets import BigTile
from kiosk.ui.worker import KivyWorker
from tests.kiosk.ui.harness import KivyHarness
from tests.kiosk.ui.samples import SampleFlow, SampleScreen, SampleState


@pytest.fixture
def worker() -> Iterator[KivyWorker]:
    worker = KivyWorker()
    try:
        yield worker
    finally:
        worker.close()


@pytest.fixture
def home_shell(ui: KivyHarness, ctx: UiContext) -> tuple[KioskShell, list[TileId], list[int]]:
    started: list[TileId] = []
    more_time: list[int] = []
    shell = KioskShell(ctx, {"home": HomeScreen}, on_more_time=lambda: more_time.append(1))
    ui.mount(shell)
    shell.show("home", DemoHome(started.append))
    ui.settle()
    return shell, started, more_time


def tiles(ui: KivyHarness) -> list[BigTile]:
    return [w for w in ui.visible_widgets() if isinstance(w, BigTile)]


def test_home_is_chinese_by_default_and_a_tile_tap_reaches_the_session(
    ui: KivyHarness, home_shell: tuple[KioskShell, list[TileId], list[int]]
) -> None:
    _shell, started, _ = home_shell
    assert "请选择办理的业务" in ui.texts()
    ui.tap_text("自助取件")
    assert started == [TileId.PICKUP]


def test_language_switch_re_renders_every_text(
    ui: KivyHarness, home_shell: tuple[KioskShell, list[TileId], list[int]]
) -> None:
    shell, started, _ = home_shell
    screen = shell.current
    assert screen is not None
    renders = screen.renders
    ui.tap_text("English")
    assert "Please choose a service" in ui.texts()
    assert "Take a queue ticket" in ui.texts()
    assert "取号" not in ui.texts()
    assert screen.renders > renders
    ui.tap_text("Collect a certificate")  # the English tile still reaches the session
    assert started == [TileId.PICKUP]
    ui.tap_text("中文")
    assert "取号" in ui.texts()


def test_elderly_mode_draws_bigger_type_and_tiles_one_per_row(
    ui: KivyHarness, home_shell: tuple[KioskShell, list[TileId], list[int]]
) -> None:
    before = {t.text: (t.font_size, t.height, t.x) for t in tiles(ui)}
    assert len({x for _, _, x in before.values()}) == 2  # two columns
    ui.tap_text("大字版")
    after = {t.text: (t.font_size, t.height, t.x) for t in tiles(ui)}
    assert after.keys() == before.keys()
    for text, (font, height, _x) in after.items():
        assert font > before[text][0], text
        assert height > before[text][1], text
    assert len({x for _, _, x in after.values()}) == 1  # one column
    ui.tap_text("标准版")
    assert {t.text: t.font_size for t in tiles(ui)} == {k: v[0] for k, v in before.items()}


def test_idle_countdown_shows_seconds_and_more_time_is_a_touch_away(
    ui: KivyHarness, home_shell: tuple[KioskShell, list[TileId], list[int]]
) -> None:
    shell, _, more_time = home_shell
    assert "延长时间" not in ui.texts()  # hidden while no countdown runs
    shell.idle.show(12.2, 15)
    ui.settle()
    assert "13秒后返回首页" in ui.texts()
    ui.tap_text("延长时间")
    assert more_time == [1]


def test_a_hidden_countdown_takes_no_touch(
    ui: KivyHarness, home_shell: tuple[KioskShell, list[TileId], list[int]]
) -> None:
    shell, _, more_time = home_shell
    shell.idle.show(5, 15)
    ui.settle()
    button = ui.find_text("延长时间")
    where = button.to_window(*button.center)
    shell.idle.hide()
    ui.settle()
    ui.tap_at(*where)
    assert more_time == []


def test_keypad_entry_by_touches_reaches_the_flow_masked(
    ui: KivyHarness, ctx: UiContext, worker: KivyWorker
) -> None:
    flow = SampleFlow(worker)
    shell = KioskShell(ctx, {"sample": SampleScreen})
    ui.mount(shell)
    shell.show("sample", flow)
    ui.settle()
    confirm = ui.find_text("确定")
    assert confirm.disabled
    for digit in "12345":
        ui.tap_text(digit)
    ui.tap_text("删除")
    ui.tap_text("9")
    ui.tap_text("6")
    assert ui.find_text("●●●●●●")
    assert "123496" not in " ".join(ui.texts())  # a secret never shows
    assert not confirm.disabled
    ui.tap(confirm)
    flow.gate.set()
    ui.wait_for(lambda: flow.checked, "the job to check the code")
    assert flow.checked == ["123496"]
    ui.wait_for(lambda: flow.notice is not None, "the wrong-code notice")
    assert flow.state is SampleState.ENTERING


def test_every_touch_is_reported_so_the_idle_timer_restarts(
    ui: KivyHarness, ctx: UiContext
) -> None:
    touches: list[int] = []
    shell = KioskShell(ctx, {"home": HomeScreen}, on_touch=lambda: touches.append(1))
    ui.mount(shell)
    shell.show("home", DemoHome(lambda _tile: None))
    ui.settle()
    ui.tap_at(ui.window.width / 2, ui.window.height / 3)  # an empty part of the page
    ui.tap_text("English")
    assert touches == [1, 1]
