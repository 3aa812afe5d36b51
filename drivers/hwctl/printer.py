"""``hwctl printer``: ask the ticket printer for its status, or print a test ticket.

    hwctl [--json] printer [--url URL] [--profile P] [--baud B] status
    hwctl [--json] printer [--url URL] [--profile P] test-ticket [--preview FILE.png] [--no-print]

``--url`` takes any pyserial URL or device path (the serial backend), ``tcp://HOST[:PORT]``
(network, port 9100 by default), ``usb://VID:PID`` in hex (USB), or ``sim`` (the simulator in
this process). ``status`` exits 0 when the printer can print (paper ok or near end), 1 when it
answers but cannot (paper out, cover open, error), 2 when it does not answer.
"""

from __future__ import annotations

import argparse
from typing import Any

from drivers.printer.errors import PrinterError
from drivers.printer.layout import QueueTicket, queue_ticket_layout
from drivers.printer.preview import render_preview
from drivers.printer.printer import EscposTicketPrinter
from drivers.printer.profiles import PROFILES
from drivers.printer.settings import PrinterSettings
from drivers.printer.status import PaperStatus
from hallkiosk.clock import SystemClock

DEFAULT_URL = "/dev/ttyUSB0"


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "printer", help="ticket printer: status, test ticket"
    )
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help=f"serial device/pyserial URL, tcp://HOST[:PORT], usb://VID:PID or sim "
        f"(default {DEFAULT_URL})",
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="generic-80")
    parser.add_argument(
        "--baud", type=int, choices=(9600, 19200, 38400, 57600, 115200), default=9600
    )
    parser.add_argument("--timeout-ms", type=int, default=500, help="per status query")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="online state and paper sensor")
    ticket = actions.add_parser("test-ticket", help="print a sample queue ticket")
    ticket.add_argument("--preview", metavar="FILE.png", help="also write the ticket as PNG")
    ticket.add_argument("--no-print", action="store_true", help="only write the preview")
    parser.set_defaults(handler=_run)


def settings_for(url: str, profile: str, baud: int, timeout_ms: int) -> PrinterSettings:
    common: dict[str, Any] = {"profile": profile, "status_timeout_ms": timeout_ms}
    if url == "sim":
        return PrinterSettings(backend="sim", **common)
    if url.startswith("tcp://"):
        host, _, port = url.removeprefix("tcp://").partition(":")
        return PrinterSettings(
            backend="network", host=host, port=int(port) if port else 9100, **common
        )
    if url.startswith("usb://"):
        vendor, _, product = url.removeprefix("usb://").partition(":")
        return PrinterSettings(
            backend="usb", usb_vendor_id=int(vendor, 16), usb_product_id=int(product, 16), **common
        )
    # validated by the model: a baud outside the allowed set is refused there
    return PrinterSettings.model_validate({"backend": "serial", "url": url, "baud": baud, **common})


def _run(args: argparse.Namespace, out: Any) -> int:
    try:
        settings = settings_for(args.url, args.profile, args.baud, args.timeout_ms)
    except ValueError as exc:  # pydantic's ValidationError and int() both are
        raise SystemExit(f"hwctl printer: bad --url/--baud/--timeout-ms: {exc}") from None
    with EscposTicketPrinter(settings) as printer:
        if args.action == "status":
            return _status(printer, args, out)
        return _test_ticket(printer, args, out)


def _status(printer: EscposTicketPrinter, args: argparse.Namespace, out: Any) -> int:
    state = printer.read_state()
    usable = state.printable and not state.cover_open and not state.error
    data = {"ok": True, "url": args.url, "profile": printer.profile.name, "usable": usable}
    data.update(state.as_dict())
    problems = [
        name
        for name, flag in (
            ("cover open", state.cover_open),
            ("error", state.error),
            ("cutter error", state.cutter_error),
        )
        if flag
    ]
    text = (
        f"printer {args.url} ({printer.profile.name}): "
        f"{'online' if state.online else 'offline'}, paper {state.paper.value}"
        + (f", {', '.join(problems)}" if problems else "")
    )
    out.result(data, text)
    return 0 if usable else 1


def sample_ticket() -> QueueTicket:
    now = SystemClock().now()
    return QueueTicket(
        hall_name="打印机自检 hwctl",
        ticket_number="T001",
        category="测试号",
        business="打印机测试，非有效号码",
        people_ahead=0,
        estimated_wait_min=0,
        issued_at=now,
        qr_payload=f"HWCTL-TEST-{now:%Y%m%d%H%M%S}",
    )


def _test_ticket(printer: EscposTicketPrinter, args: argparse.Namespace, out: Any) -> int:
    layout = queue_ticket_layout(sample_ticket())
    data: dict[str, Any] = {
        "ok": True,
        "url": args.url,
        "profile": printer.profile.name,
        "qr_payload": layout.qr_payloads()[0],
    }
    lines: list[str] = []
    if args.preview:
        preview = render_preview(layout, printer.profile)
        preview.save(args.preview)
        data.update(preview=args.preview, font_fallback=preview.font_fallback)
        lines.append(
            f"preview written to {args.preview}"
            + (" (CJK font missing: Chinese shows as boxes)" if preview.font_fallback else "")
        )
    if args.no_print:
        data["printed"] = False
    else:
        try:
            report = printer.print_layout(layout)
        except PrinterError:
            if lines:
                out.result({**data, "printed": False}, "\n".join(lines))
            raise
        data.update(
            printed=True,
            bytes_written=report.bytes_written,
            paper=report.paper.value if report.paper else None,
            qr=report.qr,
            warnings=[w.code for w in report.warnings],
        )
        lines.insert(
            0,
            f"test ticket printed: {report.bytes_written} bytes, QR {report.qr}, "
            f"paper {report.paper.value if report.paper else 'not checked'}",
        )
        if report.paper is PaperStatus.NEAR_END:
            lines.append("warning: paper near end, replace the roll soon")
    out.result(data, "\n".join(lines))
    return 0
