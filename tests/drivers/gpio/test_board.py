"""GpioBoard on gpiozero's MockFactory: debounced inputs, outputs and their safe states."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from drivers.gpio import (
    GpioBoard,
    GpioClosed,
    GpioEvent,
    GpioNotConfigured,
    GpioSettings,
    GpioSetupError,
)
from drivers.gpio.factory import mock_factory
from tests.fixtures import wait_until
from tests.fixtures.processes import REPO_ROOT

DOOR, BUTTON, STATUS, ATTENTION, BUZZER = 17, 27, 22, 23, 24

DEVICES: dict[str, Any] = {
    "cabinet_door": {"role": "door", "pin": DOOR, "bounce_s": 0.05},
    "service": {"role": "button", "pin": BUTTON, "bounce_s": 0.02, "hold_s": 0.5},
    "status": {"role": "led", "pin": STATUS, "safe_state": "off"},
    # wired to 3V3 through the LED: lit when the pin is LOW, so "off" means a HIGH pin
    "attention": {"role": "led", "pin": ATTENTION, "active_high": False, "safe_state": "off"},
    "buzzer": {
        "role": "buzzer",
        "pin": BUZZER,
        "safe_state": "off",
        "patterns": {
            "two": {"on_ms": 20, "off_ms": 20, "count": 2},
            "alarm": {"on_ms": 20, "off_ms": 20, "count": 0},
        },
    },
}


class Recorder:
    def __init__(self) -> None:
        self.events: list[GpioEvent] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, event: GpioEvent) -> None:
        with self._lock:
            self.events.append(event)
            self.threads.add(threading.current_thread().name)

    def kinds(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(e.device, e.kind) for e in self.events]


@pytest.fixture
def factory() -> Iterator[Any]:
    f = mock_factory()
    yield f
    f.close()


@pytest.fixture
def board(factory: Any) -> Iterator[GpioBoard]:
    b = GpioBoard(GpioSettings.model_validate({"devices": DEVICES}), factory, close_at_exit=False)
    yield b
    b.close()


def level(factory: Any, pin: int) -> bool:
    return bool(factory.pin(pin).state)


def test_outputs_start_in_their_safe_states_on_the_electrical_level(
    board: GpioBoard, factory: Any
) -> None:
    assert factory.pin(STATUS).function == "output"
    assert level(factory, STATUS) is False
    assert level(factory, ATTENTION) is True  # active-low LED, off = high
    assert level(factory, BUZZER) is False
    assert board.snapshot()["attention"] == {"role": "led", "pin": ATTENTION, "state": "off"}


def test_leds_follow_commands_through_active_high(board: GpioBoard, factory: Any) -> None:
    board.led("status").on()
    board.led("attention").on()
    assert (level(factory, STATUS), level(factory, ATTENTION)) == (True, False)
    assert board.led("attention").is_lit
    board.led("attention").off()
    assert level(factory, ATTENTION) is True


def test_a_door_that_chatters_gives_one_debounced_event(board: GpioBoard, factory: Any) -> None:
    rec = Recorder()
    board.add_listener(rec)
    door = board.door("cabinet_door")
    assert door.is_open  # pull-up, no magnet: reads open
    pin = factory.pin(DOOR)
    for _ in range(5):  # the reed switch chatters as the door swings shut
        pin.drive_low()
        pin.drive_high()
    pin.drive_low()
    wait_until(rec.kinds, what=lambda: f"door events, got {rec.kinds()}")
    assert not door.is_open
    pin.drive_high()
    wait_until(lambda: len(rec.kinds()) >= 2, what=lambda: f"second event, got {rec.kinds()}")
    # one thread delivers events in order: nothing can have slipped in between
    assert rec.kinds() == [("cabinet_door", "closed"), ("cabinet_door", "opened")]
    assert rec.events[0].pin == DOOR and rec.events[0].role == "door"
    assert rec.threads == {"gpio-events"}  # never the caller's thread: post to the UI thread


def test_a_glitch_shorter_than_the_bounce_time_raises_no_event(factory: Any) -> None:
    settings = GpioSettings.model_validate(
        {"devices": {"door": {"role": "door", "pin": DOOR, "bounce_s": 0.3}}}
    )
    with GpioBoard(settings, factory, close_at_exit=False) as board:
        rec = Recorder()
        board.add_listener(rec)
        pin = factory.pin(DOOR)
        pin.drive_low()  # a knock on the cabinet: microseconds low
        pin.drive_high()
        pin.drive_low()  # then the door really shuts
        wait_until(rec.kinds, what="the real close")
        assert rec.kinds() == [("door", "closed")]


def test_door_callbacks_fire_with_the_debounced_state(board: GpioBoard, factory: Any) -> None:
    door = board.door("cabinet_door")
    seen: list[tuple[str, bool]] = []
    door.when_closed = lambda: seen.append(("closed", door.is_open))
    door.when_opened = lambda: seen.append(("opened", door.is_open))
    factory.pin(DOOR).drive_low()
    wait_until(lambda: seen)
    factory.pin(DOOR).drive_high()
    wait_until(lambda: len(seen) == 2)
    assert seen == [("closed", False), ("opened", True)]


def test_service_button_press_hold_release(board: GpioBoard, factory: Any) -> None:
    rec = Recorder()
    board.add_listener(rec)
    button = board.button("service")
    held: list[bool] = []
    button.when_held = lambda: held.append(button.is_pressed)
    assert not button.is_pressed
    factory.pin(BUTTON).drive_low()  # to ground: pressed
    wait_until(lambda: held, what=lambda: f"hold, got {rec.kinds()}")
    factory.pin(BUTTON).drive_high()
    wait_until(lambda: len(rec.kinds()) == 3, what=lambda: f"release, got {rec.kinds()}")
    assert rec.kinds() == [("service", "pressed"), ("service", "held"), ("service", "released")]
    assert held == [True]
    # a short press is no hold
    factory.pin(BUTTON).drive_low()
    wait_until(lambda: len(rec.kinds()) == 4)
    factory.pin(BUTTON).drive_high()
    wait_until(lambda: len(rec.kinds()) == 5)
    assert rec.kinds()[3:] == [("service", "pressed"), ("service", "released")]


def test_a_failing_callback_does_not_stop_other_events(board: GpioBoard, factory: Any) -> None:
    def broken(event: GpioEvent) -> None:
        raise RuntimeError("bug in a listener")

    rec = Recorder()
    board.add_listener(broken)
    board.add_listener(rec)
    board.door("cabinet_door").when_closed = lambda: 1 / 0  # type: ignore[func-returns-value]
    factory.pin(DOOR).drive_low()
    factory.pin(BUTTON).drive_low()
    wanted = {("cabinet_door", "closed"), ("service", "pressed")}
    wait_until(lambda: wanted <= set(rec.kinds()), what=lambda: f"both events, got {rec.kinds()}")


def test_buzzer_pattern_plays_its_beeps_and_ends_off(board: GpioBoard, factory: Any) -> None:
    pin = factory.pin(BUZZER)
    pin.clear_states()
    board.buzzer("buzzer").beep("two")
    # two beeps: off -> on -> off -> on -> off
    wait_until(lambda: [s.state for s in pin.states] == [False, True, False, True, False])
    assert not board.buzzer("buzzer").is_sounding


def test_close_puts_every_output_back_in_its_safe_state(factory: Any) -> None:
    settings = GpioSettings.model_validate({"devices": DEVICES})
    board = GpioBoard(settings, factory, close_at_exit=False)
    board.led("status").on()
    board.led("attention").blink(0.01, 0.01)
    board.buzzer("buzzer").beep("alarm")
    wait_until(lambda: level(factory, BUZZER))
    board.close()
    assert (level(factory, STATUS), level(factory, ATTENTION), level(factory, BUZZER)) == (
        False,
        True,
        False,
    )
    assert factory.pin(BUZZER).function == "input"  # the line was released
    board.close()  # twice is fine
    with pytest.raises(GpioClosed):
        board.led("status")


def test_an_exception_inside_the_block_still_leaves_outputs_safe(factory: Any) -> None:
    settings = GpioSettings.model_validate({"devices": DEVICES})
    with (
        pytest.raises(RuntimeError, match="flow crashed"),
        GpioBoard(settings, factory, close_at_exit=False) as board,
    ):
        board.buzzer("buzzer").beep("alarm")
        board.led("attention").on()
        wait_until(lambda: level(factory, BUZZER))
        raise RuntimeError("flow crashed")
    assert level(factory, BUZZER) is False
    assert level(factory, ATTENTION) is True


def test_a_safe_state_of_on_is_applied_at_start_and_at_close(factory: Any) -> None:
    settings = GpioSettings.model_validate(
        {"devices": {"power": {"role": "led", "pin": STATUS, "safe_state": "on"}}}
    )
    with GpioBoard(settings, factory, close_at_exit=False) as board:
        assert level(factory, STATUS) is True
        board.led("power").off()
        assert level(factory, STATUS) is False
    assert level(factory, STATUS) is True


ATEXIT_SCRIPT = """
import atexit
from drivers.gpio import GpioBoard, GpioSettings
from drivers.gpio.factory import mock_factory

