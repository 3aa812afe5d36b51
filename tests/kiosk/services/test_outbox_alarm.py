"""The kiosk's ``outbox_over_limit`` alarm, as lockerd's, over the real transport: mosquitto
(TLS, the production ACL, persistence), ``hall serve`` in process, and the kiosk runtime in mqtt
mode from a site file with a small ``[kiosk.offline] outbox_alarm_rows``. The broker is stopped
so the backlog grows; the test takes the telemetry snapshots itself (``background=False``), which
is where the kiosk checks the bound, as lockerd does.
"""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hallkiosk.clock import ManualClock
from kiosk.runtime import KioskRuntime
from kiosk.services.backlog import ALARM
from kiosk.services.hall_gateway import Evaluation
from kiosk.services.store import MIGRATIONS, KioskStore, KioskStoreError
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker
from tests.hall.helpers import local
from tests.kiosk.services.helpers import (
    KIOSK,
    WAIT_S,
    HallRunner,
    broker,  # noqa: F401
    hall,  # noqa: F401
    kiosk_site,
    start_kiosk,
    wait_online,
)
from uplink.messages import Event, decode
from uplink.schema import migrate_in

LIMIT = 3
SUBJECT = f"{KIOSK}.kiosk"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 45))


class Kiosk:
    """The kiosk process, started again on the same data directory."""

    def __init__(self, site: Path, clock: ManualClock) -> None:
        self.site, self.clock = site, clock
        self.runtime: KioskRuntime | None = None

    def start(self) -> KioskRuntime:
        self.runtime = start_kiosk(self.site, self.clock, background=False)
        return self.runtime

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None


@pytest.fixture
def kiosk(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: ManualClock, hall: HallRunner
) -> Iterator[Kiosk]:
    site = kiosk_site(tmp_path / "kiosk", broker, test_ca, offline=f"outbox_alarm_rows = {LIMIT}\n")
    made = Kiosk(site, clock)
    wait_online(made.start())
    try:
        yield made
    finally:
        made.close()


