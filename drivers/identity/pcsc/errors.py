"""Errors of the PC/SC backend, all under ``IdentityReaderError`` with plain zh/en messages.

No pyscard import: the kiosk catches these (e.g. ``StaffPinWrong``) whatever backend is set.
"""

from __future__ import annotations

from drivers.identity.errors import CardInvalid, CardReadFailed, IdentityReaderError, ReaderOffline
from drivers.identity.pcsc.apdu import describe_sw


class PcscServiceDown(ReaderOffline):
    """pcscd is not running (or just restarted): every context and handle is gone."""

    code = "pcscd_down"
    message_zh = "读卡服务未运行，请联系工作人员。"
    message_en = "The card reader service is not running. Please contact staff."


class NoReader(ReaderOffline):
    """pcscd runs but lists no matching reader: unplugged, or the wrong ``reader_name``."""

    code = "pcsc_no_reader"
    message_zh = "未找到读卡器，请联系工作人员。"
    message_en = "No card reader found. Please contact staff."


class PyscardMissing(ReaderOffline):
    code = "pyscard_missing"
    message_zh = "读卡软件未安装，请联系运维人员。"
    message_en = "The card reader software is not installed. Please contact ops."


class CardCommandFailed(CardReadFailed):
    """The card answered a command with an error status word; ``sw`` says which."""

    def __init__(self, step: str, sw: int) -> None:
        meaning = describe_sw(sw)
        self.step = step
        self.sw = sw
        super().__init__(
            f"{step}: card answered {sw:04X} ({meaning.code})",
            code=meaning.code,
            message_zh=meaning.message_zh,
            message_en=meaning.message_en,
        )


class ChipNotAnswering(CardReadFailed):
    """The chip hung and still did not answer after the field was cycled."""

    code = "card_not_answering"
    message_zh = "卡片没有响应，请拿开后重新放置。"
    message_en = "The card did not answer. Please take it away and place it again."


class UnsupportedCard(CardInvalid):
    code = "card_unsupported"
    message_zh = "不是本机支持的卡片，请使用身份证、市民卡或工作证。"
    message_en = (
        "This card is not supported here. Please use an ID card, citizen card or staff card."
    )


class NotAStaffCard(CardInvalid):
    code = "staff_card_required"
    message_zh = "请使用工作证登录。"
    message_en = "Please use a staff card to log in."


class StaffPinError(IdentityReaderError, PermissionError):
    code = "staff_pin_error"
    message_zh = "工作证密码验证失败。"
    message_en = "The staff card PIN was not accepted."


class StaffPinFormat(StaffPinError, ValueError):
    """Refused before it reaches the card, so a typo never costs a try."""

    code = "staff_pin_format"
    message_zh = "密码格式不对，请输入数字密码。"
    message_en = "That is not a valid PIN. Please enter digits only."


class StaffPinWrong(StaffPinError):
    code = "staff_pin_wrong"

    def __init__(self, tries_left: int) -> None:
        self.tries_left = tries_left
        meaning = describe_sw(0x63C0 | tries_left)
        super().__init__(
            f"wrong PIN, {tries_left} tries left",
            message_zh=meaning.message_zh,
            message_en=meaning.message_en,
        )


class StaffPinBlocked(StaffPinError):
    code = "staff_pin_blocked"
    message_zh = "工作证密码已锁定，请联系管理员解锁。"
    message_en = "The staff card PIN is locked. Please ask an administrator to unlock it."


class ChipHung(ChipNotAnswering):
    """The chip stopped answering (no status word, 6F 00, or a transport error).

    The reader catches this to cycle the field and try again; it reaches a caller only once
    the cycles are used up.
    """
