"""The in-process simulator's hooks, delivery rules, and ``hwctl scanner`` run for real."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from drivers.scanner import (
    CheckDigitMismatch,
    Scan,
    ScanBadCharacters,
    ScanKind,
    ScannerSettings,
    ScannerTimeout,
    ScanRejected,
    open_scanner,
)
from drivers.scanner.serial_line import SerialScanner
from drivers.scanner.sim import PtyScannerSim, SimScanner
from drivers.scanner.wedge import WedgeScanner
from tests.fixtures.processes import REPO_ROOT, Spawner

BOOKING = "YY202406150013"


def _sim(**kw: object) -> SimScanner:
    scanner = open_scanner(ScannerSettings.model_validate({"backend": "sim", **kw}))
    assert isinstance(scanner, SimScanner)
    return scanner


def test_factory_picks_the_backend_the_settings_name() -> None:
    assert isinstance(_sim(), SimScanner)
    serial = ScannerSettings.model_validate({"backend": "serial", "serial": {"url": "loop://"}})
    assert isinstance(open_scanner(serial), SerialScanner)
    wedge = ScannerSettings.model_validate({"backend": "evdev", "evdev": {"device_name": "x"}})
    assert isinstance(open_scanner(wedge), WedgeScanner)


def test_importing_the_drivers_does_not_import_evdev() -> None:
    code = (
        "import sys, drivers.scanner, drivers.scanner.wedge, drivers.scanner.sim, "
        "drivers.hwctl.scanner; print('evdev' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_sim_hooks_go_through_the_classifier() -> None:
    with _sim() as scanner:
        assert scanner.scan(BOOKING)
        assert scanner.scan_bytes(b"\xff\xfe garbage")
        assert scanner.scan("YY202406150012")
        assert scanner.read(timeout_s=1) == Scan(ScanKind.BOOKING_CODE, BOOKING, 14, "sim")
        with pytest.raises(ScanBadCharacters) as bad:
            scanner.read(timeout_s=1)
        assert bad.value.raw_length == len(b"\xff\xfe garbage")
        with pytest.raises(CheckDigitMismatch):
            scanner.read(timeout_s=1)
        with pytest.raises(ScannerTimeout):
            scanner.read(timeout_s=0.05)


def test_unplugged_sim_drops_scans_and_reports_offline() -> None:
    states: list[bool] = []
    scanner = _sim()
    scanner.when_connection = states.append
    with scanner:
        scanner.unplug()
        assert not scanner.scan(BOOKING)
        with pytest.raises(ConnectionError):
            scanner.wait_connected(0.01)
        scanner.plug()
        scanner.wait_connected(0.01)
        assert scanner.scan(BOOKING)
        assert scanner.read(timeout_s=1).value == BOOKING
    assert states == [True, False, True, False]


def test_callbacks_take_scans_instead_of_the_queue_and_survive_their_own_errors() -> None:
    scanner = _sim()
    got: list[Scan] = []
    refused: list[ScanRejected] = []

    def on_scan(scan: Scan) -> None:
        got.append(scan)
        raise RuntimeError("a buggy screen")

    scanner.when_scanned = on_scan
    scanner.when_rejected = refused.append
    with scanner:
        scanner.scan(BOOKING)
        scanner.scan("nope")
        scanner.scan(BOOKING)
        with pytest.raises(ScannerTimeout):
            scanner.read(timeout_s=0.05)
    assert [s.value for s in got] == [BOOKING, BOOKING]
    assert [r.code for r in refused] == ["scan_not_recognised"]


def test_a_full_queue_drops_the_oldest_scan() -> None:
    with _sim(queue_size=2) as scanner:
        for serial in ("20240615001", "20240615002", "20240615003"):
            scanner.scan("HK1:B:" + _booking(serial))
        assert scanner.read(timeout_s=1).value == _booking("20240615002")
        assert scanner.read(timeout_s=1).value == _booking("20240615003")


def test_callbacks_run_on_the_reader_thread_of_a_real_backend(tmp_path: Path) -> None:
    threads: list[str] = []
    settings = ScannerSettings.model_validate(
        {"backend": "serial", "serial": {"url": str(tmp_path / "tty")}}
    )
    with PtyScannerSim(tmp_path / "tty") as sim:
        scanner = open_scanner(settings)
        done = threading.Event()
        scanner.when_scanned = lambda scan: (
            threads.append(threading.current_thread().name),
            done.set(),
        )
        with scanner:
            scanner.wait_connected(5)
            sim.scan(BOOKING)
            assert done.wait(5)
    assert threads == ["scanner-serial"]


def _booking(body11: str) -> str:
    from drivers.scanner.formats import make_booking_code

    return make_booking_code(body11)


# --- hwctl for real ---


def test_hwctl_listen_on_a_serial_scanner(tmp_path: Path, spawn: Spawner) -> None:
    with PtyScannerSim(tmp_path / "ttyACM0") as sim:
        proc = spawn(
            "drivers.hwctl",
            "--json",
            "scanner",
            "listen",
            "--backend",
            "serial",
            "--url",
            sim.url,
            "--count",
            "3",
            "--wait-s",
            "30",
        )
        first = json.loads(proc.read_line(timeout_s=15))
        assert first == {"ok": True, "event": "connected", "source": f"serial:{sim.url}"}
        sim.scan("GA2024000123A")
        sim.scan("330106199001011234")
        sim.scan(f"HK1:B:{BOOKING}")
        lines = [json.loads(proc.read_line(timeout_s=15)) for _ in range(3)]
        assert proc.wait(15) == 0
    assert lines[0] == {
        "ok": True,
        "event": "scan",
        "kind": "case_barcode",
        "value": "GA2024000123A",
        "raw_length": 13,
        "source": f"serial:{sim.url}",
    }
    assert lines[1]["ok"] is False
    assert lines[1]["code"] == "scan_not_recognised"
    assert lines[1]["raw_length"] == 18
    assert lines[1]["message_en"].startswith("This code is not recognised")
    assert "330106199001011234" not in json.dumps(lines) + proc.stderr
    assert (lines[2]["kind"], lines[2]["value"]) == ("booking_qr", BOOKING)


def test_hwctl_listen_on_the_simulator_in_plain_words() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "drivers.hwctl",
            "scanner",
            "listen",
            "--sim-scan",
            BOOKING,
            "--sim-scan",
            "YY202406150012",
            "--count",
            "2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "listening on sim",
        f"booking_code: {BOOKING} (14 chars, sim)",
        "refused [scan_check_failed] 14 chars: The code was not read correctly. "
        "Please scan it again. / 此码没有读清楚，请重新扫描。",
    ]


def test_hwctl_reports_a_missing_scanner_as_offline(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "drivers.hwctl",
            "--json",
            "scanner",
            "listen",
            "--backend",
            "serial",
            "--url",
            str(tmp_path / "absent"),
            "--connect-timeout-s",
            "0.3",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    error = json.loads(out.stdout)
    assert (error["ok"], error["code"]) == (False, "scanner_offline")
    assert error["message_zh"] == "扫码器未连接，请联系工作人员。"


def test_hwctl_refuses_bad_settings_in_plain_words() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "drivers.hwctl",
            "--json",
            "scanner",
            "listen",
            "--backend",
            "evdev",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    error = json.loads(out.stdout)
    assert error["code"] == "config_invalid"
    assert "needs evdev.device_path" in error["detail"]
