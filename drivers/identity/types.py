"""The one value every identity reader yields.

It never holds a raw ID number: only the keyed hash (``hallkiosk.privacy.IdentityHasher``) and the
masked form. ``birth_date`` stays in memory for the elderly green channel and is never stored or
published; callers drop the whole value when the screen times out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class IdentitySource(StrEnum):
    GA467 = "ga467"  # SAM reader: name + ID number from a 第二代居民身份证
    PCSC_IDCARD = "pcsc_idcard"  # plain PC/SC reader: the ID card's chip serial only
    CITIZEN_CARD = "citizen_card"  # 市民卡 over PC/SC
    STAFF_CARD = "staff_card"  # hall staff card over PC/SC (PIN checked separately)


@dataclass(frozen=True)
class Identity:
    source: IdentitySource
    # HMAC-SHA256 hex of the normalised ID number; None when the card gives no number (chip serial).
    id_hash: str | None
    id_masked: str | None  # 3301**********1234
    name_masked: str | None  # 张*三
    chip_serial: str | None = None  # upper-case hex, e.g. the ID card's 8-byte 00 36 serial
    staff_id: str | None = None  # staff cards only
    birth_date: date | None = None

    def age_years(self, on: date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return on.year - born.year - ((on.month, on.day) < (born.month, born.day))

    def describe(self) -> dict[str, str | None]:
        """Masked fields only: safe for logs, hwctl and screens."""
        return {
            "source": self.source.value,
            "id_masked": self.id_masked,
            "name_masked": self.name_masked,
            "chip_serial": self.chip_serial,
            "staff_id": self.staff_id,
        }
