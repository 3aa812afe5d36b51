"""An incremental ESC/POS command parser, written from the command reference alone.

It shares no code with the renderer, so a renderer bug cannot hide behind the same bug here.
``feed`` takes any chunk of the byte stream and returns the complete commands in it; an
incomplete command waits in the buffer for the next chunk.
"""

from __future__ import annotations

from dataclasses import dataclass

ESC, GS, FS, DLE, LF, CR = 0x1B, 0x1D, 0x1C, 0x10, 0x0A, 0x0D
EOT = 0x04

# ESC x with one parameter byte
_ESC_ONE = {
    ord("!"): "esc_bang",
    ord("E"): "bold",
    ord("G"): "double_strike",
    ord("-"): "underline",
    ord("a"): "align",
    ord("t"): "codepage",
    ord("d"): "feed_lines",
    ord("J"): "feed_dots",
    ord("3"): "line_spacing",
    ord("M"): "font",
    ord("R"): "charset",
    ord("{"): "upside_down",
    ord("V"): "rotate",
    ord(" "): "char_spacing",
    ord("c"): "panel",  # ESC c 3/4/5 n: all take one more byte after the selector
    ord("U"): "unidirectional",
}
_ESC_NONE = {ord("@"): "init", ord("2"): "line_spacing_default"}
_GS_ONE = {
    ord("!"): "size",
    ord("B"): "invert",
    ord("H"): "hri_position",
    ord("h"): "barcode_height",
    ord("w"): "barcode_width",
    ord("f"): "hri_font",
    ord("a"): "asb",
}
_FS_NONE = {ord("&"): "chinese_on", ord("."): "chinese_off"}
_FS_ONE = {ord("!"): "kanji_mode", ord("C"): "kanji_code", ord("-"): "kanji_underline"}
_CUT_WITH_N = {65, 66, 97, 98, 103, 104}


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[int, ...] = ()
    data: bytes = b""


class EscPosParser:
    def __init__(self, *, native_qr: bool = True) -> None:
        # a printer without GS ( k knows only "GS (" as unknown and prints the rest as text
        self.native_qr = native_qr
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Command]:
        self._buf += chunk
        out: list[Command] = []
        while self._buf:
            parsed = self._next()
            if parsed is None:
                break  # incomplete: wait for more bytes
            command, used = parsed
            del self._buf[:used]
            out.append(command)
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)

    def _next(self) -> tuple[Command, int] | None:
        buf = self._buf
        first = buf[0]
        if first >= 0x20 and first != 0x7F:
            end = 1
            while end < len(buf) and buf[end] >= 0x20 and buf[end] != 0x7F:
                end += 1
            return Command("data", data=bytes(buf[:end])), end
        if first == LF:
            return Command("lf"), 1
        if first == ESC:
            return self._esc()
        if first == GS:
            return self._gs()
        if first == FS:
            return self._fs()
        if first == DLE:
            if len(buf) < 3:
                return None
            if buf[1] == EOT:
                return Command("status", (buf[2],)), 3
            return Command("unknown", data=bytes(buf[:2])), 2
        # CR, HT, NUL and other control bytes do nothing on a line printer
        return Command("control", (first,)), 1

    def _esc(self) -> tuple[Command, int] | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        op = buf[1]
        if op in _ESC_NONE:
            return Command(_ESC_NONE[op]), 2
        if op == ord("c"):
            if len(buf) < 4:
                return None
            return Command("panel", (buf[2], buf[3])), 4
        if op in _ESC_ONE:
            if len(buf) < 3:
                return None
            return Command(_ESC_ONE[op], (buf[2],)), 3
        if op == ord("$"):  # absolute position: two bytes
            if len(buf) < 4:
                return None
            return Command("position", (buf[2] | buf[3] << 8,)), 4
        return Command("unknown", data=bytes(buf[:2])), 2

    def _gs(self) -> tuple[Command, int] | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        op = buf[1]
        if op in _GS_ONE:
            if len(buf) < 3:
                return None
            return Command(_GS_ONE[op], (buf[2],)), 3
        if op == ord("V"):
            if len(buf) < 3:
                return None
            if buf[2] in _CUT_WITH_N:
                if len(buf) < 4:
                    return None
                return Command("cut", (buf[2], buf[3])), 4
            return Command("cut", (buf[2],)), 3
        if op == ord("v"):
            return self._raster()
        if op == ord("L"):
            if len(buf) < 4:
                return None
            return Command("left_margin", (buf[2] | buf[3] << 8,)), 4
        if op == ord("W"):
            if len(buf) < 4:
                return None
            return Command("print_width", (buf[2] | buf[3] << 8,)), 4
        if op == ord("("):
            return self._gs_paren()
        return Command("unknown", data=bytes(buf[:2])), 2

    def _raster(self) -> tuple[Command, int] | None:
        buf = self._buf
        if len(buf) < 8:
            return None
        if buf[2] != ord("0"):
            return Command("unknown", data=bytes(buf[:3])), 3
        mode = buf[3]
        width_bytes = buf[4] | buf[5] << 8
        height = buf[6] | buf[7] << 8
        size = width_bytes * height
        if len(buf) < 8 + size:
            return None
        return Command("raster", (mode, width_bytes, height), bytes(buf[8 : 8 + size])), 8 + size

    def _gs_paren(self) -> tuple[Command, int] | None:
        buf = self._buf
        if len(buf) < 3:
            return None
        letter = buf[2]
        if letter == ord("k") and not self.native_qr:
            return Command("unknown", data=bytes(buf[:2])), 2
        if len(buf) < 5:
            return None
        length = buf[3] | buf[4] << 8
        if len(buf) < 5 + length:
            return None
        body = bytes(buf[5 : 5 + length])
        if letter == ord("k") and length >= 2:
            # cn (symbol type), fn (function), then parameters
            return Command("symbol", (body[0], body[1]), body[2:]), 5 + length
        return Command("gs_paren", (letter,), body), 5 + length

    def _fs(self) -> tuple[Command, int] | None:
        buf = self._buf
        if len(buf) < 2:
            return None
        op = buf[1]
        if op in _FS_NONE:
            return Command(_FS_NONE[op]), 2
        if op in _FS_ONE:
            if len(buf) < 3:
                return None
            return Command(_FS_ONE[op], (buf[2],)), 3
        return Command("unknown", data=bytes(buf[:2])), 2
