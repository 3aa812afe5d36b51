"""ISO 7816-4 short APDUs: building commands, splitting responses, and what a status word means.

No pyscard here: the card apps, the virtual cards and the in-process simulator share this module.
Every status word (SW1 SW2) maps to a plain message in both languages, for a technician's log
and, where it concerns the person (a wrong PIN), for the screen.
"""

from __future__ import annotations

from dataclasses import dataclass

SW_OK = 0x9000
CLA_ISO = 0x00
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_VERIFY = 0x20
INS_GET_RESPONSE = 0xC0
INS_ID_CHIP_SERIAL = 0x36  # 居民身份证专用集成电路序列号: 00 36 00 00 08
SELECT_BY_AID = 0x04
SELECT_EF_BY_FID = 0x02
SELECT_NO_RESPONSE = 0x0C


@dataclass(frozen=True)
class Command:
    """A short C-APDU. ``le`` None means no Le byte; 256 is sent as 00."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} must be one byte, not {value}")
        if len(self.data) > 255:
            raise ValueError("short APDUs carry at most 255 data bytes")
        if self.le is not None and not 1 <= self.le <= 256:
            raise ValueError(f"Le must be 1..256, not {self.le}")

    def to_bytes(self) -> bytes:
        out = bytearray((self.cla, self.ins, self.p1, self.p2))
        if self.data:
            out.append(len(self.data))
            out += self.data
        if self.le is not None:
            out.append(self.le & 0xFF)
        return bytes(out)

    @classmethod
    def parse(cls, raw: bytes) -> Command:
        """Decode a short C-APDU (cases 1-4). ValueError when it is malformed."""
        if len(raw) < 4:
            raise ValueError("a C-APDU has at least 4 bytes")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        lc = body[0]
        if lc == 0 or len(body) not in (1 + lc, 2 + lc):
            raise ValueError("Lc does not match the data length")
        data = bytes(body[1 : 1 + lc])
        le = (body[1 + lc] or 256) if len(body) == 2 + lc else None
        return cls(cla, ins, p1, p2, data, le)


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK

    @property
    def sw_hex(self) -> str:
        return f"{self.sw:04X}"

    @classmethod
    def parse(cls, raw: bytes) -> Response:
        if len(raw) < 2:
            raise ValueError("an R-APDU ends with two status bytes")
        return cls(bytes(raw[:-2]), (raw[-2] << 8) | raw[-1])

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")


def select_aid(aid: bytes) -> Command:
    return Command(CLA_ISO, INS_SELECT, SELECT_BY_AID, 0x00, aid)


def select_ef(fid: bytes) -> Command:
    return Command(CLA_ISO, INS_SELECT, SELECT_EF_BY_FID, SELECT_NO_RESPONSE, fid)


def read_binary(offset: int, length: int) -> Command:
    return Command(CLA_ISO, INS_READ_BINARY, (offset >> 8) & 0x7F, offset & 0xFF, le=length)


def verify(pin: bytes, reference: int) -> Command:
    """VERIFY; an empty ``pin`` asks only for the retry counter (answer 63 Cx)."""
    return Command(CLA_ISO, INS_VERIFY, 0x00, reference, pin)


def id_chip_serial() -> Command:
    return Command(CLA_ISO, INS_ID_CHIP_SERIAL, 0x00, 0x00, le=8)


def get_response(length: int) -> Command:
    return Command(CLA_ISO, INS_GET_RESPONSE, 0x00, 0x00, le=length or 256)


@dataclass(frozen=True)
class SwMeaning:
    code: str
    message_zh: str
    message_en: str


_CARD_FAULT_ZH = "卡片无法读取，请换一张卡或联系工作人员。"
_CARD_FAULT_EN = "The card cannot be read. Please use another card or contact staff."

# Exact status words first; the families (63Cx, 61xx, 6Cxx) are handled in describe_sw.
_SW_TABLE: dict[int, SwMeaning] = {
    0x9000: SwMeaning("sw_ok", "操作成功。", "Done."),
    0x6281: SwMeaning(
        "sw_data_corrupted", "卡内数据可能已损坏，请联系工作人员。", "The card data may be damaged."
    ),
    0x6282: SwMeaning(
        "sw_end_of_file", "卡内数据比预期短。", "The card holds less data than asked."
    ),
    0x6283: SwMeaning(
        "sw_app_deactivated", "卡片功能已停用，请联系发卡机构。", "This card function is disabled."
    ),
    0x6400: SwMeaning("sw_execution_error", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6581: SwMeaning("sw_memory_failure", "卡片存储故障，请联系发卡机构。", "The card is faulty."),
    0x6700: SwMeaning("sw_wrong_length", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6882: SwMeaning("sw_secure_messaging", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6982: SwMeaning(
        "sw_security_not_satisfied", "请先输入卡片密码。", "Please enter the card PIN first."
    ),
    0x6983: SwMeaning(
        "sw_pin_blocked",
        "卡片密码已锁定，请联系管理员解锁。",
        "The card PIN is locked. Please ask an administrator to unlock it.",
    ),
    0x6984: SwMeaning(
        "sw_reference_invalidated", "卡片密码已失效，请联系管理员。", "The card PIN is not valid."
    ),
    0x6985: SwMeaning("sw_conditions_not_satisfied", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6986: SwMeaning("sw_command_not_allowed", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6A80: SwMeaning("sw_wrong_data", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6A81: SwMeaning(
        "sw_function_not_supported", "此卡不支持该功能。", "This card does not support that."
    ),
    0x6A82: SwMeaning(
        "sw_not_found",
        "不是本机支持的卡片，请使用身份证、市民卡或工作证。",
        "This card is not supported here. Please use an ID card, citizen card or staff card.",
    ),
    0x6A83: SwMeaning("sw_record_not_found", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6A86: SwMeaning("sw_wrong_p1p2", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6A88: SwMeaning("sw_reference_not_found", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6B00: SwMeaning("sw_wrong_offset", _CARD_FAULT_ZH, _CARD_FAULT_EN),
    0x6D00: SwMeaning(
        "sw_ins_not_supported",
        "不是本机支持的卡片，请使用身份证、市民卡或工作证。",
        "This card is not supported here. Please use an ID card, citizen card or staff card.",
    ),
    0x6E00: SwMeaning(
        "sw_cla_not_supported",
        "不是本机支持的卡片，请使用身份证、市民卡或工作证。",
        "This card is not supported here. Please use an ID card, citizen card or staff card.",
    ),
    0x6F00: SwMeaning(
        "sw_no_diagnosis", "卡片没有响应，请重新放置。", "The card did not answer. Place it again."
    ),
}


def describe_sw(sw: int) -> SwMeaning:
    """A plain zh/en meaning for any status word; unknown ones get a generic card fault."""
    if sw in _SW_TABLE:
        return _SW_TABLE[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        tries = sw2 & 0x0F
        if tries == 0:
            return _SW_TABLE[0x6983]
        return SwMeaning(
            "sw_pin_wrong",
            f"密码错误，还可以再试 {tries} 次。",
            f"Wrong PIN. {tries} {'try' if tries == 1 else 'tries'} left.",
        )
    if sw1 == 0x61:
        return SwMeaning("sw_more_data", "卡片还有数据待读取。", "The card has more data to send.")
    if sw1 == 0x6C:
        return SwMeaning("sw_wrong_le", _CARD_FAULT_ZH, _CARD_FAULT_EN)
    return SwMeaning(f"sw_{sw:04x}", _CARD_FAULT_ZH, _CARD_FAULT_EN)
