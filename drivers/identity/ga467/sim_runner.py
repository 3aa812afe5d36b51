"""Serve a ``Ga467Sim`` on a pty, in a thread (tests) or as a process (demo, hwctl).

    python -m drivers.identity.ga467.sim_runner [--link PATH] [--control PATH] [--card-seed N]

stdout, line 1: the path to give the reader as ``url`` (``--link`` if given, else the pty);
line 2: ``control <socket path>``. Then it serves until SIGTERM or SIGINT and exits 0, removing
the socket and the link. Log lines go to stderr and never hold card data.

The control socket takes one JSON object per line, ``{"hook": "present_card", "args": {...}}``,
and answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``. Hooks:
``present_card`` (``card``: fields of ``SimCard`` plus ``seed``; all optional), ``remove_card``,
``fail_next`` (``sw3``, ``count``, ``on``), ``garble_next`` (``mode``, ``count``, ``on``),
``set_silent`` (``silent``), ``unplug``, ``replug``, ``commands`` (``clear``), ``snapshot``.
``SimControl`` is the client.

In-process: ``SimRunner(Ga467Sim(), link_path=...).start()`` serves from a daemon thread; the
test calls hooks on ``runner.sim`` directly, and ``runner.unplug()`` / ``runner.replug()``.

The runner keeps its own copy of the slave fd open while plugged: without it the master side gets
EIO as soon as the host closes the port, and a host that reopens it would find a dead reader.
``unplug`` closes both ends and removes the link, as pulling a USB adapter removes its
``/dev/serial/by-id`` name; ``replug`` makes a new pty and points the link at it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import queue
import selectors
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from types import FrameType, TracebackType
from typing import Any, TypeVar, cast

from drivers.identity.ga467.sim import (
    FAIL_ON,
    GARBLE_MODES,
    FailOn,
    Ga467Sim,
    GarbleMode,
    SimCard,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_LINE_BYTES = 64 * 1024
TICK_S = 0.01
PARENT_CHECK_INTERVAL_S = 0.2


class SimRunner:
    def __init__(
        self,
        sim: Ga467Sim,
        *,
        control_path: str | None = None,
        link_path: str | None = None,
    ) -> None:
        self.sim = sim
        self.control_path = control_path
        self.link_path = link_path
        self._selector = selectors.DefaultSelector()
        self._calls: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._outbuf = bytearray()
        self._conns: dict[int, _ControlConn] = {}
        self._master_fd = -1
        self._slave_fd = -1
        self.slave_path = ""
        self._server: socket.socket | None = None
        self._plug()
        if control_path is not None:
            self._server = _bind_unix(control_path)
            self._selector.register(self._server, selectors.EVENT_READ, self._on_accept)

    @property
    def url(self) -> str:
        """What the reader's settings take as ``url``."""
        return self.link_path or self.slave_path

    @property
    def plugged(self) -> bool:
        return self._master_fd >= 0

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> SimRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> SimRunner:
        """Serve from a daemon thread (in-process mode)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.serve, name="ga467-sim", daemon=True)
            self._thread.start()
        return self

    def request_stop(self) -> None:
        """Safe from a signal handler: the loop notices within one tick."""
        self._stop.set()

    def serve(self, *, parent_pid: int | None = None) -> None:
        next_check_s = time.monotonic()
        while not self._stop.is_set():
            self.step()
            if parent_pid is not None and time.monotonic() >= next_check_s:
                next_check_s = time.monotonic() + PARENT_CHECK_INTERVAL_S
                if os.getppid() != parent_pid:  # orphans are re-parented
                    log.warning("parent process %d is gone, stopping", parent_pid)
                    self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
            self._thread = None
        for conn in list(self._conns.values()):
            self._drop_conn(conn)
        self._unplug()
        if self._server is not None:
            self._server.close()
            self._server = None
            if self.control_path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.control_path)
        self._selector.close()
        while not self._calls.empty():
            _, future = self._calls.get_nowait()
            future.cancel()

    # -- unplug / replug (any thread) -----------------------------------------------------------

    def unplug(self) -> None:
        """The USB adapter is pulled: both pty ends close, the link disappears."""
        self._in_loop(self._unplug)

    def replug(self) -> str:
        """A new pty, the link pointed at it; returns the new pty path."""
        self._in_loop(lambda: None if self.plugged else self._plug())
        return self.slave_path

    def _in_loop(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the serving thread (or now, when nothing serves yet)."""
        if self._thread is None or self._thread is threading.current_thread():
            return fn()
        future: Future[T] = Future()
        self._calls.put((fn, future))
        return future.result(timeout=5)

    # -- the loop -------------------------------------------------------------------------------

    def step(self) -> None:
        while not self._calls.empty():
            fn, future = self._calls.get_nowait()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as exc:  # handed to the caller's thread
                    future.set_exception(exc)
        for key, mask in self._selector.select(TICK_S):
            handler: Callable[[int], None] = key.data
            handler(mask)

    def _plug(self) -> None:
        self._master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)
        os.set_blocking(self._master_fd, False)
        self.slave_path = os.ttyname(self._slave_fd)
        self._outbuf.clear()
        self._selector.register(self._master_fd, selectors.EVENT_READ, self._on_master)
        if self.link_path is not None:
            temp = f"{self.link_path}.{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            os.symlink(self.slave_path, temp)
            os.replace(temp, self.link_path)  # atomic, as udev renames

    def _unplug(self) -> None:
        if self._master_fd < 0:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._master_fd)
        for fd in (self._master_fd, self._slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master_fd = self._slave_fd = -1
        self._outbuf.clear()
        if self.link_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link_path)

    def _on_master(self, mask: int) -> None:
        if self._master_fd < 0:  # unplugged earlier in this same select batch
            return
        if mask & selectors.EVENT_READ:
            try:
                data = os.read(self._master_fd, 4096)
            except (BlockingIOError, InterruptedError):
                data = b""
            except OSError:  # EIO: no host has the port open right now
                data = b""
            if data:
                log.debug("rx %s", data.hex(" "))
                for reply in self.sim.handle(data):
                    # header and status only: a reply may carry a card's text block
                    log.debug("tx %d bytes, SW3 %s", len(reply), reply[9:10].hex())
                    self._outbuf += reply
        if self._outbuf:
            try:
                sent = os.write(self._master_fd, self._outbuf)
                del self._outbuf[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                log.info("pty write failed (%s); reply dropped", exc)
                self._outbuf.clear()
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self._outbuf else 0)
        self._selector.modify(self._master_fd, events, self._on_master)

    # -- control socket -------------------------------------------------------------------------

    def _on_accept(self, _mask: int) -> None:
        assert self._server is not None
        try:
            sock, _ = self._server.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        conn = _ControlConn(sock)
        self._conns[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ, lambda m: self._on_conn(conn, m))

    def _on_conn(self, conn: _ControlConn, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ and not conn.receive(self.handle_request):
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

    def handle_request(self, line: bytes) -> bytes:
        """One JSON request line -> one answer line. Never raises."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("hook"), str):
                raise ValueError('a request is {"hook": "...", "args": {...}}')
            args = request.get("args", {})
            if not isinstance(args, dict) or set(request) - {"hook", "args"}:
                raise ValueError("'args' must be an object, and no other keys are allowed")
            answer: dict[str, Any] = {"ok": True, "result": self._call(request["hook"], args)}
        except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
            answer = {"ok": False, "error": str(exc) or type(exc).__name__}
        except Exception as exc:  # a simulator bug must not take the demo down
            answer = {"ok": False, "error": f"internal error: {exc!r}"}
        return json.dumps(answer, ensure_ascii=False).encode() + b"\n"

    def _call(self, hook: str, args: dict[str, Any]) -> Any:
        take = _Args(hook, args)
        result: Any = None
        match hook:
            case "present_card":
                card_args = take.get("card", dict, {})
                take.done()
                result = self.sim.present_card(SimCard.from_json(card_args)).describe()
            case "remove_card":
                take.done()
                self.sim.remove_card()
            case "fail_next":
                sw3, count = take.get("sw3", int), take.get("count", int, 1)
                on = take.get("on", str, "")
                take.done()
                if on and on not in FAIL_ON:
                    raise ValueError(f"fail_next: 'on' must be one of {FAIL_ON}")
                self.sim.fail_next(sw3, count, cast(FailOn, on) if on else None)
            case "garble_next":
                mode, count = take.get("mode", str, "checksum"), take.get("count", int, 1)
                on = take.get("on", str, "any")
                take.done()
                if mode not in GARBLE_MODES or on not in FAIL_ON:
                    raise ValueError(
                        f"garble_next: 'mode' is one of {GARBLE_MODES}, 'on' one of {FAIL_ON}"
                    )
                self.sim.garble_next(cast(GarbleMode, mode), count, cast(FailOn, on))
            case "set_silent":
                silent = take.get("silent", bool, True)
                take.done()
                self.sim.set_silent(silent)
            case "unplug":
                take.done()
                self._unplug()
            case "replug":
                take.done()
                result = self.replug()
            case "commands":
                clear = take.get("clear", bool, False)
                take.done()
                result = self.sim.commands(clear=clear)
            case "snapshot":
                take.done()
                result = {
                    **self.sim.snapshot(),
                    "plugged": self.plugged,
                    "pty": self.slave_path if self.plugged else None,
                    "url": self.url,
                }
            case _:
                raise ValueError(f"unknown hook {hook!r}")
        return result


class _Args:
    """Typed access to a request's arguments; each must be used, each has the right type."""

    _MISSING: Any = object()

    def __init__(self, hook: str, raw: dict[str, Any]) -> None:
        self._hook, self._raw, self._used = hook, raw, set[str]()

    def get(self, name: str, kind: type[T], default: T = _MISSING) -> T:
        self._used.add(name)
        if name not in self._raw:
            if default is _Args._MISSING:
                raise ValueError(f"{self._hook}: missing argument '{name}'")
            return default
        value = self._raw[name]
        # bool is an int in Python, but not in a request
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{self._hook}: '{name}' must be of type {kind.__name__}")
        return value

    def done(self) -> None:
        extra = set(self._raw) - self._used
        if extra:
            raise ValueError(f"{self._hook}: unexpected arguments {sorted(extra)}")


class _ControlConn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.outbuf = bytearray()

    def receive(self, answer: Callable[[bytes], bytes]) -> bool:
        """Read and answer complete lines. False when the peer has gone."""
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
                self.outbuf += answer(line)
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
        os.unlink(path)  # stale socket of a simulator that was killed
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(path)
        server.listen(8)
        server.setblocking(False)
    except OSError:
        server.close()
        raise
    return server


class SimControlError(RuntimeError):
    """The simulator refused a control request (``ok: false``)."""


class SimControl:
    """Client of a running simulator's control socket; a fresh connection per call."""

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 5.0) -> None:
        self.path = os.fspath(path)
        self.timeout_s = timeout_s

    def call(self, hook: str, **args: Any) -> Any:
        line = json.dumps({"hook": hook, "args": args}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout_s)
            sock.connect(self.path)
            sock.sendall(line)
            answer = bytearray()
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("the simulator closed the control connection")
                answer += chunk
        decoded = json.loads(answer)
        if not isinstance(decoded, dict) or not decoded.get("ok"):
            error = decoded.get("error") if isinstance(decoded, dict) else decoded
            raise SimControlError(str(error))
        return decoded.get("result")

    def present_card(self, seed: int = 0, **fields: str) -> dict[str, str]:
        """A synthetic card from ``seed``; ``fields`` (``SimCard`` names) override its fields."""
        result: dict[str, str] = self.call("present_card", card={"seed": seed, **fields})
        return result

    def remove_card(self) -> None:
        self.call("remove_card")

    def fail_next(self, sw3: int, count: int = 1, on: str | None = None) -> None:
        self.call("fail_next", sw3=sw3, count=count, **({"on": on} if on else {}))

    def garble_next(self, mode: str = "checksum", count: int = 1, on: str = "any") -> None:
        self.call("garble_next", mode=mode, count=count, on=on)

    def set_silent(self, silent: bool = True) -> None:
        self.call("set_silent", silent=silent)

    def unplug(self) -> None:
        self.call("unplug")

    def replug(self) -> str:
        return str(self.call("replug"))

    def commands(self, *, clear: bool = False) -> list[str]:
        return list(self.call("commands", clear=clear))

    def snapshot(self) -> dict[str, Any]:
        return dict(self.call("snapshot"))


