"""Find the gpiochip that carries the 40-pin header, by its label.

Chip numbers are not stable: kernel 6.6.45 moved the Pi 5 header (label ``pinctrl-rp1``) from
gpiochip4 to gpiochip0, and Raspberry Pi OS keeps a ``gpiochip4 -> gpiochip0`` symlink for old
programs. So every ``/dev/gpiochip*`` is resolved to its real device, asked for its label with the
kernel's GPIO_GET_CHIPINFO ioctl (stdlib only: works without lgpio, so hwctl can list chips on
any Linux), and the first configured label that some chip carries wins.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from drivers.gpio.errors import GpioChipNotFound, GpioError, GpioPermissionDenied

# <linux/gpio.h>: struct gpiochip_info { char name[32]; char label[32]; __u32 lines; }
CHIPINFO = struct.Struct("=32s32sI")
# _IOR(0xB4, 0x01, struct gpiochip_info)
GPIO_GET_CHIPINFO_IOCTL = (2 << 30) | (CHIPINFO.size << 16) | (0xB4 << 8) | 0x01
_CHIP_NAME = re.compile(r"^gpiochip(\d+)$")


@dataclass(frozen=True)
class ChipInfo:
    path: str  # the real device node (symlinks resolved)
    number: int  # N in /dev/gpiochipN: what LGPIOFactory(chip=N) opens
    name: str
    label: str
    lines: int


ChipReader = Callable[[str], tuple[str, str, int]]  # path -> (name, label, lines)


def parse_chipinfo(buf: bytes) -> tuple[str, str, int]:
    name, label, lines = CHIPINFO.unpack(buf)
    return _cstr(name), _cstr(label), int(lines)


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def ioctl_chipinfo(path: str) -> tuple[str, str, int]:
    """The kernel's own answer for one chip device. Read-only open is enough for this ioctl."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except PermissionError:
        raise GpioPermissionDenied(
            f"{path}: permission denied (is the service user in the 'gpio' group?)"
        ) from None
    try:
        buf = bytearray(CHIPINFO.size)
        fcntl.ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, buf)
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EINVAL):
            raise GpioError(f"{path}: not a GPIO character device") from None
        raise GpioError(f"{path}: chip info failed: {exc.strerror}") from None
    finally:
        os.close(fd)
    return parse_chipinfo(bytes(buf))


def list_chips(dev_dir: str = "/dev", read_info: ChipReader = ioctl_chipinfo) -> list[ChipInfo]:
    """Every distinct gpiochip under ``dev_dir``, by chip number. Symlinks count once."""
    chips: dict[str, ChipInfo] = {}
    for entry in sorted(Path(dev_dir).glob("gpiochip*")):
        real = os.path.realpath(entry)
        match = _CHIP_NAME.match(os.path.basename(real))
        if match is None or real in chips:
            continue
        name, label, lines = read_info(real)
        chips[real] = ChipInfo(real, int(match.group(1)), name, label, lines)
    return sorted(chips.values(), key=lambda c: c.number)


def find_chip(
    labels: Sequence[str], dev_dir: str = "/dev", read_info: ChipReader = ioctl_chipinfo
) -> ChipInfo:
    """The chip carrying the earliest label in ``labels`` (the settings' preference order)."""
    chips = list_chips(dev_dir, read_info)
    for label in labels:
        for chip in chips:
            if chip.label == label:
                return chip
    found = ", ".join(f"gpiochip{c.number}={c.label!r}" for c in chips) or "no gpiochip devices"
    raise GpioChipNotFound(f"no GPIO chip labelled {' or '.join(labels)} under {dev_dir} ({found})")
