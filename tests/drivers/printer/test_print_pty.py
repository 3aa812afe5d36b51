"""The driver prints over a real pty to the simulator process, which parses the bytes back."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import ImageOps
from pyzbar.pyzbar import decode

from drivers.printer.errors import (
    PaperNearEnd,
    PaperOut,
    PrinterCoverOpen,
    PrinterError,
    PrinterOffline,
    PrintFailed,
)
from drivers.printer.layout import Layout, pickup_slip_layout, queue_ticket_layout, receipt_layout
from drivers.printer.printer import open_printer
from drivers.printer.sim import raster_image
from drivers.printer.status import PaperStatus
from tests.drivers.printer.conftest import (
    QUEUE_PAYLOAD,
    PrinterSimHandle,
    expected_items,
    pickup_slip,
    queue_ticket,
    receipt,
)

STATUS_OK_QUERIES = bytes.fromhex("100401 100404")  # DLE EOT 1 online -> DLE EOT 4
STATUS_OFFLINE_QUERIES = bytes.fromhex("100401 100402 100404")  # offline: ask the cause too


def printed_equal(items: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Items equal; a raster image must be a QR that reads back as the expected payload."""
    assert [i["kind"] for i in items] == [e["kind"] for e in expected]
    for got, want in zip(items, expected, strict=True):
        if want["kind"] == "image":
            picture = ImageOps.expand(raster_image(got).convert("L"), 24, 255)
            assert [s.data.decode() for s in decode(picture)] == [want["qr"]]
            assert got["align"] == "center"
        else:
            assert got == want


@pytest.mark.parametrize(
    ("kind", "profile"),
    [
        ("queue", "generic-58"),
        ("queue", "budget-58-raster"),
        ("offline_queue", "generic-80"),
        ("receipt", "generic-80"),
        ("pickup", "generic-58"),
    ],
)
def test_round_trip_printed_items_equal_the_layout(
    printer_sim: PrinterSimHandle, kind: str, profile: str
) -> None:
    layout: Layout = {
        "queue": lambda: queue_ticket_layout(queue_ticket()),
        "offline_queue": lambda: queue_ticket_layout(queue_ticket(offline=True)),
        "receipt": lambda: receipt_layout(receipt()),
        "pickup": lambda: pickup_slip_layout(pickup_slip()),
    }[kind]()
    with open_printer(printer_sim.settings(profile)) as printer:
        report = printer.print_layout(layout)
        data = printer.render(layout)
    assert report.bytes_written == len(data)
    assert report.paper is PaperStatus.OK and report.warnings == ()
    printed_equal(printer_sim.control.items(), expected_items(layout, printer.profile))
    # status before, the job, status after: nothing else went down the line
    assert printer_sim.control.received() == STATUS_OK_QUERIES + data + STATUS_OK_QUERIES
    assert printer_sim.control.snapshot()["counts"].get("cmd_unknown", 0) == 0


def test_round_trip_queue_ticket_details(printer_sim: PrinterSimHandle) -> None:
    with open_printer(printer_sim.settings("generic-58")) as printer:
        report = printer.print_layout(queue_ticket_layout(queue_ticket()))
    assert report.qr == "native"
    items = printer_sim.control.items()
    number = next(i for i in items if i.get("text") == "A023")
    assert (number["width"], number["height"], number["bold"], number["align"]) == (
        4,
        4,
        True,
        "center",
    )
    qr = next(i for i in items if i["kind"] == "qr")
    assert qr == {
        "kind": "qr",
        "data": QUEUE_PAYLOAD,
        "module": 6,
        "error_level": "M",
        "align": "center",
    }
    assert items[-1] == {"kind": "cut", "mode": "partial"}


def test_native_qr_on_a_printer_without_it_prints_garbage(printer_sim: PrinterSimHandle) -> None:
    """Why native-or-raster is a per-model setting: the cheap model's output for GS ( k."""
    from tests.drivers.printer.conftest import start_printer_sim, stop_printer_sim

    cheap = start_printer_sim("--no-native-qr", "--no-near-end-sensor")
    try:
        with open_printer(cheap.settings("generic-58")) as printer:
            printer.print_layout(queue_ticket_layout(queue_ticket()))
        items = cheap.control.items()
        assert not any(i["kind"] == "qr" for i in items)
        assert any(i["kind"] == "unknown" for i in items)
        assert any(QUEUE_PAYLOAD in i.get("text", "") for i in items)  # the URL as text
        cheap.control.clear()
        with open_printer(cheap.settings("budget-58-raster")) as printer:
            layout = queue_ticket_layout(queue_ticket())
            printer.print_layout(layout)
        printed_equal(cheap.control.items(), expected_items(layout, printer.profile))
    finally:
        stop_printer_sim(cheap)


