"""Every screen of the UI layer, drawn in Chinese, English and elderly mode: a screenshot of
each goes to the artefacts folder, and no text may overflow its box."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image, ImageChops

from kiosk.flows.base import InlineWorker, Msg, Notice
from kiosk.ui.context import UiContext
from kiosk.ui.demo import DemoHome, DemoPinFlow, demo_screens
from kiosk.ui.shell import KioskShell
from tests.kiosk.ui.harness import KivyHarness, ModeShot
from tests.kiosk.ui.samples import SampleFlow, SampleScreen


def shell_showing(ctx: UiContext, name: str, flow: object) -> Callable[[], KioskShell]:
    def build() -> KioskShell:
        shell = KioskShell(ctx, {**demo_screens(), "sample": SampleScreen})
        shell.show(name, flow)  # type: ignore[arg-type]
        shell.idle.show(9, 15)
        return shell

    return build


def busy_flow() -> SampleFlow:
    flow = SampleFlow(InlineWorker())
    flow._status.busy = Msg("Checking the password…")  # frozen mid-job for the picture
    return flow


def notice_flow() -> SampleFlow:
    flow = SampleFlow(InlineWorker())
    flow._notify(Notice(Msg("The password is wrong. Please try again."), call_staff=True))
    return flow


SCREENS: dict[str, tuple[str, Callable[[], object]]] = {
    "home": ("home", lambda: DemoHome(lambda _tile: None)),
    "out_of_service": ("out_of_service", lambda: DemoHome(lambda _tile: None)),
    "pin": ("pin", lambda: DemoPinFlow(InlineWorker(), lambda: None)),
    "busy": ("sample", busy_flow),
    "notice": ("sample", notice_flow),
}


def differ(first: ModeShot, second: ModeShot) -> bool:
    with Image.open(first.path) as a, Image.open(second.path) as b:
        return ImageChops.difference(a, b).getbbox() is not None


@pytest.mark.parametrize("case", list(SCREENS))
def test_screen_in_every_mode(ui: KivyHarness, ctx: UiContext, case: str) -> None:
    name, make_flow = SCREENS[case]
    shots = ui.render_modes(ctx, case, shell_showing(ctx, name, make_flow()))

    assert [s.mode for s in shots] == ["zh", "en", "elderly"]
    for shot in shots:
        assert shot.path.is_file()
        assert not shot.overflows, f"{case} ({shot.mode}): " + "; ".join(
            str(o) for o in shot.overflows
        )
    zh, en, elderly = shots
    with Image.open(zh.path) as image:
        assert image.size == (1080, 1920)
    assert differ(zh, en), "switching to English changed nothing on screen"
    assert differ(zh, elderly), "elderly mode changed nothing on screen"
