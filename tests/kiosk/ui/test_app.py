"""Periodic work on the Kivy Clock (the session's tick, the watchdog ping), and the real
``KioskApp.run()`` in its own process under the same Xvfb."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.ui.context import UiContext
from kiosk.ui.shell import KioskShell
from kiosk.watchdog import SdNotifier
from tests.fixtures.processes import Spawner
from tests.kiosk.ui.harness import KivyHarness

PING_INTERVAL_S = 0.02
APP_TIMEOUT_S = 30.0


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    try:
        yield str(path), sock
    finally:
        sock.close()


def received(sock: socket.socket) -> list[bytes]:
    messages: list[bytes] = []
    while True:
        try:
            messages.append(sock.recv(4096))
        except BlockingIOError:
            return messages


def test_every_runs_on_the_main_thread_until_cancelled(ui: KivyHarness, ctx: UiContext) -> None:
    shell = KioskShell(ctx, {})
    ui.mount(shell)
    ticks: list[int | None] = []
    cancel = shell.every(PING_INTERVAL_S, lambda: ticks.append(threading.get_ident()))
    ui.wait_for(lambda: len(ticks) >= 3, "three ticks")
    assert set(ticks) == {threading.main_thread().ident}
    cancel()
    after_cancel = len(ticks)
    marker: list[int] = []
    shell.every(PING_INTERVAL_S, lambda: marker.append(1))
    ui.wait_for(lambda: len(marker) >= 3, "the Clock to run three more intervals")
    assert len(ticks) == after_cancel


def test_watchdog_pings_come_from_the_ui_clock_only(
    ui: KivyHarness, ctx: UiContext, systemd: tuple[str, socket.socket]
) -> None:
    address, sock = systemd
    notifier = SdNotifier(address)
    shell = KioskShell(ctx, {})
    ui.mount(shell)
    shell.every(PING_INTERVAL_S, notifier.ping)
    pings: list[bytes] = []
    ui.wait_for(lambda: pings.extend(received(sock)) or len(pings) >= 3, "pings while frames run")
    assert set(pings) == {b"WATCHDOG=1"}
    # A UI that stops running frames (frozen) sends nothing: wait a good many intervals
    # without stepping. A negative can only be checked within a bounded wait.
    readable, _, _ = select.select([sock], [], [], 10 * PING_INTERVAL_S)
    assert not readable
    ui.step()
    ui.wait_for(lambda: received(sock), "a ping once frames run again")
    notifier.close()


class Systemd(threading.Thread):
    """Reads notify datagrams as they come, as systemd does (an unread socket fills up)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.address = str(path)
        self.messages: list[bytes] = []
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.messages.append(self.sock.recv(4096))
            except TimeoutError:
                continue

    def stop(self) -> None:
        self.running = False
        self.join()
        self.sock.close()


def test_the_real_app_starts_walks_and_tells_systemd(
    kivy_window: KivyHarness, spawn: Spawner, tmp_path: Path
) -> None:
    """``python -m kiosk.ui.bench_target kiosk``: KioskApp.run() with the demo router, on the
    session's Xvfb display, with $NOTIFY_SOCKET and $WATCHDOG_USEC as systemd sets them."""
    systemd = Systemd(tmp_path / "notify")
    systemd.start()
    try:
        app = spawn(
            "kiosk.ui.bench_target",
            "kiosk",
            "--rounds",
            "1",
            env={"NOTIFY_SOCKET": systemd.address, "WATCHDOG_USEC": "100000"},
        )
        lines = [app.read_line(timeout_s=APP_TIMEOUT_S)]
        while not lines[-1].startswith("RSS_KB"):
            lines.append(app.read_line(timeout_s=APP_TIMEOUT_S))
        assert lines[0] == "FIRST_FRAME"
        assert any(line.startswith("TRANSITION_MS") for line in lines)
        assert app.wait(timeout_s=APP_TIMEOUT_S) == 0
    finally:
        systemd.stop()
    assert b"READY=1" in systemd.messages
    assert b"WATCHDOG=1" in systemd.messages
    assert systemd.messages[-1] == b"STOPPING=1"
    assert systemd.messages.count(b"STOPPING=1") == 1
