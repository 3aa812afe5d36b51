"""SW3, the GA 467 status byte: every code is OK or one typed error with plain zh/en words.

Each error class derives from the shared identity error a caller already handles (``NoCard``,
``CardReadFailed``, ``CardInvalid``, ``IdentityReaderError``), so the kiosk needs no GA 467
knowledge, and from ``Ga467StatusError``, which carries the raw ``sw3`` for diagnostics.

Codes from the hardware notes; ``0x23`` and ``0x91`` are from the GA 467 code table as well
(operation not permitted; no content, the reply of ``30 03`` for a card without an added address).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from drivers.identity.errors import CardInvalid, CardReadFailed, IdentityReaderError, NoCard
from drivers.identity.ga467.codec import UnexpectedReply

SW3_OK = 0x90
SW3_FIND_OK = 0x9F
SW3_NO_CONTENT = 0x91


class Ga467StatusError(IdentityReaderError):
    """The reader answered with a non-OK SW3."""

    code = "idreader_status"
    sw3: int = -1
    # True when resending the same command can help (the reader saw our frame damaged).
    retryable: bool = False

    def __init__(self, detail: str = "", *, sw3: int, message_zh: str, message_en: str) -> None:
        super().__init__(detail, message_zh=message_zh, message_en=message_en)
        self.sw3 = sw3


class RequestDamaged(Ga467StatusError):
    """0x10/0x11: the reader got our command with a bad checksum or length (line noise)."""

    code = "idreader_request_damaged"
    retryable = True


class CommandRefused(Ga467StatusError):
    """0x21/0x23: the reader refused the command; a driver/firmware mismatch, staff must look."""

    code = "idreader_command_refused"


class ReaderInternalError(Ga467StatusError):
    code = "idreader_internal_error"


class SamFault(Ga467StatusError):
    """0x60/0x66: the security module (SAM) failed its self-test or is not authorised."""

    code = "idreader_sam_fault"


class CardAuthFailed(Ga467StatusError, CardReadFailed):
    """0x31/0x32/0x33/0x47: mutual authentication between card and SAM did not complete."""

    code = "idcard_auth_failed"


class CardReadError(Ga467StatusError, CardReadFailed):
    """0x41 read failed, 0x81 select failed: usually the card moved; placing it again helps."""

    code = "idcard_read_failed"


class WrongCardType(Ga467StatusError, CardInvalid):
    """0x40: a card that is not an ID card (a bus card, a bank card)."""

    code = "idcard_wrong_type"


class CardNotFound(Ga467StatusError, NoCard):
    """0x80: no card on the reader."""

    code = "idcard_absent"


class UnknownStatus(Ga467StatusError):
    code = "idreader_unknown_status"


@dataclass(frozen=True)
class StatusInfo:
    sw3: int
    name: str  # short English name for logs and docs
    error: type[Ga467StatusError] | None  # None: success
    message_zh: str
    message_en: str


_RETRY_ZH = "读卡器通信出错，请稍后再试或联系工作人员。"
_RETRY_EN = "Communication with the card reader failed. Please try again or contact staff."
_PLACE_AGAIN_ZH = "读卡失败，请将身份证重新平放在感应区，不要移动。"
_PLACE_AGAIN_EN = (
    "The card could not be read. Please place it flat on the reader again and hold still."
)
_AUTH_ZH = "证件认证失败，请重新放置身份证；如仍失败，请联系工作人员。"
_AUTH_EN = "The card could not be verified. Please place it again; if it still fails, ask staff."

STATUS: Mapping[int, StatusInfo] = {
    info.sw3: info
    for info in (
        StatusInfo(0x90, "ok", None, "操作成功。", "Done."),
        StatusInfo(0x9F, "card found", None, "已找到证件。", "Card found."),
        StatusInfo(0x91, "no content", None, "没有内容。", "Nothing to read."),
        StatusInfo(0x10, "request checksum error", RequestDamaged, _RETRY_ZH, _RETRY_EN),
        StatusInfo(0x11, "request length error", RequestDamaged, _RETRY_ZH, _RETRY_EN),
        StatusInfo(
            0x21,
            "command error",
            CommandRefused,
            "读卡器不接受此命令，请联系工作人员。",
            "The card reader refused a command. Please contact staff.",
        ),
        StatusInfo(
            0x23,
            "operation not permitted",
            CommandRefused,
            "读卡器拒绝此操作，请联系工作人员。",
            "The card reader refused the operation. Please contact staff.",
        ),
        StatusInfo(
            0x24,
            "unrecognised error",
            ReaderInternalError,
            "读卡器内部出错，请联系工作人员。",
            "The card reader reported an internal error. Please contact staff.",
        ),
        StatusInfo(0x31, "card failed to authenticate the SAM", CardAuthFailed, _AUTH_ZH, _AUTH_EN),
        StatusInfo(0x32, "SAM failed to authenticate the card", CardAuthFailed, _AUTH_ZH, _AUTH_EN),
        StatusInfo(
            0x33,
            "verification error",
            CardAuthFailed,
            "证件信息校验失败，请重新放置身份证；如仍失败，请联系工作人员。",
            "The card data did not verify. Please place it again; if it still fails, ask staff.",
        ),
        StatusInfo(
            0x40,
            "wrong card type",
            WrongCardType,
            "无法识别此卡，请放置第二代居民身份证。",
            "This card is not recognised. Please use your resident ID card.",
        ),
        StatusInfo(0x41, "read failed", CardReadError, _PLACE_AGAIN_ZH, _PLACE_AGAIN_EN),
        StatusInfo(0x47, "random-number failure", CardAuthFailed, _AUTH_ZH, _AUTH_EN),
        StatusInfo(
            0x60,
            "SAM self-test failed",
            SamFault,
            "读卡器安全模块自检失败，请联系工作人员。",
            "The card reader's security module failed its self-test. Please contact staff.",
        ),
        StatusInfo(
            0x66,
            "reader not authorised",
            SamFault,
            "读卡器未经授权，请联系工作人员。",
            "The card reader is not authorised. Please contact staff.",
        ),
        StatusInfo(
            0x80,
            "no card found",
            CardNotFound,
            "未检测到证件，请将身份证放在感应区。",
            "No card found. Please place your ID card on the reader.",
        ),
        StatusInfo(0x81, "select failed", CardReadError, _PLACE_AGAIN_ZH, _PLACE_AGAIN_EN),
    )
}


def describe(sw3: int) -> str:
    """``0x41`` -> ``SW3 0x41 (read failed)``: for logs and error details."""
    info = STATUS.get(sw3)
    return f"SW3 0x{sw3:02X} ({info.name if info else 'unknown'})"


def is_ok(sw3: int) -> bool:
    info = STATUS.get(sw3)
    return info is not None and info.error is None


def status_error(sw3: int, command: str) -> Ga467StatusError:
    """The typed error for a non-OK SW3 (``UnknownStatus`` for a code not in the table)."""
    info = STATUS.get(sw3)
    if info is None:
        return UnknownStatus(
            f"{command}: {describe(sw3)}",
            sw3=sw3,
            message_zh="读卡器返回未知状态，请联系工作人员。",
            message_en="The card reader gave an unknown answer. Please contact staff.",
        )
    if info.error is None:
        raise ValueError(f"{describe(sw3)} is not an error")
    return info.error(
        f"{command}: {describe(sw3)}",
        sw3=sw3,
        message_zh=info.message_zh,
        message_en=info.message_en,
    )


def check(sw3: int, command: str, *, accept: frozenset[int] = frozenset({SW3_OK})) -> None:
    """Raise the typed error unless ``sw3`` is one of ``accept``.

    A success code that does not belong to this command (``9F`` to a select) means a stale or
    mismatched reply: that is a framing problem, retried like a garbled frame.
    """
    if sw3 in accept:
        return
    if is_ok(sw3):
        raise UnexpectedReply(f"{command}: unexpected {describe(sw3)}")
    raise status_error(sw3, command)
