"""A simulated ESC/POS ticket printer: it prints what it parses into a list of items and
answers real-time status queries from its paper, cover and power state.

Printed items are plain dicts (JSON for the control socket):

- ``{"kind": "text", "text", "width", "height", "bold", "align"}``: one line, ended by LF; the
  style is the one in force at the line's first character (or at LF for an empty line).
- ``{"kind": "qr", "data", "module", "error_level", "align"}``: ``GS ( k`` print.
- ``{"kind": "image", "width", "height", "align", "raster_b64"}``: ``GS v 0``, 1 bit = black.
- ``{"kind": "feed", "lines"}``, ``{"kind": "cut", "mode": "full" | "partial"}``.
- ``{"kind": "unknown", "hex"}``: bytes the printer did not understand.

While the paper is out, the cover open or the cutter jammed the printer is offline: it keeps
answering status queries but prints nothing (the dropped commands are counted).
``go_offline`` is a printer without power or cable: no replies at all.
"""

from __future__ import annotations

import base64
import threading
from collections import Counter
from typing import Any

from PIL import Image

from drivers.printer.sim.parser import Command, EscPosParser

PAPER_STATES = ("ok", "near_end", "out")
ALIGN = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}
QR_LEVELS = {48: "L", 49: "M", 50: "Q", 51: "H"}
MAX_RECEIVED = 4 * 1024 * 1024
_PRINTING = {"lf", "data", "raster", "cut", "feed_lines", "feed_dots"}


class _Style:
    def __init__(self) -> None:
        self.width = 1
        self.height = 1
        self.bold = False
        self.align = "left"


