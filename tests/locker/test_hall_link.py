"""lockerd wired to the hall over a real mosquitto (TLS + the production ACL): its events,
telemetry, the overdue report, and the signed commands it accepts, refuses and runs once.

lockerd runs in process (``InProcessLockerd``, ManualClock) against a simulator process on a pty;
the hall is a real MQTT client with the hall's certificate (``HallSide``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import pytest

from locker.client import ApiError
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MosquittoFactory
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.hall_side import HALL_ID, HallSide, uplink_toml
from tests.locker.harness import BOARD, InProcessLockerd
from uplink.signing import generate_private_key

DEVICE = "locker-test"  # the harness's device id
PROTOCOL: Final = "8a80"


def ident(n: int) -> str:
    return hashlib.sha256(f"person-{n}".encode()).hexdigest()


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    return mosquitto(tls=True, hall_id=HALL_ID)


@pytest.fixture
def hall(broker: Broker, test_ca: CertAuthority, tmp_path: Path) -> HallSide:
    return HallSide(broker, test_ca, tmp_path, DEVICE)


@pytest.fixture
def locker(
    tmp_path: Path,
    lockboard_sim: LockboardSimFactory,
    broker: Broker,
    hall: HallSide,
    test_ca: CertAuthority,
) -> Iterator[InProcessLockerd]:
    sim = lockboard_sim(PROTOCOL, boards=(BOARD[PROTOCOL],), channels=16)
    extra = uplink_toml(broker, test_ca.issue_client(DEVICE), hall.public_key_file)
    daemon = InProcessLockerd(tmp_path, sim, PROTOCOL, channels=6, extra=extra).start()
    # commands sent before the device's first SUBSCRIBE is granted would reach nobody
    broker.wait_for_log(f"Sending SUBACK to {hall.topics.client_id}", timeout_s=30)
    try:
        yield daemon
    finally:
        daemon.stop()


def coil_fires(locker: InProcessLockerd, bay_id: str) -> int:
    channel = locker.channel(bay_id)
    return sum(1 for fire in locker.sim.control.unlock_log() if fire.channel == channel)


# --- events -------------------------------------------------------------------------------------


def test_a_load_and_a_pickup_reach_the_hall_in_order_without_secrets(
    locker: InProcessLockerd, hall: HallSide
) -> None:
    deposit_id, bay_id, password = locker.load(ident(1))
    locker.client.call("pickup", identity_hash=ident(1), password=password)
    locker.wait_door(bay_id, "open")
    locker.wait_door(bay_id, "closed")
    hall.wait_event("deposit_picked_up", deposit_id=deposit_id)
    hall.wait_event("door", bay_id=bay_id, door="closed", previous="open")

    events = hall.events()
    # one component's events, in seq order with no gap from the first
    assert [e.seq for e in sorted(events, key=lambda e: e.seq)] == list(range(1, len(events) + 1))
    business = [
        (e.type, e.data.get("purpose"))
        for e in sorted(events, key=lambda e: e.seq)
        if e.type in ("opening", "deposit_stored", "deposit_picked_up")
    ]
    # (a pickup's two events come from one transaction: the deposit, then the opening)
    assert business == [
        ("opening", "load"),
        ("deposit_stored", None),
        ("deposit_picked_up", None),
        ("opening", "pickup"),
    ]
    stored = next(e for e in events if e.type == "deposit_stored")
    assert stored.data["recipient"] == "张*三" and stored.data["case_number"] == "ZJ2026-0001"
    # neither the password nor an identity (hash or number) is ever published
    for raw in hall.raw_events():
        document = json.loads(raw)
        values = json.dumps(document["data"], ensure_ascii=False)
        assert f'"{password}"' not in values and ident(1) not in values
        assert "password" not in document["data"]


def test_a_change_whose_event_cannot_be_recorded_does_not_happen(
    locker: InProcessLockerd, hall: HallSide
) -> None:
    """The event is written in the business transaction: if the outbox refuses it (here a
    trigger stands in for a full disk), the deposit is not stored either, and nothing is lost."""
    started = locker.start_load(ident(2))
    locker.wait_door(started["bay_id"], "open")
    locker.wait_door(started["bay_id"], "closed")
    db = sqlite3.connect(locker.settings.db_path, isolation_level=None)
    db.execute(
        "CREATE TRIGGER refuse_events BEFORE INSERT ON outbox_events"
        " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    with pytest.raises(ApiError):
        locker.client.call("deposit.confirm", staff_id="clerk1", deposit_id=started["deposit_id"])
    state = db.execute(
        "SELECT state FROM deposits WHERE id = ?", (started["deposit_id"],)
    ).fetchone()[0]
    assert state == "loading"
    assert locker.audit("deposit_stored") == []
    db.execute("DROP TRIGGER refuse_events")
    # once the outbox takes events again, the retried confirm stores it and the hall hears it
    locker.client.call("deposit.confirm", staff_id="clerk1", deposit_id=started["deposit_id"])
    assert len(locker.audit("deposit_stored")) == 1
    hall.wait_event("deposit_stored", deposit_id=started["deposit_id"])
    assert hall.event_types().count("deposit_stored") == 1


def test_overdue_deposits_are_reported_once(locker: InProcessLockerd, hall: HallSide) -> None:
    deposit_id, _bay, _pw = locker.load(ident(3))
    locker.clock.advance(9 * 24 * 3600)  # past the end of the 7th day
    assert locker.on_loop(lambda service: service.report_overdue()) == 1
    assert locker.on_loop(lambda service: service.report_overdue()) == 0
    event = hall.wait_event("deposit_overdue", deposit_id=deposit_id)
    assert event.data["recipient"] == "张*三"
    assert hall.event_types().count("deposit_overdue") == 1
    assert [e["kind"] for e in locker.audit("deposit_overdue")] == ["deposit_overdue"]


def test_telemetry_carries_doors_occupancy_and_health(
    locker: InProcessLockerd, hall: HallSide
) -> None:
    locker.load(ident(4))

    def occupied_snapshot() -> Any:
        return next((t for t in hall.telemetry() if t.metrics.get("bays_occupied") == 1), None)

    snapshot = wait_until(occupied_snapshot, timeout_s=30, what="telemetry with one occupied bay")
    metrics = snapshot.metrics
    assert metrics["bays_total"] == 6 and metrics["boards_replying"] == 1
    assert set(metrics["door_states"]) == {f"A{n:02d}" for n in range(1, 7)}
    assert isinstance(metrics["disk_free_bytes"], int) and metrics["disk_free_bytes"] > 0
    assert "outbox_events" in metrics and "command_acks_pending" in metrics


# --- commands -----------------------------------------------------------------------------------


def test_open_bay_by_command_opens_once_even_when_redelivered(
    locker: InProcessLockerd, hall: HallSide
) -> None:
    now = locker.clock.now()
    command_id = hall.send("open_bay", {"bay": "A05", "reason": "维修检查"}, now=now)
    assert hall.result(command_id) == {"bay": "A05", "opened": True}
    statuses = [a.root.status for a in hall.acks(command_id)]
    assert statuses == ["accepted", "result"]
    # the same id again, even freshly signed: rejected as a replay, nothing fires
    hall.send("open_bay", {"bay": "A05", "reason": "维修检查"}, now=now, command_id=command_id)
    wait_until(lambda: len(hall.acks(command_id)) == 3, what="replay ack")
    assert hall.acks(command_id)[-1].root.status == "rejected"
    assert getattr(hall.acks(command_id)[-1].root, "reason", None) == "replay"
    assert coil_fires(locker, "A05") == 1
    intents = locker.audit("open_intent")
    assert [(e["bay_id"], e["actor"]) for e in intents] == [("A05", "hall")]
    hall.wait_event("opening", bay_id="A05", purpose="maintenance")


def test_disable_and_enable_a_bay_by_command(locker: InProcessLockerd, hall: HallSide) -> None:
    now = locker.clock.now()
    disabled = hall.send("disable_bay", {"bay": "A01", "reason": "门锁维修"}, now=now)
    assert hall.result(disabled) == {"bay": "A01", "enabled": False}
    bays = {b["bay_id"]: b for b in locker.client.call("status")["bays"]}
    assert not bays["A01"]["enabled"] and bays["A01"]["disabled_reason"] == "门锁维修"
    hall.wait_event("bay", bay_id="A01", enabled=False)
    enabled = hall.send("enable_bay", {"bay": "A01"}, now=now)
    assert hall.result(enabled) == {"bay": "A01", "enabled": True}
    unknown = hall.send("enable_bay", {"bay": "Z99"}, now=now)
    assert hall.result(unknown)["error"] == "no_such_bay"


def test_resync_reads_every_board(locker: InProcessLockerd, hall: HallSide) -> None:
    command_id = hall.send("resync", {}, now=locker.clock.now())
    assert hall.result(command_id) == {"boards_total": 1, "boards_replying": 1, "doors_open": 0}


def test_set_config_applies_persists_and_refuses_bad_values(
    locker: InProcessLockerd, hall: HallSide
) -> None:
    now = locker.clock.now()
    ok = hall.send("set_config", {"key": "lockerd.pickup.max_wrong_attempts", "value": 3}, now=now)
    assert hall.result(ok) == {"key": "lockerd.pickup.max_wrong_attempts", "value": 3}
    assert locker.on_loop(lambda service: service.cfg.pickup.max_wrong_attempts) == 3
    runtime = locker.settings.runtime_config_path.read_text()
    assert "[lockerd.pickup]" in runtime and "max_wrong_attempts = 3" in runtime
    hall.wait_event("config_changed", key="lockerd.pickup.max_wrong_attempts", value=3)

    out_of_range = hall.send(
        "set_config", {"key": "lockerd.pickup.max_wrong_attempts", "value": 99}, now=now
    )
    result = hall.result(out_of_range)
    assert result["error"] == "invalid_value"
    assert any("max_wrong_attempts" in p for p in result["problems"])
    assert locker.on_loop(lambda service: service.cfg.pickup.max_wrong_attempts) == 3
    assert "max_wrong_attempts = 3" in locker.settings.runtime_config_path.read_text()

    # a key that is not changeable at run time is refused before anything runs
    not_allowed = hall.send("set_config", {"key": "site.data_dir", "value": 1}, now=now)
    assert getattr(hall.wait_status(not_allowed, "rejected").root, "reason", None) == (
        "invalid_args"
    )


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "malformed"),
        ("expired", "expired"),
        ("wrong_key", "bad_signature"),
        ("wrong_device", "wrong_device"),
    ],
)
def test_bad_commands_are_rejected_audited_and_do_nothing(
    locker: InProcessLockerd, hall: HallSide, case: str, reason: str
) -> None:
    now = locker.clock.now()
    args = {"bay": "A02", "reason": "维修"}
    if case == "unsigned":
        unsigned = {
            "v": 1,
            "device": DEVICE,
            "component": "lockerd",
            "command_id": "cmd-bad",
            "issued_at": now.isoformat(),
            "expires_at": (now + timedelta(minutes=5)).isoformat(),
            "action": "open_bay",
            "args": args,
        }
        hall.publish_raw(json.dumps(unsigned).encode())
    elif case == "expired":
        hall.send(
            "open_bay", args, now=now - timedelta(minutes=10), command_id="cmd-bad", valid_s=60
        )
    elif case == "wrong_key":
        hall.send("open_bay", args, now=now, command_id="cmd-bad", key=generate_private_key())
    else:
        # addressed to another device but sent on this device's topic
        hall.send("open_bay", args, now=now, command_id="cmd-bad", device="locker-other")
    ack = hall.wait_status("cmd-bad", "rejected").root
    assert getattr(ack, "reason", None) == reason
    assert coil_fires(locker, "A02") == 0
    assert locker.audit("open_intent") == []
    db = sqlite3.connect(locker.settings.db_path)
    rows = db.execute(
        "SELECT stage, reason FROM command_audit WHERE command_id = 'cmd-bad'"
    ).fetchall()
    assert len(rows) == 1 and rows[0][0] == "rejected" and rows[0][1]


def test_with_a_hall_seal_key_the_password_travels_sealed_to_its_deposit(
    tmp_path: Path,
    lockboard_sim: LockboardSimFactory,
    broker: Broker,
    hall: HallSide,
    test_ca: CertAuthority,
) -> None:
    from uplink.sealing import SealError, ensure_seal_key, unseal, write_seal_public_key

    seal_key = ensure_seal_key(tmp_path / "hall-seal.key")
    write_seal_public_key(tmp_path / "hall-seal.pub", seal_key)
    sim = lockboard_sim(PROTOCOL, boards=(BOARD[PROTOCOL],), channels=16)
    extra = uplink_toml(broker, test_ca.issue_client(DEVICE), hall.public_key_file)
    extra = extra.replace(
        "[uplink.tls]", f'hall_seal_key_file = "{tmp_path / "hall-seal.pub"}"\n[uplink.tls]'
    )
    (tmp_path / "locker").mkdir()
    daemon = InProcessLockerd(tmp_path / "locker", sim, PROTOCOL, channels=6, extra=extra).start()
    try:
        deposit_id, _bay, password = daemon.load(ident(7))
        stored = hall.wait_event("deposit_stored", deposit_id=deposit_id)
        sealed = stored.data["password_sealed"]
        assert isinstance(sealed, str) and password not in sealed
        assert unseal(sealed, seal_key, f"{DEVICE}/{deposit_id}") == password
        with pytest.raises(SealError):  # bound to its deposit
            unseal(sealed, seal_key, f"{DEVICE}/{deposit_id + 1}")
        again = daemon.client.call(
            "deposit.reissue_password", staff_id="clerk1", deposit_id=deposit_id
        )
        reissued = hall.wait_event("password_reissued", deposit_id=deposit_id)
        assert (
            unseal(reissued.data["password_sealed"], seal_key, f"{DEVICE}/{deposit_id}")
            == (again["password"])
        )
    finally:
        daemon.stop()
