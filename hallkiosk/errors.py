"""Root of every hallkiosk exception.

Each package derives its own root from this one and mixes in a builtin, so callers can catch
either the domain error or the builtin (e.g. ``BoardTimeout(LockerError, TimeoutError)``).
Every error carries a plain message in Chinese and English for the person in front of the screen.
"""

from __future__ import annotations


class HallkioskError(Exception):
    """Base class. ``message_zh``/``message_en`` may be shown to a user; ``code`` is stable."""

    code: str = "error"
    message_zh: str = "系统故障，请联系工作人员。"
    message_en: str = "System fault. Please contact staff."

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        message_zh: str | None = None,
        message_en: str | None = None,
    ) -> None:
        super().__init__(detail or (message_en or self.message_en))
        if code is not None:
            self.code = code
        if message_zh is not None:
            self.message_zh = message_zh
        if message_en is not None:
            self.message_en = message_en

    @property
    def detail(self) -> str:
        return str(self)
