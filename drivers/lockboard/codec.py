"""The codec interface: a board family is pure data in, bytes out, and bytes in, values out.

Parsers scan a receive buffer for one valid reply and never raise on garbage: they return None
until a valid frame is present. ``Parsed.may_extend`` says a longer valid frame could still be
arriving (8A/80 query-all replies have no fixed length), so the bus waits for line silence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from drivers.lockboard.settings import FeedbackPolarity
from drivers.lockboard.types import BoardStatus, OpenReply

T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Parsed(Generic[T_co]):
    value: T_co
    may_extend: bool = False


class Codec(Protocol):
    protocol: str

    def open_frame(self, board: int, channel: int) -> bytes: ...

    def status_frame(self, board: int) -> bytes: ...

    def parse_open_reply(
        self, buf: bytes, board: int, channel: int, polarity: FeedbackPolarity
    ) -> Parsed[OpenReply] | None: ...

    def parse_status_reply(
        self, buf: bytes, board: int, polarity: FeedbackPolarity
    ) -> Parsed[BoardStatus] | None: ...

    # Reading one lock (before deciding to resend an open whose reply was lost): each family
    # does it its own way, so the bus never asks which family it drives.
    def lock_query_frame(self, board: int, channel: int) -> bytes: ...

    def parse_lock_state(
        self, buf: bytes, board: int, channel: int, polarity: FeedbackPolarity
    ) -> Parsed[bool] | None: ...


def xor8(data: bytes) -> int:
    out = 0
    for b in data:
        out ^= b
    return out


def sum8(data: bytes) -> int:
    return sum(data) & 0xFF
