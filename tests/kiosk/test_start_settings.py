"""kiosk/start_settings.py: the first frame's part of the configuration, checked before the window;
the rest checked by ``full()`` exactly as ``load_kiosk_settings`` does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hallkiosk.config import ConfigError
from kiosk.settings import load_kiosk_settings
from kiosk.start_settings import StartSettings

REPO_ROOT = Path(__file__).resolve().parents[2]


def site_file(data_dir: Path, extra: str = "") -> Path:
    path = data_dir / "site.toml"
    path.write_text(
        "schema_version = 1\n"
        f"[site]\ndata_dir = {json.dumps(str(data_dir))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n" + extra
    )
    return path


HEAVY = "{'drivers', 'hall', 'uplink', 'locker', 'escpos', 'gpiozero', 'cryptography'}"


@pytest.mark.parametrize(
    ("module", "light"),
    [
        ("kiosk.start_settings", "('kivy', 'kiosk.settings', 'kiosk.flows')"),
        # the app module (what the first frame runs) may import Kivy and the tile list only
        ("kiosk.app", "('kiosk.settings', 'kiosk.assembly', 'kiosk.flows.session')"),
    ],
)
def test_the_first_frame_imports_no_driver_hall_or_uplink(
    module: str, light: str, tmp_path: Path
) -> None:
    """The point of the module: what it imports is what the window waits for."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from kiosk.ui.kivy_env import prepare_kivy_env\n"
        f"prepare_kivy_env(Path({str(tmp_path)!r}))\n"
        f"import {module}\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY}"
        f" or m.startswith({light})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_it_reads_the_first_frames_part_of_every_layer(tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.toml"
    overlay.write_text("schema_version = 1\n[kiosk.ui]\nwindow_width_px = 800\n")
    site = site_file(
        tmp_path,
        "[kiosk.ui]\nwindow_height_px = 1280\n[kiosk.locker]\nenabled = true\n",
    )
    start = StartSettings.load([overlay, site])
    assert (start.ui.window_width_px, start.ui.window_height_px) == (800, 1280)
    assert start.has_locker
    assert start.data_dir == tmp_path
    full = start.full()
    assert full == load_kiosk_settings([overlay, site])
    assert full.kiosk.ui == start.ui and full.site == start.site


def test_a_bad_first_frame_value_is_refused_before_the_window(tmp_path: Path) -> None:
    site = site_file(tmp_path, "[kiosk.ui]\nwindow_width_px = 100\nbogus = 1\n")
    with pytest.raises(ConfigError) as caught:
        StartSettings.load([site])
    assert caught.value.problems == [
        f"{site}: kiosk.ui.window_width_px: Input should be greater than or equal to 240",
        f"{site}: kiosk.ui.bogus: unknown key",
    ]


def test_a_problem_elsewhere_is_found_by_full_with_the_same_words(tmp_path: Path) -> None:
    """Outside ``[site]``, ``[kiosk.ui]`` and ``[kiosk.locker]`` the window opens, and the
    assembly's ``full()`` finds what ``--check-config`` finds."""
    site = site_file(tmp_path, "[kiosk.printer]\nbogus = 1\n[kiosk.idle]\nnormal_s = 5\n")
    start = StartSettings.load([site])
    with pytest.raises(ConfigError) as full:
        start.full()
    with pytest.raises(ConfigError) as whole:
        load_kiosk_settings([site])
    assert full.value.problems == whole.value.problems
    assert f"{site}: kiosk.printer.bogus: unknown key" in full.value.problems
    assert any(p.startswith(f"{site}: kiosk.idle.normal_s:") for p in full.value.problems)


def test_settings_checked_whole_are_used_as_they_are(tmp_path: Path) -> None:
    settings = load_kiosk_settings([site_file(tmp_path)])
    start = StartSettings.of(settings)
    assert start.full() is settings
    assert start.ui == settings.kiosk.ui and not start.has_locker
