"""``sim://`` through pyserial's own ``serial_for_url``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import serial

from drivers.lockboard import protocol_sim
from tests.fixtures import wait_until


@pytest.fixture
def open_sim() -> Iterator[Any]:
    protocol_sim.register()
    ports: list[Any] = []

    def _open(url: str, timeout: float | None = 2.0) -> Any:
        port = serial.serial_for_url(url, baudrate=9600, timeout=timeout)
        ports.append(port)
        return port

    yield _open
    for port in ports:
        port.close()


def test_register_is_idempotent() -> None:
    protocol_sim.register()
    protocol_sim.register()
    assert serial.protocol_handler_packages.count("drivers.lockboard") == 1


def test_8a80_round_trip(open_sim: Any) -> None:
    port = open_sim("sim://8a80?boards=1,2&channels=16&feedback_open=set&reply=1")
    assert isinstance(port, protocol_sim.Serial)
    port.write(bytes.fromhex("8A 02 03 11 9A"))
    assert port.read(5) == bytes.fromhex("8A 02 03 11 9A")
    port.write(bytes.fromhex("80 02 00 33 B1"))
    assert port.read(7) == bytes.fromhex("80 02 00 00 04 33 B5")
    assert [(fire.board, fire.channel) for fire in port.sim.unlock_log] == [(2, 3)]


def test_kerong_round_trip(open_sim: Any) -> None:
    port = open_sim("sim://kerong?boards=0,1&channels=16")
    port.write(bytes.fromhex("02 00 31 03 36"))
    assert port.read(6) == bytes.fromhex("02 00 31 01 03 37")
    port.sim.put_item(1, 1)
    port.write(bytes.fromhex("02 10 30 03 45"))
    assert port.read(9) == bytes.fromhex("02 10 35 00 00 01 00 03 4B")


def test_url_options_reach_the_model(open_sim: Any) -> None:
    port = open_sim("sim://kerong?feedback_open=clear&reply=0&channels=8&auto_person=0")
    sim = port.sim
    assert (sim.boards, sim.channels_per_board, sim.feedback_open) == ((0,), 8, "clear")
    assert sim.snapshot()["auto_person"] is False
    port.timeout = 0.05
    port.write(bytes.fromhex("02 00 31 03 36"))
    assert port.read(6) == b""  # a no-reply unit
    port.timeout = 2.0
    port.write(bytes.fromhex("02 00 30 03 35"))
    assert port.read(9) == bytes.fromhex("02 00 35 FE FF 00 00 03 37")


def test_hooks_through_sim_attribute(open_sim: Any) -> None:
    port = open_sim("sim://8a80?channels=4")
    port.sim.jam(1, 1)
    port.write(bytes.fromhex("8A 01 01 11 9B"))
    assert port.read(5) == bytes.fromhex("8A 01 01 00 8A")
    assert port.sim.unlock_log[0].jammed
    port.sim.garble_next()
    port.write(bytes.fromhex("80 01 01 33 B3"))
    assert port.read(5) == bytes.fromhex("80 01 01 00 7F")


def test_timeout_is_honoured_when_the_board_is_offline(open_sim: Any) -> None:
    port = open_sim("sim://8a80", timeout=0.05)
    port.sim.set_offline(1)
    port.write(bytes.fromhex("80 01 01 33 B3"))
    assert port.read(5) == b""
    assert port.in_waiting == 0


def test_late_reply_is_readable_only_once_due(open_sim: Any) -> None:
    port = open_sim("sim://8a80")
    port.sim.delay_replies(300)
    port.write(bytes.fromhex("80 01 01 33 B3"))
    assert port.in_waiting == 0
    port.reset_input_buffer()  # a flush does not catch a reply still on its way
    assert port.read(5) == bytes.fromhex("80 01 01 00 80")


def test_reset_input_buffer_drops_arrived_bytes(open_sim: Any) -> None:
    port = open_sim("sim://8a80")
    port.write(bytes.fromhex("80 01 01 33 B3"))
    wait_until(lambda: port.in_waiting == 5, what="reply to arrive")
    port.reset_input_buffer()
    assert port.in_waiting == 0
    port.write(bytes.fromhex("80 01 02 33 B0"))
    assert port.read(5) == bytes.fromhex("80 01 02 00 83")


def test_physics_run_while_the_host_is_silent(open_sim: Any) -> None:
    port = open_sim("sim://8a80?pull_after_ms=1&close_after_ms=1")
    port.write(bytes.fromhex("8A 01 01 11 9B"))
    assert port.read(5) == bytes.fromhex("8A 01 01 11 9B")
    wait_until(lambda: port.sim.door_openings[(1, 1)] == 1, what="auto person")
    wait_until(lambda: port.sim.channel_state(1, 1).secured, what="door closed and latched")


def test_reopen_keeps_the_same_boards(open_sim: Any) -> None:
    port = open_sim("sim://8a80")
    sim = port.sim
    port.write(bytes.fromhex("8A 01 01 11 9B"))
    port.close()
    with pytest.raises(serial.SerialException):
        port.read(1)
    port.open()
    assert port.sim is sim
    port.write(bytes.fromhex("80 01 00 33 B2"))
    assert len(port.read(7)) == 7
    assert len(sim.unlock_log) == 1


@pytest.mark.parametrize(
    "url",
    [
        "sim://modbus",
        "sim://8a80?boards=0",
        "sim://8a80?colour=red",
        "sim://kerong?reply=maybe",
        "sim://8a80?channels=x",
    ],
)
def test_bad_urls_are_serial_exceptions(url: str) -> None:
    protocol_sim.register()
    with pytest.raises(serial.SerialException):
        serial.serial_for_url(url)
