"""The simulator's control protocol: one JSON object per line over a Unix stream socket.

Request ``{"hook": "jam", "args": {"board": 1, "channel": 2}}``; answer ``{"ok": true,
"result": ...}`` or ``{"ok": false, "error": "..."}``. ``handle_request`` is the server side
(never raises: a bad request must not take the simulator down); ``SimControl`` the client.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from typing import Any

from drivers.lockboard.sim.model import CoilFire, SimBus

MAX_LINE_BYTES = 64 * 1024


class SimControlError(RuntimeError):
    """The simulator refused a control request (``ok: false``)."""


def handle_request(sim: SimBus, line: bytes) -> bytes:
    """Answer one request line with one response line (newline included)."""
    try:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("request must be a JSON object")
        hook = request.get("hook")
        args = request.get("args", {})
        if not isinstance(hook, str):
            raise ValueError("'hook' must be a string")
        if not isinstance(args, dict):
            raise ValueError("'args' must be a JSON object")
        unknown = set(request) - {"hook", "args"}
        if unknown:
            raise ValueError(f"unknown request keys: {sorted(unknown)}")
        response: dict[str, Any] = {"ok": True, "result": _call(sim, hook, _Args(hook, args))}
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        response = {"ok": False, "error": str(exc) or type(exc).__name__}
    except Exception as exc:  # a simulator bug must not take the bench down with it
        response = {"ok": False, "error": f"internal error: {exc!r}"}
    return json.dumps(response).encode() + b"\n"


class _Args:
    """Typed, checked access to a request's arguments; every argument must be used."""

    def __init__(self, hook: str, raw: Mapping[str, Any]) -> None:
        self._hook = hook
        self._raw = raw
        self._used: set[str] = set()

    def integer(self, name: str, default: int | None = None) -> int:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{self._hook}: '{name}' must be an integer")
        return value

    def opt_integer(self, name: str) -> int | None:
        self._used.add(name)
        return None if self._raw.get(name) is None else self.integer(name)

    def flag(self, name: str, default: bool | None = None) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise ValueError(f"{self._hook}: '{name}' must be true or false")
        return value

    def done(self) -> None:
        extra = set(self._raw) - self._used
        if extra:
            raise ValueError(f"{self._hook}: unexpected arguments {sorted(extra)}")

    def _get(self, name: str, default: object) -> object:
        self._used.add(name)
        if name in self._raw:
            return self._raw[name]
        if default is None:
            raise ValueError(f"{self._hook}: missing argument '{name}'")
        return default


def _call(sim: SimBus, hook: str, args: _Args) -> object:
    result: object = None
    match hook:
        case "pull_door":
            board, channel = args.integer("board"), args.integer("channel")
            args.done()
            result = sim.pull_door(board, channel)
        case "close_door":
            board, channel = args.integer("board"), args.integer("channel")
            args.done()
            sim.close_door(board, channel)
        case "hold_door_open":
            board, channel = args.integer("board"), args.integer("channel")
            args.done()
            result = sim.hold_door_open(board, channel)
        case "force_open":
            board, channel = args.integer("board"), args.integer("channel")
            args.done()
            sim.force_open(board, channel)
        case "jam":
            board, channel = args.integer("board"), args.integer("channel")
            jammed = args.flag("jammed", True)
            args.done()
            sim.jam(board, channel, jammed)
        case "set_offline":
            board, offline = args.integer("board"), args.flag("offline", True)
            args.done()
            sim.set_offline(board, offline)
        case "garble_next":
            count = args.integer("count", 1)
            args.done()
            sim.garble_next(count)
        case "delay_replies":
            delay_ms = args.integer("delay_ms")
            args.done()
            sim.delay_replies(delay_ms)
        case "set_auto_person":
            enabled = args.flag("enabled")
            pull_ms, close_ms = (
                args.opt_integer("pull_after_ms"),
                args.opt_integer("close_after_ms"),
            )
            args.done()
            sim.set_auto_person(enabled, pull_ms, close_ms)
        case "put_item" | "take_item":
            board, channel = args.integer("board"), args.integer("channel")
            args.done()
            (sim.put_item if hook == "put_item" else sim.take_item)(board, channel)
        case "snapshot":
            args.done()
            result = sim.snapshot()
        case "unlock_log":
            args.done()
            result = [fire._asdict() for fire in sim.unlock_log]
        case _:
            raise ValueError(f"unknown hook {hook!r}")
    return result


class SimControl:
    """Client for a running simulator's control socket; one typed method per hook.

    Each call uses a fresh connection, so the client survives a simulator restart and is
    safe to share between threads.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 5.0) -> None:
        self.path = os.fspath(path)
        self.timeout_s = timeout_s

    def request_line(self, line: bytes) -> dict[str, Any]:
        """Send one raw line (newline added if missing) and return the decoded answer."""
        if not line.endswith(b"\n"):
            line += b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            sock.connect(self.path)
            sock.sendall(line)
            answer = bytearray()
            while not answer.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("simulator closed the control connection")
                answer += chunk
                if len(answer) > MAX_LINE_BYTES * 16:
                    raise ConnectionError("control answer too long")
        decoded = json.loads(answer)
        if not isinstance(decoded, dict):
            raise ConnectionError(f"control answer is not an object: {decoded!r}")
        return decoded

    def call(self, hook: str, **args: object) -> Any:
        """Run a hook; return its result or raise ``SimControlError``."""
        answer = self.request_line(json.dumps({"hook": hook, "args": args}).encode())
        if not answer.get("ok"):
            raise SimControlError(str(answer.get("error", "unknown error")))
        return answer.get("result")

    def pull_door(self, board: int, channel: int) -> bool:
        return bool(self.call("pull_door", board=board, channel=channel))

    def close_door(self, board: int, channel: int) -> None:
        self.call("close_door", board=board, channel=channel)

    def hold_door_open(self, board: int, channel: int) -> bool:
        return bool(self.call("hold_door_open", board=board, channel=channel))

    def force_open(self, board: int, channel: int) -> None:
        self.call("force_open", board=board, channel=channel)

    def jam(self, board: int, channel: int, jammed: bool = True) -> None:
        self.call("jam", board=board, channel=channel, jammed=jammed)

    def set_offline(self, board: int, offline: bool = True) -> None:
        self.call("set_offline", board=board, offline=offline)

    def garble_next(self, count: int = 1) -> None:
        self.call("garble_next", count=count)

    def delay_replies(self, delay_ms: int) -> None:
        self.call("delay_replies", delay_ms=delay_ms)

    def set_auto_person(
        self,
        enabled: bool,
        pull_after_ms: int | None = None,
        close_after_ms: int | None = None,
    ) -> None:
        self.call(
            "set_auto_person",
            enabled=enabled,
            pull_after_ms=pull_after_ms,
            close_after_ms=close_after_ms,
        )

    def put_item(self, board: int, channel: int) -> None:
        self.call("put_item", board=board, channel=channel)

    def take_item(self, board: int, channel: int) -> None:
        self.call("take_item", board=board, channel=channel)

    def snapshot(self) -> dict[str, Any]:
        result = self.call("snapshot")
        if not isinstance(result, dict):
            raise SimControlError(f"snapshot is not an object: {result!r}")
        return result

    def unlock_log(self) -> list[CoilFire]:
        rows = self.call("unlock_log")
        return [
            CoilFire(int(r["board"]), int(r["channel"]), float(r["at_s"]), bool(r["jammed"]))
            for r in rows
        ]