class SimPrinter:
    """Thread-safe: the pty loop feeds bytes while tests or the control socket pull paper."""

    def __init__(
        self,
        *,
        native_qr: bool = True,
        near_end_sensor: bool = True,
        chinese_default: bool = True,
        paper: str = "ok",
    ) -> None:
        if paper not in PAPER_STATES:
            raise ValueError(f"paper must be one of {PAPER_STATES}")
        self.native_qr = native_qr
        self.near_end_sensor = near_end_sensor
        self.chinese_default = chinese_default
        self._lock = threading.Lock()
        self._parser = EscPosParser(native_qr=native_qr)
        self._paper = paper
        self._powered = True
        self._cover_open = False
        self._cutter_jammed = False
        self._items_until_out: int | None = None
        self._items: list[dict[str, Any]] = []
        self._received = bytearray()
        self._counts: Counter[str] = Counter()
        self._reset_job_state()

    # -- hooks ------------------------------------------------------------------------------

    def pull_paper(self) -> None:
        """The roll is gone: paper end."""
        with self._lock:
            self._paper = "out"
            self._items_until_out = None

    def near_end(self) -> None:
        with self._lock:
            self._paper = "near_end"

    def load_paper(self) -> None:
        with self._lock:
            self._paper = "ok"
            self._items_until_out = None

    def run_out_after(self, items: int) -> None:
        """The roll ends after ``items`` more printed items (to break a ticket midway)."""
        if items < 0:
            raise ValueError("items must be >= 0")
        with self._lock:
            self._items_until_out = items

    def go_offline(self) -> None:
        """No power or no cable: nothing is printed and nothing answers."""
        with self._lock:
            self._powered = False

    def come_online(self) -> None:
        with self._lock:
            self._powered = True
            self._parser = EscPosParser(native_qr=self.native_qr)  # a power cycle
            self._reset_job_state()

    def open_cover(self) -> None:
        with self._lock:
            self._cover_open = True

    def close_cover(self) -> None:
        with self._lock:
            self._cover_open = False

    def jam_cutter(self, jammed: bool = True) -> None:
        """A cutter error: the printer goes offline with the error bit until cleared."""
        with self._lock:
            self._cutter_jammed = jammed

    # -- views ------------------------------------------------------------------------------

    @property
    def items(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(item) for item in self._items]

    @property
    def received(self) -> bytes:
        with self._lock:
            return bytes(self._received)

    def clear(self) -> None:
        """Forget printed items, received bytes and counters (not the paper state)."""
        with self._lock:
            self._items.clear()
            self._received.clear()
            self._counts.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "paper": self._paper,
                "powered": self._powered,
                "cover_open": self._cover_open,
                "cutter_jammed": self._cutter_jammed,
                "online": self._online(),
                "chinese_mode": self._chinese,
                "items": len(self._items),
                "received_bytes": len(self._received),
                "pending_bytes": self._parser.pending,
                "counts": dict(self._counts),
            }

    # -- the byte stream --------------------------------------------------------------------

    def feed(self, data: bytes) -> bytes:
        """Take bytes from the host; return the bytes the printer sends back."""
        with self._lock:
            if not self._powered:
                self._counts["ignored_bytes"] += len(data)
                return b""
            if len(self._received) + len(data) <= MAX_RECEIVED:
                self._received += data
            replies = bytearray()
            for command in self._parser.feed(data):
                replies += self._apply(command)
            return bytes(replies)

    def _reset_job_state(self) -> None:
        self._style = _Style()
        self._chinese = self.chinese_default
        self._line = bytearray()
        self._line_style: dict[str, Any] | None = None
        self._qr_data = b""
        self._qr_module = 3
        self._qr_level = "L"

    def _online(self) -> bool:
        return self._paper != "out" and not self._cover_open and not self._cutter_jammed

    def _apply(self, cmd: Command) -> bytes:
        name = cmd.name
        self._counts[f"cmd_{name}"] += 1
        if name == "status":
            self._counts[f"status_{cmd.args[0]}"] += 1
            return self._status(cmd.args[0])
        if name in _PRINTING and not self._online():
            self._counts["dropped_commands"] += 1
            return b""
        match name:
            case "init":
                self._reset_job_state()
            case "data":
                if self._line_style is None:
                    self._line_style = self._style_dict()
                self._line += cmd.data
            case "lf":
                self._end_line()
            case "chinese_on" | "chinese_off":
                self._chinese = name == "chinese_on"
            case "esc_bang":
                n = cmd.args[0]
                self._style.width = 2 if n & 0x20 else 1
                self._style.height = 2 if n & 0x10 else 1
                self._style.bold = bool(n & 0x08)
            case "size":
                n = cmd.args[0]
                self._style.width = (n >> 4 & 0x07) + 1
                self._style.height = (n & 0x07) + 1
            case "bold" | "double_strike":
                self._style.bold = bool(cmd.args[0] & 1)
            case "align":
                self._style.align = ALIGN.get(cmd.args[0], "left")
            case "feed_lines":
                self._flush_line()
                self._print({"kind": "feed", "lines": cmd.args[0]})
            case "cut":
                self._flush_line()
                mode = "partial" if cmd.args[0] in (1, 49, 66, 98, 104) else "full"
                self._print({"kind": "cut", "mode": mode})
            case "raster":
                self._raster(cmd)
            case "symbol":
                self._symbol(cmd)
            case "unknown":
                self._print({"kind": "unknown", "hex": cmd.data.hex(" ")})
            case _:
                pass  # settings the simulation does not model (fonts, spacing, ...)
        return b""

    def _style_dict(self) -> dict[str, Any]:
        s = self._style
        return {"width": s.width, "height": s.height, "bold": s.bold, "align": s.align}

    def _decode(self, raw: bytes) -> str:
        if self._chinese:
            return raw.decode("gb18030", errors="replace")
        return raw.decode("cp437", errors="replace")

    def _end_line(self) -> None:
        style = self._line_style or self._style_dict()
        self._print({"kind": "text", "text": self._decode(bytes(self._line)), **style})
        self._line.clear()
        self._line_style = None

    def _flush_line(self) -> None:
        # a command that prints (feed, cut, image) prints a pending partial line first
        if self._line:
            self._end_line()

    def _print(self, item: dict[str, Any]) -> None:
        if self._items_until_out is not None:
            if self._items_until_out == 0:
                self._paper = "out"
                self._items_until_out = None
                self._counts["dropped_commands"] += 1
                return
            self._items_until_out -= 1
        self._items.append(item)

    def _raster(self, cmd: Command) -> None:
        self._flush_line()
        _mode, width_bytes, height = cmd.args
        self._print(
            {
                "kind": "image",
                "width": width_bytes * 8,
                "height": height,
                "align": self._style.align,
                "raster_b64": base64.b64encode(cmd.data).decode(),
            }
        )

    def _symbol(self, cmd: Command) -> None:
        cn, fn = cmd.args
        if cn != 49:  # only QR (cn = '1') is simulated
            self._print({"kind": "unknown", "hex": (b"\x1d(k" + cmd.data).hex(" ")})
            return
        params = cmd.data
        if fn == 67 and params:
            self._qr_module = params[0]
        elif fn == 69 and params:
            self._qr_level = QR_LEVELS.get(params[0], "?")
        elif fn == 80 and params:
            self._qr_data = params[1:]  # m = 48, then the data
        elif fn == 81:
            if not self._online():
                self._counts["dropped_commands"] += 1
                return
            self._flush_line()
            if self._qr_data:
                self._print(
                    {
                        "kind": "qr",
                        "data": self._qr_data.decode("utf-8", errors="replace"),
                        "module": self._qr_module,
                        "error_level": self._qr_level,
                        "align": self._style.align,
                    }
                )

    def _status(self, n: int) -> bytes:
        value = 0x12
        if n == 1:
            value |= 0 if self._online() else 0x08
        elif n == 2:
            value |= 0x04 if self._cover_open else 0
            value |= 0x20 if self._paper == "out" else 0
            value |= 0x40 if self._cutter_jammed else 0
        elif n == 3:
            value |= 0x08 if self._cutter_jammed else 0
        elif n == 4:
            if self._paper == "out":
                value |= 0x60 | (0x0C if self.near_end_sensor else 0)
            elif self._paper == "near_end" and self.near_end_sensor:
                value |= 0x0C
        else:
            return b""  # DLE EOT 5+ are not simulated: stay silent like an older model
        return bytes([value])


def raster_image(item: dict[str, Any]) -> Image.Image:
    """A printed ``image`` item back as a black-on-white picture."""
    data = base64.b64decode(item["raster_b64"])
    # GS v 0 sets a bit for a black dot; PIL's "1;I" raw mode reads 1 as black
    return Image.frombytes("1", (item["width"], item["height"]), data, "raw", "1;I")
