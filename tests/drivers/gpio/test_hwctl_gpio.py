"""``hwctl gpio``: the watch loop in process on MockFactory, and the real CLI in a subprocess
whose mock pins are driven through its stdin control lines."""

from __future__ import annotations

import io
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from drivers.gpio import GpioBoard, GpioSettings
from drivers.gpio.factory import mock_factory
from drivers.hwctl import build_parser
from drivers.hwctl.gpio import drive_mock_pin, settings_from_args, watch
from drivers.hwctl.output import Output
from hallkiosk.config import ConfigError
from tests.fixtures import wait_until
from tests.fixtures.processes import REPO_ROOT

HWCTL = [sys.executable, "-m", "drivers.hwctl", "--json", "gpio"]


class Lines(io.StringIO):
    """An Output stream that the test can read while the watch loop writes from its thread."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            return super().write(s)

    def objects(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(line) for line in self.getvalue().splitlines()]


def test_watch_loop_prints_ready_each_debounced_event_and_end() -> None:
    factory = mock_factory()
    settings = GpioSettings.model_validate(
        {
            "devices": {
                "door": {"role": "door", "pin": 17, "bounce_s": 0.02},
                "service": {"role": "button", "pin": 27, "bounce_s": 0.02},
                "status": {"role": "led", "pin": 22, "safe_state": "off"},
            }
        }
    )
    stream = Lines()
    with GpioBoard(settings, factory, close_at_exit=False) as board:
        result: list[int] = []
        loop = threading.Thread(
            target=lambda: result.append(
                watch(board, Output(json_mode=True, stream=stream), count=2, backend="mock")
            )
        )
        loop.start()
        wait_until(stream.objects, what="ready line")
        factory.pin(17).drive_low()
        wait_until(lambda: len(stream.objects()) == 2, what="door event")
        factory.pin(27).drive_low()
        loop.join(timeout=10)
        assert result == [0]
    ready, door, button, end = stream.objects()
    assert ready == {
        "ok": True,
        "event": "ready",
        "backend": "mock",
        "chip": None,
        "devices": {
            "door": {"role": "door", "pin": 17, "state": "open"},
            "service": {"role": "button", "pin": 27, "state": "released"},
            "status": {"role": "led", "pin": 22, "state": "off"},
        },
    }
    assert {k: door[k] for k in ("event", "device", "role", "pin")} == {
        "event": "closed",
        "device": "door",
        "role": "door",
        "pin": 17,
    }
    assert door["t_s"] >= 0
    assert (button["event"], button["device"]) == ("pressed", "service")
    assert end == {"ok": True, "event": "end", "events": 2, "reason": "count"}


def test_watch_loop_stops_on_its_time_limit_with_a_fake_clock() -> None:
    now = [100.0]

    def clock() -> float:
        now[0] += 1.0  # each look at the clock is a second later
        return now[0]

    settings = GpioSettings.model_validate({"devices": {"d": {"role": "door", "pin": 17}}})
    stream = Lines()
    with GpioBoard(settings, mock_factory(), close_at_exit=False) as board:
        watch(board, Output(json_mode=True, stream=stream), seconds=3.0, monotonic=clock)
    assert stream.objects()[-1] == {"ok": True, "event": "end", "events": 0, "reason": "time"}


def parse(argv: list[str]) -> Any:
    return build_parser().parse_args(["gpio", *argv])


def test_cli_arguments_become_settings(tmp_path: Path) -> None:
    s = settings_from_args(parse(["watch", "--pin", "17", "--pin", "5", "--pull", "down"]))
    assert s.backend == "lgpio"  # a technician at a real Pi
    assert sorted(s.devices) == ["gpio17", "gpio5"]
    assert s.devices["gpio5"].pull == "down"  # type: ignore[union-attr]
    assert settings_from_args(parse(["watch", "--mock", "--pin", "17"])).backend == "mock"

    site = tmp_path / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        "[kiosk.gpio]\nbackend = 'lgpio'\nchip_labels = ['pinctrl-bcm2711']\n"
        "[kiosk.gpio.devices.cabinet_door]\nrole = 'door'\npin = 17\n"
        "[kiosk.gpio.devices.status]\nrole = 'led'\npin = 22\nsafe_state = 'off'\n"
    )
    s = settings_from_args(parse(["watch", "--config", str(site), "--pin", "6"]))
    assert (s.backend, s.chip_labels) == ("lgpio", ("pinctrl-bcm2711",))
    assert sorted(s.devices) == ["cabinet_door", "gpio6", "status"]
    # --pin on a pin the config already uses is the same clash the settings refuse
    with pytest.raises(ConfigError, match="GPIO17 is used by both"):
        settings_from_args(parse(["watch", "--config", str(site), "--pin", "17"]))


def test_config_errors_name_the_file_and_key(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        "schema_version = 1\n[kiosk.gpio.devices.status]\nrole = 'led'\npin = 22\n"
        "safe_state = 'off'\ncolour = 'red'\n"
    )
    with pytest.raises(ConfigError) as exc:
        settings_from_args(parse(["watch", "--config", str(site)]))
    assert exc.value.problems == [
        f"{site}: kiosk.gpio.devices.status.led.colour: Extra inputs are not permitted"
    ]


def test_mock_control_lines() -> None:
    factory = mock_factory()
    settings = GpioSettings.model_validate(
        {
            "devices": {
                "d": {"role": "door", "pin": 17, "bounce_s": 0.01},
                "status": {"role": "led", "pin": 22, "safe_state": "off"},
            }
        }
    )
    with GpioBoard(settings, factory, close_at_exit=False) as board:
        assert drive_mock_pin(factory, "GPIO17 low\n") is None
        wait_until(lambda: not board.door("d").is_open)
        assert drive_mock_pin(factory, "") is None
        assert "expected 'PIN high|low'" in (drive_mock_pin(factory, "17 up") or "")
        assert "not a pin number" in (drive_mock_pin(factory, "door high") or "")
        assert "not a watched input" in (drive_mock_pin(factory, "22 high") or "")
        assert "no such pin" in (drive_mock_pin(factory, "99 high") or "")
        assert factory.pin(22).state is False  # the output was not touched


class Child:
    """hwctl with a stdin to drive its mock pins; stdout lines read with a deadline."""

    def __init__(self, argv: list[str]) -> None:
        self.popen = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def next_json(self, timeout_s: float = 15.0) -> dict[str, Any]:
        try:
            return dict(json.loads(self.lines.get(timeout=timeout_s)))
        except queue.Empty:
            self.popen.kill()
            _, err = self.popen.communicate()
            raise AssertionError(f"no line from hwctl in {timeout_s} s; stderr: {err}") from None

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.communicate()


def test_hwctl_gpio_watch_in_a_subprocess_reports_debounced_events() -> None:
    child = Child([*HWCTL, "watch", "--mock", "--pin", "17", "--bounce-s", "0.02", "--count", "2"])
    try:
        ready = child.next_json()
        assert ready["event"] == "ready"
        assert ready["devices"] == {"gpio17": {"pin": 17, "role": "door", "state": "open"}}
        child.send("17 low")
        closed = child.next_json()
        child.send("17 high")
        opened = child.next_json()
        end = child.next_json()
        assert child.popen.wait(timeout=20) == 0
    finally:
        child.close()
    assert (closed["event"], closed["device"], closed["pin"]) == ("closed", "gpio17", 17)
    assert (opened["event"], opened["device"]) == ("opened", "gpio17")
    assert end == {"ok": True, "event": "end", "events": 2, "reason": "count"}


def run_hwctl(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*HWCTL, *argv], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )


def test_hwctl_gpio_errors_are_json_with_a_code(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        "schema_version = 1\n[kiosk.gpio]\nbackend = 'lgpio'\nchip_labels = ['no-such-chip']\n"
    )
    done = run_hwctl("watch", "--config", str(site), "--pin", "17")
    assert done.returncode == 2
    error = json.loads(done.stdout)
    assert error["ok"] is False
    assert error["code"] == "gpio_chip_not_found"
    assert "no-such-chip" in error["detail"]
    assert error["message_zh"] and error["message_en"]

    done = run_hwctl("watch", "--mock")
    assert done.returncode == 2
    assert json.loads(done.stdout)["code"] == "gpio_not_configured"


def test_hwctl_gpio_chips_lists_real_devices() -> None:
    done = run_hwctl("chips")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert listed["ok"] is True
    # whatever this machine has (none in CI): one entry per distinct real chip device
    assert len(listed["chips"]) == len({str(p.resolve()) for p in Path("/dev").glob("gpiochip*")})
