"""A thin, typed layer over pyscard's ``smartcard.scard`` (the PC/SC C API), imported lazily.

Every failing return code becomes one of our errors, so the reader and the watch decide on
kinds, not numbers: the service is gone (re-establish the context), the reader is gone, the
card is gone, the chip hung (cycle the field), or the call was cancelled.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from drivers.identity.errors import CardReadFailed, IdentityReaderError, NoCard
from drivers.identity.pcsc.errors import ChipHung, NoReader, PcscServiceDown, PyscardMissing

PNP_READER = "\\\\?PnP?\\Notification"  # pseudo reader: changes when readers come or go
_MASK = 0xFFFFFFFF


class Cancelled(IdentityReaderError):
    """SCardCancel woke a wait: the watch is stopping."""

    code = "pcsc_cancelled"


@dataclass(frozen=True)
class ReaderState:
    """One reader's state as SCardGetStatusChange reports it."""

    name: str
    event_state: int  # SCARD_STATE_* bits; the high 16 bits count card events (pcsc-lite)
    atr: bytes

    @property
    def event_count(self) -> int:
        return (self.event_state >> 16) & 0xFFFF


class Scard:
    """The PC/SC calls the backend needs. Contexts are ints; one per thread of use."""

    def __init__(self) -> None:
        try:
            self.s: Any = importlib.import_module("smartcard.scard")
        except ImportError:
            raise PyscardMissing("pyscard (smartcard.scard) is not installed") from None
        s = self.s
        self.STATE_CHANGED: int = s.SCARD_STATE_CHANGED
        self.STATE_PRESENT: int = s.SCARD_STATE_PRESENT
        self.STATE_MUTE: int = s.SCARD_STATE_MUTE
        self.STATE_GONE: int = (
            s.SCARD_STATE_UNKNOWN | s.SCARD_STATE_UNAVAILABLE | s.SCARD_STATE_IGNORE
        )
        self.STATE_UNAWARE: int = s.SCARD_STATE_UNAWARE
        self._service = {
            c & _MASK
            for c in (
                s.SCARD_E_NO_SERVICE,
                s.SCARD_E_SERVICE_STOPPED,
                s.SCARD_F_COMM_ERROR,  # "RPC transport error": pcscd died under a call
                s.SCARD_E_INVALID_HANDLE,  # a context from before a pcscd restart
            )
        }
        self._reader_gone = {
            c & _MASK
            for c in (
                s.SCARD_E_NO_READERS_AVAILABLE,
                s.SCARD_E_UNKNOWN_READER,
                s.SCARD_E_READER_UNAVAILABLE,
            )
        }
        self._card_gone = {c & _MASK for c in (s.SCARD_E_NO_SMARTCARD, s.SCARD_W_REMOVED_CARD)}
        self._hung = {
            c & _MASK
            for c in (
                s.SCARD_W_UNRESPONSIVE_CARD,
                s.SCARD_W_UNPOWERED_CARD,
                s.SCARD_E_NOT_TRANSACTED,
                s.SCARD_E_TIMEOUT,
                s.SCARD_F_UNKNOWN_ERROR,
                s.SCARD_E_PROTO_MISMATCH,
            )
        }
        self.TIMEOUT = s.SCARD_E_TIMEOUT & _MASK
        self.CANCELLED = s.SCARD_E_CANCELLED & _MASK
        self.RESET_CARD = s.SCARD_W_RESET_CARD & _MASK

    def error(self, where: str, hresult: int, *, transmit: bool = False) -> IdentityReaderError:
        code = hresult & _MASK
        text = f"{where}: {self.s.SCardGetErrorMessage(hresult)} (0x{code:08X})"
        if code in self._service:
            return PcscServiceDown(text)
        if code in self._reader_gone:
            return NoReader(text)
        if code in self._card_gone:
            return NoCard(text)
        if code == self.CANCELLED:
            return Cancelled(text)
        if transmit and code in self._hung:
            return ChipHung(text)
        return CardReadFailed(text)

    def _check(self, where: str, hresult: int, *, transmit: bool = False) -> None:
        if hresult & _MASK:
            raise self.error(where, hresult, transmit=transmit)

    # -- context ----------------------------------------------------------------------------

    def establish(self) -> int:
        hresult, context = self.s.SCardEstablishContext(self.s.SCARD_SCOPE_USER)
        self._check("SCardEstablishContext", hresult)
        return int(context)

    def release(self, context: int) -> None:
        self.s.SCardReleaseContext(context)  # errors ignored: the context may be long dead

    def cancel(self, context: int) -> None:
        self.s.SCardCancel(context)

    def list_readers(self, context: int) -> list[str]:
        hresult, readers = self.s.SCardListReaders(context, [])
        if hresult & _MASK == self.s.SCARD_E_NO_READERS_AVAILABLE & _MASK:
            return []
        self._check("SCardListReaders", hresult)
        return [str(name) for name in readers]

    def get_status_change(
        self, context: int, timeout_ms: int, states: list[tuple[str, int]]
    ) -> list[ReaderState] | None:
        """New states, or None on timeout. The CHANGED bit is left in ``event_state``."""
        hresult, new_states = self.s.SCardGetStatusChange(context, timeout_ms, states)
        if hresult & _MASK == self.TIMEOUT:
            return None
        self._check("SCardGetStatusChange", hresult)
        return [ReaderState(str(n), int(e), bytes(a)) for n, e, a in new_states]

    # -- card -------------------------------------------------------------------------------

    def connect(self, context: int, reader: str) -> tuple[int, int]:
        s = self.s
        hresult, card, protocol = s.SCardConnect(
            context, reader, s.SCARD_SHARE_SHARED, s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1
        )
        self._check("SCardConnect", hresult, transmit=True)
        return int(card), int(protocol)

    def reconnect(self, card: int, *, unpower: bool) -> int:
        """Cold (unpower: field off and on) or warm reset of the card; the new protocol."""
        s = self.s
        hresult, protocol = s.SCardReconnect(
            card,
            s.SCARD_SHARE_SHARED,
            s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1,
            s.SCARD_UNPOWER_CARD if unpower else s.SCARD_RESET_CARD,
        )
        self._check("SCardReconnect", hresult, transmit=True)
        return int(protocol)

    def disconnect(self, card: int) -> None:
        self.s.SCardDisconnect(card, self.s.SCARD_LEAVE_CARD)

    def begin(self, card: int) -> int:
        """SCardBeginTransaction; the raw result, so a reset card can be reconnected first."""
        return int(self.s.SCardBeginTransaction(card)) & _MASK

    def end(self, card: int) -> None:
        self.s.SCardEndTransaction(card, self.s.SCARD_LEAVE_CARD)

    def transmit(self, card: int, protocol: int, command: bytes) -> bytes:
        hresult, response = self.s.SCardTransmit(card, protocol, list(command))
        self._check("SCardTransmit", hresult, transmit=True)
        return bytes(response)