# -- process entry point ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m drivers.identity.ga467.sim_runner",
        description="A simulated GA 467 ID-card reader on a pty.",
    )
    parser.add_argument("--link", default=None, help="keep a symlink to the pty here")
    parser.add_argument("--control", default=None, help="control socket (default: temp dir)")
    parser.add_argument(
        "--card-seed", type=int, default=None, help="start with synthetic card N on the reader"
    )
    parser.add_argument("--verbose", action="store_true", help="log every frame to stderr")
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the parent process dies"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parent_pid = os.getppid() if args.exit_with_parent else None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="ga467-sim %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    card = None if args.card_seed is None else SimCard.synthetic(args.card_seed)
    temp_dir: str | None = None
    control_path: str = args.control
    if not control_path:
        temp_dir = tempfile.mkdtemp(prefix="ga467-sim-")
        control_path = os.path.join(temp_dir, "control.sock")
    try:
        with SimRunner(Ga467Sim(card), control_path=control_path, link_path=args.link) as runner:

            def _stop(_signum: int, _frame: FrameType | None) -> None:
                runner.request_stop()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            sys.stdout.write(f"{runner.url}\ncontrol {control_path}\n")
            sys.stdout.flush()
            log.info("serving on %s (card: %s)", runner.url, card)
            runner.serve(parent_pid=parent_pid)
            log.info("stopping")
    except OSError as exc:
        print(f"ga467-sim: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(temp_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
