"""One actor thread per bus: the only code that touches the serial port.

It serialises frames (opens before polls), flushes stale input before each command, keeps the
inter-frame gap, and applies timeouts and retries. An open whose reply is lost is never resent
blindly: the actor first asks the board for that lock's state, and only resends if it is still
locked, so a lost reply cannot fire one lock twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import queue
import termios
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import serial

from drivers.lockboard.codec import Codec, Parsed
from drivers.lockboard.codec_8a80 import Codec8A80
from drivers.lockboard.codec_kerong import CodecKerong
from drivers.lockboard.errors import BoardOffline, BoardTimeout, FrameError, LockboardError
from drivers.lockboard.settings import BOARD_RANGE, CHANNEL_RANGE, BusSettings
from drivers.lockboard.types import BoardStatus, OpenReply

log = logging.getLogger(__name__)

T = TypeVar("T")
# what a serial port raises when the adapter or pty goes away (termios.error is no OSError)
LINK_ERRORS = (serial.SerialException, OSError, termios.error)
PRIORITY_OPEN = 0
PRIORITY_STATUS = 1

SerialFactory = Callable[..., Any]


def codec_for(protocol: str) -> Codec:
    if protocol == "8a80":
        return Codec8A80()
    if protocol == "kerong":
        return CodecKerong()
    raise LockboardError(f"unknown lock-board protocol {protocol!r}")


def open_serial(url: str, baud: int) -> Any:
    """Open any pyserial URL; ``sim://`` resolves to the in-process simulator."""
    from drivers.lockboard import protocol_sim  # noqa: PLC0415 - registers sim:// lazily

    protocol_sim.register()
    return serial.serial_for_url(
        url, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=0.1, write_timeout=1.0
    )


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    run: Callable[[], Any] = field(compare=False)
    future: Future[Any] = field(compare=False)


