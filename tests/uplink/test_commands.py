"""Signed commands on the device: every rejection reason, at-most-once, the audit, and the
two-stage acks over a real mosquitto (TLS + the production ACL).

The first group drives ``CommandHandler.handle`` directly with a real SQLite command store: the
checks and the records do not need a broker. The last group sends commands from a client with the
hall's certificate and reads the acks the device publishes.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hallkiosk.clock import ManualClock
from hallkiosk.config import StrictModel
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority, CertFiles
from tests.fixtures.mosquitto import Broker, MqttProbe
from tests.uplink.test_connection import DEVICE, HALL_ID, device_settings, make_device
from uplink.commands import Action, ActionFailed, CommandHandler, CommandStore, Rejection
from uplink.messages import Ack, AckAccepted, AckRejected, AckResult, Command, decode, encode
from uplink.signing import generate_private_key, sign_command
from uplink.topics import Topics

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
TOPICS = Topics(HALL_ID, DEVICE, "lockerd")


class BayArgs(StrictModel):
    bay: str


@dataclass
class Runs:
    """What the test actions did, and a gate that holds them until the test lets go."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    gate: threading.Event = field(default_factory=threading.Event)

    def open_bay(self, command: Command, args: BayArgs) -> Mapping[str, Any]:
        self.gate.wait(10)
        self.calls.append((command.command_id, args.bay))
        if args.bay == "JAM":
            raise ActionFailed("door_jammed", "the door did not open")
        if args.bay == "BOOM":
            raise RuntimeError("a bug in the action")
        return {"bay": args.bay, "opened": True}


@dataclass
class Rig:
    handler: CommandHandler
    store: CommandStore
    clock: ManualClock
    key: Ed25519PrivateKey
    runs: Runs
    path: Path

    def command(self, command_id: str = "cmd-1", **overrides: Any) -> Command:
        fields: dict[str, Any] = {
            "device": DEVICE,
            "component": "lockerd",
            "command_id": command_id,
            "issued_at": self.clock.now(),
            "expires_at": self.clock.now() + timedelta(minutes=5),
            "action": "open_bay",
            "args": {"bay": "A01"},
            **overrides,
        }
        key = fields.pop("key", self.key)
        return sign_command(key, **fields)

    def send(self, command: Command | bytes, topic: str = TOPICS.command) -> Rejection | None:
        payload = command if isinstance(command, bytes) else encode(command)
        return self.handler.handle(topic, payload).rejection

    def replies(self) -> list[Ack]:
        with sqlite3.connect(self.path) as conn:
            rows = conn.execute("SELECT payload FROM command_replies ORDER BY id").fetchall()
        return [decode(Ack, bytes(row[0])) for row in rows]


def make_rig(path: Path, *, key: Ed25519PrivateKey | None = None, installed: bool = True) -> Rig:
    key = key or generate_private_key()
    clock = ManualClock(T0)
    store = CommandStore(path)
    runs = Runs()
    handler = CommandHandler(
        store,
        TOPICS,
        clock,
        key.public_key() if installed else None,
        [Action("open_bay", BayArgs, runs.open_bay)],
        max_window_s=900,
        clock_skew_s=60,
    )
    return Rig(handler, store, clock, key, runs, path)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = make_rig(tmp_path / "device.db")
    made.runs.gate.set()
    made.handler.start()
    try:
        yield made
    finally:
        made.handler.stop()
        made.store.close()


