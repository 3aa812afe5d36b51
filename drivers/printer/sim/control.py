"""The printer simulator's control protocol: one JSON object per line on a Unix stream socket.

Request ``{"hook": "pull_paper", "args": {}}``; answer ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. ``handle_request`` is the server side (never raises: a bad
request must not take the simulator down); ``PrinterSimControl`` the client, usable from any
process (the kiosk demo pulls paper through it).
"""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from drivers.printer.sim.model import SimPrinter

MAX_LINE_BYTES = 64 * 1024
# hooks without arguments, by name
_PLAIN_HOOKS = (
    "pull_paper",
    "near_end",
    "load_paper",
    "go_offline",
    "come_online",
    "open_cover",
    "close_cover",
    "clear",
)


class SimControlError(RuntimeError):
    """The simulator refused a control request (``ok: false``)."""


def handle_request(sim: SimPrinter, line: bytes) -> bytes:
    """Answer one request line with one response line (newline included)."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("request must be a JSON object")
        if set(request) - {"hook", "args"}:
            raise ValueError(f"unknown request keys: {sorted(set(request) - {'hook', 'args'})}")
        hook, args = request.get("hook"), request.get("args", {})
        if not isinstance(hook, str) or not isinstance(args, dict):
            raise ValueError("'hook' must be a string and 'args' an object")
        response: dict[str, Any] = {"ok": True, "result": _call(sim, hook, args)}
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        response = {"ok": False, "error": str(exc) or type(exc).__name__}
    except Exception as exc:  # a simulator bug must not take the tests down with it
        response = {"ok": False, "error": f"internal error: {exc!r}"}
    return json.dumps(response, ensure_ascii=False).encode() + b"\n"


def _call(sim: SimPrinter, hook: str, args: dict[str, Any]) -> object:
    if hook in _PLAIN_HOOKS:
        _no_args(hook, args, set())
        getattr(sim, hook)()
        return None
    match hook:
        case "run_out_after":
            _no_args(hook, args, {"items"})
            items = args.get("items")
            if isinstance(items, bool) or not isinstance(items, int):
                raise ValueError("run_out_after: 'items' must be an integer")
            sim.run_out_after(items)
            return None
        case "jam_cutter":
            _no_args(hook, args, {"jammed"})
            jammed = args.get("jammed", True)
            if not isinstance(jammed, bool):
                raise ValueError("jam_cutter: 'jammed' must be true or false")
            sim.jam_cutter(jammed)
            return None
        case "items":
            _no_args(hook, args, set())
            return sim.items
        case "received":
            _no_args(hook, args, set())
            return sim.received.hex()
        case "snapshot":
            _no_args(hook, args, set())
            return sim.snapshot()
    raise ValueError(f"unknown hook {hook!r}")


def _no_args(hook: str, args: dict[str, Any], allowed: set[str]) -> None:
    extra = set(args) - allowed
    if extra:
        raise ValueError(f"{hook}: unexpected arguments {sorted(extra)}")


class PrinterSimControl:
    """Client for a running simulator's control socket; one method per hook."""

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
                    raise ConnectionError("simulator closed the control connection")
                answer += chunk
        decoded = json.loads(answer)
        if not isinstance(decoded, dict):
            raise ConnectionError(f"control answer is not an object: {decoded!r}")
        if not decoded.get("ok"):
            raise SimControlError(str(decoded.get("error", "unknown error")))
        return decoded.get("result")

    def pull_paper(self) -> None:
        self.call("pull_paper")

    def near_end(self) -> None:
        self.call("near_end")

    def load_paper(self) -> None:
        self.call("load_paper")

    def go_offline(self) -> None:
        self.call("go_offline")

    def come_online(self) -> None:
        self.call("come_online")

    def open_cover(self) -> None:
        self.call("open_cover")

    def close_cover(self) -> None:
        self.call("close_cover")

    def jam_cutter(self, jammed: bool = True) -> None:
        self.call("jam_cutter", jammed=jammed)

    def run_out_after(self, items: int) -> None:
        self.call("run_out_after", items=items)

    def clear(self) -> None:
        self.call("clear")

    def items(self) -> list[dict[str, Any]]:
        result = self.call("items")
        if not isinstance(result, list):
            raise SimControlError(f"items is not a list: {result!r}")
        return result

    def received(self) -> bytes:
        return bytes.fromhex(str(self.call("received")))

    def snapshot(self) -> dict[str, Any]:
        result = self.call("snapshot")
        if not isinstance(result, dict):
            raise SimControlError(f"snapshot is not an object: {result!r}")
        return result
