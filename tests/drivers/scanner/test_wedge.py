"""Keyboard-wedge scanners: the key translator with real ``evdev.InputEvent`` objects, and the
backend reading real ``struct input_event`` bytes through evdev's own C reader.

Why not a virtual keyboard via ``evdev.UInput``: this container's kernel has no uinput (it is not
in /proc/misc, there is no /lib/modules to load it from, and a hand-made /dev/uinput node answers
ENODEV). So the backend's device is an ``evdev.eventio.EventIO`` over a pipe: evdev's C code
parses the bytes exactly as it parses /dev/input/eventN; only the ioctls (name, id, grab) are
stood in for.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import evdev
import pytest
from evdev import InputEvent, ecodes
from evdev.device import DeviceInfo
from evdev.eventio import EventIO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.scanner import (
    CheckDigitMismatch,
    ScanBadCharacters,
    ScanKind,
    ScannerSettings,
    ScanRejected,
    ScanTooLong,
)
from drivers.scanner import wedge as wedge_mod
from drivers.scanner.formats import classify
from drivers.scanner.settings import EvdevSettings
from drivers.scanner.sim import key_events
from drivers.scanner.wedge import KeyTranslator, RawScan, WedgeScanner, device_matches
from tests.fixtures import wait_until

BOOKING = "YY202406150013"


def ev(code: int, value: int, t: float = 100.0, type_: int = ecodes.EV_KEY) -> InputEvent:
    sec, usec = divmod(round(t * 1_000_000), 1_000_000)
    return InputEvent(sec, usec, type_, code, value)


def real_events(text: str, *, end: int | None = ecodes.KEY_ENTER, **kw: float) -> list[InputEvent]:
    """Typing ``text`` as a USB-KBW scanner does, as real evdev InputEvent objects."""
    return [
        InputEvent(e.sec, e.usec, e.type, e.code, e.value) for e in key_events(text, end=end, **kw)
    ]


def translate(events: list[InputEvent], **kw: object) -> list[RawScan]:
    args: dict[str, object] = {"end_key": "enter", "max_length": 512, "silence_s": 0.15, **kw}
    tr = KeyTranslator(**args)  # type: ignore[arg-type]
    out: list[RawScan] = []
    for e in events:
        out.extend(tr.feed(e))
    return out


# --- the key table is the kernel's ---


def test_key_numbers_agree_with_evdev_ecodes() -> None:
    assert wedge_mod.EV_KEY == ecodes.EV_KEY
    assert (wedge_mod.KEY_ENTER, wedge_mod.KEY_KPENTER, wedge_mod.KEY_TAB) == (
        ecodes.KEY_ENTER,
        ecodes.KEY_KPENTER,
        ecodes.KEY_TAB,
    )
    assert {ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT} == wedge_mod.SHIFT_KEYS
    chord = {ecodes.KEY_LEFTCTRL, ecodes.KEY_RIGHTCTRL, ecodes.KEY_LEFTALT, ecodes.KEY_RIGHTALT}
    assert chord == wedge_mod.CHORD_KEYS
    named = {
        "KEY_A": ("a", "A"),
        "KEY_Q": ("q", "Q"),
        "KEY_Z": ("z", "Z"),
        "KEY_M": ("m", "M"),
        "KEY_0": ("0", ")"),
        "KEY_1": ("1", "!"),
        "KEY_SLASH": ("/", "?"),
        "KEY_SEMICOLON": (";", ":"),
        "KEY_APOSTROPHE": ("'", '"'),
        "KEY_MINUS": ("-", "_"),
        "KEY_KP0": ("0", "0"),
        "KEY_KP9": ("9", "9"),
        "KEY_KPDOT": (".", "."),
        "KEY_KPSLASH": ("/", "/"),
    }
    for name, pair in named.items():
        assert wedge_mod.US_KEYMAP[ecodes.ecodes[name]] == pair, name
    letters = {ecodes.ecodes[f"KEY_{c}"] for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    assert {c for c, (p, _) in wedge_mod.US_KEYMAP.items() if p.isalpha()} == letters


# --- the translator ---


def test_a_scan_with_shift_and_symbols_translates_exactly() -> None:
    text = "https://yy.example.cn/c?yyh=YY202406150013&A=1"
    assert translate(real_events(text)) == [RawScan(text, len(text))]


def test_right_shift_and_keypad_digits() -> None:
    events = [
        ev(ecodes.KEY_RIGHTSHIFT, 1),
        ev(ecodes.KEY_Y, 1),
        ev(ecodes.KEY_Y, 0),
        ev(ecodes.KEY_Y, 1),
        ev(ecodes.KEY_RIGHTSHIFT, 0),
        ev(ecodes.KEY_NUMLOCK, 1),  # tapped before keypad digits: ignored
        ev(ecodes.KEY_KP2, 1),
        ev(ecodes.KEY_KP0, 1),
        ev(ecodes.KEY_Y, 1),  # shift released: lower case
        ev(ecodes.KEY_KPENTER, 1),
    ]
    assert translate(events) == [RawScan("YY20y", 5)]


def test_autorepeat_and_key_up_add_nothing() -> None:
    events = [ev(ecodes.KEY_1, 1), ev(ecodes.KEY_1, 2), ev(ecodes.KEY_1, 2), ev(ecodes.KEY_1, 0)]
    events += [ev(ecodes.KEY_ENTER, 1)]
    assert translate(events) == [RawScan("1", 1)]


def test_tab_as_end_key_and_enter_then_is_a_character() -> None:
    events = real_events("AB", end=ecodes.KEY_TAB) + real_events("CD", end=ecodes.KEY_ENTER)
    out = translate(events, end_key="tab")
    assert out == [RawScan("AB", 2)]


def test_with_no_end_key_a_pause_ends_a_scan() -> None:
    first = real_events("YY1", end=None, start_s=100.0)
    second = real_events("GA2", end=None, start_s=101.0)  # 1 s later: a new scan
    tr = KeyTranslator(end_key="none", max_length=512, silence_s=0.15)
    out = [raw for e in first + second for raw in tr.feed(e)]
    assert out == [RawScan("YY1", 3)]
    assert tr.pending
    assert tr.flush() == RawScan("GA2", 3)
    assert tr.flush() is None


def test_a_lost_enter_does_not_glue_two_scans_together() -> None:
    first = real_events(BOOKING, end=None, start_s=100.0)
    second = real_events(BOOKING, start_s=102.0)
    assert translate(first + second) == [RawScan(BOOKING, 14), RawScan(BOOKING, 14)]


def test_ctrl_chords_and_unknown_keys_make_the_scan_unreadable() -> None:
    events = [ev(ecodes.KEY_LEFTCTRL, 1), ev(ecodes.KEY_RIGHTBRACE, 1), ev(ecodes.KEY_LEFTCTRL, 0)]
    events += [ev(ecodes.KEY_A, 1), ev(ecodes.KEY_F5, 1), ev(ecodes.KEY_ENTER, 1)]
    (raw,) = translate(events)
    assert raw.length == 3
    with pytest.raises(ScanBadCharacters):
        classify(raw.text, ScannerSettings().formats, raw_length=raw.length)


def test_an_endless_scan_is_counted_but_not_stored() -> None:
    events = [e for _ in range(5000) for e in (ev(ecodes.KEY_7, 1), ev(ecodes.KEY_7, 0))]
    (raw,) = translate([*events, ev(ecodes.KEY_ENTER, 1)], max_length=64)
    assert raw.length == 5000
    assert raw.text == "7" * 65
    with pytest.raises(ScanTooLong):
        classify(raw.text, ScannerSettings().formats, raw_length=raw.length)


def test_bare_enter_and_non_key_events_yield_nothing() -> None:
    events = [ev(0, 0, type_=ecodes.EV_SYN), ev(4, 0x7002C, type_=ecodes.EV_MSC)]
    events += [ev(ecodes.KEY_ENTER, 1), ev(ecodes.KEY_ENTER, 0)]
    assert translate(events) == []


# Esc, Backspace, Tab, Enter, CapsLock, KP Enter, F1, NumLock, F11, Delete, Meta, unknown
_OTHER_KEYS = (1, 14, 15, 28, 58, 96, 59, 69, 87, 111, 125, 240)
_codes = st.sampled_from(
    [*wedge_mod.US_KEYMAP, *wedge_mod.SHIFT_KEYS, *wedge_mod.CHORD_KEYS, *_OTHER_KEYS]
)
_events = st.builds(
    InputEvent,
    st.integers(0, 2**31 - 1),
    st.integers(0, 999_999),
    st.sampled_from([ecodes.EV_KEY, ecodes.EV_KEY, ecodes.EV_KEY, ecodes.EV_SYN, ecodes.EV_MSC]),
    st.one_of(_codes, st.integers(0, 767)),
    st.sampled_from([0, 1, 1, 1, 2]),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_events, max_size=200), st.sampled_from(["enter", "tab", "none"]))
def test_fuzz_any_key_stream_yields_scans_or_our_refusals(
    events: list[InputEvent], end_key: str
) -> None:
    fmt = ScannerSettings().formats
    tr = KeyTranslator(end_key=end_key, max_length=64, silence_s=0.15)  # type: ignore[arg-type]
    raws = [raw for e in events for raw in tr.feed(e)]
    last = tr.flush()
    raws += [last] if last else []
    for raw in raws:
        assert len(raw.text) <= 65
        with contextlib.suppress(ScanRejected):  # anything else fails the test
            classify(raw.text, fmt, raw_length=raw.length)


@given(st.text(alphabet=[c for pair in wedge_mod.US_KEYMAP.values() for c in pair], max_size=80))
def test_whatever_a_us_keyboard_can_type_comes_back_unchanged(text: str) -> None:
    out = translate(real_events(text))
    assert out == ([RawScan(text, len(text))] if text else [])


# --- device matching ---


def test_every_configured_selector_must_match() -> None:
    facts = {"name": "Honeywell Barcode Scanner", "phys": "usb-0000:01:00.0-1.3/input0"}
    ids = {"vendor": 0x0C2E, "product": 0x0B61}
    assert device_matches(EvdevSettings(device_name="barcode"), **facts, **ids)
    assert device_matches(
        EvdevSettings(phys="usb-0000:01:00.0-1.3", vendor_id=0x0C2E, product_id=0x0B61),
        **facts,
        **ids,
    )
    assert not device_matches(EvdevSettings(device_name="barcode", vendor_id=1), **facts, **ids)
    assert not device_matches(EvdevSettings(phys="usb-0000:01:00.0-1.4"), **facts, **ids)
    assert not device_matches(EvdevSettings(product_id=0x0B62), **facts, **ids)


# --- the backend over evdev's own reader ---


class PipeNode:
    """One input device node, stood in for by a pipe: we write ``struct input_event`` bytes."""

    def __init__(self, path: str, name: str, vendor: int = 0x0C2E, product: int = 0x0B61) -> None:
        self.r, self._w = os.pipe()
        self.path = path
        self.name = name
        self.phys = "usb-0000:01:00.0-1.3/input0"
        self.info = DeviceInfo(3, vendor, product, 0x0111)
        self.grabbed_by: object | None = None
        self.handles: list[PipeHandle] = []

    def write_events(self, events: list[InputEvent]) -> None:
        data = b"".join(
            struct.pack("llHHi", e.sec, e.usec, e.type, e.code, e.value) for e in events
        )
        os.write(self._w, data)

    def unplug(self) -> None:
        os.close(self._w)

    @property
    def grabbed(self) -> bool:
        return self.grabbed_by is not None


class PipeHandle(EventIO):
    """One open of a node, as ``evdev.InputDevice(path)`` would be; evdev's C code reads it."""

    def __init__(self, node: PipeNode) -> None:
        self.node = node
        self.fd = os.dup(node.r)
        os.set_blocking(self.fd, False)
        self.path, self.name, self.phys, self.info = node.path, node.name, node.phys, node.info
        self.closed = False
        node.handles.append(self)

    def read(self) -> Iterator[InputEvent]:  # type: ignore[override]
        events = list(super().read())
        if not events:  # the writer is gone: what the kernel reports for an unplugged device
            raise OSError(errno.ENODEV, "No such device")
        return iter(events)

    def grab(self) -> None:  # EVIOCGRAB 1: exclusive, EBUSY if another open holds it
        if self.node.grabbed_by is not None:
            raise OSError(errno.EBUSY, "Device or resource busy")
        self.node.grabbed_by = self

    def ungrab(self) -> None:  # EVIOCGRAB 0: EINVAL unless this open holds the grab
        if self.node.grabbed_by is not self:
            raise OSError(errno.EINVAL, "Invalid argument")
        self.node.grabbed_by = None

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.node.grabbed_by is self:
                self.node.grabbed_by = None  # closing an fd drops its grab
            os.close(self.fd)


