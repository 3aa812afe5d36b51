"""Virtual cards: an ID card chip, a citizen card and a staff card, answering C-APDUs.

Synthetic data only. The default ID number uses region code 990101, which no real person holds
(no province code 99 exists), a birth date of 1950-01-01 and a valid GB 11643 check digit. The
citizen and staff cards lay out their records exactly as the site's profiles say
(``drivers.identity.pcsc.settings``), so a reader configured with a profile reads a card built
from the same profile.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

from drivers.identity.pcsc import apdu
from drivers.identity.pcsc.apdu import Command, Response
from drivers.identity.pcsc.settings import (
    CardFileProfile,
    CitizenProfile,
    FieldSpec,
    NameEncoding,
    StaffProfile,
)
from hallkiosk.privacy import gb11643_check_digit

CardKind = Literal["idcard", "citizen", "staff"]
CARD_KINDS: tuple[CardKind, ...] = ("idcard", "citizen", "staff")

SYNTHETIC_ID_FIRST17 = "99010119500101001"  # region 990101: not assigned to anyone
SYNTHETIC_ID_NUMBER = SYNTHETIC_ID_FIRST17 + gb11643_check_digit(SYNTHETIC_ID_FIRST17)
SYNTHETIC_NAME = "李测试"
SYNTHETIC_CHIP_SERIAL = "A1B2C3D4E5F60718"
SYNTHETIC_STAFF_ID = "S0001234"
SYNTHETIC_STAFF_NAME = "王工作"
SYNTHETIC_STAFF_PIN = "123456"
STAFF_PIN_TRIES = 3

SW_OK = apdu.SW_OK
SW_NOT_FOUND = 0x6A82
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_WRONG_P1P2 = 0x6A86
SW_WRONG_LENGTH = 0x6700
SW_NOT_ALLOWED = 0x6986
SW_WRONG_OFFSET = 0x6B00
SW_END_OF_FILE = 0x6282
SW_BLOCKED = 0x6983
SW_REFERENCE_NOT_FOUND = 0x6A88
SW_HUNG = 0x6F00


def contactless_atr(historical: bytes) -> bytes:
    """A PC/SC part 3 style ATR for a contactless card: 3B 8n 80 01 <historical> TCK (T=1)."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    body = bytes((0x8 << 4 | len(historical), 0x80, 0x01)) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes((tck,))


@dataclass
class CardLog:
    """What the card saw, in order: ('on'|'off'|'reset', b'') or ('apdu', c_apdu).

    Indexes are absolute (``total``), so a reader of ``since(n)`` is not confused when old
    entries are dropped past ``limit``.
    """

    entries: list[tuple[str, bytes]] = field(default_factory=list)
    dropped: int = 0
    limit: int = 2_000

    @property
    def total(self) -> int:
        return self.dropped + len(self.entries)

    def add(self, kind: str, data: bytes = b"") -> None:
        self.entries.append((kind, data))
        if len(self.entries) > self.limit:
            excess = len(self.entries) - self.limit
            del self.entries[:excess]
            self.dropped += excess

    def since(self, index: int) -> list[tuple[str, bytes]]:
        return self.entries[max(0, index - self.dropped) :]


class VirtualCard(ABC):
    kind: CardKind

    def __init__(self, atr: bytes, log: CardLog | None = None) -> None:
        self.atr = atr
        self.powered = False
        # A hung chip answers 6F 00 to everything until its power is cycled or it is reset.
        self.hung = False
        self.log = log if log is not None else CardLog()

    def power_on(self) -> None:
        self.log.add("on")
        self.powered = True
        self.hung = False
        self.on_reset()

    def power_off(self) -> None:
        self.log.add("off")
        self.powered = False

    def reset(self) -> None:
        self.log.add("reset")
        self.powered = True
        self.hung = False
        self.on_reset()

    def process(self, raw: bytes) -> bytes:
        """One C-APDU in, one R-APDU out (data + SW). Never raises."""
        self.log.add("apdu", raw)
        if self.hung:
            return SW_HUNG.to_bytes(2, "big")
        try:
            command = Command.parse(raw)
        except ValueError:
            return SW_WRONG_LENGTH.to_bytes(2, "big")
        if command.cla != apdu.CLA_ISO:
            return SW_CLA_NOT_SUPPORTED.to_bytes(2, "big")
        return self.answer(command).to_bytes()

    def on_reset(self) -> None:  # noqa: B027 - a hook; most cards keep no session state
        """Forget the selected application and any verified PIN (a new card session)."""

    @abstractmethod
    def answer(self, command: Command) -> Response: ...


def _sw(sw: int) -> Response:
    return Response(b"", sw)


class IdCardChip(VirtualCard):
    """A 第二代居民身份证 chip as a plain PC/SC reader sees it: only ``00 36 00 00 08``."""

    kind: CardKind = "idcard"

    def __init__(self, serial_hex: str = SYNTHETIC_CHIP_SERIAL) -> None:
        serial = bytes.fromhex(serial_hex)
        if len(serial) != 8:
            raise ValueError("an ID card chip serial has 8 bytes")
        # ISO 14443-B: ATQB application data 00 00 00 00 (the PUPI is all zeros on these cards)
        super().__init__(contactless_atr(bytes.fromhex("0000000000718100")))
        self.serial = serial

    def answer(self, command: Command) -> Response:
        if command.ins == apdu.INS_ID_CHIP_SERIAL:
            if (command.p1, command.p2) != (0, 0):
                return _sw(SW_WRONG_P1P2)
            if command.le != 8:
                return _sw(0x6C08)
            return Response(self.serial, SW_OK)
        if command.ins == apdu.INS_SELECT:
            return _sw(SW_NOT_FOUND)
        return _sw(SW_INS_NOT_SUPPORTED)


