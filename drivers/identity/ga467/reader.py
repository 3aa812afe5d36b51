"""The host side of a GA 467 reader: find card, select card, read text + photo, and the SAM.

    with Ga467Reader(Ga467Settings(url="/dev/ttyUSB0"), hasher) as reader:
        identity = reader.read(timeout_s=10)   # polls until a card is on the reader

The port is opened with ``serial.serial_for_url``, so a simulator's pty, ``loop://`` and
``spy://`` need no code change. A garbled, short or missing reply, or an SW3 saying our command
arrived damaged, is retried up to ``retries`` times by starting the card sequence again. A
card-level status (read failed, wrong card) is raised at once: the person must place the card
again, and the kiosk says so. When the port goes away (USB unplugged) the call raises
``ReaderOffline`` and the next call opens the port again.

Privacy: the reply to ``30 01`` holds the name and ID number. It is never logged nor put in an
exception; the photo is dropped unread; the text block is parsed, hashed and masked, and only the
``Identity`` leaves this module.
"""

from __future__ import annotations

import contextlib
import logging
import math
import termios
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import serial

from drivers.identity.errors import ReaderOffline, ReaderTimeout
from drivers.identity.ga467 import status
from drivers.identity.ga467.codec import (
    FrameParser,
    Ga467FrameError,
    Reply,
    ShortReply,
    build_request,
    parse_reply,
)
from drivers.identity.ga467.settings import Ga467Settings
from drivers.identity.ga467.status import Ga467StatusError
from drivers.identity.ga467.textblock import TEXT_BLOCK_LEN, CardDataInvalid, parse_text_block
from drivers.identity.types import Identity, IdentitySource
from hallkiosk.privacy import IdentityHasher, PrivacyError, mask_id_number, mask_name

log = logging.getLogger(__name__)

T = TypeVar("T")
Command = tuple[int, int]

SAM_STATUS: Command = (0x11, 0xFF)
SAM_ID: Command = (0x12, 0xFF)
FIND_CARD: Command = (0x20, 0x01)
SELECT_CARD: Command = (0x20, 0x02)
READ_TEXT_PHOTO: Command = (0x30, 0x01)

# what a port raises when the adapter or pty goes away (termios.error is no OSError)
LINK_ERRORS = (serial.SerialException, OSError, termios.error)
# one blocking read waits at most this long, so deadlines are kept without touching termios
READ_SLICE_S = 0.02


def open_serial(url: str, baud: int) -> Any:
    return serial.serial_for_url(
        url,
        baudrate=baud,
        bytesize=serial.EIGHTBITS,
        parity=serial.PARITY_NONE,
        stopbits=serial.STOPBITS_ONE,
        timeout=READ_SLICE_S,
        write_timeout=1.0,
    )


def format_sam_id(data: bytes) -> str:
    """The SAM id as SDKs print it: ``05.01-20230101-0000000001-2345678901``."""
    if len(data) != 16:
        return data.hex().upper() or "unknown"
    parts = [int.from_bytes(data[a:b], "little") for a, b in ((0, 2), (2, 4), (4, 8), (8, 12))]
    last = int.from_bytes(data[12:16], "little")
    return f"{parts[0]:02d}.{parts[1]:02d}-{parts[2]:08d}-{parts[3]:010d}-{last:010d}"


def _name(command: Command) -> str:
    return f"{command[0]:02X} {command[1]:02X}"


