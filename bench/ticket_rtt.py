"""Ticket request round trip through ``hall serve``, against a bare MQTT 5 echo; event ingest rate.

Starts a local plain mosquitto, a ``Hall`` behind ``HallServer`` (its SQLite in a temp dir), and a
kiosk-side ``Requester`` on an ``UplinkConnection``, exactly as a kiosk uses them. Each sample is
one ``ticket.issue`` request: kiosk -> broker -> hall (decode, queue transaction, encode) ->
broker -> kiosk. The floor, measured in the same run and interleaved sample by sample, is a bare
paho MQTT 5 request/response: QoS 1 both ways with ResponseTopic and CorrelationData, answered by
a bare paho echo client that sends the request's payload back. ``ratio_p50``/``ratio_p99`` are
ours / bare at that percentile (goal: ratio_p99 <= 2).

Then ``--events`` events (one in ten a redelivery of an earlier one) are published QoS 1 to the
hall from a bare paho client, and ``ingest_per_s`` is the rate at which the hall took them in:
decoded, checked against the topic, deduplicated on (device, id) and recorded.

Progress goes to stderr; stdout ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from hall.server import HallServer  # noqa: E402
from hall.service import Hall  # noqa: E402
from hall.settings import load_hall_settings  # noqa: E402
from hallkiosk.clock import SystemClock  # noqa: E402
from tests.fixtures.mosquitto import Broker, plain_loopback_config  # noqa: E402
from uplink.connection import UplinkConnection, set_no_delay  # noqa: E402
from uplink.outbox import Outbox  # noqa: E402
from uplink.requests import Requester, RequestKind, attach  # noqa: E402
from uplink.session import SessionStore  # noqa: E402
from uplink.settings import UplinkSettings  # noqa: E402
from uplink.topics import Topics  # noqa: E402

HALL_ID: Final = "bench-hall"
KIOSK: Final = Topics(HALL_ID, "kiosk-01", "kiosk")
ECHO_REQUEST: Final = "bench/echo/req"
ECHO_RESPONSE: Final = "bench/echo/res"
TIMEOUT_S: Final = 30.0
WARMUP: Final = 20
DUPLICATE_EVERY: Final = 10
INGEST_WINDOW: Final = 20  # the hall broker's max_inflight_messages


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def wait_for(predicate: Any, what: str | Any, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what if isinstance(what, str) else what()}")
        time.sleep(0.005)


def paho_client(client_id: str) -> mqtt.Client:
    return mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )


def connect(client: mqtt.Client, broker: Broker, then: Any = None) -> None:
    """Connect, and run ``then()`` on the network thread once the CONNACK is in."""
    connected = threading.Event()

    def on_connect(*_args: Any) -> None:
        if then is not None:
            then()
        connected.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    set_no_delay(client)  # a floor with Nagle on would wait ~40 ms for delayed ACKs
    client.loop_start()
    if not connected.wait(TIMEOUT_S):
        raise RuntimeError(f"{client._client_id!r} did not connect")


def subscribe(client: mqtt.Client, topic: str) -> None:
    done = threading.Event()
    client.on_subscribe = lambda *_a: done.set()
    client.subscribe(topic, qos=1)
    if not done.wait(TIMEOUT_S):
        raise RuntimeError(f"no SUBACK for {topic}")


class BareEcho:
    """The floor: a paho requester and a paho echo responder, nothing else."""

    def __init__(self, broker: Broker) -> None:
        self.responder = paho_client("bench-echo-responder")
        self.responder.on_message = self._echo
        connect(self.responder, broker)
        subscribe(self.responder, ECHO_REQUEST)
        self.requester = paho_client("bench-echo-requester")
        self._answers: dict[bytes, threading.Event] = {}
        self.requester.on_message = self._answer
        connect(self.requester, broker)
        subscribe(self.requester, ECHO_RESPONSE)

    def _echo(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        out.CorrelationData = message.properties.CorrelationData  # type: ignore[union-attr]
        client.publish(
            message.properties.ResponseTopic,  # type: ignore[union-attr]
            message.payload,
            qos=1,
            properties=out,
        )

    def _answer(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        waiter = self._answers.get(bytes(message.properties.CorrelationData))  # type: ignore[union-attr]
        if waiter is not None:
            waiter.set()

    def round_trip_ms(self, payload: bytes) -> float:
        correlation = uuid.uuid4().bytes
        waiter = threading.Event()
        self._answers[correlation] = waiter
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = ECHO_RESPONSE
        props.CorrelationData = correlation
        started = time.perf_counter()
        self.requester.publish(ECHO_REQUEST, payload, qos=1, properties=props)
        if not waiter.wait(TIMEOUT_S):
            raise RuntimeError("the bare echo did not answer")
        elapsed = (time.perf_counter() - started) * 1000
        del self._answers[correlation]
        return elapsed

    def close(self) -> None:
        for client in (self.requester, self.responder):
            client.disconnect()
            client.loop_stop()


def start_hall(work: Path, broker: Broker) -> HallServer:
    data = work / "hall"
    data.mkdir()
    site = data / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\nhall_id = {json.dumps(HALL_ID)}\ndata_dir = {json.dumps(str(data))}\n"
        f"[hall.mqtt]\nenabled = true\nhost = {json.dumps(broker.host)}\nport = {broker.port}\n"
        "reconnect_min_s = 0.05\nreconnect_max_s = 0.5\n",
        encoding="utf-8",
    )
    hall = Hall(load_hall_settings([site]), SystemClock())
    hall.start()
    server = HallServer(hall)
    server.start()
    if not server.wait_connected(TIMEOUT_S):
        raise RuntimeError("the hall did not connect")
    return server


def start_kiosk(work: Path, broker: Broker) -> tuple[UplinkConnection, Requester, list[Any]]:
    clock = SystemClock()
    settings = UplinkSettings(enabled=True, host=broker.host, port=broker.port)
    outbox = Outbox(work / "kiosk-outbox.db", device="kiosk-01", component="kiosk", clock=clock)
    session = SessionStore(work / "kiosk-session.db", KIOSK.client_id)
    connection = UplinkConnection(
        settings, KIOSK, outbox, session, clock, versions={"hallkiosk": "bench"}
    )

    def fallback(_args: Any, reason: Any) -> dict[str, Any]:
        raise RuntimeError(f"the bench got a fallback: {reason}")

    requester = attach(connection, KIOSK, clock, [RequestKind("ticket.issue", 10.0, fallback)])
    connection.start()
    wait_for(lambda: requester.presence.hall_online, "the kiosk to see the hall online", 30)
    return connection, requester, [outbox, session]


def ticket_rtt(
    server: HallServer, requester: Requester, echo: BareEcho, samples: int
) -> dict[str, Any]:
    categories = [c.id for c in server.hall.settings.hall.queue.categories]
    ours_ms: list[float] = []
    bare_ms: list[float] = []
    request_bytes = 0
    for n in range(samples + WARMUP):
        # one category after another, so no category's quota runs out
        args = {"category": categories[n % len(categories)]}
        started = time.perf_counter()
        reply = requester.request("ticket.issue", args)
        mine = (time.perf_counter() - started) * 1000
        if reply.source != "hall" or not reply.ok:
            raise RuntimeError(f"ticket request {n} failed: {reply}")
        # the floor carries a payload of the same size as our request
        request_bytes = len(json.dumps({"v": 1, "kind": "ticket.issue", "args": args}))
        bare = echo.round_trip_ms(b"x" * max(request_bytes, 64))
        if n >= WARMUP:
            ours_ms.append(mine)
            bare_ms.append(bare)
        if n % 200 == 0:
            print(f"  ticket {n}: ours {mine:.3f} ms, bare {bare:.3f} ms", file=sys.stderr)
    result = {
        "samples": samples,
        "ours_p50_ms": round(statistics.median(ours_ms), 3),
        "ours_p99_ms": round(percentile(ours_ms, 99), 3),
        "bare_p50_ms": round(statistics.median(bare_ms), 3),
        "bare_p99_ms": round(percentile(bare_ms, 99), 3),
    }
    result["ratio_p50"] = round(result["ours_p50_ms"] / result["bare_p50_ms"], 2)
    result["ratio_p99"] = round(result["ours_p99_ms"] / result["bare_p99_ms"], 2)
    # number blocks synced on the request path vs ahead of need (hall/number_blocks.py)
    result["blocks_inline"] = server.hall.queue.blocks.stats.inline
    result["blocks_ahead"] = server.hall.queue.blocks.stats.ahead
    # WAL checkpoints run by the same background thread instead of inside a request's commit
    result["wal_checkpoints"] = server.hall.queue.blocks.stats.checkpoints
    return result


def event_payload(seq: int, event_id: str) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "id": event_id,
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(),
            "type": "evaluation",
            "device": "kiosk-02",
            "component": "kiosk",
            # a valid rating, as the kiosk records it: ingest is timed on the normal path
            "data": {
                "service": "ticket",
                "reference": f"T-bench-{seq}",
                "level": 5,
                "reasons": ["fast"],
                "ts": datetime.now(UTC).isoformat(),
            },
        }
    ).encode()


def ingest(server: HallServer, broker: Broker, count: int) -> dict[str, Any]:
    """Events/s the hall takes in: the first publish until the last one is counted."""
    topic = Topics(HALL_ID, "kiosk-02", "kiosk").event("evaluation")
    messages: list[bytes] = []
    for n in range(1, count + 1):
        if n % DUPLICATE_EVERY == 0:
            messages.append(messages[-1])  # a redelivery: the hall must record it once
        else:
            messages.append(event_payload(n, uuid.uuid4().hex))
    client = paho_client("bench-ingest")
    client.max_inflight_messages_set(INGEST_WINDOW)
    state = {"next": 0}

    def send_next() -> None:
        # a window of INGEST_WINDOW, refilled on each PUBACK, all on paho's network thread
        # (publishing all N at once stalls paho 2.2, see bench/outbox_drain.py)
        if state["next"] < len(messages):
            client.publish(topic, messages[state["next"]], qos=1)
            state["next"] += 1

    def first_window() -> None:
        for _ in range(INGEST_WINDOW):
            send_next()

    before_events = server.stats["events"]
    before_dups = server.stats["duplicates"]
    started = time.perf_counter()
    client.on_publish = lambda *_a: send_next()
    connect(client, broker, then=first_window)
    wait_for(
        lambda: server.stats["events"] - before_events >= count,
        lambda: f"the hall's ingest: {state['next']} sent, hall stats {server.stats}",
        timeout_s=120,
    )
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    duplicates = server.stats["duplicates"] - before_dups
    rejected = server.hall.store.one(
        "SELECT COUNT(*) AS n FROM alarms WHERE code = 'evaluation_rejected'"
    )
    if rejected is not None and rejected["n"]:
        raise RuntimeError(f"{rejected['n']} bench events were rejected: not the normal path")
    expected = count // DUPLICATE_EVERY
    if duplicates != expected:
        raise RuntimeError(f"{duplicates} duplicates recognised, {expected} sent")
    return {"events": count, "duplicates": duplicates, "ingest_per_s": round(count / elapsed)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000, help="ticket requests (max 2900)")
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args(argv)
    if not 1 <= args.samples <= 2900:
        parser.error("--samples: 1-2900 (the default categories' daily quotas)")
    with tempfile.TemporaryDirectory(prefix="hk-ticket-rtt-") as tmp:
        work = Path(tmp)
        (work / "broker").mkdir()
        broker = Broker(work / "broker", tls=None, persistence=False)
        broker.start(plain_loopback_config)
        closers: list[Any] = []
        try:
            server = start_hall(work, broker)
            connection, requester, stores = start_kiosk(work, broker)
            echo = BareEcho(broker)
            print(f"ticket round trips: {args.samples} (+{WARMUP} warm-up)", file=sys.stderr)
            result = ticket_rtt(server, requester, echo, args.samples)
            echo.close()
            connection.stop()
            closers.extend(stores)
            print(f"event ingest: {args.events} events", file=sys.stderr)
            result.update(ingest(server, broker, args.events))
            server.stop()
            server.hall.close()
        finally:
            for store in closers:
                store.close()
            broker.stop()
    for key, value in result.items():
        print(f"{key:>14}: {value}", file=sys.stderr)
    print(json.dumps({"bench": "ticket_rtt", **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
