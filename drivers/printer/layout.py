"""A device-independent slip: lines of text, separators, a QR code, feeds and a cut.

The same ``Layout`` goes to the ESC/POS renderer and to the PNG preview, and both wrap text
with ``wrap_text`` so a preview shows the printer's line breaks. The three slips the kiosk
prints are built here from plain data; personal data arrives masked and is checked again.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from drivers.printer.errors import LayoutError
from hallkiosk.privacy import mask_id_number, mask_name

QrErrorLevel = Literal["L", "M", "Q", "H"]
MAX_TEXT_SIZE = 8  # GS ! allows 1-8 times width and height
MAX_QR_PAYLOAD = 600  # keeps a QR within a 58 mm roll at a readable module size


class Align(StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True)
class Text:
    """One paragraph; the printer (and the preview) wrap it to the paper width."""

    text: str
    size: int = 1  # width and height multiplier
    bold: bool = False
    align: Align = Align.LEFT

    def __post_init__(self) -> None:
        if not 1 <= self.size <= MAX_TEXT_SIZE:
            raise LayoutError(f"text size must be 1-{MAX_TEXT_SIZE}, not {self.size}")
        # control bytes would be taken as printer commands
        bad = [c for c in self.text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
        if bad:
            raise LayoutError(f"text holds control characters {bad!r}; use one Text per line")


@dataclass(frozen=True)
class Separator:
    """A full-width rule made of one ASCII character."""

    char: str = "-"

    def __post_init__(self) -> None:
        if len(self.char) != 1 or not (" " < self.char < "\x7f"):
            raise LayoutError("a separator is one printable ASCII character")


@dataclass(frozen=True)
class QRCode:
    payload: str
    error_level: QrErrorLevel | None = None  # None: the profile's level
    align: Align = Align.CENTER

    def __post_init__(self) -> None:
        if not self.payload or len(self.payload) > MAX_QR_PAYLOAD:
            raise LayoutError(f"a QR payload has 1-{MAX_QR_PAYLOAD} characters")
        if not self.payload.isascii() or not self.payload.isprintable():
            # printers differ in how they treat non-ASCII QR data; URLs and codes are ASCII
            raise LayoutError("a QR payload is printable ASCII")


@dataclass(frozen=True)
class Feed:
    lines: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.lines <= 20:
            raise LayoutError("feed 1-20 lines")


@dataclass(frozen=True)
class Cut:
    """End of the slip: feed to the cutter and cut (or tear-off feed without a cutter)."""


Element = Text | Separator | QRCode | Feed | Cut


@dataclass(frozen=True)
class Layout:
    kind: str
    elements: tuple[Element, ...]

    def qr_payloads(self) -> list[str]:
        return [e.payload for e in self.elements if isinstance(e, QRCode)]


def char_columns(char: str) -> int:
    """Columns a character takes on the printer: in Chinese mode every non-ASCII character is
    a double-byte GB18030 character, printed as a full-width (24-dot) glyph."""
    return 1 if char.isascii() else 2


def text_columns(text: str) -> int:
    return sum(char_columns(c) for c in text)


def wrap_text(text: str, columns: int) -> list[str]:
    """Greedy wrap by printer columns. An empty paragraph is one empty line."""
    if columns < 2:
        raise LayoutError("a line must hold at least one full-width character")
    lines: list[str] = []
    line, used = "", 0
    for char in text:
        width = char_columns(char)
        if used + width > columns:
            lines.append(line)
            line, used = "", 0
        line += char
        used += width
    lines.append(line)
    return lines


def text_lines(item: Text, chars_per_line: int) -> list[str]:
    """The printed lines of ``item`` on a printer with ``chars_per_line`` font-A columns."""
    return wrap_text(item.text, max(2, chars_per_line // item.size))


def _time(value: datetime) -> str:
    if value.tzinfo is None:
        raise LayoutError("slip times must be timezone-aware (the hall's local time)")
    return value.strftime("%Y-%m-%d %H:%M")


def _check_masked_id(masked_id: str) -> None:
    shown = [c for c in masked_id if c != "*"]
    if "*" not in masked_id or len(shown) > 8:
        raise LayoutError("the ID number on a slip must be masked (e.g. 3301**********1234)")


def _check_masked_name(masked_name: str) -> None:
    if len(masked_name) >= 2 and "*" not in masked_name:
        raise LayoutError("the name on a slip must be masked (e.g. 张*三)")


# -- queue ticket ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueTicket:
    hall_name: str
    ticket_number: str  # e.g. "A023"
    category: str  # 收件号 / 取件号 / 咨询号
    business: str  # business area, e.g. 社保医保
    people_ahead: int | None  # None when unknown (issued offline)
    estimated_wait_min: int | None
    issued_at: datetime
    qr_payload: str
    offline: bool = False
    green_channel: bool = False
    area: str = "24小时自助服务区"


def queue_ticket_layout(ticket: QueueTicket) -> Layout:
    items: list[Element] = [
        Text(ticket.hall_name, bold=True, align=Align.CENTER),
        Text(ticket.area, align=Align.CENTER),
        Separator(),
        Text(ticket.category, size=2, bold=True, align=Align.CENTER),
        Text(ticket.ticket_number, size=4, bold=True, align=Align.CENTER),
        Text(f"业务：{ticket.business}", align=Align.CENTER),
    ]
    if ticket.green_channel:
        items.append(Text("绿色通道 优先办理", bold=True, align=Align.CENTER))
    items.append(Separator())
    if ticket.people_ahead is None:
        items.append(Text("等候人数请以叫号屏为准"))
    else:
        items.append(Text(f"您前面还有 {ticket.people_ahead} 人等候"))
    if ticket.estimated_wait_min is not None:
        items.append(Text(f"预计等候约 {ticket.estimated_wait_min} 分钟"))
    items += [
        Text(f"取号时间：{_time(ticket.issued_at)}"),
        QRCode(ticket.qr_payload),
        Text("扫码查看排队进度", align=Align.CENTER),
    ]
    if ticket.offline:
        items += [
            Text("【离线取号】", bold=True, align=Align.CENTER),
            Text("网络中断时取号，以叫号屏为准", align=Align.CENTER),
        ]
    items += [Text("过号请重新取号，谢谢配合", align=Align.CENTER), Cut()]
    return Layout("queue_ticket", tuple(items))


# -- pre-review submission receipt -------------------------------------------------------------


@dataclass(frozen=True)
class PreReviewReceipt:
    hall_name: str
    matter: str  # 事项名称
    receipt_number: str  # 预审编号
    applicant_masked_name: str
    material_count: int
    submitted_at: datetime
    lookup_payload: str  # QR for 办件查询
    reply_note: str = "部门将在1个工作日内答复；如需补正材料，将一次性告知。"

    def __post_init__(self) -> None:
        _check_masked_name(self.applicant_masked_name)


def receipt_layout(receipt: PreReviewReceipt) -> Layout:
    items: list[Element] = [
        Text(receipt.hall_name, bold=True, align=Align.CENTER),
        Text("网上预审提交回执", size=2, bold=True, align=Align.CENTER),
        Separator(),
        Text(f"事项：{receipt.matter}"),
        Text(f"预审编号：{receipt.receipt_number}", bold=True),
        Text(f"申请人：{receipt.applicant_masked_name}"),
        Text(f"提交材料：{receipt.material_count} 份"),
        Text(f"提交时间：{_time(receipt.submitted_at)}"),
        Separator(),
        Text(receipt.reply_note),
        QRCode(receipt.lookup_payload),
        Text("扫码或凭预审编号查询办理进度", align=Align.CENTER),
        Cut(),
    ]
    return Layout("receipt", tuple(items))


# -- pickup slip (送达凭证) -------------------------------------------------------------------


@dataclass(frozen=True)
class PickupSlip:
    hall_name: str
    masked_name: str
    masked_id: str
    case_number: str  # 办件编号
    certificate: str  # 证照名称
    bay: str  # e.g. "1号柜 12格"
    picked_up_at: datetime

    def __post_init__(self) -> None:
        _check_masked_name(self.masked_name)
        _check_masked_id(self.masked_id)

    @classmethod
    def from_identity(
        cls,
        *,
        hall_name: str,
        name: str,
        id_number: str,
        case_number: str,
        certificate: str,
        bay: str,
        picked_up_at: datetime,
    ) -> PickupSlip:
        """Masks the name and ID number here; the raw values are not kept."""
        return cls(
            hall_name=hall_name,
            masked_name=mask_name(name),
            masked_id=mask_id_number(id_number),
            case_number=case_number,
            certificate=certificate,
            bay=bay,
            picked_up_at=picked_up_at,
        )


def pickup_slip_layout(slip: PickupSlip) -> Layout:
    items: list[Element] = [
        Text(slip.hall_name, bold=True, align=Align.CENTER),
        Text("证照领取送达凭证", size=2, bold=True, align=Align.CENTER),
        Separator(),
        Text(f"领取人：{slip.masked_name}"),
        Text(f"证件号码：{slip.masked_id}"),
        Text(f"办件编号：{slip.case_number}"),
        Text(f"证照名称：{slip.certificate}"),
        Text(f"柜格：{slip.bay}"),
        Text(f"领取时间：{_time(slip.picked_up_at)}"),
        Separator(),
        Text("本凭证由自助取件柜打印，请妥善保管。"),
        Cut(),
    ]
    return Layout("pickup_slip", tuple(items))
