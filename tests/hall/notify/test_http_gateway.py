"""The HTTP backend and the dispatcher against a real local HTTP server acting as the gateway:
delivery, retry with exponential backoff, permanent failure with an alarm, timeouts, dedup."""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from hall.notify import (
    HttpSmsSender,
    NotificationDispatcher,
    NotifyConfigError,
    NotifySettings,
    OutgoingMessage,
    PermanentSendError,
    TransientSendError,
    enqueue,
    ensure_schema,
    list_recent,
)
from hallkiosk.clock import ManualClock

ECHO = object()  # reply body: the request body, as a careless gateway would send back
BOOKING = {
    "booking_code": "YY20260601-017",
    "matter": "不动产登记",
    "slot": "6月1日 09:30",
    "place": "一楼3号窗口",
}
T0 = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"code": "0", "message_id": "gw-1"})
    delay_s: float = 0.0  # held this long (or until the gateway closes) before answering


@dataclass(frozen=True)
class Captured:
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.raw.decode("utf-8"))
        assert isinstance(value, dict)
        return value


class FakeGateway:
    """A ThreadingHTTPServer on 127.0.0.1:0 that records requests and answers from a script."""

    def __init__(self) -> None:
        self.requests: list[Captured] = []
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.release = threading.Event()
        self._lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with gateway._lock:
                    gateway.requests.append(Captured(self.path, dict(self.headers), raw))
                    reply = gateway.script.popleft() if gateway.script else gateway.default
                if reply.delay_s:
                    gateway.release.wait(reply.delay_s)
                body = raw if reply.body is ECHO else json.dumps(reply.body).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/sms/send"

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    gw = FakeGateway()
    yield gw
    gw.close()


def http_settings(gw: FakeGateway, **http: Any) -> NotifySettings:
    retry = http.pop("retry", {})
    return NotifySettings.model_validate(
        {
            "backend": "http_sms",
            "http_sms": {"url": gw.url, "sign_name": "【某某政务服务中心】", **http},
            "retry": {
                "max_attempts": 5,
                "backoff_initial_s": 30.0,
                "backoff_max_s": 200.0,
                "jitter_fraction": 0.2,
                **retry,
            },
        }
    )


@dataclass
class Rig:
    db_path: Path
    clock: ManualClock
    dispatcher: NotificationDispatcher
    alarms: list[tuple[str, dict[str, object]]]

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path)

    def enqueue(self, dedup_key: str, kind: str = "booking_reminder", **kw: Any) -> int | None:
        with self.connect() as db:
            return enqueue(
                db,
                kind=kind,
                recipient_phone="13812345678",
                params=kw.pop("params", BOOKING),
                dedup_key=dedup_key,
                **kw,
            )

    def row(self, row_id: int) -> sqlite3.Row:
        with self.connect() as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM notify_messages WHERE id = ?", (row_id,)).fetchone()
        assert row is not None
        return row


