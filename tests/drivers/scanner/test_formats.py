"""The classifier: every known format, every refusal, and fuzzing that finds only our errors."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from drivers.scanner import (
    CheckDigitMismatch,
    CodeNotRecognised,
    ScanBadCharacters,
    ScannerSettings,
    ScanRejected,
    ScanTooLong,
)
from drivers.scanner.formats import (
    ALNUM36,
    Scan,
    ScanKind,
    classify,
    luhn_check_digit,
    luhn_valid,
    make_booking_code,
    make_booking_payload,
    make_case_barcode,
    make_receipt_payload,
    mod37_36_check,
    mod37_36_valid,
    mod97_10_check,
    mod97_10_valid,
)
from drivers.scanner.settings import FormatSettings

HOST = "yy.zwfw.example.cn"
FMT = FormatSettings(booking_url_hosts=(HOST,))
BOOKING = "YY202406150013"
RECEIPT_ID = "YS2026112300123"  # the hall's pre-review receipt number


# --- check digits against published vectors ---


def test_luhn_matches_the_iso_7812_example() -> None:
    assert luhn_check_digit("7992739871") == "3"
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_mod97_10_agrees_with_an_iban() -> None:
    # GB82 WEST 1234 5698 7654 32, rearranged and letters turned into numbers (ISO 13616)
    digits = "".join(str(int(c, 36)) for c in "WEST12345698765432GB82")
    assert mod97_10_valid(digits)
    assert mod97_10_check(digits[:-2]) == digits[-2:]


def test_mod37_36_matches_the_iso_7064_hybrid_example() -> None:
    assert mod37_36_check("A12425GABC1234002") == "M"


def test_mod37_36_catches_every_single_substitution_in_a_case_barcode() -> None:
    code = make_case_barcode("GA", 2024, 123)
    for i, original in enumerate(code):
        for ch in ALNUM36:
            if ch != original:
                assert not mod37_36_valid(code[:i] + ch + code[i + 1 :]), (i, ch)


# --- accepted formats ---


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        (BOOKING, ScanKind.BOOKING_CODE, BOOKING),
        ("yy202406150013", ScanKind.BOOKING_CODE, BOOKING),  # case folded
        (f"  {BOOKING}\r\n", ScanKind.BOOKING_CODE, BOOKING),  # transport whitespace trimmed
        (make_booking_payload(BOOKING), ScanKind.BOOKING_QR, BOOKING),
        (f"https://{HOST}/checkin?yyh={BOOKING}&from=sms", ScanKind.BOOKING_QR, BOOKING),
        (f"HTTPS://YY.ZWFW.EXAMPLE.CN/c?a=1&yyh={BOOKING.lower()}#x", ScanKind.BOOKING_QR, BOOKING),
        (make_receipt_payload(RECEIPT_ID), ScanKind.RECEIPT_QR, RECEIPT_ID),
        ("GA2024000123A", ScanKind.CASE_BARCODE, "GA2024000123A"),
        (make_case_barcode("SCJG", 2031, 999_999), ScanKind.CASE_BARCODE, "SCJG2031999999M"),
    ],
)
def test_known_formats_are_accepted(text: str, kind: ScanKind, value: str) -> None:
    scan = classify(text, FMT, source="t")
    assert scan == Scan(kind, value, len(text), "t")


def test_booking_prefix_is_a_setting() -> None:
    other = FormatSettings(booking_prefix="BK")
    code = make_booking_code("20240615001", prefix="BK")
    assert classify(code, other).kind is ScanKind.BOOKING_CODE
    with pytest.raises(CodeNotRecognised):
        classify(BOOKING, other)


# --- refusals ---


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("YY202406150012", CheckDigitMismatch),  # last digit off by one
        ("YY202406150031", CheckDigitMismatch),  # adjacent digits swapped
        ("HK1:B:YY202406150012", CheckDigitMismatch),
        (f"HK1:R:{RECEIPT_ID}:33", CheckDigitMismatch),
        ("GA2024000123B", CheckDigitMismatch),
        ("GA1999000123A", CodeNotRecognised),  # year out of range: not a case barcode at all
        ("HK1:X:whatever", CodeNotRecognised),
        ("HK1:B:not-a-code", CodeNotRecognised),
        (f"HK1:R:{RECEIPT_ID}", CodeNotRecognised),
        (f"http://{HOST}/?yyh={BOOKING}", CodeNotRecognised),  # not https
        (f"https://evil.example.com/?yyh={BOOKING}", CodeNotRecognised),
        (f"https://{HOST}@evil.example.com/?yyh={BOOKING}", CodeNotRecognised),
        (f"https://{HOST}.evil.example.com/?yyh={BOOKING}", CodeNotRecognised),
        (f"https://{HOST}/?yyh={BOOKING}&yyh={BOOKING}", CodeNotRecognised),
        (f"https://{HOST}/?code={BOOKING}", CodeNotRecognised),
        (f"https://{HOST}:x/?yyh={BOOKING}", CodeNotRecognised),
        ("https://[::1/?yyh=1", CodeNotRecognised),
        ("330106199001011234", CodeNotRecognised),  # an ID number is no code of ours
        ("", CodeNotRecognised),
        ("   ", CodeNotRecognised),
        ("YY2024 06150013", ScanBadCharacters),
        ("预约号", ScanBadCharacters),
        ("YY20240615\x1d0013", ScanBadCharacters),
        ("A" * 513, ScanTooLong),
    ],
)
def test_everything_else_is_refused_with_a_typed_error(
    text: str, error: type[ScanRejected]
) -> None:
    with pytest.raises(error) as caught:
        classify(text, FMT, source="t")
    assert type(caught.value) is error
    assert caught.value.raw_length == len(text)


def test_url_form_is_refused_when_no_host_is_configured() -> None:
    with pytest.raises(CodeNotRecognised):
        classify(f"https://{HOST}/?yyh={BOOKING}", FormatSettings())


def test_a_refusal_names_length_and_reason_but_never_the_content() -> None:
    secret = "330106199001011234"
    with pytest.raises(ScanRejected) as caught:
        classify(secret, FMT)
    exc = caught.value
    for text in (str(exc), exc.detail, exc.message_en, exc.message_zh, repr(exc)):
        assert secret not in text
        assert "3301" not in text
    assert "18 characters" in exc.detail


def test_plain_messages_in_both_languages() -> None:
    with pytest.raises(CodeNotRecognised) as caught:
        classify("hello", FMT)
    assert caught.value.message_en.startswith("This code is not recognised")
    assert caught.value.message_zh.startswith("无法识别此码")
    assert isinstance(caught.value, ValueError)  # mixed with the builtin


def test_transport_length_wins_over_the_kept_text() -> None:
    # a transport that stopped keeping characters still reports how many arrived
    with pytest.raises(ScanTooLong) as caught:
        classify("A" * 513, FMT, raw_length=10_000)
    assert caught.value.raw_length == 10_000


# --- settings ---


def test_settings_accept_a_toml_list_of_hosts_and_refuse_bad_ones() -> None:
    parsed = ScannerSettings.model_validate({"formats": {"booking_url_hosts": [HOST]}})
    assert parsed.formats.booking_url_hosts == (HOST,)
    for bad in (["Bad Host"], ["-x.cn"], [""]):
        with pytest.raises(ValidationError):
            ScannerSettings.model_validate({"formats": {"booking_url_hosts": bad}})


@pytest.mark.parametrize(
    "data",
    [
        {"backend": "evdev"},  # no selector
        {"backend": "serial"},  # no url
        {"silence_end_ms": 5},
        {"formats": {"max_length": 10}},
        {"formats": {"booking_prefix": "Y1"}},
        {"evdev": {"vendor_id": 70000, "device_name": "x"}},
        {"serial": {"baud": 1234, "url": "loop://"}},
        {"colour": "red"},
    ],
)
def test_settings_refuse_out_of_range_and_unknown_values(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ScannerSettings.model_validate(data)


# --- round trips and fuzzing ---


@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_every_made_booking_code_is_accepted(body: str) -> None:
    code = make_booking_code(body)
    assert classify(code, FMT).value == code
    assert classify(make_booking_payload(code), FMT).kind is ScanKind.BOOKING_QR


@given(st.text(alphabet="0123456789", min_size=11, max_size=11), st.integers(2, 13), st.data())
def test_any_single_digit_error_in_a_booking_code_is_caught(
    body: str, pos: int, data: st.DataObject
) -> None:
    code = make_booking_code(body)
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != code[pos]]))
    with pytest.raises(CheckDigitMismatch):
        classify(code[:pos] + wrong + code[pos + 1 :], FMT)


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_every_made_receipt_payload_is_accepted(digits: str) -> None:
    assert classify(make_receipt_payload("YS" + digits), FMT).value == "YS" + digits


@given(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=4),
    st.integers(2000, 2099),
    st.integers(0, 999_999),
)
def test_every_made_case_barcode_is_accepted(dept: str, year: int, serial: int) -> None:
    code = make_case_barcode(dept, year, serial)
    scan = classify(code, FMT)
    assert (scan.kind, scan.value) == (ScanKind.CASE_BARCODE, code)


def _near_misses() -> st.SearchStrategy[str]:
    """Text built from pieces of real formats, so fuzzing reaches the deep branches."""
    pieces = st.sampled_from(
        [
            "HK1:",
            "B:",
            "R:",
            ":",
            "YY",
            "GA",
            "2024",
            BOOKING,
            RECEIPT_ID,
            "https://",
            HOST,
            "/?",
            "yyh=",
            "&",
            "%",
            "@",
            "[",
            "]",
            "#",
            ":8443",
        ]
    )
    return st.lists(st.one_of(pieces, st.text(max_size=6)), max_size=12).map("".join)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=600), _near_misses()))
def test_fuzz_classify_yields_a_scan_or_our_refusal_only(text: str) -> None:
    try:
        scan = classify(text, FMT, source="fuzz")
    except ScanRejected as exc:
        assert exc.raw_length == len(text)
        return
    assert isinstance(scan, Scan)
    assert scan.raw_length == len(text)
