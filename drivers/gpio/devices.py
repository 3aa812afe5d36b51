"""Typed handles for the wired devices, built by ``GpioBoard`` on its pin factory.

Callbacks (``when_opened``, ``when_pressed``, ...) run on the board's event thread, never on the
caller's: the kiosk must post them to its UI thread (``Clock.schedule_once``) before touching a
widget, and lockerd must hand them to its own loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from gpiozero import LED, DigitalInputDevice
from gpiozero import Buzzer as _GzBuzzer

from drivers.gpio.debounce import Change, EventPump, InputFilter
from drivers.gpio.errors import GpioNotConfigured
from drivers.gpio.settings import (
    BeepPattern,
    ButtonSettings,
    BuzzerSettings,
    DoorSettings,
    LedSettings,
)

EventKind = Literal["opened", "closed", "pressed", "released", "held"]
Callback = Callable[[], None]


@dataclass(frozen=True)
class GpioEvent:
    device: str
    role: Literal["door", "button"]
    pin: int
    kind: EventKind
    at_s: float  # monotonic time the level was confirmed


Emit = Callable[[GpioEvent], None]


class _Input:
    _KINDS: ClassVar[Mapping[Change, EventKind]]
    role: ClassVar[Literal["door", "button"]]

    def __init__(
        self,
        name: str,
        settings: DoorSettings | ButtonSettings,
        factory: Any,
        pump: EventPump,
        emit: Emit,
        *,
        hold_s: float | None = None,
    ) -> None:
        self.name = name
        self.pin = settings.pin
        self._emit = emit
        pull_up = {"up": True, "down": False, "none": None}[settings.pull]
        # gpiozero ties "active" to the pull (pull-up means active-low) unless there is no pull;
        # our active_high is about the wiring, so translate through the electrical level
        gz_active_high = settings.active_high if pull_up is None else not pull_up
        self._device = DigitalInputDevice(
            settings.pin,
            pull_up=pull_up,
            active_state=settings.active_high if pull_up is None else None,
            bounce_time=None,  # debounced by InputFilter, identically on every factory
            pin_factory=factory,
        )

        def ours(gz_active: bool) -> bool:
            return (gz_active == gz_active_high) == settings.active_high

        self._filter = InputFilter(
            active=ours(bool(self._device.value)), bounce_s=settings.bounce_s, hold_s=hold_s
        )
        sink = pump.add(self._filter, self._dispatch)
        self._device.when_activated = lambda: sink(ours(True))
        self._device.when_deactivated = lambda: sink(ours(False))

    @property
    def active(self) -> bool:
        """The debounced state: True while the door is open / the button is pressed."""
        return self._filter.stable

    def _dispatch(self, change: Change, at_s: float) -> None:
        kind = self._KINDS[change]
        callback: Callback | None = getattr(self, f"when_{kind}")
        try:
            if callback is not None:
                callback()
        finally:
            # the board's listeners (door watch, telemetry) get the event even if it raised
            self._emit(GpioEvent(self.name, self.role, self.pin, kind, at_s))

    def close(self) -> None:
        self._device.when_activated = None
        self._device.when_deactivated = None
        self._device.close()


class DoorSensor(_Input):
    _KINDS: ClassVar[Mapping[Change, EventKind]] = {
        Change.ACTIVATED: "opened",
        Change.DEACTIVATED: "closed",
    }
    role: ClassVar[Literal["door", "button"]] = "door"

    def __init__(
        self, name: str, settings: DoorSettings, factory: Any, pump: EventPump, emit: Emit
    ) -> None:
        self.when_opened: Callback | None = None
        self.when_closed: Callback | None = None
        super().__init__(name, settings, factory, pump, emit)

    @property
    def is_open(self) -> bool:
        return self.active


class ServiceButton(_Input):
    _KINDS: ClassVar[Mapping[Change, EventKind]] = {
        Change.ACTIVATED: "pressed",
        Change.DEACTIVATED: "released",
        Change.HELD: "held",
    }
    role: ClassVar[Literal["door", "button"]] = "button"

    def __init__(
        self, name: str, settings: ButtonSettings, factory: Any, pump: EventPump, emit: Emit
    ) -> None:
        self.when_pressed: Callback | None = None
        self.when_released: Callback | None = None
        self.when_held: Callback | None = None  # once per press, after hold_s
        super().__init__(name, settings, factory, pump, emit, hold_s=settings.hold_s)

    @property
    def is_pressed(self) -> bool:
        return self.active


class _Output:
    def __init__(self, name: str, settings: LedSettings | BuzzerSettings, device: Any) -> None:
        self.name = name
        self.pin = settings.pin
        self.safe_state = settings.safe_state
        self._device = device

    @property
    def is_active(self) -> bool:
        return bool(self._device.value)

    def to_safe_state(self) -> None:
        # on()/off() also stop a running blink thread first
        if self.safe_state == "on":
            self._device.on()
        else:
            self._device.off()

    def close(self) -> None:
        self.to_safe_state()
        self._device.close()


class Led(_Output):
    def __init__(self, name: str, settings: LedSettings, factory: Any) -> None:
        device = LED(
            settings.pin,
            active_high=settings.active_high,
            initial_value=settings.safe_state == "on",  # claimed straight into the safe state
            pin_factory=factory,
        )
        super().__init__(name, settings, device)

    def on(self) -> None:
        self._device.on()

    def off(self) -> None:
        self._device.off()

    def blink(self, on_s: float = 0.5, off_s: float = 0.5, count: int | None = None) -> None:
        """Blink in the background; ``count=None`` blinks until on()/off()/close()."""
        self._device.blink(on_time=on_s, off_time=off_s, n=count, background=True)

    @property
    def is_lit(self) -> bool:
        return self.is_active


class Buzzer(_Output):
    def __init__(self, name: str, settings: BuzzerSettings, factory: Any) -> None:
        device = _GzBuzzer(
            settings.pin,
            active_high=settings.active_high,
            initial_value=settings.safe_state == "on",
            pin_factory=factory,
        )
        super().__init__(name, settings, device)
        self.patterns = dict(settings.patterns)

    def beep(self, pattern: str | BeepPattern = "tap") -> None:
        """Play a named pattern from the settings (or an ad-hoc one) in the background."""
        if isinstance(pattern, str):
            if pattern not in self.patterns:
                known = ", ".join(sorted(self.patterns))
                raise GpioNotConfigured(f"{self.name}: no beep pattern {pattern!r} ({known})")
            pattern = self.patterns[pattern]
        self._device.blink(
            on_time=pattern.on_ms / 1000,
            off_time=pattern.off_ms / 1000,
            n=pattern.count or None,
            background=True,
        )

    def on(self) -> None:
        """Sound until stop(), close() or the next beep."""
        self._device.on()

    def stop(self) -> None:
        self._device.off()

    @property
    def is_sounding(self) -> bool:
        return self.is_active
