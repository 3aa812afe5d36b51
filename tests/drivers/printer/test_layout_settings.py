"""Slip contents, privacy checks on slips, status decoding, and the settings model."""

from __future__ import annotations

from datetime import datetime

import pytest
from pydantic import ValidationError

from drivers.printer.errors import LayoutError
from drivers.printer.escpos_render import render_layout
from drivers.printer.layout import (
    PickupSlip,
    Text,
    pickup_slip_layout,
    queue_ticket_layout,
    receipt_layout,
    wrap_text,
)
from drivers.printer.profiles import GENERIC_58, GENERIC_80
from drivers.printer.settings import PrinterSettings
from drivers.printer.status import PaperStatus, decode_paper, is_status_byte
from tests.drivers.printer.conftest import (
    QUEUE_PAYLOAD,
    SHANGHAI,
    pickup_slip,
    queue_ticket,
    receipt,
)


def texts(layout: object) -> list[str]:
    return [e.text for e in layout.elements if isinstance(e, Text)]  # type: ignore[attr-defined]


def test_queue_ticket_content() -> None:
    layout = queue_ticket_layout(queue_ticket())
    lines = texts(layout)
    assert "A023" in lines and "收件号" in lines and "业务：社保医保" in lines
    assert "您前面还有 5 人等候" in lines and "预计等候约 15 分钟" in lines
    assert "取号时间：2025-05-01 08:30" in lines
    assert layout.qr_payloads() == [QUEUE_PAYLOAD]
    assert not any("离线" in line for line in lines)
    number = next(e for e in layout.elements if isinstance(e, Text) and e.text == "A023")
    assert number.size == 4 and number.bold


def test_offline_ticket_is_marked_and_makes_no_promise() -> None:
    lines = texts(queue_ticket_layout(queue_ticket(offline=True)))
    assert "【离线取号】" in lines
    assert "等候人数请以叫号屏为准" in lines
    assert not any("前面还有" in line or "预计等候" in line for line in lines)


def test_receipt_and_pickup_slip_content() -> None:
    lines = texts(receipt_layout(receipt()))
    assert "预审编号：YS20250501000123" in lines and "申请人：张*三" in lines
    slip = texts(pickup_slip_layout(pickup_slip()))
    assert "领取人：欧**明" in slip and "证件号码：1101**********002X" in slip
    assert "柜格：1号柜 12格" in slip and "领取时间：2025-05-01 22:05" in slip


def test_raw_id_number_never_reaches_the_bytes() -> None:
    for profile in (GENERIC_58, GENERIC_80):
        data = render_layout(pickup_slip_layout(pickup_slip()), profile)
        assert b"11010519491231002X" not in data
        assert "欧阳小明".encode("gb18030") not in data
        assert b"1101**********002X" in data


def test_unmasked_identity_is_refused() -> None:
    now = datetime(2025, 5, 1, 22, 5, tzinfo=SHANGHAI)
    common = {"hall_name": "h", "case_number": "c", "certificate": "x", "bay": "b"}
    with pytest.raises(LayoutError, match="ID number"):
        PickupSlip(masked_name="张*", masked_id="11010519491231002X", picked_up_at=now, **common)
    with pytest.raises(LayoutError, match="name"):
        PickupSlip(masked_name="张三", masked_id="1101**********002X", picked_up_at=now, **common)


def test_naive_time_is_refused() -> None:
    ticket = queue_ticket()
    naive = ticket.__class__(**{**ticket.__dict__, "issued_at": datetime(2025, 5, 1, 8, 30)})  # noqa: DTZ001
    with pytest.raises(LayoutError, match="timezone"):
        queue_ticket_layout(naive)


def test_wrap_text() -> None:
    assert wrap_text("", 32) == [""]
    assert wrap_text("ab" * 20, 32) == ["ab" * 16, "ab" * 4]
    # a full-width character never splits across lines
    assert wrap_text("a" + "中" * 16, 32) == ["a" + "中" * 15, "中"]


def test_status_byte_decoding() -> None:
    assert is_status_byte(0x12) and is_status_byte(0x7E) and is_status_byte(0x1A)
    assert not is_status_byte(0x10) and not is_status_byte(0x00) and not is_status_byte(0x93)
    assert decode_paper(0x12, near_end_sensor=True) is PaperStatus.OK
    assert decode_paper(0x1E, near_end_sensor=True) is PaperStatus.NEAR_END
    assert decode_paper(0x1E, near_end_sensor=False) is PaperStatus.OK  # no such sensor
    assert decode_paper(0x72, near_end_sensor=False) is PaperStatus.OUT
    assert decode_paper(0x7E, near_end_sensor=True) is PaperStatus.OUT


def test_settings_defaults_ranges_and_backend_rules() -> None:
    settings = PrinterSettings()
    assert settings.backend == "sim" and settings.resolved_profile() is GENERIC_80
    with pytest.raises(ValidationError, match="extra"):
        PrinterSettings.model_validate({"bauds": 9600})
    with pytest.raises(ValidationError):
        PrinterSettings.model_validate({"status_timeout_ms": 5})
    with pytest.raises(ValidationError):
        PrinterSettings.model_validate({"baud": 9601})
    with pytest.raises(ValidationError, match="needs host"):
        PrinterSettings.model_validate({"backend": "network"})
    with pytest.raises(ValidationError, match="usb_vendor_id"):
        PrinterSettings.model_validate({"backend": "usb"})
    with pytest.raises(ValidationError, match="not known"):
        PrinterSettings.model_validate({"profile": "tm-t88"})


def test_site_defined_profile_from_toml_data() -> None:
    settings = PrinterSettings.model_validate(
        {
            "backend": "serial",
            "url": "/dev/ttyS0",
            "profile": "hall-kiosk-76",
            "custom_profiles": {
                "hall-kiosk-76": {
                    "name": "hall-kiosk-76",
                    "paper_width_mm": 76,
                    "width_dots": 512,
                    "chars_per_line": 42,
                    "native_qr": False,
                    "near_end_sensor": True,
                    "chinese_on_hex": "1c26",
                }
            },
        }
    )
    profile = settings.resolved_profile()
    assert profile.width_dots == 512 and not profile.native_qr
    assert profile.chinese_on == b"\x1c\x26"
    with pytest.raises(ValidationError, match="pattern"):
        PrinterSettings.model_validate(
            {
                "custom_profiles": {
                    "x": {**profile.model_dump(), "name": "x", "chinese_on_hex": "1c2"}
                },
            }
        )
