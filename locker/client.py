"""A small synchronous client for lockerd's API (used by lockerctl, the demo, tests, the kiosk)."""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
from collections.abc import Iterator
from typing import Any

from locker.api import API_VERSION
from locker.errors import LockerError


class ApiError(LockerError):
    """A refusal or failure reported by lockerd, with its code and both messages."""

    def __init__(self, error: dict[str, Any]) -> None:
        self.error = error
        super().__init__(
            str(error.get("detail") or error.get("code")),
            code=str(error.get("code", "error")),
            message_zh=str(error.get("message_zh", "")),
            message_en=str(error.get("message_en", "")),
        )


class LockerdUnavailable(LockerError, ConnectionError):
    code = "lockerd_unavailable"
    message_zh = "储物柜服务暂时不可用，请稍后再试或联系工作人员。"
    message_en = "The locker service is not available. Please try again or contact staff."


class LockerClient:
    """Keeps one connection and reuses it; safe to share between threads.

    A request is never sent twice: if the connection breaks after sending, the caller gets
    ``LockerdUnavailable`` and decides (with a ``request_id`` a repeat is safe).
    """

    def __init__(self, socket_path: str, *, timeout_s: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout_s = timeout_s
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None
        self._reader: Any = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None

    def _connection(self) -> tuple[socket.socket, Any]:
        if self._sock is not None and _hung_up(self._sock):
            self._drop()  # the daemon restarted or closed the idle connection: nothing was sent
        if self._sock is None:
            self._sock = self._connect()
            self._reader = self._sock.makefile("rb")
        return self._sock, self._reader

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise LockerdUnavailable(f"{self.socket_path}: {exc.strerror or exc}") from exc
        return sock

    def call(self, method: str, **params: Any) -> Any:
        request = {
            "v": API_VERSION,
            "id": next(self._ids),
            "method": method,
            "params": {k: v for k, v in params.items() if v is not None},
        }
        with self._lock:
            sock, reader = self._connection()
            try:
                sock.sendall(json.dumps(request, ensure_ascii=False).encode() + b"\n")
                line = reader.readline()
            except OSError as exc:
                self._drop()
                raise LockerdUnavailable(f"{method}: {exc}") from exc
            if not line:
                self._drop()
                raise LockerdUnavailable(f"{method}: lockerd closed the connection")
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise LockerdUnavailable(f"{method}: not a JSON object from lockerd")
        if not reply.get("ok"):
            raise ApiError(reply.get("error") or {})
        return reply.get("result")

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield events until the daemon goes away."""
        sock = self._connect()
        sock.settimeout(None)
        try:
            sock.sendall(
                json.dumps({"v": API_VERSION, "id": 0, "method": "events.subscribe"}).encode()
                + b"\n"
            )
            buf = sock.makefile("rb")
            for line in buf:
                message = json.loads(line)
                if "event" in message:
                    yield message["event"]
                elif not message.get("ok"):
                    raise ApiError(message.get("error") or {})
        finally:
            sock.close()


def _hung_up(sock: socket.socket) -> bool:
    """An idle connection that is readable has been closed by the daemon (EOF)."""
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
