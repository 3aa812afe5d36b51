"""OutboxDrain through UplinkConnection on a real broker: backlog order across a broker crash,
and telemetry. The hall probe keeps a persistent session, as the real hall service does."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority, CertFiles
from tests.fixtures.mosquitto import Broker, MosquittoFactory, MqttProbe
from tests.uplink.test_connection import (
    HALL_ID,
    Device,
    device_settings,
    make_device,
)
from uplink.messages import Event, Telemetry, decode
from uplink.topics import HallFilters

BACKLOG_EVENTS = 10_000
HALL_SESSION_EXPIRY_S = 3600
DRAIN_WAIT_S = 60.0


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    return mosquitto(tls=True, hall_id=HALL_ID, persistence=True)


@pytest.fixture
def hall_cert(test_ca: CertAuthority) -> CertFiles:
    return test_ca.issue_client(f"hall.{HALL_ID}")


def hall_probe(broker: Broker, cert: CertFiles) -> MqttProbe:
    # Persistent session: the broker queues events for the hall across the hall's absence.
    return broker.connect(
        "hall-worker",
        cert=cert,
        clean_start=False,
        session_expiry_s=HALL_SESSION_EXPIRY_S,
    )


@pytest.fixture
def device(tmp_path: Path, broker: Broker, test_ca: CertAuthority) -> Iterator[Device]:
    settings = device_settings(broker, test_ca.issue_client("locker-01"))
    with make_device(tmp_path, settings) as made:
        yield made


def append_backlog(device: Device, count: int) -> list[str]:
    # One transaction for the whole backlog (append_in), so the test spends its time draining.
    conn = sqlite3.connect(device.outbox.path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        ids = [device.outbox.append_in(conn, "bay_opened", {"n": n}).id for n in range(count)]
        conn.execute("COMMIT")
    finally:
        conn.close()
    return ids


def test_backlog_drains_in_order_across_a_broker_crash(
    broker: Broker, hall_cert: CertFiles, device: Device
) -> None:
    first_hall = hall_probe(broker, hall_cert)
    first_hall.subscribe(HallFilters(HALL_ID).events, 1)
    ids = append_backlog(device, BACKLOG_EVENTS)

    device.connection.start()
    wait_until(
        lambda: device.connection.stats.acks >= BACKLOG_EVENTS // 4,
        timeout_s=DRAIN_WAIT_S,
        what=lambda: f"a quarter acked; {device.connection.stats}",
    )
    broker.kill()  # SIGKILL while draining
    broker.restart()
    second_hall = hall_probe(broker, hall_cert)  # its subscription comes from the stored session

    wait_until(
        lambda: device.outbox.backlog().events == 0,
        timeout_s=DRAIN_WAIT_S,
        what=lambda: f"an empty outbox; {device.connection.stats}",
    )

    def arrived() -> list[Event]:
        return [
            decode(Event, payload)
            for probe in (first_hall, second_hall)
            for payload in probe.payloads()
        ]

    wait_until(
        lambda: {e.id for e in arrived()} >= set(ids),
        timeout_s=DRAIN_WAIT_S,
        what=lambda: f"every id at the hall; {len({e.id for e in arrived()})} of {len(ids)}",
    )
    first_seen: dict[str, int] = {}
    for event in arrived():  # dedup on id, as the hall does
        first_seen.setdefault(event.id, event.seq)
    assert list(first_seen) == ids  # first arrivals in append order...
    assert list(first_seen.values()) == list(range(1, BACKLOG_EVENTS + 1))  # ...and seq order
    stats = device.connection.stats
    assert stats.connects >= 2 and stats.refused == 0
    assert stats.acks >= BACKLOG_EVENTS


def test_telemetry_snapshot_goes_out_qos0_when_connected(
    broker: Broker, hall_cert: CertFiles, device: Device
) -> None:
    hall = hall_probe(broker, hall_cert)
    hall.subscribe(HallFilters(HALL_ID).telemetry, 0)
    device.outbox.put_telemetry({"cpu_temp_c": 48.5})
    device.outbox.put_telemetry({"cpu_temp_c": 51.5})  # latest wins while offline
    device.connection.start()
    wait_until(lambda: hall.payloads(device.topics.telemetry), timeout_s=DRAIN_WAIT_S)
    received = [decode(Telemetry, p) for p in hall.payloads(device.topics.telemetry)]
    assert [t.metrics for t in received] == [{"cpu_temp_c": 51.5}]
    assert hall.messages(device.topics.telemetry)[0].qos == 0
    assert not device.outbox.backlog().telemetry_pending
