"""Kerong KR-CU16/CU48 family: ``02 ADDR CMD [data] 03 SUM`` with a sum checksum (notes §B).

    unlock   02 (board<<4|idx) 31 03 SUM  -> (some units send nothing)
    status   02 (board<<4) 30 03 SUM      -> 02 ADDR 35 L1 L2 I1 I2 03 SUM

The unlock reply is not specified by the notes. We accept what units are reported to send: a bare
echo ``02 ADDR 31 03 SUM``, an echo with a state byte ``02 ADDR 31 ST 03 SUM``, or a full status
frame. Whether to expect any reply at all is the bus setting ``expect_reply``.
"""

from __future__ import annotations

from drivers.lockboard.codec import Parsed, sum8
from drivers.lockboard.settings import FeedbackPolarity
from drivers.lockboard.types import BoardStatus, OpenReply

STX = 0x02
ETX = 0x03
CMD_STATUS = 0x30
CMD_UNLOCK = 0x31
REPLY_STATUS = 0x35


def _frame(addr: int, cmd: int) -> bytes:
    body = bytes((STX, addr, cmd, ETX))
    return body + bytes((sum8(body),))


def _frames(buf: bytes) -> list[tuple[int, int, bytes]]:
    """Every checksum-valid ``02 ADDR CMD data 03 SUM`` in buf as (addr, cmd, data)."""
    out = []
    for start in range(len(buf)):
        if buf[start] != STX:
            continue
        # data is at most 4 bytes in this family
        for end in range(start + 4, min(start + 9, len(buf))):
            if buf[end - 1] == ETX and sum8(buf[start:end]) == buf[end]:
                out.append((buf[start + 1], buf[start + 2], bytes(buf[start + 3 : end - 1])))
                break
    return out


def _status(board: int, data: bytes, polarity: FeedbackPolarity) -> BoardStatus:
    locks = data[0] | data[1] << 8
    items = data[2] | data[3] << 8
    return BoardStatus(
        board,
        {ch: polarity.is_open(bool(locks >> (ch - 1) & 1)) for ch in range(1, 17)},
        {ch: bool(items >> (ch - 1) & 1) for ch in range(1, 17)},
    )


class CodecKerong:
    protocol = "kerong"

    def open_frame(self, board: int, channel: int) -> bytes:
        return _frame(board << 4 | (channel - 1), CMD_UNLOCK)

    def status_frame(self, board: int) -> bytes:
        return _frame(board << 4, CMD_STATUS)

    def parse_open_reply(
        self, buf: bytes, board: int, channel: int, polarity: FeedbackPolarity
    ) -> Parsed[OpenReply] | None:
        lock_addr = board << 4 | (channel - 1)
        for addr, cmd, data in _frames(buf):
            if cmd == CMD_UNLOCK and addr == lock_addr and len(data) <= 1:
                latch = polarity.is_open(data[0] != 0) if data else None
                return Parsed(OpenReply(board, channel, True, latch))
            if cmd == REPLY_STATUS and addr >> 4 == board and len(data) == 4:
                status = _status(board, data, polarity)
                return Parsed(OpenReply(board, channel, True, status.doors[channel]))
        return None

    def lock_query_frame(self, board: int, channel: int) -> bytes:
        return self.status_frame(board)  # no per-lock query in this family

    def parse_lock_state(
        self, buf: bytes, board: int, channel: int, polarity: FeedbackPolarity
    ) -> Parsed[bool] | None:
        status = self.parse_status_reply(buf, board, polarity)
        return None if status is None else Parsed(status.value.doors[channel])

    def parse_status_reply(
        self, buf: bytes, board: int, polarity: FeedbackPolarity
    ) -> Parsed[BoardStatus] | None:
        for addr, cmd, data in _frames(buf):
            if cmd == REPLY_STATUS and addr == board << 4 and len(data) == 4:
                return Parsed(_status(board, data, polarity))
        return None
