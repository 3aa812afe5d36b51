"""Fixtures for a real ``lockerd`` process talking to a real simulator process over a pty.

``lockerd_factory(sim, protocol, channels)`` writes a site TOML in ``tmp_path``, starts
``python -m locker.daemon --config FILE``, waits for its ready line and returns a started
``LockerdRunner`` (``.client`` is a ``LockerClient``; ``.kill()`` SIGKILLs it, ``.start()`` or
``.restart_if_dead()`` brings it back on the same database). Everything is torn down at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.processes import Spawner
from tests.locker.crash_driver import LockerdFactory


@pytest.fixture
def lockerd_factory(spawn: Spawner, tmp_path: Path) -> Iterator[LockerdFactory]:
    factory = LockerdFactory(spawn, tmp_path)
    try:
        yield factory
    finally:
        factory.teardown()
