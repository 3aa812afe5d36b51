"""Door contacts, indicator LEDs, a buzzer and the service button on the Pi's 40-pin header.

    board = GpioBoard(GpioSettings.model_validate(section))   # backend "lgpio" or "mock"
    board.door("cabinet_door").when_opened = post_to_ui(on_open)
    board.led("attention").blink()
    board.buzzer("buzzer").beep("attention")
    board.close()                                              # every output to its safe state

gpiozero 2 with the lgpio pin factory on Pi 4 and Pi 5; the gpiochip is found by its label, never
by number. ``backend = "mock"`` uses gpiozero's MockFactory; tests and the simulator drive its
pins with ``board.factory.pin(17).drive_low()``. Callbacks run on the board's event thread.
"""

from typing import TYPE_CHECKING

from drivers.gpio.chips import ChipInfo, find_chip, list_chips
from drivers.gpio.errors import (
    GpioBackendMissing,
    GpioChipNotFound,
    GpioClosed,
    GpioError,
    GpioNotConfigured,
    GpioPermissionDenied,
    GpioSetupError,
)
from drivers.gpio.settings import (
    BeepPattern,
    ButtonSettings,
    BuzzerSettings,
    DoorSettings,
    GpioSettings,
    LedSettings,
)
from hallkiosk.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use, not with the settings (hallkiosk/lazy.py)
    from drivers.gpio.board import GpioBoard, Listener
    from drivers.gpio.devices import Buzzer, DoorSensor, GpioEvent, Led, ServiceButton
    from drivers.gpio.factory import make_factory

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "drivers.gpio.board": (
            "GpioBoard",
            "Listener",
        ),
        "drivers.gpio.devices": (
            "Buzzer",
            "DoorSensor",
            "GpioEvent",
            "Led",
            "ServiceButton",
        ),
        "drivers.gpio.factory": ("make_factory",),
    },
)

__all__ = [
    "BeepPattern",
    "ButtonSettings",
    "Buzzer",
    "BuzzerSettings",
    "ChipInfo",
    "DoorSensor",
    "DoorSettings",
    "GpioBackendMissing",
    "GpioBoard",
    "GpioChipNotFound",
    "GpioClosed",
    "GpioError",
    "GpioEvent",
    "GpioNotConfigured",
    "GpioPermissionDenied",
    "GpioSettings",
    "GpioSetupError",
    "Led",
    "LedSettings",
    "Listener",
    "ServiceButton",
    "find_chip",
    "list_chips",
    "make_factory",
]
