"""GA 467 frames byte for byte from the hardware notes; the streaming parser; SW3; settings."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from drivers.identity.errors import (
    CardInvalid,
    CardReadFailed,
    IdentityReaderError,
    NoCard,
)
from drivers.identity.ga467 import status
from drivers.identity.ga467.codec import (
    MAX_LEN,
    BadChecksum,
    BadLength,
    FrameParser,
    UnexpectedReply,
    build_reply,
    build_request,
    parse_reply,
    parse_request,
    xor8,
)
from drivers.identity.ga467.reader import format_sam_id
from drivers.identity.ga467.settings import Ga467Settings
from drivers.identity.ga467.status import (
    CardAuthFailed,
    CardNotFound,
    CardReadError,
    CommandRefused,
    Ga467StatusError,
    ReaderInternalError,
    RequestDamaged,
    SamFault,
    UnknownStatus,
    WrongCardType,
)

FIND_CARD = bytes.fromhex("AA AA AA 96 69 00 03 20 01 22")  # from the notes
SAM_OK = bytes.fromhex("AA AA AA 96 69 00 04 00 00 90 94")  # from the notes


def parse_all(parser: FrameParser) -> list[bytes | type[Exception]]:
    """Everything the parser yields now: bodies, and the classes of the errors it raises."""
    out: list[bytes | type[Exception]] = []
    while True:
        try:
            body = parser.next_body()
        except (BadChecksum, BadLength) as exc:
            out.append(type(exc))
            continue
        if body is None:
            return out
        out.append(body)


def test_requests_match_the_notes_byte_for_byte() -> None:
    assert build_request(0x20, 0x01) == FIND_CARD
    # each CHK worked by hand: 00 ^ 03 ^ CMD ^ PARA
    assert build_request(0x10, 0xFF) == bytes.fromhex("AA AA AA 96 69 00 03 10 FF EC")
    assert build_request(0x11, 0xFF) == bytes.fromhex("AA AA AA 96 69 00 03 11 FF ED")
    assert build_request(0x12, 0xFF) == bytes.fromhex("AA AA AA 96 69 00 03 12 FF EE")
    assert build_request(0x20, 0x02) == bytes.fromhex("AA AA AA 96 69 00 03 20 02 21")
    assert build_request(0x30, 0x01) == bytes.fromhex("AA AA AA 96 69 00 03 30 01 32")
    assert build_reply(0x90) == SAM_OK


def test_sam_status_reply_from_the_notes_parses() -> None:
    parser = FrameParser()
    parser.feed(SAM_OK)
    body = parser.next_body()
    assert body == bytes.fromhex("00 00 90")
    reply = parse_reply(body)
    assert (reply.sw1, reply.sw2, reply.sw3, reply.data) == (0, 0, 0x90, b"")
    assert parser.pending == 0 and parser.discarded == 0


def test_a_request_parser_reads_the_find_card_frame() -> None:
    parser = FrameParser(min_len=3)
    parser.feed(FIND_CARD)
    body = parser.next_body()
    assert body is not None
    request = parse_request(body)
    assert (request.cmd, request.para, request.data, request.name) == (0x20, 0x01, b"", "20 01")


def test_a_frame_fed_one_byte_at_a_time_comes_out_once_at_the_last_byte() -> None:
    frame = build_reply(0x9F, bytes(4))
    parser = FrameParser()
    for byte in frame[:-1]:
        parser.feed(bytes([byte]))
        assert parser.next_body() is None
    assert parser.expected() == len(frame)
    parser.feed(frame[-1:])
    assert parser.next_body() == bytes.fromhex("00 00 9F 00 00 00 00")
    assert parser.pending == 0


def test_garbage_before_a_frame_is_skipped_and_counted() -> None:
    parser = FrameParser()
    parser.feed(b"\x00\x13\xff" + SAM_OK)
    assert parse_all(parser) == [bytes.fromhex("00 00 90")]
    assert parser.discarded == 3


def test_a_preamble_split_across_reads_and_a_false_preamble_start() -> None:
    parser = FrameParser()
    # AA AA AA 96 then the real preamble: the first four bytes must be dropped, not the frame
    parser.feed(bytes.fromhex("AA AA AA 96 AA AA"))
    assert parser.next_body() is None
    parser.feed(SAM_OK[2:])
    assert parse_all(parser) == [bytes.fromhex("00 00 90")]
    assert parser.discarded == 4


def test_a_bad_checksum_is_reported_and_the_next_frame_still_comes_out() -> None:
    bad = SAM_OK[:-1] + b"\x95"
    parser = FrameParser()
    parser.feed(bad + build_reply(0x9F))
    assert parse_all(parser) == [BadChecksum, bytes.fromhex("00 00 9F")]


def test_bad_checksum_message_gives_both_values_and_no_data() -> None:
    frame = bytearray(build_reply(0x90, "张三".encode("utf-16-le")))
    frame[-1] ^= 0x01
    parser = FrameParser()
    parser.feed(bytes(frame))
    with pytest.raises(BadChecksum) as caught:
        parser.next_body()
    text = str(caught.value)
    assert f"0x{frame[-1]:02X}" in text and f"0x{frame[-1] ^ 1:02X}" in text
    assert "张" not in text and "5f20" not in text.lower()  # the UCS-2 of 张 is 20 5F


@pytest.mark.parametrize("length", [0x0000, 0x0001, 0x0003, MAX_LEN + 1, 0xFFFF])
def test_impossible_lengths_are_refused_then_the_parser_resyncs(length: int) -> None:
    parser = FrameParser()
    parser.feed(b"\xaa\xaa\xaa\x96\x69" + length.to_bytes(2, "big") + b"\x00\x00\x90" + SAM_OK)
    assert parse_all(parser) == [BadLength, bytes.fromhex("00 00 90")]


def test_the_longest_legal_frame_is_accepted() -> None:
    body = bytes([0, 0, 0x90]) + bytes(MAX_LEN - 4)
    parser = FrameParser()
    parser.feed(build_reply(0x90, body[3:]))
    assert parser.next_body() == body


def test_reset_drops_a_started_frame() -> None:
    parser = FrameParser()
    parser.feed(SAM_OK[:8])
    assert parser.pending == 8
    parser.reset()
    assert parser.pending == 0
    parser.feed(SAM_OK)
    assert parser.next_body() == bytes.fromhex("00 00 90")


def test_xor8_matches_a_plain_loop_on_every_length() -> None:
    data = bytes(range(256)) * 6
    for n in range(len(data) + 1):
        plain = 0
        for byte in data[:n]:
            plain ^= byte
        assert xor8(data[:n]) == plain, n


def test_reply_repr_shows_no_data() -> None:
    reply = parse_reply(bytes([0, 0, 0x90]) + "330106".encode("utf-16-le"))
    assert repr(reply) == "Reply(sw3=0x90, data=<12 bytes>)"


# -- SW3 ---------------------------------------------------------------------------------------

EXPECTED_ERRORS: dict[int, tuple[type[Ga467StatusError], type[Exception]]] = {
    0x10: (RequestDamaged, IdentityReaderError),
    0x11: (RequestDamaged, IdentityReaderError),
    0x21: (CommandRefused, IdentityReaderError),
    0x23: (CommandRefused, IdentityReaderError),
    0x24: (ReaderInternalError, IdentityReaderError),
    0x31: (CardAuthFailed, CardReadFailed),
    0x32: (CardAuthFailed, CardReadFailed),
    0x33: (CardAuthFailed, CardReadFailed),
    0x40: (WrongCardType, CardInvalid),
    0x41: (CardReadError, CardReadFailed),
    0x47: (CardAuthFailed, CardReadFailed),
    0x60: (SamFault, IdentityReaderError),
    0x66: (SamFault, IdentityReaderError),
    0x80: (CardNotFound, NoCard),
    0x81: (CardReadError, CardReadFailed),
}


@pytest.mark.parametrize("sw3", sorted(EXPECTED_ERRORS))
def test_every_error_code_maps_to_its_typed_error(sw3: int) -> None:
    cls, base = EXPECTED_ERRORS[sw3]
    with pytest.raises(cls) as caught:
        status.check(sw3, "find card")
    exc = caught.value
    assert isinstance(exc, base)
    assert exc.sw3 == sw3
    assert exc.message_zh == status.STATUS[sw3].message_zh and exc.message_zh
    assert exc.message_en == status.STATUS[sw3].message_en and exc.message_en
    assert f"0x{sw3:02X}" in str(exc)
    assert exc.retryable == (sw3 in (0x10, 0x11))


def test_the_table_holds_every_code_of_the_notes_and_nothing_unmapped() -> None:
    from_notes = {0x90, 0x9F, 0x10, 0x11, 0x21, 0x24, 0x31, 0x32, 0x33, 0x40, 0x41, 0x47}
    from_notes |= {0x60, 0x66, 0x80, 0x81}
    assert from_notes <= set(status.STATUS)
    assert set(status.STATUS) - set(EXPECTED_ERRORS) == {0x90, 0x9F, 0x91}
    assert status.is_ok(0x90) and status.is_ok(0x9F) and not status.is_ok(0x41)


def test_an_unknown_code_is_an_unknown_status_not_a_crash() -> None:
    with pytest.raises(UnknownStatus) as caught:
        status.check(0x55, "read text+photo")
    assert caught.value.sw3 == 0x55 and "0x55" in str(caught.value)
    assert "unknown" in status.describe(0x55)


def test_a_success_code_of_another_command_is_a_stale_reply() -> None:
    status.check(0x9F, "find card", accept=frozenset({0x9F}))
    with pytest.raises(UnexpectedReply):
        status.check(0x9F, "select card")


def test_sam_id_in_its_printed_form() -> None:
    raw = bytes.fromhex("0500 0100") + (20230101).to_bytes(4, "little")
    raw += (1).to_bytes(4, "little") + (2345678901).to_bytes(4, "little")
    assert format_sam_id(raw) == "05.01-20230101-0000000001-2345678901"
    assert format_sam_id(b"\x01\x02") == "0102"


# -- settings ----------------------------------------------------------------------------------


def test_settings_defaults_and_ranges() -> None:
    settings = Ga467Settings(url="/dev/ttyUSB0")
    assert settings.baud == 115200
    assert (settings.reply_timeout_ms, settings.read_reply_timeout_ms) == (500, 3000)
    assert (settings.retries, settings.poll_interval_ms) == (2, 200)
    with pytest.raises(ValidationError):
        Ga467Settings(url="/dev/ttyUSB0", baud=4800)  # type: ignore[arg-type]  # no 60 0x rate
    with pytest.raises(ValidationError):
        Ga467Settings(url="/dev/ttyUSB0", retries=6)
    with pytest.raises(ValidationError):
        Ga467Settings(url="/dev/ttyUSB0", baud_rate=9600)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Ga467Settings(url="")


def test_the_read_timeout_must_cover_the_transfer_at_the_chosen_baud() -> None:
    # 1,295 bytes at 9600 baud take 1,349 ms on the wire
    assert Ga467Settings(url="x", baud=9600).transfer_ms(1295) == 1349
    with pytest.raises(ValidationError, match="too short"):
        Ga467Settings(url="x", baud=9600, read_reply_timeout_ms=1000)
    Ga467Settings(url="x", baud=115200, read_reply_timeout_ms=300)
