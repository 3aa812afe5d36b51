"""PC/SC identity readers through pcscd (pyscard, imported lazily by ``reader``/``scard``).

    from drivers.identity.pcsc.reader import PcscReader
    reader = PcscReader(PcscSettings(), hasher)

Kept import-light on purpose: ``drivers.identity`` imports the settings and errors from here,
and ``reader`` imports ``drivers.identity``.
"""

from drivers.identity.pcsc.errors import (
    CardCommandFailed,
    ChipNotAnswering,
    NoReader,
    NotAStaffCard,
    PcscServiceDown,
    PyscardMissing,
    StaffPinBlocked,
    StaffPinError,
    StaffPinFormat,
    StaffPinWrong,
    UnsupportedCard,
)
from drivers.identity.pcsc.settings import CitizenProfile, PcscSettings, StaffProfile

__all__ = [
    "CardCommandFailed",
    "ChipNotAnswering",
    "CitizenProfile",
    "NoReader",
    "NotAStaffCard",
    "PcscServiceDown",
    "PcscSettings",
    "PyscardMissing",
    "StaffPinBlocked",
    "StaffPinError",
    "StaffPinFormat",
    "StaffPinWrong",
    "StaffProfile",
    "UnsupportedCard",
]
