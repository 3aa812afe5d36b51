"""SIGKILL a real lockerd at random points of deposit/pickup cycles; nothing may be lost.

A real ``lockerd`` process drives a real simulator process over a pty. In about a third of the
cycles a killer thread SIGKILLs the daemon somewhere inside one phase (start, the person loading
the bay, confirm, pickup); the client restarts it and recovers with the same request ids. The
invariants (see ``crash_driver``) are checked after every restart and once more at the end,
against the audit API, the simulator's coil log and the database itself.

Set ``CRASH_SEED`` to replay a run; the seed is in every failure message.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from drivers.lockboard.settings import Protocol
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.crash_driver import (
    BOARD_FOR,
    CrashDriver,
    LockerdFactory,
    bays_for,
    describe_failure,
)

CHANNELS = 8
CYCLES_PER_PROTOCOL = 105
KILL_PROBABILITY = 0.3
# a quick person (the defaults are 150 ms / 800 ms): the door still stays open longer than one
# 100 ms door-watch poll, so lockerd sees most openings
PULL_AFTER_MS = 10
CLOSE_AFTER_MS = 110


@pytest.mark.slow
@pytest.mark.timeout(150)
@pytest.mark.parametrize("protocol", ["8a80", "kerong"])
def test_sigkill_at_random_points_loses_nothing_and_opens_nothing_twice(
    protocol: Protocol, lockboard_sim: LockboardSimFactory, lockerd_factory: LockerdFactory
) -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().getrandbits(32))
    sim = lockboard_sim(protocol, boards=(BOARD_FOR[protocol],), channels=CHANNELS, verbose=False)
    sim.control.set_auto_person(True, pull_after_ms=PULL_AFTER_MS, close_after_ms=CLOSE_AFTER_MS)
    runner = lockerd_factory(sim, protocol, CHANNELS)
    driver = CrashDriver(
        runner,
        sim.control,
        bays_for(protocol, CHANNELS),
        rng=random.Random(seed),
        kill_probability=KILL_PROBABILITY,
        close_after_ms=CLOSE_AFTER_MS,
    )

    try:
        stats = driver.run(CYCLES_PER_PROTOCOL)
    except Exception as exc:  # a stuck recovery: show the seed and what led there
        raise AssertionError(describe_failure(driver, seed)) from exc
    print(json.dumps({"protocol": protocol, "seed": seed, **driver.figures()}))

    assert stats.violations == [], describe_failure(driver, seed)
    assert stats.cycles == CYCLES_PER_PROTOCOL
    # the kills really happened, in more than one phase
    assert stats.kills >= CYCLES_PER_PROTOCOL * KILL_PROBABILITY / 3, describe_failure(driver, seed)
    assert len(stats.kills_by_plan) >= 2, describe_failure(driver, seed)
