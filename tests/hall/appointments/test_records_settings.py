"""AppointmentRecord invariants and AppointmentImportSettings validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from hall.appointments import (
    AppointmentImportError,
    AppointmentImportSettings,
    AppointmentRecord,
    AppointmentRecordError,
)
from hall.errors import HallError
from hallkiosk.config import ConfigError, Layer, LoadedConfig, merge_layers
from hallkiosk.errors import HallkioskError
from hallkiosk.privacy import IdentityHasher, mask_id_number

TZ = ZoneInfo("Asia/Shanghai")
RAW_ID = "11010519491231002X"
START = datetime(2024, 5, 6, 9, 0, tzinfo=TZ)
GOOD = AppointmentRecord(
    booking_code="YY-0001",
    matter_code="330100-XK-001",
    matter_name="不动产登记",
    area="estate",
    slot_start=START,
    slot_end=START + timedelta(minutes=30),
    identity_hash=IdentityHasher(b"k" * 32).hash_id_number(RAW_ID),
    id_masked=mask_id_number(RAW_ID),
    name_masked="张*三",
    phone="13800138000",
    place="3号窗口",
)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"booking_code": "a b"}, "booking_code"),
        ({"matter_code": ""}, "matter_code"),
        ({"matter_name": "x\n"}, "matter_name"),
        ({"area": "Estate"}, "area"),
        ({"slot_start": datetime(2024, 5, 6, 9, 0)}, "must be timezone-aware"),  # noqa: DTZ001
        ({"slot_end": START}, "slot_end"),
        ({"slot_end": START + timedelta(hours=25)}, "slot_end"),
        ({"identity_hash": RAW_ID}, "identity_hash"),
        ({"id_masked": RAW_ID}, "id_masked"),
        ({"name_masked": "张小三"}, "name_masked: must be masked"),
        ({"phone": "0571-87654321"}, "phone"),
        ({"place": ""}, "place"),
        ({"status": "checked_in"}, "status"),
    ],
)
def test_a_record_keeps_its_invariants(change: dict[str, object], problem: str) -> None:
    with pytest.raises(AppointmentRecordError) as info:
        replace(GOOD, **change)  # type: ignore[arg-type]
    assert problem in str(info.value)
    # the message names fields, never the values (a raw ID put in the wrong place stays out)
    assert RAW_ID not in str(info.value)
    assert "张小三" not in str(info.value)


def test_a_good_record_and_the_error_family() -> None:
    assert replace(GOOD, phone=None, place=None, status="cancelled").status == "cancelled"
    assert replace(GOOD, name_masked="张").name_masked == "张"  # a one-character name
    assert issubclass(AppointmentRecordError, ValueError)
    assert issubclass(AppointmentImportError, HallError)
    assert issubclass(AppointmentImportError, HallkioskError)


def test_settings_defaults() -> None:
    s = AppointmentImportSettings()
    assert (s.http_enabled, s.http_bind, s.http_port, s.token_file) == (
        False,
        "127.0.0.1",
        8470,
        "",
    )
    assert (s.max_body_bytes, s.max_rows, s.request_timeout_s) == (8 * 1024 * 1024, 20_000, 30.0)


@pytest.mark.parametrize("bind", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_binds_are_accepted(bind: str) -> None:
    assert AppointmentImportSettings(http_bind=bind).http_bind == bind


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"http_bind": "0.0.0.0"}, "is not a loopback address"),
        ({"http_bind": "192.168.1.10"}, "is not a loopback address"),
        ({"http_bind": "hall.example"}, "is not a loopback address"),
        ({"http_enabled": True}, "token_file is required when http_enabled is true"),
        ({"http_port": 65536}, "less than or equal to 65535"),
        ({"http_port": -1}, "greater than or equal to 0"),
        ({"http_port": "8470"}, "valid integer"),
        ({"max_body_bytes": 100}, "greater than or equal to 1024"),
        ({"max_rows": 0}, "greater than or equal to 1"),
        ({"request_timeout_s": 0}, "greater than 0"),
        ({"token": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_settings_refuse(data: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        AppointmentImportSettings.model_validate(data)
    assert reason in str(info.value)


def test_settings_errors_name_the_file_and_key() -> None:
    layer = Layer("/etc/hallkiosk/site.toml", {"hall": {"import": {"http_bind": "0.0.0.0"}}})
    data, origin = merge_layers([layer])
    loaded = LoadedConfig(data["hall"], {k[1:]: v for k, v in origin.items()}, (layer.path,))
    with pytest.raises(ConfigError) as info:
        loaded.section("import", AppointmentImportSettings)
    assert str(info.value).startswith("/etc/hallkiosk/site.toml: import.http_bind: http_bind")
