"""Byte links to a printer: serial (any pyserial URL), raw TCP, USB, and the in-process simulator.

A transport only moves bytes. ``query`` sends one real-time request and returns the first reply
byte, or None when nothing came within the timeout (the caller decides what silence means).
Link failures (port gone, connection reset) raise ``PrinterOffline``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import termios
from typing import TYPE_CHECKING, Any, Protocol

import serial

from drivers.printer.errors import PrinterOffline
from drivers.printer.settings import PrinterSettings

if TYPE_CHECKING:
    from drivers.printer.sim.model import SimPrinter

log = logging.getLogger(__name__)

# what a serial port raises when the adapter or pty goes away (termios.error is no OSError)
LINK_ERRORS = (serial.SerialException, OSError, termios.error)


class Transport(Protocol):
    def write(self, data: bytes) -> None:
        """Send all of ``data``; return once it has left this host (or raise)."""
        ...

    def query(self, request: bytes, timeout_s: float) -> int | None: ...

    def close(self) -> None: ...


class SerialTransport:
    def __init__(
        self,
        url: str,
        *,
        baud: int,
        flow_control: str = "none",
        write_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        try:
            self._port: Any = serial.serial_for_url(
                url,
                baudrate=baud,
                bytesize=8,
                parity="N",
                stopbits=1,
                timeout=0.5,
                write_timeout=write_timeout_s,
                rtscts=flow_control == "rtscts",
                xonxoff=flow_control == "xonxoff",
                dsrdtr=flow_control == "dsrdtr",
            )
        except (*LINK_ERRORS, ValueError) as exc:
            raise PrinterOffline(f"cannot open {url}: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()  # tcdrain: the bytes have left the UART (or the pty)
        except serial.SerialTimeoutException as exc:
            # flow control held us back too long: the printer is stuck or gone
            raise PrinterOffline(f"write to {self.url} timed out: {exc}") from exc
        except LINK_ERRORS as exc:
            raise PrinterOffline(f"write to {self.url} failed: {exc}") from exc

    def query(self, request: bytes, timeout_s: float) -> int | None:
        try:
            # a late reply to an earlier query must not be read as this one's
            self._port.reset_input_buffer()
            self._port.write(request)
            self._port.timeout = timeout_s
            reply: bytes = self._port.read(1)
        except LINK_ERRORS as exc:
            raise PrinterOffline(f"status query on {self.url} failed: {exc}") from exc
        return reply[0] if reply else None

    def close(self) -> None:
        with contextlib.suppress(*LINK_ERRORS):
            self._port.close()


class NetworkTransport:
    """Raw TCP to the printer's port 9100; status replies come back on the same socket."""

    def __init__(
        self, host: str, port: int, *, connect_timeout_s: float, write_timeout_s: float
    ) -> None:
        self.where = f"{host}:{port}"
        self._write_timeout_s = write_timeout_s
        try:
            self._sock = socket.create_connection((host, port), timeout=connect_timeout_s)
        except OSError as exc:
            raise PrinterOffline(f"cannot connect to {self.where}: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._sock.settimeout(self._write_timeout_s)
            self._sock.sendall(data)
        except OSError as exc:
            raise PrinterOffline(f"send to {self.where} failed: {exc}") from exc

    def query(self, request: bytes, timeout_s: float) -> int | None:
        try:
            self._discard_input()
            self._sock.settimeout(self._write_timeout_s)
            self._sock.sendall(request)
            self._sock.settimeout(timeout_s)
            reply = self._sock.recv(1)
        except TimeoutError:
            return None
        except OSError as exc:
            raise PrinterOffline(f"status query on {self.where} failed: {exc}") from exc
        if not reply:
            raise PrinterOffline(f"{self.where} closed the connection")
        return reply[0]

    def _discard_input(self) -> None:
        self._sock.settimeout(0.0)
        try:
            while self._sock.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            return
        raise PrinterOffline(f"{self.where} closed the connection")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class UsbTransport:
    """A USB printer through python-escpos' ``Usb`` class; pyusb is imported only here."""

    def __init__(self, settings: PrinterSettings) -> None:
        from escpos.printer import Usb  # noqa: PLC0415 - pyusb may be missing on a laptop

        self.where = f"usb {settings.usb_vendor_id:04x}:{settings.usb_product_id:04x}"
        if not Usb.is_usable():
            raise PrinterOffline(f"{self.where}: the USB backend needs pyusb (python3-usb)")
        self._device: Any = Usb(
            settings.usb_vendor_id,
            settings.usb_product_id,
            timeout=settings.write_timeout_ms,
            in_ep=settings.usb_in_ep,
            out_ep=settings.usb_out_ep,
        )
        try:
            self._device.open()
        except Exception as exc:  # DeviceNotFoundError, USBError (permissions: the udev rule)
            raise PrinterOffline(f"cannot open {self.where}: {exc}") from exc

    def write(self, data: bytes) -> None:
        try:
            self._device._raw(data)
        except Exception as exc:  # usb.core.USBError
            raise PrinterOffline(f"write to {self.where} failed: {exc}") from exc

    def query(self, request: bytes, timeout_s: float) -> int | None:
        try:
            self._device._raw(request)
            reply = self._device.device.read(self._device.in_ep, 16, int(timeout_s * 1000))
        except Exception as exc:
            # pyusb's USBTimeoutError: errno ETIMEDOUT, "Operation timed out"
            if getattr(exc, "errno", None) == errno.ETIMEDOUT or "timed out" in str(exc):
                return None
            raise PrinterOffline(f"status query on {self.where} failed: {exc}") from exc
        return int(reply[0]) if len(reply) else None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._device.close()


class SimTransport:
    """The simulator in this process: bytes go straight into its parser, replies come back."""

    def __init__(self, sim: SimPrinter) -> None:
        self.sim = sim

    def write(self, data: bytes) -> None:
        self.sim.feed(data)

    def query(self, request: bytes, timeout_s: float) -> int | None:
        reply = self.sim.feed(request)
        return reply[0] if reply else None

    def close(self) -> None:
        pass


def open_transport(settings: PrinterSettings, sim: SimPrinter | None = None) -> Transport:
    """The link the settings' ``backend`` names."""
    write_timeout_s = settings.write_timeout_ms / 1000
    if settings.backend == "serial":
        return SerialTransport(
            settings.url,
            baud=settings.baud,
            flow_control=settings.flow_control,
            write_timeout_s=write_timeout_s,
        )
    if settings.backend == "network":
        return NetworkTransport(
            settings.host,
            settings.port,
            connect_timeout_s=settings.connect_timeout_ms / 1000,
            write_timeout_s=write_timeout_s,
        )
    if settings.backend == "usb":
        return UsbTransport(settings)
    if sim is None:
        raise ValueError("backend 'sim' needs a SimPrinter")
    return SimTransport(sim)
