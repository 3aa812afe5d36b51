"""sd_notify against a real unix datagram socket playing systemd."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.watchdog import SdNotifier, socket_address, watchdog_interval_s

RECEIVE_TIMEOUT_S = 5.0


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket at a path, as systemd's $NOTIFY_SOCKET."""
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(RECEIVE_TIMEOUT_S)
    try:
        yield str(path), sock
    finally:
        sock.close()


def test_ready_and_pings_arrive_as_systemd_reads_them(
    systemd: tuple[str, socket.socket],
) -> None:
    address, sock = systemd
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": address})
    try:
        assert notifier.ready(status="first frame drawn")
        assert sock.recv(4096) == b"READY=1\nSTATUS=first frame drawn"
        assert notifier.ping()
        assert sock.recv(4096) == b"WATCHDOG=1"
        assert notifier.stopping()
        assert sock.recv(4096) == b"STOPPING=1"
    finally:
        notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"hallkiosk-test-{os.getpid()}-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(RECEIVE_TIMEOUT_S)
    notifier = SdNotifier(f"@{name}")
    try:
        assert notifier.ping()
        assert sock.recv(4096) == b"WATCHDOG=1"
    finally:
        notifier.close()
        sock.close()


def test_address_forms() -> None:
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@abc") == b"\0abc"


def test_without_systemd_it_does_nothing() -> None:
    notifier = SdNotifier.from_env({})
    assert not notifier.enabled
    assert not notifier.ping()


def test_a_vanished_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SdNotifier(str(tmp_path / "gone"))
    assert not notifier.ping()
    assert "sd_notify" in caplog.text
    notifier.close()


@pytest.mark.parametrize(
    ("env", "interval_s"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "4242"}, 1.5),
        ({"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_ping_interval_is_half_the_watchdog_timeout(
    env: dict[str, str], interval_s: float | None
) -> None:
    assert watchdog_interval_s(env, pid=4242) == interval_s


def test_a_systemd_that_does_not_read_never_blocks_the_sender(
    systemd: tuple[str, socket.socket], caplog: pytest.LogCaptureFixture
) -> None:
    address, sock = systemd
    notifier = SdNotifier(address)
    try:
        results = [notifier.ping() for _ in range(200)]  # far beyond the socket's queue
        assert results[0]
        assert not results[-1]
        assert caplog.text.count("sd_notify") == 1  # a run of failures is logged once
        sock.setblocking(False)
        while True:
            try:
                sock.recv(4096)
            except BlockingIOError:
                break
        assert notifier.ping()
    finally:
        notifier.close()
