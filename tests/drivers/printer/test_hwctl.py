"""``hwctl printer`` run for real, as a subprocess, against the simulator process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from pyzbar.pyzbar import decode

from tests.drivers.printer.conftest import PrinterSimHandle
from tests.fixtures.processes import REPO_ROOT


def hwctl(*args: str) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "drivers.hwctl", "--json", "printer", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout {done.stdout!r} stderr {done.stderr!r}"
    return done.returncode, json.loads(lines[0]), done.stderr


def test_status_ok_then_paper_out(printer_sim: PrinterSimHandle) -> None:
    code, data, _ = hwctl("--url", printer_sim.pty_path, "status")
    assert code == 0
    assert data == {
        "ok": True,
        "url": printer_sim.pty_path,
        "profile": "generic-80",
        "usable": True,
        "online": True,
        "paper": "ok",
        "cover_open": False,
        "error": False,
        "cutter_error": False,
        "raw": {"dle_eot_1": "12", "dle_eot_4": "12"},
    }
    printer_sim.control.pull_paper()
    code, data, _ = hwctl("--url", printer_sim.pty_path, "status")
    assert code == 1
    assert (data["usable"], data["online"], data["paper"]) == (False, False, "out")
    assert data["raw"] == {"dle_eot_1": "1a", "dle_eot_2": "32", "dle_eot_4": "7e"}


def test_test_ticket_prints_and_previews(printer_sim: PrinterSimHandle, tmp_path: Path) -> None:
    preview = tmp_path / "ticket.png"
    code, data, _ = hwctl(
        "--url", printer_sim.pty_path, "--profile", "generic-58", "test-ticket",
        "--preview", str(preview),
    )  # fmt: skip
    assert code == 0
    assert data["printed"] is True and data["qr"] == "native" and data["paper"] == "ok"
    received = printer_sim.control.received()
    assert data["bytes_written"] == len(received) - 2 * 6  # two status checks of 6 bytes
    printed_qr = [i["data"] for i in printer_sim.control.items() if i["kind"] == "qr"]
    assert printed_qr == [data["qr_payload"]]
    with Image.open(preview) as png:
        assert [s.data.decode() for s in decode(png)] == printed_qr


def test_test_ticket_refused_without_paper(printer_sim: PrinterSimHandle) -> None:
    printer_sim.control.pull_paper()
    code, data, _ = hwctl("--url", printer_sim.pty_path, "test-ticket")
    assert code == 2
    assert data["ok"] is False and data["code"] == "printer_paper_out"
    assert data["message_zh"].startswith("打印纸已用完")
    assert printer_sim.control.items() == []


def test_status_of_a_silent_printer(printer_sim: PrinterSimHandle) -> None:
    printer_sim.control.go_offline()
    code, data, _ = hwctl("--url", printer_sim.pty_path, "--timeout-ms", "100", "status")
    assert code == 2
    assert data["code"] == "printer_offline" and "no reply to DLE EOT 1" in data["detail"]
