"""The virtual card's control protocol: one JSON object per line over a Unix stream socket.

Request ``{"hook": "insert", "args": {"card": "staff"}}``; answer ``{"ok": true, "result": ...}``
or ``{"ok": false, "error": "..."}`` (the same shape as the lock-board simulator's).
``VcardControl`` is the client; the server side lives in ``runner.py``.
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

MAX_LINE_BYTES = 64 * 1024


class VcardControlError(RuntimeError):
    """The virtual card refused a control request (``ok: false``)."""


class VcardControl:
    """Client for a running ``python -m drivers.identity.vcard``; one method per hook.

    Each call uses a fresh connection, so it is safe to share between threads.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 5.0) -> None:
        self.path = os.fspath(path)
        self.timeout_s = timeout_s

    def call(self, hook: str, **args: object) -> Any:
        line = json.dumps({"hook": hook, "args": args}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            sock.connect(self.path)
            sock.sendall(line)
            answer = bytearray()
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the virtual card closed the control connection")
                answer += chunk
        decoded = json.loads(answer)
        if not isinstance(decoded, dict):
            raise ConnectionError(f"control answer is not an object: {decoded!r}")
        if not decoded.get("ok"):
            raise VcardControlError(str(decoded.get("error", "unknown error")))
        return decoded.get("result")

    def insert(self, card: str | None = None) -> None:
        """Put a card in the field (optionally switching which card first). A card removed
        less than ``REINSERT_GAP_S`` ago connects once that gap has passed."""
        if card is None:
            self.call("insert")
        else:
            self.call("insert", card=card)

    def remove(self) -> None:
        self.call("remove")

    def hang(self, hung: bool = True) -> None:
        """The chip stops answering (6F 00) until its power is cycled."""
        self.call("hang", hung=hung)

    def unblock(self) -> None:
        self.call("unblock")

    def status(self) -> dict[str, Any]:
        result = self.call("status")
        if not isinstance(result, dict):
            raise VcardControlError(f"status is not an object: {result!r}")
        return result

    def log(self, since: int = 0) -> list[tuple[str, str]]:
        """Entries the card saw from index ``since``: (kind, hex) with kind on/off/reset/apdu/
        atr/inserted/removed."""
        rows = self.call("log", since=since)
        return [(str(kind), str(data)) for kind, data in rows]
