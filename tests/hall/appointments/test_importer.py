"""Parsing the booking platform's CSV and JSON exports into AppointmentRecords."""

from __future__ import annotations

import csv
import io
import json
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hall.appointments.importer import (
    FIELDS,
    ImportResult,
    parse_csv,
    parse_json,
)
from hallkiosk.privacy import IdentityHasher, gb11643_check_digit

TZ = ZoneInfo("Asia/Shanghai")
HASHER = IdentityHasher(b"test-identity-key-0123456789abcd")


def make_id(first17: str) -> str:
    return first17 + gb11643_check_digit(first17)


def with_wrong_check_digit(id_number: str) -> str:
    last = "0" if id_number[17] != "0" else "1"
    return id_number[:17] + last


ID_1 = make_id("33010619900101123")
ID_2 = make_id("11010519491231002")  # the GB 11643 worked example, ends in X
ID_3 = make_id("44030519851120456")
HEADER_ZH = ["预约号", "身份证号", "姓名", "事项编码", "事项名称", "区域", "开始时间", "结束时间"]
HEADER_ZH += ["手机号", "地点", "状态"]
DEFAULTS = {
    "booking_code": "YY-20240506-001",
    "id_number": ID_1,
    "name": "张小三",
    "matter_code": "330100-XK-001",
    "matter_name": "不动产登记",
    "area": "estate",
    "slot_start": "2024-05-06 09:00",
    "slot_end": "2024-05-06 09:30",
    "phone": "13800138000",
    "place": "3号窗口",
    "status": "已预约",
}


def row(**over: str) -> list[str]:
    values = {**DEFAULTS, **over}
    return [values[f] for f in FIELDS]


def csv_text(rows: list[list[str]], header: list[str] = HEADER_ZH) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # what Excel writes
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def parse(text: str, **kw: object) -> ImportResult:
    return parse_csv(text.encode("utf-8"), hasher=HASHER, tz=TZ, **kw)  # type: ignore[arg-type]


def messages(result: ImportResult) -> list[str]:
    return [str(e) for e in result.errors]


# --- encodings and headers ---------------------------------------------------------------------


def test_chinese_headers_give_a_full_record() -> None:
    text = csv_text(
        [row(id_number=ID_2.lower(), phone="+86 138-0013-8000", status="已取消", name="欧阳小明")]
    )
    result = parse(text)
    assert result.errors == []
    (rec,) = result.records
    assert rec.booking_code == "YY-20240506-001"
    assert rec.identity_hash == HASHER.hash_id_number(ID_2)
    assert rec.id_masked == "1101**********002X"
    assert rec.name_masked == "欧**明"
    assert rec.matter_code == "330100-XK-001"
    assert rec.matter_name == "不动产登记"
    assert rec.area == "estate"
    assert rec.slot_start == datetime(2024, 5, 6, 9, 0, tzinfo=TZ)
    assert rec.slot_end == datetime(2024, 5, 6, 9, 30, tzinfo=TZ)
    assert rec.phone == "13800138000"
    assert rec.place == "3号窗口"
    assert rec.status == "cancelled"


def test_english_headers_with_utf8_bom() -> None:
    data = ("\ufeff" + csv_text([row()], header=list(FIELDS))).encode("utf-8")
    result = parse_csv(data, hasher=HASHER, tz=TZ)
    assert result.errors == []
    assert [r.booking_code for r in result.records] == ["YY-20240506-001"]


def test_gb18030_excel_export() -> None:
    text = csv_text([row(name="欧阳小明", matter_name="机动车驾驶证补领（遗失）")])
    data = text.encode("gb18030")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the test only means something if the bytes are not UTF-8
    result = parse_csv(data, hasher=HASHER, tz=TZ)
    assert result.errors == []
    (rec,) = result.records
    assert rec.name_masked == "欧**明"
    assert rec.matter_name == "机动车驾驶证补领（遗失）"


def test_header_aliases_and_required_markers() -> None:
    header = ["*预约编号", "证件号码", "申请人姓名", "事项代码", "事项名称", "业务区域"]
    header += ["预约开始时间", "预约结束时间", "手机号码", "办理地点", "预约状态"]
    result = parse(csv_text([row()], header=header))
    assert result.errors == []
    assert len(result.records) == 1