def rate(runtime: KioskRuntime, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        runtime.hall.record_evaluation(Evaluation("ticket", f"t-{n}", 5, ()))


def pending_alarms(runtime: KioskRuntime) -> list[dict[str, Any]]:
    """The alarm events waiting in the outbox, oldest first."""
    rows = runtime.outbox.pending(10_000)
    return [decode(Event, r.payload).data for r in rows if r.type == "alarm"]


def hall_alarms(hall: HallRunner) -> list[dict[str, Any]]:
    rows = hall.running.store.all(
        "SELECT device, component, subject, state, details FROM alarms WHERE code = ?", ALARM
    )
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


def test_past_the_bound_the_alarm_is_raised_once_nothing_is_dropped_and_it_clears_below_it(
    kiosk: Kiosk, hall: HallRunner, broker: Broker
) -> None:
    runtime = kiosk.runtime
    assert runtime is not None
    broker.stop()
    wait_online(runtime, online=False)

    rate(runtime, LIMIT)  # at the bound: no alarm
    runtime.telemetry.take()
    assert runtime.outbox.backlog().events == LIMIT and not runtime.backlog_alarm.raised
    assert pending_alarms(runtime) == []

    rate(runtime, 1, start=LIMIT)  # past it
    runtime.telemetry.take()
    assert runtime.backlog_alarm.raised
    raised = {"alarm": ALARM, "subject": SUBJECT, "active": True}
    assert pending_alarms(runtime) == [{**raised, "events": LIMIT + 1, "limit_rows": LIMIT}]
    assert runtime.store.one("SELECT * FROM kiosk_alarms WHERE alarm = ?", ALARM) is not None

    # further snapshots and events while it holds: raised once, every event kept
    rate(runtime, 5, start=LIMIT + 1)
    runtime.telemetry.take()
    runtime.telemetry.take()
    assert len(pending_alarms(runtime)) == 1
    assert runtime.outbox.backlog().events == LIMIT + 1 + 5 + 1  # ratings and the alarm

    # a restart while it holds neither raises it again nor forgets it
    kiosk.close()
    runtime = kiosk.start()
    assert runtime.backlog_alarm.raised
    runtime.telemetry.take()
    assert len(pending_alarms(runtime)) == 1

    broker.restart()
    wait_until(
        lambda: len(hall.running.store.all("SELECT * FROM evaluations")) == LIMIT + 6,
        timeout_s=WAIT_S,
        what="every rating at the hall",
    )
    wait_until(
        lambda: [a["state"] for a in hall_alarms(hall)] == ["active"],
        timeout_s=WAIT_S,
        what="the alarm at the hall",
    )
    (alarm,) = hall_alarms(hall)
    assert (alarm["device"], alarm["component"], alarm["subject"]) == (KIOSK, "kiosk", SUBJECT)
    assert alarm["details"]["events"] == LIMIT + 1
    wait_until(
        lambda: runtime.outbox.backlog().events == 0,
        timeout_s=WAIT_S,
        what="the backlog sent",
    )

    # below the bound again: cleared once, at the kiosk and at the hall
    runtime.telemetry.take()
    assert not runtime.backlog_alarm.raised
    assert runtime.store.one("SELECT * FROM kiosk_alarms") is None
    wait_until(
        lambda: [a["state"] for a in hall_alarms(hall)] == ["resolved"],
        timeout_s=WAIT_S,
        what="the alarm resolved at the hall",
    )
    wait_until(
        lambda: runtime.outbox.backlog().events == 0,
        timeout_s=WAIT_S,
        what="the clearing event sent",
    )
    runtime.telemetry.take()
    seen = hall.running.store.all(
        "SELECT type FROM events_seen WHERE device = ? AND component = 'kiosk'", KIOSK
    )
    assert sorted(r["type"] for r in seen) == ["alarm"] * 2 + ["evaluation"] * (LIMIT + 6)


def test_the_clearing_event_itself_does_not_put_the_backlog_over_the_bound(
    kiosk: Kiosk, broker: Broker
) -> None:
    """Cleared below the bound, not at it: the clearing event joins the backlog, and a backlog
    of exactly the bound would go over it again (an alarm raised by its own clearing)."""
    runtime = kiosk.runtime
    assert runtime is not None
    broker.stop()
    wait_online(runtime, online=False)
    rate(runtime, LIMIT + 1)
    runtime.telemetry.take()
    assert runtime.backlog_alarm.raised  # LIMIT + 2 events now, with the alarm
    # the hall takes all but LIMIT of them (acknowledged as the broker's PUBACKs would)
    rows = runtime.outbox.pending(10_000)
    runtime.outbox.ack_many([r.row_id for r in rows[: len(rows) - LIMIT]])
    assert runtime.outbox.backlog().events == LIMIT
    runtime.telemetry.take()
    assert runtime.backlog_alarm.raised  # at the bound: kept
    assert [a["active"] for a in pending_alarms(runtime)] == [True]
    rest = runtime.outbox.pending(10_000)
    runtime.outbox.ack_many([rest[0].row_id])
    runtime.telemetry.take()  # below it: cleared, and the clearing event keeps it at the bound
    assert not runtime.backlog_alarm.raised
    assert [a["active"] for a in pending_alarms(runtime)] == [True, False]
    assert runtime.outbox.backlog().events == LIMIT and not runtime.outbox.backlog().over_limit
    runtime.telemetry.take()
    assert not runtime.backlog_alarm.raised
    assert [a["active"] for a in pending_alarms(runtime)] == [True, False]


def test_a_kiosk_db_of_the_previous_release_gets_the_new_tables_and_keeps_its_ops_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kiosk.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    migrate_in(conn, "kiosk", MIGRATIONS[:2], KioskStoreError)
    conn.execute(
        "INSERT INTO kiosk_ops_lock VALUES (1, '维护', 'Maintenance', NULL, NULL, 'cmd-1',"
        " '2026-11-23T01:00:00.000000+00:00')"
    )
    conn.execute("COMMIT")
    conn.close()
    store = KioskStore(path)
    try:
        version = store.one("SELECT version FROM kiosk_schema")
        assert version is not None and version[0] == len(MIGRATIONS) == 4
        assert store.one("SELECT command_id FROM kiosk_ops_lock")[0] == "cmd-1"  # type: ignore[index]
        assert store.all("SELECT * FROM kiosk_staff_lock") == []
        assert store.all("SELECT * FROM kiosk_alarms") == []
    finally:
        store.close()
