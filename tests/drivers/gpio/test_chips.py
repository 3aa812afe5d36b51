"""Chip selection by label. The only fake is the kernel's answer per chip (the thin edge): a
directory of device entries laid out like a Pi's /dev, and a label for each chip file."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

import pytest

from drivers.gpio.chips import (
    CHIPINFO,
    GPIO_GET_CHIPINFO_IOCTL,
    find_chip,
    ioctl_chipinfo,
    list_chips,
    parse_chipinfo,
)
from drivers.gpio.errors import GpioChipNotFound, GpioError
from drivers.gpio.factory import lgpio_factory
from drivers.gpio.settings import GpioSettings


def fake_dev(tmp_path: Path, chips: dict[str, str], links: dict[str, str] | None = None) -> Any:
    """Chip files named like /dev/gpiochipN; a reader answering each file's label."""
    labels: dict[str, str] = {}
    for name, label in chips.items():
        (tmp_path / name).touch()
        labels[os.path.realpath(tmp_path / name)] = label
    for link, target in (links or {}).items():
        (tmp_path / link).symlink_to(target)
    (tmp_path / "ttyAMA0").touch()  # not a chip: must be ignored
    asked: list[str] = []

    def read_info(path: str) -> tuple[str, str, int]:
        asked.append(path)
        return os.path.basename(path), labels[path], 54

    return read_info, asked


def test_pi5_after_kernel_6_6_45_header_is_gpiochip0_and_the_compat_link_counts_once(
    tmp_path: Path,
) -> None:
    # Pi 5 on a new kernel: RP1 is gpiochip0, with the gpiochip4 -> gpiochip0 compatibility link
    read_info, asked = fake_dev(
        tmp_path,
        {
            "gpiochip0": "pinctrl-rp1",
            "gpiochip10": "gpio-brcmstb@107d508500",
            "gpiochip11": "gpio-brcmstb@107d508520",
            "gpiochip12": "gpio-brcmstb@107d517c00",
            "gpiochip13": "gpio-brcmstb@107d517c20",
        },
        links={"gpiochip4": "gpiochip0"},
    )
    chips = list_chips(str(tmp_path), read_info)
    assert [c.number for c in chips] == [0, 10, 11, 12, 13]
    assert len(asked) == 5  # the link was resolved, not asked a second time
    chip = find_chip(("pinctrl-rp1", "pinctrl-bcm2711"), str(tmp_path), read_info)
    assert (chip.number, chip.label) == (0, "pinctrl-rp1")


def test_pi5_before_kernel_6_6_45_header_is_gpiochip4(tmp_path: Path) -> None:
    read_info, _ = fake_dev(
        tmp_path,
        {
            "gpiochip0": "gpio-brcmstb@107d508500",
            "gpiochip1": "gpio-brcmstb@107d508520",
            "gpiochip2": "gpio-brcmstb@107d517c00",
            "gpiochip3": "gpio-brcmstb@107d517c20",
            "gpiochip4": "pinctrl-rp1",
        },
    )
    chip = find_chip(("pinctrl-rp1", "pinctrl-bcm2711"), str(tmp_path), read_info)
    assert chip.number == 4


def test_pi4_uses_its_soc_label_and_the_preference_order_decides(tmp_path: Path) -> None:
    read_info, _ = fake_dev(
        tmp_path, {"gpiochip0": "pinctrl-bcm2711", "gpiochip1": "raspberrypi-exp-gpio"}
    )
    assert find_chip(("pinctrl-rp1", "pinctrl-bcm2711"), str(tmp_path), read_info).number == 0
    # a setting that prefers the expander gets the expander, whatever the chip numbers are
    preferred = find_chip(("raspberrypi-exp-gpio", "pinctrl-bcm2711"), str(tmp_path), read_info)
    assert preferred.number == 1


def test_no_matching_label_names_what_was_found(tmp_path: Path) -> None:
    read_info, _ = fake_dev(tmp_path, {"gpiochip0": "pinctrl-bcm2835"})
    with pytest.raises(GpioChipNotFound) as exc:
        find_chip(("pinctrl-rp1", "pinctrl-bcm2711"), str(tmp_path), read_info)
    assert "pinctrl-rp1 or pinctrl-bcm2711" in str(exc.value)
    assert "gpiochip0='pinctrl-bcm2835'" in str(exc.value)
    assert isinstance(exc.value, FileNotFoundError)
    with pytest.raises(GpioChipNotFound, match="no gpiochip devices"):
        find_chip(("pinctrl-rp1",), str(tmp_path / "empty-nonexistent"))


def test_the_ioctl_request_and_struct_match_linux_gpio_h() -> None:
    # _IOR(0xB4, 0x01, struct gpiochip_info) with a 68-byte struct
    assert CHIPINFO.size == 68
    assert GPIO_GET_CHIPINFO_IOCTL == 0x8044B401
    raw = struct.pack("=32s32sI", b"gpiochip0", b"pinctrl-rp1", 54)
    assert parse_chipinfo(raw) == ("gpiochip0", "pinctrl-rp1", 54)


def test_the_ioctl_on_a_device_that_is_no_gpiochip_is_a_typed_error() -> None:
    # /dev/null is a real character device that does not know the GPIO ioctl
    with pytest.raises(GpioError, match="not a GPIO character device"):
        ioctl_chipinfo("/dev/null")


def test_a_missing_chip_is_reported_before_lgpio_is_touched(tmp_path: Path) -> None:
    read_info, _ = fake_dev(tmp_path, {"gpiochip0": "pinctrl-bcm2835"})
    settings = GpioSettings(backend="lgpio")
    with pytest.raises(GpioChipNotFound):
        lgpio_factory(settings, dev_dir=str(tmp_path), read_info=read_info)


def test_lgpio_factory_opens_the_chip_found_by_label(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # LGPIOFactory itself is the thin edge here: there is no gpiochip in this container
    import gpiozero.pins.lgpio as gz_lgpio

    opened: list[int] = []

    class Recorder:
        def __init__(self, chip: int) -> None:
            opened.append(chip)

    monkeypatch.setattr(gz_lgpio, "LGPIOFactory", Recorder)
    read_info, _ = fake_dev(
        tmp_path,
        {"gpiochip0": "pinctrl-rp1", "gpiochip10": "gpio-brcmstb@107d508500"},
        links={"gpiochip4": "gpiochip0"},
    )
    factory = lgpio_factory(
        GpioSettings(backend="lgpio"), dev_dir=str(tmp_path), read_info=read_info
    )
    assert isinstance(factory, Recorder)
    assert opened == [0]


def test_a_chip_that_lgpio_cannot_open_is_a_typed_error_naming_it(tmp_path: Path) -> None:
    # the real LGPIOFactory: the label says gpiochip0, but there is no such kernel device here
    read_info, _ = fake_dev(tmp_path, {"gpiochip0": "pinctrl-rp1"})
    with pytest.raises(GpioError, match=r"gpiochip0 \(pinctrl-rp1\): .*can not open gpiochip"):
        lgpio_factory(GpioSettings(backend="lgpio"), dev_dir=str(tmp_path), read_info=read_info)
