"""Pickup latency against its floor, on a real lockerd process and a real simulator on a pty.

    .venv/bin/python bench/pickup_latency.py [--pickups 1000] [--production-pickups 50]

Timed: one ``pickup`` call through lockerd's API socket until its reply with ``opened: true``
(lockerd answers once the board's reply confirms the latch open): intent commit (fsync), unlock
frame on the pty, board reply, outcome commit. Deposits are prepared (start, the simulated person
loads and shuts the door, confirm) outside the timed part.

Floor, measured in the same run and interleaved with the pickups: a bare pyserial write+read of
a 5-byte 8A/80 open frame against a second simulator process of the same kind, plus one SQLite
commit (WAL, synchronous=FULL, one-row insert) in lockerd's data directory.

The timed pickups run with ``scrypt_n = 2`` so the ratio measures transport and durability, not
the deliberately slow password hash; a smaller sample with the production cost (2**14) follows.
Each pickup is also split into stages from lockerd's audit timestamps and the simulator's coil
log (same machine, so one clock), to show where time goes. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import serial  # noqa: E402

from tests.fixtures import wait_until  # noqa: E402
from tests.fixtures.processes import LockboardSimFactory, SimHandle, Spawner  # noqa: E402
from tests.locker.crash_driver import (  # noqa: E402
    MASKED_NAME,
    STAFF_ID,
    Bay,
    LockerdFactory,
    LockerdRunner,
    bays_for,
)

PROTOCOL: Final = "8a80"
BOARD = 1
CHANNELS = 24
CHEAPEST_SCRYPT_N = 2
PRODUCTION_SCRYPT_N = 2**14
# the person opens 10 ms after the unlock and keeps the door open 400 ms: long enough for the
# door watch (250 ms default poll) to see it, as it sees every real person's door
PULL_AFTER_MS = 10
CLOSE_AFTER_MS = 400
DOOR_TIMEOUT_S = 10.0
POLL_S = 0.002


@dataclass(frozen=True)
class Ready:
    """A stored deposit, waiting for its pickup."""

    deposit_id: int
    bay: Bay
    identity_hash: str
    password: str


@dataclass(frozen=True)
class Sample:
    deposit_id: int
    bay: Bay
    sent_mono: float
    answered_mono: float
    wall_minus_mono: float  # to put audit (wall clock) times on the monotonic axis

    @property
    def total_s(self) -> float:
        return self.answered_mono - self.sent_mono


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, q in (0, 100]."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(value_s: float) -> float:
    return round(value_s * 1000, 3)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- the simulator ------------------------------------------------------------------------------


def channel_states(sim: SimHandle) -> dict[int, dict[str, Any]]:
    board = sim.control.snapshot()["boards"][str(BOARD)]
    return {int(ch): state for ch, state in board["channels"].items()}


def await_fired_and_shut(sim: SimHandle, fires_before: dict[int, int], channels: set[int]) -> None:
    """Each channel's lock fired since ``fires_before`` and the person has shut the door again."""

    def done() -> bool:
        states = channel_states(sim)
        return all(
            states[ch]["coil_fires"] > fires_before[ch]
            and states[ch]["door"] == "closed"
            and states[ch]["latch"] == "locked"
            for ch in channels
        )

    wait_until(
        done,
        timeout_s=DOOR_TIMEOUT_S,
        interval_s=POLL_S,
        what=lambda: f"channels {sorted(channels)} fired and shut: {channel_states(sim)}",
    )


def fires_now(sim: SimHandle) -> dict[int, int]:
    return {ch: int(state["coil_fires"]) for ch, state in channel_states(sim).items()}


# -- deposits, prepared outside the timed part ----------------------------------------------------


