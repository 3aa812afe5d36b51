"""UplinkConnection against a real mosquitto with the production TLS + ACL config.

The device, broker and hall-probe helpers live in tests/uplink/helpers.py (fixtures registered by
tests/uplink/conftest.py). The names other test files import from here are re-exported below.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from tests.fixtures import wait_until
from tests.fixtures.certs import CertFiles
from tests.fixtures.mosquitto import Broker, MqttProbe
from tests.uplink.helpers import (
    COMPONENT,
    DEVICE,
    HALL_ID,
    WAIT_S,
    Device,
    broker,
    device_cert,
    device_settings,
    hall,
    make_device,
    wait_presence,
)
from uplink.connection import NotConnected, backoff_s
from uplink.messages import Birth, Event, Presence, Will, decode
from uplink.settings import UplinkSettings
from uplink.topics import HallFilters, Topics

# re-exported: other test files (test_requests.py, test_commands.py) import them from here
__all__ = [
    "COMPONENT",
    "DEVICE",
    "HALL_ID",
    "WAIT_S",
    "Device",
    "broker",
    "device_cert",
    "device_settings",
    "hall",
    "make_device",
]


def test_birth_then_will_on_abrupt_loss_then_next_session(hall: MqttProbe, device: Device) -> None:
    device.connection.start()
    birth = wait_presence(hall, device.topics, Birth, 1)
    assert birth.boot_id == device.session.boot_id
    assert [m.retain for m in hall.messages(device.topics.presence)] == [False]  # live delivery

    # Cut the TCP connection under paho without a DISCONNECT: the broker must publish the will.
    # (The one reach into a private attribute: nothing public should hand out the socket.)
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


def test_publish_from_other_threads_is_written_by_the_network_thread_only(
    hall: MqttProbe, device: Device, monkeypatch: pytest.MonkeyPatch
) -> None:
    """publish() is thread-safe: paho only queues, the network thread writes. If other threads
    wrote to the TLS socket themselves, concurrently with the drain's writes, the broker could
    see corrupt records ("bad record mac") and drop the device."""
    writers: set[str] = set()
    original_send = ssl.SSLSocket.send

    def recording_send(sock: ssl.SSLSocket, data: bytes, flags: int = 0) -> int:
        writers.add(threading.current_thread().name)
        return original_send(sock, data, flags)

    monkeypatch.setattr(ssl.SSLSocket, "send", recording_send)
    with pytest.raises(NotConnected):
        device.connection.publish(device.topics.ack, b"too early", qos=1)
    backlog = [device.outbox.append("bay_opened", {"n": n}).id for n in range(2000)]
    device.connection.start()
    assert device.connection.wait_connected(WAIT_S)
    sent: list[mqtt.MQTTMessageInfo] = []
    errors: list[BaseException] = []

    def publish_many(thread_no: int) -> None:
        try:
            for n in range(100):
                payload = f"t{thread_no}-{n}".encode()
                sent.append(device.connection.publish(device.topics.ack, payload, qos=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=publish_many, args=(no,), name=f"publisher-{no}") for no in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert errors == []
    for info in sent:
        info.wait_for_publish(WAIT_S)
        assert info.is_published()
    wait_until(
        lambda: device.outbox.backlog().events == 0,
        timeout_s=WAIT_S,
        what=lambda: f"an empty outbox; {device.connection.stats}",
    )
    wait_until(lambda: len(hall.payloads(device.topics.ack)) == 400, timeout_s=WAIT_S)
    events = device.topics.event("bay_opened")
    wait_until(
        lambda: {decode(Event, p).id for p in hall.payloads(events)} == set(backlog),
        timeout_s=WAIT_S,
    )
    stats = device.connection.stats
    assert stats.connects == 1 and stats.callback_errors == 0 and stats.acks == len(backlog)
    assert f"uplink-{device.topics.client_id}" in writers
    assert not {name for name in writers if name.startswith("publisher-")}


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
        # nothing runs, so nothing can connect
        assert f"uplink-{embedded.topics.client_id}" not in {t.name for t in threading.enumerate()}
        assert embedded.session.current() == 0  # no connection attempt used a session number
        assert embedded.connection.stats.connects == 0
        assert embedded.outbox.backlog().events == 3


def test_reconnect_backoff_is_jittered_between_min_and_doubling_cap() -> None:
    rng = random.Random(7)
    for failures in range(10):
        cap = min(60.0, 2.0 ** (failures + 1))
        delays = [backoff_s(1.0, 60.0, failures, rng) for _ in range(200)]
        assert all(1.0 <= d <= cap for d in delays), (failures, min(delays), max(delays))
        assert len(set(delays)) > 1  # spread, so a hall's devices do not return in step
    assert backoff_s(1.0, 60.0, 10_000, rng) <= 60.0  # a long outage: capped, no overflow


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


def test_the_socket_has_nagle_off(hall: MqttProbe, device: Device) -> None:
    # with Nagle on, a request's PUBACK and the next packet wait ~40 ms for a delayed ACK
    device.connection.start()
    wait_presence(hall, device.topics, Birth, 1)
    client = device.connection._client
    assert client is not None
    raw = client.socket()
    assert isinstance(raw, socket.socket)
    assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
