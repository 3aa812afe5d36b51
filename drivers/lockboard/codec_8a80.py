"""The generic "8A/80" board family: 5-byte frames with an XOR checksum (hardware notes §A).

open one     8A BOARD CH 11 CHK  -> 8A BOARD CH ST CHK   (ST: lock feedback)
query one    80 BOARD CH 33 CHK  -> 80 BOARD CH ST CHK
query all    80 BOARD 00 33 CHK  -> 80 BOARD S1..Sn 33 CHK  (Sn = channels 1-8)
"""

from __future__ import annotations

from drivers.lockboard.codec import Parsed, xor8
from drivers.lockboard.settings import FeedbackPolarity
from drivers.lockboard.types import BoardStatus, OpenReply

HEAD_OPEN = 0x8A
HEAD_QUERY = 0x80
FUNC_OPEN = 0x11
FUNC_QUERY = 0x33


def _frame(head: int, board: int, channel: int, func: int) -> bytes:
    body = bytes((head, board, channel, func))
    return body + bytes((xor8(body),))


class Codec8A80:
    protocol = "8a80"

    def open_frame(self, board: int, channel: int) -> bytes:
        return _frame(HEAD_OPEN, board, channel, FUNC_OPEN)

    def status_frame(self, board: int) -> bytes:
        return _frame(HEAD_QUERY, board, 0x00, FUNC_QUERY)

    def lock_query_frame(self, board: int, channel: int) -> bytes:
        return _frame(HEAD_QUERY, board, channel, FUNC_QUERY)

    def parse_open_reply(
        self, buf: bytes, board: int, channel: int, polarity: FeedbackPolarity
    ) -> Parsed[OpenReply] | None:
        state = _find_single(buf, HEAD_OPEN, board, channel)
        if state is None:
            return None
        return Parsed(OpenReply(board, channel, True, polarity.is_open(state != 0)))

    def parse_lock_state(
        self, buf: bytes, board: int, channel: int, polarity: FeedbackPolarity
    ) -> Parsed[bool] | None:
        state = _find_single(buf, HEAD_QUERY, board, channel)
        return None if state is None else Parsed(polarity.is_open(state != 0))

    def parse_status_reply(
        self, buf: bytes, board: int, polarity: FeedbackPolarity
    ) -> Parsed[BoardStatus] | None:
        # 80 BOARD S1..Sn 33 CHK: take the longest checksum-valid candidate; a status byte may
        # itself be 0x33, so a longer frame can still be arriving (may_extend).
        best: tuple[int, int] | None = None
        for start in range(len(buf) - 4):
            if buf[start] != HEAD_QUERY or buf[start + 1] != board:
                continue
            for end in range(start + 4, len(buf)):
                if buf[end - 1] == FUNC_QUERY and xor8(buf[start:end]) == buf[end]:
                    best = (start, end)
            if best is not None:
                break
        if best is None:
            return None
        start, end = best
        status = buf[start + 2 : end - 1]
        doors: dict[int, bool] = {}
        for group, byte in enumerate(reversed(status)):
            for bit in range(8):
                doors[group * 8 + bit + 1] = polarity.is_open(bool(byte >> bit & 1))
        return Parsed(BoardStatus(board, doors), may_extend=True)


def _find_single(buf: bytes, head: int, board: int, channel: int) -> int | None:
    for i in range(len(buf) - 4):
        frame = buf[i : i + 5]
        if (
            frame[0] == head
            and frame[1] == board
            and frame[2] == channel
            and xor8(frame[:4]) == frame[4]
        ):
            return frame[3]
    return None
