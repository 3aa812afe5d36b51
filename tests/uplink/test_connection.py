"""UplinkConnection against a real mosquitto with the production TLS + ACL config.

The device is "locker-01"/"lockerd" in hall "demo-hall"; the hall side is an MqttProbe with the
hall's certificate (CN "hall.demo-hall"). Helpers here are also used by test_drain.py.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
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


def test_birth_then_will_on_abrupt_loss_then_next_session(hall: MqttProbe, device: Device) -> None:
    device.connection.start()
    birth = wait_presence(hall, device.topics, Birth, 1)
    assert birth.boot_id == device.session.boot_id
    assert [m.retain for m in hall.messages(device.topics.presence)] == [False]  # live delivery

    # Cut the TCP connection under paho without a DISCONNECT: the broker must publish the will.
    client = device.connection._client
    assert client is not None
    raw = client.socket()
    assert isinstance(raw, socket.socket)
    raw.shutdown(socket.SHUT_RDWR)

    will = wait_presence(hall, device.topics, Will, 1)
    assert will.boot_id == birth.boot_id
    second = wait_presence(hall, device.topics, Birth, 2)
    # same process, so same boot id: the hall reads this as a reconnect, not a restart
    assert second.boot_id == birth.boot_id
    # A consumer seeing this will after the second birth can tell it is late: older session.
    assert will.session < second.session
    assert device.session.current() == 2

    # The retained presence is the newest birth, for a hall that subscribes later.
    late = hall_late_subscriber(hall, device.topics)
    assert isinstance(late, Birth) and late.session == 2


def hall_late_subscriber(hall: MqttProbe, topics: Topics) -> Birth | Will:
    before = len(hall.messages(topics.presence))
    hall.client.unsubscribe(HallFilters(HALL_ID).presence)
    hall.subscribe(topics.presence, 1)
    wait_until(lambda: len(hall.messages(topics.presence)) > before, timeout_s=WAIT_S)
    message = hall.messages(topics.presence)[-1]
    assert message.retain
    return decode(Presence, bytes(message.payload)).root


def test_orderly_stop_publishes_the_will_of_the_current_session(
    hall: MqttProbe, device: Device
) -> None:
    device.connection.start()
    wait_presence(hall, device.topics, Birth, 1)
    device.connection.stop()
    will = wait_presence(hall, device.topics, Will, 1)
    assert will.boot_id == device.session.boot_id
    assert not device.connection.stats.connected


def test_a_failing_message_hook_does_not_stop_the_network_thread(
    hall: MqttProbe, device: Device, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bytes] = []

    def failing(message: mqtt.MQTTMessage) -> None:
        seen.append(bytes(message.payload))
        raise RuntimeError("hook bug")

    device.connection.on_message(failing)
    device.connection.start()
    wait_presence(hall, device.topics, Birth, 1)
    with caplog.at_level(logging.ERROR, logger="uplink.connection"):
        for number in range(3):
            hall.publish(device.topics.command, f"cmd-{number}".encode())
        wait_until(lambda: len(seen) == 3, timeout_s=WAIT_S, what=lambda: f"hook saw {seen}")
    assert seen == [b"cmd-0", b"cmd-1", b"cmd-2"]
    wait_until(lambda: device.connection.stats.callback_errors == 3, timeout_s=WAIT_S)
    assert "hook bug" in caplog.text  # logged with its traceback

    # The network thread is alive: a new event still goes out and is acknowledged.
    event = device.outbox.append("door_forced", {"bay": 2})
    wait_until(
        lambda: any(event.id.encode() in p for p in hall.payloads(device.topics.event(event.type))),
        timeout_s=WAIT_S,
    )
    wait_until(lambda: device.outbox.backlog().events == 0, timeout_s=WAIT_S)
    assert device.connection.stats.connected


def test_refused_events_are_kept_and_do_not_block_the_queue(
    tmp_path: Path, broker: Broker, device_cert: CertFiles, hall: MqttProbe
) -> None:
    # The certificate says locker-01 but the topics are locker-02's: the ACL answers 0x87.
    settings = device_settings(broker, device_cert, max_inflight=1)
    with make_device(tmp_path, settings, device_id="locker-02") as impostor:
        for bay in range(5):
            impostor.outbox.append("bay_opened", {"bay": bay})
        impostor.connection.start()
        wait_until(
            lambda: impostor.connection.stats.refused == 5,
            timeout_s=WAIT_S,
            what=lambda: f"5 refusals, stats {impostor.connection.stats}",
        )
        stats = impostor.connection.stats
        assert stats.acks == 0
        assert stats.connected
        # never deleted without the broker's acceptance
        assert impostor.outbox.backlog().events == 5


def test_disabled_settings_connect_nothing_and_keep_events(tmp_path: Path) -> None:
    with make_device(tmp_path, UplinkSettings()) as embedded:
        for bay in range(3):
            embedded.outbox.append("bay_opened", {"bay": bay})
        embedded.connection.start()
        assert not embedded.connection.enabled
        assert embedded.connection._thread is None  # nothing runs, so nothing can connect
        assert embedded.session.current() == 0  # no connection attempt used a session number
        assert embedded.connection.stats.connects == 0
        assert embedded.outbox.backlog().events == 3


def test_reconnect_backoff_is_jittered_between_min_and_doubling_cap(tmp_path: Path) -> None:
    settings = UplinkSettings(reconnect_min_s=1.0, reconnect_max_s=60.0)
    with make_device(tmp_path, settings) as embedded:
        for failures in range(10):
            cap = min(60.0, 2.0 ** (failures + 1))
            delays = [embedded.connection._backoff_s(failures) for _ in range(200)]
            assert all(1.0 <= d <= cap for d in delays), (failures, min(delays), max(delays))
            assert len(set(delays)) > 1  # spread, so a hall's devices do not return in step


@pytest.mark.parametrize(
    "values",
    [
        {"reconnect_min_s": 5.0, "reconnect_max_s": 1.0},
        {"reconnect_min_s": 0.0},
        {"max_inflight": 0},
        {"drain_batch": 0},
        {"port": 70000},
        {"keepalive_s": 1},
        {"host": "192.0.2.7"},  # plain MQTT off loopback
        {"tls": {"ca_file": "/ca.crt"}},  # TLS without a client certificate
        {"enabled": 1},  # strict: not coerced to a bool
        {"unknown": True},
    ],
)
def test_settings_refuse_out_of_range_values(values: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        UplinkSettings.model_validate(values)


def test_settings_accept_tls_off_loopback() -> None:
    tls = {"ca_file": "/ca.crt", "cert_file": "/dev.crt", "key_file": "/dev.key"}
    settings = UplinkSettings.model_validate({"host": "broker.hall", "tls": tls, "enabled": True})
    assert settings.tls.enabled and settings.max_inflight == 20 and settings.drain_batch == 500
