"""lockerd's socket API: versioning, malformed requests, permissions, the event stream."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from locker.client import LockerClient, LockerdUnavailable
from tests.fixtures import wait_until
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.harness import InProcessLockerd


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    sim = lockboard_sim("8a80", boards=(1,), channels=8)
    daemon = InProcessLockerd(tmp_path, sim, "8a80").start()
    try:
        yield daemon
    finally:
        daemon.stop()


def raw(locker: InProcessLockerd, payload: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(locker.settings.socket_path))
        sock.sendall(payload)
        reply = sock.makefile("rb").readline()
    value = json.loads(reply)
    assert isinstance(value, dict)
    return value


def test_malformed_requests_get_clear_errors(locker: InProcessLockerd) -> None:
    cases = {
        b"this is not json\n": "not a JSON object",
        b"[1, 2]\n": "not a JSON object",
        b'{"v": 2, "id": 1, "method": "status"}\n': "unsupported API version 2",
        b'{"v": 1, "id": 2, "method": "open_everything"}\n': "unknown method",
        b'{"v": 1, "id": 3, "method": "pickup", "params": {"password": 123456}}\n': (
            "identity_hash: Field required"
        ),
        b'{"v": 1, "id": 4, "method": "status", "params": {"x": 1}}\n': "x: Extra inputs",
    }
    for payload, expected in cases.items():
        reply = raw(locker, payload)
        assert reply["ok"] is False and reply["v"] == 1
        assert expected in reply["error"]["detail"], reply
        assert reply["error"]["message_zh"] and reply["error"]["message_en"]
    # the daemon is still fine
    assert locker.client.call("status")["device_id"] == "locker-test"


def test_oversized_request_is_refused(locker: InProcessLockerd) -> None:
    reply = raw(locker, b'{"v": 1, "id": 1, "method": "status", "pad": "' + b"x" * 70_000 + b'"}\n')
    assert reply["ok"] is False and "too large" in reply["error"]["detail"]


def test_socket_mode_and_a_foreign_user_is_refused(
    tmp_path: Path, lockboard_sim: LockboardSimFactory
) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as another user")  # CI runs as root
    # the socket lives where any user can reach the file, so only its mode and the
    # peer-credential check can keep a foreign user out
    public = Path(tempfile.mkdtemp(prefix="lockerd-api-"))
    public.chmod(0o755)
    sim = lockboard_sim("8a80", boards=(1,), channels=8)
    locker = InProcessLockerd(
        tmp_path, sim, "8a80", extra=f'[lockerd.api]\nsocket_path = "{public}/l.sock"\n'
    ).start()
    try:
        _check_foreign_user(str(locker.settings.socket_path))
    finally:
        locker.stop()
        shutil.rmtree(public, ignore_errors=True)


def _check_foreign_user(path: str) -> None:
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    # a process running as 'nobody' cannot even connect (mode 0660, owner and group root)
    code = (
        "import os, socket, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n"
        f"    s.connect({path!r})\n"
        "except PermissionError:\n"
        "    print('refused'); sys.exit(0)\n"
        "print('connected')\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert res.stdout.strip() == "refused", res.stderr
    # and with the file opened up, the peer-credential check still turns it away
    os.chmod(path, 0o666)
    code = code.replace(
        "print('connected')",
        "print(s.makefile().readline())",  # refused on accept: one error line, then closed
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert res.stdout.strip(), res.stderr
    reply = json.loads(res.stdout)
    assert reply["ok"] is False and reply["error"]["code"] == "not_permitted"


def test_event_stream_sees_doors_and_alarms(locker: InProcessLockerd) -> None:
    events: list[dict[str, Any]] = []
    subscriber = LockerClient(str(locker.settings.socket_path))

    def listen() -> None:
        for event in subscriber.events():
            events.append(event)
            if event["type"] == "alarm" and event["alarm"] == "door_forced":
                return

    # lockerd's own telemetry loop is a subscriber too
    before = locker.on_loop(lambda s: len(s.events._subscribers))
    worker = threading.Thread(target=listen, daemon=True)
    worker.start()
    wait_until(
        lambda: locker.on_loop(lambda s: len(s.events._subscribers)) == before + 1,
        timeout_s=10,
        what=lambda: (
            f"subscriber registered; have {locker.on_loop(lambda s: len(s.events._subscribers))}"
        ),
    )
    locker.sim.control.set_auto_person(False)
    locker.sim.control.force_open(1, 2)
    worker.join(timeout=10)
    kinds = [(e["type"], e.get("bay_id")) for e in events]
    assert ("door", "A02") in kinds and ("alarm", "A02") in kinds
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_daemon_gone_is_a_clear_error(tmp_path: Path) -> None:
    client = LockerClient(str(tmp_path / "nothing.sock"), timeout_s=1)
    with pytest.raises(LockerdUnavailable) as info:
        client.call("status")
    assert "储物柜服务暂时不可用" in info.value.message_zh


def test_idle_connection_is_closed(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> None:
    sim = lockboard_sim("8a80", boards=(1,), channels=8)
    locker = InProcessLockerd(
        tmp_path, sim, "8a80", extra="[lockerd.api]\nrequest_timeout_s = 0.3\n"
    ).start()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(locker.settings.socket_path))
            sock.sendall(b'{"v": 1, "id": 1, "method": "sta')  # never finished
            assert sock.recv(100) == b""  # the daemon hung up on the idle client
        assert locker.client.call("status")["device_id"] == "locker-test"
    finally:
        locker.stop()


def test_door_watch_runs_whatever_clients_do(locker: InProcessLockerd) -> None:
    idle = []
    for n in range(20):  # connections that never send a full line, or send garbage
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(locker.settings.socket_path))
        sock.sendall(b"\x00\xff garbage " * n)
        idle.append(sock)
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(str(locker.settings.socket_path))
    stalled.sendall(b'{"v": 1, "id": 0, "method": "events.subscribe"}\n')  # and never read
    try:
        locker.sim.control.set_auto_person(False)
        locker.sim.control.force_open(1, 6)
        wait_until(
            lambda: ("door_forced", "A06") in locker.alarms(),
            timeout_s=10,
            what="tamper alarm while clients misbehave",
        )
    finally:
        for sock in [*idle, stalled]:
            sock.close()
