"""Outbox drain throughput against raw paho QoS 1, and Outbox.append against a bare commit.

Drains ``--events`` queued events (default 100,000) through ``UplinkConnection`` to a local plain
mosquitto that this bench starts (the test fixture's ``Broker`` class), then publishes the same
payloads on the same topics with a bare paho client at the same max in-flight, in the same run.
``ratio`` = our events/s / raw events/s (goal >= 0.5). Then it times ``Outbox.append`` against
one bare SQLite insert+commit (WAL, synchronous=FULL) in the same directory, interleaved
sample by sample: ``append_ratio`` = append p50 / bare p50 (goal <= 2).

Progress goes to stderr; stdout gets exactly one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402

from hallkiosk.clock import SystemClock  # noqa: E402
from tests.fixtures.mosquitto import Broker, plain_loopback_config  # noqa: E402
from uplink.connection import UplinkConnection  # noqa: E402
from uplink.outbox import Outbox  # noqa: E402
from uplink.session import SessionStore  # noqa: E402
from uplink.settings import UplinkSettings  # noqa: E402
from uplink.topics import Topics  # noqa: E402

MAX_INFLIGHT: Final = 20  # the hall broker's max_inflight_messages
DRAIN_BATCH: Final = 500
APPEND_SAMPLES: Final = 300
POLL_S: Final = 0.01
DEADLINE_S: Final = 1800.0
TOPICS: Final = Topics("bench-hall", "locker-01", "lockerd")


def fill_outbox(outbox: Outbox, count: int) -> None:
    conn = sqlite3.connect(outbox.path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for n in range(count):
            outbox.append_in(conn, "bay_opened", {"bay": n % 24 + 1, "n": n})
        conn.execute("COMMIT")
    finally:
        conn.close()


def wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def ours(broker: Broker, work: Path, count: int) -> float:
    """Events/s through UplinkConnection, from start() until the last row is acked."""
    clock = SystemClock()
    outbox = Outbox(work / "drain.db", device=TOPICS.device_id, component="lockerd", clock=clock)
    fill_outbox(outbox, count)
    session = SessionStore(work / "session.db", TOPICS.client_id)
    settings = UplinkSettings(
        enabled=True,
        host=broker.host,
        port=broker.port,
        max_inflight=MAX_INFLIGHT,
        drain_batch=DRAIN_BATCH,
    )
    connection = UplinkConnection(
        settings, TOPICS, outbox, session, clock, versions={"hallkiosk": "bench"}
    )
    started = time.perf_counter()
    connection.start()
    wait_for(lambda: connection.stats.acks >= count, "our drain")
    elapsed = time.perf_counter() - started
    connection.stop()
    assert outbox.backlog().events == 0, "rows left after the drain"
    outbox.close()
    session.close()
    return count / elapsed


def payloads(work: Path, count: int) -> list[tuple[str, bytes]]:
    outbox = Outbox(
        work / "raw.db", device=TOPICS.device_id, component="lockerd", clock=SystemClock()
    )
    fill_outbox(outbox, count)
    rows = [(TOPICS.event(r.type), r.payload) for r in outbox.pending(count)]
    outbox.close()
    return rows


def raw(broker: Broker, messages: list[tuple[str, bytes]]) -> float:
    """Events/s of bare paho QoS 1 with the same window: on_connect sends the first MAX_INFLIGHT
    and each PUBACK sends the next, all on paho's network thread. (Publishing all N from another
    thread and letting paho queue them stalled in paho 2.2 in a trial run.)"""
    done = threading.Event()
    connected = threading.Event()
    state = {"next": 0, "acked": 0}
    started: list[float] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="raw-bench", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.max_inflight_messages_set(MAX_INFLIGHT)

    def send_next() -> None:
        if state["next"] < len(messages):
            topic, payload = messages[state["next"]]
            state["next"] += 1
            client.publish(topic, payload, qos=1)

    def on_connect(*_args: Any) -> None:
        started.append(time.perf_counter())
        for _ in range(min(MAX_INFLIGHT, len(messages))):
            send_next()
        connected.set()

    def on_publish(*_args: Any) -> None:
        state["acked"] += 1
        if state["acked"] == len(messages):
            done.set()
        send_next()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    if not connected.wait(10):
        raise RuntimeError("raw client did not connect")
    if not done.wait(DEADLINE_S):
        raise RuntimeError(f"raw publishing stalled at {state}")
    elapsed = time.perf_counter() - started[0]
    client.disconnect()
    client.loop_stop()
    return len(messages) / elapsed


def append_vs_commit(work: Path) -> tuple[float, float]:
    """p50 ms of Outbox.append and of a bare one-row insert+commit, interleaved."""
    outbox = Outbox(
        work / "append.db", device="locker-01", component="lockerd", clock=SystemClock()
    )
    bare = sqlite3.connect(work / "bare.db", isolation_level=None)
    bare.execute("PRAGMA journal_mode=WAL")
    bare.execute("PRAGMA synchronous=FULL")
    bare.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    sample = outbox.append("bay_opened", {"bay": 1, "n": 0}).payload
    append_ms: list[float] = []
    bare_ms: list[float] = []
    for n in range(APPEND_SAMPLES):
        started = time.perf_counter()
        outbox.append("bay_opened", {"bay": 1, "n": n})
        append_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        bare.execute("BEGIN IMMEDIATE")
        bare.execute("INSERT INTO t (payload) VALUES (?)", (sample,))
        bare.execute("COMMIT")
        bare_ms.append((time.perf_counter() - started) * 1000)
    outbox.close()
    bare.close()
    return statistics.median(append_ms), statistics.median(bare_ms)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be positive")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="outbox-drain-") as work_dir:
        work = Path(work_dir)
        (work / "broker").mkdir()
        broker = Broker(work / "broker", tls=None, persistence=False)
        broker.start(plain_loopback_config)
        try:
            print(f"raw paho, {args.events} events ...", file=sys.stderr)
            raw_rate = raw(broker, payloads(work, args.events))
            print(f"  {raw_rate:.0f} events/s; our drain ...", file=sys.stderr)
            our_rate = ours(broker, work, args.events)
            print(f"  {our_rate:.0f} events/s; append vs commit ...", file=sys.stderr)
        finally:
            broker.stop()
        append_p50, bare_p50 = append_vs_commit(work)
    ratio = our_rate / raw_rate
    append_ratio = append_p50 / bare_p50
    figures = {
        "events": args.events,
        "max_inflight": MAX_INFLIGHT,
        "drain_batch": DRAIN_BATCH,
        "ours_events_per_s": round(our_rate, 1),
        "raw_events_per_s": round(raw_rate, 1),
        "ratio": round(ratio, 3),
        "ratio_goal_met": ratio >= 0.5,
        "append_p50_ms": round(append_p50, 4),
        "bare_commit_p50_ms": round(bare_p50, 4),
        "append_samples": APPEND_SAMPLES,
        "append_ratio": round(append_ratio, 3),
        "append_goal_met": append_ratio <= 2,
        "elapsed_s": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
