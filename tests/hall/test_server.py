"""``hall serve`` on a real mosquitto (TLS + the production ACL): request/response round trips
from a real device Requester, uploads resumed across a broker restart, deduplicated events, a
late will, and signed commands to a real lockerd with their acknowledgements."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hall.server import HallServer
from hall.service import Hall
from hall.settings import load_hall_settings
from hallkiosk.clock import ManualClock, SystemClock
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MosquittoFactory, MqttProbe
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.harness import InProcessLockerd
from tests.uplink.helpers import device_settings, make_device
from uplink.messages import encode
from uplink.requests import RequestKind, attach
from uplink.signing import generate_private_key, write_private_key, write_public_key
from uplink.topics import Topics

HALL_ID = "demo-hall"
WAIT_S = 30.0


def fallback(_args: Any, _reason: Any) -> dict[str, Any]:
    return {"offline": True}


KINDS = [
    RequestKind(name, 10.0, fallback)
    for name in ("ticket.issue", "prereview.upload", "appointment.sync", "catalog")
]


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    return mosquitto(tls=True, hall_id=HALL_ID, persistence=True)


@pytest.fixture
def hall(tmp_path: Path, broker: Broker, test_ca: CertAuthority) -> Iterator[HallServer]:
    cert = test_ca.issue_client(f"hall.{HALL_ID}")
    data = tmp_path / "hall"
    data.mkdir()
    q = json.dumps
    site = data / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\nhall_id = {q(HALL_ID)}\ndata_dir = {q(str(data))}\n"
        f"[hall.mqtt]\nenabled = true\nhost = {q(broker.host)}\nport = {broker.port}\n"
        "reconnect_min_s = 0.05\nreconnect_max_s = 0.5\n"
        f"[hall.mqtt.tls]\nca_file = {q(str(cert.ca))}\ncert_file = {q(str(cert.cert))}\n"
        f"key_file = {q(str(cert.key))}\n"
    )
    settings = load_hall_settings([site])
    write_private_key(settings.signing_key_path, generate_private_key())
    service = Hall(settings, SystemClock())
    service.start()
    server = HallServer(service)
    server.start()
    assert server.wait_connected(WAIT_S)
    broker.wait_for_log("Sending SUBACK to hall-demo-hall-1", timeout_s=WAIT_S)
    try:
        yield server
    finally:
        server.stop()
        service.close()


@pytest.fixture
def requester(tmp_path: Path, broker: Broker, test_ca: CertAuthority, hall: HallServer) -> Any:
    cert = test_ca.issue_client("kiosk-01")
    settings = device_settings(broker, cert)
    (tmp_path / "kiosk").mkdir()
    with make_device(tmp_path / "kiosk", settings, device_id="kiosk-01") as device:
        req = attach(device.connection, device.topics, SystemClock(), KINDS)
        device.connection.start()
        wait_until(lambda: req.presence.hall_online, timeout_s=WAIT_S, what="hall presence online")
        yield req


def test_ticket_round_trip_and_a_plain_error(requester: Any, hall: HallServer) -> None:
    reply = requester.request("ticket.issue", {"category": "ss-submit"})
    assert reply.source == "hall" and reply.ok, reply
    assert reply.result["ticket"] == "A001" and reply.result["people_ahead"] == 0
    refused = requester.request("ticket.issue", {"category": "no-such"})
    assert refused.source == "hall" and not refused.ok
    assert refused.error.code == "unknown_category" and refused.error.message_zh
    assert hall.hall.queue.waiting()[0].device == "kiosk-01"


def test_upload_resumes_after_a_broker_restart(
    requester: Any, hall: HallServer, broker: Broker
) -> None:
    data = os.urandom(3 * 1024 + 100)
    chunk = 1024
    upload_id = uuid.uuid4().hex

    def send(index: int) -> Any:
        part = data[index * chunk : (index + 1) * chunk]
        return requester.request(
            "prereview.upload",
            {
                "upload_id": upload_id,
                "file_name": "hukou.jpg",
                "total_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "chunk_bytes": chunk,
                "index": index,
                "chunk_sha256": hashlib.sha256(part).hexdigest(),
                "data": base64.b64encode(part).decode(),
            },
        )

    assert send(0).result["missing"] == [1, 2, 3]
    assert send(1).result["missing"] == [2, 3]
    broker.restart()
    hall.wait_connected(WAIT_S)
    wait_until(lambda: requester.presence.hall_online, timeout_s=WAIT_S, what="hall back online")
    status = wait_until(
        lambda: (
            (r := requester.request("prereview.upload", {"upload_id": upload_id})).source == "hall"
            and r
        ),
        timeout_s=WAIT_S,
        what="status answered after the restart",
    )
    assert status.result["missing"] == [2, 3]
    for index in status.result["missing"]:
        last = send(index)
    assert last.result["complete"] is True
    assert hall.hall.intake.file_path(upload_id).read_bytes() == data


def _event(seq: int, event_id: str, type_: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "id": event_id,
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(),
            "type": type_,
            "device": "kiosk-01",
            "component": "kiosk",
            "data": data,
        }
    ).encode()


def _presence(state: str, session: int) -> bytes:
    body: dict[str, Any] = {
        "v": 1,
        "state": state,
        "device": "kiosk-01",
        "component": "kiosk",
        "session": session,
        "boot_id": uuid.uuid4().hex,
        "ts": datetime.now(UTC).isoformat(),
    }
    if state == "online":
        body["versions"] = {"hallkiosk": "0.1.0", "schema": 1}
    return json.dumps(body).encode()


@pytest.fixture
def kiosk_probe(broker: Broker, test_ca: CertAuthority, hall: HallServer) -> MqttProbe:
    return broker.connect("kiosk-probe", cert=test_ca.issue_client("kiosk-01"))


def test_events_are_ingested_once_and_alarms_open_and_close(
    kiosk_probe: MqttProbe, hall: HallServer
) -> None:
    topics = Topics(HALL_ID, "kiosk-01", "kiosk")
    raised = _event(
        1, uuid.uuid4().hex, "alarm", {"alarm": "paper_out", "subject": "printer", "active": True}
    )
    kiosk_probe.publish(topics.event("alarm"), raised)
    kiosk_probe.publish(topics.event("alarm"), raised)  # a redelivery
    wait_until(lambda: hall.stats["duplicates"] == 1, timeout_s=WAIT_S, what="duplicate seen")
    alarms = hall.hall.registry.alarms()
    assert [(a["code"], a["state"]) for a in alarms] == [("paper_out", "active")]
    cleared = _event(
        2, uuid.uuid4().hex, "alarm", {"alarm": "paper_out", "subject": "printer", "active": False}
    )
    kiosk_probe.publish(topics.event("alarm"), cleared)
    wait_until(lambda: not hall.hall.registry.alarms(), timeout_s=WAIT_S, what="alarm resolved")
    seen = hall.hall.store.one("SELECT COUNT(*) AS n FROM events_seen")
    assert seen is not None and seen["n"] == 2
    kiosk_probe.publish(topics.event("alarm"), b'{"v": 1, "garbage": true}')
    wait_until(lambda: hall.stats["dropped"] >= 1, timeout_s=WAIT_S, what="malformed dropped")


def test_a_late_will_from_an_old_session_does_not_mark_the_device_offline(
    kiosk_probe: MqttProbe, hall: HallServer
) -> None:
    topics = Topics(HALL_ID, "kiosk-01", "kiosk")

    def state() -> tuple[str, int] | None:
        row = hall.hall.store.one("SELECT state, session FROM devices WHERE device = 'kiosk-01'")
        return (row["state"], row["session"]) if row else None

    kiosk_probe.publish(topics.presence, _presence("online", 7), retain=True)
    wait_until(lambda: state() == ("online", 7), timeout_s=WAIT_S, what="online 7")
    kiosk_probe.publish(topics.presence, _presence("offline", 6), retain=True)  # late will
    wait_until(lambda: hall.stats["presence"] >= 2, timeout_s=WAIT_S, what="will handled")
    assert state() == ("online", 7)
    kiosk_probe.publish(topics.presence, _presence("offline", 7), retain=True)
    wait_until(lambda: state() == ("offline", 7), timeout_s=WAIT_S, what="offline 7")


def test_signed_command_round_trip_to_a_real_lockerd(
    tmp_path: Path,
    hall: HallServer,
    broker: Broker,
    test_ca: CertAuthority,
    lockboard_sim: LockboardSimFactory,
) -> None:
    settings = hall.hall.settings
    public = tmp_path / "hall-command.pub"
    from uplink.signing import load_private_key

    write_public_key(public, load_private_key(settings.signing_key_path).public_key())
    cert = test_ca.issue_client("locker-test")
    q = json.dumps
    extra = (
        f"[uplink]\nenabled = true\nhost = {q(broker.host)}\nport = {broker.port}\n"
        f"reconnect_min_s = 0.05\nreconnect_max_s = 0.5\nhall_key_file = {q(str(public))}\n"
        f"[uplink.tls]\nca_file = {q(str(cert.ca))}\ncert_file = {q(str(cert.cert))}\n"
        f"key_file = {q(str(cert.key))}\n"
    )
    sim = lockboard_sim("8a80", boards=(1,), channels=16)
    (tmp_path / "locker").mkdir()
    locker = InProcessLockerd(
        tmp_path / "locker",
        sim,
        "8a80",
        channels=6,
        extra=extra,
        clock=ManualClock(SystemClock().now()),  # the command window is checked on its clock
    ).start()
    try:
        broker.wait_for_log("Sending SUBACK to locker-test", timeout_s=WAIT_S)
        command_id = hall.send_command(
            "locker-test", "lockerd", "disable_bay", {"bay": "A01", "reason": "维修"}
        )

        def status() -> str | None:
            row = hall.hall.store.one(
                "SELECT status FROM commands WHERE command_id = ?", command_id
            )
            return row["status"] if row else None

        wait_until(lambda: status() == "result", timeout_s=WAIT_S, what="result ack")
        row = hall.hall.store.one("SELECT result FROM commands WHERE command_id = ?", command_id)
        assert row is not None and json.loads(row["result"]) == {"bay": "A01", "enabled": False}
        bays = locker.client.call("status")["bays"]
        assert next(b for b in bays if b["bay_id"] == "A01")["enabled"] is False
    finally:
        locker.stop()


_ = encode