class Ga467Reader:
    """Not for use from several threads at once: calls are serialised by a lock."""

    def __init__(self, settings: Ga467Settings, hasher: IdentityHasher) -> None:
        self.settings = settings
        self._hasher = hasher
        self._port: Any = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._parser = FrameParser()

    # -- lifecycle ------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the port now (the first command would otherwise); ``ReaderOffline`` if absent."""
        with self._lock:
            self._closing.clear()
            self._port_or_open()

    def close(self) -> None:
        """Release the port. A ``read`` polling in another thread stops with ``ReaderOffline``."""
        self._closing.set()
        with self._lock:
            self._drop_port()

    def __enter__(self) -> Ga467Reader:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- public API -----------------------------------------------------------------------------

    def sam_status(self) -> str:
        """Check the SAM (``11 FF``) and return its id (``12 FF``); typed errors otherwise."""
        with self._lock:
            self._closing.clear()
            self._with_retries(lambda: self._checked(SAM_STATUS, "SAM status"))
            reply = self._with_retries(lambda: self._checked(SAM_ID, "read SAM id"))
            return format_sam_id(reply.data)

    def read(self, timeout_s: float) -> Identity:
        """Wait up to ``timeout_s`` for a card, then read it.

        Raises ``NoCard`` (``CardNotFound``) when no card came in time, ``CardReadFailed`` /
        ``CardInvalid`` subclasses for a card that could not be read or holds bad data,
        ``ReaderTimeout`` / ``Ga467FrameError`` when the reader stops answering sensibly, and
        ``ReaderOffline`` when the port is gone.
        """
        if not math.isfinite(timeout_s) or timeout_s < 0:
            raise ValueError("timeout_s must be a finite number >= 0")
        with self._lock:
            self._closing.clear()
            deadline = time.monotonic() + timeout_s
            block = self._with_retries(lambda: self._wait_and_read(deadline))
            return self._identity(block)

    # -- the card sequence ----------------------------------------------------------------------

    def _wait_and_read(self, deadline: float) -> bytes:
        poll_s = self.settings.poll_interval_ms / 1000
        while True:
            reply = self._exchange(FIND_CARD, self.settings.reply_timeout_ms)
            if reply.sw3 != 0x80:
                status.check(reply.sw3, "find card", accept=frozenset({status.SW3_FIND_OK}))
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise status.status_error(reply.sw3, "find card")
            if self._closing.wait(min(poll_s, remaining)):
                raise ReaderOffline("the reader was closed while waiting for a card")
        self._checked(SELECT_CARD, "select card")
        reply = self._checked(READ_TEXT_PHOTO, "read text+photo")
        return _text_block_of(reply)

    def _identity(self, block: bytes) -> Identity:
        text = parse_text_block(block)
        try:
            id_hash = self._hasher.hash_id_number(text.id_number)
        except PrivacyError:
            raise CardDataInvalid("ID number", "refused by the identity hasher") from None
        identity = Identity(
            source=IdentitySource.GA467,
            id_hash=id_hash,
            id_masked=mask_id_number(text.id_number),
            name_masked=mask_name(text.name),
            birth_date=text.birth_date,
        )
        log.debug("card read: %s", identity.describe())
        return identity

    def _checked(self, command: Command, what: str) -> Reply:
        timeout_ms = (
            self.settings.read_reply_timeout_ms
            if command == READ_TEXT_PHOTO
            else self.settings.reply_timeout_ms
        )
        reply = self._exchange(command, timeout_ms)
        status.check(reply.sw3, what)
        return reply

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt``; after a transient failure run it again, ``retries`` times at most."""
        for tries_left in range(self.settings.retries, -1, -1):
            try:
                return attempt()
            except (Ga467FrameError, ReaderTimeout, Ga467StatusError) as exc:
                # a card-level status (no card included) is for the person, not for a resend
                if (isinstance(exc, Ga467StatusError) and not exc.retryable) or not tries_left:
                    raise
                log.warning("GA 467 reader: %s; trying again (%d left)", exc, tries_left)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    # -- the wire -------------------------------------------------------------------------------

    def _exchange(self, command: Command, timeout_ms: int) -> Reply:
        """Send one command and return the first valid frame; never logs reply data."""
        port = self._port_or_open()
        name = _name(command)
        parser = self._parser
        parser.reset()
        parser.discarded = 0
        last_error: Ga467FrameError | None = None
        try:
            port.reset_input_buffer()  # stale bytes belong to an abandoned exchange
            port.write(build_request(*command))
            deadline = time.monotonic() + timeout_ms / 1000
            gap_s = self.settings.byte_gap_ms / 1000
            last_rx = 0.0
            while True:
                try:
                    body = parser.next_body()
                except Ga467FrameError as exc:
                    log.debug("GA 467 %s: skipped %s", name, exc)
                    last_error = exc
                    continue
                if body is not None:
                    log.debug("GA 467 %s -> %s", name, status.describe(body[2]))
                    return parse_reply(body)
                now = time.monotonic()
                if now >= deadline:
                    break
                # a reply, once started, comes in one burst: a pause after bytes that made no
                # frame means it is over, and waiting out the whole timeout would gain nothing
                if last_rx and now - last_rx >= gap_s:
                    break
                chunk = port.read(max(1, port.in_waiting))
                if chunk:
                    last_rx = time.monotonic()
                    parser.feed(chunk)
        except LINK_ERRORS as exc:
            self._drop_port()
            raise ReaderOffline(f"GA 467 reader on {self.settings.url}: {name}: {exc}") from exc
        finally:
            held, expected = parser.pending, parser.expected()
            parser.reset()
        if expected is not None:
            raise ShortReply(f"{name}: reply stopped after {held} of {expected} bytes")
        if last_error is not None:
            raise last_error
        if parser.discarded:
            raise Ga467FrameError(f"{name}: {parser.discarded} bytes of noise and no frame")
        raise ReaderTimeout(f"{name}: no reply within {timeout_ms} ms")

    def _port_or_open(self) -> Any:
        if self._port is None:
            try:
                self._port = open_serial(self.settings.url, self.settings.baud)
            except (*LINK_ERRORS, ValueError) as exc:
                raise ReaderOffline(
                    f"GA 467 reader: cannot open {self.settings.url}: {exc}"
                ) from exc
        return self._port

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(*LINK_ERRORS):
                port.close()


def _text_block_of(reply: Reply) -> bytes:
    """The text block of a ``30 01`` reply: text length, photo length, text, photo."""
    data = reply.data
    if len(data) < 4:
        raise Ga467FrameError(f"read text+photo: {len(data)} data bytes, no length fields")
    text_len = int.from_bytes(data[0:2], "big")
    photo_len = int.from_bytes(data[2:4], "big")
    if text_len != TEXT_BLOCK_LEN or len(data) != 4 + text_len + photo_len:
        raise Ga467FrameError(
            f"read text+photo: lengths say text {text_len} + photo {photo_len}, "
            f"the frame holds {len(data) - 4}"
        )
    return data[4 : 4 + TEXT_BLOCK_LEN]  # the photo is not kept
