"""``[kiosk]``: strict keys, ranges, the hall mode, offline ranges against the hall's, and the
devices the section opens."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from drivers.printer.status import PaperStatus
from hall.settings import QueueSettings
from hallkiosk.config import ConfigError
from kiosk.hardware import open_devices
from kiosk.services.mqtt_transport import KINDS, request_kinds
from kiosk.settings import RequestTimeouts, load_kiosk_settings, offline_range_problems


def write(tmp_path: Path, body: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    site = tmp_path / "site.toml"
    site.write_text(
        f"schema_version = 1\n[site]\ndata_dir = {json.dumps(str(tmp_path / 'data'))}\n{body}"
    )
    return site


def problems(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_kiosk_settings([write(tmp_path, body)])
    return info.value.problems


MQTT = '[uplink]\nenabled = true\nhost = "127.0.0.1"\nport = 1883\n'


def test_the_packaged_defaults_are_an_embedded_kiosk_on_simulators(tmp_path: Path) -> None:
    settings = load_kiosk_settings([write(tmp_path, "")])
    data = tmp_path / "data"
    assert settings.kiosk.hall_mode == "embedded" and settings.hall is not None
    assert settings.device_id == "locker-01"  # [site] device_id: no override
    assert (settings.db_path, settings.spool_dir, settings.identity_key_path) == (
        data / "kiosk.db",
        data / "kiosk-spool",
        data / "identity.key",
    )
    assert settings.locker_socket_path is None
    assert settings.kiosk.offline.ranges == []
    assert settings.kiosk.offline.outbox_alarm_rows == 10_000
    assert (settings.kiosk.idle.normal_s, settings.kiosk.idle.elderly_s) == (60.0, 120.0)
    assert (settings.kiosk.elderly.green_channel, settings.kiosk.elderly.age) == (True, 65)
    assert settings.kiosk.telemetry.interval_s == 60.0
    backends = {
        settings.kiosk.identity.reader,
        settings.kiosk.printer.backend,
        settings.kiosk.scanner.backend,
        settings.kiosk.camera.backend,
        settings.kiosk.voice.backend,
    }
    assert backends == {"sim"} and settings.kiosk.gpio.backend == "mock"


def test_a_kiosk_of_its_own_with_its_range_and_a_locker(tmp_path: Path) -> None:
    settings = load_kiosk_settings(
        [
            write(
                tmp_path,
                '[kiosk]\ndevice_id = "kiosk-02"\n'
                "[kiosk.offline]\nranges = [{ first = 1201, last = 1399 }]\n"
                '[kiosk.locker]\nenabled = true\nsocket_path = "run/lockerd.sock"\n',
            )
        ]
    )
    assert settings.device_id == "kiosk-02"
    assert settings.kiosk.offline.numbers() == [(1201, 1399)]
    assert settings.locker_socket_path == tmp_path / "data" / "run" / "lockerd.sock"


def test_unknown_keys_are_refused_everywhere_in_the_section(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        '[kiosk]\nhall_mod = "mqtt"\n[kiosk.idle]\nnormal = 30\n[kiosk.printer]\npaper = "A4"\n'
        "[kiosk.telemetry]\ninterval = 30\n",
    )
    assert any(p.endswith("kiosk.hall_mod: unknown key") for p in found), found
    assert any(p.endswith("kiosk.idle.normal: unknown key") for p in found), found
    assert any(p.endswith("kiosk.printer.paper: unknown key") for p in found), found
    assert any(p.endswith("kiosk.telemetry.interval: unknown key") for p in found), found


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("[kiosk.idle]\nnormal_s = 5.0\n", "kiosk.idle.normal_s"),
        ("[kiosk.idle]\nnormal_s = 300.0\nelderly_s = 100.0\n", "kiosk.idle"),
        ("[kiosk.elderly]\nage = 30\n", "kiosk.elderly.age"),
        ("[kiosk.timeouts]\nticket_issue_s = 0.0\n", "kiosk.timeouts.ticket_issue_s"),
        ("[kiosk.timeouts]\ncatalog_s = 500.0\n", "kiosk.timeouts.catalog_s"),
        ("[kiosk.offline]\nupload_chunk_bytes = 100\n", "kiosk.offline.upload_chunk_bytes"),
        ("[kiosk.offline]\nretry_interval_s = 0.1\n", "kiosk.offline.retry_interval_s"),
        ("[kiosk.offline]\noutbox_alarm_rows = 0\n", "kiosk.offline.outbox_alarm_rows"),
        ("[kiosk.offline]\noutbox_alarm_rows = 1000001\n", "kiosk.offline.outbox_alarm_rows"),
        ('[kiosk.offline]\noutbox_alarm_rows = "many"\n', "kiosk.offline.outbox_alarm_rows"),
        ("[kiosk.telemetry]\ninterval_s = 1.0\n", "kiosk.telemetry.interval_s"),
        ("[kiosk.telemetry]\ninterval_s = 7200.0\n", "kiosk.telemetry.interval_s"),
        ("[kiosk.offline]\nranges = [{ first = 0, last = 5 }]\n", "kiosk.offline.ranges"),
        ("[kiosk.offline]\nranges = [{ first = 20, last = 10 }]\n", "kiosk.offline.ranges"),
        ('[kiosk]\ndevice_id = "kiosk/01"\n', "kiosk.device_id"),
        ('[kiosk.printer]\nbackend = "fax"\n', "kiosk.printer.backend"),
        ("[kiosk.voice]\nrate_wpm = 10\n", "kiosk.voice.rate_wpm"),
        ('[kiosk.gpio.devices.door]\nrole = "door"\npin = 40\n', "kiosk.gpio.devices"),
    ],
)
def test_values_out_of_range_are_refused(tmp_path: Path, body: str, key: str) -> None:
    found = problems(tmp_path, body)
    assert any(f": {key}" in p for p in found), found


def test_the_hall_mode_must_fit_the_uplink(tmp_path: Path) -> None:
    found = problems(tmp_path, '[kiosk]\nhall_mode = "mqtt"\n')
    assert any("kiosk.hall_mode" in p and "[uplink] enabled" in p for p in found), found
    found = problems(tmp_path, MQTT)
    assert any("kiosk.hall_mode" in p and "embedded" in p for p in found), found
    found = problems(tmp_path, '[kiosk]\ndevice_id = "hall.x"\nhall_mode = "mqtt"\n' + MQTT)
    assert any("kiosk.device_id" in p and "reserved" in p for p in found), found


def test_offline_ranges_must_be_the_halls_for_this_device(tmp_path: Path) -> None:
    # kiosk-01's range in the packaged hall is 1001-1199
    mismatch = problems(
        tmp_path,
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1099 }]\n",
    )
    assert any("1001-1199" in p and "kiosk.offline.ranges" in p for p in mismatch), mismatch
    overlap = problems(
        tmp_path,
        '[kiosk]\ndevice_id = "kiosk-01"\n[kiosk.offline]\n'
        "ranges = [{ first = 900, last = 1000 }, { first = 1001, last = 1199 }]\n",
    )
    assert any("overlaps the online range of category ss-submit" in p for p in overlap), overlap
    each_other = problems(
        tmp_path,
        "[kiosk.offline]\n"
        "ranges = [{ first = 1001, last = 1100 }, { first = 1100, last = 1199 }]\n",
    )
    assert any("overlap" in p for p in each_other), each_other
    other_type = problems(
        tmp_path,
        '[kiosk.offline]\nappointment_ticket_type = "consult"\n',
    )
    assert any("appointment_ticket_type" in p for p in other_type), other_type
    too_big = problems(tmp_path, "[kiosk.offline]\nupload_chunk_bytes = 524288\n")
    assert any("max_chunk_bytes" in p for p in too_big), too_big


def test_over_mqtt_the_halls_ranges_are_not_known_here(tmp_path: Path) -> None:
    settings = load_kiosk_settings(
        [
            write(
                tmp_path,
                '[kiosk]\ndevice_id = "kiosk-09"\nhall_mode = "mqtt"\n'
                "[kiosk.offline]\nranges = [{ first = 5001, last = 5099 }]\n" + MQTT,
            )
        ]
    )
    assert settings.hall is None and settings.kiosk.offline.numbers() == [(5001, 5099)]
    # provisioning checks the pair with the hall's own queue settings
    queue = QueueSettings.model_validate(
        {
            "categories": [
                {
                    "id": "ss-submit",
                    "area": "ss",
                    "area_zh": "社保",
                    "area_en": "SS",
                    "ticket_type": "submit",
                    "prefix": "A",
                    "first": 1,
                    "last": 5050,
                }
            ],
            "offline_ranges": [{"device": "kiosk-09", "first": 6001, "last": 6099}],
        }
    )
    found = offline_range_problems([(5001, 5099)], "kiosk-09", queue)
    assert len(found) == 2
    assert "overlaps the online range of category ss-submit (1-5050)" in found[0]
    assert "6001-6099" in found[1]
    assert offline_range_problems([(6001, 6099)], "kiosk-09", queue) == []


def test_every_request_kind_gets_its_timeout(tmp_path: Path) -> None:
    timeouts = RequestTimeouts(ticket_issue_s=2.5, prereview_upload_s=40.0)
    kinds = {k.name: k.timeout_s for k in request_kinds(timeouts)}
    assert set(kinds) == set(KINDS)
    assert kinds["ticket.issue"] == 2.5 and kinds["prereview.upload"] == 40.0
    assert kinds["catalog"] == RequestTimeouts().catalog_s
    with pytest.raises(KeyError):
        timeouts.for_kind("ticket.cancel")


def test_the_devices_open_from_the_section_and_close(tmp_path: Path) -> None:
    settings = load_kiosk_settings([write(tmp_path, "")])
    devices = open_devices(settings)
    try:
        key = settings.identity_key_path
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
        assert devices.printer.status() is PaperStatus.OK
        assert devices.identity.status().online
        assert devices.camera.snap().width == settings.kiosk.camera.width
        assert devices.voice.say("请刷身份证", "zh") is not None
    finally:
        devices.close()
    devices.close()  # twice is harmless