def wait_result(rig: Rig, command_id: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for ack in rig.replies():
            if isinstance(ack.root, AckResult) and ack.root.command_id == command_id:
                return dict(ack.root.result)
        return None

    return wait_until(found, timeout_s=10, what=f"result of {command_id}")


# --- the checks, in order -----------------------------------------------------------------------


def test_a_good_command_is_accepted_run_once_and_acked_in_two_stages(rig: Rig) -> None:
    assert rig.send(rig.command()) is None
    assert wait_result(rig, "cmd-1") == {"bay": "A01", "opened": True}
    stages = [type(ack.root) for ack in rig.replies()]
    assert stages == [AckAccepted, AckResult]
    assert rig.runs.calls == [("cmd-1", "A01")]
    audit = rig.store.audit()
    assert [(e.command_id, e.stage) for e in audit] == [("cmd-1", "accepted"), ("cmd-1", "result")]
    assert audit[0].detail["args"] == {"bay": "A01"}
    assert audit[1].detail["result"] == {"bay": "A01", "opened": True}


def test_a_redelivered_command_is_rejected_as_replay_and_never_runs_twice(rig: Rig) -> None:
    command = rig.command()
    assert rig.send(command) is None
    wait_result(rig, "cmd-1")
    assert rig.send(command) is Rejection.REPLAY
    # a replay with a fresh, valid signature (same id) is still a replay
    assert rig.send(rig.command(issued_at=rig.clock.now() + timedelta(seconds=5))) is (
        Rejection.REPLAY
    )
    assert rig.runs.calls == [("cmd-1", "A01")]
    rejected = [a.root for a in rig.replies() if isinstance(a.root, AckRejected)]
    assert [(r.command_id, r.reason) for r in rejected] == [("cmd-1", "replay")] * 2


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda r: b"{not json", Rejection.MALFORMED),
        (lambda r: b'{"v": 1, "command_id": "cmd-x", "action": "open_bay"}', Rejection.MALFORMED),
        (lambda r: r.command(device="locker-02"), Rejection.WRONG_DEVICE),
        (lambda r: r.command(component="kiosk"), Rejection.WRONG_DEVICE),
        (
            lambda r: r.command(expires_at=r.clock.now() + timedelta(hours=2)),
            Rejection.WINDOW_TOO_LONG,
        ),
        (
            lambda r: r.command(
                issued_at=r.clock.now() - timedelta(minutes=10),
                expires_at=r.clock.now() - timedelta(seconds=1),
            ),
            Rejection.EXPIRED,
        ),
        (
            lambda r: r.command(
                issued_at=r.clock.now() + timedelta(minutes=3),
                expires_at=r.clock.now() + timedelta(minutes=8),
            ),
            Rejection.NOT_YET_VALID,
        ),
        (lambda r: r.command(key=generate_private_key()), Rejection.BAD_SIGNATURE),
        (lambda r: r.command(action="self_destruct"), Rejection.UNKNOWN_ACTION),
        (lambda r: r.command(args={"bay": 3}), Rejection.INVALID_ARGS),
        (lambda r: r.command(args={"bay": "A01", "extra": 1}), Rejection.INVALID_ARGS),
    ],
)
def test_each_bad_command_is_rejected_audited_logged_and_never_run(
    rig: Rig, mutate: Any, reason: Rejection, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="uplink.commands"):
        assert rig.send(mutate(rig)) is reason
    entry = rig.store.audit()[-1]
    assert entry.stage == "rejected"
    assert entry.reason  # the explanation, e.g. which field failed
    # the log names the reason code and the same explanation
    assert any(
        str(reason) in r.getMessage() and entry.reason in r.getMessage() for r in caplog.records
    ), [r.getMessage() for r in caplog.records]
    assert rig.runs.calls == []
    acks = rig.replies()
    if entry.command_id is None:  # undecodable and no usable id: audited, nothing to ack
        assert acks == []
    else:
        assert [(type(a.root), getattr(a.root, "reason", None)) for a in acks] == [
            (AckRejected, str(reason))
        ]


def test_an_unsigned_command_is_malformed(rig: Rig) -> None:
    document = json.loads(encode(rig.command()))
    del document["sig"]
    assert rig.send(json.dumps(document).encode()) is Rejection.MALFORMED
    entry = rig.store.audit()[-1]
    assert entry.command_id == "cmd-1" and "sig" in (entry.reason or "")


def test_a_command_on_another_devices_topic_is_wrong_device(rig: Rig) -> None:
    other = Topics(HALL_ID, "locker-02", "lockerd")
    assert rig.send(rig.command(), topic=other.command) is Rejection.WRONG_DEVICE


def test_without_an_installed_hall_key_every_command_is_refused(tmp_path: Path) -> None:
    rig = make_rig(tmp_path / "device.db", installed=False)
    try:
        assert rig.send(rig.command()) is Rejection.BAD_SIGNATURE
        assert "no hall command key" in (rig.store.audit()[-1].reason or "")
    finally:
        rig.store.close()


