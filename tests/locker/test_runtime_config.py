"""The run-time configuration layer written by ``set_config``: survives a restart, is checked like
every other layer, and may hold only the keys the hall is allowed to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from hallkiosk.config import ConfigError
from locker import runtime_config
from locker.config import load_settings


@pytest.fixture
def site(tmp_path: Path) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(f'schema_version = 1\n[site]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def test_a_change_is_applied_and_read_again_at_the_next_start(site: Path) -> None:
    settings = load_settings([site])
    updated = runtime_config.set_value(settings, "lockerd.door_watch.left_open_alarm_s", 300.0)
    assert updated.lockerd.door_watch.left_open_alarm_s == 300.0
    updated = runtime_config.set_value(updated, "lockerd.pickup.lockout_s", 1800)
    restarted = load_settings([site])
    assert restarted.lockerd.door_watch.left_open_alarm_s == 300.0
    assert restarted.lockerd.pickup.lockout_s == 1800
    assert runtime_config.read_values(settings.runtime_config_path) == {
        "lockerd.door_watch.left_open_alarm_s": 300.0,
        "lockerd.pickup.lockout_s": 1800,
    }


def test_an_out_of_range_value_is_refused_and_nothing_is_written(site: Path) -> None:
    settings = load_settings([site])
    with pytest.raises(ConfigError) as info:
        runtime_config.set_value(settings, "lockerd.pickup.lockout_s", 5)
    assert any("lockout_s" in problem for problem in info.value.problems)
    assert not settings.runtime_config_path.exists()
    assert not list(settings.data_dir.glob(".runtime.*"))  # no temporary file left behind


def test_only_run_time_keys_may_be_set_or_appear_in_the_file(site: Path) -> None:
    settings = load_settings([site])
    with pytest.raises(ConfigError, match="not changeable"):
        runtime_config.set_value(settings, "site.data_dir", 1)
    settings.runtime_config_path.parent.mkdir(parents=True, exist_ok=True)
    settings.runtime_config_path.write_text(
        "schema_version = 1\n[lockerd.api]\nsocket_mode = 438\n"
    )
    with pytest.raises(ConfigError, match=r"lockerd\.api\.socket_mode: not changeable"):
        load_settings([site])
