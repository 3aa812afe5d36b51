"""The codes the kiosk accepts, their check digits, and the one classifier every scan goes through.

Every scan is untrusted: a length limit first, then a charset, then the shape of a known format
and its check. Anything else raises a ``ScanRejected`` subclass whose detail names the length and
the reason, never the content (an unknown code may be personal data).

Formats (docs/drivers/scanner.md has the full description and examples):

* booking code 预约号: ``YY`` + 11 digits + 1 Luhn check digit, e.g. ``YY202406150013``
* booking QR: ``HK1:B:<booking code>`` or ``https://<allowed host>/…?yyh=<booking code>``
* receipt QR 受理回执: ``HK1:R:<receipt number>:<2 check digits>``; the receipt number is the
  hall's pre-review number ``YS`` + 8-digit date + 5-digit serial, the check ISO 7064 MOD 97-10
  over its 13 digits
* case barcode 证件袋条码 (Code 128): department (2-4 letters) + year (4 digits) + serial
  (6 digits) + 1 check character, ISO 7064 MOD 37,36 over everything before it
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from enum import StrEnum

from drivers.scanner.errors import (
    CheckDigitMismatch,
    CodeNotRecognised,
    ScanBadCharacters,
    ScanTooLong,
)
from drivers.scanner.settings import FormatSettings

ALNUM36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM36_VALUE = {c: i for i, c in enumerate(ALNUM36)}
# Printable ASCII without space: every character any of our formats (and an https URL) can hold.
_ALLOWED = frozenset(chr(c) for c in range(0x21, 0x7F))

_BOOKING_RE = re.compile(r"^([A-Z]{2})([0-9]{12})$")
_RECEIPT_RE = re.compile(r"^HK1:R:YS([0-9]{13}):([0-9]{2})$")
_CASE_RE = re.compile(r"^([A-Z]{2,4})([0-9]{4})([0-9]{6})([0-9A-Z])$")
COMPACT_PREFIX = "HK1:"
CASE_YEARS = (2000, 2099)


class ScanKind(StrEnum):
    BOOKING_CODE = "booking_code"
    BOOKING_QR = "booking_qr"
    RECEIPT_QR = "receipt_qr"
    CASE_BARCODE = "case_barcode"


@dataclass(frozen=True)
class Scan:
    """One accepted scan. ``value`` is the booking code, receipt id or case barcode itself."""

    kind: ScanKind
    value: str
    raw_length: int
    source: str

    def describe(self) -> dict[str, str | int]:
        return {
            "kind": self.kind.value,
            "value": self.value,
            "raw_length": self.raw_length,
            "source": self.source,
        }


# --- check digits ---------------------------------------------------------------------------


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body + digit`` pass the Luhn check (ISO/IEC 7812-1)."""
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError("Luhn body must be ASCII digits")
    total = 0
    # doubling starts at the rightmost body digit, since the check digit will follow it
    for i, ch in enumerate(reversed(body)):
        d = ord(ch) - 48
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return len(number) >= 2 and luhn_check_digit(number[:-1]) == number[-1]


def mod97_10_check(body: str) -> str:
    """Two check digits of ISO 7064 MOD 97-10 (as in IBAN): ``int(body + cc) % 97 == 1``."""
    if not body or not body.isascii() or not body.isdigit():
        raise ValueError("MOD 97-10 body must be ASCII digits")
    return f"{98 - (int(body) * 100) % 97:02d}"


def mod97_10_valid(number: str) -> bool:
    return number.isascii() and number.isdigit() and len(number) >= 3 and int(number) % 97 == 1


def mod37_36_check(body: str) -> str:
    """Check character of ISO 7064 MOD 37,36 (hybrid system over 0-9A-Z, result in 0-9A-Z)."""
    product = 36
    for ch in body:
        value = _ALNUM36_VALUE.get(ch)
        if value is None:
            raise ValueError("MOD 37,36 body must be 0-9 or A-Z")
        total = (product + value) % 36 or 36
        product = (total * 2) % 37
    return ALNUM36[(37 - product) % 36]


def mod37_36_valid(code: str) -> bool:
    return len(code) >= 2 and mod37_36_check(code[:-1]) == code[-1]


# --- makers (for printers, simulators and tests) ---------------------------------------------


def make_booking_code(body11: str, prefix: str = "YY") -> str:
    if len(body11) != 11 or not body11.isascii() or not body11.isdigit():
        raise ValueError("a booking code body is 11 digits")
    return prefix + body11 + luhn_check_digit(body11)


def make_booking_payload(booking_code: str) -> str:
    return f"{COMPACT_PREFIX}B:{booking_code}"


def make_receipt_payload(receipt_no: str) -> str:
    """The QR on a pre-review receipt, for the hall's number ``YSyyyymmddNNNNN``."""
    digits = receipt_no[2:]
    if not receipt_no.startswith("YS") or not re.fullmatch(r"[0-9]{13}", digits):
        raise ValueError("a receipt number is YS and 13 digits")
    return f"{COMPACT_PREFIX}R:{receipt_no}:{mod97_10_check(digits)}"


