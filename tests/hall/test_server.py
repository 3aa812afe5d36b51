"""``hall serve`` on a real mosquitto (TLS + the production ACL): request/response round trips
from a real device Requester, uploads resumed across a broker restart, deduplicated events, a
late will, and signed commands to a real lockerd with their acknowledgements."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hall.appointments.importer import parse_csv
from hall.server import HallServer
from hall.service import Hall
from hall.settings import load_hall_settings
from hallkiosk.clock import Clock, ManualClock, SystemClock
from hallkiosk.privacy import gb11643_check_digit
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MosquittoFactory, MqttProbe
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.harness import InProcessLockerd
from tests.uplink.helpers import device_settings, make_device
from uplink.messages import AppointmentList, decode, encode
from uplink.requests import RequestKind, attach
from uplink.signing import generate_private_key, write_private_key, write_public_key
from uplink.topics import Topics, hall_appointments

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
    with serving_hall(tmp_path, broker, test_ca, SystemClock()) as server:
        yield server


@contextlib.contextmanager
def serving_hall(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: Clock
) -> Iterator[HallServer]:
    cert = test_ca.issue_client(f"hall.{HALL_ID}")
    data = tmp_path / "hall"
    data.mkdir()
    q = json.dumps
    site = data / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\nhall_id = {q(HALL_ID)}\ndata_dir = {q(str(data))}\n"
        f"[hall.mqtt]\nenabled = true\nhost = {q(broker.host)}\nport = {broker.port}\n"
        "reconnect_min_s = 0.05\nreconnect_max_s = 0.5\nappointments_check_s = 0.2\n"
        f"[hall.mqtt.tls]\nca_file = {q(str(cert.ca))}\ncert_file = {q(str(cert.cert))}\n"
        f"key_file = {q(str(cert.key))}\n"
    )
    settings = load_hall_settings([site])
    write_private_key(settings.signing_key_path, generate_private_key())
    service = Hall(settings, clock)
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

        # ops' path: `hall command` signs, sends and prints the acknowledgements
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "hall",
                "--config",
                str(tmp_path / "hall" / "site.toml"),
                "--json",
                "command",
                "locker-test",
                "enable_bay",
                "--arg",
                'bay="A01"',
                "--wait-s",
                str(WAIT_S),
            ],
            capture_output=True,
            text=True,
            timeout=WAIT_S + 30,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        printed = json.loads(shown.stdout)
        assert [a["status"] for a in printed["acks"]] == ["accepted", "result"]
        assert printed["acks"][-1]["result"] == {"bay": "A01", "enabled": True}
        bays = locker.client.call("status")["bays"]
        assert next(b for b in bays if b["bay_id"] == "A01")["enabled"] is True
    finally:
        locker.stop()


def _bookings(hall: Hall, day: date, serials: range) -> None:
    """Import bookings for ``day`` through the platform's CSV path, as ``hall appointments
    import`` does."""
    lines = ["booking_code,id_number,name,matter_code,matter_name,area,slot_start,slot_end,phone"]
    for n in serials:
        lines.append(
            f"BK{n:06d},{_id_number(n)},王小明,SS-0101,养老保险参保,social-security,"
            f"{day} 10:00:00,{day} 10:30:00,13800138{n:03d}"
        )
    result = parse_csv("\n".join(lines).encode(), hasher=hall.hasher, tz=hall.clock.tz)
    assert not result.errors, result.errors
    hall.appointments.store_records(result.records)


def _id_number(serial: int) -> str:
    first17 = f"99010619800101{serial:03d}"
    return first17 + gb11643_check_digit(first17)


def _lists(probe: MqttProbe) -> list[AppointmentList]:
    return [decode(AppointmentList, p) for p in probe.payloads(hall_appointments(HALL_ID)) if p]


def test_todays_appointments_are_retained_for_kiosks_with_hashed_identities_only(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority
) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    with serving_hall(tmp_path, broker, test_ca, clock) as server:
        hall = server.hall
        _bookings(hall, date(2026, 11, 23), range(1, 3))
        _bookings(hall, date(2026, 11, 24), range(3, 4))  # tomorrow's is not in today's list
        # a kiosk that connects later gets the list at once: it is retained
        kiosk = broker.connect("kiosk-01-probe", cert=test_ca.issue_client("kiosk-01"))
        kiosk.subscribe(hall_appointments(HALL_ID))
        wait_until(
            lambda: any(len(x.appointments) == 2 for x in _lists(kiosk)),
            timeout_s=WAIT_S,
            what="today's list with two bookings",
        )
        listed = [x for x in _lists(kiosk) if len(x.appointments) == 2][-1]
        assert listed.service_day == "2026-11-23" and listed.hall == HALL_ID
        assert {a.identity_hash for a in listed.appointments} == {
            hall.hasher.hash_id_number(_id_number(n)) for n in (1, 2)
        }
        raw = kiosk.payloads(hall_appointments(HALL_ID))[-1].decode()
        for n in (1, 2):
            assert _id_number(n) not in raw and f"13800138{n:03d}" not in raw
        assert "王小明" not in raw and "王*明" in raw

        # an import by another process (the CLI) reaches kiosks within appointments_check_s
        cli = Hall(hall.settings, clock)
        try:
            _bookings(cli, date(2026, 11, 23), range(4, 5))
        finally:
            cli.close()
        wait_until(
            lambda: len(_lists(kiosk)[-1].appointments) == 3,
            timeout_s=WAIT_S,
            what="the list with the CLI's booking",
        )
        revisions = [x.revision for x in _lists(kiosk)]
        assert len(set(revisions)) == len(revisions), "an unchanged list was published again"

        # a check-in (opens 30 minutes before the 10:00 slot) changes the booking's status
        clock.advance(105 * 60)
        hall.appointments.check_in(device="kiosk-01", booking_code="BK000001")
        wait_until(
            lambda: any(
                a.booking_code == "BK000001" and a.status == "checked_in"
                for a in _lists(kiosk)[-1].appointments
            ),
            timeout_s=WAIT_S,
            what="the check-in in the list",
        )

        # after local midnight the list is the new day's
        clock.advance(14 * 3600 + 16 * 60)  # 09:45 -> 00:01
        wait_until(
            lambda: _lists(kiosk)[-1].service_day == "2026-11-24",
            timeout_s=WAIT_S,
            what="the new day's list",
        )
        assert [a.booking_code for a in _lists(kiosk)[-1].appointments] == ["BK000003"]

        # a device may read the list but never write it
        reason = kiosk.publish(hall_appointments(HALL_ID), b"{}", retain=True)
        assert reason.is_failure and reason.getName() == "Not authorized"
        assert server.stats["dropped"] == 0


def test_the_halls_socket_has_nagle_off(hall: HallServer) -> None:
    client = hall._client
    assert client is not None
    raw = client.socket()
    assert isinstance(raw, socket.socket)
    assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


_ = encode