def make_rig(
    tmp_path: Path,
    settings: NotifySettings,
    *,
    unseal: Callable[[bytes], str] | None = None,
    rng: random.Random | None = None,
) -> Rig:
    db_path = tmp_path / "hall.db"
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA journal_mode=WAL")
        ensure_schema(db)
    clock = ManualClock(T0)
    alarms: list[tuple[str, dict[str, object]]] = []

    def connect() -> sqlite3.Connection:
        return sqlite3.connect(db_path)

    dispatcher = NotificationDispatcher(
        connect,
        HttpSmsSender(settings.http_sms),
        clock,
        settings,
        unseal=unseal,
        on_alarm=lambda name, data: alarms.append((name, data)),
        rng=rng,
    )
    return Rig(db_path, clock, dispatcher, alarms)


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def test_delivered_with_the_exact_request(gateway: FakeGateway, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cr3t-token\n")
    gateway.default = Reply(body={"code": "OK", "message_id": "gw-778"})
    rig = make_rig(tmp_path, http_settings(gateway, auth="bearer", token_file=str(token)))
    row_id = rig.enqueue("booking:17")
    assert rig.dispatcher.run_once() == 1

    [req] = gateway.requests
    assert req.path == "/sms/send"
    assert req.headers["Authorization"] == "Bearer s3cr3t-token"
    assert req.headers["Content-Type"] == "application/json; charset=utf-8"
    body = req.json
    assert body == {
        "phone": "13812345678",
        "sign_name": "【某某政务服务中心】",
        "kind": "booking_reminder",
        "lang": "zh",
        "out_id": rig.row(row_id)["out_id"],
        "text": "您已预约“不动产登记”，预约号YY20260601-017，时间6月1日 09:30，地点一楼3号窗口。"
        "超过预约时间1小时未到场视为主动放弃。",
    }
    row = rig.row(row_id)
    assert (row["state"], row["provider_id"], row["attempts"]) == ("sent", "gw-778", 1)
    assert row["sent_at"] == T0.isoformat(timespec="microseconds")
    assert rig.dispatcher.run_once() == 0  # nothing left
    assert gateway.count() == 1
    assert rig.dispatcher.stats().to_dict() == {"pending": 0, "sending": 0, "sent": 1, "failed": 0}


def test_template_id_mode_and_basic_auth(gateway: FakeGateway, tmp_path: Path) -> None:
    pw = tmp_path / "gw-password"
    pw.write_text("pa55")
    settings = http_settings(
        gateway,
        auth="basic",
        username="hall01",
        password_file=str(pw),
        template_ids={"prereview_returned": "SMS_2718"},
    )
    rig = make_rig(tmp_path, settings)
    rig.enqueue(
        "r1",
        kind="prereview_returned",
        params={"receipt_no": "YS-7", "matter": "居住证", "items": ["照片", "合同"]},
    )
    rig.dispatcher.run_once()
    [req] = gateway.requests
    assert req.headers["Authorization"] == "Basic aGFsbDAxOnBhNTU="  # hall01:pa55
    body = req.json
    assert "text" not in body
    assert body["template_id"] == "SMS_2718"
    assert body["params"] == {"receipt_no": "YS-7", "matter": "居住证", "items": "1.照片；2.合同"}


def test_500_then_200_is_retried_after_an_exponential_backoff(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    settings = http_settings(gateway)
    gateway.script.extend([Reply(500), Reply(503), Reply(429), Reply(500), Reply(200)])
    rig = make_rig(tmp_path, settings)
    row_id = rig.enqueue("b1")
    j = settings.retry.jitter_fraction
    for failures, base in enumerate((30.0, 60.0, 120.0, 200.0), start=1):  # capped at max 200
        sends = gateway.count()
        rig.dispatcher.run_once()
        assert gateway.count() == sends + 1
        row = rig.row(row_id)
        assert (row["state"], row["attempts"]) == ("pending", failures)
        assert row["last_error"].startswith("HTTP ")
        delay = (parse(row["next_attempt_at"]) - rig.clock.now()).total_seconds()
        assert base * (1 - j) <= delay <= base * (1 + j), (failures, delay)
        # not due yet: a pass sends nothing
        rig.clock.advance(delay - 1)
        assert rig.dispatcher.run_once() == 0
        assert gateway.count() == sends + 1
        rig.clock.advance(1)
    assert rig.dispatcher.run_once() == 1
    row = rig.row(row_id)
    assert (row["state"], row["attempts"], row["last_error"]) == ("sent", 5, None)
    assert [r.json["out_id"] for r in gateway.requests] == [row["out_id"]] * 5
    assert rig.alarms == []


def test_retries_run_out_into_a_failure_with_an_alarm(gateway: FakeGateway, tmp_path: Path) -> None:
    gateway.default = Reply(502, body={})
    rig = make_rig(tmp_path, http_settings(gateway, retry={"max_attempts": 2}))
    row_id = rig.enqueue("b1")
    rig.dispatcher.run_once()
    rig.clock.advance(40)
    rig.dispatcher.run_once()
    row = rig.row(row_id)
    assert (row["state"], row["attempts"]) == ("failed", 2)
    assert rig.alarms == [
        (
            "notification_failed",
            {
                "id": row_id,
                "kind": "booking_reminder",
                "phone_masked": "138****5678",
                "reason": "gave up after 2 attempts: HTTP 502",
            },
        )
    ]


def test_400_is_a_permanent_failure_with_an_alarm(gateway: FakeGateway, tmp_path: Path) -> None:
    gateway.default = Reply(400, body={"code": "BAD_REQUEST", "msg": "nope"})
    rig = make_rig(tmp_path, http_settings(gateway))
    row_id = rig.enqueue("b1")
    assert rig.dispatcher.run_once() == 1
    rig.clock.advance(7200)
    assert rig.dispatcher.run_once() == 0
    assert gateway.count() == 1
    row = rig.row(row_id)
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert row["last_error"] == "HTTP 400, gateway code BAD_REQUEST"
    assert rig.alarms == [
        (
            "notification_failed",
            {
                "id": row_id,
                "kind": "booking_reminder",
                "phone_masked": "138****5678",
                "reason": "HTTP 400, gateway code BAD_REQUEST",
            },
        )
    ]
    assert list_recent(sqlite3.connect(rig.db_path), 5)[0].state == "failed"


def test_an_invalid_number_code_in_a_200_answer_is_permanent(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    gateway.script.extend(
        [Reply(200, {"code": "isv.BUSINESS_LIMIT_CONTROL"}), Reply(200, {"code": "E_MOBILE"})]
    )
    rig = make_rig(tmp_path, http_settings(gateway, invalid_number_codes=["E_MOBILE"]))
    row_id = rig.enqueue("b1")
    rig.dispatcher.run_once()
    assert rig.row(row_id)["state"] == "pending"  # throttled: retried
    assert rig.row(row_id)["last_error"] == "gateway code isv.BUSINESS_LIMIT_CONTROL"
    rig.clock.advance(3600)
    rig.dispatcher.run_once()
    row = rig.row(row_id)
    assert (row["state"], row["last_error"]) == ("failed", "gateway code E_MOBILE (invalid number)")
    assert len(rig.alarms) == 1


def test_a_gateway_slower_than_timeout_is_transient(gateway: FakeGateway, tmp_path: Path) -> None:
    gateway.script.append(Reply(200, delay_s=10.0))
    rig = make_rig(tmp_path, http_settings(gateway, timeout_s=0.3))
    row_id = rig.enqueue("b1")
    rig.dispatcher.run_once()
    row = rig.row(row_id)
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert row["last_error"] == "no answer within 0.3 s"
    gateway.release.set()
    rig.clock.advance(60)
    rig.dispatcher.run_once()
    assert rig.row(row_id)["state"] == "sent"


def test_connection_refused_is_transient(tmp_path: Path) -> None:
    gw = FakeGateway()
    url = gw.url
    gw.close()  # nothing listens on that port any more
    settings = NotifySettings.model_validate({"backend": "http_sms", "http_sms": {"url": url}})
    sender = HttpSmsSender(settings.http_sms)
    msg = OutgoingMessage(1, "abc", "booking_reminder", "13812345678", "hi")
    with pytest.raises(TransientSendError, match="connection refused"):
        sender.send(msg)


def test_redirects_are_not_followed(gateway: FakeGateway) -> None:
    gateway.default = Reply(302, body={})
    settings = NotifySettings.model_validate(
        {"backend": "http_sms", "http_sms": {"url": gateway.url}}
    )
    msg = OutgoingMessage(1, "abc", "booking_reminder", "13812345678", "hi")
    with pytest.raises(PermanentSendError, match="HTTP 302"):
        HttpSmsSender(settings.http_sms).send(msg)


def test_the_same_dedup_key_twice_sends_one_sms(gateway: FakeGateway, tmp_path: Path) -> None:
    rig = make_rig(tmp_path, http_settings(gateway))
    assert rig.enqueue("evt:kiosk-3:91") == 1
    assert rig.enqueue("evt:kiosk-3:91") is None  # the event was delivered twice
    rig.dispatcher.run_once()
    rig.clock.advance(86_400)
    rig.dispatcher.run_once()
    assert gateway.count() == 1


def test_a_missing_credential_file_fails_at_start(tmp_path: Path) -> None:
    settings = NotifySettings.model_validate(
        {
            "backend": "http_sms",
            "http_sms": {"url": "http://127.0.0.1:9/x", "auth": "bearer", "token_file": "tok"},
        }
    )
    with pytest.raises(NotifyConfigError, match=r"token_file .*tok: cannot read"):
        HttpSmsSender(settings.http_sms, base_dir=tmp_path)
    (tmp_path / "tok").write_text("\n")
    with pytest.raises(NotifyConfigError, match="one non-empty line"):
        HttpSmsSender(settings.http_sms, base_dir=tmp_path)


def test_background_loop_sends_on_wake_and_stops(gateway: FakeGateway, tmp_path: Path) -> None:
    from tests.fixtures import wait_until

    settings = http_settings(gateway).model_copy(update={"poll_interval_s": 600.0})
    rig = make_rig(tmp_path, settings)
    rig.dispatcher.start()
    try:
        row_id = rig.enqueue("b1")
        rig.dispatcher.wake()  # without it the next look would be 600 s away
        wait_until(lambda: rig.row(row_id)["state"] == "sent", what="the SMS sent by the loop")
    finally:
        rig.dispatcher.stop(timeout_s=5)
    assert gateway.count() == 1


def test_backoff_never_leaves_its_jitter_band() -> None:
    from hall.notify import RetrySettings, backoff_s

    retry = RetrySettings(backoff_initial_s=30.0, backoff_max_s=3600.0, jitter_fraction=0.2)
    rng = random.Random(7)
    for failures in range(1, 12):
        base = min(30.0 * 2 ** (failures - 1), 3600.0)
        for _ in range(200):
            assert base * 0.8 <= backoff_s(failures, retry, rng) <= base * 1.2
    still = RetrySettings(jitter_fraction=0.0)
    assert [backoff_s(n, still, rng) for n in (1, 2, 3)] == [30.0, 60.0, 120.0]
    assert timedelta(seconds=backoff_s(20, still, rng)) == timedelta(hours=1)


def test_a_lease_that_runs_out_on_the_last_attempt_fails_without_sending(
    gateway: FakeGateway, tmp_path: Path
) -> None:
    from hall.notify.queue import claim_next

    rig = make_rig(tmp_path, http_settings(gateway, retry={"max_attempts": 1}))
    row_id = rig.enqueue("b1")
    with rig.connect() as db:  # a dispatcher that claims the message and then dies
        assert claim_next(db, now=rig.clock.now(), lease_s=300) is not None
    rig.clock.advance(301)
    assert rig.dispatcher.run_once() == 1
    assert gateway.count() == 0
    row = rig.row(row_id)
    assert (row["state"], row["attempts"]) == ("failed", 2)
    assert rig.alarms[0][1]["reason"] == "gave up after 1 attempts (last unknown)"
