"""The hall's case table: ``hall case import`` (run as staff run it, ``python -m hall``), ``hall
case add --recipient-stdin``, the ``case.lookup`` request with its audit, and the migration of
an older database. No raw ID number or full name may reach the database file, the output or
the log."""

from __future__ import annotations

import json
import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.scanner.formats import make_case_barcode
from hall.cases import CaseInvalid, parse_cases_csv
from hall.errors import RequestInvalid
from hall.service import Hall
from hall.settings import load_hall_settings
from hall.store import SCHEMA, open_db
from hallkiosk.clock import ManualClock
from hallkiosk.privacy import IdentityHasher, gb11643_check_digit
from tests.hall.helpers import local

ROOT = Path(__file__).resolve().parents[2]
CASE_1, CASE_2, CASE_3, CASE_4 = (make_case_barcode("GA", 2026, n) for n in (101, 102, 103, 104))


def id_number(serial: int) -> str:
    first17 = f"99010119800101{serial:03d}"  # region 990101: assigned to nobody
    return first17 + gb11643_check_digit(first17)


def wrong_check_digit(number: str) -> str:
    return number[:17] + ("0" if number[17] != "0" else "1")


ID_1, ID_2, ID_3, ID_4 = (id_number(n) for n in (1, 2, 3, 4))
BAD_ID = wrong_check_digit(id_number(5))
NAMES = ("李小明", "欧阳小红", "王五", "张三丰")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f"schema_version = 1\n[site]\ndata_dir = {json.dumps(str(tmp_path / 'd'))}\n")
    return path


def hall_cli(site: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hall", "--config", str(site), *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def hall(site: Path) -> Iterator[Hall]:
    """The hall as the CLI opens it (not serving), for reading what the CLI stored."""
    made = Hall(load_hall_settings([site]), ManualClock(local(2026, 11, 23, 17, 30)))
    yield made
    made.close()


def db_bytes(hall: Hall) -> bytes:
    path = hall.settings.db_path
    return b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal", "-shm")
        if Path(f"{path}{suffix}").exists()
    )


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_import_stores_good_rows_reports_a_bad_check_digit_by_line_and_keeps_no_raw_data(
    tmp_path: Path, site: Path
) -> None:
    csv_file = write_csv(
        tmp_path / "cases.csv",
        [
            "case_number,phone,id_number,name,matter",  # an extra column is ignored
            f"{CASE_1},13800138001,{ID_1},{NAMES[0]},居住证",
            f"{CASE_2},13800138002,{ID_2},{NAMES[1]},",
            f"{CASE_3},13800138003,{BAD_ID},{NAMES[2]},",  # line 4: check digit
            "",
            f"{CASE_4.lower()},+86 138 0013 8004,{ID_4[:17]}{ID_4[17].lower()},{NAMES[3]},",
        ],
    )
    done = hall_cli(site, "case", "import", str(csv_file))
    assert done.returncode == 1, done.stderr  # a row was refused
    assert "added 3, updated 0, unchanged 0; 1 row error(s)" in done.stdout
    assert "line 4: id_number: check digit does not match" in done.stdout
    assert "ignored columns: column 5 'matter'" in done.stdout

    hall = Hall(load_hall_settings([site]), ManualClock(local(2026, 11, 23, 17, 30)))
    try:
        hasher = hall.hasher
        assert hall.cases.recipient_of(CASE_1) == (hasher.hash_id_number(ID_1), "李*明")
        assert hall.cases.recipient_of(CASE_2) == (hasher.hash_id_number(ID_2), "欧**红")
        assert hall.cases.recipient_of(CASE_3) is None  # refused, not imported
        assert hall.cases.recipient_of(CASE_4) == (hasher.hash_id_number(ID_4), "张*丰")
        phones = dict(hall.store.all("SELECT case_number, phone FROM cases"))
        assert phones == {CASE_1: "13800138001", CASE_2: "13800138002", CASE_4: "13800138004"}
        stored = db_bytes(hall)
    finally:
        hall.close()
    # the file holds keyed hashes and masked names only: no ID number, not even the refused
    # one, and no full name, in any encoding a SQLite file could hold it
    for raw in (ID_1, ID_2, ID_4, BAD_ID, ID_4[:17] + ID_4[17].lower()):
        assert raw.encode() not in stored
        assert raw.encode("utf-16-le") not in stored
    for name in NAMES:
        assert name.encode() not in stored
        assert name.encode("utf-16-le") not in stored
    assert "李*明".encode() in stored  # (the check can see text at all)
    for raw in (ID_1, ID_2, ID_4, BAD_ID, *NAMES):
        assert raw not in done.stdout and raw not in done.stderr