def make_case_barcode(department: str, year: int, serial: int) -> str:
    if not re.fullmatch(r"[A-Z]{2,4}", department):
        raise ValueError("a department prefix is 2-4 capital letters")
    if not CASE_YEARS[0] <= year <= CASE_YEARS[1] or not 0 <= serial <= 999_999:
        raise ValueError("year 2000-2099, serial 0-999999")
    body = f"{department}{year:04d}{serial:06d}"
    return body + mod37_36_check(body)


# --- the classifier --------------------------------------------------------------------------


def classify(
    raw: str, settings: FormatSettings, *, source: str = "", raw_length: int | None = None
) -> Scan:
    """Turn one scan into a ``Scan`` or raise a ``ScanRejected`` subclass; never anything else.

    ``raw_length`` is the length the transport saw, when it stopped keeping characters early
    (an over-long line is counted, not stored).
    """
    length = len(raw) if raw_length is None else raw_length
    if length > settings.max_length:
        raise ScanTooLong(
            f"scan of {length} characters is longer than {settings.max_length}",
            raw_length=length,
            source=source,
        )
    text = raw.strip(" \t\r\n")
    if not text:
        raise CodeNotRecognised("empty scan", raw_length=length, source=source)
    if not _ALLOWED.issuperset(text):
        raise ScanBadCharacters(
            f"scan of {length} characters holds characters outside printable ASCII",
            raw_length=length,
            source=source,
        )
    upper = text.upper()
    if upper.startswith(("HTTP://", "HTTPS://")):
        return _booking_url(text, settings, length, source)
    if upper.startswith(COMPACT_PREFIX):
        return _compact(upper, settings, length, source)
    booking = _booking_code(upper, settings, length, source)
    if booking is not None:
        return Scan(ScanKind.BOOKING_CODE, booking, length, source)
    case = _CASE_RE.match(upper)
    if case is not None and CASE_YEARS[0] <= int(case.group(2)) <= CASE_YEARS[1]:
        if not mod37_36_valid(upper):
            raise CheckDigitMismatch(
                f"case barcode of {length} characters fails its MOD 37,36 check",
                raw_length=length,
                source=source,
            )
        return Scan(ScanKind.CASE_BARCODE, upper, length, source)
    raise CodeNotRecognised(
        f"scan of {length} characters matches no known format", raw_length=length, source=source
    )


def _booking_code(upper: str, settings: FormatSettings, length: int, source: str) -> str | None:
    """The normalised booking code, None if ``upper`` is not shaped like one."""
    match = _BOOKING_RE.match(upper)
    if match is None or match.group(1) != settings.booking_prefix:
        return None
    if not luhn_valid(match.group(2)):
        raise CheckDigitMismatch(
            f"booking code of {length} characters fails its Luhn check",
            raw_length=length,
            source=source,
        )
    return upper


def _compact(upper: str, settings: FormatSettings, length: int, source: str) -> Scan:
    if upper.startswith(f"{COMPACT_PREFIX}B:"):
        booking = _booking_code(upper[len(COMPACT_PREFIX) + 2 :], settings, length, source)
        if booking is not None:
            return Scan(ScanKind.BOOKING_QR, booking, length, source)
    match = _RECEIPT_RE.match(upper)
    if match is not None:
        if not mod97_10_valid(match.group(1) + match.group(2)):
            raise CheckDigitMismatch(
                f"receipt code of {length} characters fails its MOD 97-10 check",
                raw_length=length,
                source=source,
            )
        return Scan(ScanKind.RECEIPT_QR, "YS" + match.group(1), length, source)
    raise CodeNotRecognised(
        f"HK1 payload of {length} characters has an unknown type or shape",
        raw_length=length,
        source=source,
    )


def _booking_url(text: str, settings: FormatSettings, length: int, source: str) -> Scan:
    def refuse(why: str) -> CodeNotRecognised:
        return CodeNotRecognised(
            f"link of {length} characters: {why}", raw_length=length, source=source
        )

    try:
        parts = urllib.parse.urlsplit(text)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a port that is no number
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True, max_num_fields=32)
    except ValueError:
        raise refuse("not a well-formed URL") from None
    if parts.scheme.lower() != "https":
        raise refuse("not https")
    # a user-info part ("https://allowed.host@elsewhere/") is a classic look-alike trick
    if parts.username is not None or parts.password is not None:
        raise refuse("carries a user name")
    if host is None or host not in settings.booking_url_hosts:
        raise refuse("host is not a configured booking host")
    values = query.get(settings.booking_url_param, [])
    if len(values) != 1:
        raise refuse("needs exactly one booking-code parameter")
    booking = _booking_code(values[0].upper(), settings, length, source)
    if booking is None:
        raise refuse("booking-code parameter is not a booking code")
    return Scan(ScanKind.BOOKING_QR, booking, length, source)
