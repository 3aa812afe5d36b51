"""Printer model profiles: plain data, never subclasses (hardware notes).

A profile says what a model can do; the renderer and the status decoder read it. A site can add
its own model in TOML (``custom_profiles`` in the printer settings) without code.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import Field

from hallkiosk.config import StrictModel

HexBytes = Annotated[str, Field(pattern=r"^([0-9a-fA-F]{2})*$", max_length=32)]
QrErrorLevel = Literal["L", "M", "Q", "H"]
Cutter = Literal["full", "partial", "none"]


class PrinterProfile(StrictModel):
    """What one printer model can do. Dots are at the printer's own resolution (203 dpi)."""

    name: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    description: Annotated[str, Field(max_length=200)] = ""
    paper_width_mm: Annotated[int, Field(ge=40, le=120)]
    # printable width: 384 dots on 58 mm paper, 576 on 80 mm at 203 dpi
    width_dots: Annotated[int, Field(ge=128, le=1024)]
    # font A (12 x 24 dots) columns; a CJK character takes two
    chars_per_line: Annotated[int, Field(ge=16, le=96)]
    # GS ( k QR on the printer. False: the renderer sends the QR as a raster image instead,
    # because cheap models without it print the command bytes as garbage text.
    native_qr: bool
    qr_module_dots: Annotated[int, Field(ge=1, le=16)] = 6
    qr_error_level: QrErrorLevel = "M"
    # Chinese (double-byte) mode on/off: FS & / FS . on most models
    chinese_on_hex: HexBytes = "1c26"
    chinese_off_hex: HexBytes = "1c2e"
    # many printers only have the paper-end sensor; then DLE EOT 4 near-end bits mean nothing
    near_end_sensor: bool
    cutter: Cutter = "partial"
    feed_before_cut_lines: Annotated[int, Field(ge=0, le=10)] = 4

    @property
    def chinese_on(self) -> bytes:
        return bytes.fromhex(self.chinese_on_hex)

    @property
    def chinese_off(self) -> bytes:
        return bytes.fromhex(self.chinese_off_hex)


GENERIC_58 = PrinterProfile(
    name="generic-58",
    description="58 mm kiosk printer, native QR, paper-end sensor only",
    paper_width_mm=58,
    width_dots=384,
    chars_per_line=32,
    native_qr=True,
    qr_module_dots=6,
    near_end_sensor=False,
    cutter="partial",
)

GENERIC_80 = PrinterProfile(
    name="generic-80",
    description="80 mm kiosk printer, native QR, near-end and end sensors, full cutter",
    paper_width_mm=80,
    width_dots=576,
    chars_per_line=48,
    native_qr=True,
    qr_module_dots=8,
    near_end_sensor=True,
    cutter="full",
)

BUDGET_58_RASTER = PrinterProfile(
    name="budget-58-raster",
    description="cheap 58 mm printer without GS ( k: QR sent as a raster image; no cutter",
    paper_width_mm=58,
    width_dots=384,
    chars_per_line=32,
    native_qr=False,
    qr_module_dots=6,
    near_end_sensor=False,
    cutter="none",
    feed_before_cut_lines=3,
)

PROFILES: Mapping[str, PrinterProfile] = MappingProxyType(
    {p.name: p for p in (GENERIC_58, GENERIC_80, BUDGET_58_RASTER)}
)


def get_profile(name: str, custom: Mapping[str, PrinterProfile] | None = None) -> PrinterProfile:
    """A built-in or site-defined profile by name; site definitions win."""
    if custom and name in custom:
        return custom[name]
    try:
        return PROFILES[name]
    except KeyError:
        known = sorted({*PROFILES, *(custom or {})})
        raise KeyError(f"unknown printer profile {name!r} (known: {', '.join(known)})") from None
