"""At-least-once: a dispatcher SIGKILLed after the gateway took the SMS but before it recorded
"sent" leaves the message leased; once the lease runs out it is sent again with the same out_id.
An SMS may repeat; it is never lost. While the lease holds, no other dispatcher sends it."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from hall.notify import HttpSmsSender, NotificationDispatcher, NotifySettings, enqueue
from hallkiosk.clock import ManualClock, SystemClock
from tests.fixtures import wait_until
from tests.fixtures.processes import REPO_ROOT, ManagedProcess
from tests.hall.notify.test_http_gateway import (
    BOOKING,
    FakeGateway,
    Reply,
)


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway()
    yield gw
    gw.close()


LEASE_S = 300.0
CHILD = """
import sqlite3, sys
from hall.notify import HttpSmsSender, NotificationDispatcher, NotifySettings
from hallkiosk.clock import SystemClock
db, url = sys.argv[1:3]
settings = NotifySettings.model_validate(
    {"backend": "http_sms", "http_sms": {"url": url, "timeout_s": 30.0}, "claim_lease_s": 300.0}
)
d = NotificationDispatcher(
    lambda: sqlite3.connect(db), HttpSmsSender(settings.http_sms), SystemClock(), settings
)
print("sending", flush=True)
d.run_once()
print("recorded", flush=True)
"""


def test_a_crash_between_send_and_mark_sent_repeats_the_sms(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    db_path = tmp_path / "hall.db"
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        from hall.notify import ensure_schema

        ensure_schema(db)
        enqueue(
            db,
            kind="booking_reminder",
            recipient_phone="13812345678",
            params=BOOKING,
            dedup_key="b1",
        )
    # the gateway takes the SMS and holds its answer: the child is killed while it waits
    gateway.script.append(Reply(200, delay_s=20.0))
    child = ManagedProcess([sys.executable, "-c", CHILD, str(db_path), gateway.url], cwd=REPO_ROOT)
    try:
        assert child.read_line(timeout_s=15) == "sending"
        wait_until(lambda: gateway.count() == 1, timeout_s=15, what=child.describe)
        child.kill()
    finally:
        if child.is_running():
            child.kill()
    gateway.release.set()

    with sqlite3.connect(db_path) as db:
        row = db.execute("SELECT state, attempts, out_id FROM notify_messages").fetchone()
    assert row[:2] == ("sending", 1)
    out_id = row[2]

    settings = NotifySettings.model_validate(
        {"backend": "http_sms", "http_sms": {"url": gateway.url}, "claim_lease_s": LEASE_S}
    )
    sender = HttpSmsSender(settings.http_sms)

    def dispatcher(clock: ManualClock | SystemClock) -> NotificationDispatcher:
        return NotificationDispatcher(lambda: sqlite3.connect(db_path), sender, clock, settings)

    # the lease still holds: the first sender might be alive and about to record its outcome
    assert dispatcher(SystemClock()).run_once() == 0
    assert gateway.count() == 1

    later = ManualClock(SystemClock().now() + timedelta(seconds=LEASE_S + 1))
    assert dispatcher(later).run_once() == 1
    assert gateway.count() == 2
    assert [r.json["out_id"] for r in gateway.requests] == [out_id, out_id]
    with sqlite3.connect(db_path) as db:
        state, attempts, provider = db.execute(
            "SELECT state, attempts, provider_id FROM notify_messages"
        ).fetchone()
    assert (state, attempts, provider) == ("sent", 2, "gw-1")
