"""The queue in the caller's database: enqueue joins the caller's transaction, a repeated
dedup_key is ignored, the password only ever arrives sealed, listings mask the phone."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hall.notify import (
    SCHEMA,
    InvalidPhone,
    MessageTooLong,
    NotifyError,
    TemplateError,
    enqueue,
    ensure_schema,
    list_recent,
    mask_phone,
    normalise_phone,
    purge_finished,
    requeue,
    stats,
)
from hall.notify.queue import claim_next, mark_failed, mark_sent

BOOKING = {
    "booking_code": "YY20260601-017",
    "matter": "不动产登记",
    "slot": "6月1日 09:30",
    "place": "一楼3号窗口",
}
PICKUP = {"case_no": "ZJ2026-0042", "location": "A区03号柜", "deadline": "2026-06-30"}
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(tmp_path / "hall.db")
    db.execute("PRAGMA journal_mode=WAL")
    ensure_schema(db)
    yield db
    db.close()


def test_schema_is_idempotent_and_names_its_table(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        assert "IF NOT EXISTS" in statement
        conn.execute(statement)
    ensure_schema(conn)
    names = {
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN "
            "('table', 'index') AND name LIKE 'notify%'"
        )
    }
    assert names == {"notify_messages", "notify_messages_due"}


def test_enqueue_stays_in_the_callers_transaction(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "hall.db")
    ensure_schema(db)
    db.execute("CREATE TABLE deposits (case_no TEXT)")
    db.commit()
    db.execute("INSERT INTO deposits VALUES ('ZJ2026-0042')")
    assert (
        enqueue(
            db,
            kind="booking_reminder",
            recipient_phone="13812345678",
            params=BOOKING,
            dedup_key="booking:1",
        )
        == 1
    )
    assert db.in_transaction
    other = sqlite3.connect(tmp_path / "hall.db")
    assert other.execute("SELECT count(*) FROM notify_messages").fetchone() == (0,)
    db.rollback()  # the business change failed: no SMS either
    assert db.execute("SELECT count(*) FROM notify_messages").fetchone() == (0,)
    enqueue(
        db,
        kind="booking_reminder",
        recipient_phone="13812345678",
        params=BOOKING,
        dedup_key="booking:1",
    )
    db.commit()
    assert other.execute("SELECT count(*) FROM notify_messages").fetchone() == (1,)
    other.close()
    db.close()


def test_a_repeated_dedup_key_is_ignored(conn: sqlite3.Connection) -> None:
    first = enqueue(
        conn,
        kind="booking_reminder",
        recipient_phone="13812345678",
        params=BOOKING,
        dedup_key="evt:dev1:42",
    )
    again = enqueue(
        conn,
        kind="booking_reminder",
        recipient_phone="13900000000",
        params=BOOKING,
        dedup_key="evt:dev1:42",
    )
    conn.commit()
    assert first is not None and again is None
    assert conn.execute("SELECT count(*), max(phone) FROM notify_messages").fetchone() == (
        1,
        "13812345678",
    )


def test_the_password_is_refused_in_params_and_the_sealed_form_is_required(
    conn: sqlite3.Connection,
) -> None:
    with pytest.raises(TemplateError, match="sealed_secret"):
        enqueue(
            conn,
            kind="pickup_password",
            recipient_phone="13812345678",
            params={**PICKUP, "password": "482913"},
            dedup_key="d1",
        )
    with pytest.raises(TemplateError, match="is required"):
        enqueue(
            conn,
            kind="pickup_password",
            recipient_phone="13812345678",
            params=PICKUP,
            dedup_key="d1",
        )
    with pytest.raises(TemplateError, match="carries no secret"):
        enqueue(
            conn,
            kind="booking_reminder",
            recipient_phone="13812345678",
            params=BOOKING,
            dedup_key="d1",
            sealed_secret=b"x",
        )
    sealed = b"\x01sealed-bytes\xff"
    row_id = enqueue(
        conn,
        kind="pickup_password",
        recipient_phone="13812345678",
        params=PICKUP,
        dedup_key="d1",
        sealed_secret=sealed,
    )
    stored = conn.execute(
        "SELECT sealed_secret, params FROM notify_messages WHERE id = ?", (row_id,)
    ).fetchone()
    assert stored[0] == sealed
    assert "password" not in stored[1]


def test_phone_is_normalised_and_checked() -> None:
    assert normalise_phone("+86 138-1234-5678") == "13812345678"
    assert normalise_phone("008613812345678") == "13812345678"
    assert mask_phone("13812345678") == "138****5678"
    for bad in ("12812345678", "1381234567", "0571-88888888", "138123456789"):
        with pytest.raises(InvalidPhone) as caught:
            normalise_phone(bad)
        assert bad not in str(caught.value)


def test_enqueue_refuses_a_message_too_long_to_send(conn: sqlite3.Connection) -> None:
    items = [f"第{i}项材料需要补正的详细说明" for i in range(1, 41)]
    with pytest.raises(MessageTooLong, match="over the limit of 500"):
        enqueue(
            conn,
            kind="prereview_returned",
            recipient_phone="13812345678",
            params={"receipt_no": "YS-1", "matter": "m", "items": items},
            dedup_key="r1",
            max_chars=500,
        )
    with pytest.raises(NotifyError, match="dedup_key"):
        enqueue(
            conn,
            kind="booking_reminder",
            recipient_phone="13812345678",
            params=BOOKING,
            dedup_key="",
        )
    with pytest.raises(NotifyError, match="aware"):
        enqueue(
            conn,
            kind="booking_reminder",
            recipient_phone="13812345678",
            params=BOOKING,
            dedup_key="k",
            now=datetime(2026, 1, 1),  # noqa: DTZ001 - a naive time is the point
        )
    assert conn.execute("SELECT count(*) FROM notify_messages").fetchone() == (0,)


def test_not_before_schedules_and_claims_lease(conn: sqlite3.Connection) -> None:
    later = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    enqueue(
        conn,
        kind="booking_reminder",
        recipient_phone="13812345678",
        params=BOOKING,
        dedup_key="k",
        now=T0,
        not_before=later,
    )
    conn.commit()
    assert claim_next(conn, now=T0, lease_s=60) is None
    claimed = claim_next(conn, now=later, lease_s=60)
    assert claimed is not None and claimed.attempts == 1
    assert "13812345678" not in repr(claimed) and "138****5678" in repr(claimed)
    # leased: nobody else takes it until the lease has run out
    assert claim_next(conn, now=later, lease_s=60) is None
    again = claim_next(conn, now=datetime(2026, 6, 1, 12, 1, tzinfo=UTC), lease_s=60)
    assert again is not None and again.id == claimed.id and again.attempts == 2


def test_listing_masks_phones_and_stats_count_states(conn: sqlite3.Connection) -> None:
    for n in range(3):
        enqueue(
            conn,
            kind="booking_reminder",
            recipient_phone=f"1381234567{n}",
            params=BOOKING,
            dedup_key=f"k{n}",
            now=T0,
        )
    conn.commit()
    a = claim_next(conn, now=T0, lease_s=60)
    b = claim_next(conn, now=T0, lease_s=60)
    assert a is not None and b is not None
    mark_sent(conn, a.id, provider_id="gw-1", now=T0)
    mark_failed(conn, b.id, reason="HTTP 400", now=T0)
    assert stats(conn).to_dict() == {"pending": 1, "sending": 0, "sent": 1, "failed": 1}
    records = list_recent(conn, 10)
    assert [r.id for r in records] == [3, 2, 1]
    assert [r.phone_masked for r in records] == ["138****5672", "138****5671", "138****5670"]
    assert "13812345670" not in repr(records)
    assert records[2].provider_id == "gw-1" and records[1].last_error == "HTTP 400"
    assert [r.id for r in list_recent(conn, 10, state="failed")] == [2]

    assert requeue(conn, 2) and not requeue(conn, 1)
    assert purge_finished(conn, before=datetime(2026, 6, 2, tzinfo=UTC)) == 1
    conn.commit()
    assert stats(conn).to_dict() == {"pending": 2, "sending": 0, "sent": 0, "failed": 0}