def prepare(
    lockerd: LockerdRunner, sim: SimHandle, bays: dict[str, Bay], limit: int
) -> list[Ready]:
    """Fill every free bay (at most ``limit``): start, let the person load and shut, confirm."""
    client = lockerd.client
    # lockerd only hands out bays its door watch has seen closed
    wait_until(
        lambda: all(
            b["door"] == "closed" and not b["occupied"] and not b["opening_in_flight"]
            for b in client.call("status")["bays"]
        ),
        timeout_s=DOOR_TIMEOUT_S,
        interval_s=0.01,
        what="every bay free and closed",
    )
    before = fires_now(sim)
    started: list[tuple[int, Bay, str]] = []
    for _ in range(min(limit, len(bays))):
        identity = secrets.token_hex(32)
        result = client.call(
            "deposit.start",
            staff_id=STAFF_ID,
            case_number=f"BENCH-{secrets.token_hex(4)}",
            recipient={"identity_hash": identity, "masked_name": MASKED_NAME},
            size="S",
        )
        started.append((result["deposit_id"], bays[result["bay_id"]], identity))
    await_fired_and_shut(sim, before, {bay.channel for _, bay, _ in started})
    ready = []
    for deposit_id, bay, identity in started:
        password = client.call("deposit.confirm", staff_id=STAFF_ID, deposit_id=deposit_id)[
            "password"
        ]
        ready.append(Ready(deposit_id, bay, identity, password))
    return ready


def timed_pickup(lockerd: LockerdRunner, sim: SimHandle, ready: Ready) -> Sample:
    before = fires_now(sim)
    wall_minus_mono = time.time() - time.monotonic()
    sent = time.monotonic()
    result = lockerd.client.call(
        "pickup",
        identity_hash=ready.identity_hash,
        password=ready.password,
        request_id=secrets.token_hex(8),
    )
    answered = time.monotonic()
    if result.get("opened") is not True or result.get("deposit_id") != ready.deposit_id:
        raise RuntimeError(f"pickup of {ready} answered {result}")
    # one applicant at a time: the next pickup starts after this door is shut again
    await_fired_and_shut(sim, before, {ready.bay.channel})
    return Sample(ready.deposit_id, ready.bay, sent, answered, wall_minus_mono)


# -- the floor ----------------------------------------------------------------------------------


class Floor:
    """Bare serial round trip to a simulator of the same kind plus one durable SQLite commit."""

    def __init__(self, pty_path: str, db_path: Path) -> None:
        self.port = serial.Serial(pty_path, 9600, timeout=1.0, write_timeout=1.0)
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, at REAL)")
        self._channel = 0
        self.serial_s: list[float] = []
        self.commit_s: list[float] = []
        self.total_s: list[float] = []

    def sample(self) -> None:
        self._channel = self._channel % CHANNELS + 1
        body = bytes((0x8A, BOARD, self._channel, 0x11))
        frame = body + bytes((body[0] ^ body[1] ^ body[2] ^ body[3],))
        started = time.perf_counter()
        self.port.reset_input_buffer()
        self.port.write(frame)
        reply = self.port.read(5)
        sent = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO floor (at) VALUES (?)", (time.time(),))
        self.db.execute("COMMIT")
        committed = time.perf_counter()
        if len(reply) != 5:
            raise RuntimeError(f"floor: short reply {reply.hex(' ')}")
        self.serial_s.append(sent - started)
        self.commit_s.append(committed - sent)
        self.total_s.append(committed - started)

    def close(self) -> None:
        self.port.close()
        self.db.close()


# -- where the time goes ------------------------------------------------------------------------


def audit_entries(lockerd: LockerdRunner) -> Iterator[dict[str, Any]]:
    after_seq = 0
    while True:
        page = lockerd.client.call("audit.tail", after_seq=after_seq, limit=1000)["entries"]
        if not page:
            return
        yield from page
        after_seq = page[-1]["seq"]


