"""Ga467Reader against the simulator over a real pty: cards, every SW3, damaged replies,
timeouts, unplugging, and privacy (the raw number and name appear nowhere).

Most tests serve the simulator from a thread of this process (``SimRunner.start()``), which
is quick and lets a test call hooks directly; one runs it as its own process with the control
socket, as the demo and hwctl do.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.identity.errors import (
    CardInvalid,
    IdentityReaderError,
    NoCard,
    ReaderOffline,
    ReaderTimeout,
)
from drivers.identity.ga467 import Ga467Reader, Ga467Settings
from drivers.identity.ga467.codec import (
    BadChecksum,
    BadLength,
    Ga467FrameError,
    ShortReply,
    UnexpectedReply,
    build_reply,
    build_request,
)
from drivers.identity.ga467.sim import Ga467Sim, SimCard
from drivers.identity.ga467.sim_runner import SimControl, SimControlError, SimRunner
from drivers.identity.ga467.status import STATUS, CardNotFound, UnknownStatus
from drivers.identity.ga467.textblock import BadCheckDigit
from drivers.identity.types import Identity, IdentitySource
from hallkiosk.privacy import IdentityHasher
from tests.drivers.identity.test_ga467_codec import EXPECTED_ERRORS
from tests.fixtures import wait_until
from tests.fixtures.processes import STARTUP_TIMEOUT_S, Spawner

HASHER = IdentityHasher(b"ga467-test-identity-key-32-bytes")
READ = ["20 01", "20 02", "30 01"]
RETRIES = 2


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimRunner]:
    runner = SimRunner(Ga467Sim(), link_path=str(tmp_path / "ttyGA467")).start()
    try:
        yield runner
    finally:
        runner.close()


def settings_for(url: str, **changes: Any) -> Ga467Settings:
    values: dict[str, Any] = {
        "url": url,
        "reply_timeout_ms": 150,
        "read_reply_timeout_ms": 1000,
        "retries": RETRIES,
        "poll_interval_ms": 20,
        **changes,
    }
    return Ga467Settings(**values)


@pytest.fixture
def reader(sim: SimRunner) -> Iterator[Ga467Reader]:
    with Ga467Reader(settings_for(sim.url), HASHER) as opened:
        yield opened


def expect_identity(identity: Identity, card: SimCard) -> None:
    assert identity.source is IdentitySource.GA467
    assert identity.id_hash == HASHER.hash_id_number(card.id_number)
    assert identity.id_masked == card.id_number[:4] + "*" * 10 + card.id_number[-4:]
    assert identity.name_masked is not None and identity.name_masked[0] == card.name[0]
    assert identity.birth_date is not None
    assert identity.birth_date.strftime("%Y%m%d") == card.birth_date
    assert identity.chip_serial is None


# -- reading ------------------------------------------------------------------------------------


def test_read_a_card(sim: SimRunner, reader: Ga467Reader) -> None:
    card = sim.sim.present_card(SimCard.synthetic(7))
    identity = reader.read(timeout_s=2)
    expect_identity(identity, card)
    assert sim.sim.commands() == READ


def test_sam_status_returns_the_sam_id(sim: SimRunner, reader: Ga467Reader) -> None:
    assert reader.sam_status() == "05.01-20230101-0000000001-2345678901"
    assert sim.sim.commands() == ["11 FF", "12 FF"]


def test_polls_until_a_card_is_placed(sim: SimRunner, reader: Ga467Reader) -> None:
    result: list[Identity | BaseException] = []
    worker = threading.Thread(target=lambda: result.append(reader.read(timeout_s=10)))
    worker.start()
    wait_until(lambda: sim.sim.commands().count("20 01") >= 2, what="two find-card polls")
    card = sim.sim.present_card(SimCard.synthetic(8))
    worker.join(timeout=10)
    assert len(result) == 1 and isinstance(result[0], Identity)
    expect_identity(result[0], card)
    assert sim.sim.commands()[-3:] == READ


def test_no_card_within_the_timeout(sim: SimRunner, reader: Ga467Reader) -> None:
    with pytest.raises(NoCard) as caught:
        reader.read(timeout_s=0.1)
    assert isinstance(caught.value, CardNotFound) and caught.value.sw3 == 0x80
    assert caught.value.message_zh == STATUS[0x80].message_zh
    seen = sim.sim.commands()
    assert seen and set(seen) == {"20 01"}


def test_timeout_zero_asks_exactly_once(sim: SimRunner, reader: Ga467Reader) -> None:
    with pytest.raises(CardNotFound):
        reader.read(timeout_s=0)
    assert sim.sim.commands() == ["20 01"]


def test_a_find_answered_no_card_is_polled_again(sim: SimRunner, reader: Ga467Reader) -> None:
    card = sim.sim.present_card(SimCard.synthetic(9))
    sim.sim.fail_next(0x80)
    expect_identity(reader.read(timeout_s=2), card)
    assert sim.sim.commands() == ["20 01", *READ]


def test_close_from_another_thread_stops_the_polling(sim: SimRunner, reader: Ga467Reader) -> None:
    result: list[BaseException] = []

    def run() -> None:
        try:
            reader.read(timeout_s=30)
        except IdentityReaderError as exc:
            result.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: "20 01" in sim.sim.commands(), what="a find-card poll")
    reader.close()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert len(result) == 1 and isinstance(result[0], ReaderOffline)


# -- every SW3 over the wire --------------------------------------------------------------------


@pytest.mark.parametrize("sw3", [*sorted(set(EXPECTED_ERRORS) - {0x80}), 0x55])
def test_every_status_code_reaches_the_caller_as_its_typed_error(
    sim: SimRunner, reader: Ga467Reader, sw3: int
) -> None:
    sim.sim.present_card(SimCard.synthetic(10))
    # the damaged-request codes are retried, so they must come RETRIES + 1 times to surface
    sim.sim.fail_next(sw3, count=RETRIES + 1 if sw3 in (0x10, 0x11) else 1)
    cls, base = EXPECTED_ERRORS.get(sw3, (UnknownStatus, IdentityReaderError))
    with pytest.raises(cls) as caught:
        reader.read(timeout_s=1)
    exc = caught.value
    assert isinstance(exc, base) and exc.sw3 == sw3
    if sw3 in STATUS:
        assert (exc.message_zh, exc.message_en) == (STATUS[sw3].message_zh, STATUS[sw3].message_en)
    # a card-level code ends the read at once; the next read works
    sim.sim.commands(clear=True)
    assert reader.read(timeout_s=1).source is IdentitySource.GA467
    assert sim.sim.commands() == READ


def test_a_request_damaged_on_the_line_is_resent(sim: SimRunner, reader: Ga467Reader) -> None:
    card = sim.sim.present_card(SimCard.synthetic(11))
    sim.sim.fail_next(0x10, on="select")
    expect_identity(reader.read(timeout_s=1), card)
    assert sim.sim.commands() == ["20 01", "20 02", *READ]


def test_the_sam_status_error_codes(sim: SimRunner, reader: Ga467Reader) -> None:
    sim.sim.fail_next(0x60)
    with pytest.raises(IdentityReaderError) as caught:
        reader.sam_status()
    assert caught.value.code == "idreader_sam_fault"
    assert sim.sim.commands() == ["11 FF"]


# -- damaged replies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "on", "commands"),
    [
        ("checksum", "any", ["20 01", *READ]),
        ("short", "any", ["20 01", *READ]),
        ("length", "any", ["20 01", *READ]),
        ("checksum", "read", [*READ, *READ]),
        ("short", "read", [*READ, *READ]),
        # the frame itself is fine, or a good copy follows: no resend
        ("noise", "read", READ),
        ("resync", "read", READ),
        ("resync", "find", READ),
    ],
)
def test_damaged_replies_are_recovered(
    sim: SimRunner, reader: Ga467Reader, mode: Any, on: Any, commands: list[str]
) -> None:
    card = sim.sim.present_card(SimCard.synthetic(12))
    sim.sim.garble_next(mode, on=on)
    expect_identity(reader.read(timeout_s=1), card)
    assert sim.sim.commands() == commands


@pytest.mark.parametrize(
    ("mode", "error"), [("checksum", BadChecksum), ("short", ShortReply), ("length", BadLength)]
)
def test_replies_damaged_every_time_give_up_after_the_retries(
    sim: SimRunner, reader: Ga467Reader, mode: Any, error: type[Exception]
) -> None:
    sim.sim.present_card(SimCard.synthetic(13))
    sim.sim.garble_next(mode, count=RETRIES + 1)
    with pytest.raises(error):
        reader.read(timeout_s=1)
    assert sim.sim.commands() == ["20 01"] * (RETRIES + 1)


def test_a_silent_reader_times_out_then_recovers(sim: SimRunner, reader: Ga467Reader) -> None:
    sim.sim.present_card(SimCard.synthetic(14))
    sim.sim.set_silent(True)
    with pytest.raises(ReaderTimeout) as caught:
        reader.read(timeout_s=5)
    assert "no reply within 150 ms" in str(caught.value)
    assert sim.sim.commands(clear=True) == ["20 01"] * (RETRIES + 1)
    sim.sim.set_silent(False)
    assert reader.read(timeout_s=1).source is IdentitySource.GA467


def test_a_bad_check_digit_is_refused(sim: SimRunner, reader: Ga467Reader) -> None:
    good = SimCard.synthetic(15)
    bad_digit = "0" if good.id_number[17] != "0" else "1"
    sim.sim.present_card(SimCard.synthetic(15, id_number=good.id_number[:17] + bad_digit))
    with pytest.raises(BadCheckDigit) as caught:
        reader.read(timeout_s=1)
    assert isinstance(caught.value, CardInvalid)
    assert good.id_number[:17] not in str(caught.value)
    assert sim.sim.commands() == READ  # read once: a bad card is not a line fault


# -- the port going away -------------------------------------------------------------------------


def test_unplugged_then_replugged(sim: SimRunner, reader: Ga467Reader) -> None:
    card = sim.sim.present_card(SimCard.synthetic(16))
    assert reader.read(timeout_s=1).id_hash == HASHER.hash_id_number(card.id_number)
    sim.unplug()
    with pytest.raises(ReaderOffline):
        reader.read(timeout_s=1)
    with pytest.raises(ReaderOffline, match="cannot open"):
        reader.read(timeout_s=1)  # the /dev/serial/by-id style link is gone
    sim.replug()
    expect_identity(reader.read(timeout_s=1), card)


def test_open_fails_cleanly_without_a_port(tmp_path: Path) -> None:
    reader = Ga467Reader(settings_for(str(tmp_path / "nothing")), HASHER)
    with pytest.raises(ReaderOffline) as caught:
        reader.open()
    assert caught.value.code == "idreader_offline"


# -- wire cases the simulator cannot force: a hand-written reader on a raw pty ------------------


class ScriptedReader:
    """Answers each expected request with a fixed reply, in order, from a thread."""

    def __init__(self, master_fd: int, script: list[tuple[bytes, bytes]]) -> None:
        self.master_fd = master_fd
        self.script = script
        self.seen: list[bytes] = []
        self.error: str | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        buf = b""
        for expected, reply in self.script:
            deadline = time.monotonic() + 10
            while len(buf) < len(expected):
                ready, _, _ = select.select([self.master_fd], [], [], 0.05)
                if ready:
                    buf += os.read(self.master_fd, 4096)
                elif time.monotonic() > deadline:
                    self.error = f"no request {expected.hex(' ')} within 10 s"
                    return
            request, buf = buf[: len(expected)], buf[len(expected) :]
            self.seen.append(request)
            if request != expected:
                self.error = f"expected {expected.hex(' ')}, got {request.hex(' ')}"
                return
            os.write(self.master_fd, reply)

    def join(self) -> None:
        self.thread.join(timeout=15)
        assert self.error is None, self.error


def read_reply(text_len: int = 256, photo_len: int = 1024, photo_bytes: int = 1024) -> bytes:
    card = SimCard.synthetic(30)
    lengths = text_len.to_bytes(2, "big") + photo_len.to_bytes(2, "big")
    return build_reply(0x90, lengths + card.text_block() + card.photo()[:photo_bytes])


FOUND = build_reply(0x9F, bytes(4))
SELECTED = build_reply(0x90, bytes(8))


def test_a_damaged_frame_followed_by_silence_is_given_up_before_the_timeout(
    pty_pair: tuple[int, str],
) -> None:
    master_fd, path = pty_pair
    damaged = bytearray(read_reply())
    damaged[-1] ^= 0x5A
    board = ScriptedReader(
        master_fd,
        [
            (build_request(0x20, 0x01), FOUND),
            (build_request(0x20, 0x02), SELECTED),
            (build_request(0x30, 0x01), bytes(damaged)),
            # the resend comes after byte_gap_ms of silence, long before the 30 s timeout ends:
            # without that rule the board would wait for it in vain
            (build_request(0x20, 0x01), build_reply(0x80)),
        ],
    )
    settings = settings_for(path, reply_timeout_ms=10_000, read_reply_timeout_ms=30_000)
    with Ga467Reader(settings, HASHER) as reader, pytest.raises(CardNotFound):
        reader.read(timeout_s=0)
    board.join()
    assert len(board.seen) == 4


def test_lengths_that_disagree_with_the_frame_are_a_frame_error(
    pty_pair: tuple[int, str],
) -> None:
    master_fd, path = pty_pair
    board = ScriptedReader(
        master_fd,
        [
            (build_request(0x20, 0x01), FOUND),
            (build_request(0x20, 0x02), SELECTED),
            (build_request(0x30, 0x01), read_reply(photo_bytes=100)),
        ],
    )
    with (
        Ga467Reader(settings_for(path, retries=0), HASHER) as reader,
        pytest.raises(Ga467FrameError, match="photo 1024, the frame holds 356"),
    ):
        reader.read(timeout_s=1)
    board.join()


def test_a_reply_that_belongs_to_another_command_is_not_taken(pty_pair: tuple[int, str]) -> None:
    master_fd, path = pty_pair
    board = ScriptedReader(master_fd, [(build_request(0x20, 0x01), SELECTED)])
    reader = Ga467Reader(settings_for(path, retries=0), HASHER)
    with reader, pytest.raises(UnexpectedReply):
        reader.read(timeout_s=1)
    board.join()


# -- privacy ------------------------------------------------------------------------------------


def test_the_raw_number_and_name_appear_nowhere(
    sim: SimRunner, reader: Ga467Reader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    card = SimCard.synthetic(17)
    secrets = [
        card.id_number,
        card.id_number[:17],
        card.name,
        card.id_number.encode("utf-16-le").hex(),
        card.id_number.encode("utf-16-le").hex(" "),
    ]
    shown: list[str] = []
    sim.sim.present_card(card)
    sim.sim.garble_next("checksum", on="read")
    identity = reader.read(timeout_s=1)  # a retried read: the damaged frame held the data too
    shown += [repr(identity), str(identity.describe()), repr(vars(reader))]
    sim.sim.garble_next("checksum", count=RETRIES + 1, on="read")
    with pytest.raises(BadChecksum) as damaged:
        reader.read(timeout_s=1)
    bad = SimCard.synthetic(17, id_number=card.id_number[:17] + "Z")
    sim.sim.present_card(bad)
    with pytest.raises(CardInvalid) as invalid:
        reader.read(timeout_s=1)
    for exc in (damaged.value, invalid.value):
        shown += [str(exc), repr(exc), exc.message_zh, exc.message_en, repr(exc.__cause__)]
    shown.append(caplog.text)
    assert "30 01" in caplog.text  # the log is there, and has something to say
    for text in shown:
        for secret in secrets:
            assert secret not in text
    assert identity.id_masked is not None and identity.id_masked in caplog.text
    assert reader._parser.pending == 0  # nothing left behind in the receive buffer


# -- the simulator as its own process, through its control socket ------------------------------


def test_simulator_process_with_control_socket(spawn: Spawner, tmp_path: Path) -> None:
    link = tmp_path / "ttyGA467"
    process = spawn(
        "drivers.identity.ga467.sim_runner",
        "--link",
        str(link),
        "--card-seed",
        "20",
        "--verbose",
        "--exit-with-parent",
    )
    assert process.read_line(STARTUP_TIMEOUT_S) == str(link)
    control_line = process.read_line(STARTUP_TIMEOUT_S)
    assert control_line.startswith("control ")
    control = SimControl(control_line.removeprefix("control "))

    with Ga467Reader(settings_for(str(link)), HASHER) as reader:
        expect_identity(reader.read(timeout_s=1), SimCard.synthetic(20))  # --card-seed 20
        shown = control.present_card(seed=21)
        card = SimCard.synthetic(21)
        assert shown == card.describe()
        control.commands(clear=True)
        control.garble_next("short", on="read")
        control.fail_next(0x80)
        expect_identity(reader.read(timeout_s=2), card)
        assert control.commands() == ["20 01", *READ, *READ]
        assert control.snapshot()["card"] == card.describe()

        control.present_card(seed=22, name="测试", valid_to="长期")
        assert reader.read(timeout_s=1).name_masked == "测*"

        control.fail_next(0x41)
        with pytest.raises(IdentityReaderError) as caught:
            reader.read(timeout_s=1)
        assert caught.value.code == "idcard_read_failed"

        control.unplug()
        with pytest.raises(ReaderOffline):
            reader.read(timeout_s=1)
        assert not link.exists()
        control.replug()
        assert reader.read(timeout_s=1).source is IdentitySource.GA467
        control.remove_card()
        with pytest.raises(NoCard):
            reader.read(timeout_s=0)

    with pytest.raises(SimControlError, match="unknown hook"):
        control.call("jam")
    with pytest.raises(SimControlError, match="must be of type int"):
        control.call("fail_next", sw3="41")
    with pytest.raises(SimControlError, match="unknown fields"):
        control.call("present_card", card={"id": "x"})

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout_s=10) == 0, process.describe()
    assert not link.exists() and not os.path.exists(control.path)
    assert "30 01" in process.stderr  # --verbose logs frames, and never card data
    assert card.id_number.encode("utf-16-le").hex(" ") not in process.stderr
