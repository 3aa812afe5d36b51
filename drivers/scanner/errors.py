"""Scanner errors. A rejected scan is a ``ValueError``; a lost scanner a ``ConnectionError``.

A scan's content never goes into an error's detail: an unknown code may be personal data, so
details carry its length and what was wrong with it, never the characters.
"""

from __future__ import annotations

from drivers.errors import DriverError


class ScannerError(DriverError):
    code = "scanner_fault"
    message_zh = "扫码器故障，请联系工作人员。"
    message_en = "The code scanner has a fault. Please contact staff."


class ScannerOffline(ScannerError, ConnectionError):
    """No matching device, the device went away, or another program holds it."""

    code = "scanner_offline"
    message_zh = "扫码器未连接，请联系工作人员。"
    message_en = "The code scanner is not connected. Please contact staff."


class ScannerTimeout(ScannerError, TimeoutError):
    """No scan arrived within the time the caller waited."""

    code = "scanner_no_scan"
    message_zh = "没有扫到码，请把码对准扫码窗口。"
    message_en = "No code was scanned. Please hold the code in front of the scanner."


class ScanRejected(ScannerError, ValueError):
    """Base for every refused scan. ``raw_length`` is the only fact kept about its content."""

    code = "scan_rejected"
    message_zh = "无法识别此码。"
    message_en = "This code is not recognised."

    def __init__(self, detail: str = "", *, raw_length: int = 0, source: str = "") -> None:
        super().__init__(detail)
        self.raw_length = raw_length
        self.source = source


class CodeNotRecognised(ScanRejected):
    """Readable characters, but no format the kiosk knows."""

    code = "scan_not_recognised"
    message_zh = "无法识别此码，请使用预约码、回执码或证件袋上的条码。"
    message_en = (
        "This code is not recognised. Please use a booking code, a receipt code "
        "or the barcode on a certificate envelope."
    )


class ScanTooLong(ScanRejected):
    code = "scan_too_long"


class ScanBadCharacters(ScanRejected):
    """Control characters, non-ASCII bytes, or keys the keyboard layout cannot translate."""

    code = "scan_bad_characters"


class CheckDigitMismatch(ScanRejected):
    """The shape of a known format, but its check does not add up: a misread or a typo."""

    code = "scan_check_failed"
    message_zh = "此码没有读清楚，请重新扫描。"
    message_en = "The code was not read correctly. Please scan it again."
