"""``hwctl idcard`` run for real (a subprocess) against pcscd + vpcd and the GA 467 simulator,
and the GA 467 adapter behind ``open_reader``."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.identity import (
    CardInserted,
    CardRemoved,
    IdentityReaderSettings,
    WatchCallbacks,
    open_reader,
)
from drivers.identity.ga467.sim_runner import SimControl
from drivers.identity.vcard.cards import SYNTHETIC_ID_NUMBER
from hallkiosk.privacy import IdentityHasher
from tests.fixtures import wait_until
from tests.fixtures.pcscd import READER, Pcscd
from tests.fixtures.processes import REPO_ROOT, STARTUP_TIMEOUT_S, Spawner

HWCTL_TIMEOUT_S = 60
# our synthetic number (region 990101, born 1950-01-01, odd sequence: male) on a GA 467 card
MY_PERSON = {"id_number": SYNTHETIC_ID_NUMBER, "birth_date": "19500101", "sex": "1"}


def hwctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drivers.hwctl", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=HWCTL_TIMEOUT_S,
    )


def json_line(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout {result.stdout!r} stderr {result.stderr!r}"
    decoded: dict[str, Any] = json.loads(lines[0])
    return decoded


def test_read_a_citizen_card_prints_masked_fields_only(pcscd: Pcscd) -> None:
    pcscd.vcard("citizen")
    result = hwctl("--json", "idcard", "--reader", "pcsc", "--timeout", "10", "read")
    assert result.returncode == 0, result.stderr
    assert json_line(result) == {
        "ok": True,
        "reader": "pcsc",
        "source": "citizen_card",
        "id_masked": "9901**********" + SYNTHETIC_ID_NUMBER[-4:],
        "name_masked": "李*试",
        "chip_serial": None,
        "staff_id": None,
    }
    assert SYNTHETIC_ID_NUMBER not in result.stdout + result.stderr
    assert "李测试" not in result.stdout + result.stderr


def test_read_an_id_card_chip_in_plain_text_and_status(pcscd: Pcscd) -> None:
    vcard = pcscd.vcard("idcard", "--serial", "0A0B0C0D0E0F1011")
    vcard.wait_present()
    result = hwctl("idcard", "--reader", "pcsc", "--url", "00 00", "read")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "card: source=pcsc_idcard chip_serial=0A0B0C0D0E0F1011\n"
    status = json_line(hwctl("--json", "idcard", "--reader", "pcsc", "status"))
    assert status["online"] is True and status["card_present"] is True
    assert READER in status["readers"]


def test_no_card_and_pcscd_down_are_errors_with_plain_messages(pcscd: Pcscd) -> None:
    pcscd.vcard("idcard", absent=True)
    result = hwctl("--json", "idcard", "--reader", "pcsc", "--timeout", "0.2", "read")
    assert result.returncode == 2
    error = json_line(result)
    assert (error["ok"], error["code"]) == (False, "idcard_absent")
    assert error["message_zh"] == "未检测到证件，请将身份证放在感应区。"
    pcscd.stop()
    result = hwctl("--json", "idcard", "--reader", "pcsc", "read")
    assert (result.returncode, json_line(result)["code"]) == (2, "pcscd_down")
    result = hwctl("--json", "idcard", "--reader", "pcsc", "status")
    assert (result.returncode, json_line(result)["detail"]) == (2, "pcscd_down")


def ga467_sim(spawn: Spawner, *args: str) -> tuple[str, SimControl]:
    process = spawn("drivers.identity.ga467.sim_runner", "--exit-with-parent", *args)
    url = process.read_line(STARTUP_TIMEOUT_S)
    control = process.read_line(STARTUP_TIMEOUT_S)
    assert control.startswith("control "), process.describe()
    return url, SimControl(control.removeprefix("control "))


def test_read_through_a_ga467_reader(spawn: Spawner) -> None:
    url, control = ga467_sim(spawn)
    control.present_card(seed=3, name="赵测试", **MY_PERSON)
    result = hwctl("--json", "idcard", "--reader", "ga467", "--url", url, "read")
    assert result.returncode == 0, result.stderr
    data = json_line(result)
    assert (data["source"], data["name_masked"]) == ("ga467", "赵*试")
    assert data["id_masked"] == "9901**********" + SYNTHETIC_ID_NUMBER[-4:]
    assert SYNTHETIC_ID_NUMBER not in result.stdout + result.stderr
    assert "赵测试" not in result.stdout + result.stderr


def test_ga467_behind_the_common_interface_with_a_polling_watch(spawn: Spawner) -> None:
    url, control = ga467_sim(spawn)
    settings = IdentityReaderSettings.model_validate(
        {"reader": "ga467", "ga467": {"url": url}, "ga467_poll_ms": 100}
    )
    events: list[object] = []
    hasher = IdentityHasher(b"test-identity-key-0123456789abcd")
    with open_reader(settings, hasher) as reader:
        assert reader.status().online
        reader.start_watch(WatchCallbacks(events.append, events.append, events.append))
        control.present_card(seed=5, **MY_PERSON)
        wait_until(lambda: any(isinstance(e, CardInserted) for e in events), what=str(events))
        inserted = next(e for e in events if isinstance(e, CardInserted))
        assert inserted.identity.id_hash == hasher.hash_id_number(SYNTHETIC_ID_NUMBER)
        control.remove_card()
        wait_until(lambda: CardRemoved("ga467") in events, what=lambda: str(events))
        reader.stop_watch()
    assert [type(e).__name__ for e in events] == ["CardInserted", "CardRemoved"]


def test_a_bad_ga467_table_is_refused_when_the_config_loads() -> None:
    with pytest.raises(ValidationError, match="url"):
        IdentityReaderSettings.model_validate({"reader": "ga467", "ga467": {"baud": 115200}})
    # the table is only the GA 467 driver's business when that reader is chosen
    IdentityReaderSettings.model_validate({"reader": "pcsc", "ga467": {"anything": 1}})