def test_optional_columns_may_be_absent() -> None:
    header = list(FIELDS[:8])
    result = parse(csv_text([row()[:8]], header=header))
    assert result.errors == []
    (rec,) = result.records
    assert (rec.phone, rec.place, rec.status) == (None, None, "booked")


def test_unknown_columns_are_reported_once_and_nothing_imported() -> None:
    header = [*HEADER_ZH, "备注", "source"]
    result = parse(csv_text([[*row(), "x", "y"], [*row(booking_code="YY-2"), "", ""]], header))
    assert result.records == []
    assert messages(result) == [
        "row 1: header: unknown columns: column 12 '备注', column 13 'source'; known: "
        "booking_code, id_number, name, matter_code, matter_name, area, slot_start, slot_end, "
        "phone, place, status or their Chinese names"
    ]


def test_missing_and_repeated_columns() -> None:
    header = ["预约号", "booking_code", "身份证号", "姓名", "事项编码", "区域", "开始时间"]
    result = parse(
        csv_text([["A1B2", "A1B2", ID_1, "张三", "X1", "a", "2024-05-06 09:00"]], header)
    )
    assert result.records == []
    assert messages(result) == [
        "row 1: header: repeated columns: booking_code (columns 1 and 2)",
        "row 1: header: missing required columns: matter_name, slot_end",
    ]


def test_a_file_without_header_row_quotes_none_of_its_first_row() -> None:
    text = csv_text([row()], header=row(booking_code="YY-0"))
    result = parse(text)
    assert result.records == []
    (error,) = result.errors
    assert (error.row, error.field) == (1, "header")
    assert "header row" in error.message
    assert ID_1 not in str(error)
    assert "张小三" not in str(error)


def test_utf16_and_binary_files_are_refused_clearly() -> None:
    utf16 = csv_text([row()]).encode("utf-16")
    assert messages(parse_csv(utf16, hasher=HASHER, tz=TZ)) == [
        "row 0: file: is UTF-16 (Excel's 'Unicode text'); save it as 'CSV UTF-8' or plain CSV "
        "instead"
    ]
    assert messages(parse_csv(b"\x80\x80\xff", hasher=HASHER, tz=TZ)) == [
        "row 0: file: is neither UTF-8 nor GB18030 text"
    ]
    assert messages(parse_csv(b" \r\n", hasher=HASHER, tz=TZ)) == ["row 0: file: is empty"]


def test_a_cell_beyond_the_csv_field_limit_is_invalid_csv() -> None:
    text = csv_text([row(booking_code="YY-1"), row(place="x" * 140_000), row()])
    result = parse(text)
    assert result.records == []
    assert messages(result) == [
        "row 0: file: is not valid CSV near line 3: field larger than field limit (131072)"
    ]


def test_nul_in_a_cell_is_a_row_error() -> None:
    result = parse(csv_text([row(place="3\x00")]))
    assert messages(result) == ["row 2: place: must be 1-200 characters without control codes"]


def test_tab_separated_export() -> None:
    text = "\t".join(HEADER_ZH) + "\n" + "\t".join(row()) + "\n"
    result = parse(text)
    assert result.errors == []
    assert len(result.records) == 1


def test_header_only_file_is_an_empty_import() -> None:
    result = parse(csv_text([]))
    assert result == ImportResult([], [])


# --- rows ------------------------------------------------------------------------------------


def test_blank_and_padding_lines_keep_spreadsheet_row_numbers() -> None:
    text = csv_text([row()])
    text += "\r\n" + ",,,,,,,,,,\r\n"  # rows 3 and 4: Excel's padding
    text += ",".join(row(booking_code="YY-5", id_number=with_wrong_check_digit(ID_3))) + "\r\n"
    result = parse(text)
    assert messages(result) == ["row 5: id_number: check digit does not match"]
    assert [r.booking_code for r in result.records] == ["YY-20240506-001"]


def test_a_quoted_multiline_cell_is_one_row() -> None:
    text = csv_text(
        [row(place="A区\n3号窗口"), row(booking_code="YY-3", area="B")]
    )  # the first data record spans two lines
    result = parse(text)
    assert result.records[0].place == "A区 3号窗口"
    assert messages(result) == [
        "row 3: area: must be a business area id: 1-32 characters of a-z, 0-9 and -"
    ]


