"""Errors of the hall's notification sender. Each mixes in a builtin so generic handlers work.

No message here ever carries a pickup password, a rendered SMS text or a raw phone number:
they are built from names, counts, HTTP statuses and gateway codes only (DESIGN §4).
"""

from __future__ import annotations

from hallkiosk.errors import HallkioskError


class NotifyError(HallkioskError):
    code = "notify_error"
    message_zh = "短信通知发送出现问题，已记录，稍后自动重试。"
    message_en = "A text message could not be sent. It is recorded and will be retried."


class NotifyConfigError(NotifyError, ValueError):
    """A credential file that cannot be read, or a backend that cannot start."""

    code = "notify_config_invalid"
    message_zh = "短信通知配置有误，请联系运维人员。"
    message_en = "The text-message settings are invalid. Please contact ops."


class InvalidPhone(NotifyError, ValueError):
    """Not a mainland mobile number (11 digits starting 13-19): it cannot receive an SMS."""

    code = "notify_invalid_phone"
    message_zh = "手机号码无效，无法发送短信，请核对号码。"
    message_en = "The mobile number is not valid, so no text message can be sent."


class TemplateError(NotifyError, ValueError):
    """Parameters that do not fit the message kind (missing, unknown, malformed)."""

    code = "notify_template_invalid"
    message_zh = "短信内容不完整，无法发送，请联系工作人员。"
    message_en = "The text message is incomplete and cannot be sent. Please contact staff."


class MessageTooLong(TemplateError):
    """The rendered SMS (with the sign name) is over ``max_sms_chars``."""

    code = "notify_message_too_long"
    message_zh = "短信内容过长，无法发送，请联系工作人员。"
    message_en = "The text message is too long to send. Please contact staff."

    def __init__(self, length: int, limit: int, kind: str) -> None:
        self.length = length
        self.limit = limit
        super().__init__(
            f"{kind}: the rendered SMS is {length} characters, over the limit of {limit} "
            "(sign name included); shorten the parameters or raise notify.max_sms_chars"
        )


class SendError(NotifyError):
    """One delivery attempt failed. ``detail`` is safe to log and store."""

    code = "notify_send_failed"


class TransientSendError(SendError, ConnectionError):
    """Worth retrying later: timeout, connection refused or reset, HTTP 408/429/5xx."""

    code = "notify_send_transient"


class PermanentSendError(SendError, ValueError):
    """Retrying cannot help: HTTP 4xx (not 408/429), an invalid-number code, a bad message."""

    code = "notify_send_permanent"
    message_zh = "短信无法送达，请联系工作人员核对手机号码。"
    message_en = "The text message cannot be delivered. Please ask staff to check the number."