class _FileCard(VirtualCard):
    """One application (by AID) with one transparent EF holding a fixed record."""

    def __init__(self, atr: bytes, profile: CardFileProfile, record: bytes) -> None:
        super().__init__(atr)
        self.profile = profile
        self.record = record
        self._app_selected = False
        self._ef_selected = False

    def on_reset(self) -> None:
        self._app_selected = False
        self._ef_selected = False

    def answer(self, command: Command) -> Response:
        if command.ins == apdu.INS_SELECT:
            return self._select(command)
        if command.ins == apdu.INS_READ_BINARY:
            return self._read_binary(command)
        return self.other(command)

    def other(self, command: Command) -> Response:
        return _sw(SW_INS_NOT_SUPPORTED)

    def _select(self, command: Command) -> Response:
        if command.p1 == apdu.SELECT_BY_AID:
            self._app_selected = command.data == self.profile.aid_bytes()
            self._ef_selected = self._app_selected and self.profile.ef_fid is None
            return _sw(SW_OK if self._app_selected else SW_NOT_FOUND)
        if command.p1 == apdu.SELECT_EF_BY_FID:
            if not self._app_selected or command.data != self.profile.fid_bytes():
                return _sw(SW_NOT_FOUND)
            self._ef_selected = True
            return _sw(SW_OK)
        return _sw(SW_WRONG_P1P2)

    def _read_binary(self, command: Command) -> Response:
        if not self._ef_selected:
            return _sw(SW_NOT_ALLOWED)
        offset = (command.p1 << 8) | command.p2
        if offset >= len(self.record):
            return _sw(SW_WRONG_OFFSET)
        wanted = command.le or 256
        chunk = self.record[offset : offset + wanted]
        return Response(
            chunk, SW_OK if len(chunk) == wanted or command.le == 256 else SW_END_OF_FILE
        )


def _put(record: bytearray, spec: FieldSpec, value: bytes, pad: bytes = b"\x20") -> None:
    if len(value) > spec.length:
        raise ValueError(f"{len(value)} bytes do not fit a field of {spec.length}")
    padding = (pad * spec.length)[: spec.length - len(value)]
    record[spec.offset : spec.end] = value + padding


def _put_text(record: bytearray, spec: FieldSpec, text: str, encoding: NameEncoding) -> None:
    # spaces in the field's own encoding: a UCS-2 field pads with 20 00, not 20 20
    _put(record, spec, text.encode(encoding), " ".encode(encoding))


class CitizenCard(_FileCard):
    kind: CardKind = "citizen"

    def __init__(
        self,
        profile: CitizenProfile | None = None,
        id_number: str = SYNTHETIC_ID_NUMBER,
        name: str = SYNTHETIC_NAME,
    ) -> None:
        profile = profile or CitizenProfile()
        record = bytearray(b"\x20" * profile.record_length())
        # written as given (even a wrong check digit), so tests can hand the reader a bad card
        _put(record, profile.id_number, id_number.encode("ascii"))
        _put_text(record, profile.holder_name, name, profile.name_encoding)
        super().__init__(contactless_atr(b"HKCITZ"), profile, bytes(record))


class StaffCard(_FileCard):
    kind: CardKind = "staff"

    def __init__(
        self,
        profile: StaffProfile | None = None,
        staff_id: str = SYNTHETIC_STAFF_ID,
        name: str = SYNTHETIC_STAFF_NAME,
        pin: str = SYNTHETIC_STAFF_PIN,
        pin_tries: int = STAFF_PIN_TRIES,
    ) -> None:
        profile = profile or StaffProfile()
        record = bytearray(b"\x20" * profile.record_length())
        _put(record, profile.staff_id, staff_id.encode("ascii"))
        _put_text(record, profile.holder_name, name, profile.name_encoding)
        super().__init__(contactless_atr(b"HKSTAF"), profile, bytes(record))
        if not 1 <= pin_tries <= 15:
            raise ValueError("pin_tries must be 1..15 (it is reported in one nibble)")
        self.staff_profile = profile
        self.pin = pin.encode("ascii")
        self.pin_tries_max = pin_tries
        self.pin_tries_left = pin_tries
        self.pin_verified = False

    def on_reset(self) -> None:
        super().on_reset()
        self.pin_verified = False

    def other(self, command: Command) -> Response:
        if command.ins != apdu.INS_VERIFY:
            return super().other(command)
        if not self._app_selected:
            return _sw(SW_NOT_ALLOWED)
        if command.p1 != 0 or command.p2 != self.staff_profile.pin_reference:
            return _sw(SW_REFERENCE_NOT_FOUND)
        if self.pin_tries_left == 0:
            return _sw(SW_BLOCKED)
        if not command.data:  # retry counter query
            return _sw(SW_OK if self.pin_verified else 0x63C0 | self.pin_tries_left)
        if command.data == self.pin:
            self.pin_tries_left = self.pin_tries_max
            self.pin_verified = True
            return _sw(SW_OK)
        self.pin_verified = False
        self.pin_tries_left -= 1
        return _sw(0x63C0 | self.pin_tries_left)

    def unblock(self) -> None:
        """What an administrator's unblock does: the retry counter back to its maximum."""
        self.pin_tries_left = self.pin_tries_max
