"""The whole kiosk under touch: the assembled kiosk (embedded hall, simulated devices), the
session router and every journey's screen in the real window, driven by synthetic taps.

Jobs run on ``KivyWorker`` and device callbacks go through ``post_to_ui``, exactly as in the
app: their results reach the screen only when the test steps the Kivy loop.
"""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from hallkiosk.clock import ManualClock
from kiosk.assembly import Kiosk
from kiosk.flows.base import Msg
from kiosk.flows.home import JourneyKind
from kiosk.flows.ticket import TicketState
from kiosk.ui.context import UiContext
from tests.kiosk.ui.app_fixtures import (  # noqa: F401  (fixtures are found by name)
    COUNTDOWN_S,
    clock,
    kiosk,
    mount_app,
)
from tests.kiosk.ui.harness import KivyHarness


def test_a_ticket_by_touch_then_the_idle_timeout_wipes_the_screen(
    ui: KivyHarness, ctx: UiContext, kiosk: Kiosk, clock: ManualClock
) -> None:
    session = kiosk.session
    shell = mount_app(ui, ctx, kiosk)
    assert shell.manager.current == "home"
    ui.tap_text(ctx.text(next(t.title for t in session.tiles if t.id.value == "ticket")))
    ui.wait_for(lambda: str(getattr(session.journey, "state", "")) == "choose_area", "areas")
    flow = session.journey
    assert flow is not None
    ui.settle()
    assert shell.manager.current == "ticket"
    ui.tap_text(ctx.text(flow.view.areas[0].name))  # type: ignore[attr-defined]
    ui.wait_for(lambda: flow.state is TicketState.CHOOSE_TYPE, "ticket types")  # type: ignore[attr-defined]
    ui.settle()
    ui.tap_text(ctx.text(flow.view.types[0].text))  # type: ignore[attr-defined]
    ui.wait_for(lambda: flow.state is TicketState.IDENTIFY, "the card page")  # type: ignore[attr-defined]
    ui.settle()
    ui.tap_text(ctx.text(Msg("Continue without a card")))
    ui.wait_for(lambda: flow.state is TicketState.DONE and flow.busy is None, "the ticket")  # type: ignore[attr-defined]
    ui.settle()
    label = flow.view.ticket.label  # type: ignore[attr-defined]
    assert label in ui.texts()
    printed = kiosk.devices.printer.sim.items  # type: ignore[attr-defined]
    assert printed, "the simulated printer printed nothing"
    ui.screenshot("ticket-done")

    # nobody touches the screen: the countdown shows, then the session goes home and the
    # ticket number is gone from the window
    clock.advance(session_timeout_s(kiosk) - COUNTDOWN_S / 2)
    session.tick()
    ui.wait_for(lambda: shell.idle.shown, "the countdown")
    clock.advance(COUNTDOWN_S)
    session.tick()
    ui.wait_for(lambda: shell.manager.current == "home", "home after the timeout")
    ui.settle()
    assert session.active is JourneyKind.HOME
    assert label not in ui.texts()
    assert not shell.idle.shown


def session_timeout_s(kiosk: Kiosk) -> float:
    return kiosk.settings.kiosk.idle.normal_s
