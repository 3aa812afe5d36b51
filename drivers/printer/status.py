"""Real-time status (``DLE EOT n``): paper sensor, online state, cause of being offline.

Each reply is one byte whose bits 1 and 4 are always 1 and bits 0 and 7 always 0; a byte that
breaks that is not a status reply (wrong baud, a looped-back cable, another device).
The printer answers these even while offline, so silence means no printer on the line.

- ``DLE EOT 1`` printer: bit 3 offline.
- ``DLE EOT 2`` offline cause: bit 2 cover open, bit 5 stopped by paper end, bit 6 error.
- ``DLE EOT 4`` roll paper: bits 2+3 near end, bits 5+6 paper end.

python-escpos' ``paper_status()`` reports "paper adequate" when no reply comes; that would print
phantom tickets on a dead printer, so the driver decodes the replies itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DLE_EOT_PRINTER = b"\x10\x04\x01"
DLE_EOT_OFFLINE_CAUSE = b"\x10\x04\x02"
DLE_EOT_ERROR_CAUSE = b"\x10\x04\x03"
DLE_EOT_PAPER = b"\x10\x04\x04"

FIXED_MASK = 0b1001_0011
FIXED_VALUE = 0b0001_0010

BIT_OFFLINE = 0x08
BIT_COVER_OPEN = 0x04
BIT_PAPER_END_STOP = 0x20
BIT_ERROR = 0x40
BITS_NEAR_END = 0x0C
BITS_PAPER_END = 0x60
BIT_CUTTER_ERROR = 0x08
BIT_UNRECOVERABLE = 0x20
BIT_AUTO_RECOVERABLE = 0x40


class PaperStatus(StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


def is_status_byte(value: int) -> bool:
    return value & FIXED_MASK == FIXED_VALUE


def decode_paper(value: int, *, near_end_sensor: bool) -> PaperStatus:
    """Paper-end wins; the near-end bits count only on models that have that sensor."""
    if value & BITS_PAPER_END:
        return PaperStatus.OUT
    if near_end_sensor and value & BITS_NEAR_END:
        return PaperStatus.NEAR_END
    return PaperStatus.OK


@dataclass(frozen=True)
class PrinterState:
    """Everything the status queries told us; the raw bytes are kept for hwctl."""

    online: bool
    paper: PaperStatus
    cover_open: bool = False
    error: bool = False
    cutter_error: bool = False
    raw: tuple[tuple[int, int], ...] = ()  # (n, reply byte) per DLE EOT n asked

    @property
    def printable(self) -> bool:
        return self.online and self.paper is not PaperStatus.OUT

    def as_dict(self) -> dict[str, object]:
        return {
            "online": self.online,
            "paper": self.paper.value,
            "cover_open": self.cover_open,
            "error": self.error,
            "cutter_error": self.cutter_error,
            "raw": {f"dle_eot_{n}": f"{value:02x}" for n, value in self.raw},
        }