def test_excel_text_tricks_are_undone() -> None:
    result = parse(csv_text([row(booking_code='="00012345"', id_number="'" + ID_1)]))
    assert result.errors == []
    (rec,) = result.records
    assert rec.booking_code == "00012345"
    assert rec.identity_hash == HASHER.hash_id_number(ID_1)


def test_every_row_error() -> None:
    rows = [
        row(booking_code="YY-OK-1"),  # row 2: fine
        row(booking_code="ab"),
        row(booking_code="YY-4", id_number=with_wrong_check_digit(ID_1)),
        row(booking_code="YY-5", id_number="1234"),
        row(booking_code="YY-6", id_number="3301**********1234"),
        row(booking_code="YY-7", id_number="3.30106E+17"),
        row(booking_code="YY-8", name="张\x07三"),
        row(booking_code="YY-9", matter_code="事项1"),
        row(booking_code="YY-10", matter_name="办" * 201),
        row(booking_code="YY-11", area="A区"),
        row(booking_code="YY-12", slot_start="tomorrow morning"),
        row(booking_code="YY-13", slot_end="2024-05-06 08:59"),
        row(booking_code="YY-14", slot_end="2024-05-07 09:01"),
        row(booking_code="YY-15", phone="12345678901"),
        row(booking_code="YY-16", status="maybe"),
        row(booking_code="YY-17", matter_name="", name=" "),
        row(booking_code="YY-18", slot_start="1999-05-06 09:00"),
        [*row(booking_code="YY-19"), "extra"],
        row(booking_code="YY-DUP"),
        row(booking_code="YY-DUP", id_number=ID_2),
        row(booking_code="YY-22", place="窗口\x1b"),
        row(booking_code="YY-23", slot_start="2024-02-30 09:00"),
    ]
    result = parse(csv_text(rows))
    assert [r.booking_code for r in result.records] == ["YY-OK-1"]
    assert messages(result) == [
        "row 3: booking_code: must be 4-32 characters of A-Z, a-z, 0-9 and -",
        "row 4: id_number: check digit does not match",
        "row 5: id_number: must be an 18-character resident ID number: 17 digits, then a digit "
        "or X",
        "row 6: id_number: is masked; the import needs the full number to match ID cards",
        "row 7: id_number: was turned into a number by Excel (like 3.30106E+17); export the "
        "column as text",
        "row 8: name: must be 1-64 characters without control codes",
        "row 9: matter_code: must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-'",
        "row 10: matter_name: must be 1-200 characters without control codes",
        "row 11: area: must be a business area id: 1-32 characters of a-z, 0-9 and -",
        "row 12: slot_start: must be a date and time like 2024-05-06 09:30, 2024/5/6 9:30 or "
        "2024-05-06T09:30:00+08:00",
        "row 13: slot_end: must be after slot_start",
        "row 14: slot_end: must be at most 24 hours after slot_start",
        "row 15: phone: must be an 11-digit mainland mobile number (1, then 3-9, then 9 digits)",
        "row 16: status: must be booked (已预约) or cancelled (已取消)",
        "row 17: name: is required",
        "row 17: matter_name: is required",
        "row 18: slot_start: year must be between 2000 and 2099",
        "row 19: row: has 12 cells but the header names 11 columns (a comma inside an unquoted "
        "cell?)",
        "row 20: booking_code: appears in more than one row (20, 21)",
        "row 21: booking_code: appears in more than one row (20, 21)",
        "row 22: place: must be 1-200 characters without control codes",
        "row 23: slot_start: must be a date and time like 2024-05-06 09:30, 2024/5/6 9:30 or "
        "2024-05-06T09:30:00+08:00",
    ]
    assert result.rejected_rows == list(range(3, 24))