def test_a_reimport_updates_and_keeps_cases_not_in_the_file(
    tmp_path: Path, site: Path, hall: Hall
) -> None:
    header = "办件编号,手机号,身份证号,姓名"  # the Chinese column names work too
    first = write_csv(
        tmp_path / "a.csv",
        [header, f"{CASE_1},13800138001,{ID_1},李小明", f"{CASE_2},13800138002,{ID_2},王五"],
    )
    assert hall_cli(site, "case", "import", str(first)).returncode == 0
    second = write_csv(
        tmp_path / "b.csv",
        [
            header,
            f"{CASE_1},13800138001,{ID_1},李小明",  # the same
            f"{CASE_2},13900139002,{ID_3},赵六",  # another phone and recipient
            f"{CASE_3},13800138003,{ID_3},赵六",
        ],
    )
    done = hall_cli(site, "--json", "case", "import", str(second))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "added": 1,
        "updated": 1,
        "unchanged": 1,
        "errors": [],
        "ignored_columns": [],
    }
    hasher = hall.hasher
    assert hall.cases.recipient_of(CASE_2) == (hasher.hash_id_number(ID_3), "赵*")
    assert hall.cases.recipient_of(CASE_1) == (hasher.hash_id_number(ID_1), "李*明")
    row = hall.store.one("SELECT phone, source FROM cases WHERE case_number = ?", CASE_2)
    assert row is not None and (row["phone"], row["source"]) == ("13900139002", "import")


def test_file_and_row_problems_are_reported_without_quoting_cells() -> None:
    hasher = IdentityHasher(b"a-test-identity-key-of-32-bytes!")
    missing = parse_cases_csv(
        f"case_number,phone,name\n{CASE_1},13800138001,李小明\n".encode(), hasher=hasher
    )
    assert [str(e) for e in missing.errors] == [
        "line 1: header: missing required columns: id_number"
    ]
    assert missing.records == []
    headerless = parse_cases_csv(f"{CASE_1},13800138001,{ID_1},李小明\n".encode(), hasher=hasher)
    assert headerless.records == [] and headerless.errors[0].field == "header"
    assert ID_1 not in str(headerless.errors[0])
    rows = parse_cases_csv(
        "\n".join(
            [
                "case_number,phone,id_number,name",
                f"{CASE_1},13800138001,{ID_1},李小明",
                f'"{CASE_2}",12345,{ID_2[:6]}********{ID_2[-4:]},王',  # line 3
                f"{CASE_1},13800138009,{ID_3},赵六",  # line 4: CASE_1 again
                f"GA/1,13800138004,{ID_4},张三丰,{ID_4}",  # line 5: a shifted row
                f"x!,13800138005,{ID_4},张三*",  # line 6
                f"{CASE_4},,,",  # line 7
            ]
        ).encode(),
        hasher=hasher,
    )
    assert rows.records == []
    assert [str(e) for e in rows.errors] == [
        "line 2: case_number: appears in more than one row (2, 4)",
        "line 3: phone: must be an 11-digit mainland mobile number (1, then 3-9, then 9 digits)",
        "line 3: id_number: is masked; the import needs the full number to match ID cards",
        "line 3: name: must be 2-32 characters without control codes",
        "line 4: case_number: appears in more than one row (2, 4)",
        "line 5: row: has 5 cells but the header names 4 columns (a comma inside an unquoted "
        "cell?)",
        "line 6: case_number: must be 4-40 letters, digits or '-'",
        "line 6: name: is masked; the import needs the full name to mask it the hall's way",
        "line 7: phone: is required",
        "line 7: id_number: is required",
        "line 7: name: is required",
    ]
    assert rows.rejected_lines == [2, 3, 4, 5, 6, 7]
    text = "\n".join(str(e) for e in rows.errors)
    for raw in (ID_1, ID_2, ID_3, ID_4, "李小明", "赵六", "张三丰"):
        assert raw not in text


