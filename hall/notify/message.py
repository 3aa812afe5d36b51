"""One SMS on its way out, and the phone-number rules (normalise, mask).

An ``OutgoingMessage`` exists only in memory, for the length of one send: it may hold the
rendered text with the pickup password in it. Its ``repr`` shows the id, kind and masked phone
and nothing else, so a stray log line or traceback cannot print the secret or the number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from hall.notify.errors import InvalidPhone
from hall.notify.templates import Lang

# Mainland mobile numbers: 11 digits, 13x-19x. Landlines cannot receive SMS.
_MOBILE_RE: Final = re.compile(r"^1[3-9][0-9]{9}$")
_SEPARATORS: Final = str.maketrans("", "", " -()")


def normalise_phone(phone: str) -> str:
    """``+86 138-1234-5678`` -> ``13812345678``. The error never quotes the number."""
    value = phone.strip().translate(_SEPARATORS)
    for prefix in ("+86", "0086", "86"):
        if value.startswith(prefix) and len(value) == len(prefix) + 11:
            value = value[len(prefix) :]
            break
    if not _MOBILE_RE.fullmatch(value):
        raise InvalidPhone("not a mainland mobile number (11 digits starting 13-19)")
    return value


def mask_phone(phone: str) -> str:
    """``13812345678`` -> ``138****5678``: the only form a phone number is logged or shown in."""
    value = phone.strip()
    if len(value) < 8:
        return "*" * len(value)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """What a sender delivers. ``text`` is final (sign name not included); ``template_id`` and
    ``template_params`` are set when the gateway renders its own approved template."""

    id: int  # the queue row
    out_id: str  # our unique reference, sent to the gateway so it can drop a repeat
    kind: str
    phone: str = field(repr=False)
    text: str = field(repr=False)
    lang: Lang = "zh"
    template_id: str | None = None
    template_params: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    def __repr__(self) -> str:
        return (
            f"OutgoingMessage(id={self.id}, out_id={self.out_id!r}, kind={self.kind!r}, "
            f"phone={self.phone_masked!r}, lang={self.lang!r}, template_id={self.template_id!r})"
        )

    __str__ = __repr__
