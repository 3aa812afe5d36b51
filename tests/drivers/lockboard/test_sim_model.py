"""SimBus: byte-exact board replies (from the hardware notes' examples) and door physics.

Every test drives a fake monotonic clock, so nothing here waits on real time.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from drivers.lockboard.sim import CoilFire, SimBus
from hallkiosk.clock import ManualClock


def make(
    protocol: Any = "8a80", boards: tuple[int, ...] = (1,), channels: int = 16, **kw: Any
) -> tuple[SimBus, ManualClock]:
    clock = ManualClock(datetime(2024, 5, 1, 9, 0, tzinfo=UTC))
    return SimBus(protocol, boards, channels, monotonic=clock.monotonic, **kw), clock


def send(sim: SimBus, hex_bytes: str) -> list[str]:
    """Feed hex to the board; return the replies as hex strings (due times dropped)."""
    return [reply.hex(" ").upper() for _, reply in sim.handle(bytes.fromhex(hex_bytes))]


def xor(data: bytes) -> int:
    out = 0
    for byte in data:
        out ^= byte
    return out


# -- 8A/80 ---------------------------------------------------------------------------------


def test_8a80_open_matches_notes_example() -> None:
    sim, clock = make()
    due = sim.handle(bytes.fromhex("8A 01 01 11 9B"))
    # feedback after the unlock: latch released, bit set -> 0x11, and the frame echoes back
    assert due == [(clock.monotonic(), bytes.fromhex("8A 01 01 11 9B"))]
    assert sim.unlock_log == [CoilFire(1, 1, clock.monotonic(), False)]


def test_8a80_query_one_matches_notes_example() -> None:
    sim, _ = make()
    assert send(sim, "80 01 01 33 B3") == ["80 01 01 00 80"]
    send(sim, "8A 01 01 11 9B")
    assert send(sim, "80 01 01 33 B3") == ["80 01 01 11 91"]


def test_8a80_query_all_bitmap_layout() -> None:
    sim, _ = make(channels=16)
    for channel in (1, 9, 16):
        sim.force_open(1, channel)
    # S1 = channels 17-24, S2 = 9-16 (bit0 = ch9, bit7 = ch16), S3 = 1-8 (bit0 = ch1)
    assert send(sim, "80 01 00 33 B2") == ["80 01 00 81 01 33 32"]


def test_8a80_query_all_status_byte_count_is_a_setting() -> None:
    sim, _ = make(channels=8, status_bytes=1)
    sim.force_open(1, 8)
    assert send(sim, "80 01 00 33 B2") == ["80 01 80 33 32"]


def test_8a80_polarity_clear_inverts_every_feedback_bit() -> None:
    sim, _ = make(channels=16, feedback_open="clear")
    assert send(sim, "80 01 01 33 B3") == ["80 01 01 11 91"]  # secured reads as set
    # absent channels 17-24 also read secured
    assert send(sim, "80 01 00 33 B2") == ["80 01 FF FF FF 33 4D"]
    assert send(sim, "8A 01 01 11 9B") == ["8A 01 01 00 8A"]
    assert send(sim, "80 01 00 33 B2") == ["80 01 FF FF FE 33 4C"]


def test_8a80_second_board_and_high_channel() -> None:
    sim, _ = make(boards=(1, 2), channels=24)
    request = bytes([0x8A, 0x02, 0x18, 0x11])
    request += bytes([xor(request)])
    replies = sim.handle(request)
    assert [reply for _, reply in replies] == [request]
    assert send(sim, "80 02 00 33 B1") == ["80 02 80 00 00 33 31"]


def test_8a80_open_all_fires_every_lock_one_after_another() -> None:
    sim, clock = make(channels=4, open_all_step_ms=50, auto_person=False)
    start = clock.monotonic()
    [(due, reply)] = sim.handle(bytes.fromhex("8A 01 00 11 9A"))
    assert reply == bytes.fromhex("8A 01 00 11 9A")
    assert due == pytest.approx(start + 0.2)  # the reply waits for the last lock
    clock.advance(0.2)
    log = sim.unlock_log
    assert [fire.channel for fire in log] == [1, 2, 3, 4]
    assert [fire.at_s - start for fire in log] == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert all(sim.channel_state(1, ch).latch_released for ch in range(1, 5))


def test_8a80_no_reply_setting_silences_only_unlocks() -> None:
    sim, _ = make(expect_reply=False)
    assert send(sim, "8A 01 01 11 9B") == []
    assert len(sim.unlock_log) == 1
    assert send(sim, "80 01 01 33 B3") == ["80 01 01 11 91"]


# -- Kerong --------------------------------------------------------------------------------


def test_kerong_unlock_matches_notes_example() -> None:
    sim, _ = make("kerong", boards=(0,))
    assert send(sim, "02 00 31 03 36") == ["02 00 31 01 03 37"]
    assert [(f.board, f.channel) for f in sim.unlock_log] == [(0, 1)]


def test_kerong_unlock_address_carries_board_and_lock_index() -> None:
    sim, _ = make("kerong", boards=(0, 1))
    assert send(sim, "02 12 31 03 48") == ["02 12 31 01 03 49"]
    assert [(f.board, f.channel) for f in sim.unlock_log] == [(1, 3)]


def test_kerong_status_matches_notes_example_and_layout() -> None:
    sim, _ = make("kerong", boards=(0,))
    assert send(sim, "02 00 30 03 35") == ["02 00 35 00 00 00 00 03 3A"]
    sim.force_open(0, 1)
    sim.force_open(0, 10)
    sim.put_item(0, 2)
    sim.put_item(0, 16)
    # L1 L2 = lock bits as a little-endian word (bit0 = ch1), I1 I2 = item bits likewise
    assert send(sim, "02 00 30 03 35") == ["02 00 35 01 02 02 80 03 BF"]
    sim.take_item(0, 16)
    assert send(sim, "02 00 30 03 35") == ["02 00 35 01 02 02 00 03 3F"]


def test_kerong_polarity_clear_and_absent_channels() -> None:
    sim, _ = make("kerong", boards=(0,), channels=12, feedback_open="clear")
    assert send(sim, "02 00 30 03 35") == ["02 00 35 FF FF 00 00 03 38"]
    assert send(sim, "02 00 31 03 36") == ["02 00 31 00 03 36"]


def test_kerong_no_reply_setting() -> None:
    sim, _ = make("kerong", boards=(0,), expect_reply=False)
    assert send(sim, "02 00 31 03 36") == []
    assert len(sim.unlock_log) == 1
    assert send(sim, "02 00 30 03 35") == ["02 00 35 01 00 00 00 03 3B"]


def test_kerong_ignores_status_with_lock_index_and_missing_channels() -> None:
    sim, _ = make("kerong", boards=(0,), channels=8)
    assert send(sim, "02 01 30 03 36") == []
    assert send(sim, "02 08 31 03 3E") == []  # lock index 8 = channel 9 does not exist
    assert sim.unlock_log == []


# -- framing -------------------------------------------------------------------------------


def test_split_frames_are_reassembled() -> None:
    sim, _ = make()
    out: list[bytes] = []
    for byte in bytes.fromhex("8A 01 01 11 9B 80 01 01 33 B3"):
        out += [reply for _, reply in sim.handle(bytes([byte]))]
    assert out == [bytes.fromhex("8A 01 01 11 9B"), bytes.fromhex("80 01 01 11 91")]


def test_garbage_between_frames_is_skipped() -> None:
    sim, _ = make()
    # noise containing head values (80, 8A) that do not start valid frames
    noisy = "FF 00 80 8A 01 8A 01 01 11 9B 13 37 80 80 01 01 33 B3 8A"
    assert send(sim, noisy) == ["8A 01 01 11 9B", "80 01 01 11 91"]


def test_kerong_garbage_and_missing_etx() -> None:
    sim, _ = make("kerong", boards=(0,))
    assert send(sim, "02 02 00 31 04 37 55 02 00 31 03 36") == ["02 00 31 01 03 37"]
    assert len(sim.unlock_log) == 1


def test_bad_checksum_and_unknown_board_are_ignored() -> None:
    sim, _ = make()
    assert send(sim, "8A 01 01 11 9C") == []
    assert send(sim, "8A 05 01 11 9F") == []  # board 5 is not on this bus
    assert send(sim, "8A 01 11 11 8B") == []  # channel 17 on a 16-channel board
    assert sim.unlock_log == []
    assert send(sim, "8A 01 01 11 9B") == ["8A 01 01 11 9B"]


# -- hooks ---------------------------------------------------------------------------------


def test_jam_fires_coil_but_latch_stays_locked() -> None:
    sim, clock = make()
    sim.jam(1, 2)
    assert send(sim, "8A 01 02 11 98") == ["8A 01 02 00 89"]
    assert sim.unlock_log == [CoilFire(1, 2, clock.monotonic(), True)]
    clock.advance(2.0)
    assert not sim.pull_door(1, 2)
    assert sim.door_openings[(1, 2)] == 0
    sim.jam(1, 2, jammed=False)
    assert send(sim, "8A 01 02 11 98") == ["8A 01 02 11 98"]


def test_force_open_is_a_door_opening_without_unlock() -> None:
    sim, clock = make()
    sim.force_open(1, 3)
    assert send(sim, "80 01 03 33 B1") == ["80 01 03 11 93"]
    clock.advance(10.0)  # nobody closes a forced door
    assert sim.channel_state(1, 3).door_open
    assert sim.unlock_log == []
    assert sim.door_openings[(1, 3)] == 1
    sim.close_door(1, 3)
    assert send(sim, "80 01 03 33 B1") == ["80 01 03 00 82"]


def test_offline_board_ignores_commands_and_never_replies() -> None:
    sim, _ = make(boards=(1, 2))
    sim.set_offline(1)
    assert send(sim, "8A 01 01 11 9B") == []
    assert send(sim, "80 01 01 33 B3") == []
    assert sim.unlock_log == []
    assert send(sim, "80 02 01 33 B0") == ["80 02 01 00 83"]
    assert sim.snapshot()["offline_boards"] == [1]
    sim.set_offline(1, offline=False)
    assert send(sim, "80 01 01 33 B3") == ["80 01 01 00 80"]


def test_garble_corrupts_the_checksum_of_the_next_replies() -> None:
    sim, _ = make()
    sim.garble_next(2)
    replies = [reply for _, reply in sim.handle(bytes.fromhex("80 01 01 33 B3" * 3))]
    assert len(replies) == 3
    assert [xor(reply[:-1]) == reply[-1] for reply in replies] == [False, False, True]
    assert replies[0][:-1] == bytes.fromhex("80 01 01 00")


def test_garble_breaks_the_kerong_sum_too() -> None:
    sim, _ = make("kerong", boards=(0,))
    sim.garble_next()
    [(_, reply)] = sim.handle(bytes.fromhex("02 00 30 03 35"))
    assert reply[:-1] == bytes.fromhex("02 00 35 00 00 00 00 03")
    assert reply[-1] != sum(reply[:-1]) % 256


def test_delayed_replies_are_due_later() -> None:
    sim, clock = make()
    sim.delay_replies(250)
    [(due, _)] = sim.handle(bytes.fromhex("80 01 01 33 B3"))
    assert due == pytest.approx(clock.monotonic() + 0.25)
    sim.delay_replies(0)
    [(due, _)] = sim.handle(bytes.fromhex("80 01 01 33 B3"))
    assert due == clock.monotonic()


def test_auto_person_opens_then_closes() -> None:
    sim, clock = make()
    send(sim, "8A 01 01 11 9B")
    clock.advance(0.149)
    assert not sim.channel_state(1, 1).door_open
    clock.advance(0.002)
    assert sim.channel_state(1, 1).door_open
    clock.advance(0.79)
    assert sim.channel_state(1, 1).door_open
    clock.advance(0.02)
    state = sim.channel_state(1, 1)
    assert not state.door_open and not state.latch_released and state.openings == 1
    assert send(sim, "80 01 01 33 B3") == ["80 01 01 00 80"]


def test_lazy_physics_catches_up_in_one_tick() -> None:
    sim, clock = make()
    send(sim, "8A 01 01 11 9B")
    clock.advance(5.0)  # pull at +0.15, close at +0.95, window end at +3: all applied now
    sim.tick()
    assert sim.door_openings[(1, 1)] == 1
    assert sim.channel_state(1, 1).secured


def test_latch_relocks_after_release_window_if_nobody_pulls() -> None:
    sim, clock = make(release_window_ms=3000)
    sim.set_auto_person(False)
    send(sim, "8A 01 01 11 9B")
    clock.advance(2.9)
    assert sim.channel_state(1, 1).latch_released
    clock.advance(0.2)
    assert not sim.pull_door(1, 1)
    assert sim.door_openings[(1, 1)] == 0


def test_manual_pull_stays_open_until_closed() -> None:
    sim, clock = make()
    sim.set_auto_person(False)
    assert not sim.pull_door(1, 1)
    send(sim, "8A 01 01 11 9B")
    assert sim.pull_door(1, 1)
    clock.advance(10.0)
    assert sim.channel_state(1, 1).door_open
    sim.close_door(1, 1)
    assert sim.channel_state(1, 1).secured


def test_hold_door_open_waits_for_unlock_and_never_closes() -> None:
    sim, clock = make()
    sim.set_auto_person(False)
    assert not sim.hold_door_open(1, 4)
    send(sim, "8A 01 04 11 9E")
    clock.advance(0.2)
    assert sim.channel_state(1, 4).door_open
    clock.advance(60.0)
    assert sim.channel_state(1, 4).door_open
    sim.close_door(1, 4)
    state = sim.channel_state(1, 4)
    assert state.secured and not state.held_open


def test_auto_person_timing_is_adjustable() -> None:
    sim, clock = make()
    sim.set_auto_person(True, pull_after_ms=10, close_after_ms=20)
    send(sim, "8A 01 01 11 9B")
    clock.advance(0.015)
    assert sim.channel_state(1, 1).door_open
    clock.advance(0.02)
    assert not sim.channel_state(1, 1).door_open


def test_unlock_during_open_door_keeps_the_close_scheduled() -> None:
    sim, clock = make()
    send(sim, "8A 01 01 11 9B")
    clock.advance(0.5)
    send(sim, "8A 01 01 11 9B")
    clock.advance(0.5)
    assert not sim.channel_state(1, 1).door_open
    assert sim.door_openings[(1, 1)] == 1


def test_snapshot_is_json_and_complete() -> None:
    sim, _ = make(boards=(1, 2), channels=2)
    sim.jam(2, 2)
    sim.put_item(1, 1)
    sim.set_offline(2)
    snap = json.loads(json.dumps(sim.snapshot()))
    assert set(snap["boards"]) == {"1", "2"}
    assert snap["boards"]["2"]["offline"] is True
    assert snap["boards"]["2"]["channels"]["2"]["jammed"] is True
    assert snap["boards"]["1"]["channels"]["1"] == {
        "latch": "locked",
        "door": "closed",
        "jammed": False,
        "item": True,
        "held_open": False,
        "openings": 0,
        "coil_fires": 0,
    }
    assert snap["offline_boards"] == [2]


@pytest.mark.parametrize(
    ("protocol", "boards", "channels"),
    [("8a80", (0,), 8), ("8a80", (32,), 8), ("kerong", (10,), 8), ("kerong", (0,), 17)],
)
def test_invalid_bus_shapes_are_refused(
    protocol: Any, boards: tuple[int, ...], channels: int
) -> None:
    with pytest.raises(ValueError):
        SimBus(protocol, boards, channels)


def test_hooks_refuse_unknown_board_and_channel() -> None:
    sim, _ = make()
    with pytest.raises(ValueError, match="board 9"):
        sim.jam(9, 1)
    with pytest.raises(ValueError, match="not 17"):
        sim.pull_door(1, 17)
    with pytest.raises(ValueError):
        sim.delay_replies(-1)