factory = mock_factory()
# registered before the board's hook, so it runs after it (atexit is last-in, first-out)
atexit.register(lambda: print("at exit:", factory.pin(24).state, factory.pin(23).state))
board = GpioBoard(GpioSettings.model_validate({"devices": {
    "buzzer": {"role": "buzzer", "pin": 24, "safe_state": "off"},
    "attention": {"role": "led", "pin": 23, "active_high": False, "safe_state": "off"},
}}), factory)
board.buzzer("buzzer").on()
board.led("attention").on()
print("running:", factory.pin(24).state, factory.pin(23).state)
raise SystemExit(3)  # never calls close(): only the atexit path can make the lines safe
"""


def test_interpreter_exit_without_close_applies_the_safe_states() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", ATEXIT_SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout.splitlines() == ["running: True False", "at exit: False True"]


def test_unknown_names_and_unknown_patterns_are_typed_errors(board: GpioBoard) -> None:
    with pytest.raises(GpioNotConfigured, match=r"no door named 'front'.*cabinet_door"):
        board.door("front")
    with pytest.raises(GpioNotConfigured, match="no beep pattern 'tune'"):
        board.buzzer("buzzer").beep("tune")
    with pytest.raises(LookupError):
        board.led("buzzer")  # right name, wrong role


def test_gpiozero_refusing_a_pin_is_a_setup_error_and_releases_what_was_built(
    factory: Any,
) -> None:
    # GPIO2 has a fixed 1.8k pull-up on every Pi: a pull-down cannot be configured there
    settings = GpioSettings.model_validate(
        {
            "devices": {
                "buzzer": {"role": "buzzer", "pin": BUZZER, "safe_state": "off"},
                "door": {"role": "door", "pin": 2, "pull": "down"},
            }
        }
    )
    with pytest.raises(GpioSetupError, match="door on GPIO2"):
        GpioBoard(settings, factory, close_at_exit=False)
    # the buzzer built before the failure was released in its safe state, so a retry works
    assert factory.pin(BUZZER).function == "input"
    assert level(factory, BUZZER) is False
    ok = GpioSettings.model_validate(
        {"devices": {"buzzer": {"role": "buzzer", "pin": BUZZER, "safe_state": "off"}}}
    )
    GpioBoard(ok, factory, close_at_exit=False).close()


def test_a_board_built_from_settings_alone_owns_a_mock_factory() -> None:
    settings = GpioSettings.model_validate({"devices": {"door": {"role": "door", "pin": DOOR}}})
    with GpioBoard(settings, close_at_exit=False) as board:
        rec = Recorder()
        board.add_listener(rec)
        board.factory.pin(DOOR).drive_low()
        wait_until(rec.kinds)
        assert rec.kinds() == [("door", "closed")]
