"""The assembled kiosk in the test window: what tests/kiosk/ui/test_app_journeys*.py share.

``kiosk`` is the kiosk as ``python -m kiosk`` assembles it from a site file (embedded hall,
simulated devices from the packaged defaults, jobs on ``KivyWorker``, device callbacks through
``post_to_ui``), on a ManualClock; ``mount_app`` puts the shell with every screen and the
session router on the window, wired as kiosk/app.py wires them. Import the fixtures by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hallkiosk.clock import ManualClock
from kiosk.app import all_screens, post_to_ui
from kiosk.assembly import Kiosk, assemble
from kiosk.i18n import Language, Translations
from kiosk.settings import load_kiosk_settings
from kiosk.ui.context import UiContext
from kiosk.ui.router import SessionRouter
from kiosk.ui.shell import KioskShell
from kiosk.ui.worker import KivyWorker
from tests.hall.helpers import local
from tests.kiosk.ui.harness import KivyHarness

COUNTDOWN_S = 15.0
START = local(2026, 11, 23, 9, 0)  # a Monday morning, inside every quota window


def write_site(directory: Path, extra: str = "") -> Path:
    """The kiosk's site file: kiosk-01 with its offline range, data under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\ndata_dir = {json.dumps(str(directory))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n" + extra
    )
    return site


@contextmanager
def assembled(site: Path, clock: ManualClock) -> Iterator[Kiosk]:
    """The kiosk from ``site``, started (card watch, scanner, lockerd events, health), with
    the UI's catalogs as the session's translator (its voice prompts), as the app has it."""
    worker = KivyWorker()
    translations = Translations.load()
    made = assemble(
        load_kiosk_settings([site]),
        worker,
        post_to_ui,
        clock=clock,
        translate=lambda text, lang: translations[Language.parse(lang)].text(text),
    )
    made.start()
    try:
        yield made
    finally:
        made.close()
        worker.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def kiosk(tmp_path: Path, clock: ManualClock) -> Iterator[Kiosk]:
    with assembled(write_site(tmp_path), clock) as made:
        yield made


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
