"""Build the gpiozero pin factory the settings ask for. Factories are handed to each device
explicitly (``pin_factory=``); the global ``Device.pin_factory`` is never touched."""

from __future__ import annotations

from typing import Any

from drivers.gpio.chips import ChipReader, find_chip, ioctl_chipinfo
from drivers.gpio.errors import GpioBackendMissing, GpioError
from drivers.gpio.settings import GpioSettings

# The mock pretends to be a Pi 5 (revision code c04170): same header pins and fixed pull-ups
# on GPIO2/3 as the Pi 4, so wiring that the mock accepts is wiring a Pi accepts.
MOCK_REVISION = "c04170"


def mock_factory() -> Any:
    from gpiozero.pins.mock import MockFactory  # noqa: PLC0415 - gpiozero loads its pins lazily

    return MockFactory(revision=MOCK_REVISION)


def lgpio_factory(
    settings: GpioSettings, *, dev_dir: str = "/dev", read_info: ChipReader = ioctl_chipinfo
) -> Any:
    """``LGPIOFactory`` on the chip found by label. Chip lookup runs first: a wrong board or a
    missing group membership is reported before lgpio is even imported."""
    chip = find_chip(settings.chip_labels, dev_dir, read_info)
    try:
        from gpiozero.pins.lgpio import LGPIOFactory  # noqa: PLC0415 - lgpio is Pi-only
    except ImportError as exc:
        raise GpioBackendMissing(f"lgpio is not installed ({exc})") from None
    try:
        return LGPIOFactory(chip=chip.number)
    except Exception as exc:  # lgpio.error is not an OSError; report whatever it is
        raise GpioError(f"cannot open {chip.path} ({chip.label}): {exc}") from exc


def make_factory(settings: GpioSettings) -> Any:
    if settings.backend == "mock":
        return mock_factory()
    return lgpio_factory(settings)
