"""Event seq at the hall (docs/mqtt.md "Events"): per device component the hall notices a gap in
the seqs, waits ``[hall.registry] seq_gap_grace_s`` for events of other types that overtook
each other in flight, then raises ``event_seq_gap`` with the missing ranges, and resolves it
when the gap fills. Time is a ManualClock; the periodic check is the hall's sweep."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hall.service import Hall
from hall.settings import load_hall_settings
from hall.store import SCHEMA, open_db
from hallkiosk.clock import ManualClock
from hallkiosk.config import ConfigError
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MosquittoFactory
from tests.hall.helpers import local, make_hall
from tests.hall.test_server import HALL_ID, WAIT_S, serving_hall
from uplink.messages import Event, encode
from uplink.topics import Topics

LOCKER = "locker-01"
GRACE_S = 120  # the default


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 0))


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Iterator[Hall]:
    made = make_hall(tmp_path, clock)
    yield made
    made.close()


def event(
    clock: ManualClock,
    seq: int,
    *,
    device: str = LOCKER,
    component: str = "lockerd",
    event_id: str | None = None,
) -> Event:
    """A lockerd ``door`` event (no handler at the hall: only the seq matters here)."""
    return Event(
        v=1,
        id=event_id or uuid.uuid4().hex,
        seq=seq,
        ts=clock.now(),
        type="door",
        device=device,
        component=component,
        data={"bay_id": "A01", "door": "closed", "previous": "open"},
    )


def ingest(hall: Hall, clock: ManualClock, *seqs: int, **where: Any) -> None:
    for seq in seqs:
        assert hall.registry.ingest(event(clock, seq, **where))


def gap_alarms(hall: Hall, *, include_resolved: bool = False) -> list[dict[str, Any]]:
    return [
        a
        for a in hall.registry.alarms(include_resolved=include_resolved)
        if a["code"] == "event_seq_gap"
    ]


def missing(hall: Hall, device: str = LOCKER, component: str = "lockerd") -> list[list[int]]:
    state = hall.registry.seq_state(device, component)
    assert state is not None
    return [[g["first"], g["last"]] for g in state["gaps"]]


def test_contiguous_events_leave_no_gap_and_raise_nothing(hall: Hall, clock: ManualClock) -> None:
    ingest(hall, clock, 1, 2, 3, 4, 5)
    clock.advance(GRACE_S * 10)
    hall.sweep()
    state = hall.registry.seq_state(LOCKER, "lockerd")
    assert state is not None
    assert (state["base"], state["high"], state["gaps"]) == (1, 5, [])
    assert gap_alarms(hall) == []


def test_events_out_of_order_within_the_grace_raise_nothing(hall: Hall, clock: ManualClock) -> None:
    ingest(hall, clock, 1, 2, 5)
    assert missing(hall) == [[3, 4]]
    clock.advance(GRACE_S - 1)
    hall.sweep()
    assert gap_alarms(hall) == []
    ingest(hall, clock, 4, 3)  # they arrive late, in any order
    assert missing(hall) == []
    clock.advance(GRACE_S * 10)
    hall.sweep()
    assert gap_alarms(hall, include_resolved=True) == []


def test_a_gap_past_the_grace_alarms_with_its_range_and_resolves_when_filled(
    hall: Hall, clock: ManualClock
) -> None:
    ingest(hall, clock, 1, 2, 6)  # 3-5 missing
    clock.advance(60)
    ingest(hall, clock, 7, 9)  # 8 missing, noticed a minute later
    clock.advance(GRACE_S - 60)
    hall.sweep()  # the periodic check: 3-5 is past the grace, 8 is not yet
    [alarm] = gap_alarms(hall)
    assert (alarm["device"], alarm["component"], alarm["subject"]) == (
        LOCKER,
        "lockerd",
        f"{LOCKER}.lockerd",
    )
    assert alarm["state"] == "active"
    details = alarm["details"]
    assert details["missing"] == [[3, 5]]
    assert (details["missing_count"], details["missing_ranges"]) == (3, 1)
    assert details["grace_s"] == GRACE_S
    clock.advance(60)
    ingest(hall, clock, 10)  # the check on ingest: 8 is past the grace now
    [alarm] = gap_alarms(hall)
    assert alarm["details"]["missing"] == [[3, 5], [8, 8]]
    assert alarm["details"]["missing_count"] == 4
    # filled piece by piece: one alarm, its details follow, resolved once nothing is missing
    ingest(hall, clock, 4, 8)
    [still] = gap_alarms(hall)
    assert still["id"] == alarm["id"]
    assert still["details"]["missing"] == [[3, 3], [5, 5]]
    ingest(hall, clock, 5, 3)
    assert gap_alarms(hall) == []
    [resolved] = gap_alarms(hall, include_resolved=True)
    assert (resolved["id"], resolved["state"], resolved["resolved_by"]) == (
        alarm["id"],
        "resolved",
        "hall",
    )
    assert missing(hall) == []
    # the alarm names seqs and ids only
    assert set(resolved["details"]) == {
        "device",
        "component",
        "missing",
        "missing_ranges",
        "missing_count",
        "missing_since",
        "grace_s",
    }


def test_the_grace_is_a_setting(tmp_path: Path, clock: ManualClock) -> None:
    hall = make_hall(tmp_path, clock, "[hall.registry]\nseq_gap_grace_s = 600\n")
    try:
        ingest(hall, clock, 1, 3)
        clock.advance(GRACE_S + 1)
        hall.sweep()
        assert gap_alarms(hall) == []
        clock.advance(600 - GRACE_S)
        hall.sweep()
        [alarm] = gap_alarms(hall)
        assert alarm["details"]["missing"] == [[2, 2]]
    finally:
        hall.close()
    for bad in (5, 86_401, '"2m"'):
        site = tmp_path / "bad.toml"
        site.write_text(f"schema_version = 1\n[hall.registry]\nseq_gap_grace_s = {bad}\n")
        with pytest.raises(ConfigError, match="seq_gap_grace_s"):
            load_hall_settings([site])


def test_redeliveries_and_old_seqs_change_nothing(hall: Hall, clock: ManualClock) -> None:
    first = event(clock, 1)
    assert hall.registry.ingest(first)
    ingest(hall, clock, 2, 4)
    assert not hall.registry.ingest(first)  # the same id again: deduplicated, seq untouched
    assert not hall.registry.ingest(first.model_copy(update={"seq": 3}))
    assert missing(hall) == [[3, 3]]  # a duplicate id never fills a gap
    clock.advance(GRACE_S)
    hall.sweep()
    [alarm] = gap_alarms(hall)
    assert alarm["details"]["missing"] == [[3, 3]]
    state = hall.registry.seq_state(LOCKER, "lockerd")
    assert state is not None and state["high"] == 4 and state["restarts"] == 0


def test_the_first_seq_seen_is_the_baseline(hall: Hall, clock: ManualClock) -> None:
    # the hall is newer than the locker's outbox: nothing before seq 1000 is missing
    ingest(hall, clock, 1000, 1001)
    ingest(hall, clock, 998)  # older than the baseline (overtaken at first contact)
    clock.advance(GRACE_S * 10)
    hall.sweep()
    state = hall.registry.seq_state(LOCKER, "lockerd")
    assert state is not None
    assert (state["base"], state["high"], state["gaps"]) == (1000, 1001, [])
    assert gap_alarms(hall) == []


def test_components_and_devices_are_independent(hall: Hall, clock: ManualClock) -> None:
    ingest(hall, clock, 1, 3)  # locker-01/lockerd: 2 missing
    ingest(hall, clock, 1, 2, 3, device="kiosk-01", component="kiosk")
    ingest(hall, clock, 7, 8, device="kiosk-01", component="ui")  # its own baseline
    ingest(hall, clock, 1, 2, device="locker-02")  # another device, the same component
    clock.advance(GRACE_S)
    hall.sweep()
    [alarm] = gap_alarms(hall)
    assert alarm["subject"] == f"{LOCKER}.lockerd"
    assert missing(hall, "kiosk-01", "kiosk") == []
    assert missing(hall, "locker-02", "lockerd") == []
    ingest(hall, clock, 4, device="kiosk-01", component="kiosk")
    ingest(hall, clock, 2)  # fills only locker-01's gap
    assert gap_alarms(hall) == []
    ingest(hall, clock, 6, device="kiosk-01", component="kiosk")
    clock.advance(GRACE_S)
    hall.sweep()
    [other] = gap_alarms(hall)
    assert (other["subject"], other["details"]["missing"]) == ("kiosk-01.kiosk", [[5, 5]])


def test_a_gap_ops_resolved_is_not_raised_again_but_still_fills(
    hall: Hall, clock: ManualClock
) -> None:
    ingest(hall, clock, 1, 3)
    clock.advance(GRACE_S)
    hall.sweep()
    [alarm] = gap_alarms(hall)
    assert hall.registry.resolve(alarm["id"], by="ops-7")  # investigated: the event is lost
    hall.sweep()
    clock.advance(GRACE_S)
    hall.sweep()
    assert gap_alarms(hall) == []
    ingest(hall, clock, 2)  # it turns up after all: filled quietly, not taken as a restart
    assert missing(hall) == []
    ingest(hall, clock, 4, 6)  # a new gap alarms as usual
    clock.advance(GRACE_S)
    hall.sweep()
    [new] = gap_alarms(hall)
    assert new["id"] != alarm["id"] and new["details"]["missing"] == [[5, 5]]


def test_a_restarted_seq_takes_a_new_baseline_and_alarms_what_can_no_longer_arrive(
    hall: Hall, clock: ManualClock
) -> None:
    ingest(hall, clock, *range(1, 11), 14)  # 11-13 missing, still within the grace
    clock.advance(10)
    # the locker's outbox was wiped: its events count from 1 again, with new ids
    ingest(hall, clock, 1)
    state = hall.registry.seq_state(LOCKER, "lockerd")
    assert state is not None
    assert (state["base"], state["high"], state["restarts"], state["gaps"]) == (1, 1, 1, [])
    [alarm] = gap_alarms(hall)  # at once: those events were in the wiped outbox
    lost = alarm["details"]["lost_at_restart"]
    assert (lost["ranges"], lost["count"], lost["range_count"]) == ([[11, 13]], 3, 1)
    assert alarm["details"]["missing"] == []
    ingest(hall, clock, 2, 3)  # the new stream goes on without a gap
    clock.advance(GRACE_S * 10)
    hall.sweep()
    assert gap_alarms(hall)[0]["id"] == alarm["id"]  # never resolved by itself
    assert hall.registry.resolve(alarm["id"], by="ops-7")
    hall.sweep()
    assert gap_alarms(hall) == []
    ingest(hall, clock, 4, 5)
    hall.sweep()
    assert gap_alarms(hall) == []


def test_a_restart_with_nothing_missing_raises_nothing(hall: Hall, clock: ManualClock) -> None:
    # e.g. a component that counts from 1 at every start (the embedded kiosk gateway)
    ingest(hall, clock, 1, 2, 3)
    ingest(hall, clock, 1, 2)
    clock.advance(GRACE_S * 10)
    hall.sweep()
    assert gap_alarms(hall, include_resolved=True) == []
    state = hall.registry.seq_state(LOCKER, "lockerd")
    assert state is not None and (state["high"], state["restarts"]) == (2, 1)


def test_an_event_older_than_the_kept_ids_is_not_taken_as_a_restart(
    hall: Hall, clock: ManualClock
) -> None:
    taken = clock.now()
    ingest(hall, clock, 2, 3)
    clock.advance(91 * 86_400)  # past dedup_keep_days: seq 2's id is forgotten
    stale = event(clock, 2).model_copy(update={"ts": taken})  # redelivered that late
    assert hall.registry.ingest(stale)
    state = hall.registry.seq_state(LOCKER, "lockerd")
    assert state is not None and (state["base"], state["high"], state["restarts"]) == (2, 3, 0)


def test_the_v4_database_is_migrated_with_its_events_and_alarms(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "hall.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number in range(4):
        for statement in SCHEMA[number].split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version=4")
    conn.execute(
        "INSERT INTO events_seen (device, event_id, component, seq, type, ts, received_at)"
        f" VALUES ('{LOCKER}', 'e1', 'lockerd', 41, 'door', 'x', 'x')"
    )
    conn.execute(
        "INSERT INTO alarms (device, component, code, subject, details, state, raised_at)"
        f" VALUES ('{LOCKER}', 'lockerd', 'door_forced', 'A01', '{{}}', 'active', 'x')"
    )
    conn.close()

    migrated = open_db(path)
    try:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA) == 5
        seen = migrated.execute("SELECT event_id, seq FROM events_seen").fetchall()
        assert [tuple(r) for r in seen] == [("e1", 41)]
        assert migrated.execute("SELECT code FROM alarms").fetchone()["code"] == "door_forced"
        assert migrated.execute("SELECT COUNT(*) FROM event_seq").fetchone()[0] == 0
    finally:
        migrated.close()
    # the upgraded hall takes the first seq it sees after the upgrade as the baseline
    (tmp_path / "site").mkdir()
    site = tmp_path / "site.toml"
    site.write_text(
        "schema_version = 1\n[site]\n"
        f"data_dir = {json.dumps(str(tmp_path / 'site'))}\n"
        f"[hall]\ndb_file = {json.dumps(str(path))}\n"
    )
    upgraded = Hall(load_hall_settings([site]), clock)
    try:
        ingest(upgraded, clock, 43, 44)
        clock.advance(GRACE_S * 10)
        upgraded.sweep()
        assert missing(upgraded) == []
        assert [a["code"] for a in upgraded.registry.alarms()] == ["door_forced"]
    finally:
        upgraded.close()


# -- over a real broker ---------------------------------------------------------------------


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    return mosquitto(tls=True, hall_id=HALL_ID)


def test_a_serving_hall_alarms_a_gap_in_a_lockers_published_events(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority
) -> None:
    clock = ManualClock(local(2026, 11, 23, 9, 0))
    topics = Topics(HALL_ID, LOCKER, "lockerd")
    with serving_hall(tmp_path, broker, test_ca, clock) as server:
        registry = server.hall.registry
        probe = broker.connect("locker-probe", cert=test_ca.issue_client(LOCKER))

        def publish(seq: int) -> None:
            probe.publish(topics.event("door"), encode(event(clock, seq)))

        for seq in (1, 2, 4):  # 3 is held back on the device
            publish(seq)

        def high() -> int | None:
            state = registry.seq_state(LOCKER, "lockerd")
            return state["high"] if state else None

        wait_until(lambda: high() == 4, timeout_s=WAIT_S, what="seq 4 at the hall")
        assert missing(server.hall) == [[3, 3]]
        clock.advance(GRACE_S)
        publish(5)
        wait_until(lambda: gap_alarms(server.hall), timeout_s=WAIT_S, what="the gap alarm")
        [alarm] = gap_alarms(server.hall)
        assert alarm["subject"] == f"{LOCKER}.lockerd"
        assert alarm["details"]["missing"] == [[3, 3]]
        publish(3)  # the outbox retries it on the next connection
        wait_until(lambda: not gap_alarms(server.hall), timeout_s=WAIT_S, what="the alarm resolved")
        assert registry.seq_state(LOCKER, "lockerd") == {
            "base": 1,
            "high": 5,
            "restarts": 0,
            "alarm_id": None,
            "gaps": [],
        }
        assert server.stats["dropped"] == 0
