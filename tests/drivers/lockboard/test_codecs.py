"""Byte-exact frames from the hardware notes, reply parsing, and parsers fed garbage."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.lockboard.codec_8a80 import Codec8A80
from drivers.lockboard.codec_kerong import CodecKerong
from drivers.lockboard.settings import FeedbackPolarity

SET = FeedbackPolarity.SET_IS_OPEN
CLEAR = FeedbackPolarity.CLEAR_IS_OPEN
A = Codec8A80()
K = CodecKerong()


def test_8a80_frames_match_the_notes() -> None:
    assert A.open_frame(1, 1) == bytes.fromhex("8A 01 01 11 9B")
    assert A.lock_query_frame(1, 1) == bytes.fromhex("80 01 01 33 B3")
    assert A.status_frame(1) == bytes.fromhex("80 01 00 33 B2")


def test_kerong_frames_match_the_notes() -> None:
    assert K.open_frame(0, 1) == bytes.fromhex("02 00 31 03 36")
    assert K.status_frame(0) == bytes.fromhex("02 00 30 03 35")
    assert K.open_frame(2, 16) == bytes.fromhex("02 2F 31 03 65")


def test_8a80_open_reply_and_polarity() -> None:
    reply = bytes.fromhex("8A 01 01 11 9B")
    parsed = A.parse_open_reply(reply, 1, 1, SET)
    assert parsed is not None and parsed.value.latch_open is True
    parsed = A.parse_open_reply(reply, 1, 1, CLEAR)
    assert parsed is not None and parsed.value.latch_open is False
    assert A.parse_open_reply(reply, 1, 2, SET) is None  # another channel's reply
    assert A.parse_open_reply(bytes.fromhex("8A 01 01 11 9C"), 1, 1, SET) is None  # checksum


def test_8a80_status_bitmap_last_byte_is_channels_1_to_8() -> None:
    # three status bytes: 17-24, 9-16, 1-8; channels 1, 9 and 24 are open
    body = bytes.fromhex("80 01 80 01 01 33")
    frame = body + bytes([_xor(body)])
    parsed = A.parse_status_reply(b"\xff\x00" + frame, 1, SET)
    assert parsed is not None and parsed.may_extend
    opened = sorted(ch for ch, is_open in parsed.value.doors.items() if is_open)
    assert opened == [1, 9, 24]
    assert len(parsed.value.doors) == 24


def test_8a80_status_with_a_status_byte_equal_to_func() -> None:
    body = bytes.fromhex("80 01 00 33 01 33")  # channels 9-16 byte is 0x33
    frame = body + bytes([_xor(body)])
    parsed = A.parse_status_reply(frame, 1, SET)
    assert parsed is not None
    assert sorted(ch for ch, o in parsed.value.doors.items() if o) == [1, 9, 10, 13, 14]


def test_kerong_status_little_endian_words_and_items() -> None:
    body = bytes.fromhex("02 10 35 01 80 02 00 03")
    frame = body + bytes([sum(body) & 0xFF])
    parsed = K.parse_status_reply(frame, 1, SET)
    assert parsed is not None and not parsed.may_extend
    assert sorted(ch for ch, o in parsed.value.doors.items() if o) == [1, 16]
    assert sorted(ch for ch, p in parsed.value.items.items() if p) == [2]
    assert K.parse_status_reply(frame, 2, SET) is None


def test_kerong_open_reply_variants() -> None:
    echo = bytes.fromhex("02 00 31 03 36")
    parsed = K.parse_open_reply(echo, 0, 1, SET)
    assert parsed is not None and parsed.value.acknowledged and parsed.value.latch_open is None
    body = bytes.fromhex("02 00 31 01 03")
    parsed = K.parse_open_reply(body + bytes([sum(body) & 0xFF]), 0, 1, SET)
    assert parsed is not None and parsed.value.latch_open is True


def _xor(data: bytes) -> int:
    out = 0
    for b in data:
        out ^= b
    return out


VALID = [
    bytes.fromhex("8A 01 01 11 9B"),
    bytes.fromhex("80 01 01 33 B3"),
    bytes.fromhex("80 01 80 01 01 33") + bytes([_xor(bytes.fromhex("80 01 80 01 01 33"))]),
    bytes.fromhex("02 00 31 03 36"),
    bytes.fromhex("02 10 35 01 80 02 00 03")
    + bytes([sum(bytes.fromhex("02 10 35 01 80 02 00 03")) & 0xFF]),
]


def _all_parsers(buf: bytes) -> None:
    for board in (0, 1, 2, 31):
        for pol in (SET, CLEAR):
            A.parse_open_reply(buf, board, 1, pol)
            A.parse_lock_state(buf, board, 1, pol)
            A.parse_status_reply(buf, board, pol)
            K.parse_open_reply(buf, board, 1, pol)
            K.parse_lock_state(buf, board, 1, pol)
            K.parse_status_reply(buf, board, pol)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_parsers_never_crash_on_random_bytes(buf: bytes) -> None:
    _all_parsers(buf)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_parsers_never_crash_on_mutated_frames(frame: bytes, data: st.DataObject) -> None:
    mutated = bytearray(frame)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "drop", "insert", "truncate"]))
        if op == "flip" and mutated:
            i = data.draw(st.integers(0, len(mutated) - 1))
            mutated[i] ^= data.draw(st.integers(1, 255))
        elif op == "drop" and mutated:
            del mutated[data.draw(st.integers(0, len(mutated) - 1))]
        elif op == "insert":
            mutated.insert(data.draw(st.integers(0, len(mutated))), data.draw(st.integers(0, 255)))
        elif op == "truncate":
            del mutated[data.draw(st.integers(0, len(mutated))) :]
    _all_parsers(bytes(mutated))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=20), st.binary(max_size=20), st.integers(1, 31), st.integers(1, 24))
def test_a_valid_reply_is_found_inside_garbage(
    pre: bytes, post: bytes, board: int, channel: int
) -> None:
    frame = A.open_frame(board, channel)  # an open reply has the same shape, ST = 0x11
    parsed = A.parse_open_reply(pre + frame + post, board, channel, SET)
    assert parsed is not None and parsed.value.board == board
