"""``hwctl scanner``: list input devices, and listen for scans with the kiosk's own classifier.

    hwctl scanner devices
    hwctl scanner listen --backend evdev --device-name "Barcode" [--count N] [--wait-s S]
    hwctl scanner listen --backend serial --url /dev/ttyACM0 [--line-end any]
    hwctl scanner listen --backend sim --sim-scan YY202406150013

A refused scan prints its reason and length, never its content.
"""

from __future__ import annotations

import argparse
import queue
import time
from typing import Any

from pydantic import ValidationError

from drivers.hwctl.output import Output
from drivers.scanner import (
    EvdevSettings,
    FormatSettings,
    Scan,
    ScannerError,
    ScannerSettings,
    ScanRejected,
    SerialSettings,
    open_scanner,
)
from drivers.scanner.sim import SimScanner
from hallkiosk.config import ConfigError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "scanner", help="QR/barcode scanner: list devices, listen for scans"
    )
    actions = parser.add_subparsers(dest="action", required=True)

    devices = actions.add_parser("devices", help="list evdev input devices (name, phys, id)")
    devices.set_defaults(handler=_devices)

    listen = actions.add_parser("listen", help="print each scan as the kiosk would classify it")
    listen.add_argument("--backend", choices=("sim", "evdev", "serial"), default="sim")
    listen.add_argument("--url", default="", help="serial: port path or pyserial URL")
    listen.add_argument("--baud", type=int, default=9600)
    listen.add_argument("--line-end", choices=("cr", "lf", "crlf", "any"), default="any")
    listen.add_argument("--device-path", default="", help="evdev: /dev/input/... path")
    listen.add_argument("--device-name", default="", help="evdev: part of the device name")
    listen.add_argument("--phys", default="", help="evdev: start of the phys string")
    listen.add_argument("--vid-pid", default="", help="evdev: vendor:product in hex, 0c2e:0b61")
    listen.add_argument("--no-grab", action="store_true", help="evdev: do not grab the device")
    listen.add_argument("--end-key", choices=("enter", "tab", "none"), default="enter")
    listen.add_argument("--silence-end-ms", type=int, default=150)
    listen.add_argument(
        "--booking-host", action="append", default=[], help="accepted booking-link host"
    )
    listen.add_argument("--count", type=int, default=0, help="stop after N scans (0: never)")
    listen.add_argument("--wait-s", type=float, default=0, help="stop after S seconds (0: never)")
    listen.add_argument("--connect-timeout-s", type=float, default=5.0)
    listen.add_argument("--sim-scan", action="append", default=[], help="sim: scan this text")
    listen.set_defaults(handler=_listen)


def _settings(args: argparse.Namespace) -> ScannerSettings:
    vendor = product = None
    if args.vid_pid:
        try:
            vendor_hex, product_hex = args.vid_pid.split(":")
            vendor, product = int(vendor_hex, 16), int(product_hex, 16)
        except ValueError:
            raise ConfigError([f"--vid-pid: {args.vid_pid!r} is not VVVV:PPPP in hex"]) from None
    try:
        return ScannerSettings(
            backend=args.backend,
            silence_end_ms=args.silence_end_ms,
            evdev=EvdevSettings(
                device_path=args.device_path,
                device_name=args.device_name,
                phys=args.phys,
                vendor_id=vendor,
                product_id=product,
                grab=not args.no_grab,
                end_key=args.end_key,
            ),
            serial=SerialSettings(url=args.url, baud=args.baud, line_end=args.line_end),
            formats=FormatSettings(booking_url_hosts=tuple(args.booking_host)),
        )
    except ValidationError as exc:
        raise ConfigError(
            [f"{'.'.join(str(p) for p in e['loc']) or 'scanner'}: {e['msg']}" for e in exc.errors()]
        ) from None


def _listen(args: argparse.Namespace, out: Output) -> int:
    settings = _settings(args)
    scanner = open_scanner(settings)
    events: queue.Queue[Scan | ScanRejected] = queue.Queue()
    scanner.when_scanned = events.put
    scanner.when_rejected = events.put
    deadline = time.monotonic() + args.wait_s if args.wait_s > 0 else None
    seen = 0
    with scanner:
        scanner.wait_connected(args.connect_timeout_s)
        out.result(
            {"ok": True, "event": "connected", "source": scanner.source},
            f"listening on {scanner.source}",
        )
        if isinstance(scanner, SimScanner):
            for text in args.sim_scan:
                scanner.scan(text)
        while args.count <= 0 or seen < args.count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                item = events.get(timeout=0.2 if left is None else min(left, 0.2))
            except queue.Empty:
                continue
            seen += 1
            _print_scan(out, item)
    if args.count > 0 and seen < args.count:
        out.result(
            {"ok": False, "event": "timeout", "scans": seen},
            f"stopped after {args.wait_s} s with {seen} of {args.count} scans",
        )
        return 1
    return 0


def _print_scan(out: Output, item: Scan | ScanRejected) -> None:
    if isinstance(item, Scan):
        out.result(
            {"ok": True, "event": "scan", **item.describe()},
            f"{item.kind.value}: {item.value} ({item.raw_length} chars, {item.source})",
        )
        return
    out.result(
        {
            "ok": False,
            "event": "scan",
            "code": item.code,
            "raw_length": item.raw_length,
            "source": item.source,
            "message_zh": item.message_zh,
            "message_en": item.message_en,
        },
        f"refused [{item.code}] {item.raw_length} chars: {item.message_en} / {item.message_zh}",
    )


def _devices(args: argparse.Namespace, out: Output) -> int:
    try:
        import evdev  # noqa: PLC0415 - optional hardware library
    except ImportError:
        raise ScannerError("python-evdev is not installed") from None
    found: list[dict[str, str]] = []
    for path in sorted(evdev.list_devices()):
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue
        try:
            found.append(
                {
                    "path": str(path),
                    "name": device.name,
                    "phys": device.phys,
                    "vid_pid": f"{device.info.vendor:04x}:{device.info.product:04x}",
                }
            )
        finally:
            device.close()
    lines = [f"{d['path']}  {d['vid_pid']}  {d['name']!r}  phys={d['phys']}" for d in found]
    out.result(
        {"ok": True, "devices": found},
        "\n".join(lines) or "no input devices (is /dev/input there, and readable?)",
    )
    return 0
