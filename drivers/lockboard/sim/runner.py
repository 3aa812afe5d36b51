"""Serve a ``SimBus`` on a pty plus a JSON control socket, in one selector loop.

The runner keeps its own copy of the slave fd open for its whole life: without it the master
side gets EIO as soon as the host closes the port, and a host that reopens it (a daemon
restart) would find a dead simulator.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import selectors
import socket
import stat
import time
import tty
from collections.abc import Callable
from types import TracebackType

from drivers.lockboard.sim.control import MAX_LINE_BYTES, handle_request
from drivers.lockboard.sim.model import SimBus

log = logging.getLogger(__name__)

EventHandler = Callable[[int], None]
PARENT_CHECK_INTERVAL_S = 0.2


class SimRunner:
    """Owns the pty, the control socket and the loop. Not thread-safe: one thread serves."""

    def __init__(self, sim: SimBus, control_path: str, *, tick_interval_s: float = 0.005) -> None:
        self.sim = sim
        self.control_path = control_path
        self._tick_interval_s = tick_interval_s
        self._stop_requested = False
        self._outbox: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self._conns: dict[int, _ControlConn] = {}
        self._selector = selectors.DefaultSelector()
        self._master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)
        os.set_blocking(self._master_fd, False)
        self.slave_path = os.ttyname(self._slave_fd)
        self._server = _bind_unix(control_path)
        self._selector.register(self._master_fd, selectors.EVENT_READ, self._on_master)
        self._selector.register(self._server, selectors.EVENT_READ, self._on_accept)

    def __enter__(self) -> SimRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request_stop(self) -> None:
        """Safe to call from a signal handler: the loop notices within one tick."""
        self._stop_requested = True

    def serve(self, *, parent_pid: int | None = None) -> None:
        """Serve until ``request_stop``; with ``parent_pid``, also once that parent is gone."""
        next_check_s = time.monotonic()
        while not self._stop_requested:
            self.step()
            if parent_pid is not None and time.monotonic() >= next_check_s:
                next_check_s = time.monotonic() + PARENT_CHECK_INTERVAL_S
                # orphans are re-parented, so a changed ppid means the parent died
                if os.getppid() != parent_pid:
                    log.warning("parent process %d is gone, stopping", parent_pid)
                    self._stop_requested = True

    def step(self) -> None:
        """One loop turn: wait for I/O (at most one tick), run physics, write due replies."""
        for key, mask in self._selector.select(self._wait_s()):
            handler: EventHandler = key.data
            handler(mask)
        self.sim.tick()
        self._write_due()

    def close(self) -> None:
        for conn in list(self._conns.values()):
            self._drop_conn(conn)
        self._selector.close()
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.control_path)
        for fd in (self._master_fd, self._slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- pty --------------------------------------------------------------------------------

    def _wait_s(self) -> float:
        wait_s = self._tick_interval_s
        if self._outbox:
            wait_s = min(wait_s, self._outbox[0][0] - time.monotonic())
        return max(0.0, wait_s)

    def _on_master(self, _mask: int) -> None:
        try:
            data = os.read(self._master_fd, 4096)
        except (BlockingIOError, InterruptedError):
            return
        log.debug("rx %s", data.hex(" "))
        for due_s, reply in self.sim.handle(data):
            heapq.heappush(self._outbox, (due_s, next(self._seq), reply))

    def _write_due(self) -> None:
        now = time.monotonic()
        while self._outbox and self._outbox[0][0] <= now:
            _, _, reply = heapq.heappop(self._outbox)
            try:
                written = os.write(self._master_fd, reply)
            except BlockingIOError:
                # nobody reads the port and its buffer is full: the bytes are lost on the line
                log.warning("pty full, dropped reply %s", reply.hex(" "))
                continue
            if written < len(reply):
                log.warning("pty full, dropped tail %s", reply[written:].hex(" "))
            log.debug("tx %s", reply[:written].hex(" "))

    # -- control socket ---------------------------------------------------------------------

    def _on_accept(self, _mask: int) -> None:
        try:
            sock, _ = self._server.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        conn = _ControlConn(sock)
        self._conns[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ, lambda mask: self._on_conn(conn, mask))

    def _on_conn(self, conn: _ControlConn, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ and not conn.receive(self.sim):
                self._drop_conn(conn)
                return
            conn.send_pending()
        except OSError as exc:
            log.info("control connection failed: %s", exc)
            self._drop_conn(conn)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self._selector.modify(conn.sock, events, lambda m: self._on_conn(conn, m))

    def _drop_conn(self, conn: _ControlConn) -> None:
        self._conns.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()


class _ControlConn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()

    def receive(self, sim: SimBus) -> bool:
        """Read and answer complete lines. False when the peer is gone or misbehaving."""
        try:
            chunk = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return True
        if not chunk:
            return False
        self.inbuf += chunk
        while (end := self.inbuf.find(b"\n")) >= 0:
            line = bytes(self.inbuf[:end])
            del self.inbuf[: end + 1]
            if line.strip():
                answer = handle_request(sim, line)
                log.debug("control %r -> %s", line, answer.decode().strip())
                self.outbuf += answer
        if len(self.inbuf) > MAX_LINE_BYTES:
            self.outbuf += b'{"ok": false, "error": "request line too long"}\n'
            self.inbuf.clear()
        return True

    def send_pending(self) -> None:
        if self.outbuf:
            with contextlib.suppress(BlockingIOError, InterruptedError):
                sent = self.sock.send(self.outbuf)
                del self.outbuf[:sent]


def _bind_unix(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise FileExistsError(f"{path} exists and is not a socket")
        os.unlink(path)  # stale socket from a simulator that was killed
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        server.listen(16)
        server.setblocking(False)
    except OSError:
        server.close()
        raise
    return server
