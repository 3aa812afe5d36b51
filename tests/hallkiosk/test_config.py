"""Config: strict types, ranges, unknown keys, layering, versions and migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hallkiosk import config
from hallkiosk.config import ConfigError
from locker.config import load_settings

GOOD = """
schema_version = 1
[site]
device_id = "locker-07"
data_dir = "{data}"

[[lockerd.buses]]
name = "main"
protocol = "kerong"
url = "/dev/ttyUSB0"
baud = 19200
feedback_open = "clear"
expect_reply = false

[[lockerd.bays]]
id = "B01"
size = "L"
bus = "main"
board = 0
channel = 16
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text.replace("{data}", str(tmp_path / "data")), encoding="utf-8")
    return path


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings([path])
    return info.value.problems


def test_site_file_overrides_defaults_and_replaces_arrays(tmp_path: Path) -> None:
    settings = load_settings([write(tmp_path, GOOD)])
    assert settings.site.device_id == "locker-07"
    assert settings.site.hall_id == "demo-hall"  # from the packaged defaults layer
    assert [b.id for b in settings.lockerd.bays] == ["B01"]  # arrays replace, never mix
    bus = settings.lockerd.buses[0]
    assert (bus.protocol, bus.baud, bus.feedback_open.value, bus.expect_reply) == (
        "kerong",
        19200,
        "clear",
        False,
    )
    assert settings.db_path == tmp_path / "data" / "locker.db"


def test_packaged_defaults_alone_are_valid() -> None:
    settings = load_settings([])
    assert len(settings.lockerd.bays) == 8
    assert settings.lockerd.buses[0].url.startswith("sim://")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("[site]", "[site]\ncolour = 'red'"), "site.colour: unknown key"),
        (("baud = 19200", "baud = 12345"), "lockerd.buses[0].baud: Input should be"),
        (("baud = 19200", "baud = '19200'"), "lockerd.buses[0].baud"),
        (("channel = 16", "channel = 17"), "channel 17 outside 1-16 for protocol kerong"),
        (("board = 0", "board = 10"), "board 10 outside 0-9"),
        (('bus = "main"', 'bus = "other"'), "no bus named 'other'"),
        (('feedback_open = "clear"', 'feedback_open = "low"'), "feedback_open must be"),
        (("[site]", "[site]\ntimezone = 'Mars/Olympus'"), "unknown time zone"),
        (("expect_reply = false", "expect_reply = 0"), "lockerd.buses[0].expect_reply"),
    ],
)
def test_rejections_name_file_key_and_reason(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    old, new = edit
    assert old in GOOD
    problems = problems_of(tmp_path, GOOD.replace(old, new, 1))
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(str(tmp_path / "site.toml")) for p in problems), problems


def test_out_of_range_door_watch_value(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD + "\n[lockerd.door_watch]\npoll_interval_ms = 5000\n")
    assert problems == [
        f"{tmp_path / 'site.toml'}: lockerd.door_watch.poll_interval_ms: "
        "Input should be less than or equal to 500"
    ]


def test_error_names_the_layer_that_set_the_key(tmp_path: Path) -> None:
    overlay = write(
        tmp_path, "schema_version = 1\n[lockerd.pickup]\nlockout_s = 5\n", "overlay.toml"
    )
    site = write(tmp_path, GOOD)
    with pytest.raises(ConfigError) as info:
        load_settings([overlay, site])
    assert info.value.problems == [
        f"{overlay}: lockerd.pickup.lockout_s: Input should be greater than or equal to 60"
    ]


def test_unknown_section_missing_and_newer_version_and_bad_toml(tmp_path: Path) -> None:
    assert "lockre: unknown section" in problems_of(tmp_path, GOOD + "\n[lockre]\nx = 1\n")[0]
    assert (
        "schema_version: missing"
        in problems_of(tmp_path, GOOD.replace("schema_version = 1", ""))[0]
    )
    assert (
        "newer than this release"
        in problems_of(tmp_path, GOOD.replace("schema_version = 1", "schema_version = 9"))[0]
    )
    assert "not valid TOML" in problems_of(tmp_path, "schema_version = \n")[0]


def test_scrypt_cost_must_be_a_power_of_two(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, GOOD + "\n[lockerd.pickup]\nscrypt_n = 1000\n")
    assert "scrypt_n must be a power of two" in problems[0]


def test_migration_hook_upgrades_old_files(tmp_path: Path) -> None:
    def v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        site = dict(doc.get("site", {}))
        if "hall" in site:  # pretend version 1 called it "hall"
            site["hall_id"] = site.pop("hall")
        doc["site"] = site
        return doc

    path = write(tmp_path, "schema_version = 1\n[site]\nhall = 'hz-01'\n")
    loaded = config.load([path], with_defaults=False, migrations={1: v1_to_v2}, current=2)
    assert loaded.data["site"] == {"hall_id": "hz-01"}
    assert loaded.data["schema_version"] == 2
    with pytest.raises(ConfigError, match="no migration from version 1"):
        config.load([path], with_defaults=False, migrations={}, current=2)


def test_lockerd_check_config_cli(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD)
    ok = subprocess.run(
        [sys.executable, "-m", "locker.daemon", "--check-config", str(good)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK: 1 bus(es), 1 bay(s), device locker-07")
    bad = write(tmp_path, GOOD.replace('size = "L"', 'size = "XL"\nlocation = 1'), "bad.toml")
    res = subprocess.run(
        [sys.executable, "-m", "locker.daemon", "--check-config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert f"{bad}: lockerd.bays[0].size: Input should be 'S', 'M' or 'L'" in lines
    assert f"{bad}: lockerd.bays[0].location: unknown key" in lines
