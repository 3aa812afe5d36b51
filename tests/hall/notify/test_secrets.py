"""The pickup password reaches the gateway and nothing else: not a log record, not the SQLite
file (database and WAL), not an exception's text, not a repr, not an alarm."""

from __future__ import annotations

import logging
import sqlite3
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hall.notify import (
    HttpSmsSender,
    NotificationDispatcher,
    NotificationSender,
    NotifySettings,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
    enqueue,
    list_recent,
)
from tests.hall.notify.test_http_gateway import (
    ECHO,
    FakeGateway,
    Reply,
    http_settings,
    make_rig,
)
from uplink import sealing


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway()
    yield gw
    gw.close()


PASSWORD = "482913"
PICKUP = {"case_no": "ZJ2026-0042", "location": "A区03号柜", "deadline": "2026-06-30"}
ASSOCIATED = "locker-01/dep-42"


class Sealer:
    """The device side: the password sealed to the hall's X25519 key (uplink.sealing)."""

    def __init__(self) -> None:
        self._key = X25519PrivateKey.generate()

    def seal(self, password: str) -> bytes:
        return sealing.seal(password, self._key.public_key(), ASSOCIATED).encode("ascii")

    def unseal(self, sealed: bytes) -> str:
        return sealing.unseal(sealed, self._key, ASSOCIATED)


class Recording(NotificationSender):
    """Delegates to the real sender and keeps every message it was handed."""

    def __init__(self, inner: NotificationSender) -> None:
        self.inner = inner
        self.seen: list[OutgoingMessage] = []

    def send(self, msg: OutgoingMessage) -> str:
        self.seen.append(msg)
        return self.inner.send(msg)


def sqlite_bytes(db_path: Path) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        p = Path(str(db_path) + suffix)
        if p.exists():
            data += p.read_bytes()
    return data


def assert_absent(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text


def test_the_password_goes_to_the_gateway_and_nowhere_else(
    gateway: FakeGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sealer = Sealer()
    # a careless gateway echoes the request in every answer, errors included
    gateway.script.extend([Reply(500, ECHO), Reply(200, ECHO), Reply(400, ECHO)])
    settings = http_settings(gateway)
    rig = make_rig(tmp_path, settings, unseal=sealer.unseal)
    recording = Recording(HttpSmsSender(settings.http_sms))
    rig.dispatcher = NotificationDispatcher(
        rig.connect,
        recording,
        rig.clock,
        settings,
        unseal=sealer.unseal,
        on_alarm=lambda name, data: rig.alarms.append((name, data)),
    )
    first_sealed = sealer.seal(PASSWORD)
    assert PASSWORD.encode() not in first_sealed
    first = rig.enqueue(
        "deposit:1", kind="pickup_password", params=PICKUP, sealed_secret=first_sealed
    )
    rig.dispatcher.run_once()  # 500
    rig.clock.advance(60)
    rig.dispatcher.run_once()  # 200, echoing the request
    second = rig.enqueue(
        "deposit:2", kind="pickup_password", params=PICKUP, sealed_secret=sealer.seal(PASSWORD)
    )
    rig.dispatcher.run_once()  # 400, echoing the request: failed, alarm

    # it did reach the gateway, in the SMS text, three times
    assert [PASSWORD in r.json["text"] for r in gateway.requests] == [True, True, True]
    assert "取件密码482913" in gateway.requests[0].json["text"]
    assert all(PASSWORD in m.text for m in recording.seen)

    assert rig.row(first)["state"] == "sent"
    assert rig.row(first)["sealed_secret"] is None  # dropped once delivered
    assert rig.row(second)["state"] == "failed"
    assert_absent(PASSWORD, caplog.text, *(r.getMessage() for r in caplog.records))
    assert caplog.records, "the dispatcher logs every outcome"
    assert "138****5678" in caplog.text and "13812345678" not in caplog.text
    assert_absent(PASSWORD, *(repr(m) for m in recording.seen), *(str(m) for m in recording.seen))
    assert_absent(PASSWORD, repr(rig.alarms), repr(list_recent(sqlite3.connect(rig.db_path), 9)))
    raw = sqlite_bytes(rig.db_path)
    assert len(raw) > 4096
    assert PASSWORD.encode() not in raw
    assert "密码482913".encode() not in raw


def test_sender_errors_never_quote_the_request(gateway: FakeGateway) -> None:
    settings = NotifySettings.model_validate(
        {"backend": "http_sms", "http_sms": {"url": gateway.url}}
    )
    sender = HttpSmsSender(settings.http_sms)
    text = f"取件密码{PASSWORD}"
    msg = OutgoingMessage(5, "ref5", "pickup_password", "13812345678", text)
    for reply, error in (
        (Reply(400, ECHO), PermanentSendError),
        (Reply(503, ECHO), TransientSendError),
    ):
        gateway.script.append(reply)
        with pytest.raises(error) as caught:
            sender.send(msg)
        exc = caught.value
        formatted = "".join(traceback.format_exception(exc))
        assert_absent(PASSWORD, str(exc), repr(exc), repr(exc.args), formatted)
        assert_absent("13812345678", str(exc), formatted)
    assert all(PASSWORD in r.json["text"] for r in gateway.requests)
    assert_absent(PASSWORD, repr(msg), repr(sender))


def test_a_sender_that_echoes_the_password_is_scrubbed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sealer = Sealer()

    class Careless(NotificationSender):
        def send(self, msg: OutgoingMessage) -> str:
            raise TransientSendError(f"gateway said: bad text {msg.text}")

    db_path = tmp_path / "hall.db"
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        from hall.notify import ensure_schema

        ensure_schema(db)
        enqueue(
            db,
            kind="pickup_password",
            recipient_phone="13812345678",
            params=PICKUP,
            dedup_key="d",
            sealed_secret=sealer.seal(PASSWORD),
        )
    from hallkiosk.clock import ManualClock
    from tests.hall.notify.test_http_gateway import T0

    dispatcher = NotificationDispatcher(
        lambda: sqlite3.connect(db_path),
        Careless(),
        ManualClock(T0),
        NotifySettings(),
        unseal=sealer.unseal,
    )
    dispatcher.run_once()
    with sqlite3.connect(db_path) as db:
        [(reason,)] = db.execute("SELECT last_error FROM notify_messages").fetchall()
    assert reason.startswith("gateway said: bad text ") and "******" in reason
    assert PASSWORD not in reason
    assert PASSWORD not in caplog.text
    assert PASSWORD.encode() not in sqlite_bytes(db_path)


def test_an_unseal_failure_is_permanent_and_quotes_nothing(
    gateway: FakeGateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    def unseal(sealed: bytes) -> str:
        raise ValueError(f"tag mismatch for {PASSWORD}")  # a leaky crypto library

    rig = make_rig(tmp_path, http_settings(gateway), unseal=unseal)
    row_id = rig.enqueue("d", kind="pickup_password", params=PICKUP, sealed_secret=b"\x00" * 40)
    rig.dispatcher.run_once()
    assert gateway.count() == 0
    row = rig.row(row_id)
    assert (row["state"], row["last_error"]) == (
        "failed",
        "the sealed password could not be opened",
    )
    assert rig.alarms[0][1]["reason"] == "the sealed password could not be opened"
    assert PASSWORD not in caplog.text
