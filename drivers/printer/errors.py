"""Ticket-printer errors. Each mixes in a builtin so generic handlers still work.

A print that raises any of these was not (fully) printed: the caller must not issue the ticket.
"""

from __future__ import annotations

from drivers.errors import DriverError


class PrinterError(DriverError):
    code = "printer_fault"
    message_zh = "打印机故障，请联系工作人员。"
    message_en = "The printer has a fault. Please contact staff."


class PaperOut(PrinterError, RuntimeError):
    code = "printer_paper_out"
    message_zh = "打印纸已用完，暂时无法打印，请联系工作人员。"
    message_en = "The printer is out of paper. Please contact staff."


class PaperNearEnd(PrinterError, UserWarning):
    """The roll is nearly used up. A warning for staff; printing still works (by default)."""

    code = "printer_paper_near_end"
    message_zh = "打印纸即将用完，请工作人员及时更换。"
    message_en = "The paper roll is nearly used up. Staff should replace it soon."


class PrinterOffline(PrinterError, ConnectionError):
    """No reply at all: cable, power, wrong port, or the printer reports itself offline."""

    code = "printer_offline"
    message_zh = "打印机未连接，暂时无法打印，请联系工作人员。"
    message_en = "The printer is not connected. Please contact staff."


class PrinterCoverOpen(PrinterOffline):
    code = "printer_cover_open"
    message_zh = "打印机盖未关好，请联系工作人员。"
    message_en = "The printer cover is open. Please contact staff."


class PrinterBadReply(PrinterError, ValueError):
    """A status reply that breaks the fixed bits: wrong baud, wrong device, or a looped cable."""

    code = "printer_bad_reply"
    message_zh = "打印机通信异常，请联系工作人员。"
    message_en = "The printer answers with unexpected data. Please contact staff."


class PrintFailed(PrinterError, RuntimeError):
    """The job was refused or broke off: the ticket is void and must not be issued."""

    code = "printer_print_failed"
    message_zh = "打印失败，本张凭条无效，请联系工作人员。"
    message_en = "Printing failed; this slip is not valid. Please contact staff."


class LayoutError(PrinterError, ValueError):
    """A layout that cannot be printed as asked (unmasked identity, QR too big, bad text)."""

    code = "printer_layout_invalid"
    message_zh = "凭条内容有误，无法打印，请联系工作人员。"
    message_en = "The slip cannot be printed as requested. Please contact staff."
