"""The HTTP import endpoint, for real over a loopback socket with urllib and raw sockets."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hall.appointments import (
    AppointmentImportServer,
    AppointmentImportSettings,
    ImportResult,
    ImportServerBindError,
    ImportServerConfigError,
    ImportServerStateError,
)
from hall.appointments.http_import import HEALTH_PATH, IMPORT_PATH
from hall.errors import HallError
from hallkiosk.privacy import IdentityHasher, gb11643_check_digit
from tests.fixtures import wait_until

TZ = ZoneInfo("Asia/Shanghai")
HASHER = IdentityHasher(b"test-identity-key-0123456789abcd")
ID_1 = "33010619900101123" + gb11643_check_digit("33010619900101123")
ID_2 = "11010519491231002X"
HEADER = "预约号,身份证号,姓名,事项编码,事项名称,区域,开始时间,结束时间,手机号,地点,状态\r\n"
ROW_1 = f"YY-0001,{ID_1},张小三,330100-XK-001,不动产登记,estate,2024/5/6 9:00,2024/5/6 9:30,"
ROW_1 += "13912345678,3号窗口,已预约\r\n"
ROW_2 = f"YY-0002,{ID_2},欧阳小明,330100-XK-002,户籍迁入,hukou,2024/5/6 10:00,2024/5/6 10:15,,,\r\n"
BAD_ROW = ROW_2.replace("YY-0002", "YY-0003").replace(ID_2, ID_2[:17] + "1")
MAX_BODY = 4096


class Recorder:
    """on_import: keeps what it was given; may be told to fail or to wait."""

    def __init__(self) -> None:
        self.calls: list[ImportResult] = []
        self.fail: Exception | None = None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()

    def __call__(self, result: ImportResult) -> Mapping[str, object]:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.calls.append(result)
        return {"added": len(result.records), "updated": 0}


@pytest.fixture
def token_file(tmp_path: Path) -> tuple[Path, str]:
    token = secrets.token_hex(32)
    path = tmp_path / "import.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path, token


def make_settings(token_path: Path, **over: Any) -> AppointmentImportSettings:
    values: dict[str, Any] = {
        "http_enabled": True,
        "http_port": 0,
        "token_file": str(token_path),
        "max_body_bytes": MAX_BODY,
        "max_rows": 50,
        **over,
    }
    return AppointmentImportSettings(**values)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(
    token_file: tuple[Path, str], recorder: Recorder
) -> Iterator[tuple[AppointmentImportServer, str]]:
    srv = AppointmentImportServer(
        make_settings(token_file[0]), hasher=HASHER, tz=TZ, on_import=recorder
    )
    srv.start()
    try:
        yield srv, token_file[1]
    finally:
        srv.stop()


def request(
    url: str,
    *,
    method: str = "POST",
    body: bytes | None = None,
    token: str | None = None,
    content_type: str | None = "text/csv",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any, dict[str, Any]]:
    req = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, json.loads(exc.read())


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close (so a short body ends), read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_good_csv_import_reaches_on_import(
    server: tuple[AppointmentImportServer, str], recorder: Recorder
) -> None:
    srv, token = server
    body = (HEADER + ROW_1 + ROW_2).encode("gb18030")
    status, headers, answer = request(
        srv.url + IMPORT_PATH, body=body, token=token, content_type="text/csv; charset=gb18030"
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer == {
        "status": "imported",
        "accepted": 2,
        "rejected": 0,
        "errors": [],
        "errors_total": 0,
        "summary": {"added": 2, "updated": 0},
    }
    (call,) = recorder.calls
    assert [r.booking_code for r in call.records] == ["YY-0001", "YY-0002"]
    assert call.records[0].identity_hash == HASHER.hash_id_number(ID_1)
    assert call.records[1].name_masked == "欧**明"


def test_a_json_import(server: tuple[AppointmentImportServer, str], recorder: Recorder) -> None:
    srv, token = server
    doc = {
        "appointments": [
            {
                "booking_code": "YY-J1",
                "id_number": ID_2,
                "name": "李四",
                "matter_code": "X1",
                "matter_name": "社保卡补办",
                "area": "social",
                "slot_start": "2024-05-06T14:00:00+08:00",
                "slot_end": "2024-05-06T14:30:00+08:00",
            }
        ]
    }
    body = json.dumps(doc, ensure_ascii=False).encode()
    status, _, answer = request(
        srv.url + IMPORT_PATH,
        body=body,
        token=token,
        content_type="application/json; charset=utf-8",
    )
    assert (status, answer["accepted"]) == (200, 1)
    assert recorder.calls[0].records[0].name_masked == "李*"


def test_rows_with_errors_beside_good_rows_are_a_200_with_the_errors(
    server: tuple[AppointmentImportServer, str], recorder: Recorder
) -> None:
    srv, token = server
    body = (HEADER + ROW_1 + BAD_ROW).encode()
    status, _, answer = request(srv.url + IMPORT_PATH, body=body, token=token)
    assert status == 200
    assert answer["accepted"] == 1
    assert answer["rejected"] == 1
    assert answer["errors"] == [
        {"row": 3, "field": "id_number", "message": "check digit does not match"}
    ]
    assert [r.booking_code for r in recorder.calls[0].records] == ["YY-0001"]
    assert [str(e) for e in recorder.calls[0].errors] == [
        "row 3: id_number: check digit does not match"
    ]


def test_a_file_without_rows_is_an_empty_import(
    server: tuple[AppointmentImportServer, str], recorder: Recorder
) -> None:
    srv, token = server
    status, _, answer = request(srv.url + IMPORT_PATH, body=HEADER.encode(), token=token)
    assert (status, answer["accepted"], answer["errors"]) == (200, 0, [])
    assert recorder.calls == [ImportResult([], [])]


def test_a_file_with_no_valid_row_is_422_and_not_imported(
    server: tuple[AppointmentImportServer, str], recorder: Recorder
) -> None:
    srv, token = server
    status, _, answer = request(
        srv.url + IMPORT_PATH, body=(HEADER + BAD_ROW).encode(), token=token
    )
    assert status == 422
    assert answer == {
        "error": "invalid_import",
        "message": "nothing could be imported",
        "errors": [{"row": 2, "field": "id_number", "message": "check digit does not match"}],
        "errors_total": 1,
    }
    status, _, answer = request(srv.url + IMPORT_PATH, body=b"foo,bar\r\n1,2\r\n", token=token)
    assert status == 422
    assert answer["errors"][0]["field"] == "header"
    assert recorder.calls == []


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-wrong-token-wrong-token", "Basic {token}", "Bearer {token}x"],
)
def test_a_bad_token_is_401(
    server: tuple[AppointmentImportServer, str], recorder: Recorder, authorization: str | None
) -> None:
    srv, token = server
    headers = {"Authorization": authorization.format(token=token)} if authorization else {}
    status, resp_headers, answer = request(
        srv.url + IMPORT_PATH, body=(HEADER + ROW_1).encode(), headers=headers
    )
    assert status == 401
    assert resp_headers["WWW-Authenticate"] == "Bearer"
    assert answer == {"error": "unauthorized", "message": "a valid bearer token is required"}
    assert recorder.calls == []


def test_a_wrong_content_type_is_415(
    server: tuple[AppointmentImportServer, str], recorder: Recorder
) -> None:
    srv, token = server
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        status, _, answer = request(
            srv.url + IMPORT_PATH,
            body=(HEADER + ROW_1).encode(),
            token=token,
            content_type=content_type,
        )
        assert status == 415
        assert answer["error"] == "unsupported_media_type"
    assert recorder.calls == []


def test_a_body_over_the_limit_is_413_and_the_client_reads_it(
    server: tuple[AppointmentImportServer, str], recorder: Recorder
) -> None:
    srv, token = server
    just_fits = (HEADER + ROW_1).encode()
    just_fits += b"\n" * (MAX_BODY - len(just_fits))
    assert len(just_fits) == MAX_BODY
    status, _, _ = request(srv.url + IMPORT_PATH, body=just_fits, token=token)
    assert status == 200
    # 4 MiB: more than the socket buffers hold, so the server must drain it before closing
    for size in (MAX_BODY + 1, 4 * 1024 * 1024):
        status, _, answer = request(srv.url + IMPORT_PATH, body=b"x" * size, token=token)
        assert status == 413
        assert answer == {
            "error": "too_large",
            "message": f"the body is {size} bytes; the limit is {MAX_BODY}",
        }
    assert len(recorder.calls) == 1


def test_paths_methods_and_health(server: tuple[AppointmentImportServer, str]) -> None:
    srv, token = server
    assert request(srv.url + HEALTH_PATH, method="GET", content_type=None)[::2] == (
        200,
        {"status": "ok"},
    )
    status, headers, answer = request(srv.url + IMPORT_PATH, method="GET", token=token)
    assert (status, headers["Allow"], answer["error"]) == (405, "POST", "method_not_allowed")
    status, headers, _ = request(srv.url + HEALTH_PATH, body=b"{}", token=token)
    assert (status, headers["Allow"]) == (405, "GET")
    status, _, answer = request(srv.url + "/api/v1/appointments", body=b"x", token=token)
    assert (status, answer["error"]) == (404, "not_found")


def test_length_problems_and_bad_request_lines_get_json_answers(
    server: tuple[AppointmentImportServer, str],
) -> None:
    srv, token = server
    head = (
        f"POST {IMPORT_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: text/csv\r\n"
    )
    chunked_head = head + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    chunked = raw_exchange(srv.port, chunked_head.encode())
    assert chunked.startswith(b"HTTP/1.1 411 ")
    assert chunked.endswith(
        b'{"error": "length_required", "message": "send the body with a Content-Length, '
        b'not chunked"}'
    )
    missing = raw_exchange(srv.port, (head + "\r\n").encode())
    assert missing.startswith(b"HTTP/1.1 411 ")
    bad = raw_exchange(srv.port, (head + "Content-Length: -5\r\n\r\n").encode())
    assert bad.startswith(b"HTTP/1.1 400 ")
    short = raw_exchange(srv.port, (head + "Content-Length: 100\r\n\r\nabc").encode())
    assert short.startswith(b"HTTP/1.1 400 ")
    assert short.endswith(b'the body is shorter than its Content-Length"}')
    garbage = raw_exchange(srv.port, b"\x16\x03\x01 hello " + ID_1.encode() + b"\r\n\r\n")
    assert garbage.endswith(b'{"error": "bad_request", "message": "Bad Request"}')


def test_access_log_carries_no_body_query_or_token(
    server: tuple[AppointmentImportServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    srv, token = server
    body = (HEADER + ROW_1 + BAD_ROW).encode()
    request(srv.url + IMPORT_PATH + "?id=" + ID_2, body=body, token=token)
    request(srv.url + "/api/v1/lookup/" + ID_2, method="GET", content_type=None)
    request(srv.url + IMPORT_PATH, body=body, token="not-the-token")
    raw_exchange(srv.port, b"GET /" + ID_1.encode() + b" HTTP/9.9\r\n\r\n")
    lines = [r.getMessage() for r in caplog.records]
    assert f"POST {IMPORT_PATH} 200 from 127.0.0.1" in lines
    assert "GET (other path) 404 from 127.0.0.1" in lines
    assert f"POST {IMPORT_PATH} 401 from 127.0.0.1" in lines
    for secret in (ID_1, ID_1[:17], ID_2, ID_2[:17], "张小三", "欧阳小明", "13912345678", token):
        assert secret not in caplog.text


def test_on_import_failure_is_500_and_the_server_goes_on(
    server: tuple[AppointmentImportServer, str], recorder: Recorder
) -> None:
    srv, token = server
    body = (HEADER + ROW_1).encode()
    recorder.fail = HallError("database locked")
    status, _, answer = request(srv.url + IMPORT_PATH, body=body, token=token)
    assert (status, answer["error"]) == (500, "hall_error")
    recorder.fail = RuntimeError("boom")
    status, _, answer = request(srv.url + IMPORT_PATH, body=body, token=token)
    assert (status, answer["error"]) == (500, "import_failed")
    recorder.fail = None
    assert request(srv.url + IMPORT_PATH, body=body, token=token)[0] == 200


def test_token_file_problems_stop_the_start(
    tmp_path: Path, recorder: Recorder, token_file: tuple[Path, str]
) -> None:
    def start(path: Path, **over: Any) -> str:
        srv = AppointmentImportServer(
            make_settings(path, **over), hasher=HASHER, tz=TZ, on_import=recorder
        )
        with pytest.raises(ImportServerConfigError) as info:
            srv.start()
        with pytest.raises(ImportServerStateError):
            _ = srv.port
        return str(info.value)

    missing = tmp_path / "absent.token"
    assert start(missing) == f"token_file {str(missing)!r}: file not found"
    short = tmp_path / "short.token"
    short.write_text("s3cr3t-but-short\n")
    message = start(short)
    assert "the token has 16 characters, at least 32 are needed" in message
    assert "s3cr3t" not in message
    spaced = tmp_path / "spaced.token"
    spaced.write_text("a" * 20 + " " + "b" * 20)
    assert "printable ASCII without spaces" in start(spaced)
    disabled = AppointmentImportSettings(token_file=str(token_file[0]))
    srv = AppointmentImportServer(disabled, hasher=HASHER, tz=TZ, on_import=recorder)
    with pytest.raises(ImportServerConfigError, match="http_enabled = false"):
        srv.start()


def test_start_twice_and_a_taken_port(
    server: tuple[AppointmentImportServer, str], token_file: tuple[Path, str], recorder: Recorder
) -> None:
    srv, _ = server
    with pytest.raises(ImportServerStateError):
        srv.start()
    other = AppointmentImportServer(
        make_settings(token_file[0], http_port=srv.port), hasher=HASHER, tz=TZ, on_import=recorder
    )
    with pytest.raises(ImportServerBindError, match=f"cannot listen on 127.0.0.1:{srv.port}"):
        other.start()


def test_stop_closes_idle_connections_and_finishes_imports_in_progress(
    token_file: tuple[Path, str], recorder: Recorder
) -> None:
    settings = make_settings(token_file[0], request_timeout_s=120.0)
    srv = AppointmentImportServer(settings, hasher=HASHER, tz=TZ, on_import=recorder)
    srv.start()
    port, url, token = srv.port, srv.url, token_file[1]
    idle = socket.create_connection(("127.0.0.1", port))  # connects, never sends a request
    recorder.gate = threading.Event()
    answers: list[int] = []
    client = threading.Thread(
        target=lambda: answers.append(
            request(url + IMPORT_PATH, body=(HEADER + ROW_1).encode(), token=token)[0]
        )
    )
    client.start()
    wait_until(recorder.entered.is_set, what="on_import entered")
    stopper = threading.Thread(target=srv.stop)
    stopper.start()
    wait_until(lambda: _refused(port), what="listening socket closed")
    assert stopper.is_alive()  # still waiting for the import in progress
    recorder.gate.set()
    # well inside the 120 s request timeout the idle connection would otherwise hold
    wait_until(lambda: not stopper.is_alive(), timeout_s=10, what="stop() returned")
    client.join(10)
    assert answers == [200]
    assert len(recorder.calls) == 1
    assert idle.recv(1) == b""  # the idle connection was closed, not left hanging
    idle.close()


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


def test_ipv6_loopback(token_file: tuple[Path, str], recorder: Recorder) -> None:
    if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
        pytest.skip("this machine has no IPv6 loopback")
    settings = make_settings(token_file[0], http_bind="::1")
    with AppointmentImportServer(settings, hasher=HASHER, tz=TZ, on_import=recorder) as srv:
        assert srv.url == f"http://[::1]:{srv.port}"
        assert request(srv.url + HEALTH_PATH, method="GET", content_type=None)[0] == 200
