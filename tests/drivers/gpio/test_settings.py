"""GPIO settings refuse wiring mistakes at start-up: clashing pins, bad ranges, stray keys."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from pydantic import ValidationError

from drivers.gpio.settings import (
    ButtonSettings,
    DoorSettings,
    GpioSettings,
    LedSettings,
)

SITE = """
backend = "lgpio"
chip_labels = ["pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835"]

[devices.cabinet_door]
role = "door"
pin = 17
bounce_s = 0.08

[devices.service]
role = "button"
pin = 27
hold_s = 5

[devices.status]
role = "led"
pin = 22
safe_state = "off"

[devices.attention]
role = "led"
pin = 23
active_high = false
safe_state = "off"

[devices.buzzer]
role = "buzzer"
pin = 24
safe_state = "off"
patterns.ding = { on_ms = 80 }
patterns.siren = { on_ms = 300, off_ms = 100, count = 0 }
"""


def validate(devices: dict[str, Any], **top: Any) -> GpioSettings:
    return GpioSettings.model_validate({"devices": devices, **top})


def errors_of(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"]), e["type"]) for e in exc.value.errors()]


def test_a_full_toml_section_validates_into_typed_devices() -> None:
    settings = GpioSettings.model_validate(tomllib.loads(SITE))
    assert settings.backend == "lgpio"
    assert settings.chip_labels == ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")
    door = settings.devices["cabinet_door"]
    assert isinstance(door, DoorSettings)
    assert (door.pin, door.active_high, door.pull, door.bounce_s) == (17, True, "up", 0.08)
    button = settings.devices["service"]
    assert isinstance(button, ButtonSettings)
    assert (button.active_high, button.hold_s) == (False, 5.0)
    attention = settings.devices["attention"]
    assert isinstance(attention, LedSettings) and attention.active_high is False
    buzzer = settings.devices["buzzer"]
    assert buzzer.role == "buzzer"
    assert sorted(buzzer.patterns) == ["ding", "siren"]
    assert buzzer.patterns["siren"].count == 0


def test_defaults_are_the_embedded_simulation_with_both_pi_labels() -> None:
    settings = GpioSettings()
    assert settings.backend == "mock"
    assert settings.chip_labels == ("pinctrl-rp1", "pinctrl-bcm2711")
    assert settings.devices == {}


def test_two_devices_on_one_pin_are_refused() -> None:
    with pytest.raises(ValidationError, match="GPIO17 is used by both door_a and door_b"):
        validate(
            {
                "door_a": {"role": "door", "pin": 17},
                "door_b": {"role": "door", "pin": 17},
            }
        )
    with pytest.raises(ValidationError, match="GPIO22 is used by both status and buzzer"):
        validate(
            {
                "status": {"role": "led", "pin": 22, "safe_state": "off"},
                "buzzer": {"role": "buzzer", "pin": 22, "safe_state": "off"},
            }
        )


@pytest.mark.parametrize("pin", [0, 1, 28, 40, -3])
def test_pins_outside_the_usable_header_range_are_refused(pin: int) -> None:
    with pytest.raises(ValidationError) as exc:
        validate({"door": {"role": "door", "pin": pin}})
    assert errors_of(exc)[0][0] == "devices.door.door.pin"


def test_outputs_must_declare_a_safe_state() -> None:
    with pytest.raises(ValidationError) as exc:
        validate({"status": {"role": "led", "pin": 22}})
    assert errors_of(exc) == [("devices.status.led.safe_state", "missing")]
    with pytest.raises(ValidationError):
        validate({"status": {"role": "led", "pin": 22, "safe_state": "dim"}})


def test_keys_from_another_role_and_unknown_keys_are_refused() -> None:
    with pytest.raises(ValidationError) as exc:
        validate({"door": {"role": "door", "pin": 17, "safe_state": "off"}})
    assert errors_of(exc) == [("devices.door.door.safe_state", "extra_forbidden")]
    with pytest.raises(ValidationError) as exc:
        validate({"status": {"role": "led", "pin": 22, "safe_state": "off", "bounce_s": 0.1}})
    assert errors_of(exc) == [("devices.status.led.bounce_s", "extra_forbidden")]
    with pytest.raises(ValidationError):
        GpioSettings.model_validate({"backend": "mock", "chip": 4})
    with pytest.raises(ValidationError):
        validate({"relay": {"role": "relay", "pin": 5}})


@pytest.mark.parametrize(
    ("device", "key"),
    [
        ({"role": "door", "pin": 17, "bounce_s": 0.0}, "bounce_s"),
        ({"role": "door", "pin": 17, "bounce_s": 5.0}, "bounce_s"),
        ({"role": "button", "pin": 27, "hold_s": 0.1}, "hold_s"),
        ({"role": "door", "pin": 17, "pull": "sideways"}, "pull"),
        ({"role": "door", "pin": "17"}, "pin"),
        ({"role": "door", "pin": 17, "active_high": "yes"}, "active_high"),
    ],
)
def test_out_of_range_or_mistyped_values_are_refused(device: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate({"dev": device})
    assert errors_of(exc)[0][0].endswith(f".{key}")


def test_beep_patterns_are_range_checked() -> None:
    base = {"role": "buzzer", "pin": 24, "safe_state": "off"}
    with pytest.raises(ValidationError):
        validate({"bz": {**base, "patterns": {"x": {"on_ms": 5}}}})
    with pytest.raises(ValidationError):
        validate({"bz": {**base, "patterns": {"x": {"on_ms": 100, "count": 101}}}})
    with pytest.raises(ValidationError):
        validate({"bz": {**base, "patterns": {"x": {"on_ms": 100, "loud": True}}}})


def test_device_names_and_chip_labels_are_checked() -> None:
    with pytest.raises(ValidationError):
        validate({"Front Door": {"role": "door", "pin": 17}})
    with pytest.raises(ValidationError):
        GpioSettings.model_validate({"chip_labels": []})
    with pytest.raises(ValidationError):
        GpioSettings.model_validate({"chip_labels": "pinctrl-rp1"})
