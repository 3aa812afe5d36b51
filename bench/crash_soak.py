"""Crash soak: deposit/pickup cycles against a real lockerd that is SIGKILLed at random points.

    .venv/bin/python bench/crash_soak.py [--cycles 5000] [--protocol 8a80|kerong] [--seed N]

The same driver as tests/locker/test_crash_safety.py (tests/locker/crash_driver.py), run long:
a real lockerd process on a real simulator process over a pty, a killer thread, a client that
recovers with the same request ids, and the invariants checked after every restart and at the
end. Progress goes to stderr; stdout gets one JSON line. Exit status 1 if any invariant broke.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures.processes import LockboardSimFactory, ManagedProcess, Spawner  # noqa: E402
from tests.locker.crash_driver import (  # noqa: E402
    BOARD_FOR,
    CrashDriver,
    LockerdFactory,
    SoakStats,
    bays_for,
)

CHANNELS = 8
PULL_AFTER_MS = 10
CLOSE_AFTER_MS = 110  # longer than one 100 ms door-watch poll, so lockerd sees the openings


class LatestOnly:
    """Starts processes like ``Spawner`` but keeps only the newest one: thousands of restarts."""

    def __init__(self) -> None:
        self.current: ManagedProcess | None = None

    def __call__(
        self, module: str, *args: str, env: Mapping[str, str] | None = None
    ) -> ManagedProcess:
        self.current = ManagedProcess([sys.executable, "-m", module, *args], env=env, cwd=REPO_ROOT)
        return self.current


def soak(args: argparse.Namespace, work_dir: Path) -> tuple[dict[str, Any], list[str]]:
    sim_spawner = Spawner()
    factory = LockerdFactory(LatestOnly(), work_dir)
    started = time.monotonic()
    try:
        sim = LockboardSimFactory(sim_spawner)(
            args.protocol, boards=(BOARD_FOR[args.protocol],), channels=CHANNELS, verbose=False
        )
        sim.control.set_auto_person(
            True, pull_after_ms=PULL_AFTER_MS, close_after_ms=CLOSE_AFTER_MS
        )
        runner = factory(sim, args.protocol, CHANNELS)

        def progress(stats: SoakStats) -> None:
            elapsed_s = time.monotonic() - started
            print(
                f"{stats.cycles}/{args.cycles} cycles, {stats.kills} kills, "
                f"{len(stats.violations)} violations, {elapsed_s:.0f} s",
                file=sys.stderr,
                flush=True,
            )

        driver = CrashDriver(
            runner,
            sim.control,
            bays_for(args.protocol, CHANNELS),
            rng=random.Random(args.seed),
            kill_probability=args.kill_probability,
            close_after_ms=CLOSE_AFTER_MS,
            progress=progress,
        )
        stats = driver.run(args.cycles)
        figures = {
            "bench": "crash_soak",
            "protocol": args.protocol,
            "seed": args.seed,
            **driver.figures(),
            "elapsed_s": round(time.monotonic() - started, 1),
        }
        return figures, stats.violations
    finally:
        factory.teardown()
        for process in sim_spawner.started:
            process.terminate()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=5000)
    parser.add_argument("--protocol", choices=sorted(BOARD_FOR), default="8a80")
    parser.add_argument("--seed", type=int, default=None, help="default: a random seed")
    parser.add_argument(
        "--kill-probability",
        type=float,
        default=0.3,
        help="share of cycles with a SIGKILL (default 0.3)",
    )
    args = parser.parse_args(argv)
    if args.cycles < 1 or not 0 <= args.kill_probability <= 1:
        parser.error("--cycles must be positive and --kill-probability within 0-1")
    if args.seed is None:
        args.seed = random.SystemRandom().getrandbits(32)
    with tempfile.TemporaryDirectory(prefix="crash-soak-") as work_dir:
        figures, violations = soak(args, Path(work_dir))
    for violation in violations[:50]:
        print(f"VIOLATION: {violation}", file=sys.stderr)
    print(json.dumps(figures, ensure_ascii=False))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
