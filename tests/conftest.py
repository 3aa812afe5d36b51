"""Shared fixtures live in tests/fixtures/ and are loaded here as plugins."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.ui.kivy_env import prepare_kivy_env

# Kivy reads its environment at first import, and parses argv unless told not to: prepare it
# before any test module can import kivy (tests/kiosk/ui/conftest.py keeps its own KIVY_HOME)
prepare_kivy_env(Path(tempfile.gettempdir()) / "hk-kivy-tests")

pytest_plugins = [
    "tests.fixtures.ptys",
    "tests.fixtures.processes",
    "tests.fixtures.mosquitto",
    "tests.fixtures.pcscd",
]


# Threads that poll hardware by path. One that outlives its test keeps reopening a /dev/pts number
# the next test's simulator may be given, and breaks that test instead of this one.
_HARDWARE_THREAD_PREFIXES = ("lockerd-loop", "lockbus-")


@pytest.fixture(autouse=True)
def _no_hardware_thread_outlives_its_test() -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 5.0
    started = [
        t
        for t in threading.enumerate()
        if t.ident not in before and t.name.startswith(_HARDWARE_THREAD_PREFIXES)
    ]
    for thread in started:  # a stopping thread gets the rest of the 5 s to end
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    left = [t.name for t in started if t.is_alive()]
    assert not left, f"threads left running by this test: {left}"
