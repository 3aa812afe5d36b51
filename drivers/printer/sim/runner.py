"""Serve a ``SimPrinter`` on a pty plus a JSON control socket, in one selector loop.

The runner keeps its own copy of the slave fd open for its whole life: without it the master
side gets EIO as soon as the host closes the port, and a host that reopens it (hwctl run after
hwctl run, a kiosk restart) would find a dead simulator.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import stat
import time
import tty
from collections.abc import Callable
from types import TracebackType

from drivers.printer.sim.control import MAX_LINE_BYTES, handle_request
from drivers.printer.sim.model import SimPrinter

log = logging.getLogger(__name__)

EventHandler = Callable[[int], None]
PARENT_CHECK_INTERVAL_S = 0.2
TICK_S = 0.05


class SimRunner:
    """Owns the pty, the control socket and the loop. One thread serves."""

    def __init__(self, sim: SimPrinter, control_path: str) -> None:
        self.sim = sim
        self.control_path = control_path
        self._stop_requested = False
        self._conns: dict[int, _ControlConn] = {}
        self._pending_tx = bytearray()
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
        next_check_s = time.monotonic()
        while not self._stop_requested:
            self.step()
            if parent_pid is not None and time.monotonic() >= next_check_s:
                next_check_s = time.monotonic() + PARENT_CHECK_INTERVAL_S
                if os.getppid() != parent_pid:  # re-parented: the parent died
                    log.warning("parent process %d is gone, stopping", parent_pid)
                    self._stop_requested = True

    def step(self) -> None:
        for key, mask in self._selector.select(TICK_S):
            handler: EventHandler = key.data
            handler(mask)
        self._write_pending()

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

    def _on_master(self, _mask: int) -> None:
        try:
            data = os.read(self._master_fd, 65536)
        except (BlockingIOError, InterruptedError):
            return
        log.debug("rx %d bytes", len(data))
        reply = self.sim.feed(data)
        if reply:
            log.debug("tx %s", reply.hex(" "))
            self._pending_tx += reply

    def _write_pending(self) -> None:
        if not self._pending_tx:
            return
        try:
            written = os.write(self._master_fd, self._pending_tx)
        except BlockingIOError:
            return  # nobody reads the port just now; try again next turn
        del self._pending_tx[:written]

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

    def receive(self, sim: SimPrinter) -> bool:
        """Read and answer complete lines. False when the peer is gone."""
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
                self.outbuf += handle_request(sim, line)
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
