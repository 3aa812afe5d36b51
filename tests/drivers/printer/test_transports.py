"""The other links: in-process simulator, raw TCP 9100, a looped serial line, USB without pyusb."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from drivers.printer.errors import PrinterBadReply, PrinterOffline, PrintFailed
from drivers.printer.layout import queue_ticket_layout
from drivers.printer.printer import open_printer
from drivers.printer.settings import PrinterSettings
from drivers.printer.sim import SimPrinter
from drivers.printer.status import PaperStatus
from tests.drivers.printer.conftest import QUEUE_PAYLOAD, queue_ticket


def test_sim_backend_prints_in_process_with_hooks() -> None:
    with open_printer(PrinterSettings(backend="sim", profile="generic-80")) as printer:
        assert printer.sim is not None
        report = printer.print_layout(queue_ticket_layout(queue_ticket()))
        assert report.qr == "native"
        assert [i["data"] for i in printer.sim.items if i["kind"] == "qr"] == [QUEUE_PAYLOAD]
        printer.sim.pull_paper()
        assert printer.status() is PaperStatus.OUT
        printer.sim.load_paper()
        assert printer.status() is PaperStatus.OK


def test_loopback_line_is_a_bad_reply_not_a_printer() -> None:
    # TX wired to RX: our own DLE comes back (0x10), which breaks the fixed status bits
    settings = PrinterSettings(backend="serial", url="loop://", status_timeout_ms=50)
    with open_printer(settings) as printer, pytest.raises(PrinterBadReply, match="reply 10"):
        printer.status()


def test_missing_serial_port_is_offline() -> None:
    settings = PrinterSettings(backend="serial", url="/dev/no-such-printer")
    with open_printer(settings) as printer, pytest.raises(PrinterOffline, match="cannot open"):
        printer.print_layout(queue_ticket_layout(queue_ticket()))


def test_usb_without_device_or_pyusb_is_offline() -> None:
    settings = PrinterSettings(backend="usb", usb_vendor_id=0x0001, usb_product_id=0x0001)
    with open_printer(settings) as printer, pytest.raises(PrinterOffline, match="usb 0001:0001"):
        printer.status()


class TcpPrinter:
    """A raw-TCP printer on loopback: a socket in front of the simulator model."""

    def __init__(self) -> None:
        self.sim = SimPrinter()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                while chunk := conn.recv(65536):
                    reply = self.sim.feed(chunk)
                    if reply:
                        conn.sendall(reply)

    def close(self) -> None:
        # shutdown wakes a thread blocked in accept(); close alone does not on Linux
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def tcp_printer() -> Iterator[TcpPrinter]:
    printer = TcpPrinter()
    yield printer
    printer.close()


def test_network_backend_prints_and_reads_status(tcp_printer: TcpPrinter) -> None:
    settings = PrinterSettings(
        backend="network", host="127.0.0.1", port=tcp_printer.port, profile="generic-80"
    )
    with open_printer(settings) as printer:
        report = printer.print_layout(queue_ticket_layout(queue_ticket()))
        assert report.paper is PaperStatus.OK
        tcp_printer.sim.near_end()
        assert printer.status() is PaperStatus.NEAR_END
    assert [i["data"] for i in tcp_printer.sim.items if i["kind"] == "qr"] == [QUEUE_PAYLOAD]


def test_network_printer_that_went_away_voids_the_ticket(tcp_printer: TcpPrinter) -> None:
    settings = PrinterSettings(
        backend="network", host="127.0.0.1", port=tcp_printer.port, status_timeout_ms=100
    )
    with open_printer(settings) as printer:
        assert printer.status() is PaperStatus.OK
        tcp_printer.sim.go_offline()  # powered off: no replies, nothing printed
        with pytest.raises(PrinterOffline, match="no reply"):
            printer.print_layout(queue_ticket_layout(queue_ticket()))
        tcp_printer.sim.come_online()
        tcp_printer.sim.run_out_after(0)
        with pytest.raises(PrintFailed):
            printer.print_layout(queue_ticket_layout(queue_ticket()))
    assert tcp_printer.sim.items == []


def test_nothing_listening_is_offline() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    settings = PrinterSettings(backend="network", host="127.0.0.1", port=port)
    with open_printer(settings) as printer, pytest.raises(PrinterOffline, match="cannot connect"):
        printer.status()