def test_paper_out_refuses_and_prints_nothing(printer_sim: PrinterSimHandle) -> None:
    printer_sim.control.pull_paper()
    with open_printer(printer_sim.settings()) as printer:
        assert printer.status() is PaperStatus.OUT
        printer_sim.control.clear()
        with pytest.raises(PaperOut) as caught:
            printer.print_layout(queue_ticket_layout(queue_ticket()))
    assert caught.value.message_zh.startswith("打印纸已用完")
    assert printer_sim.control.items() == []
    # only the status queries were sent: not one byte of the ticket
    assert printer_sim.control.received() == STATUS_OFFLINE_QUERIES


def test_near_end_warns_by_default_and_refuses_by_policy(printer_sim: PrinterSimHandle) -> None:
    printer_sim.control.near_end()
    layout = queue_ticket_layout(queue_ticket())
    with open_printer(printer_sim.settings("generic-80")) as printer:
        assert printer.status() is PaperStatus.NEAR_END
        report = printer.print_layout(layout)
    assert report.paper is PaperStatus.NEAR_END
    assert [w.code for w in report.warnings] == ["printer_paper_near_end"]
    assert any(i["kind"] == "qr" for i in printer_sim.control.items())

    printer_sim.control.clear()
    settings = printer_sim.settings("generic-80", near_end="refuse")
    with open_printer(settings) as printer, pytest.raises(PaperNearEnd):
        printer.print_layout(layout)
    assert printer_sim.control.items() == []
    assert printer_sim.control.received() == STATUS_OK_QUERIES


def test_near_end_bits_ignored_on_a_model_without_that_sensor(
    printer_sim: PrinterSimHandle,
) -> None:
    printer_sim.control.near_end()
    with open_printer(printer_sim.settings("generic-58", near_end="refuse")) as printer:
        assert printer.status() is PaperStatus.OK
        assert printer.print_layout(queue_ticket_layout(queue_ticket())).warnings == ()


def test_offline_printer_refuses_and_recovers(printer_sim: PrinterSimHandle) -> None:
    layout = queue_ticket_layout(queue_ticket())
    printer_sim.control.go_offline()
    with open_printer(printer_sim.settings(status_retries=1)) as printer:
        with pytest.raises(PrinterOffline, match="no reply to DLE EOT 1"):
            printer.status()
        with pytest.raises(PrinterOffline):
            printer.print_layout(layout)
        assert printer_sim.control.items() == []
        # two tries per check, nothing else: the ticket bytes were never sent
        assert printer_sim.control.snapshot()["counts"]["ignored_bytes"] == 4 * 3
        printer_sim.control.come_online()
        report = printer.print_layout(layout)  # the same printer object, no restart
    assert report.bytes_written > 0
    assert any(i["kind"] == "qr" for i in printer_sim.control.items())


def test_paper_running_out_mid_ticket_voids_it(printer_sim: PrinterSimHandle) -> None:
    printer_sim.control.run_out_after(5)
    printer = open_printer(printer_sim.settings())
    with printer, pytest.raises(PrintFailed, match="paper ran out"):
        printer.print_layout(queue_ticket_layout(queue_ticket()))
    assert len(printer_sim.control.items()) == 5
    assert printer_sim.control.snapshot()["paper"] == "out"


def test_cover_open_and_cutter_error(printer_sim: PrinterSimHandle) -> None:
    layout = queue_ticket_layout(queue_ticket())
    printer_sim.control.open_cover()
    with open_printer(printer_sim.settings()) as printer:
        with pytest.raises(PrinterCoverOpen):
            printer.print_layout(layout)
        printer_sim.control.close_cover()
        printer_sim.control.jam_cutter()
        with pytest.raises(PrinterError, match="cutter error"):
            printer.print_layout(layout)
        state = printer.read_state()
    assert not state.online and state.error and state.cutter_error
    assert dict(state.raw) == {1: 0x1A, 2: 0x52, 3: 0x1A, 4: 0x12}
    assert printer_sim.control.items() == []
