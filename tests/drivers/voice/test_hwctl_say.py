"""``hwctl say`` run for real in a subprocess: WAV output through espeak-ng, the simulator,
and errors reported as JSON with a code."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

from tests.fixtures.processes import REPO_ROOT

HWCTL = [sys.executable, "-m", "drivers.hwctl", "--json", "say"]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HWCTL, *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def test_say_zh_to_a_wav_file(tmp_path: Path) -> None:
    done = run("请取号", "--lang", "zh", "--wav-dir", str(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert {k: result[k] for k in ("ok", "state", "text", "lang", "voice", "output")} == {
        "ok": True,
        "state": "finished",
        "text": "请取号",
        "lang": "zh",
        "voice": "cmn",
        "output": "wav",
    }
    wav = Path(result["wav"])
    assert wav.parent == tmp_path
    assert wav.stat().st_size == result["wav_bytes"]
    assert wav.read_bytes()[:4] == b"RIFF"
    with wave.open(str(wav)) as w:
        assert w.getnchannels() == 1 and w.getnframes() > 0


def test_say_through_the_site_config_on_the_simulator(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        "schema_version = 1\n[kiosk.voice]\nbackend = 'sim'\nsim_chars_per_s = 1000.0\n"
        "voices = { zh = 'cmn', en = 'en-us' }\n"
    )
    done = run("Please take your ticket", "--lang", "en", "--config", str(site))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["backend"], result["voice"], result["state"]) == ("sim", "en-us", "finished")
    assert result["wav"] is None


def test_errors_are_json_with_a_code(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        f"schema_version = 1\n[kiosk.voice]\nbackend = 'espeak'\n"
        f"espeak_command = '{tmp_path}/espeak-ng'\n"
    )
    done = run("你好", "--config", str(site))
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert (error["ok"], error["code"]) == (False, "voice_unavailable")
    assert error["message_zh"] and error["message_en"]

    done = run("你好", "--rate-wpm", "1000", "--wav-dir", str(tmp_path))
    assert done.returncode == 2
    assert json.loads(done.stdout)["code"] == "config_invalid"

    site.write_text("schema_version = 1\n[kiosk.voice]\nloudness = 3\n")
    done = run("你好", "--config", str(site))
    assert json.loads(done.stdout)["detail"] == (
        f"{site}: kiosk.voice.loudness: Extra inputs are not permitted"
    )
