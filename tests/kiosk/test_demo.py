"""``make demo HEADLESS=1``: the demo's scripted journey runs end to end on a private Xvfb, with
lockerd and the lock-board simulator as real processes, and leaves a screenshot per step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.fixtures.xvfb import xvfb_display  # noqa: F401  (a fixture)

DEMO_TIMEOUT_S = 240


def test_the_headless_demo_plays_every_step_and_saves_its_screenshots(
    tmp_path: Path,
    xvfb_display: str,  # noqa: F811
) -> None:
    shots = tmp_path / "shots"
    env = {**os.environ, "DISPLAY": xvfb_display, "KIVY_HOME": str(tmp_path / "kivy")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk.demo",
            "--data-dir",
            str(tmp_path / "data"),
            "--headless",
            str(shots),
        ],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    names = sorted(p.name for p in shots.glob("*.png"))
    for step in (
        "ticket-done",
        "checkin-done",
        "pickup-wrong-password",
        "pickup-open",
        "pickup-done",
        "staff-self-test",
    ):
        assert any(name.endswith(f"-{step}.png") for name in names), (step, names)
    assert len(names) == 20
    with Image.open(shots / names[0]) as first:
        assert first.size == (1080, 1920)
        low, high = first.convert("L").getextrema()
        assert high - low > 100  # drawn, not a blank frame
