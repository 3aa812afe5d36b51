"""The kiosk's start-up in two steps (kiosk/app.py ``KioskStart``): the home page first, the
journeys, drivers and embedded hall on the next frame. Driven on a shell in the real test
window; the app around it (``build_app``, READY=1, the exit on failure) runs as a process in
``test_the_kiosk_process_*`` below."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from hallkiosk.config import ConfigError
from kiosk.app import KioskStart, session_screens
from kiosk.flows.tiles import JourneyKind, TileId
from kiosk.i18n import Language, Translations
from kiosk.settings import KioskSettings, load_kiosk_settings
from kiosk.start_settings import StartSettings
from kiosk.ui.context import UiContext
from kiosk.ui.shell import KioskShell
from kiosk.ui.starting import StartFailed, StartingHome
from kiosk.ui.worker import KivyWorker
from tests.fixtures.processes import Spawner
from tests.kiosk.ui.harness import KivyHarness
from tests.kiosk.ui.test_app import Systemd

APP_TIMEOUT_S = 60.0


def site_settings(
    data_dir: Path, *, locker_socket: Path | None = None, ui: str = ""
) -> KioskSettings:
    site = data_dir / "site.toml"
    locker = (
        f"[kiosk.locker]\nenabled = true\nsocket_path = {json.dumps(str(locker_socket))}\n"
        if locker_socket
        else ""
    )
    site.write_text(
        "schema_version = 1\n"
        f"[site]\ndata_dir = {json.dumps(str(data_dir))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n" + locker + ui
    )
    return load_kiosk_settings([site])


@pytest.fixture
def worker() -> Iterator[KivyWorker]:
    made = KivyWorker()
    yield made
    made.close()


def mounted(ui: KivyHarness, ctx: UiContext, start: KioskStart) -> KioskShell:
    hooks = start.hooks()
    shell = KioskShell(
        ctx,
        session_screens(),
        on_language=hooks.on_language,
        on_elderly=hooks.on_elderly,
        on_more_time=hooks.on_more_time,
        on_touch=hooks.on_touch,
    )
    ui.mount(shell)
    start.show_starting(shell)
    ui.settle()
    return shell


def test_a_tile_touched_while_starting_opens_its_journey_once_assembled(
    ui: KivyHarness, ctx: UiContext, tmp_path: Path, worker: KivyWorker
) -> None:
    start = KioskStart(site_settings(tmp_path), worker, Translations.load())
    shell = mounted(ui, ctx, start)
    try:
        assert shell.manager.current == "home"
        assert isinstance(shell.current.flow, StartingHome)  # type: ignore[union-attr]
        ui.screenshot("starting-home")
        ui.tap_text(ctx.text(start.starting.tiles[0].title))  # the first tile: a ticket
        ui.tap_text("English")  # and the language, before anything is assembled
        ui.settle()
        assert start.kiosk is None and start.starting.tile is TileId.TICKET
        assert ctx.lang is Language.EN  # the header answers at once

        assert start.assemble()
        kiosk = start.kiosk
        assert kiosk is not None
        ui.wait_for(lambda: shell.manager.current == "ticket", "the ticket journey")
        assert kiosk.session.active is JourneyKind.TICKET
        assert kiosk.session.language == "en"
        assert start.starting.tile is None  # handed over once
        ui.settle()
        ui.screenshot("started-ticket")
    finally:
        start.close()


def test_the_starting_home_offers_what_the_session_offers(
    ui: KivyHarness, ctx: UiContext, tmp_path: Path, worker: KivyWorker
) -> None:
    """The same tiles, in the same order, before and after (no locker: no pickup tile)."""
    start = KioskStart(site_settings(tmp_path), worker, Translations.load())
    shell = mounted(ui, ctx, start)
    try:
        before = [(tile.id, tile.title) for tile in start.starting.tiles]
        texts_before = sorted(ui.texts())
        assert start.assemble()
        assert start.kiosk is not None
        after = [(tile.id, tile.title) for tile in start.kiosk.session.tiles]
        assert before == after
        assert TileId.PICKUP not in [tile_id for tile_id, _ in before]
        ui.wait_for(lambda: shell.current.flow is start.kiosk.session, "the session on screen")  # type: ignore[union-attr]
        ui.settle()
        assert sorted(ui.texts()) == texts_before  # the page does not change under a finger
    finally:
        start.close()


def test_with_a_locker_the_pickup_tile_is_there_from_the_first_frame(
    ui: KivyHarness, ctx: UiContext, tmp_path: Path, worker: KivyWorker
) -> None:
    start = KioskStart(
        site_settings(tmp_path, locker_socket=tmp_path / "lockerd.sock"),
        worker,
        Translations.load(),
    )
    mounted(ui, ctx, start)
    try:
        assert TileId.PICKUP in [tile.id for tile in start.starting.tiles]
        assert start.assemble()
        assert start.kiosk is not None
        assert [t.id for t in start.starting.tiles] == [t.id for t in start.kiosk.session.tiles]
    finally:
        start.close()


def test_a_kiosk_that_cannot_be_assembled_says_so_in_plain_words(
    ui: KivyHarness, ctx: UiContext, tmp_path: Path, worker: KivyWorker
) -> None:
    settings = site_settings(tmp_path)
    settings.db_path.mkdir(parents=True)  # kiosk.db is a folder: the store cannot open it
    start = KioskStart(settings, worker, Translations.load())
    shell = mounted(ui, ctx, start)
    ui.tap_text(ctx.text(start.starting.tiles[0].title))
    assert not start.assemble()
    assert start.failed is not None and start.kiosk is None
    ui.settle()
    assert shell.manager.current == "out_of_service"
    assert ctx.text(StartFailed.out_of_service_reason) in ui.texts()
    assert ctx.text(StartFailed.where_instead) in ui.texts()
    ui.screenshot("start-failed")


def test_a_problem_found_after_the_first_frame_shows_the_failure_page(
    ui: KivyHarness, ctx: UiContext, tmp_path: Path, worker: KivyWorker
) -> None:
    """Only the first frame's part of the configuration is checked before the window
    (kiosk/start_settings.py); a problem in the rest is found while assembling."""
    site_settings(tmp_path)
    site = tmp_path / "site.toml"
    site.write_text(site.read_text() + "[kiosk.printer]\nbogus = 1\n")
    start = KioskStart(StartSettings.load([site]), worker, Translations.load())
    shell = mounted(ui, ctx, start)
    assert shell.manager.current == "home"  # the window opened on the first frame's part
    assert not start.assemble()
    assert isinstance(start.failed, ConfigError)
    assert f"{site}: kiosk.printer.bogus: unknown key" in start.failed.problems
    ui.settle()
    assert shell.manager.current == "out_of_service"
    assert ctx.text(StartFailed.out_of_service_reason) in ui.texts()


def test_the_kiosk_process_says_ready_only_once_assembled(
    kivy_window: KivyHarness, spawn: Spawner, tmp_path: Path
) -> None:
    """``python -m kiosk.ui.bench_target app``: the real app; READY=1 comes after the first
    frame, when the session is up, never before."""
    systemd = Systemd(tmp_path / "notify")
    systemd.start()
    try:
        app = spawn(
            "kiosk.ui.bench_target",
            "app",
            "--rounds",
            "1",
            env={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "5000000"},
        )
        assert app.read_line(timeout_s=APP_TIMEOUT_S) == "FIRST_FRAME"
        assert b"READY=1" not in systemd.messages  # the first frame is not READY
        assert app.read_line(timeout_s=APP_TIMEOUT_S) == "READY"
        line = app.read_line(timeout_s=APP_TIMEOUT_S)
        while not line.startswith("RSS_KB"):
            line = app.read_line(timeout_s=APP_TIMEOUT_S)
        assert app.wait(timeout_s=APP_TIMEOUT_S) == 0
    finally:
        systemd.stop()
    assert systemd.messages.count(b"READY=1") == 1
    assert systemd.messages[-1] == b"STOPPING=1"


def test_the_kiosk_process_exits_with_1_when_it_cannot_start(
    kivy_window: KivyHarness, spawn: Spawner, tmp_path: Path
) -> None:
    """``python -m kiosk --config site.toml`` on a data folder whose kiosk.db is a folder:
    the failure page, then exit status 1 (kiosk.service restarts it); never READY=1."""
    settings = site_settings(tmp_path, ui="[kiosk.ui]\nstart_failed_exit_s = 0.5\n")
    settings.db_path.mkdir(parents=True)
    systemd = Systemd(tmp_path / "notify")
    systemd.start()
    try:
        app = spawn(
            "kiosk",
            "--config",
            str(tmp_path / "site.toml"),
            env={"NOTIFY_SOCKET": systemd.address},
        )
        assert app.wait(timeout_s=APP_TIMEOUT_S) == 1
    finally:
        systemd.stop()
    assert b"READY=1" not in systemd.messages
    assert "could not be assembled" in app.describe()


def test_the_kiosk_process_refuses_a_bad_window_setting_before_opening_one(
    spawn: Spawner, tmp_path: Path
) -> None:
    """A bad ``[kiosk.ui]`` value: every problem on stderr, exit 2, no window (as lockerd)."""
    site_settings(tmp_path)
    site = tmp_path / "site.toml"
    site.write_text(site.read_text() + "[kiosk.ui]\nwindow_width_px = 100\n")
    systemd = Systemd(tmp_path / "notify")
    systemd.start()
    try:
        app = spawn("kiosk", "--config", str(site), env={"NOTIFY_SOCKET": systemd.address})
        assert app.wait(timeout_s=APP_TIMEOUT_S) == 2
    finally:
        systemd.stop()
    assert systemd.messages == []
    assert f"{site}: kiosk.ui.window_width_px: Input should be greater than" in app.describe()


def test_the_kiosk_process_exits_with_1_on_a_problem_found_while_assembling(
    kivy_window: KivyHarness, spawn: Spawner, tmp_path: Path
) -> None:
    """A bad key outside the first frame's part: the window opens, the assembly finds it, the
    failure page, exit 1 with the problem in the log; ``--check-config`` finds it too."""
    site_settings(tmp_path, ui="[kiosk.ui]\nstart_failed_exit_s = 0.5\n")
    site = tmp_path / "site.toml"
    site.write_text(site.read_text() + "[kiosk.printer]\nbogus = 1\n")
    problem = f"{site}: kiosk.printer.bogus: unknown key"
    check = spawn("kiosk", "--check-config", "--config", str(site))
    assert check.wait(timeout_s=APP_TIMEOUT_S) == 2
    assert problem in check.describe()
    systemd = Systemd(tmp_path / "notify")
    systemd.start()
    try:
        app = spawn("kiosk", "--config", str(site), env={"NOTIFY_SOCKET": systemd.address})
        assert app.wait(timeout_s=APP_TIMEOUT_S) == 1
    finally:
        systemd.stop()
    assert b"READY=1" not in systemd.messages
    assert "could not be assembled" in app.describe()
    assert problem in app.describe()