def test_case_add_takes_the_recipient_from_stdin_and_a_phone_change_keeps_it(
    site: Path, hall: Hall
) -> None:
    added = hall_cli(
        site,
        "case",
        "add",
        CASE_1,
        "--phone",
        "13800138001",
        "--recipient-stdin",
        stdin=f"{ID_1}\n李小明\n",
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"case {CASE_1} registered for 李*明"
    recipient = (hall.hasher.hash_id_number(ID_1), "李*明")
    assert hall.cases.recipient_of(CASE_1) == recipient
    # a new phone number only: the recipient stays
    assert hall_cli(site, "case", "add", CASE_1, "--phone", "13900139001").returncode == 0
    assert hall.cases.recipient_of(CASE_1) == recipient
    row = hall.store.one("SELECT phone FROM cases WHERE case_number = ?", CASE_1)
    assert row is not None and row["phone"] == "13900139001"
    # a wrong check digit on stdin is refused plainly, without echoing it
    refused = hall_cli(
        site,
        "case",
        "add",
        CASE_2,
        "--phone",
        "13800138002",
        "--recipient-stdin",
        stdin=f"{BAD_ID}\n王五\n",
    )
    assert refused.returncode == 2
    assert "id_number: check digit does not match" in refused.stderr
    assert BAD_ID not in refused.stderr + refused.stdout
    assert hall.cases.recipient_of(CASE_2) is None
    assert b"\xe7\x8e\x8b\xe4\xba\x94" not in db_bytes(hall)  # 王五
    with pytest.raises(CaseInvalid):
        hall.register_case(CASE_3, phone=None, source="test", identity_hash="ab" * 32)


def test_case_lookup_answers_audits_and_refuses_malformed_args(
    site: Path, hall: Hall, caplog: pytest.LogCaptureFixture
) -> None:
    parsed, _summary = hall.import_cases(
        f"case_number,phone,id_number,name\n{CASE_1},13800138001,{ID_1},李小明\n".encode()
    )
    assert parsed.errors == []
    hall.register_case(CASE_2, phone="13800138002", source="test")  # a phone, no recipient
    identity_hash = hall.hasher.hash_id_number(ID_1)
    with caplog.at_level(logging.DEBUG):
        found = hall.handle_request(
            "kiosk-01", "case.lookup", {"case_number": CASE_1, "staff_id": "clerk7"}
        )
        assert found == {"found": True, "identity_hash": identity_hash, "masked_name": "李*明"}
        for case in (CASE_2, CASE_3):
            answer = hall.handle_request(
                "kiosk-02", "case.lookup", {"case_number": case, "staff_id": "clerk8"}
            )
            assert answer == {"found": False}
    logged = caplog.text
    assert CASE_1 in logged and "clerk7" in logged  # who asked about which case
    for private in (identity_hash, "李*明", "李小明", ID_1, "13800138001"):
        assert private not in logged

    problems = [
        ({"staff_id": "clerk7"}, "case_number: required, 4-40 letters, digits or '-'"),
        ({"case_number": 12, "staff_id": "clerk7"}, "case_number: required"),
        ({"case_number": "GA 1", "staff_id": "clerk7"}, "case_number: required"),
        ({"case_number": CASE_1}, "staff_id: required, 1-32 letters"),
        ({"case_number": CASE_1, "staff_id": ""}, "staff_id: required"),
        ({"case_number": CASE_1, "staff_id": "x" * 33}, "staff_id: required"),
        (
            {"case_number": CASE_1, "staff_id": "clerk7", "name": "李小明"},
            "case.lookup: unknown arguments 'name' (only case_number, staff_id)",
        ),
    ]
    for args, message in problems:
        with pytest.raises(RequestInvalid) as refused:
            hall.handle_request("kiosk-01", "case.lookup", args)
        assert refused.value.code == "request_invalid"
        assert message in str(refused.value)

    audit = hall.cases.lookups()
    assert [(a["device"], a["staff_id"], a["case_number"], a["found"]) for a in audit] == [
        ("kiosk-02", "clerk8", CASE_3, False),
        ("kiosk-02", "clerk8", CASE_2, False),
        ("kiosk-01", "clerk7", CASE_1, True),
    ]
    listed = hall_cli(site, "case", "lookups", "--case", CASE_1)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.strip().endswith(f"{CASE_1} by clerk7 at kiosk-01: found")
    assert len(listed.stdout.strip().splitlines()) == 1
    assert "case.lookup" in hall.request_kinds


def test_a_v3_database_is_migrated_with_its_cases(tmp_path: Path) -> None:
    path = tmp_path / "hall.db"
    conn = sqlite3.connect(path, isolation_level=None)
    for number in range(3):
        for statement in SCHEMA[number].split(";\n"):
            if statement.strip():
                conn.execute(statement)
    conn.execute("PRAGMA user_version=3")
    conn.execute(
        "INSERT INTO cases (case_number, phone, identity_hash, source, updated_at)"
        " VALUES ('SB2026-0001', '13800138000', NULL, 'cli', 'x')"
    )
    conn.close()
    migrated = open_db(path)
    try:
        assert migrated.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)
        row = migrated.execute("SELECT * FROM cases").fetchone()
        assert (row["case_number"], row["phone"], row["name_masked"]) == (
            "SB2026-0001",
            "13800138000",
            None,
        )
        assert migrated.execute("SELECT count(*) FROM case_lookups").fetchone()[0] == 0
    finally:
        migrated.close()
