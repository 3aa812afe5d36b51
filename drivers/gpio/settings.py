"""GPIO settings: the backend, how to find the header's gpiochip, and every wired device.

    [kiosk.gpio]
    backend = "lgpio"
    chip_labels = ["pinctrl-rp1", "pinctrl-bcm2711"]

    [kiosk.gpio.devices.cabinet_door]
    role = "door"
    pin = 17

    [kiosk.gpio.devices.status]
    role = "led"
    pin = 22
    safe_state = "off"

Devices are keyed by name (TOML forbids a name twice). Keys that do not fit the device's role are
unknown keys, and two devices on one pin are refused, so a wiring typo fails at start-up.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from hallkiosk.config import StrictModel

# BCM numbers on the 40-pin header. 0 and 1 are the HAT ID EEPROM bus; 28+ are not on the header.
Pin = Annotated[int, Field(ge=2, le=27)]
DeviceName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
Pull = Literal["up", "down", "none"]
SafeState = Literal["off", "on"]

# Pi 5 first: RP1 drives its header; Pi 4's header sits on the SoC's own controller.
DEFAULT_CHIP_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711")


class DoorSettings(StrictModel):
    """A door contact. ``active_high``: the pin reads high while the door is OPEN.

    The usual wiring is a reed switch to ground, closed by the magnet while the door is shut, with
    the pull-up: shut = low, open = high, and a cut wire also reads as open.
    """

    role: Literal["door"]
    pin: Pin
    active_high: bool = True
    pull: Pull = "up"
    # the level must hold this long before it counts; reed switches chatter for a few ms
    bounce_s: Annotated[float, Field(ge=0.005, le=2.0)] = 0.05


class ButtonSettings(StrictModel):
    """The staff service button. ``active_high``: the pin reads high while PRESSED."""

    role: Literal["button"]
    pin: Pin
    active_high: bool = False  # button to ground with the pull-up
    pull: Pull = "up"
    bounce_s: Annotated[float, Field(ge=0.005, le=1.0)] = 0.03
    hold_s: Annotated[float, Field(ge=0.5, le=30.0)] = 3.0


class LedSettings(StrictModel):
    """An indicator LED (by convention ``status`` and ``attention``). ``safe_state`` is required:
    the state at start-up, at close and at exit."""

    role: Literal["led"]
    pin: Pin
    active_high: bool = True
    safe_state: SafeState


class BeepPattern(StrictModel):
    on_ms: Annotated[int, Field(ge=10, le=5_000)]
    off_ms: Annotated[int, Field(ge=0, le=5_000)] = 0
    # 0 repeats until stopped (an alarm); otherwise the number of beeps
    count: Annotated[int, Field(ge=0, le=100)] = 1


def _default_patterns() -> dict[str, BeepPattern]:
    return {
        "tap": BeepPattern(on_ms=60),
        "attention": BeepPattern(on_ms=150, off_ms=150, count=3),
        "alarm": BeepPattern(on_ms=400, off_ms=400, count=0),
    }


class BuzzerSettings(StrictModel):
    """An active buzzer (on/off, no tone). ``safe_state`` is required; "off" in any sane wiring."""

    role: Literal["buzzer"]
    pin: Pin
    active_high: bool = True
    safe_state: SafeState
    patterns: dict[DeviceName, BeepPattern] = Field(default_factory=_default_patterns)


DeviceSettings = Annotated[
    DoorSettings | ButtonSettings | LedSettings | BuzzerSettings, Field(discriminator="role")
]


class GpioSettings(StrictModel):
    """``[kiosk.gpio]`` (or ``[lockerd.gpio]``): one header, one owner process."""

    backend: Literal["lgpio", "mock"] = "mock"
    # Labels of acceptable gpiochips, most preferred first. Never a chip number: kernel 6.6.45
    # moved the Pi 5 header from gpiochip4 to gpiochip0.
    chip_labels: Annotated[
        tuple[Annotated[str, Field(min_length=1, max_length=31)], ...],
        Strict(False),  # TOML gives a list
        Field(min_length=1, max_length=8),
    ] = DEFAULT_CHIP_LABELS
    devices: dict[DeviceName, DeviceSettings] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_device_per_pin(self) -> GpioSettings:
        seen: dict[int, str] = {}
        clashes = []
        for name, device in self.devices.items():
            if device.pin in seen:
                clashes.append(f"GPIO{device.pin} is used by both {seen[device.pin]} and {name}")
            seen.setdefault(device.pin, name)
        if clashes:
            raise ValueError("; ".join(clashes))
        return self
