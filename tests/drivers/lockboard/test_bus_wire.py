"""Wire-level behaviour the simulator cannot force: a hand-written board on a raw pty pair."""

from __future__ import annotations

import os
import select
import threading
import time

from drivers.lockboard.bus import LockBus
from drivers.lockboard.codec import xor8
from drivers.lockboard.settings import BusSettings
from tests.fixtures import wait_until


def _frame(body: bytes) -> bytes:
    return body + bytes([xor8(body)])


def _serve_once(master_fd: int, chunks: list[bytes], pause_s: float) -> threading.Thread:
    """Wait for one request, then answer with ``chunks`` separated by ``pause_s``."""

    def run() -> None:
        ready, _, _ = select.select([master_fd], [], [], 10)
        assert ready, "no request arrived"
        os.read(master_fd, 64)
        for n, chunk in enumerate(chunks):
            if n:
                time.sleep(pause_s)
            os.write(master_fd, chunk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_variable_length_reply_ends_on_silence_not_on_the_first_valid_prefix(
    pty_pair: tuple[int, str],
) -> None:
    master_fd, slave_path = pty_pair
    # status bytes 33 B2 01: the prefix "80 01 33 B2" is itself a checksum-valid reply
    full = _frame(bytes.fromhex("80 01 33 B2 01 33"))
    assert xor8(full[:3]) == full[3]
    settings = BusSettings(name="w", protocol="8a80", url=slave_path, frame_silence_ms=100)
    with LockBus(settings) as bus:
        board = _serve_once(master_fd, [full[:4], full[4:]], pause_s=0.01)
        status = bus.read_doors(1)
        board.join(timeout=10)
    assert len(status.doors) == 24  # three status bytes, not one
    opened = sorted(ch for ch, is_open in status.doors.items() if is_open)
    # 0x01 -> channel 1; 0xB2 -> channels 10, 13, 14, 16; 0x33 -> 17, 18, 21, 22
    assert opened == [1, 10, 13, 14, 16, 17, 18, 21, 22]


def test_stale_bytes_are_flushed_before_a_command(pty_pair: tuple[int, str]) -> None:
    master_fd, slave_path = pty_pair
    settings = BusSettings(name="w", protocol="8a80", url=slave_path)
    with LockBus(settings) as bus:
        bus.start()
        closed = _frame(bytes.fromhex("80 01 00 00 00 33"))
        first = _serve_once(master_fd, [closed], pause_s=0)
        assert not any(bus.read_doors(1).doors.values())  # the port is open now
        first.join(timeout=10)
        # a late "channel 1 open" from an abandoned exchange sits in the input buffer...
        os.write(master_fd, _frame(bytes.fromhex("80 01 00 00 01 33")))
        wait_until(lambda: bus._port.in_waiting >= 7, what="the stale frame in the buffer")
        board = _serve_once(master_fd, [closed], pause_s=0)
        status = bus.read_doors(1)
        board.join(timeout=10)
    assert not any(status.doors.values())  # ...and is not taken for the fresh answer
