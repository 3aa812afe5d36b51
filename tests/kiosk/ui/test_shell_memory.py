"""Coming back to the home page after a journey frees what the journey left in memory, once the
home page is drawn: a full garbage collection, and the C heap's free pages back to the system."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from kiosk.flows.base import InlineWorker
from kiosk.ui.context import UiContext
from kiosk.ui.demo import DemoHome, DemoPinFlow, demo_screens
from kiosk.ui.shell import KioskShell, release_memory
from tests.kiosk.ui.harness import KivyHarness

GLIBC = platform.libc_ver()[0] == "glibc"
BLOCK = 64 * 1024  # above Python's small-object limit and below malloc's mmap threshold
BLOCKS = 800  # 50 MiB
MIB = 1024 * 1024


def rss_bytes() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def shell_at_home(ui: KivyHarness, ctx: UiContext) -> tuple[KioskShell, DemoHome]:
    shell = KioskShell(ctx, demo_screens())
    home = DemoHome(lambda _tile: None)
    ui.mount(shell)
    shell.show("home", home)
    ui.settle()
    return shell, home


def test_home_after_a_journey_releases_memory_once_drawn(ui: KivyHarness, ctx: UiContext) -> None:
    shell, home = shell_at_home(ui, ctx)
    assert shell.releases == 0  # the first page: nothing to release
    shell.show("pin", DemoPinFlow(InlineWorker(), lambda: None))
    ui.settle()
    assert shell.releases == 0  # into a journey: no
    shell.show("home", home)
    assert shell.releases == 0  # not before the home page is drawn
    ui.wait_for(lambda: shell.releases == 1, "the release after the journey")
    shell.show("home", home)  # the home page again (a language switch, a new session)
    ui.settle()
    assert shell.releases == 1


def test_no_release_when_the_next_journey_started_first(ui: KivyHarness, ctx: UiContext) -> None:
    shell, home = shell_at_home(ui, ctx)
    shell.show("pin", DemoPinFlow(InlineWorker(), lambda: None))
    ui.settle()
    shell.show("home", home)
    shell.show("pin", DemoPinFlow(InlineWorker(), lambda: None))  # a tile, in the same frame
    ui.settle()
    assert shell.releases == 0


def test_a_stopped_shell_releases_nothing(ui: KivyHarness, ctx: UiContext) -> None:
    shell, home = shell_at_home(ui, ctx)
    shell.show("pin", DemoPinFlow(InlineWorker(), lambda: None))
    ui.settle()
    shell.show("home", home)
    shell.stop()
    ui.settle()
    assert shell.releases == 0


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_release_memory_returns_the_freed_heap_to_the_system() -> None:
    blocks, pins = [], []
    for n in range(BLOCKS):
        blocks.append(bytes([n % 251]) * BLOCK)  # written: resident
        pins.append(bytes([n % 241]) * 1024)  # keeps each freed block from joining the top
    del blocks
    freed = rss_bytes()
    assert release_memory()
    # without the trim glibc keeps the freed blocks (between the pins) as they are
    assert freed - rss_bytes() > BLOCKS * BLOCK // 2, (freed - rss_bytes()) / MIB
    del pins
