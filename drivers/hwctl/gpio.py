"""``hwctl gpio``: list gpiochips by label, and watch the wired inputs live.

    hwctl gpio chips                                   which /dev/gpiochip* carries which label
    hwctl gpio watch --config /etc/hallkiosk/site.toml [--section kiosk.gpio]
    hwctl gpio watch --pin 17 --pin 27 --pull up       ad-hoc door-like inputs, no config needed
    hwctl gpio watch --mock --pin 17                   MockFactory; stdin lines "17 low" drive pins

Prints one line when ready (every device and its state), one per debounced event, and one at the
end (``--count`` events or ``--seconds`` elapsed; otherwise until Ctrl-C). Outputs are held in
their safe states for the whole run.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from pydantic import ValidationError

from drivers.gpio import GpioBoard, GpioEvent, GpioNotConfigured, GpioSettings
from drivers.gpio.chips import find_chip, list_chips
from drivers.hwctl.output import Output
from hallkiosk.config import ConfigError, load


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "gpio", help="GPIO chips and live door/button events"
    )
    sub = parser.add_subparsers(dest="gpio_command", required=True)

    chips = sub.add_parser("chips", help="list /dev/gpiochip* with their labels")
    chips.add_argument("--dev-dir", default="/dev", help=argparse.SUPPRESS)
    chips.set_defaults(handler=run_chips)

    watch = sub.add_parser("watch", help="print debounced input events")
    watch.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="site TOML file(s), layered over the packaged defaults",
    )
    watch.add_argument(
        "--section",
        default="kiosk.gpio",
        help="dotted section holding the GPIO settings (default kiosk.gpio)",
    )
    watch.add_argument(
        "--pin",
        action="append",
        type=int,
        default=[],
        metavar="BCM",
        help="also watch this BCM pin as a door-like input (repeatable)",
    )
    watch.add_argument(
        "--pull",
        choices=("up", "down", "none"),
        default="up",
        help="pull resistor for --pin inputs (default up)",
    )
    watch.add_argument(
        "--bounce-s", type=float, default=0.05, help="debounce time for --pin inputs (default 0.05)"
    )
    watch.add_argument(
        "--mock",
        action="store_true",
        help="gpiozero MockFactory; stdin lines 'PIN high|low' drive the pins",
    )
    watch.add_argument("--count", type=int, default=None, help="stop after N events")
    watch.add_argument("--seconds", type=float, default=None, help="stop after S seconds")
    watch.set_defaults(handler=run_watch)


def run_chips(args: argparse.Namespace, out: Output) -> int:
    chips = list_chips(args.dev_dir)
    data = [
        {"number": c.number, "path": c.path, "name": c.name, "label": c.label, "lines": c.lines}
        for c in chips
    ]
    text = "\n".join(f"gpiochip{c.number}  {c.label}  ({c.lines} lines)  {c.path}" for c in chips)
    out.result({"ok": True, "chips": data}, text or "no gpiochip devices")
    return 0


def settings_from_args(args: argparse.Namespace) -> GpioSettings:
    """The config section (if any) plus ``--pin`` inputs; ``--mock`` forces the mock backend."""
    # without a config file this is a technician at a real Pi, so real pins unless --mock
    raw: dict[str, Any] = {"backend": "lgpio"}
    if args.config:
        loaded = load(args.config)
        node: Any = loaded.data
        for part in args.section.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        raw = dict(node)
        try:
            base = GpioSettings.model_validate(raw)
        except ValidationError as exc:
            section = tuple(args.section.split("."))
            raise ConfigError(
                [loaded.describe((*section, *e["loc"]), e["msg"]) for e in exc.errors()]
            ) from None
        raw = base.model_dump()
    devices = dict(raw.get("devices", {}))
    for pin in args.pin:
        devices[f"gpio{pin}"] = {
            "role": "door",
            "pin": pin,
            "pull": args.pull,
            "bounce_s": args.bounce_s,
        }
    raw["devices"] = devices
    if args.mock:
        raw["backend"] = "mock"
    try:
        settings = GpioSettings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"{_loc(e['loc'])}: {e['msg']}" for e in exc.errors()]) from None
    if not any(d.role in ("door", "button") for d in settings.devices.values()):
        raise GpioNotConfigured("nothing to watch: give --config with inputs, or --pin")
    return settings


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "gpio"


def run_watch(args: argparse.Namespace, out: Output) -> int:
    settings = settings_from_args(args)
    chip = None
    if settings.backend == "lgpio":
        found = find_chip(settings.chip_labels)
        chip = {"number": found.number, "path": found.path, "label": found.label}
    with GpioBoard(settings) as board:
        if settings.backend == "mock":
            feeder = threading.Thread(
                target=feed_mock_pins, args=(board.factory, sys.stdin), daemon=True
            )
            feeder.start()
        return watch(
            board, out, count=args.count, seconds=args.seconds, backend=settings.backend, chip=chip
        )


def watch(
    board: GpioBoard,
    out: Output,
    *,
    count: int | None = None,
    seconds: float | None = None,
    backend: str = "",
    chip: dict[str, Any] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """Print the board's events until ``count`` or ``seconds``. Events cross from the board's
    thread through a queue, the same hand-over the kiosk does to its UI thread."""
    events: queue.Queue[GpioEvent] = queue.Queue()
    board.add_listener(events.put)
    t0 = monotonic()
    deadline = None if seconds is None else t0 + seconds
    snapshot = board.snapshot()
    out.result(
        {"ok": True, "event": "ready", "backend": backend, "chip": chip, "devices": snapshot},
        f"watching on {backend or 'gpio'}"
        + (f" ({chip['label']} = gpiochip{chip['number']})" if chip else "")
        + ": "
        + ", ".join(f"{n}(GPIO{d['pin']})={d['state']}" for n, d in snapshot.items()),
    )
    seen = 0
    reason = "count"
    try:
        while count is None or seen < count:
            wait_s = 0.5
            if deadline is not None:
                wait_s = min(wait_s, deadline - monotonic())
                if wait_s <= 0:
                    reason = "time"
                    break
            try:
                ev = events.get(timeout=wait_s)
            except queue.Empty:
                continue
            seen += 1
            t_s = round(ev.at_s - t0, 3)
            out.result(
                {
                    "ok": True,
                    "event": ev.kind,
                    "device": ev.device,
                    "role": ev.role,
                    "pin": ev.pin,
                    "t_s": t_s,
                },
                f"{t_s:+9.3f} s  {ev.device} (GPIO{ev.pin}) {ev.kind}",
            )
    finally:
        board.remove_listener(events.put)
    out.result(
        {"ok": True, "event": "end", "events": seen, "reason": reason},
        f"end: {seen} event(s), stopped by {reason}",
    )
    return 0


def feed_mock_pins(factory: Any, stream: IO[str]) -> None:
    """Simulator hook for ``--mock``: each line ``PIN high|low`` drives that mock input."""
    for line in stream:
        problem = drive_mock_pin(factory, line)
        if problem:
            print(f"hwctl gpio: {problem}", file=sys.stderr, flush=True)


def drive_mock_pin(factory: Any, line: str) -> str | None:
    """Apply one control line; returns a problem description, or None when applied."""
    parts = line.split()
    if not parts:
        return None
    if len(parts) != 2 or parts[1] not in ("high", "low"):
        return f"expected 'PIN high|low', got {line.strip()!r}"
    pin_name = parts[0].upper().removeprefix("GPIO")
    if not pin_name.isdigit():
        return f"not a pin number: {parts[0]!r}"
    try:
        pin = factory.pin(int(pin_name))
    except Exception as exc:
        return f"no such pin {parts[0]!r}: {exc}"
    if pin.function != "input":
        return f"GPIO{pin_name} is not a watched input"
    if parts[1] == "high":
        pin.drive_high()
    else:
        pin.drive_low()
    return None
