"""A real lockerd process, SIGKILLed while its events wait for a broker that is down: after the
restart every event reaches the hall, in seq order, none lost (docs/mqtt.md "Events")."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Final

from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import MosquittoFactory
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.crash_driver import BOARD_FOR, LockerdFactory
from tests.locker.hall_side import HALL_ID, HallSide, uplink_toml

DEVICE = "locker-01"  # the packaged default device id, which the crash driver's site keeps
PROTOCOL: Final = "8a80"


def pending_events(db_path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT seq, event_id, type FROM outbox_events ORDER BY seq").fetchall()
    return [(int(seq), str(event_id), str(kind)) for seq, event_id, kind in rows]


def test_unacknowledged_events_are_replayed_after_a_sigkill(
    tmp_path: Path,
    mosquitto: MosquittoFactory,
    test_ca: CertAuthority,
    lockboard_sim: LockboardSimFactory,
    lockerd_factory: LockerdFactory,
) -> None:
    broker = mosquitto(tls=True, hall_id=HALL_ID, persistence=True)
    hall = HallSide(broker, test_ca, tmp_path, DEVICE)
    sim = lockboard_sim(PROTOCOL, boards=(BOARD_FOR[PROTOCOL],), channels=8)
    extra = uplink_toml(broker, test_ca.issue_client(DEVICE), hall.public_key_file)
    runner = lockerd_factory(sim, PROTOCOL, 4, extra=extra)
    broker.wait_for_log(f"Sending SUBACK to {hall.topics.client_id}", timeout_s=30)

    # the hall's broker goes down; business goes on and its events queue in the outbox
    broker.kill()
    started = runner.client.call(
        "deposit.start",
        staff_id="clerk1",
        case_number="ZJ2026-0042",
        size="S",
        recipient={
            "identity_hash": hashlib.sha256(b"person-42").hexdigest(),
            "masked_name": "李*四",
            "masked_id": "3301**********5678",
        },
    )

    def door_closed_again() -> bool:
        # the door event first, then the state: read the other way round, a "closed" from before
        # the clerk opened the door would pass together with the "open" event that followed it
        opened = any(kind == "door" for _s, _i, kind in pending_events(runner.db_path))
        bays = {b["bay_id"]: b for b in runner.client.call("status")["bays"]}
        return opened and bays[started["bay_id"]]["door"] == "closed"

    wait_until(door_closed_again, timeout_s=20, what="the simulated clerk shut the door")
    runner.client.call("deposit.confirm", staff_id="clerk1", deposit_id=started["deposit_id"])
    queued = pending_events(runner.db_path)
    assert "deposit_stored" in [kind for _s, _i, kind in queued]

    runner.kill()  # SIGKILL: nothing is flushed, nothing says goodbye
    broker.restart()
    hall.connect()
    runner.start()

    wait_until(
        lambda: {event_id for _s, event_id, _k in queued} <= {e.id for e in hall.events()},
        timeout_s=30,
        what=lambda: f"the queued events {queued}; the hall has {hall.event_types()}",
    )
    arrived = sorted(hall.events(), key=lambda e: e.seq)
    assert [e.seq for e in arrived] == list(range(1, len(arrived) + 1))  # no gap
    by_id = {e.id: e for e in arrived}
    assert [(by_id[i].seq, by_id[i].type) for _s, i, _k in queued] == [
        (seq, kind) for seq, _i, kind in queued
    ]
    wait_until(lambda: pending_events(runner.db_path) == [], what="outbox empty after replay")
