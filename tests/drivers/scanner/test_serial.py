"""Serial-line scanners on real ptys: line ends, over-long lines, garbage, unplug and replug."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from drivers.scanner import (
    CodeNotRecognised,
    ScanBadCharacters,
    ScanKind,
    ScannerSettings,
    ScanTooLong,
    open_scanner,
)
from drivers.scanner.formats import make_receipt_payload
from drivers.scanner.serial_line import LineAssembler, RawLine, SerialScanner
from drivers.scanner.sim import PtyScannerSim
from tests.fixtures import wait_until

BOOKING = "YY202406150013"
RECEIPT = make_receipt_payload("YS2026112300123")


def _settings(url: str, **serial: object) -> ScannerSettings:
    return ScannerSettings.model_validate(
        {
            "backend": "serial",
            "reconnect_interval_ms": 100,
            "silence_end_ms": 100,
            "serial": {"url": url, **serial},
        }
    )


@pytest.mark.parametrize(
    ("line_end", "data", "lines"),
    [
        ("cr", b"AB\rCD\r", [RawLine(b"AB", 2), RawLine(b"CD", 2)]),
        ("cr", b"AB\r\nCD\r", [RawLine(b"AB", 2), RawLine(b"\nCD", 3)]),
        ("lf", b"AB\nCD\n", [RawLine(b"AB", 2), RawLine(b"CD", 2)]),
        ("crlf", b"AB\r\nC\rD\r\n", [RawLine(b"AB", 2), RawLine(b"C\rD", 3)]),
        ("crlf", b"\r\n\r\n", []),
        ("any", b"AB\r\nCD\rEF\n\n", [RawLine(b"AB", 2), RawLine(b"CD", 2), RawLine(b"EF", 2)]),
    ],
)
def test_line_ends(line_end: str, data: bytes, lines: list[RawLine]) -> None:
    assembler = LineAssembler(line_end=line_end, max_length=32)  # type: ignore[arg-type]
    # byte by byte and all at once must agree
    assert assembler.feed(data) == lines
    one_by_one = LineAssembler(line_end=line_end, max_length=32)  # type: ignore[arg-type]
    assert [line for b in data for line in one_by_one.feed(bytes([b]))] == lines


def test_an_overlong_line_is_counted_not_stored() -> None:
    assembler = LineAssembler(line_end="crlf", max_length=32)
    (line,) = assembler.feed(b"9" * 10_000 + b"\r\n")
    assert line == RawLine(b"9" * 33, 10_000)


def test_scans_over_a_real_pty(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with PtyScannerSim(tmp_path / "ttyScanner") as sim:
        scanner = open_scanner(_settings(sim.url))
        assert isinstance(scanner, SerialScanner)
        with scanner:
            scanner.wait_connected(5)
            sim.scan(BOOKING)
            sim.scan(RECEIPT)
            first, second = scanner.read(timeout_s=5), scanner.read(timeout_s=5)
            assert (first.kind, first.value, first.source) == (
                ScanKind.BOOKING_CODE,
                BOOKING,
                f"serial:{sim.url}",
            )
            assert (second.kind, second.value) == (ScanKind.RECEIPT_QR, "YS2026112300123")
            sim.scan_bytes("张三 330106199001011234\r".encode())
            with pytest.raises(ScanBadCharacters) as caught:
                scanner.read(timeout_s=5)
            assert caught.value.raw_length == len("张三 330106199001011234".encode())
            sim.scan_bytes(b"A" * 700 + b"\r")
            with pytest.raises(ScanTooLong) as too_long:
                scanner.read(timeout_s=5)
            assert too_long.value.raw_length == 700
    assert "330106199001011234" not in caplog.text and "张三" not in caplog.text


def test_a_line_without_its_end_is_delivered_after_silence(tmp_path: Path) -> None:
    with (
        PtyScannerSim(tmp_path / "tty", line_end=b"") as sim,
        SerialScanner(_settings(sim.url, line_end="cr")) as scanner,
    ):
        scanner.wait_connected(5)
        sim.scan("GA2024000123A")
        scan = scanner.read(timeout_s=5)
    assert (scan.kind, scan.value) == (ScanKind.CASE_BARCODE, "GA2024000123A")


def test_bytes_waiting_before_start_are_not_taken_for_a_scan(tmp_path: Path) -> None:
    with PtyScannerSim(tmp_path / "tty") as sim:
        sim.scan_bytes(b"stale half line")
        with SerialScanner(_settings(sim.url)) as scanner:
            scanner.wait_connected(5)
            sim.scan(BOOKING)
            assert scanner.read(timeout_s=5).value == BOOKING


def test_the_port_is_reopened_after_an_unplug(tmp_path: Path) -> None:
    states: list[bool] = []
    with PtyScannerSim(tmp_path / "tty") as sim:
        scanner = SerialScanner(_settings(sim.url))
        scanner.when_connection = states.append
        with scanner:
            scanner.wait_connected(5)
            sim.unplug()
            wait_until(lambda: not scanner.connected, what="the lost port to be noticed")
            sim.plug()
            scanner.wait_connected(5)
            sim.scan("hello")
            with pytest.raises(CodeNotRecognised):
                scanner.read(timeout_s=5)
    assert states[:3] == [True, False, True]


def test_a_missing_port_is_offline_not_a_crash(tmp_path: Path) -> None:
    with SerialScanner(_settings(str(tmp_path / "nothing"))) as scanner:
        with pytest.raises(ConnectionError):
            scanner.wait_connected(0.3)
        assert not scanner.connected


def test_loop_url_needs_no_code_change() -> None:
    # pyserial's loop:// echoes what is written: the same backend, no pty at all
    ports: list[object] = []

    def factory(url: str, baud: int) -> object:
        import serial

        port = serial.serial_for_url(url, baudrate=baud, timeout=0)
        ports.append(port)
        return port

    scanner = SerialScanner(_settings("loop://"), serial_factory=factory)
    with scanner:
        scanner.wait_connected(5)
        ports[0].write(f"{BOOKING}\r".encode())  # type: ignore[attr-defined]
        assert scanner.read(timeout_s=5).value == BOOKING


def test_pty_fd_is_not_leaked(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    with PtyScannerSim(tmp_path / "tty") as sim, SerialScanner(_settings(sim.url)) as scanner:
        scanner.wait_connected(5)
    assert len(os.listdir("/proc/self/fd")) == before
