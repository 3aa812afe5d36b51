"""One real Kivy window for the UI tests, on a private Xvfb; each test mounts its own widgets.

Kivy reads its environment once, at first import, so it is prepared here at import time,
before the test modules (which import kiosk.ui) are collected.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.ui.kivy_env import prepare_kivy_env
from tests.fixtures.xvfb import xvfb_display  # noqa: F401  (a fixture used below)

_KIVY_HOME = Path(tempfile.mkdtemp(prefix="hk-kivy-home-"))
prepare_kivy_env(_KIVY_HOME)

from kiosk.ui.context import UiContext, make_context  # noqa: E402
from kiosk.ui.settings import UiSettings  # noqa: E402
from tests.kiosk.ui.harness import KivyHarness, start_kivy, stop_kivy  # noqa: E402


@pytest.fixture(scope="session")
def ui_settings() -> UiSettings:
    return UiSettings()


@pytest.fixture(scope="session")
def kivy_window(
    xvfb_display: str,  # noqa: F811
    ui_settings: UiSettings,
    pytestconfig: pytest.Config,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KivyHarness]:
    # the extracted font face is kept in pytest's cache between runs when there is one
    cache = getattr(pytestconfig, "cache", None)
    fonts = cache.mkdir("hallkiosk-fonts") if cache else tmp_path_factory.mktemp("fonts")
    harness = start_kivy(ui_settings, fonts)
    try:
        yield harness
    finally:
        stop_kivy(harness)
        shutil.rmtree(_KIVY_HOME, ignore_errors=True)


@pytest.fixture
def ui(kivy_window: KivyHarness, request: pytest.FixtureRequest) -> Iterator[KivyHarness]:
    """The session's window, empty, with screenshots named after the test."""
    kivy_window.prefix = f"{request.module.__name__.rsplit('.', 1)[-1]}__{request.node.name}"
    try:
        yield kivy_window
    finally:
        kivy_window.unmount_all()
        kivy_window.prefix = ""


@pytest.fixture
def ctx(ui_settings: UiSettings) -> UiContext:
    return make_context(ui_settings)
