"""GA 467 framing: ``AA AA AA 96 69 | LEN_H LEN_L | body | CHK``.

LEN counts the bytes from the first body byte (CMD, or SW1 in a reply) through CHK. CHK is the
XOR of every byte after the 5-byte preamble (LEN included), CHK excluded. The same framing
carries requests (``CMD PARA [DATA]``) and replies (``SW1 SW2 SW3 [DATA]``).

``FrameParser`` is a streaming parser: it skips garbage before a preamble, and when a frame's
length or checksum is wrong it raises a typed error, drops only the first preamble byte and
resynchronises on the next call, so a frame that follows a corrupted one is still found.

Reply bodies can hold a card's text block: no message, repr or log line here ever shows body
bytes, only lengths and checksums.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.identity.errors import IdentityReaderError

PREAMBLE = bytes.fromhex("AA AA AA 96 69")
HEADER_LEN = len(PREAMBLE) + 2  # preamble + LEN_H LEN_L
MIN_REQUEST_LEN = 3  # CMD PARA CHK
MIN_REPLY_LEN = 4  # SW1 SW2 SW3 CHK
# The longest legitimate frame is the 30 10 reply: SW 3 + lengths 6 + text 256 + photo 1024 +
# fingerprint 1024 + CHK 1 = 2314. A larger LEN is corruption; bounding it keeps a bad LEN from
# making the parser wait for kilobytes that never come.
MAX_LEN = 0x0A00


class Ga467FrameError(IdentityReaderError, ValueError):
    """Bytes on the line that are no valid frame (line noise, a wrong baud, unplugged mid-reply)."""

    code = "idreader_bad_frame"
    message_zh = "读卡器通信出错，请稍后再试或联系工作人员。"
    message_en = "Communication with the card reader failed. Please try again or contact staff."


class BadChecksum(Ga467FrameError):
    code = "idreader_bad_checksum"


class BadLength(Ga467FrameError):
    code = "idreader_bad_length"


class ShortReply(Ga467FrameError):
    """A reply started but stopped before its LEN was reached."""

    code = "idreader_short_reply"


class UnexpectedReply(Ga467FrameError):
    """A valid frame that does not answer the command just sent (a stale reply)."""

    code = "idreader_unexpected_reply"


def xor8(data: bytes | bytearray | memoryview) -> int:
    """XOR of all bytes. Folds one big integer in halves: C speed for a 1,295-byte reply."""
    width = len(data)
    if width == 0:
        return 0
    value = int.from_bytes(data, "little")
    while width > 1:
        half = (width + 1) // 2
        value = (value & ((1 << (8 * half)) - 1)) ^ (value >> (8 * half))
        width = half
    return value


def encode_frame(body: bytes) -> bytes:
    """Wrap ``body`` (CMD PARA DATA, or SW1 SW2 SW3 DATA) in preamble, LEN and CHK."""
    length = len(body) + 1
    if length > MAX_LEN:
        raise ValueError(f"frame body of {len(body)} bytes is longer than GA 467 allows")
    head = length.to_bytes(2, "big")
    return PREAMBLE + head + body + bytes([xor8(head + body)])


def build_request(cmd: int, para: int, data: bytes = b"") -> bytes:
    """``build_request(0x20, 0x01)`` -> ``AA AA AA 96 69 00 03 20 01 22`` (find card)."""
    return encode_frame(bytes([cmd, para]) + data)


def build_reply(sw3: int, data: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    """A reader's reply; used by tests (the simulator frames its replies with its own code)."""
    return encode_frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True, repr=False)
class Reply:
    sw1: int
    sw2: int
    sw3: int
    data: bytes

    def __repr__(self) -> str:
        # data may be a card's text block: never shown
        return f"Reply(sw3=0x{self.sw3:02X}, data=<{len(self.data)} bytes>)"


@dataclass(frozen=True)
class Request:
    cmd: int
    para: int
    data: bytes

    @property
    def name(self) -> str:
        return f"{self.cmd:02X} {self.para:02X}"


def parse_reply(body: bytes) -> Reply:
    if len(body) < MIN_REPLY_LEN - 1:
        raise BadLength(f"a reply needs SW1 SW2 SW3, got {len(body)} body bytes")
    return Reply(body[0], body[1], body[2], bytes(body[3:]))


def parse_request(body: bytes) -> Request:
    if len(body) < MIN_REQUEST_LEN - 1:
        raise BadLength(f"a request needs CMD PARA, got {len(body)} body bytes")
    return Request(body[0], body[1], bytes(body[2:]))


class FrameParser:
    """Feed bytes as they arrive; take frame bodies out one at a time.

    ``next_body()`` returns a body, or None until one is complete. It raises ``BadLength`` or
    ``BadChecksum`` for a corrupted frame; the bytes of that frame are then skipped as garbage,
    so calling it again continues with whatever follows.
    """

    def __init__(self, *, min_len: int = MIN_REPLY_LEN, max_len: int = MAX_LEN) -> None:
        if not MIN_REQUEST_LEN <= min_len <= max_len <= MAX_LEN:
            raise ValueError("need 3 <= min_len <= max_len <= MAX_LEN")
        self.min_len = min_len
        self.max_len = max_len
        self._buf = bytearray()
        self.discarded = 0  # garbage bytes skipped so far, for diagnostics

    @property
    def pending(self) -> int:
        """Bytes held that are not yet a frame (a started frame, or a partial preamble)."""
        return len(self._buf)

    def expected(self) -> int | None:
        """Total length of the frame that has started, when its LEN is in and plausible."""
        if len(self._buf) < HEADER_LEN or not self._buf.startswith(PREAMBLE):
            return None
        length = int.from_bytes(self._buf[5:7], "big")
        return HEADER_LEN + length if self.min_len <= length <= self.max_len else None

    def feed(self, data: bytes | bytearray) -> None:
        self._buf += data

    def reset(self) -> None:
        """Drop everything held. Overwritten first: a held reply may contain card data."""
        self._buf[:] = bytes(len(self._buf))
        self._buf.clear()

    def next_body(self) -> bytes | None:
        buf = self._buf
        start = buf.find(PREAMBLE)
        if start < 0:
            # keep a tail that may be the start of a preamble split across reads
            keep = _partial_preamble_len(buf)
            self._skip(len(buf) - keep)
            return None
        self._skip(start)
        if len(buf) < HEADER_LEN:
            return None
        length = int.from_bytes(buf[5:7], "big")
        if not self.min_len <= length <= self.max_len:
            self._skip(1)
            raise BadLength(
                f"frame LEN {length} is outside {self.min_len}..{self.max_len}; skipped"
            )
        end = HEADER_LEN + length
        if len(buf) < end:
            return None
        expected = xor8(memoryview(buf)[5 : end - 1])
        if expected != buf[end - 1]:
            got = buf[end - 1]
            self._skip(1)
            raise BadChecksum(
                f"frame of LEN {length}: CHK is 0x{got:02X}, the bytes give 0x{expected:02X}"
            )
        body = bytes(buf[HEADER_LEN : end - 1])
        buf[:end] = bytes(end)  # wipe before release, as in reset()
        del buf[:end]
        return body

    def _skip(self, count: int) -> None:
        if count > 0:
            self.discarded += count
            self._buf[:count] = bytes(count)
            del self._buf[:count]


def _partial_preamble_len(buf: bytearray) -> int:
    for keep in range(min(len(PREAMBLE) - 1, len(buf)), 0, -1):
        if buf.endswith(PREAMBLE[:keep]):
            return keep
    return 0
