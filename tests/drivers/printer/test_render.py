"""Byte-exact ESC/POS for each layout element, written out by hand from the command set."""

from __future__ import annotations

import math

import pytest
from escpos.printer import Dummy
from PIL import Image, ImageOps
from pyzbar.pyzbar import decode

from drivers.printer.errors import LayoutError
from drivers.printer.escpos_render import render_layout
from drivers.printer.layout import Align, Cut, Feed, Layout, QRCode, Separator, Text
from drivers.printer.profiles import BUDGET_58_RASTER, GENERIC_58, GENERIC_80
from drivers.printer.qrimage import qr_matrix

JOB_START = bytes.fromhex("1b40 1c26")  # ESC @, FS & (Chinese mode on)


def render(*elements: object, profile: object = GENERIC_58) -> bytes:
    return render_layout(Layout("test", tuple(elements)), profile)  # type: ignore[arg-type]


def test_chinese_text_is_gb18030_after_fs_ampersand() -> None:
    # 取 C8A1, 号 BAC5, full-width colon A3BA: the escpos library's CJK path
    assert render(Text("取号：A001")) == JOB_START + bytes.fromhex("c8a1 bac5 a3ba") + b"A001\n"


def test_full_width_punctuation_alone_is_gb18030_too() -> None:
    # （ A3A8, ） A3A9, ： A3BA, 。 A1A3
    assert render(Text("（）：。")) == JOB_START + bytes.fromhex("a3a8 a3a9 a3ba a1a3") + b"\n"


def test_python_escpos_alone_prints_question_marks_for_punctuation_only() -> None:
    # the library behaviour the renderer works around (hardware notes): no CJK ideograph in the
    # string, so it takes the code-page path, where these characters do not exist
    printer = Dummy()
    printer.text("（）：。\n")
    assert printer.output.endswith(b"????\n")
    assert bytes.fromhex("a3a8") not in printer.output


def test_other_non_ascii_without_ideographs_is_gb18030() -> None:
    # 〇 (U+3007) is outside U+4E00-U+9FA5, ¥ is not in CP437's slot the library picks first
    assert render(Text("〇·")) == JOB_START + "〇·".encode("gb18030") + b"\n"
    assert "〇·".encode("gb18030") == bytes.fromhex("a996 a1a4")


def test_ascii_text_is_sent_as_is_without_code_page_switch() -> None:
    assert render(Text("A023 ok")) == JOB_START + b"A023 ok\n"


def test_size_bold_align_then_back_to_normal() -> None:
    data = render(
        Text("A023", size=4, bold=True, align=Align.CENTER),
        Text("ok"),
    )
    assert data == JOB_START + (
        bytes.fromhex("1d2133 1b4501 1b6101")  # GS ! 0x33 (4x4), ESC E 1, ESC a 1
        + b"A023\n"
        + bytes.fromhex("1d2100 1b4500 1b6100")
        + b"ok\n"
    )


def test_unchanged_style_is_not_resent() -> None:
    data = render(Text("a", bold=True), Text("b", bold=True), Text("c", size=2, bold=True))
    assert data == JOB_START + bytes.fromhex("1b4501") + b"a\nb\n" + bytes.fromhex("1d2111") + (
        b"c\n"
    )


def test_wrapping_counts_chinese_as_two_columns() -> None:
    # 58 mm: 32 columns; 17 Chinese characters = 34 columns -> 16 + 1
    text = "一二三四五六七八九十甲乙丙丁戊己庚"
    data = render(Text(text))
    assert data == JOB_START + text[:16].encode("gb18030") + b"\n" + "庚".encode("gb18030") + (
        b"\n"
    )
    # at size 2 a line holds 16 columns: "A023" + 6 Chinese = 16 columns, the rest wraps
    data = render(Text("A023一二三四五六七", size=2))
    assert (
        data
        == JOB_START
        + bytes.fromhex("1d2111")
        + b"A023"
        + "一二三四五六".encode("gb18030")
        + b"\n"
        + "七".encode("gb18030")
        + b"\n"
    )


def test_separator_fills_the_line() -> None:
    assert render(Separator()) == JOB_START + b"-" * 32 + b"\n"
    assert render(Separator("="), profile=GENERIC_80) == JOB_START + b"=" * 48 + b"\n"


def test_native_qr_is_gs_paren_k() -> None:
    payload = "https://hall.example.gov.cn/q/1"
    data = render(QRCode(payload))
    store = bytes([len(payload) + 3, 0]) + b"1P0" + payload.encode()
    assert data == JOB_START + bytes.fromhex("1b6101") + (
        bytes.fromhex("1d286b 0400 3141 3200")  # model 2
        + bytes.fromhex("1d286b 0300 3143 06")  # module 6 dots (profile)
        + bytes.fromhex("1d286b 0300 3145 31")  # error level M
        + bytes.fromhex("1d286b")
        + store
        + bytes.fromhex("1d286b 0300 3151 30")  # print
    )


def test_qr_error_level_from_the_element_wins() -> None:
    data = render(QRCode("X", error_level="H"))
    assert bytes.fromhex("1d286b 0300 3145 33") in data


def test_raster_qr_is_gs_v_0_of_the_same_symbol() -> None:
    payload = "https://hall.example.gov.cn/q/1"
    data = render(QRCode(payload), profile=BUDGET_58_RASTER)
    assert data.startswith(JOB_START + bytes.fromhex("1b6101 1d7630 00"))
    assert b"\x1d(k" not in data
    side = len(qr_matrix(payload, "M")) * 6
    width_bytes = math.ceil(side / 8)
    header = data[len(JOB_START) + 3 + 4 : len(JOB_START) + 3 + 8]
    assert header == bytes([width_bytes, 0, side & 0xFF, side >> 8])
    raster = data[len(JOB_START) + 3 + 8 :]
    assert len(raster) == width_bytes * side
    image = Image.frombytes("1", (width_bytes * 8, side), raster, "raw", "1;I")
    assert decode(ImageOps.expand(image.convert("L"), 24, 255))[0].data.decode() == payload


def test_qr_module_shrinks_to_fit_the_paper() -> None:
    payload = "https://hall.example.gov.cn/q/" + "x" * 300
    side = len(qr_matrix(payload, "M"))
    data = render(QRCode(payload))
    assert bytes.fromhex("1d286b 0300 3143") + bytes([384 // side]) in data
    assert 384 // side < 6


def test_qr_too_big_for_the_paper_is_refused() -> None:
    narrow = GENERIC_58.model_copy(update={"width_dots": 128, "name": "narrow"})
    with pytest.raises(LayoutError, match="does not fit"):
        render(QRCode("x" * 300), profile=narrow)
    with pytest.raises(LayoutError):
        QRCode("x" * 601)


def test_cut_per_profile() -> None:
    assert render(Cut(), profile=GENERIC_80) == JOB_START + bytes.fromhex("1b6404 1d5600")
    assert render(Cut(), profile=GENERIC_58) == JOB_START + bytes.fromhex("1b6404 1d5601")
    # no cutter: feed past the tear bar only
    assert render(Cut(), profile=BUDGET_58_RASTER) == JOB_START + bytes.fromhex("1b6403")


def test_feed() -> None:
    assert render(Feed(2)) == JOB_START + bytes.fromhex("1b6402")


def test_control_characters_in_text_are_refused() -> None:
    with pytest.raises(LayoutError):
        Text("A\n023")
    with pytest.raises(LayoutError):
        Text("\x1d!\x77")