def stage_breakdown(
    lockerd: LockerdRunner, sim: SimHandle, samples: list[Sample]
) -> dict[str, dict[str, float]]:
    """Split each pickup at lockerd's intent timestamp, the coil fire and the outcome timestamp.

    request: reply sent -> intent row's time (API, lookups, password check, thread hop);
    intent_to_frame: -> the board fires (intent commit with fsync, bus actor, inter-frame gap);
    board_reply: -> outcome row's time (reply on the pty, bus read, back to the event loop);
    outcome_and_reply: -> the client has the answer (outcome commit, JSON, socket).
    """
    intents: dict[int, float] = {}
    results: dict[int, float] = {}
    for e in audit_entries(lockerd):
        if e["detail"].get("purpose") != "pickup":
            continue
        at = datetime.fromisoformat(e["at"]).timestamp()
        if e["kind"] == "open_intent":
            intents[e["deposit_id"]] = at
        elif e["kind"] == "open_result":
            results[e["deposit_id"]] = at
    fires: dict[int, list[float]] = {}
    for fire in sim.control.unlock_log():
        fires.setdefault(fire.channel, []).append(fire.at_s)
    stages: dict[str, list[float]] = {
        "request": [],
        "intent_to_frame": [],
        "board_reply": [],
        "outcome_and_reply": [],
    }
    for s in samples:
        fired = [at for at in fires.get(s.bay.channel, []) if s.sent_mono <= at <= s.answered_mono]
        if s.deposit_id not in intents or s.deposit_id not in results or len(fired) != 1:
            continue
        intent = intents[s.deposit_id] - s.wall_minus_mono
        result = results[s.deposit_id] - s.wall_minus_mono
        stages["request"].append(intent - s.sent_mono)
        stages["intent_to_frame"].append(fired[0] - intent)
        stages["board_reply"].append(result - fired[0])
        stages["outcome_and_reply"].append(s.answered_mono - result)
    return {
        name: {"p50_ms": ms(percentile(v, 50)), "p99_ms": ms(percentile(v, 99)), "n": len(v)}
        for name, v in stages.items()
        if v
    }


# -- the run ------------------------------------------------------------------------------------


def api_roundtrip(lockerd: LockerdRunner) -> float:
    """The cheapest real API call (an empty audit page): socket, JSON, one indexed query."""
    started = time.monotonic()
    lockerd.client.call("audit.tail", after_seq=2**62, limit=1)
    return time.monotonic() - started


@dataclass
class Beside:
    """Measured right before each timed pickup, under the same conditions."""

    floor: Floor
    api_s: list[float] = field(default_factory=list)

    def measure(self, lockerd: LockerdRunner) -> None:
        self.floor.sample()
        self.api_s.append(api_roundtrip(lockerd))


def run_pickups(
    lockerd: LockerdRunner, sim: SimHandle, count: int, beside: Beside | None = None
) -> list[Sample]:
    bays = {b.bay_id: b for b in bays_for(PROTOCOL, CHANNELS)}
    samples: list[Sample] = []
    while len(samples) < count:
        for ready in prepare(lockerd, sim, bays, count - len(samples)):
            if beside is not None:
                beside.measure(lockerd)
            samples.append(timed_pickup(lockerd, sim, ready))
            if len(samples) % 100 == 0:
                log(f"  {len(samples)}/{count} pickups")
    return samples


def start_lockerd(
    factory: LockerdFactory, sim: SimHandle, scrypt_n: int, args: argparse.Namespace
) -> LockerdRunner:
    gap = args.inter_frame_gap_ms
    bus_options = {} if gap is None else {"inter_frame_gap_ms": gap}
    return factory(
        sim,
        PROTOCOL,
        CHANNELS,
        scrypt_n=scrypt_n,
        poll_interval_ms=args.poll_interval_ms,
        bus_options=bus_options,
    )


@contextmanager
def processes() -> Iterator[tuple[Spawner, Callable[[], SimHandle]]]:
    spawner = Spawner()

    def new_sim() -> SimHandle:
        sim = LockboardSimFactory(spawner)(
            PROTOCOL, boards=(BOARD,), channels=CHANNELS, verbose=False
        )
        sim.control.set_auto_person(
            True, pull_after_ms=PULL_AFTER_MS, close_after_ms=CLOSE_AFTER_MS
        )
        return sim

    try:
        yield spawner, new_sim
    finally:
        for process in reversed(spawner.started):
            process.terminate()


