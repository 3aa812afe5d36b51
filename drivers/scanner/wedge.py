"""Keyboard-wedge scanners ("USB-KBW" mode) read through evdev, grabbed away from the UI.

The scanner types each code as key presses on a US layout, usually followed by Enter. We find
the device by path, name, phys or vendor:product, grab it (its keystrokes then reach no other
program), translate key events to characters with our own shift handling, and cut a scan on
the end key or on silence. When the device goes away we look for it again every
``reconnect_interval_ms``. evdev is imported only when this backend starts.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, Protocol

from drivers.scanner.base import BaseScanner
from drivers.scanner.settings import EndKey, EvdevSettings, ScannerSettings

log = logging.getLogger(__name__)

# Linux input ABI (include/uapi/linux/input-event-codes.h): stable numbers, so the translator
# works without evdev installed. tests/drivers/scanner checks them against evdev.ecodes.
EV_KEY = 1
KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2
KEY_TAB = 15
KEY_ENTER = 28
KEY_KPENTER = 96
SHIFT_KEYS = frozenset({42, 54})  # KEY_LEFTSHIFT, KEY_RIGHTSHIFT
# Ctrl, Alt and AltGr change what a key means; a scan typed with them held is not plain text.
CHORD_KEYS = frozenset({29, 97, 56, 100})  # KEY_LEFTCTRL, KEY_RIGHTCTRL, KEY_LEFTALT, KEY_RIGHTALT
# Lock keys toggle host state only; a scanner may tap NumLock before keypad digits.
IGNORED_KEYS = frozenset({58, 69, 70})  # KEY_CAPSLOCK, KEY_NUMLOCK, KEY_SCROLLLOCK

# code -> (plain, shifted) on a US layout
US_KEYMAP: dict[int, tuple[str, str]] = {
    2: ("1", "!"),
    3: ("2", "@"),
    4: ("3", "#"),
    5: ("4", "$"),
    6: ("5", "%"),
    7: ("6", "^"),
    8: ("7", "&"),
    9: ("8", "*"),
    10: ("9", "("),
    11: ("0", ")"),
    12: ("-", "_"),
    13: ("=", "+"),
    26: ("[", "{"),
    27: ("]", "}"),
    39: (";", ":"),
    40: ("'", '"'),
    41: ("`", "~"),
    43: ("\\", "|"),
    51: (",", "<"),
    52: (".", ">"),
    53: ("/", "?"),
    57: (" ", " "),
    # keypad: some scanners type digits on it ("numeric keypad" emulation)
    55: ("*", "*"),
    71: ("7", "7"),
    72: ("8", "8"),
    73: ("9", "9"),
    74: ("-", "-"),
    75: ("4", "4"),
    76: ("5", "5"),
    77: ("6", "6"),
    78: ("+", "+"),
    79: ("1", "1"),
    80: ("2", "2"),
    81: ("3", "3"),
    82: ("0", "0"),
    83: (".", "."),
    98: ("/", "/"),
}
_LETTER_ROWS = (
    (range(16, 26), "qwertyuiop"),
    (range(30, 39), "asdfghjkl"),
    (range(44, 51), "zxcvbnm"),
)
for _codes, _letters in _LETTER_ROWS:
    for _code, _letter in zip(_codes, _letters, strict=True):
        US_KEYMAP[_code] = (_letter, _letter.upper())
del _codes, _letters, _code, _letter


# A key we cannot turn into text. It stays in the scan so the charset check refuses it.
UNTRANSLATABLE = "\ufffd"


class KeyEvent(Protocol):
    """What the translator needs of an ``evdev.InputEvent``."""

    type: int
    code: int
    value: int

    def timestamp(self) -> float: ...


class RawScan(NamedTuple):
    text: str  # at most max_length + 1 characters are kept
    length: int  # every character typed, kept or not


class KeyTranslator:
    """Key events in, raw scans out. Pure state machine: no device, no clock of its own."""

    def __init__(self, *, end_key: EndKey, max_length: int, silence_s: float) -> None:
        self.end_codes = {
            "enter": frozenset({KEY_ENTER, KEY_KPENTER}),
            "tab": frozenset({KEY_TAB}),
            "none": frozenset[int](),
        }[end_key]
        self.keep = max_length + 1  # one more than allowed, so "too long" is still visible
        self.silence_s = silence_s
        self.reset()

    def reset(self) -> None:
        self._chars: list[str] = []
        self._length = 0
        self._shift: set[int] = set()
        self._chord: set[int] = set()
        self._last_ts: float | None = None

    @property
    def pending(self) -> bool:
        return self._length > 0

    def flush(self) -> RawScan | None:
        """End the scan in progress (silence, or the device went away)."""
        if not self._length:
            return None
        scan = RawScan("".join(self._chars), self._length)
        self._chars = []
        self._length = 0
        return scan

    def feed(self, event: KeyEvent) -> list[RawScan]:
        if event.type != EV_KEY:
            return []  # EV_SYN, EV_MSC scan codes, LEDs
        code, value = event.code, event.value
        if code in SHIFT_KEYS or code in CHORD_KEYS:
            held = self._shift if code in SHIFT_KEYS else self._chord
            if value == KEY_UP:
                held.discard(code)
            else:
                held.add(code)
            return []
        # autorepeat only comes from a stuck key, never from a scanner typing a code
        if value != KEY_DOWN or code in IGNORED_KEYS:
            return []
        out: list[RawScan] = []
        now = event.timestamp()
        if self._last_ts is not None and now - self._last_ts > self.silence_s:
            # a long pause inside a "scan" means the end key was lost: close the old one
            done = self.flush()
            if done is not None:
                out.append(done)
        self._last_ts = now
        if code in self.end_codes:
            done = self.flush()
            if done is not None:
                out.append(done)
            return out
        self._append(self._char(code))
        return out

    def _char(self, code: int) -> str:
        if code == KEY_TAB:
            return "\t"
        if code in (KEY_ENTER, KEY_KPENTER):
            return "\n"
        pair = US_KEYMAP.get(code)
        if pair is None or self._chord:
            return UNTRANSLATABLE
        return pair[1] if self._shift else pair[0]

    def _append(self, char: str) -> None:
        self._length += 1
        if len(self._chars) < self.keep:
            self._chars.append(char)


class InputDevice(Protocol):
    """What this backend uses of ``evdev.InputDevice``."""

    path: str
    name: str
    phys: str
    info: Any  # has .vendor and .product

    def fileno(self) -> int: ...
    def read(self) -> Iterable[KeyEvent]: ...
    def grab(self) -> None: ...
    def ungrab(self) -> None: ...
    def close(self) -> None: ...


def device_matches(
    selectors: EvdevSettings, *, name: str, phys: str, vendor: int, product: int
) -> bool:
    """Every selector that is set must match; ``device_path`` is handled by the caller."""
    if selectors.device_name and selectors.device_name.casefold() not in name.casefold():
        return False
    if selectors.phys and not phys.startswith(selectors.phys):
        return False
    if selectors.vendor_id is not None and selectors.vendor_id != vendor:
        return False
    return not (selectors.product_id is not None and selectors.product_id != product)


def _evdev_list_paths() -> list[str]:
    import evdev  # noqa: PLC0415 - hardware library, optional on a laptop

    paths: list[str] = evdev.list_devices()
    return sorted(paths)


def _evdev_open(path: str) -> InputDevice:
    import evdev  # noqa: PLC0415

    device: Any = evdev.InputDevice(path)  # its ``path`` is typed str | bytes; ours is a str
    return device  # type: ignore[no-any-return]


class WedgeScanner(BaseScanner):
    def __init__(
        self,
        settings: ScannerSettings,
        *,
        list_paths: Callable[[], list[str]] = _evdev_list_paths,
        open_device: Callable[[str], InputDevice] = _evdev_open,
    ) -> None:
        super().__init__(settings)
        self._list_paths = list_paths
        self._open_device = open_device
        self._path = settings.evdev.device_path or "?"
        self._grabbed = False

    @property
    def source(self) -> str:
        return f"evdev:{self._path}"

    def find_device(self) -> InputDevice | None:
        """Open the first input device that matches every configured selector."""
        sel = self.settings.evdev
        paths = [sel.device_path] if sel.device_path else self._list_paths()
        for path in paths:
            try:
                device = self._open_device(path)
            except OSError:
                continue  # gone meanwhile, or not ours to read
            try:
                info = device.info
                ok = device_matches(
                    sel,
                    name=device.name or "",
                    phys=device.phys or "",
                    vendor=int(info.vendor),
                    product=int(info.product),
                )
            except OSError:
                ok = False
            if ok:
                return device
            device.close()
        return None

    def _run(self, stop: threading.Event) -> None:
        sel = self.settings.evdev
        translator = KeyTranslator(
            end_key=sel.end_key,
            max_length=self.settings.formats.max_length,
            silence_s=self.settings.silence_end_s,
        )
        announced_missing = False
        while not stop.is_set():
            device = self.find_device()
            if device is None:
                if not announced_missing:
                    log.warning("no input device matches the scanner settings; retrying")
                    announced_missing = True
                stop.wait(self.settings.reconnect_interval_s)
                continue
            announced_missing = False
            try:
                self._serve(device, translator, stop)
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    log.warning("scanner %s is grabbed by another program", device.path)
                else:
                    log.warning("scanner %s went away (%s)", device.path, exc.strerror)
            finally:
                self._release(device)
                translator.reset()  # a half scan from before the loss is dropped
                self._set_connected(False)
            stop.wait(self.settings.reconnect_interval_s)

    def _serve(self, device: InputDevice, translator: KeyTranslator, stop: threading.Event) -> None:
        if self.settings.evdev.grab:
            device.grab()
            self._grabbed = True
        self._path = device.path
        translator.reset()
        self._set_connected(True)
        silence_s = self.settings.silence_end_s
        poll_s = min(0.05, silence_s / 2)
        last_input = time.monotonic()
        while not stop.is_set():
            ready, _, _ = select.select([device], [], [], poll_s)
            if not ready:
                if translator.pending and time.monotonic() - last_input >= silence_s:
                    self._emit(translator.flush())
                continue
            try:
                events = list(device.read())
            except BlockingIOError:
                continue
            last_input = time.monotonic()
            for event in events:
                for raw in translator.feed(event):
                    self._emit(raw)

    def _emit(self, raw: RawScan | None) -> None:
        if raw is not None:
            self._deliver_text(raw.text, raw.length)

    def _release(self, device: InputDevice) -> None:
        if self._grabbed:
            self._grabbed = False
            # a device already gone took its grab with it
            with contextlib.suppress(OSError):
                device.ungrab()
        with contextlib.suppress(OSError):
            device.close()
