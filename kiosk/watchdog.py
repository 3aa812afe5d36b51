"""systemd's notify protocol (sd_notify) without the systemd package: READY=1 once the first
frame is up, WATCHDOG=1 from a Kivy Clock callback, so a frozen UI thread stops the pings and
systemd restarts the kiosk (``WatchdogSec=`` in the unit).

``$NOTIFY_SOCKET`` names a unix datagram socket: a path, or ``@name`` in the abstract namespace.
``$WATCHDOG_USEC`` is systemd's timeout; we ping at half of it. ``$WATCHDOG_PID``, when set,
says which process the watchdog is for.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def socket_address(notify_socket: str) -> str | bytes:
    """The address to ``sendto``: ``@name`` is the abstract namespace (a leading NUL byte)."""
    if notify_socket.startswith("@"):
        return b"\0" + notify_socket[1:].encode()
    return notify_socket


def watchdog_interval_s(env: Mapping[str, str], pid: int | None = None) -> float | None:
    """Half of ``$WATCHDOG_USEC`` in seconds, or None when no watchdog is asked of this process."""
    usec = env.get("WATCHDOG_USEC", "")
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    try:
        timeout_us = int(usec)
    except ValueError:
        return None
    return timeout_us / 2 / 1_000_000 if timeout_us > 0 else None


class SdNotifier:
    """Sends notify datagrams to systemd. Without ``$NOTIFY_SOCKET`` every call is a no-op, so
    the kiosk runs the same outside systemd. Sends never block (the UI thread calls them) and
    a failed send is logged, never raised: the UI must not hang or die because systemd is
    slow or gone. A run of failures is logged once."""

    def __init__(self, notify_socket: str | None) -> None:
        self._address = socket_address(notify_socket) if notify_socket else None
        self._sock: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SdNotifier:
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._sock.sendto("\n".join(assignments).encode(), self._address)
        except OSError as exc:  # BlockingIOError too: a full queue drops the datagram
            if not self._failing:
                log.warning("sd_notify %s failed: %s", assignments, exc)
            self._failing = True
            return False
        if self._failing:
            log.info("sd_notify works again")
        self._failing = False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