def measure(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    with processes() as (spawner, new_sim):
        lockerd_sim, floor_sim = new_sim(), new_sim()
        factory = LockerdFactory(spawner, work_dir)
        try:
            lockerd = start_lockerd(factory, lockerd_sim, CHEAPEST_SCRYPT_N, args)
            beside = Beside(Floor(floor_sim.pty_path, lockerd.db_path.parent / "floor.db"))
            log(f"timing {args.pickups} pickups (scrypt_n={CHEAPEST_SCRYPT_N}) and the floor")
            samples = run_pickups(lockerd, lockerd_sim, args.pickups, beside)
            beside.floor.close()
            stages = stage_breakdown(lockerd, lockerd_sim, samples)
            lockerd.stop()
            log(f"timing {args.production_pickups} pickups with scrypt_n={PRODUCTION_SCRYPT_N}")
            production = start_lockerd(factory, lockerd_sim, PRODUCTION_SCRYPT_N, args)
            slow = run_pickups(production, lockerd_sim, args.production_pickups)
        finally:
            factory.teardown()
    return summarise(args, samples, beside, stages, slow)


def summarise(
    args: argparse.Namespace,
    samples: list[Sample],
    beside: Beside,
    stages: dict[str, Any],
    slow: list[Sample],
) -> dict[str, Any]:
    floor = beside.floor
    pickup_s = [s.total_s for s in samples]
    production_s = [s.total_s for s in slow]
    p50, p99 = percentile(pickup_s, 50), percentile(pickup_s, 99)
    f50, f99 = percentile(floor.total_s, 50), percentile(floor.total_s, 99)
    return {
        "bench": "pickup_latency",
        "protocol": PROTOCOL,
        "n": len(pickup_s),
        "ratio_p50": round(p50 / f50, 2),
        "ratio_p99": round(p99 / f99, 2),
        "pickup_p50_ms": ms(p50),
        "pickup_p99_ms": ms(p99),
        "floor_p50_ms": ms(f50),
        "floor_p99_ms": ms(f99),
        "floor_serial_p50_ms": ms(percentile(floor.serial_s, 50)),
        "floor_serial_p99_ms": ms(percentile(floor.serial_s, 99)),
        "floor_commit_p50_ms": ms(percentile(floor.commit_s, 50)),
        "floor_commit_p99_ms": ms(percentile(floor.commit_s, 99)),
        "api_roundtrip_p50_ms": ms(percentile(beside.api_s, 50)),
        "api_roundtrip_p99_ms": ms(percentile(beside.api_s, 99)),
        "stages": stages,
        "total_p50_ms_production_hash": ms(percentile(production_s, 50)),
        "total_p99_ms_production_hash": ms(percentile(production_s, 99)),
        "n_production_hash": len(production_s),
        "scrypt_n": CHEAPEST_SCRYPT_N,
        "scrypt_n_production": PRODUCTION_SCRYPT_N,
        "poll_interval_ms": args.poll_interval_ms or "default",
        "inter_frame_gap_ms": (
            "default" if args.inter_frame_gap_ms is None else args.inter_frame_gap_ms
        ),
        "goal_met": p50 / f50 <= 1.5 and p99 / f99 <= 3,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pickups", type=int, default=1000, help="timed pickups (default 1000)")
    parser.add_argument(
        "--production-pickups",
        type=int,
        default=50,
        help="pickups timed with the production scrypt cost (default 50)",
    )
    parser.add_argument(
        "--poll-interval-ms",
        type=int,
        default=None,
        help="door-watch poll interval (default: the packaged default)",
    )
    parser.add_argument(
        "--inter-frame-gap-ms",
        type=int,
        default=None,
        help="bus inter-frame gap (default: the packaged default)",
    )
    args = parser.parse_args(argv)
    if args.pickups < 1 or args.production_pickups < 1:
        parser.error("--pickups and --production-pickups must be at least 1")
    with tempfile.TemporaryDirectory(prefix="pickup-bench-") as work_dir:
        result = measure(args, Path(work_dir))
    log(
        f"pickup p50 {result['pickup_p50_ms']} ms, p99 {result['pickup_p99_ms']} ms; "
        f"floor p50 {result['floor_p50_ms']} ms, p99 {result['floor_p99_ms']} ms; "
        f"ratio p50 {result['ratio_p50']}, p99 {result['ratio_p99']}"
    )
    for name, figures in result["stages"].items():
        log(f"  stage {name}: p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
    log(
        f"production hash (scrypt_n={PRODUCTION_SCRYPT_N}): "
        f"p50 {result['total_p50_ms_production_hash']} ms"
    )
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
