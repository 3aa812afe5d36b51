"""The 256-byte text block: a block laid out by hand at the notes' offsets, and every refusal.

All people here are made up; region codes 99xxxx do not exist.
"""

from __future__ import annotations

from datetime import date

import pytest

from drivers.identity.errors import CardInvalid
from drivers.identity.ga467.sim import SimCard, synthetic_id_number
from drivers.identity.ga467.textblock import (
    TEXT_BLOCK_LEN,
    BadCheckDigit,
    CardDataInvalid,
    CardKind,
    Sex,
    UnsupportedCard,
    build_text_block,
    parse_text_block,
)
from hallkiosk.privacy import gb11643_check_digit

ID_NUMBER = "99010519491231039X"  # 17 digits, then the check character worked out below
assert gb11643_check_digit(ID_NUMBER[:17]) == "X"

FIELDS = {
    "name": "欧阳小明",
    "sex": "1",
    "nation_code": "01",
    "birth_date": "19491231",
    "address": "测试省模拟市示例区样板路1号",
    "id_number": ID_NUMBER,
    "authority": "模拟市公安局示例分局",
    "valid_from": "20150101",
    "valid_to": "长期",
}


def hand_block(**changes: str) -> bytes:
    """The block laid out from the table in the hardware notes, without the builder."""
    fields = {**FIELDS, **changes}
    block = bytearray(b"\x20\x00" * 128)
    offsets = {
        "name": 0,
        "sex": 30,
        "nation_code": 32,
        "birth_date": 36,
        "address": 52,
        "id_number": 122,
        "authority": 158,
        "valid_from": 188,
        "valid_to": 204,
        "kind_flag": 248,
    }
    for key, offset in offsets.items():
        raw = fields.get(key, "").encode("utf-16-le")
        block[offset : offset + len(raw)] = raw
    return bytes(block)


def test_the_hand_laid_block_parses_field_by_field() -> None:
    block = hand_block()
    assert len(block) == TEXT_BLOCK_LEN
    # spot checks of the layout itself: 欧 is U+6B27, the ID number starts at byte 122
    assert block[0:2] == b"\x27\x6b" and block[122:124] == b"9\x00" and block[30:32] == b"1\x00"
    text = parse_text_block(block)
    assert text.name == "欧阳小明"
    assert text.sex is Sex.MALE
    assert (text.nation_code, text.nation) == ("01", "汉")
    assert text.birth_date == date(1949, 12, 31)
    assert text.address == "测试省模拟市示例区样板路1号"
    assert text.id_number == ID_NUMBER
    assert text.authority == "模拟市公安局示例分局"
    assert text.valid_from == date(2015, 1, 1)
    assert text.valid_to is None  # 长期
    assert text.kind is CardKind.RESIDENT_ID


def test_the_builder_lays_out_exactly_what_the_notes_say() -> None:
    assert build_text_block(**FIELDS) == hand_block()
    with pytest.raises(ValueError):
        build_text_block(**{**FIELDS, "name": "名" * 16})  # 15 characters fit in 30 bytes


def test_a_dated_validity_and_a_female_card() -> None:
    number = synthetic_id_number("990203", date(1990, 2, 28), 124)
    text = parse_text_block(
        hand_block(
            sex="2",
            id_number=number,
            birth_date="19900228",
            valid_from="20100301",
            valid_to="20300301",
            nation_code="56",
        )
    )
    assert (text.sex, text.valid_to, text.nation) == (Sex.FEMALE, date(2030, 3, 1), "基诺")


def test_a_lower_case_x_is_read_as_the_check_character() -> None:
    assert parse_text_block(hand_block(id_number=ID_NUMBER.lower())).id_number == ID_NUMBER


def test_a_wrong_check_digit_is_refused_with_a_clear_message_and_no_number() -> None:
    wrong = ID_NUMBER[:17] + "5"
    with pytest.raises(BadCheckDigit) as caught:
        parse_text_block(hand_block(id_number=wrong))
    exc = caught.value
    assert isinstance(exc, CardInvalid) and exc.field == "ID number"
    assert "check digit" in str(exc) and "GB 11643" in str(exc)
    assert "身份证号码校验不通过" in exc.message_zh
    for text in (str(exc), repr(exc), exc.message_zh, exc.message_en):
        assert wrong not in text and wrong[:17] not in text and "990105" not in text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "张\x01三"}, "name"),
        ({"sex": "3"}, "sex"),
        ({"nation_code": "57"}, "nation"),
        ({"nation_code": ""}, "nation"),
        ({"birth_date": "1949123"}, "birth date"),
        ({"birth_date": "19490230"}, "birth date"),
        ({"birth_date": "１９４９１２３１"}, "birth date"),  # full-width digits
        ({"id_number": "9901051949123103"}, "ID number"),
        ({"id_number": "99010519491231039Y"}, "ID number"),
        ({"id_number": "٩9010519491231039X"}, "ID number"),  # an Arabic-Indic nine
        ({"birth_date": "19491230"}, "ID number"),  # differs from the number's birth date
        ({"valid_from": "2015010"}, "valid from"),
        ({"valid_to": "短期"}, "valid to"),
        ({"valid_from": "20200101", "valid_to": "20100101"}, "valid to"),
    ],
)
def test_malformed_fields_are_refused_naming_the_field(changes: dict[str, str], field: str) -> None:
    with pytest.raises(CardDataInvalid) as caught:
        parse_text_block(hand_block(**changes))
    assert caught.value.field == field


def test_a_block_that_is_not_ucs2_or_not_256_bytes() -> None:
    block = bytearray(hand_block())
    block[0:2] = b"\x00\xd8"  # a lone high surrogate
    with pytest.raises(CardDataInvalid, match="UCS-2"):
        parse_text_block(bytes(block))
    with pytest.raises(CardDataInvalid, match="255 bytes"):
        parse_text_block(hand_block()[:-1])


def test_card_kinds_that_share_the_reader() -> None:
    permit = parse_text_block(hand_block(kind_flag="J", nation_code=""))
    assert permit.kind is CardKind.RESIDENCE_PERMIT and permit.nation == ""
    with pytest.raises(UnsupportedCard):
        parse_text_block(hand_block(kind_flag="I"))


def test_card_text_repr_is_masked() -> None:
    text = parse_text_block(hand_block())
    for shown in (repr(text), str(text), f"{text}"):
        assert ID_NUMBER not in shown and "欧阳小明" not in shown
        assert "9901**********039X" in shown and "欧**明" in shown


def test_synthetic_cards_are_valid_made_up_and_stable() -> None:
    seen = set()
    for seed in range(300):
        card = SimCard.synthetic(seed)
        text = parse_text_block(card.text_block())
        assert text.id_number.startswith("99")  # no province has code 99
        assert text.valid_from.year >= 2004  # no 第二代 card is older
        assert text.sex is (Sex.MALE if int(text.id_number[16]) % 2 else Sex.FEMALE)
        seen.add(text.id_number)
    assert len(seen) == 300
    assert SimCard.synthetic(42) == SimCard.synthetic(42)
    assert "name_masked" in repr(SimCard.synthetic(42))
