"""``GpioBoard``: owns every wired device of one process, and their safe states.

    with GpioBoard(settings) as board:          # outputs claimed straight into their safe states
        board.door("cabinet_door").when_opened = on_open      # runs on the board's event thread
        board.led("attention").blink()
        board.buzzer("buzzer").beep("attention")
    # here (and at interpreter exit, and when the block raises) every output is back in its
    # declared safe state

Callbacks and listeners run on the board's event thread: post them to the UI thread.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from gpiozero.exc import GPIOZeroError

from drivers.gpio.debounce import EventPump
from drivers.gpio.devices import Buzzer, DoorSensor, GpioEvent, Led, ServiceButton
from drivers.gpio.errors import GpioClosed, GpioNotConfigured, GpioSetupError
from drivers.gpio.factory import make_factory
from drivers.gpio.settings import (
    ButtonSettings,
    BuzzerSettings,
    DoorSettings,
    GpioSettings,
    LedSettings,
)

log = logging.getLogger(__name__)

Listener = Callable[[GpioEvent], None]
D = TypeVar("D")


class GpioBoard:
    def __init__(
        self,
        settings: GpioSettings,
        factory: Any = None,
        *,
        close_at_exit: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build every device on ``factory`` (default: the one the settings name; the board then
        owns and closes it). With ``close_at_exit`` the safe states are also applied by atexit,
        which runs before gpiozero's own shutdown hook (registered earlier, at import)."""
        self.settings = settings
        self._owns_factory = factory is None
        self.factory = make_factory(settings) if factory is None else factory
        self._pump = EventPump(monotonic)
        self._listeners: tuple[Listener, ...] = ()
        self._lock = threading.Lock()
        self._closed = False
        self.doors: dict[str, DoorSensor] = {}
        self.buttons: dict[str, ServiceButton] = {}
        self.leds: dict[str, Led] = {}
        self.buzzers: dict[str, Buzzer] = {}
        try:
            self._build()
        except BaseException:
            self._release()
            raise
        self._pump.start()
        self._close_at_exit = close_at_exit
        if close_at_exit:
            atexit.register(self.close)

    def _build(self) -> None:
        items = self.settings.devices.items()
        # outputs first: the sooner a buzzer line is claimed in its safe state, the better
        for name, dev in items:
            try:
                if isinstance(dev, LedSettings):
                    self.leds[name] = Led(name, dev, self.factory)
                elif isinstance(dev, BuzzerSettings):
                    self.buzzers[name] = Buzzer(name, dev, self.factory)
            except GPIOZeroError as exc:
                raise GpioSetupError(f"{name} on GPIO{dev.pin}: {exc}") from exc
        for name, dev in items:
            try:
                if isinstance(dev, DoorSettings):
                    self.doors[name] = DoorSensor(name, dev, self.factory, self._pump, self._emit)
                elif isinstance(dev, ButtonSettings):
                    self.buttons[name] = ServiceButton(
                        name, dev, self.factory, self._pump, self._emit
                    )
            except GPIOZeroError as exc:
                raise GpioSetupError(f"{name} on GPIO{dev.pin}: {exc}") from exc

    # -- handles ---------------------------------------------------------------------------

    def door(self, name: str) -> DoorSensor:
        return self._get(self.doors, name, "door")

    def button(self, name: str) -> ServiceButton:
        return self._get(self.buttons, name, "button")

    def led(self, name: str) -> Led:
        return self._get(self.leds, name, "led")

    def buzzer(self, name: str) -> Buzzer:
        return self._get(self.buzzers, name, "buzzer")

    def _get(self, table: Mapping[str, D], name: str, role: str) -> D:
        if self._closed:
            raise GpioClosed(f"GPIO board is closed (asked for {role} {name!r})")
        try:
            return table[name]
        except KeyError:
            known = ", ".join(sorted(table)) or "none"
            raise GpioNotConfigured(f"no {role} named {name!r} (configured: {known})") from None

    # -- events ----------------------------------------------------------------------------

    def add_listener(self, listener: Listener) -> None:
        """Every input event of the board, on the board's event thread."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def _emit(self, event: GpioEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("GPIO listener failed on %s", event)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Current state of every device (for telemetry and ``hwctl gpio watch``)."""
        out: dict[str, dict[str, Any]] = {}
        for name, door in self.doors.items():
            state = "open" if door.is_open else "closed"
            out[name] = {"role": "door", "pin": door.pin, "state": state}
        for name, button in self.buttons.items():
            out[name] = {
                "role": "button",
                "pin": button.pin,
                "state": "pressed" if button.is_pressed else "released",
            }
        for name, output in (*self.leds.items(), *self.buzzers.items()):
            role = "led" if isinstance(output, Led) else "buzzer"
            state = "on" if output.is_active else "off"
            out[name] = {"role": role, "pin": output.pin, "state": state}
        return dict(sorted(out.items()))

    # -- shutdown --------------------------------------------------------------------------

    def close(self) -> None:
        """Outputs to their safe states, then release everything. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._release()
        if self._close_at_exit:
            atexit.unregister(self.close)

    def _release(self) -> None:
        outputs: list[Led | Buzzer] = [*self.leds.values(), *self.buzzers.values()]
        # safe states first and each on its own: one failing line must not leave another live
        for output in outputs:
            try:
                output.to_safe_state()
            except Exception:
                log.exception("cannot put %s in its safe state", output.name)
        self._pump.stop()
        for device in [*outputs, *self.doors.values(), *self.buttons.values()]:
            try:
                device.close()
            except Exception:
                log.exception("cannot release %s", device.name)
        if self._owns_factory:
            try:
                self.factory.close()
            except Exception:
                log.exception("cannot close the pin factory")

    def __enter__(self) -> GpioBoard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
