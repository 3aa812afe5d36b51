"""The whole kiosk under touch: the assembled kiosk (embedded hall, simulated devices), the
session router and every journey's screen in the real window, driven by synthetic taps.

Jobs run on ``KivyWorker`` and device callbacks go through ``post_to_ui``, exactly as in the
app: their results reach the screen only when the test steps the Kivy loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hallkiosk.clock import ManualClock
from kiosk.app import all_screens, post_to_ui
from kiosk.assembly import Kiosk, assemble
from kiosk.flows.home import JourneyKind
from kiosk.flows.ticket import TicketState
from kiosk.i18n import Language
from kiosk.settings import load_kiosk_settings
from kiosk.ui.context import UiContext
from kiosk.ui.router import SessionRouter
from kiosk.ui.shell import KioskShell
from kiosk.ui.worker import KivyWorker
from tests.hall.helpers import local
from tests.kiosk.ui.harness import KivyHarness

COUNTDOWN_S = 15.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 0))


@pytest.fixture
def kiosk(tmp_path: Path, clock: ManualClock) -> Iterator[Kiosk]:
    site = tmp_path / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\ndata_dir = {json.dumps(str(tmp_path))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n"
    )
    worker = KivyWorker()
    made = assemble(load_kiosk_settings([site]), worker, post_to_ui, clock=clock)
    made.start()
    try:
        yield made
    finally:
        made.close()
        worker.close()


def mount_app(ui: KivyHarness, ctx: UiContext, kiosk: Kiosk) -> KioskShell:
    session = kiosk.session
    shell = KioskShell(
        ctx,
        all_screens(),
        on_language=lambda lang: session.set_language("en" if lang is Language.EN else "zh"),
        on_elderly=session.set_elderly,
        on_more_time=session.more_time,
        on_touch=session.touched,
    )
    router = SessionRouter(shell, session, COUNTDOWN_S)
    shell.router = router  # kept alive with the shell: the Clock holds its trigger weakly
    router.start()
    ui.mount(shell)
    ui.settle()
    return shell


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
    ui.tap_text(ctx.text(_msg("Continue without a card")))
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


def _msg(text: str) -> object:
    from kiosk.flows.base import Msg

    return Msg(text)
