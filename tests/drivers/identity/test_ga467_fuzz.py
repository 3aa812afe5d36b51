"""Property tests: the streaming parser and the text-block parser raise only our typed errors,
never lose a good frame behind garbage, and round-trip what the builders make.

``bench/fuzz_ga467.py`` runs the same kind of inputs 100,000 times and more.
"""

from __future__ import annotations

import contextlib
import itertools
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.identity.errors import CardInvalid
from drivers.identity.ga467.codec import (
    MAX_LEN,
    PREAMBLE,
    FrameParser,
    Ga467FrameError,
    build_reply,
    xor8,
)
from drivers.identity.ga467.sim import SimCard, synthetic_id_number
from drivers.identity.ga467.textblock import (
    LONG_TERM,
    TEXT_BLOCK_LEN,
    build_text_block,
    parse_text_block,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# bytes rich in preamble pieces, so the parser's resync paths are walked, not just its skip
wire_bytes = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from([PREAMBLE, PREAMBLE[:3], b"\x96\x69", b"\x00\x04", b"\x05\x08"]),
    ),
    max_size=12,
).map(b"".join)


def drain(parser: FrameParser) -> tuple[list[bytes], int]:
    bodies: list[bytes] = []
    errors = 0
    while True:
        try:
            body = parser.next_body()
        except Ga467FrameError:
            errors += 1
            continue
        if body is None:
            return bodies, errors
        bodies.append(body)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@FUZZ
@given(data=wire_bytes, cuts=st.lists(st.integers(min_value=0), max_size=6))
def test_the_parser_raises_only_frame_errors_and_stays_bounded(
    data: bytes, cuts: list[int]
) -> None:
    parser = FrameParser()
    for chunk in chunked(data, cuts):
        parser.feed(chunk)
        drain(parser)
        assert parser.pending <= len(PREAMBLE) + 2 + MAX_LEN + len(chunk)


@FUZZ
@given(
    before=wire_bytes,
    payload=st.binary(max_size=300),
    sw3=st.integers(0, 255),
    cuts=st.lists(st.integers(min_value=0), max_size=6),
)
def test_a_good_frame_after_garbage_always_comes_out(
    before: bytes, payload: bytes, sw3: int, cuts: list[int]
) -> None:
    frame = build_reply(sw3, payload)
    # a frame started in the garbage ends within MAX_LEN bytes (the quiet line), so ours, after
    # them, must come out whole: the parser is never out of step for longer than that
    quiet = bytes(len(PREAMBLE) + 2 + MAX_LEN)
    parser = FrameParser()
    bodies: list[bytes] = []
    for chunk in chunked(before + quiet + frame, cuts):
        parser.feed(chunk)
        bodies += drain(parser)[0]
    assert bodies[-1] == bytes([0, 0, sw3]) + payload
    assert parser.pending == 0


@FUZZ
@given(
    seed=st.integers(0, 10_000),
    edits=st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]), st.integers(0), st.integers(0, 255)
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_read_replies_give_a_body_or_a_typed_error(
    seed: int, edits: list[tuple[str, int, int]]
) -> None:
    card = SimCard.synthetic(seed)
    frame = bytearray(build_reply(0x90, b"\x01\x00\x04\x00" + card.text_block() + card.photo()))
    for op, where, value in edits:
        at = where % len(frame)
        if op == "flip":
            frame[at] ^= value or 1
        elif op == "insert":
            frame.insert(at, value)
        else:
            del frame[at]
    parser = FrameParser()
    parser.feed(bytes(frame))
    for body in drain(parser)[0]:
        with contextlib.suppress(CardInvalid):
            parse_text_block(body[7 : 7 + TEXT_BLOCK_LEN])


@FUZZ
@given(block=st.binary(min_size=TEXT_BLOCK_LEN, max_size=TEXT_BLOCK_LEN))
def test_random_text_blocks_raise_only_card_invalid(block: bytes) -> None:
    with contextlib.suppress(CardInvalid):
        parse_text_block(block)


@FUZZ
@given(
    seed=st.integers(0, 10_000),
    at=st.integers(0, TEXT_BLOCK_LEN - 1),
    text=st.text(max_size=8),
)
def test_text_written_over_a_valid_block_raises_only_card_invalid(
    seed: int, at: int, text: str
) -> None:
    block = bytearray(SimCard.synthetic(seed).text_block())
    raw = text.encode("utf-16-le", errors="surrogatepass")[: TEXT_BLOCK_LEN - at]
    block[at : at + len(raw)] = raw
    with contextlib.suppress(CardInvalid):
        parse_text_block(bytes(block))


names = st.text(
    alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FA5), min_size=1, max_size=15
)


@FUZZ
@given(
    name=names,
    born=st.dates(min_value=date(1900, 1, 1), max_value=date(2024, 12, 31)),
    sequence=st.integers(0, 999),
    region=st.integers(990000, 999999),
    long_term=st.booleans(),
)
def test_built_blocks_parse_back_to_the_same_values(
    name: str, born: date, sequence: int, region: int, long_term: bool
) -> None:
    number = synthetic_id_number(str(region), born, sequence)
    block = build_text_block(
        name=name,
        sex="2",
        nation_code="03",
        birth_date=f"{born:%Y%m%d}",
        address="测试地址",
        id_number=number,
        authority="测试机关",
        valid_from="20200101",
        valid_to=LONG_TERM if long_term else "20400101",
    )
    text = parse_text_block(block)
    assert (text.name, text.id_number, text.birth_date) == (name, number, born)
    assert text.valid_to == (None if long_term else date(2040, 1, 1))


@FUZZ
@given(data=st.binary(max_size=3000))
def test_xor8_is_the_xor_of_all_bytes(data: bytes) -> None:
    plain = 0
    for byte in data:
        plain ^= byte
    assert xor8(data) == plain
