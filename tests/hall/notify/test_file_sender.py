"""The file backend: one JSON file per SMS, mode 0600 in a 0700 directory, written atomically;
a spool that cannot be written is a transient failure that heals."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from hall.notify import (
    FileSender,
    NotificationDispatcher,
    NotifySettings,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
    enqueue,
    ensure_schema,
    make_sender,
    read_spool,
)
from hallkiosk.clock import ManualClock
from tests.hall.notify.test_http_gateway import BOOKING, T0

PICKUP = {"case_no": "ZJ2026-0042", "location": "A区03号柜", "deadline": "2026-06-30"}


def test_one_private_file_per_message(tmp_path: Path) -> None:
    db_path = tmp_path / "hall.db"
    spool = tmp_path / "data" / "notify-spool"
    with sqlite3.connect(db_path) as db:
        ensure_schema(db)
        for n in range(3):
            enqueue(
                db,
                kind="booking_reminder",
                recipient_phone=f"1391234500{n}",
                params=BOOKING,
                dedup_key=f"b{n}",
            )
        enqueue(
            db,
            kind="pickup_password",
            recipient_phone="13812345678",
            params=PICKUP,
            dedup_key="p",
            sealed_secret=b"opaque",
        )
    clock = ManualClock(T0)
    settings = NotifySettings()
    sender = make_sender(settings, clock=clock, base_dir=tmp_path / "data")
    assert isinstance(sender, FileSender) and sender.spool_dir == spool
    dispatcher = NotificationDispatcher(
        lambda: sqlite3.connect(db_path), sender, clock, settings, unseal=lambda b: "482913"
    )
    assert dispatcher.run_once() == 4

    files = sorted(spool.iterdir())
    assert len(files) == 4
    assert all(f.suffix == ".json" and not f.name.startswith(".") for f in files)  # no temp left
    assert stat.S_IMODE(spool.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    records = read_spool(spool)
    assert [r["phone"] for r in records] == [
        "13912345000",
        "13912345001",
        "13912345002",
        "13812345678",
    ]
    pickup = records[3]
    assert pickup["kind"] == "pickup_password"
    # the spool file IS the delivered SMS: the password is in it, and only there
    assert "取件密码482913" in pickup["text"]
    assert pickup["written_at"] == "2026-06-01T01:00:00.000000+00:00"
    with sqlite3.connect(db_path) as db:
        ids = [r[0] for r in db.execute("SELECT provider_id FROM notify_messages ORDER BY id")]
    assert ids == [f"file:{r['out_id']}" for r in records]


def test_a_repeated_send_replaces_the_same_file(tmp_path: Path) -> None:
    sender = FileSender(tmp_path / "spool", clock=ManualClock(T0))
    msg = OutgoingMessage(7, "0f3a", "booking_reminder", "13812345678", "hello")
    assert sender.send(msg) == sender.send(msg) == "file:0f3a"
    assert [p.name for p in (tmp_path / "spool").iterdir()] == ["0f3a.json"]
    assert json.loads((tmp_path / "spool" / "0f3a.json").read_text())["text"] == "hello"


def test_an_unwritable_spool_is_transient_and_heals(tmp_path: Path) -> None:
    blocker = tmp_path / "spool"
    blocker.write_text("a file where the directory should be")
    db_path = tmp_path / "hall.db"
    with sqlite3.connect(db_path) as db:
        ensure_schema(db)
        enqueue(
            db,
            kind="booking_reminder",
            recipient_phone="13812345678",
            params=BOOKING,
            dedup_key="b",
        )
    clock = ManualClock(T0)
    dispatcher = NotificationDispatcher(
        lambda: sqlite3.connect(db_path),
        FileSender(blocker, clock=clock),
        clock,
        NotifySettings(),
    )
    dispatcher.run_once()
    with sqlite3.connect(db_path) as db:
        state, error = db.execute("SELECT state, last_error FROM notify_messages").fetchone()
    assert state == "pending" and error.startswith("spool write failed: ")
    blocker.unlink()
    clock.advance(3600)
    dispatcher.run_once()
    assert [r["phone"] for r in read_spool(blocker)] == ["13812345678"]


def test_out_id_cannot_leave_the_spool(tmp_path: Path) -> None:
    sender = FileSender(tmp_path / "spool")
    with pytest.raises(PermanentSendError, match="plain token"):
        sender.send(OutgoingMessage(1, "../../etc/x", "booking_reminder", "13812345678", "t"))
    with pytest.raises(TransientSendError):
        FileSender("/proc/no-such-dir/spool").send(
            OutgoingMessage(1, "abc", "booking_reminder", "13812345678", "t")
        )