def test_duplicate_booking_code_rejects_every_copy_even_beside_a_bad_row() -> None:
    rows = [row(), row(id_number="bad"), row(booking_code="YY-OTHER")]
    result = parse(csv_text(rows))
    assert [r.booking_code for r in result.records] == ["YY-OTHER"]
    assert messages(result) == [
        "row 2: booking_code: appears in more than one row (2, 3)",
        "row 3: id_number: must be an 18-character resident ID number: 17 digits, then a digit "
        "or X",
        "row 3: booking_code: appears in more than one row (2, 3)",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-06 09:00",
        "2024-05-06 09:00:00",
        "2024-05-06T09:00",
        "2024/5/6 9:00",
        "2024/05/06 09:00:00",
        "2024.5.6 9:00",
        "2024年5月6日 9:00",
        "2024-05-06T01:00:00Z",
        "2024-05-06T03:00:00+02:00",
    ],
)
def test_time_forms_land_in_the_hall_zone(text: str) -> None:
    result = parse(csv_text([row(slot_start=text, slot_end="2024-05-06 10:00")]))
    assert result.errors == []
    start = result.records[0].slot_start
    assert start.tzinfo is TZ
    assert start.astimezone(UTC) == datetime(2024, 5, 6, 1, 0, tzinfo=UTC)


def test_a_naive_time_means_the_configured_hall_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    data = csv_text([row()]).encode()
    (rec,) = parse_csv(data, hasher=HASHER, tz=berlin).records
    assert rec.slot_start.utcoffset() == timedelta(hours=2)  # CEST in May
    assert rec.slot_start.astimezone(UTC) == datetime(2024, 5, 6, 7, 0, tzinfo=UTC)


def test_a_time_in_a_dst_change_is_refused() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    rows = [
        row(slot_start="2024-03-31 02:30", slot_end="2024-03-31 04:00"),  # does not exist
        row(booking_code="YY-2", slot_start="2024-10-27 01:00", slot_end="2024-10-27 02:30"),
    ]  # 02:30 on 27 October happens twice
    result = parse_csv(csv_text(rows).encode(), hasher=HASHER, tz=berlin)
    message = "falls in a daylight-saving change of the hall's time zone; give a UTC offset"
    assert messages(result) == [f"row 2: slot_start: {message}", f"row 3: slot_end: {message}"]


# --- limits ------------------------------------------------------------------------------------


def test_row_limit() -> None:
    rows = [row(booking_code=f"YY-{n:04d}") for n in range(3)]
    assert len(parse(csv_text(rows), max_rows=3).records) == 3
    result = parse(csv_text(rows), max_rows=2)
    assert result.records == []
    assert messages(result) == ["row 0: file: has more than 2 rows (the limit)"]


def test_byte_limit() -> None:
    data = csv_text([row()]).encode()
    assert len(parse_csv(data, hasher=HASHER, tz=TZ, max_bytes=len(data)).records) == 1
    result = parse_csv(data, hasher=HASHER, tz=TZ, max_bytes=len(data) - 1)
    assert messages(result) == [
        f"row 0: file: is {len(data)} bytes, more than the limit of {len(data) - 1}"
    ]


# --- JSON --------------------------------------------------------------------------------------


def json_row(**over: object) -> dict[str, object]:
    values: dict[str, object] = {**DEFAULTS, "status": "booked", **over}
    return {k: v for k, v in values.items() if v is not ...}


def pj(doc: object, **kw: object) -> ImportResult:
    data = json.dumps(doc, ensure_ascii=False).encode("utf-8")
    return parse_json(data, hasher=HASHER, tz=TZ, **kw)  # type: ignore[arg-type]


def test_json_list_and_wrapper_give_the_same_records() -> None:
    items = [
        json_row(),
        json_row(booking_code="YY-2", id_number=ID_2, slot_start="2024-05-06T09:00+08:00"),
    ]
    plain, wrapped = pj(items), pj({"appointments": items})
    assert plain.errors == [] and wrapped.errors == []
    assert plain.records == wrapped.records
    assert [r.id_masked for r in plain.records] == ["3301**********123X", "1101**********002X"]
    assert plain.records[1].slot_start == datetime(2024, 5, 6, 9, 0, tzinfo=TZ)


def test_json_optional_keys_may_be_null_or_absent() -> None:
    result = pj([json_row(phone=None, place=..., status=...)])
    assert result.errors == []
    (rec,) = result.records
    assert (rec.phone, rec.place, rec.status) == (None, None, "booked")


