"""Errors of the identity readers. Each carries a plain message in both languages."""

from __future__ import annotations

from drivers.errors import DriverError


class IdentityReaderError(DriverError):
    code = "idreader_fault"
    message_zh = "读卡器故障，请联系工作人员。"
    message_en = "The card reader has a fault. Please contact staff."


class ReaderOffline(IdentityReaderError, ConnectionError):
    code = "idreader_offline"
    message_zh = "读卡器未连接，请联系工作人员。"
    message_en = "The card reader is not connected. Please contact staff."


class ReaderTimeout(IdentityReaderError, TimeoutError):
    code = "idreader_timeout"
    message_zh = "读卡器无响应，请稍后再试。"
    message_en = "The card reader did not answer. Please try again."


class NoCard(IdentityReaderError, LookupError):
    code = "idcard_absent"
    message_zh = "未检测到证件，请将身份证放在感应区。"
    message_en = "No card found. Please place your ID card on the reader."


class CardReadFailed(IdentityReaderError, IOError):
    code = "idcard_read_failed"
    message_zh = "读卡失败，请重新放置证件。"
    message_en = "The card could not be read. Please place it again."


class CardInvalid(IdentityReaderError, ValueError):
    code = "idcard_invalid"
    message_zh = "证件信息无效，请使用有效证件或联系工作人员。"
    message_en = "The card data is not valid. Please use a valid card or contact staff."
