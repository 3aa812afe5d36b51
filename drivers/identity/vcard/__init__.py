"""Virtual identity cards: synthetic ID card chip, citizen card and staff card.

Two ways to use them:

- ``python -m drivers.identity.vcard --card citizen``: a program that plugs the cards into a
  real pcscd through vsmartcard's vpcd driver (TCP, see ``runner``), driven by a control
  socket (``VcardControl``). Tests and benches use this with a real pcscd.
- ``drivers.identity.vcard.sim.SimIdentityReader``: the in-process ``reader = "sim"`` backend.
"""

from drivers.identity.vcard.cards import (
    CARD_KINDS,
    SYNTHETIC_CHIP_SERIAL,
    SYNTHETIC_ID_NUMBER,
    SYNTHETIC_NAME,
    SYNTHETIC_STAFF_ID,
    SYNTHETIC_STAFF_NAME,
    SYNTHETIC_STAFF_PIN,
    CardKind,
    CitizenCard,
    IdCardChip,
    StaffCard,
    VirtualCard,
)
from drivers.identity.vcard.control import VcardControl, VcardControlError

__all__ = [
    "CARD_KINDS",
    "SYNTHETIC_CHIP_SERIAL",
    "SYNTHETIC_ID_NUMBER",
    "SYNTHETIC_NAME",
    "SYNTHETIC_STAFF_ID",
    "SYNTHETIC_STAFF_NAME",
    "SYNTHETIC_STAFF_PIN",
    "CardKind",
    "CitizenCard",
    "IdCardChip",
    "StaffCard",
    "VcardControl",
    "VcardControlError",
    "VirtualCard",
]
