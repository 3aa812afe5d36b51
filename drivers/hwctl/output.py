"""How hwctl prints: plain lines for a technician, or one JSON object per line with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from hallkiosk.errors import HallkioskError


class Output:
    def __init__(self, *, json_mode: bool, stream: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self._stream = stream or sys.stdout

    def result(self, data: Mapping[str, Any], text: str) -> None:
        """One result: ``data`` as JSON, or ``text`` for a person. Both hold masked fields only."""
        line = (
            json.dumps(dict(data), ensure_ascii=False, sort_keys=True) if self.json_mode else text
        )
        print(line, file=self._stream, flush=True)

    def error(self, exc: HallkioskError) -> None:
        if self.json_mode:
            payload = {
                "ok": False,
                "code": exc.code,
                "detail": exc.detail,
                "message_zh": exc.message_zh,
                "message_en": exc.message_en,
            }
            print(json.dumps(payload, ensure_ascii=False), file=self._stream, flush=True)
        else:
            print(
                f"error [{exc.code}]: {exc.detail}\n  {exc.message_zh}\n  {exc.message_en}",
                file=sys.stderr,
                flush=True,
            )
