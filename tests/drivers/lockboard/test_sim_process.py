"""The simulator as a real process on a pty, driven through pyserial and its control socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any, Literal

import pytest
import serial

from drivers.lockboard.sim import SimControlError
from tests.fixtures import wait_until
from tests.fixtures.processes import (
    REPO_ROOT,
    LockboardSimFactory,
    ManagedProcess,
    SimHandle,
    Spawner,
)

REPLY_TIMEOUT_S = 3.0

UNLOCK = {
    "8a80": (bytes.fromhex("8A 01 01 11 9B"), bytes.fromhex("8A 01 01 11 9B")),
    "kerong": (bytes.fromhex("02 00 31 03 36"), bytes.fromhex("02 00 31 01 03 37")),
}
STATUS = {
    "8a80": (bytes.fromhex("80 01 00 33 B2"), bytes.fromhex("80 01 00 00 00 33 B2")),
    "kerong": (bytes.fromhex("02 00 30 03 35"), bytes.fromhex("02 00 35 00 00 00 00 03 3A")),
}


@pytest.fixture
def ports() -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for port in opened:
        port.close()


def open_port(handle: SimHandle, ports: list[Any]) -> Any:
    port = serial.serial_for_url(handle.pty_path, baudrate=9600, timeout=REPLY_TIMEOUT_S)
    ports.append(port)
    return port


def exchange(port: Any, request: bytes, reply_len: int, handle: SimHandle) -> bytes:
    port.write(request)
    reply: bytes = port.read(reply_len)
    assert len(reply) == reply_len, f"short reply {reply.hex(' ')}\n{handle.process.describe()}"
    return reply


@pytest.mark.parametrize("protocol", ["8a80", "kerong"])
def test_unlock_over_pty_then_clean_sigterm(
    protocol: Literal["8a80", "kerong"], lockboard_sim: LockboardSimFactory, ports: list[Any]
) -> None:
    board = 1 if protocol == "8a80" else 0
    handle = lockboard_sim(protocol, boards=(board,))
    handle.control.set_auto_person(True, pull_after_ms=20, close_after_ms=50)  # keep it quick
    port = open_port(handle, ports)
    request, expected = UNLOCK[protocol]
    assert exchange(port, request, len(expected), handle) == expected

    log = handle.control.unlock_log()
    assert [(fire.board, fire.channel, fire.jammed) for fire in log] == [(board, 1, False)]
    # the automatic person opens the door, then closes it again
    wait_until(
        lambda: handle.control.snapshot()["door_openings"] == 1,
        what=lambda: f"door opening; {handle.control.snapshot()}",
    )
    wait_until(
        lambda: (
            handle.control.snapshot()["boards"][str(board)]["channels"]["1"]["door"] == "closed"
        ),
        what="door closed again",
    )
    request, expected = STATUS[protocol]
    assert exchange(port, request, len(expected), handle) == expected

    port.close()
    handle.process.send_signal(signal.SIGTERM)
    assert handle.process.wait(timeout_s=5.0) == 0, handle.process.describe()
    assert not os.path.exists(handle.control_path)


def test_host_can_close_and_reopen_the_port(
    lockboard_sim: LockboardSimFactory, ports: list[Any]
) -> None:
    handle = lockboard_sim("8a80", boards=(1, 2))
    for _ in range(3):
        port = open_port(handle, ports)
        assert exchange(port, bytes.fromhex("80 02 01 33 B0"), 5, handle) == bytes.fromhex(
            "80 02 01 00 83"
        )
        port.close()
    assert handle.process.is_running(), handle.process.describe()


def test_hooks_over_the_control_socket(
    lockboard_sim: LockboardSimFactory, ports: list[Any]
) -> None:
    handle = lockboard_sim("kerong", boards=(0, 3), channels=8, auto_person=False)
    control = handle.control
    port = open_port(handle, ports)
    control.jam(3, 2)
    assert exchange(port, bytes.fromhex("02 31 31 03 67"), 6, handle) == bytes.fromhex(
        "02 31 31 00 03 67"
    )
    assert control.unlock_log()[0].jammed
    control.force_open(0, 8)
    control.put_item(0, 1)
    assert exchange(port, bytes.fromhex("02 00 30 03 35"), 9, handle) == bytes.fromhex(
        "02 00 35 80 00 01 00 03 BB"
    )
    assert control.pull_door(0, 8) is True
    assert control.hold_door_open(3, 1) is False
    control.set_auto_person(True, pull_after_ms=5, close_after_ms=5)
    control.close_door(0, 8)
    control.take_item(0, 1)
    control.garble_next(0)
    control.delay_replies(0)
    control.set_offline(3)
    port.timeout = 0.1
    port.write(bytes.fromhex("02 30 30 03 65"))
    assert port.read(9) == b""
    snap = control.snapshot()
    assert snap["offline_boards"] == [3]
    assert snap["boards"]["0"]["channels"]["8"]["door"] == "closed"
    with pytest.raises(SimControlError, match="board 7"):
        control.jam(7, 1)


MALFORMED = [
    b"not json",
    b"[1, 2]",
    b'{"hook": "explode"}',
    b'{"hook": "jam", "args": {"board": 1}}',
    b'{"hook": "jam", "args": {"board": "1", "channel": 1}}',
    b'{"hook": "jam", "args": {"board": 1, "channel": 1, "colour": "red"}}',
    b'{"hook": "jam", "args": [1, 1]}',
    b'{"hook": 3}',
    b'{"hook": "snapshot", "extra": 1}',
    b'{"hook": "delay_replies", "args": {"delay_ms": -5}}',
    b"\xff\xfe",
]


def test_malformed_control_requests_are_refused(lockboard_sim: LockboardSimFactory) -> None:
    handle = lockboard_sim("8a80")
    for line in MALFORMED:
        answer = handle.control.request_line(line)
        assert answer["ok"] is False and answer["error"], (line, answer)
    assert handle.control.snapshot()["protocol"] == "8a80"
    assert handle.control.snapshot()["boards"]["1"]["channels"]["1"]["jammed"] is False
    assert handle.process.is_running(), handle.process.describe()


def test_control_answers_several_lines_on_one_connection(
    lockboard_sim: LockboardSimFactory,
) -> None:
    handle = lockboard_sim("8a80", auto_person=False)
    requests = [{"hook": "jam", "args": {"board": 1, "channel": 1}}, {"hook": "snapshot"}]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(REPLY_TIMEOUT_S)
        sock.connect(handle.control_path)
        sock.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in requests) + b"garbage\n")
        received = b""
        while received.count(b"\n") < 3:
            chunk = sock.recv(65536)
            assert chunk, handle.process.describe()
            received += chunk
    answers = [json.loads(line) for line in received.splitlines()]
    assert [a["ok"] for a in answers] == [True, True, False]
    assert answers[1]["result"]["boards"]["1"]["channels"]["1"]["jammed"] is True


def test_cli_flags_reach_the_model(lockboard_sim: LockboardSimFactory, ports: list[Any]) -> None:
    handle = lockboard_sim(
        "8a80", channels=8, feedback_open="clear", reply=False, status_bytes=1, auto_person=False
    )
    port = open_port(handle, ports)
    port.timeout = 0.1
    port.write(bytes.fromhex("8A 01 01 11 9B"))
    assert port.read(5) == b""
    port.timeout = REPLY_TIMEOUT_S
    assert exchange(port, bytes.fromhex("80 01 00 33 B2"), 5, handle) == bytes.fromhex(
        "80 01 FE 33 4C"
    )
    assert handle.control.snapshot()["auto_person"] is False


def test_bad_arguments_exit_nonzero(spawn: Spawner) -> None:
    process = spawn("drivers.lockboard.sim", "--protocol", "kerong", "--boards", "12")
    assert process.wait(timeout_s=10.0) == 2
    assert "board address 12" in process.stderr


def _process_gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


def test_exit_with_parent_stops_an_orphaned_simulator(spawn: Spawner) -> None:
    # an intermediate parent starts the simulator, waits until it is up, then dies
    launcher = (
        "import subprocess, sys\n"
        "sim = subprocess.Popen([sys.executable, '-m', 'drivers.lockboard.sim', '--protocol',"
        " 'kerong', '--exit-with-parent'], stdout=subprocess.PIPE)\n"
        "print(sim.pid, sim.stdout.readline().decode().strip(), flush=True)\n"
    )
    parent = ManagedProcess([sys.executable, "-c", launcher], cwd=REPO_ROOT)
    spawn.started.append(parent)
    pid_text, pty_path = parent.read_line(timeout_s=10.0).split()
    assert pty_path.startswith("/dev/"), parent.describe()
    assert parent.wait(timeout_s=10.0) == 0, parent.describe()
    wait_until(lambda: _process_gone(int(pid_text)), what=f"orphaned simulator {pid_text} to exit")