def test_json_row_errors() -> None:
    items: list[object] = [
        json_row(phone=13800138000, booking_code="YY-1"),
        "not an object",
        json_row(booking_code="YY-3", id_number=with_wrong_check_digit(ID_3), area=None),
        json_row(booking_code="YY-4", status="cancelled"),
    ]
    result = pj(items)
    assert messages(result) == [
        "row 1: phone: must be a string, not a number",
        "row 2: row: must be an object, not a string",
        "row 3: id_number: check digit does not match",
        "row 3: area: is required",
    ]
    assert [(r.booking_code, r.status) for r in result.records] == [("YY-4", "cancelled")]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            [json_row(), json_row(booking_code="YY-2", note="x")],
            "unknown keys: 'note' (first in row 2); the keys are: " + ", ".join(FIELDS),
        ),
        (
            {"appointments": [], "count": 0},
            'must be a list of appointments or {"appointments": [...]}, nothing else',
        ),
        ({"rows": []}, 'must be a list of appointments or {"appointments": [...]}, nothing else'),
        ("hello", 'must be a list of appointments or {"appointments": [...]}'),
        ([json_row(booking_code=f"YY-{n}") for n in range(4)], "has more than 3 rows (the limit)"),
    ],
)
def test_json_file_errors(doc: object, message: str) -> None:
    result = pj(doc, max_rows=3)
    assert result.records == []
    assert messages(result) == [f"row 0: file: {message}"]


def test_json_syntax_errors_do_not_quote_the_document() -> None:
    data = ('[{"booking_code": "YY-1", "id_number": "' + ID_1 + '",}]').encode()
    result = parse_json(data, hasher=HASHER, tz=TZ)
    assert messages(result) == [
        "row 0: file: is not valid JSON: Expecting property name enclosed in double quotes at "
        "line 1 column 61"
    ]
    repeated = b'[{"booking_code": "YY-1", "booking_code": "YY-2"}]'
    assert messages(parse_json(repeated, hasher=HASHER, tz=TZ)) == [
        "row 0: file: an object repeats the key 'booking_code'"
    ]
    assert messages(parse_json("[]".encode("utf-16"), hasher=HASHER, tz=TZ)) == [
        "row 0: file: is not UTF-8 (JSON must be UTF-8)"
    ]
    deep = b"[" * 100_000 + b"]" * 100_000
    assert messages(parse_json(deep, hasher=HASHER, tz=TZ)) == [
        "row 0: file: is not valid JSON: nested too deeply"
    ]
    assert pj([]) == ImportResult([], [])


# --- privacy -----------------------------------------------------------------------------------


def test_raw_id_numbers_names_and_phones_never_leave_the_parser(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets_ = [ID_1, ID_1[:17], ID_3, ID_3[:17], "张小三", "13912345678"]
    rows = [
        row(),
        row(booking_code="YY-2", id_number=with_wrong_check_digit(ID_3), phone="139123456789"),
        row(booking_code="YY-3", id_number=ID_3, name="张小三\x00", area=ID_1),
        row(booking_code="YY-4", id_number=ID_3[:17], slot_start=ID_1, place="13912345678\x07"),
        row(booking_code="YY-5", name="13912345678", id_number=ID_3, status=ID_1),
    ]
    csv_result = parse(csv_text(rows))
    json_result = pj([dict(zip(FIELDS, r, strict=True)) for r in rows])
    for result in (csv_result, json_result):
        assert len(result.errors) >= 6
        shown = repr(result) + "\n".join(str(e) for e in result.errors)
        for secret in secrets_:
            assert secret not in shown
    assert "records" in caplog.text  # the parser logged its summary...
    for secret in secrets_:
        assert secret not in caplog.text  # ...and nothing personal


_DATA_ALPHABET = st.sampled_from("0123456789X张王李欧阳明华")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(st.text(_DATA_ALPHABET, min_size=6, max_size=20), min_size=11, max_size=13))
def test_no_error_message_ever_quotes_a_cell(cells: list[str]) -> None:
    text = csv_text([row(), cells])
    result = parse(text)
    shown = "\n".join(str(e) for e in result.errors)
    for cell in cells:
        assert cell not in shown
