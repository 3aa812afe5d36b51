"""Settings of one GA 467 reader. The line rate is a setting: the ``60 0x`` commands change it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from hallkiosk.config import StrictModel

# the longest reply we ask for: 30 01, read text + photo (7 header + 1,288 LEN bytes)
READ_REPLY_BYTES = 7 + 3 + 4 + 256 + 1024 + 1


class Ga467Settings(StrictModel):
    # any pyserial URL: /dev/ttyUSB0, /dev/serial/by-id/..., a simulator's pty, loop://, spy://
    url: Annotated[str, Field(min_length=1, max_length=512)]
    # the rates the 60 00..60 04 commands select; readers ship at 115200
    baud: Literal[9600, 19200, 38400, 57600, 115200] = 115200
    # reply to a short command (SAM status, find card, select card)
    reply_timeout_ms: Annotated[int, Field(ge=50, le=10_000)] = 500
    # reply to 30 01: the card exchange (about a second on real readers) plus the transfer
    read_reply_timeout_ms: Annotated[int, Field(ge=200, le=30_000)] = 3_000
    # a reply that stops for this long after some bytes, without making a frame, is given up
    byte_gap_ms: Annotated[int, Field(ge=10, le=2_000)] = 100
    # resends after a garbled, short or missing reply, or an SW3 saying our frame was damaged
    retries: Annotated[int, Field(ge=0, le=5)] = 2
    # pause between two find-card commands while waiting for a card
    poll_interval_ms: Annotated[int, Field(ge=20, le=5_000)] = 200

    @model_validator(mode="after")
    def _read_fits_the_line(self) -> Ga467Settings:
        if self.read_reply_timeout_ms < self.transfer_ms(READ_REPLY_BYTES) + 100:
            raise ValueError(
                f"read_reply_timeout_ms {self.read_reply_timeout_ms} is too short: the text and "
                f"photo alone take {self.transfer_ms(READ_REPLY_BYTES)} ms at {self.baud} baud"
            )
        return self

    def transfer_ms(self, nbytes: int) -> int:
        """Time on the wire for ``nbytes`` at 8N1 (10 bits a byte), rounded up."""
        return -(-nbytes * 10_000 // self.baud)
