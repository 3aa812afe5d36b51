"""Printer simulator process (one per test module, reset before each test) and helpers."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from drivers.printer.layout import (
    Cut,
    Feed,
    Layout,
    PickupSlip,
    PreReviewReceipt,
    QRCode,
    QueueTicket,
    Separator,
    Text,
    text_lines,
)
from drivers.printer.profiles import PrinterProfile
from drivers.printer.qrimage import fit_module_dots
from drivers.printer.settings import PrinterSettings
from drivers.printer.sim.control import PrinterSimControl
from tests.fixtures.processes import REPO_ROOT, STARTUP_TIMEOUT_S, ManagedProcess

SHANGHAI = ZoneInfo("Asia/Shanghai")
QUEUE_PAYLOAD = "https://hall.example.gov.cn/q/330106/A023?d=20250501&s=7f3a"


@dataclass(frozen=True)
class PrinterSimHandle:
    pty_path: str
    control: PrinterSimControl
    process: ManagedProcess

    def settings(self, profile: str = "generic-58", **overrides: Any) -> PrinterSettings:
        values: dict[str, Any] = {
            "backend": "serial",
            "url": self.pty_path,
            "profile": profile,
            "status_timeout_ms": 200,
            **overrides,
        }
        return PrinterSettings(**values)


def start_printer_sim(*args: str) -> PrinterSimHandle:
    process = ManagedProcess(
        [sys.executable, "-m", "drivers.printer.sim", "--exit-with-parent", *args], cwd=REPO_ROOT
    )
    pty_path = process.read_line(STARTUP_TIMEOUT_S)
    control_line = process.read_line(STARTUP_TIMEOUT_S)
    assert pty_path.startswith("/dev/"), f"bad pty line {pty_path!r}\n{process.describe()}"
    assert control_line.startswith("control "), f"bad line {control_line!r}"
    control = PrinterSimControl(control_line.removeprefix("control "))
    return PrinterSimHandle(pty_path, control, process)


def stop_printer_sim(handle: PrinterSimHandle) -> None:
    handle.process.terminate()
    socket_dir = Path(handle.control.path).parent
    if socket_dir.name.startswith("printer-sim-"):  # left behind only if it was killed
        with contextlib.suppress(OSError):
            shutil.rmtree(socket_dir)


@pytest.fixture(scope="module")
def sim_process() -> Iterator[PrinterSimHandle]:
    # Chinese mode off after ESC @: text decodes right only because the driver sends FS &
    handle = start_printer_sim("--chinese-default", "off")
    try:
        yield handle
    finally:
        stop_printer_sim(handle)


@pytest.fixture
def printer_sim(sim_process: PrinterSimHandle) -> PrinterSimHandle:
    """The module's simulator, powered, with paper, closed cover, and nothing printed yet."""
    control = sim_process.control
    control.come_online()
    control.load_paper()
    control.close_cover()
    control.jam_cutter(False)
    control.clear()
    return sim_process


def queue_ticket(*, offline: bool = False) -> QueueTicket:
    return QueueTicket(
        hall_name="杭州市西湖区政务服务中心",
        ticket_number="A023",
        category="收件号",
        business="社保医保",
        people_ahead=None if offline else 5,
        estimated_wait_min=None if offline else 15,
        issued_at=datetime(2025, 5, 1, 8, 30, tzinfo=SHANGHAI),
        qr_payload=QUEUE_PAYLOAD,
        offline=offline,
    )


def receipt() -> PreReviewReceipt:
    return PreReviewReceipt(
        hall_name="杭州市西湖区政务服务中心",
        matter="城乡居民基本医疗保险参保登记（含新生儿参保、学生参保及灵活就业人员参保）",
        receipt_number="YS20250501000123",
        applicant_masked_name="张*三",
        material_count=4,
        submitted_at=datetime(2025, 5, 1, 21, 14, tzinfo=SHANGHAI),
        lookup_payload="https://hall.example.gov.cn/r/YS20250501000123",
    )


def pickup_slip() -> PickupSlip:
    return PickupSlip.from_identity(
        hall_name="杭州市西湖区政务服务中心",
        name="欧阳小明",
        id_number="11010519491231002X",
        case_number="ZJ2025050100123",
        certificate="不动产权证书",
        bay="1号柜 12格",
        picked_up_at=datetime(2025, 5, 1, 22, 5, tzinfo=SHANGHAI),
    )


def expected_items(layout: Layout, profile: PrinterProfile) -> list[dict[str, Any]]:
    """What the simulator should list for ``layout``; images are compared separately."""
    items: list[dict[str, Any]] = []
    for element in layout.elements:
        match element:
            case Text():
                style = {
                    "width": element.size,
                    "height": element.size,
                    "bold": element.bold,
                    "align": element.align.value,
                }
                for line in text_lines(element, profile.chars_per_line):
                    items.append({"kind": "text", "text": line, **style})
            case Separator():
                items.append(
                    {
                        "kind": "text",
                        "text": element.char * profile.chars_per_line,
                        "width": 1,
                        "height": 1,
                        "bold": False,
                        "align": "left",
                    }
                )
            case QRCode():
                level = element.error_level or profile.qr_error_level
                if profile.native_qr:
                    items.append(
                        {
                            "kind": "qr",
                            "data": element.payload,
                            "module": fit_module_dots(element.payload, level, profile),
                            "error_level": level,
                            "align": element.align.value,
                        }
                    )
                else:
                    items.append({"kind": "image", "qr": element.payload})
            case Feed():
                items.append({"kind": "feed", "lines": element.lines})
            case Cut():
                if profile.feed_before_cut_lines:
                    items.append({"kind": "feed", "lines": profile.feed_before_cut_lines})
                if profile.cutter != "none":
                    items.append({"kind": "cut", "mode": profile.cutter})
    return items