def test_the_command_audit_is_append_only(rig: Rig) -> None:
    rig.send(rig.command(action="nope"))
    with sqlite3.connect(rig.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("DELETE FROM command_audit")
    with sqlite3.connect(rig.path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE command_audit SET reason = 'x'")


# --- results ------------------------------------------------------------------------------------


def test_a_physical_failure_is_a_result_not_a_rejection(rig: Rig) -> None:
    assert rig.send(rig.command(args={"bay": "JAM"})) is None
    assert wait_result(rig, "cmd-1") == {"error": "door_jammed"}
    assert rig.send(rig.command("cmd-2", args={"bay": "BOOM"})) is None
    assert wait_result(rig, "cmd-2") == {"error": "internal_error"}


# --- replay store across restarts and expiry ----------------------------------------------------


def test_the_replay_store_survives_a_restart_until_the_command_expires(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    first = make_rig(path)
    first.runs.gate.set()
    first.handler.start()
    command = first.command()
    assert first.send(command) is None
    wait_result(first, "cmd-1")
    first.handler.stop()
    first.store.close()

    again = make_rig(path, key=first.key)
    again.clock.advance(60)
    again.handler.start()
    try:
        assert again.send(command) is Rejection.REPLAY
        # once expired it is refused as expired, and then the id may be forgotten
        again.clock.advance(10 * 60)
        assert again.send(command) is Rejection.EXPIRED
        assert again.store.forget_expired(again.clock.now() - timedelta(seconds=60)) == 1
        assert again.send(command) is Rejection.EXPIRED
        assert again.runs.calls == []
    finally:
        again.handler.stop()
        again.store.close()


def test_a_command_interrupted_by_a_crash_reports_interrupted_and_does_not_run_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "device.db"
    first = make_rig(path)
    first.handler.start()  # the gate stays shut: the action is "running" when we crash
    command = first.command()
    assert first.send(command) is None
    # the crash: nothing more is recorded by this handler (its store is closed under it)
    first.store.close()
    first.runs.gate.set()
    first.handler.stop()

    again = make_rig(path, key=first.key)
    again.handler.start()
    try:
        assert wait_result(again, "cmd-1") == {"error": "interrupted"}
        assert again.send(command) is Rejection.REPLAY
        assert again.runs.calls == []
    finally:
        again.handler.stop()
        again.store.close()


# --- over a real broker -------------------------------------------------------------------------


@pytest.fixture
def broker(mosquitto: Any) -> Broker:
    made: Broker = mosquitto(tls=True, hall_id=HALL_ID)
    return made


@pytest.fixture
def hall(broker: Broker, test_ca: CertAuthority) -> MqttProbe:
    probe = broker.connect("hall-probe", cert=test_ca.issue_client(f"hall.{HALL_ID}"))
    probe.subscribe(TOPICS.ack)
    return probe


def acks_on_wire(hall: MqttProbe) -> list[Ack]:
    return [decode(Ack, payload) for payload in hall.payloads(TOPICS.ack)]


def test_commands_and_acks_over_the_broker_including_an_ack_held_across_an_outage(
    tmp_path: Path, broker: Broker, hall: MqttProbe, test_ca: CertAuthority
) -> None:
    cert: CertFiles = test_ca.issue_client(DEVICE)
    rig = make_rig(tmp_path / "commands.db")
    rig.runs.gate.set()
    with make_device(tmp_path, device_settings(broker, cert)) as device:
        rig.handler.attach(device.connection)
        rig.handler.start()
        device.connection.start()
        try:
            assert device.connection.wait_connected(20)
            # the device's subscription may lag its CONNACK a moment: resend until acked
            good = encode(rig.command())

            def acked() -> list[Ack]:
                if not acks_on_wire(hall):
                    hall.publish(TOPICS.command, good)
                return [a for a in acks_on_wire(hall) if isinstance(a.root, AckResult)]

            wait_until(acked, timeout_s=20, interval_s=0.5, what="accepted+result acks")
            statuses = [a.root.status for a in acks_on_wire(hall) if a.root.command_id == "cmd-1"]
            # accepted, then result; a resend before the first ack came is a replay
            assert statuses[:1] == ["accepted"] and "result" in statuses
            assert set(statuses) <= {"accepted", "result", "rejected"}
            assert rig.runs.calls == [("cmd-1", "A01")]

            # a rejection is acked on the wire with its reason
            hall.publish(TOPICS.command, encode(rig.command("cmd-2", key=generate_private_key())))
            wait_until(
                lambda: any(
                    isinstance(a.root, AckRejected) and a.root.reason == "bad_signature"
                    for a in acks_on_wire(hall)
                ),
                timeout_s=20,
                what="bad_signature ack",
            )

            # the broker goes away while a command finishes: its ack waits and is sent later
            rig.runs.gate.clear()
            hall.publish(TOPICS.command, encode(rig.command("cmd-3", args={"bay": "A02"})))
            wait_until(lambda: rig.runs.calls or rig.store.audit()[-1].command_id == "cmd-3")
            broker.kill()
            rig.runs.gate.set()
            wait_until(lambda: rig.store.pending_replies() > 0, what="result ack queued")
            broker.restart()
            probe = broker.connect("hall-probe-2", cert=test_ca.issue_client(f"hall.{HALL_ID}"))
            probe.subscribe(TOPICS.ack)
            wait_until(
                lambda: any(
                    isinstance(a.root, AckResult) and a.root.command_id == "cmd-3"
                    for a in acks_on_wire(probe)
                ),
                timeout_s=30,
                what="cmd-3 result after the outage",
            )
            wait_until(lambda: rig.store.pending_replies() == 0, what="replies deleted")
        finally:
            rig.handler.stop()
            rig.store.close()
