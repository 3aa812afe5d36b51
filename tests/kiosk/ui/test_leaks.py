"""Re-rendering replaces widgets; the replaced ones must not live on (a kiosk runs for months,
and every widget is bound to the context for language and mode changes)."""

from __future__ import annotations

import gc

from kiosk.flows.base import InlineWorker
from kiosk.ui.context import UiContext
from kiosk.ui.demo import DemoHome, DemoPinFlow, demo_screens
from kiosk.ui.shell import KioskShell
from kiosk.ui.widgets import BigTile, Keypad
from tests.kiosk.ui.harness import KivyHarness

SWITCHES = 6


def alive(kind: type) -> int:
    gc.collect()
    # type(), not isinstance: a dead weak proxy raises on isinstance
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), kind))


def test_rebuilt_tiles_are_freed(ui: KivyHarness, ctx: UiContext) -> None:
    shell = KioskShell(ctx, demo_screens())
    ui.mount(shell)
    shell.show("home", DemoHome(lambda _tile: None))
    ui.settle()
    shown = len([w for w in ui.visible_widgets() if isinstance(w, BigTile)])
    assert shown == 5
    for n in range(SWITCHES):
        ctx.set_language("en" if n % 2 == 0 else "zh")
        ctx.set_elderly(n % 3 == 0)
        ui.settle()
    assert alive(BigTile) == shown


def test_a_keypad_per_journey_is_freed_with_its_journey(ui: KivyHarness, ctx: UiContext) -> None:
    shell = KioskShell(ctx, demo_screens())
    ui.mount(shell)
    for _ in range(SWITCHES):
        shell.show("pin", DemoPinFlow(InlineWorker(), lambda: None))
        ui.settle()
        shell.show("home", DemoHome(lambda _tile: None))
        ui.settle()
    assert alive(Keypad) == 1  # the last journey's, kept by the (cached) screen
