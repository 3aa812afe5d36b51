"""ESC/POS ticket printer: layouts, rendering, previews, paper status, simulators.

    printer = open_printer(PrinterSettings(backend="serial", url="/dev/ttyUSB0",
                                           profile="generic-80"))
    printer.status()                                # PaperStatus.OK / NEAR_END / OUT
    report = printer.print_layout(queue_ticket_layout(ticket))   # raises: ticket not issued

Serial links are opened with ``serial.serial_for_url`` (device path, pty, ``loop://``, ...);
``backend = "network"`` is raw TCP 9100, ``"usb"`` goes through python-escpos (pyusb), and
``"sim"`` is the simulator in-process (``printer.sim`` has its hooks).
"""

from typing import TYPE_CHECKING

from drivers.printer.errors import (
    LayoutError,
    PaperNearEnd,
    PaperOut,
    PrinterBadReply,
    PrinterCoverOpen,
    PrinterError,
    PrinterOffline,
    PrintFailed,
)
from drivers.printer.layout import (
    Align,
    Cut,
    Feed,
    Layout,
    PickupSlip,
    PreReviewReceipt,
    QRCode,
    QueueTicket,
    Separator,
    Text,
    pickup_slip_layout,
    queue_ticket_layout,
    receipt_layout,
)
from drivers.printer.profiles import PROFILES, PrinterProfile, get_profile
from drivers.printer.settings import PrinterSettings
from drivers.printer.status import PaperStatus, PrinterState
from hallkiosk.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use: python-escpos is slow to import (hallkiosk/lazy.py)
    from drivers.printer.printer import (
        EscposTicketPrinter,
        PrintReport,
        TicketPrinter,
        open_printer,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "drivers.printer.printer": (
            "EscposTicketPrinter",
            "PrintReport",
            "TicketPrinter",
            "open_printer",
        )
    },
)

__all__ = [
    "PROFILES",
    "Align",
    "Cut",
    "EscposTicketPrinter",
    "Feed",
    "Layout",
    "LayoutError",
    "PaperNearEnd",
    "PaperOut",
    "PaperStatus",
    "PickupSlip",
    "PreReviewReceipt",
    "PrintFailed",
    "PrintReport",
    "PrinterBadReply",
    "PrinterCoverOpen",
    "PrinterError",
    "PrinterOffline",
    "PrinterProfile",
    "PrinterSettings",
    "PrinterState",
    "QRCode",
    "QueueTicket",
    "Separator",
    "Text",
    "TicketPrinter",
    "get_profile",
    "open_printer",
    "pickup_slip_layout",
    "queue_ticket_layout",
    "receipt_layout",
]
