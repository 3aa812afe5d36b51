"""The bus actor over a real pty to the simulator process, for both board families."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from typing import Any

import pytest

from drivers.lockboard.bus import LockBus, open_serial
from drivers.lockboard.errors import BoardOffline, BoardTimeout, LockboardError
from drivers.lockboard.settings import BusSettings
from tests.fixtures.processes import LockboardSimFactory, SimHandle

BOARD = {"8a80": 1, "kerong": 0}


def make_bus(sim: SimHandle, protocol: str, **overrides: Any) -> LockBus:
    fields: dict[str, Any] = {
        "name": "t",
        "protocol": protocol,
        "url": sim.pty_path,
        "reply_timeout_ms": 200,
        "inter_frame_gap_ms": 5,
    }
    fields.update(overrides)
    bus = LockBus(BusSettings.model_validate(fields))
    bus.start()
    return bus


@pytest.fixture(params=["8a80", "kerong"])
def protocol(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_open_and_status_round_trip(lockboard_sim: LockboardSimFactory, protocol: str) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(protocol, boards=(board,), channels=16, auto_person=False)
    with make_bus(sim, protocol) as bus:
        assert not any(bus.read_doors(board).doors.values())
        reply = bus.open(board, 3)
        assert (reply.acknowledged, reply.latch_open, reply.confirmed_by_status) == (
            True,
            True,
            False,
        )
        assert bus.read_doors(board).doors[3] is True  # latch released
        sim.control.force_open(board, 5)
        doors = bus.read_doors(board).doors
        assert sorted(ch for ch, is_open in doors.items() if is_open) == [3, 5]
    fires = sim.control.unlock_log()
    assert [(f.board, f.channel) for f in fires] == [(board, 3)]


def test_polarity_setting_must_match_the_wiring(
    lockboard_sim: LockboardSimFactory, protocol: str
) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(
        protocol, boards=(board,), channels=16, feedback_open="clear", auto_person=False
    )
    with make_bus(sim, protocol, feedback_open="clear") as bus:
        assert not any(bus.read_doors(board).doors.values())
        sim.control.force_open(board, 2)
        assert bus.read_doors(board).doors[2] is True
    with make_bus(sim, protocol, feedback_open="set") as wrong:
        doors = wrong.read_doors(board).doors
        assert doors[2] is False and doors[1] is True  # a wrong setting inverts every door


def test_lost_open_reply_is_checked_not_resent(
    lockboard_sim: LockboardSimFactory, protocol: str
) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(protocol, boards=(board,), channels=16, auto_person=False)
    with make_bus(sim, protocol) as bus:
        sim.control.garble_next(1)
        reply = bus.open(board, 4)
        assert reply.latch_open is True and reply.confirmed_by_status is True
    assert len(sim.control.unlock_log()) == 1  # one pickup, one coil fire


def test_garbled_status_reply_is_retried(lockboard_sim: LockboardSimFactory, protocol: str) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(protocol, boards=(board,), channels=16, auto_person=False)
    with make_bus(sim, protocol, retries=2) as bus:
        sim.control.garble_next(2)
        assert bus.read_doors(board).board == board
    with make_bus(sim, protocol, retries=0) as bus:
        sim.control.garble_next(1)
        with pytest.raises(LockboardError, match="no valid reply in"):
            bus.read_doors(board)


def test_offline_board_times_out_then_recovers(
    lockboard_sim: LockboardSimFactory, protocol: str
) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(protocol, boards=(board,), channels=16, auto_person=False)
    with make_bus(sim, protocol, retries=1) as bus:
        sim.control.set_offline(board)
        with pytest.raises(BoardTimeout) as info:
            bus.read_doors(board)
        assert isinstance(info.value, TimeoutError)
        with pytest.raises(BoardTimeout, match="could not be read to decide a resend"):
            bus.open(board, 1)
        assert sim.control.unlock_log() == []  # an offline board ignores commands
        sim.control.set_offline(board, False)
        assert bus.open(board, 1).latch_open is True


def test_late_replies_are_flushed_before_the_next_command(
    lockboard_sim: LockboardSimFactory, protocol: str
) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(protocol, boards=(board,), channels=16, auto_person=False)
    with make_bus(sim, protocol, retries=0, reply_timeout_ms=100) as bus:
        sim.control.delay_replies(250)
        with pytest.raises(BoardTimeout):
            bus.read_doors(board)
        sim.control.delay_replies(0)
        sim.control.force_open(board, 7)
        deadline = time.monotonic() + 5
        # the late reply (all closed) lands in the buffer; fresh readings must not use it
        while time.monotonic() < deadline:
            if bus.read_doors(board).doors[7]:
                break
        assert bus.read_doors(board).doors[7] is True


def test_jammed_lock_reports_still_closed(
    lockboard_sim: LockboardSimFactory, protocol: str
) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(protocol, boards=(board,), channels=16, auto_person=False)
    sim.control.jam(board, 6)
    with make_bus(sim, protocol) as bus:
        reply = bus.open(board, 6)
    assert reply.acknowledged and reply.latch_open is False


def test_kerong_without_reply(lockboard_sim: LockboardSimFactory) -> None:
    sim = lockboard_sim("kerong", boards=(0,), channels=16, reply=False, auto_person=False)
    with make_bus(sim, "kerong", expect_reply=False) as bus:
        reply = bus.open(0, 9)
        assert (reply.acknowledged, reply.latch_open) == (False, None)
        assert bus.read_doors(0).doors[9] is True  # status still answers
    assert [(f.board, f.channel) for f in sim.control.unlock_log()] == [(0, 9)]


def test_unplugged_link_is_reported_as_offline(lockboard_sim: LockboardSimFactory) -> None:
    sim = lockboard_sim("8a80", boards=(1,), channels=8, auto_person=False)
    bus = make_bus(sim, "8a80", retries=0)
    try:
        assert bus.read_doors(1).board == 1
        sim.process.kill()
        with pytest.raises((BoardOffline, BoardTimeout)):
            bus.read_doors(1)
    finally:
        bus.close()
    with pytest.raises(BoardOffline):
        bus.submit_status(1)


def test_addresses_outside_the_family_range_are_refused() -> None:
    bus = LockBus(BusSettings(name="x", protocol="kerong", url="sim://kerong?boards=0"))
    with pytest.raises(LockboardError, match="board 12 is outside 0-9"):
        bus.submit_status(12)
    with pytest.raises(LockboardError, match="channel 17 is outside 1-16"):
        bus.submit_open(0, 17)


def test_inter_frame_gap_is_kept() -> None:
    written: list[float] = []

    def recording_factory(url: str, baud: int) -> Any:
        port = open_serial(url, baud)
        original = port.write

        def write(data: bytes) -> int:
            written.append(time.monotonic())
            return int(original(data))

        port.write = write
        return port

    settings = BusSettings(
        name="g", protocol="8a80", url="sim://8a80?boards=1&channels=8", inter_frame_gap_ms=40
    )
    with LockBus(settings, serial_factory=recording_factory) as bus:
        for _ in range(4):
            bus.read_doors(1)
    gaps = [b - a for a, b in itertools.pairwise(written)]
    # a lower bound only: the actor sleeps until the gap has passed since the last byte
    assert len(gaps) == 3 and min(gaps) >= 0.040


def _lockerctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locker.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_lockerctl_board_diagnostic(lockboard_sim: LockboardSimFactory, protocol: str) -> None:
    board = BOARD[protocol]
    sim = lockboard_sim(protocol, boards=(board,), channels=16, auto_person=False)
    res = _lockerctl(
        "--json",
        "board",
        "--url",
        sim.pty_path,
        "--protocol",
        protocol,
        "--baud",
        "9600",
        "--board",
        str(board),
        "open",
        "2",
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {
        "board": board,
        "channel": 2,
        "acknowledged": True,
        "latch_open": True,
        "confirmed_by_status": False,
    }
    res = _lockerctl(
        "--json",
        "board",
        "--url",
        sim.pty_path,
        "--protocol",
        protocol,
        "--board",
        str(board),
        "status",
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["doors"]["2"] == "open"
    text = _lockerctl(
        "board", "--url", sim.pty_path, "--protocol", protocol, "--board", str(board), "status"
    )
    assert "2:OPEN" in text.stdout and "1:closed" in text.stdout
    sim.control.set_offline(board)
    res = _lockerctl(
        "board",
        "--url",
        sim.pty_path,
        "--protocol",
        protocol,
        "--board",
        str(board),
        "--timeout-ms",
        "100",
        "status",
    )
    assert res.returncode == 1
    assert "储物柜控制板无响应" in res.stderr and "does not answer" in res.stderr
    res = _lockerctl(
        "board",
        "--url",
        "/dev/does-not-exist",
        "--protocol",
        protocol,
        "--board",
        str(board),
        "status",
    )
    assert res.returncode == 1 and "disconnected" in res.stderr
