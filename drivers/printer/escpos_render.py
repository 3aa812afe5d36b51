"""Layout -> ESC/POS bytes through python-escpos (``escpos.printer.Dummy`` collects them).

A job starts with ``ESC @`` and the profile's Chinese-mode command (``FS &``), then text goes
as GB18030. python-escpos 3.1 sends a string as GB18030 only if it holds a CJK ideograph
(U+4E00-U+9FA5); any other non-ASCII string (full-width punctuation alone, 〇, ·, ￥) takes its
code-page path and comes out as ``?``. In Chinese mode every non-ASCII character must be
GB18030, so ``write_text`` sends those strings as GB18030 itself.

Size is ``GS !`` (it also scales Chinese characters; ``ESC !`` does not), bold ``ESC E``,
alignment ``ESC a`` (which raster images follow too). The QR is the printer's ``GS ( k`` when
the profile says it has one, otherwise a ``GS v 0`` raster image of the same symbol.
"""

# The imports below the cache set-up are meant to come after it.
# ruff: noqa: E402

from __future__ import annotations

import re
from typing import Any

from drivers.printer.escpos_cache import use_capabilities_cache

use_capabilities_cache()  # before python-escpos is imported: it reads the variable on import

from escpos.capabilities import Profile as EscposProfile
from escpos.capabilities import get_profile as escpos_get_profile
from escpos.constants import (
    PAPER_FULL_CUT,
    PAPER_PART_CUT,
    QR_ECLEVEL_H,
    QR_ECLEVEL_L,
    QR_ECLEVEL_M,
    QR_ECLEVEL_Q,
)
from escpos.printer import Dummy

from drivers.printer.errors import LayoutError
from drivers.printer.layout import (
    Align,
    Cut,
    Element,
    Feed,
    Layout,
    QRCode,
    Separator,
    Text,
    text_lines,
)
from drivers.printer.profiles import PrinterProfile, QrErrorLevel
from drivers.printer.qrimage import fit_module_dots, qr_image

# the test python-escpos 3.1 applies (MagicEncode.write) before it sends a string as GB18030
ESCPOS_GB18030_TEST = re.compile(r"[\u4e00-\u9fa5]")
_EC_LEVELS = {"L": QR_ECLEVEL_L, "M": QR_ECLEVEL_M, "Q": QR_ECLEVEL_Q, "H": QR_ECLEVEL_H}


def write_text(printer: Any, text: str) -> None:
    """Send ``text`` as the printer in Chinese mode needs it: ASCII as is, the rest GB18030."""
    if text.isascii() or ESCPOS_GB18030_TEST.search(text):
        printer.text(text)
    else:
        # python-escpos would pick a code page and print "?"; see the module docstring
        printer._raw(text.encode("gb18030"))


def _escpos_profile(profile: PrinterProfile) -> Any:
    """A python-escpos profile with this model's paper width, built per renderer: the library's
    own profile classes are shared, so they are never modified."""
    base = escpos_get_profile("default")
    escpos_profile = EscposProfile(columns=profile.chars_per_line, features=dict(base.features))
    data = dict(base.profile_data)
    data["media"] = {
        "dpi": 203,
        "width": {"mm": profile.paper_width_mm, "pixels": profile.width_dots},
    }
    # an instance attribute shadows the class-level dict the library shares between printers
    escpos_profile.profile_data = data
    return escpos_profile


class _Style:
    """What the printer currently has set, so each command is sent only when it changes."""

    def __init__(self) -> None:
        # after ESC @: normal size, not bold, left aligned
        self.size = 1
        self.bold = False
        self.align = Align.LEFT


class EscposRenderer:
    def __init__(self, profile: PrinterProfile) -> None:
        self.profile = profile
        self._escpos_profile = _escpos_profile(profile)

    def new_job(self) -> Any:
        """A fresh ``Dummy`` printer; its magic encoder knows ESC @ leaves code page 0."""
        return Dummy(profile=self._escpos_profile, magic_encode_args={"encoding": "CP437"})

    def render(self, layout: Layout) -> bytes:
        printer = self.new_job()
        printer.hw("INIT")  # ESC @
        printer._raw(self.profile.chinese_on)
        style = _Style()
        for element in layout.elements:
            self._element(printer, style, element)
        output: bytes = printer.output
        return output

    def _element(self, printer: Any, style: _Style, element: Element) -> None:
        match element:
            case Text():
                self._set(printer, style, element.size, element.bold, element.align)
                for line in text_lines(element, self.profile.chars_per_line):
                    write_text(printer, line + "\n")
            case Separator():
                self._set(printer, style, 1, False, Align.LEFT)
                write_text(printer, element.char * self.profile.chars_per_line + "\n")
            case QRCode():
                self._qr(printer, style, element)
            case Feed():
                printer.print_and_feed(element.lines)  # ESC d n
            case Cut():
                self._cut(printer)

    def _set(self, printer: Any, style: _Style, size: int, bold: bool, align: Align) -> None:
        changes: dict[str, Any] = {}
        if size != style.size:
            changes.update(custom_size=True, width=size, height=size)  # GS ! n
        if bold != style.bold:
            changes["bold"] = bold  # ESC E n
        if align != style.align:
            changes["align"] = align.value  # ESC a n
        if changes:
            printer.set(**changes)
        style.size, style.bold, style.align = size, bold, align

    def _qr(self, printer: Any, style: _Style, element: QRCode) -> None:
        level: QrErrorLevel = element.error_level or self.profile.qr_error_level
        dots = fit_module_dots(element.payload, level, self.profile)
        self._set(printer, style, style.size, style.bold, element.align)
        if self.profile.native_qr:
            # GS ( k: model 2, module size, error level, store, print
            printer.qr(element.payload, ec=_EC_LEVELS[level], size=dots, native=True)
            return
        image = qr_image(element.payload, level, dots)
        try:
            # GS v 0, normal density; python-escpos checks the width against the profile
            printer.image(image, impl="bitImageRaster", center=False)
        except Exception as exc:  # ImageWidthError and friends
            raise LayoutError(f"QR image cannot be printed: {exc}") from exc

    def _cut(self, printer: Any) -> None:
        if self.profile.feed_before_cut_lines:
            printer.print_and_feed(self.profile.feed_before_cut_lines)  # ESC d n
        if self.profile.cutter == "full":
            printer._raw(PAPER_FULL_CUT)  # GS V 0
        elif self.profile.cutter == "partial":
            printer._raw(PAPER_PART_CUT)  # GS V 1


def render_layout(layout: Layout, profile: PrinterProfile) -> bytes:
    return EscposRenderer(profile).render(layout)