class LockBus:
    def __init__(
        self,
        settings: BusSettings,
        *,
        serial_factory: SerialFactory = open_serial,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.codec = codec_for(settings.protocol)
        self._serial_factory = serial_factory
        self._monotonic = monotonic
        self._port: Any = None
        self._jobs: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._last_wire_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"lockbus-{self.settings.name}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._jobs.put(_Job(-1, next(self._seq), lambda: None, Future()))
            self._thread.join(timeout=5)
            self._thread = None
        self._close_port()

    def __enter__(self) -> LockBus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API: futures for asyncio callers, blocking helpers for CLI/tests -------------

    def submit_open(self, board: int, channel: int) -> Future[OpenReply]:
        self._check_address(board, channel)
        return self._submit(PRIORITY_OPEN, lambda: self._open(board, channel))

    def submit_status(self, board: int) -> Future[BoardStatus]:
        self._check_address(board, None)
        return self._submit(PRIORITY_STATUS, lambda: self._status(board))

    def open(self, board: int, channel: int) -> OpenReply:
        return self.submit_open(board, channel).result()

    def read_doors(self, board: int) -> BoardStatus:
        return self.submit_status(board).result()

    def _check_address(self, board: int, channel: int | None) -> None:
        lo, hi = BOARD_RANGE[self.settings.protocol]
        if not lo <= board <= hi:
            raise LockboardError(f"board {board} is outside {lo}-{hi} for {self.settings.protocol}")
        if channel is not None:
            lo, hi = CHANNEL_RANGE[self.settings.protocol]
            if not lo <= channel <= hi:
                raise LockboardError(
                    f"channel {channel} is outside {lo}-{hi} for {self.settings.protocol}"
                )

    def _submit(self, priority: int, run: Callable[[], T]) -> Future[T]:
        if self._stopping.is_set():
            raise BoardOffline(f"bus {self.settings.name} is closed")
        self.start()
        future: Future[T] = Future()
        self._jobs.put(_Job(priority, next(self._seq), run, future))
        return future

    # -- the actor ----------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if self._stopping.is_set():
                if not job.future.done():
                    job.future.set_exception(BoardOffline(f"bus {self.settings.name} is closed"))
                while not self._jobs.empty():
                    left = self._jobs.get_nowait()
                    if not left.future.done():
                        left.future.set_exception(BoardOffline("bus closed"))
                return
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(job.run())
            except LockboardError as exc:
                job.future.set_exception(exc)
            except Exception as exc:  # an actor must survive anything a port can throw
                log.exception("bus %s: unexpected error", self.settings.name)
                job.future.set_exception(LockboardError(f"{type(exc).__name__}: {exc}"))

    def _open(self, board: int, channel: int) -> OpenReply:
        s = self.settings
        frame = self.codec.open_frame(board, channel)
        timeout_s = s.reply_timeout_ms / 1000
        last: LockboardError | None = None
        first_sent_at: float | None = None
        for attempt in range(s.retries + 1):
            if attempt and not s.expect_reply:
                break
            if attempt:
                # The first frame may have fired the lock and only the reply was lost: look first.
                try:
                    if self._channel_open(board, channel):
                        return OpenReply(
                            board,
                            channel,
                            True,
                            True,
                            confirmed_by_status=True,
                            sent_at=first_sent_at or 0.0,
                        )
                except LockboardError as exc:
                    raise BoardTimeout(
                        f"board {board} channel {channel}: no reply to open, and the lock state "
                        f"could not be read to decide a resend ({exc})"
                    ) from exc
            sent_at = self._send(frame)
            first_sent_at = first_sent_at or sent_at
            if not s.expect_reply:
                return OpenReply(board, channel, False, None, sent_at=first_sent_at)
            try:
                reply = self._read_reply(
                    lambda buf: self.codec.parse_open_reply(buf, board, channel, s.feedback_open),
                    timeout_s,
                )
                return dataclasses.replace(reply, sent_at=first_sent_at)
            except (BoardTimeout, FrameError) as exc:
                last = exc
                log.warning(
                    "bus %s: open %d/%d attempt %d: %s", s.name, board, channel, attempt + 1, exc
                )
        assert last is not None
        raise last

    def _channel_open(self, board: int, channel: int) -> bool:
        s = self.settings
        self._send(self.codec.lock_query_frame(board, channel))
        return self._read_reply(
            lambda buf: self.codec.parse_lock_state(buf, board, channel, s.feedback_open),
            s.reply_timeout_ms / 1000,
        )

    def _status(self, board: int) -> BoardStatus:
        last: LockboardError | None = None
        for _ in range(self.settings.retries + 1):
            try:
                return self._status_once(board)
            except (BoardTimeout, FrameError) as exc:
                last = exc
        assert last is not None
        raise last

    def _status_once(self, board: int) -> BoardStatus:
        s = self.settings
        taken_at = self._send(self.codec.status_frame(board))
        status = self._read_reply(
            lambda buf: self.codec.parse_status_reply(buf, board, s.feedback_open),
            s.reply_timeout_ms / 1000,
        )
        return dataclasses.replace(status, taken_at=taken_at)

    # -- the wire ------------------------------------------------------------------------------

    def _port_or_open(self) -> Any:
        if self._port is None:
            try:
                self._port = self._serial_factory(self.settings.url, self.settings.baud)
            except (*LINK_ERRORS, ValueError) as exc:
                raise BoardOffline(
                    f"bus {self.settings.name}: cannot open {self.settings.url}: {exc}"
                ) from exc
        return self._port

    def _close_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*LINK_ERRORS):
                port.close()

    def _send(self, frame: bytes) -> float:
        """Write one frame after the inter-frame gap; returns when it went on the wire."""
        port = self._port_or_open()
        # the gap counts from the last byte on the line, not from when we stopped listening
        wait_s = self._last_wire_at + self.settings.gap_s() - self._monotonic()
        if wait_s > 0:
            time.sleep(wait_s)
        try:
            port.reset_input_buffer()  # stale bytes belong to an earlier, abandoned exchange
            port.write(frame)
        except LINK_ERRORS as exc:
            self._close_port()
            raise BoardOffline(f"bus {self.settings.name}: write failed: {exc}") from exc
        finally:
            self._last_wire_at = self._monotonic()
        return self._last_wire_at

    def _read_reply(self, parse: Callable[[bytes], Parsed[T] | None], timeout_s: float) -> T:
        port = self._port_or_open()
        silence_s = self.settings.silence_s()
        deadline = self._monotonic() + timeout_s
        buf = bytearray()
        best: Parsed[T] | None = None
        try:
            while True:
                if best is not None and not best.may_extend:
                    return best.value
                remaining = deadline - self._monotonic()
                wait_s = silence_s if best is not None else remaining
                if wait_s <= 0:
                    break
                port.timeout = wait_s
                chunk = port.read(max(1, port.in_waiting))
                if not chunk:
                    if best is not None:
                        return best.value  # line silence after a valid frame ends the reply
                    break
                buf += chunk
                self._last_wire_at = self._monotonic()
                best = parse(bytes(buf)) or best
        except LINK_ERRORS as exc:
            self._close_port()
            raise BoardOffline(f"bus {self.settings.name}: read failed: {exc}") from exc
        if buf:
            raise FrameError(f"bus {self.settings.name}: no valid reply in {bytes(buf).hex(' ')}")
        raise BoardTimeout(f"bus {self.settings.name}: no reply within {timeout_s * 1000:.0f} ms")
