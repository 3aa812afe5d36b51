"""Serve virtual cards to vpcd over TCP, plus a JSON control socket, in one selector loop.

vpcd's side (vsmartcard ``vpcd.c``): pcscd's reader listens on TCP (port 35963 for the first
"Virtual PCD" reader by default). Every message either way is a 2-byte big-endian length and a
payload. A 1-byte payload from vpcd is a control message: ``00`` power off, ``01`` power on,
``02`` reset (none answered), ``04`` get ATR (answered with the ATR). Anything longer is a
C-APDU, answered with the R-APDU.

Presence is the TCP connection itself. pcscd polls each reader about every 400 ms by asking for
the ATR; when the connection is closed (``recv`` returns 0) vpcd closes its end and reports the
card absent; a new connection is accepted at a later poll and the card is present again. An
empty ATR answer would also make vpcd drop the connection, so "removed" here always means
"connection closed". While a card is inserted and the connection drops (pcscd restarted), the
runner reconnects every ``retry_interval_s``: the card is still lying on the reader.

Found on Debian 12 (vsmartcard-vpcd 3.3): a connection closed and reopened within one presence
poll is never reported, not even as an ATR change; pcscd keeps the old card's ATR while the new
card answers. So the runner keeps a removed card out of the field for at least
``reinsert_gap_s`` (longer than pcscd's 400 ms poll) before it connects again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import stat
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from drivers.identity.vcard.cards import CARD_KINDS, CardKind, CardLog, StaffCard, VirtualCard
from drivers.identity.vcard.control import MAX_LINE_BYTES

log = logging.getLogger(__name__)

DEFAULT_VPCD_PORT = 35963
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0x00, 0x01, 0x02, 0x04
PARENT_CHECK_INTERVAL_S = 0.2
MAX_WAIT_S = 0.05
REINSERT_GAP_S = 0.6  # > pcscd's 400 ms presence poll, so every removal is seen


class VcardRunner:
    """Owns the vpcd link, the control socket and the loop. One thread serves."""

    def __init__(
        self,
        cards: Mapping[CardKind, VirtualCard],
        card: CardKind,
        control_path: str,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_VPCD_PORT,
        inserted: bool = True,
        retry_interval_s: float = 0.05,
        reinsert_gap_s: float = REINSERT_GAP_S,
    ) -> None:
        self.cards = dict(cards)
        self.log = CardLog()
        for each in self.cards.values():
            each.log = self.log  # one timeline across card switches
        self.card_kind = card
        self.control_path = control_path
        self.host = host
        self.port = port
        self.inserted = inserted
        self.retry_interval_s = retry_interval_s
        self.reinsert_gap_s = reinsert_gap_s
        self._removed_at_s = float("-inf")
        self.connects = 0
        self.drops = 0  # connections vpcd closed on us (pcscd stopped or restarted)
        self.apdus = 0
        self._link: socket.socket | None = None
        self._rx = bytearray()
        self._next_try_s = 0.0
        self._stop_requested = False
        self._selector = selectors.DefaultSelector()
        self._server = _bind_unix(control_path)
        self._selector.register(self._server, selectors.EVENT_READ, self._on_accept)

    @property
    def card(self) -> VirtualCard:
        return self.cards[self.card_kind]

    def __enter__(self) -> VcardRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def request_stop(self) -> None:
        """Safe from a signal handler: the loop notices within one wait."""
        self._stop_requested = True

    def serve(self, *, parent_pid: int | None = None) -> None:
        next_check_s = time.monotonic()
        while not self._stop_requested:
            self.step()
            if parent_pid is not None and time.monotonic() >= next_check_s:
                next_check_s = time.monotonic() + PARENT_CHECK_INTERVAL_S
                if os.getppid() != parent_pid:  # re-parented: our parent died
                    log.warning("parent process %d is gone, stopping", parent_pid)
                    self._stop_requested = True

    def step(self) -> None:
        now = time.monotonic()
        if (
            self.inserted
            and self._link is None
            and now >= self._next_try_s
            and now >= self._removed_at_s + self.reinsert_gap_s
        ):
            self._connect()
        for key, _mask in self._selector.select(MAX_WAIT_S):
            handler: Callable[[], None] = key.data
            handler()

    def close(self) -> None:
        self._disconnect()
        for key in list(self._selector.get_map().values()):
            if key.fileobj is not self._server:
                with contextlib.suppress(OSError):
                    key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._server.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.control_path)

    # -- card presence ----------------------------------------------------------------------

    def insert(self, card: CardKind | None = None) -> None:
        if card is not None and card != self.card_kind:
            self.remove()
            self.card_kind = card
        if not self.inserted:
            self.log.add("inserted", self.card_kind.encode())
        self.inserted = True
        self._next_try_s = 0.0

    def remove(self) -> None:
        if self.inserted:
            self.log.add("removed", self.card_kind.encode())
            self._removed_at_s = time.monotonic()
        self.inserted = False
        self._disconnect()
        self.card.powered = False

    def status(self) -> dict[str, Any]:
        return {
            "card": self.card_kind,
            "inserted": self.inserted,
            "connected": self._link is not None,  # TCP up; vpcd accepts it at its next poll
            "connects": self.connects,
            "drops": self.drops,
            "apdus": self.apdus,
            "powered": self.card.powered,
            "hung": self.card.hung,
            "atr": self.card.atr.hex().upper(),
            "log_total": self.log.total,
        }

    def _connect(self) -> None:
        try:
            link = socket.create_connection((self.host, self.port), timeout=1.0)
        except OSError as exc:
            # pcscd (and so vpcd's listener) is not up yet: try again shortly
            self._next_try_s = time.monotonic() + self.retry_interval_s
            log.debug("vpcd %s:%d not reachable: %s", self.host, self.port, exc)
            return
        link.settimeout(2.0)  # writes are a few bytes; a stuck vpcd must not hang us forever
        # without it Nagle holds each R-APDU until vpcd's delayed ACK: ~40 ms per APDU
        link.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._link = link
        self._rx.clear()
        self.connects += 1
        self._selector.register(link, selectors.EVENT_READ, self._on_link)
        log.info("%s card in the field (connection %d)", self.card_kind, self.connects)

    def _quick_ack(self) -> None:
        if self._link is not None and hasattr(socket, "TCP_QUICKACK"):
            with contextlib.suppress(OSError):
                self._link.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _disconnect(self) -> None:
        if self._link is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._link)
        with contextlib.suppress(OSError):
            self._link.close()
        self._link = None
        self._rx.clear()

    def _on_link(self) -> None:
        assert self._link is not None
        try:
            data = self._link.recv(65536)
            # vpcd writes the 2-byte length and the payload in two sends; with Nagle on its
            # side the payload waits for our ACK of the length, which Linux delays ~40 ms
            # unless told otherwise (and the flag does not stick: set it after every read)
            self._quick_ack()
        except OSError:
            data = b""
        if not data:
            log.info("vpcd closed the connection")
            self.drops += 1
            self._disconnect()
            self.card.powered = False
            self._next_try_s = time.monotonic() + self.retry_interval_s
            return
        self._rx += data
        while len(self._rx) >= 2:
            size = int.from_bytes(self._rx[:2], "big")
            if len(self._rx) < 2 + size:
                break
            payload = bytes(self._rx[2 : 2 + size])
            del self._rx[: 2 + size]
            reply = self._handle(payload)
            if reply is not None and self._link is not None:
                try:
                    self._link.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    self.drops += 1
                    self._disconnect()
                    return

    def _handle(self, payload: bytes) -> bytes | None:
        card = self.card
        if len(payload) == 1:
            code = payload[0]
            if code == CTRL_ATR:
                self.log.add("atr")
                return card.atr
            if code == CTRL_OFF:
                card.power_off()
            elif code == CTRL_ON:
                card.power_on()
            elif code == CTRL_RESET:
                card.reset()
            else:
                log.warning("unknown vpcd control byte %02X", code)
            return None
        self.apdus += 1
        reply = card.process(payload)
        log.debug("apdu %s -> %s", payload.hex(" "), reply.hex(" "))
        return reply

    # -- control socket ---------------------------------------------------------------------

    def _on_accept(self) -> None:
        conn, _ = self._server.accept()
        conn.setblocking(False)
        buffer = bytearray()

        def on_readable() -> None:
            try:
                chunk = conn.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if chunk:
                buffer.extend(chunk)
            if b"\n" in buffer or not chunk or len(buffer) > MAX_LINE_BYTES:
                line = bytes(buffer.split(b"\n", 1)[0])
                answer = self._answer(line) if line else None
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(conn)
                with contextlib.suppress(OSError):
                    if answer is not None:
                        conn.setblocking(True)
                        conn.settimeout(2.0)
                        conn.sendall(answer)
                    conn.close()

        self._selector.register(conn, selectors.EVENT_READ, on_readable)

    def _answer(self, line: bytes) -> bytes:
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or not isinstance(request.get("hook"), str):
                raise ValueError("request must be an object with a 'hook' string")
            args = request.get("args", {})
            if not isinstance(args, dict):
                raise ValueError("'args' must be an object")
            response: dict[str, Any] = {"ok": True, "result": self._call(request["hook"], args)}
        except (ValueError, TypeError) as exc:
            response = {"ok": False, "error": str(exc) or type(exc).__name__}
        except Exception as exc:  # a bug in a hook must not take the card down
            response = {"ok": False, "error": f"internal error: {exc!r}"}
        return json.dumps(response).encode() + b"\n"

    def _call(self, hook: str, args: dict[str, Any]) -> object:
        allowed = {"insert": {"card"}, "hang": {"hung"}, "log": {"since"}}.get(hook, set())
        if set(args) - allowed:
            raise ValueError(f"{hook}: unexpected arguments {sorted(set(args) - allowed)}")
        match hook:
            case "insert":
                card = args.get("card")
                if card is not None and card not in CARD_KINDS:
                    raise ValueError(f"card must be one of {CARD_KINDS}")
                if card is not None and card not in self.cards:
                    raise ValueError(f"no {card} card was configured")
                self.insert(card)
            case "remove":
                self.remove()
            case "hang":
                hung = args.get("hung", True)
                if not isinstance(hung, bool):
                    raise ValueError("hang: 'hung' must be true or false")
                self.card.hung = hung
            case "unblock":
                if not isinstance(self.card, StaffCard):
                    raise ValueError("unblock: the current card is not a staff card")
                self.card.unblock()
            case "status":
                return self.status()
            case "log":
                since = args.get("since", 0)
                if isinstance(since, bool) or not isinstance(since, int):
                    raise ValueError("log: 'since' must be an integer")
                return [[kind, data.hex().upper()] for kind, data in self.log.since(since)]
            case _:
                raise ValueError(f"unknown hook {hook!r}")
        return None


def _bind_unix(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)  # a stale socket from a killed run
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(8)
    server.setblocking(False)
    return server
