"""Shared helpers and fixtures for the uplink tests that run a device against a real mosquitto.

The device is "locker-01"/"lockerd" in hall "demo-hall" on a broker rendered from the production
TLS + ACL templates; the hall side is an MqttProbe with the hall's certificate (CN
"hall.demo-hall"). tests/uplink/conftest.py registers the fixtures for the whole directory;
a test file that needs another broker or device (persistence, other settings) overrides them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hallkiosk.clock import SystemClock
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority, CertFiles
from tests.fixtures.mosquitto import Broker, MosquittoFactory, MqttProbe
from uplink.connection import UplinkConnection
from uplink.messages import Birth, Presence, Will, decode
from uplink.outbox import Outbox
from uplink.session import SessionStore
from uplink.settings import TlsSettings, UplinkSettings
from uplink.topics import HallFilters, Topics

HALL_ID = "demo-hall"
DEVICE = "locker-01"
COMPONENT = "lockerd"
VERSIONS = {"hallkiosk": "0.1.0"}
WAIT_S = 20.0


@dataclass
class Device:
    connection: UplinkConnection
    outbox: Outbox
    session: SessionStore
    topics: Topics


def device_settings(broker: Broker, cert: CertFiles | None, **overrides: object) -> UplinkSettings:
    tls = (
        TlsSettings(ca_file=str(cert.ca), cert_file=str(cert.cert), key_file=str(cert.key))
        if cert is not None
        else TlsSettings()
    )
    values: dict[str, object] = {
        "enabled": True,
        "host": broker.host,
        "port": broker.port,
        "tls": tls,
        # short, so broker restarts in tests are ridden out quickly
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.5,
        **overrides,
    }
    return UplinkSettings.model_validate(values)


@contextlib.contextmanager
def make_device(
    tmp_path: Path, settings: UplinkSettings, *, device_id: str = DEVICE
) -> Iterator[Device]:
    topics = Topics(HALL_ID, device_id, COMPONENT)
    clock = SystemClock()
    outbox = Outbox(tmp_path / "outbox.db", device=device_id, component=COMPONENT, clock=clock)
    session = SessionStore(tmp_path / "session.db", topics.client_id)
    connection = UplinkConnection(settings, topics, outbox, session, clock, versions=VERSIONS)
    try:
        yield Device(connection, outbox, session, topics)
    finally:
        connection.stop()
        outbox.close()
        session.close()


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    return mosquitto(tls=True, hall_id=HALL_ID)


@pytest.fixture
def device_cert(test_ca: CertAuthority) -> CertFiles:
    return test_ca.issue_client(DEVICE)


@pytest.fixture
def hall(broker: Broker, test_ca: CertAuthority) -> MqttProbe:
    probe = broker.connect("hall-probe", cert=test_ca.issue_client(f"hall.{HALL_ID}"))
    for topic_filter, qos in HallFilters(HALL_ID).subscriptions:
        probe.subscribe(topic_filter, qos)
    return probe


@pytest.fixture
def device(tmp_path: Path, broker: Broker, device_cert: CertFiles) -> Iterator[Device]:
    with make_device(tmp_path, device_settings(broker, device_cert)) as made:
        yield made


def presences(probe: MqttProbe, topics: Topics) -> list[Birth | Will]:
    return [decode(Presence, payload).root for payload in probe.payloads(topics.presence)]


def wait_presence(
    probe: MqttProbe, topics: Topics, kind: type[Birth | Will], session: int
) -> Birth | Will:
    def found() -> Birth | Will | None:
        return next(
            (p for p in presences(probe, topics) if type(p) is kind and p.session == session),
            None,
        )

    message = wait_until(
        found,
        timeout_s=WAIT_S,
        what=lambda: f"{kind.__name__} session {session}; got {presences(probe, topics)}",
    )
    assert message is not None
    return message
