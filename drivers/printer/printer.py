"""``TicketPrinter``: check the paper, print a layout, and refuse loudly when it cannot.

A ticket counts only if ``print_layout`` returned. It raises before sending anything when the
paper is out, the cover open or the printer silent, and raises ``PrintFailed`` when the job
breaks off or the printer reports a problem right after it. Queue systems that issued the
ticket before knowing it was printed had phantom tickets in the queue; this one does not.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from drivers.printer.errors import (
    PaperNearEnd,
    PaperOut,
    PrinterBadReply,
    PrinterCoverOpen,
    PrinterError,
    PrinterOffline,
    PrintFailed,
)
from drivers.printer.escpos_render import EscposRenderer
from drivers.printer.layout import Layout
from drivers.printer.profiles import PrinterProfile
from drivers.printer.settings import PrinterSettings
from drivers.printer.sim.model import SimPrinter
from drivers.printer.status import (
    BIT_COVER_OPEN,
    BIT_CUTTER_ERROR,
    BIT_ERROR,
    BIT_OFFLINE,
    DLE_EOT_ERROR_CAUSE,
    DLE_EOT_OFFLINE_CAUSE,
    DLE_EOT_PAPER,
    DLE_EOT_PRINTER,
    PaperStatus,
    PrinterState,
    decode_paper,
    is_status_byte,
)
from drivers.printer.transports import Transport, open_transport

log = logging.getLogger(__name__)

TransportFactory = Callable[[], Transport]


@dataclass(frozen=True)
class PrintReport:
    bytes_written: int
    # paper as last seen (after the job when verify_after_print); None if never asked
    paper: PaperStatus | None
    qr: Literal["native", "raster", "none"]
    warnings: tuple[PaperNearEnd, ...] = ()


class TicketPrinter(ABC):
    """The interface the kiosk uses; ``backend`` in the settings picks the link."""

    profile: PrinterProfile

    @abstractmethod
    def status(self) -> PaperStatus:
        """Paper state. Raises PrinterOffline / PrinterCoverOpen / PrinterError otherwise."""

    @abstractmethod
    def print_layout(self, layout: Layout) -> PrintReport:
        """Print or raise (PaperOut, PaperNearEnd by policy, PrinterOffline, PrintFailed)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EscposTicketPrinter(TicketPrinter):
    """ESC/POS over any transport. Thread-safe: status polls and prints take turns."""

    def __init__(
        self,
        settings: PrinterSettings,
        *,
        transport_factory: TransportFactory | None = None,
        sim: SimPrinter | None = None,
    ) -> None:
        self.settings = settings
        self.profile = settings.resolved_profile()
        self.renderer = EscposRenderer(self.profile)
        # backend "sim": the simulator lives in this process; its hooks are on ``self.sim``
        self.sim = sim if sim is not None else (SimPrinter() if settings.backend == "sim" else None)
        self._factory = transport_factory or (lambda: open_transport(settings, self.sim))
        self._transport: Transport | None = None
        self._lock = threading.Lock()

    # -- public -----------------------------------------------------------------------------

    def render(self, layout: Layout) -> bytes:
        return self.renderer.render(layout)

    def read_state(self) -> PrinterState:
        """Ask DLE EOT 1 (and 2, 3 when offline), then DLE EOT 4. Raises PrinterOffline when
        the printer does not answer, PrinterBadReply when the answer is not a status byte."""
        with self._lock:
            return self._read_state()

    def status(self) -> PaperStatus:
        with self._lock:
            state = self._read_state()
        if state.paper is not PaperStatus.OUT:
            _raise_unusable(state)
        return state.paper

    def print_layout(self, layout: Layout) -> PrintReport:
        # render first: a layout that cannot be printed costs no paper and no queue number
        data = self.renderer.render(layout)
        qr: Literal["native", "raster", "none"] = "none"
        if layout.qr_payloads():
            qr = "native" if self.profile.native_qr else "raster"
        warnings: list[PaperNearEnd] = []
        paper: PaperStatus | None = None
        with self._lock:
            if self.settings.check_paper_before_print:
                state = self._read_state()
                _raise_unusable(state)
                paper = state.paper
                if paper is PaperStatus.NEAR_END:
                    near_end = PaperNearEnd("paper near end before printing")
                    if self.settings.near_end == "refuse":
                        raise near_end
                    warnings.append(near_end)
                    log.warning("printer paper near end")
            try:
                self._link().write(data)
            except PrinterOffline as exc:
                self._drop_link()
                raise PrintFailed(f"{layout.kind}: link failed while printing: {exc}") from exc
            log.info("printed %s: %d bytes, qr %s", layout.kind, len(data), qr)
            if self.settings.verify_after_print:
                paper = self._verify_after(layout.kind)
                if paper is PaperStatus.NEAR_END and not warnings:
                    warnings.append(PaperNearEnd("paper near end after printing"))
        return PrintReport(len(data), paper, qr, tuple(warnings))

    def close(self) -> None:
        with self._lock:
            self._drop_link()

    # -- internals (lock held) --------------------------------------------------------------

    def _link(self) -> Transport:
        if self._transport is None:
            self._transport = self._factory()
        return self._transport

    def _drop_link(self) -> None:
        # the next call reopens it: a power-cycled printer or re-plugged adapter comes back
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _verify_after(self, kind: str) -> PaperStatus:
        try:
            state = self._read_state()
        except PrinterError as exc:
            raise PrintFailed(f"{kind}: no printer status after printing: {exc}") from exc
        if state.paper is PaperStatus.OUT:
            raise PrintFailed(f"{kind}: paper ran out while printing")
        try:
            _raise_unusable(state)
        except PrinterError as exc:
            raise PrintFailed(f"{kind}: printer reports a problem after printing: {exc}") from exc
        return state.paper

    def _query(self, request: bytes) -> int:
        n = request[-1]
        timeout_s = self.settings.status_timeout_ms / 1000
        bad: int | None = None
        for _ in range(self.settings.status_retries + 1):
            try:
                value = self._link().query(request, timeout_s)
            except PrinterOffline:
                self._drop_link()
                raise
            if value is None:
                continue
            if is_status_byte(value):
                return value
            bad = value
        if bad is not None:
            raise PrinterBadReply(
                f"reply {bad:02x} to DLE EOT {n} is not a status byte "
                "(wrong baud rate, wrong device, or TX looped to RX?)"
            )
        raise PrinterOffline(
            f"no reply to DLE EOT {n} within {self.settings.status_timeout_ms} ms "
            f"({self.settings.status_retries + 1} tries)"
        )

    def _read_state(self) -> PrinterState:
        raw: list[tuple[int, int]] = []
        printer = self._query(DLE_EOT_PRINTER)
        raw.append((1, printer))
        online = not printer & BIT_OFFLINE
        cover_open = error = cutter_error = False
        if not online:
            cause = self._query(DLE_EOT_OFFLINE_CAUSE)
            raw.append((2, cause))
            cover_open = bool(cause & BIT_COVER_OPEN)
            error = bool(cause & BIT_ERROR)
            if error:
                detail = self._query(DLE_EOT_ERROR_CAUSE)
                raw.append((3, detail))
                cutter_error = bool(detail & BIT_CUTTER_ERROR)
        paper_byte = self._query(DLE_EOT_PAPER)
        raw.append((4, paper_byte))
        paper = decode_paper(paper_byte, near_end_sensor=self.profile.near_end_sensor)
        return PrinterState(online, paper, cover_open, error, cutter_error, tuple(raw))


def _raise_unusable(state: PrinterState) -> None:
    """The error for a state that cannot print, most specific first."""
    if state.paper is PaperStatus.OUT:
        raise PaperOut("paper sensor reports paper end")
    if state.cover_open:
        raise PrinterCoverOpen("printer reports its cover open")
    if state.error:
        what = "cutter error" if state.cutter_error else "printer error"
        raise PrinterError(f"printer reports an error ({what})")
    if not state.online:
        raise PrinterOffline("printer reports itself offline")


def open_printer(
    settings: PrinterSettings, *, sim: SimPrinter | None = None
) -> EscposTicketPrinter:
    """The printer the settings describe. The link opens on first use, so this never blocks."""
    return EscposTicketPrinter(settings, sim=sim)
