"""The 256-byte text block of a 第二代居民身份证: UCS-2 little-endian, padded with spaces.

``parse_text_block`` checks every field and raises ``CardInvalid`` subclasses only; its messages
name the field, never its value. ``CardText`` holds the raw name and number, so it lives only as
long as it takes to hash and mask them, and its repr shows masked forms.

``build_text_block`` makes synthetic blocks for tests and the simulator. It checks sizes, not
content, so tests can build bad blocks too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from drivers.identity.errors import CardInvalid
from hallkiosk.privacy import gb11643_check_digit, mask_id_number, mask_name

TEXT_BLOCK_LEN = 256
LONG_TERM = "长期"  # valid-to of cards issued at 46 or older

# (offset, size in bytes) per field, from the hardware notes
NAME = (0, 30)
SEX = (30, 2)
NATION = (32, 4)
BIRTH = (36, 16)
ADDRESS = (52, 70)
ID_NUMBER = (122, 36)
AUTHORITY = (158, 30)
VALID_FROM = (188, 16)
VALID_TO = (204, 16)
# 证件类型标识 of the later card kinds read by the same reader: "J" 港澳台居民居住证 (the fields we
# read sit where a resident card has them), "I" 外国人永久居留身份证 (a different layout).
KIND_FLAG = (248, 2)

_DIGITS8 = re.compile(r"[0-9]{8}")
_ID_FORMAT = re.compile(r"[0-9]{17}[0-9X]")
_PAD = " \x00"
# C0 and C1 control characters; anything else (full-width space, the · in 买买提·艾力) is text
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# in GB 3304 order, as the table prints them
_NATION_NAMES = (  # noqa: SIM905
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 "
    "高山 拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 "
    "普米 塔吉克 怒 乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 "
    "珞巴 基诺"
).split()
# GB 3304 codes: 01-56, 97 other, 98 foreign-born Chinese citizen
NATIONS: Mapping[str, str] = {
    **{f"{n:02d}": name for n, name in enumerate(_NATION_NAMES, start=1)},
    "97": "其他",
    "98": "外国血统中国籍人士",
}


class Sex(StrEnum):
    """GB/T 2261.1 codes."""

    UNKNOWN = "0"
    MALE = "1"
    FEMALE = "2"
    UNSPECIFIED = "9"


_SEX_CODES = frozenset(sex.value for sex in Sex)


class CardKind(StrEnum):
    RESIDENT_ID = "resident_id"  # 第二代居民身份证
    RESIDENCE_PERMIT = "residence_permit"  # 港澳台居民居住证 (flag "J")


class CardDataInvalid(CardInvalid):
    """A field of the text block is missing or malformed; ``field`` names it."""

    code = "idcard_data_invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"card text block: {field}: {problem}")
        self.field = field


class BadCheckDigit(CardDataInvalid):
    code = "idcard_bad_check_digit"
    message_zh = "身份证号码校验不通过，证件信息可能已损坏，请联系工作人员。"
    message_en = (
        "The ID number on the card fails its check. The card may be damaged. Please ask staff."
    )


class UnsupportedCard(CardInvalid):
    code = "idcard_unsupported"
    message_zh = "暂不支持此类证件，请使用第二代居民身份证或联系工作人员。"
    message_en = "This kind of card is not supported. Please use a resident ID card or ask staff."


@dataclass(frozen=True, repr=False, slots=True)
class CardText:
    """The fields we read. Raw name and number: hash and mask them, then drop this value."""

    name: str
    sex: Sex
    nation_code: str  # "" on a residence permit
    birth_date: date
    address: str
    id_number: str  # 18 characters, check digit verified
    authority: str
    valid_from: date
    valid_to: date | None  # None: 长期 (no end)
    kind: CardKind = CardKind.RESIDENT_ID

    @property
    def nation(self) -> str:
        return NATIONS.get(self.nation_code, "")

    def __repr__(self) -> str:
        return (
            f"CardText(name={mask_name(self.name)!r}, id_number={mask_id_number(self.id_number)!r},"
            f" kind={self.kind.value})"
        )

    __str__ = __repr__


def parse_text_block(block: bytes) -> CardText:
    if len(block) != TEXT_BLOCK_LEN:
        raise CardDataInvalid("block", f"is {len(block)} bytes, not {TEXT_BLOCK_LEN}")
    flag = _text(block, KIND_FLAG, "card kind")
    if flag == "I":
        raise UnsupportedCard("card text block: a foreigner's permanent residence card (flag I)")
    kind = CardKind.RESIDENCE_PERMIT if flag == "J" else CardKind.RESIDENT_ID

    name = _text(block, NAME, "name")
    if not name:
        raise CardDataInvalid("name", "is empty")
    sex_code = _text(block, SEX, "sex")
    if sex_code not in _SEX_CODES:
        raise CardDataInvalid("sex", "is not a GB/T 2261.1 code")
    nation_code = _text(block, NATION, "nation")
    if nation_code not in NATIONS and not (kind is CardKind.RESIDENCE_PERMIT and not nation_code):
        raise CardDataInvalid("nation", "is not a GB 3304 code")
    birth_text = _text(block, BIRTH, "birth date")
    birth_date = _date(birth_text, "birth date")
    address = _text(block, ADDRESS, "address")
    id_number = _id_number(_text(block, ID_NUMBER, "ID number"))
    if id_number[6:14] != birth_text:
        raise CardDataInvalid("ID number", "its birth date differs from the birth date field")
    authority = _text(block, AUTHORITY, "issuing authority")
    valid_from = _date(_text(block, VALID_FROM, "valid from"), "valid from")
    valid_to_text = _text(block, VALID_TO, "valid to")
    valid_to = None if valid_to_text == LONG_TERM else _date(valid_to_text, "valid to")
    if valid_to is not None and valid_to < valid_from:
        raise CardDataInvalid("valid to", "is before valid from")
    return CardText(
        name=name,
        sex=Sex(sex_code),
        nation_code=nation_code,
        birth_date=birth_date,
        address=address,
        id_number=id_number,
        authority=authority,
        valid_from=valid_from,
        valid_to=valid_to,
        kind=kind,
    )


def build_text_block(
    *,
    name: str,
    sex: str,
    nation_code: str,
    birth_date: str,
    address: str,
    id_number: str,
    authority: str,
    valid_from: str,
    valid_to: str,
    kind_flag: str = "",
) -> bytes:
    """A synthetic block; dates as ``YYYYMMDD`` text, ``valid_to`` may be ``长期``."""
    block = bytearray(" ".encode("utf-16-le") * (TEXT_BLOCK_LEN // 2))
    for (offset, size), value in (
        (NAME, name),
        (SEX, sex),
        (NATION, nation_code),
        (BIRTH, birth_date),
        (ADDRESS, address),
        (ID_NUMBER, id_number),
        (AUTHORITY, authority),
        (VALID_FROM, valid_from),
        (VALID_TO, valid_to),
        (KIND_FLAG, kind_flag),
    ):
        raw = value.encode("utf-16-le")
        if len(raw) > size:
            raise ValueError(f"a field at offset {offset} holds {size // 2} characters at most")
        block[offset : offset + len(raw)] = raw
    return bytes(block)


def _text(block: bytes, where: tuple[int, int], field: str) -> str:
    offset, size = where
    try:
        value = block[offset : offset + size].decode("utf-16-le")
    except UnicodeDecodeError:
        raise CardDataInvalid(field, "is not valid UCS-2 text") from None
    value = value.strip(_PAD)
    if _CONTROL.search(value):
        raise CardDataInvalid(field, "holds control characters")
    return value


def _date(text: str, field: str) -> date:
    if not _DIGITS8.fullmatch(text):
        raise CardDataInvalid(field, "is not a YYYYMMDD date")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise CardDataInvalid(field, "is not a calendar date") from None


def _id_number(text: str) -> str:
    text = text.upper()  # a lower-case x is still the check character 10
    if not _ID_FORMAT.fullmatch(text):
        raise CardDataInvalid("ID number", "is not 17 digits and a check character")
    if gb11643_check_digit(text[:17]) != text[17]:
        raise BadCheckDigit("ID number", "the GB 11643 check digit does not match")
    return text