class Bench:
    """Device nodes the backend can find: the mouse is never ours, the scanner comes and goes."""

    def __init__(self) -> None:
        self.devices: dict[str, PipeNode] = {}
        self.opened: list[str] = []
        self.lock = threading.Lock()

    def plug(self, path: str, name: str) -> PipeNode:
        with self.lock:
            dev = self.devices[path] = PipeNode(path, name)
        return dev

    def unplug(self, path: str) -> None:
        with self.lock:
            self.devices.pop(path).unplug()

    def list_paths(self) -> list[str]:
        with self.lock:
            return sorted(self.devices)

    def open(self, path: str) -> PipeHandle:
        with self.lock:
            self.opened.append(path)
            node = self.devices.get(path)
        if node is None:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return PipeHandle(node)


def _scanner(bench: Bench, **evdev_kw: object) -> WedgeScanner:
    settings = ScannerSettings.model_validate(
        {
            "backend": "evdev",
            "reconnect_interval_ms": 100,
            "evdev": {"device_name": "barcode", **evdev_kw},
        }
    )
    return WedgeScanner(settings, list_paths=bench.list_paths, open_device=bench.open)


def test_backend_grabs_the_matching_device_and_delivers_scans(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    bench = Bench()
    mouse = bench.plug("/dev/input/event0", "Logitech USB Optical Mouse")
    kbd = bench.plug("/dev/input/event7", "Newland Barcode Scanner")
    with _scanner(bench) as scanner:
        scanner.wait_connected(5)
        assert kbd.grabbed and not mouse.grabbed
        assert all(h.closed for h in mouse.handles)  # opened to read its name, then let go
        assert scanner.source == "evdev:/dev/input/event7"
        kbd.write_events(real_events(BOOKING) + real_events("330106199001011234"))
        scan = scanner.read(timeout_s=5)
        assert (scan.kind, scan.value, scan.raw_length) == (ScanKind.BOOKING_CODE, BOOKING, 14)
        with pytest.raises(ScanRejected) as caught:
            scanner.read(timeout_s=5)
        assert caught.value.raw_length == 18
    assert not kbd.grabbed and all(h.closed for h in kbd.handles)  # released on stop
    assert "330106199001011234" not in caplog.text and "3301" not in caplog.text
    assert "scan rejected reason=scan_not_recognised length=18" in caplog.text
    assert BOOKING not in caplog.text  # accepted scans are logged by kind and length too


def test_backend_cuts_a_scan_on_silence_when_the_scanner_sends_no_end_key() -> None:
    bench = Bench()
    kbd = bench.plug("/dev/input/event3", "USB Barcode")
    with _scanner(bench, end_key="none") as scanner:
        scanner.wait_connected(5)
        kbd.write_events(real_events("GA2024000123A", end=None))
        scan = scanner.read(timeout_s=5)
    assert (scan.kind, scan.value) == (ScanKind.CASE_BARCODE, "GA2024000123A")


def test_backend_finds_the_scanner_again_after_an_unplug() -> None:
    bench = Bench()
    kbd = bench.plug("/dev/input/event5", "Barcode Reader")
    states: list[bool] = []
    scanner = _scanner(bench)
    scanner.when_connection = states.append
    with scanner:
        scanner.wait_connected(5)
        kbd.write_events(real_events(BOOKING[:6], end=None))  # half a scan, then the cable goes
        bench.unplug("/dev/input/event5")
        wait_until(lambda: not scanner.connected, what="the scanner to be seen as gone")
        kbd2 = bench.plug("/dev/input/event9", "Barcode Reader")  # back on another node
        wait_until(lambda: kbd2.grabbed, what="the new node to be grabbed")
        kbd2.write_events(real_events("YY202406150012"))
        with pytest.raises(CheckDigitMismatch):
            scanner.read(timeout_s=5)  # the half scan from before was dropped, not glued on
    assert states[:3] == [True, False, True]
    assert all(h.closed for h in kbd.handles)


def test_a_device_grabbed_by_someone_else_is_retried_not_fatal() -> None:
    bench = Bench()
    kbd = bench.plug("/dev/input/event4", "Barcode")
    other = PipeHandle(kbd)
    other.grab()  # e.g. a stray `evtest --grab` holds it
    with _scanner(bench) as scanner:
        wait_until(lambda: bench.opened.count("/dev/input/event4") >= 2, what="a second try")
        assert not scanner.connected
        assert kbd.grabbed_by is other  # our failed try did not take the other grab away
        other.close()
        scanner.wait_connected(5)
        kbd.write_events(real_events(BOOKING))
        assert scanner.read(timeout_s=5).value == BOOKING


def test_a_configured_path_is_opened_directly(tmp_path: Path) -> None:
    bench = Bench()
    link = str(tmp_path / "usb-Newland-event-kbd")
    bench.plug(link, "anything")
    settings = ScannerSettings.model_validate({"backend": "evdev", "evdev": {"device_path": link}})

    def no_listing() -> list[str]:
        raise AssertionError("a configured path needs no scan of /dev/input")

    with WedgeScanner(settings, list_paths=no_listing, open_device=bench.open) as scanner:
        scanner.wait_connected(5)
        assert scanner.source == f"evdev:{link}"


def test_real_evdev_listing_is_empty_here_and_the_backend_waits() -> None:
    # no /dev/input in this container: the real default path must just keep looking
    assert evdev.list_devices() == [] or os.path.isdir("/dev/input")
    settings = ScannerSettings.model_validate(
        {"backend": "evdev", "reconnect_interval_ms": 100, "evdev": {"device_name": "x"}}
    )
    with WedgeScanner(settings) as scanner:
        with pytest.raises(ConnectionError):
            scanner.wait_connected(0.3)
        assert not scanner.connected
