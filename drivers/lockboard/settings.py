"""Per-bus settings. Points the hardware notes mark as unsettled are settings, never constants."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from hallkiosk.config import StrictModel

Protocol = Literal["8a80", "kerong"]

# Board address ranges per family (hardware notes): 8A/80 DIP 1-31, Kerong chain ids 0-9.
BOARD_RANGE: dict[str, tuple[int, int]] = {"8a80": (1, 31), "kerong": (0, 9)}
# Channels per board: Kerong CU16 has 16 locks; 8A/80 bitmaps cover up to 8 per status byte.
CHANNEL_RANGE: dict[str, tuple[int, int]] = {"8a80": (1, 48), "kerong": (1, 16)}


class FeedbackPolarity(StrEnum):
    """Which lock-feedback bit value means "open". A wrong setting inverts every door state."""

    SET_IS_OPEN = "set"
    CLEAR_IS_OPEN = "clear"

    def is_open(self, bit: bool) -> bool:
        return bit if self is FeedbackPolarity.SET_IS_OPEN else not bit


class BusSettings(StrictModel):
    """``[[lockerd.buses]]``: one serial bus with one or more boards of one family."""

    name: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
    protocol: Protocol
    url: Annotated[str, Field(min_length=1)]
    baud: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    feedback_open: FeedbackPolarity = FeedbackPolarity.SET_IS_OPEN
    expect_reply: bool = True
    reply_timeout_ms: Annotated[int, Field(ge=20, le=10_000)] = 300
    retries: Annotated[int, Field(ge=0, le=5)] = 2
    # Silence kept on the line between frames; 0 means 3.5 character times at the baud.
    inter_frame_gap_ms: Annotated[int, Field(ge=0, le=1_000)] = 0
    # End of a variable-length reply: this much line silence after a checksum-valid candidate.
    # 0 means "3.5 character times at the configured baud".
    frame_silence_ms: Annotated[int, Field(ge=0, le=200)] = 0

    @model_validator(mode="before")
    @classmethod
    def _polarity_from_str(cls, data: object) -> object:
        # strict mode would refuse the plain TOML string for the enum
        if isinstance(data, dict) and isinstance(data.get("feedback_open"), str):
            value = data["feedback_open"]
            if value not in ("set", "clear"):
                raise ValueError(f"feedback_open must be 'set' or 'clear', not {value!r}")
            data = {**data, "feedback_open": FeedbackPolarity(value)}
        return data

    def silence_s(self) -> float:
        if self.frame_silence_ms:
            return self.frame_silence_ms / 1000
        return _char_times_s(3.5, self.baud)

    def gap_s(self) -> float:
        if self.inter_frame_gap_ms:
            return self.inter_frame_gap_ms / 1000
        return _char_times_s(3.5, self.baud)


def _char_times_s(chars: float, baud: int) -> float:
    # 10 bits per character on 8N1; never below 2 ms, which USB-RS485 adapters need to turn around
    return max(0.002, chars * 10 / baud)
