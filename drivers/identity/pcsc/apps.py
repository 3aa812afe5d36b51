"""The card apps: APDU exchanges that turn a card into an ``Identity``, over any transport.

``CardChannel`` wraps a ``transmit(c_apdu) -> r_apdu`` function: pyscard's SCardTransmit on a
real reader, or a virtual card's ``process`` in the simulator. So the simulator runs the very
exchanges a kiosk runs.

- ID card (第二代居民身份证) on a plain PC/SC reader: ``00 36 00 00 08`` → 8-byte chip serial.
  Identifies the card, not the person (no hash, no name).
- Citizen card (市民卡): SELECT AID, SELECT EF, READ BINARY of one record holding the ID number
  and the holder's name, laid out as the site's ``CitizenProfile`` says.
- Staff card: SELECT AID, SELECT EF, READ BINARY of the staff record; VERIFY for the PIN.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from drivers.identity.errors import CardInvalid, CardReadFailed
from drivers.identity.pcsc import apdu
from drivers.identity.pcsc.apdu import Command, Response
from drivers.identity.pcsc.errors import (
    CardCommandFailed,
    ChipHung,
    NotAStaffCard,
    StaffPinBlocked,
    StaffPinFormat,
    StaffPinWrong,
    UnsupportedCard,
)
from drivers.identity.pcsc.settings import (
    CardApp,
    CardFileProfile,
    CitizenProfile,
    FieldSpec,
    NameEncoding,
    PcscSettings,
    StaffProfile,
)
from drivers.identity.types import Identity, IdentitySource
from hallkiosk.privacy import (
    IdentityHasher,
    PrivacyError,
    mask_id_number,
    mask_name,
    normalise_id_number,
)

Transmit = Callable[[bytes], bytes]
STAFF_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_CHAINED_RESPONSES = 16  # 61 xx rounds before we call the card broken
_CITIZEN_ID_INVALID = {
    "code": "citizen_id_invalid",
    "message_zh": "市民卡上的证件号码无效，请联系发卡机构。",
    "message_en": "The ID number on this citizen card is not valid. Please contact the issuer.",
}


class _AppAbsent(Exception):
    """This card does not carry the app; the next app in ``settings.apps`` is tried."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


class CardChannel:
    """Sends commands, follows T=0 style 61 xx / 6C xx answers, and spots a hung chip."""

    def __init__(self, transmit: Transmit) -> None:
        self._transmit = transmit

    def send(self, command: Command) -> Response:
        response = self._once(command)
        if response.sw >> 8 == 0x6C:  # wrong Le: the card says how many bytes it has
            response = self._once(
                Command(
                    command.cla,
                    command.ins,
                    command.p1,
                    command.p2,
                    command.data,
                    (response.sw & 0xFF) or 256,
                )
            )
        data = bytearray(response.data)
        rounds = 0
        while response.sw >> 8 == 0x61:  # more data waiting: GET RESPONSE
            rounds += 1
            if rounds > MAX_CHAINED_RESPONSES:
                raise ChipHung("the card keeps asking for GET RESPONSE")
            response = self._once(apdu.get_response(response.sw & 0xFF))
            data += response.data
        return Response(bytes(data), response.sw)

    def _once(self, command: Command) -> Response:
        raw = self._transmit(command.to_bytes())
        if len(raw) < 2:
            raise ChipHung(f"answer of {len(raw)} bytes to {command.to_bytes().hex(' ')}")
        response = Response.parse(raw)
        if response.sw == 0x6F00:  # "no precise diagnosis": what a hung chip says on most readers
            raise ChipHung("the card answered 6F00")
        return response


def read_identity(channel: CardChannel, settings: PcscSettings, hasher: IdentityHasher) -> Identity:
    """Try each configured app in order; UnsupportedCard when none recognises the card."""
    refused: list[str] = []
    for app in settings.apps:
        try:
            return _read_app(app, channel, settings, hasher)
        except _AppAbsent as absent:
            refused.append(f"{app}:{absent.sw:04X}")
    raise UnsupportedCard("no card app recognised the card (" + ", ".join(refused) + ")")


def _read_app(
    app: CardApp, channel: CardChannel, settings: PcscSettings, hasher: IdentityHasher
) -> Identity:
    if app == "idcard":
        return read_id_chip(channel)
    if app == "citizen":
        return read_citizen(channel, settings.citizen, hasher)
    return read_staff(channel, settings.staff)


def read_id_chip(channel: CardChannel) -> Identity:
    response = channel.send(apdu.id_chip_serial())
    if not response.ok:
        raise _AppAbsent(response.sw)
    if len(response.data) != 8:
        raise CardReadFailed(f"chip serial of {len(response.data)} bytes, expected 8")
    return Identity(
        source=IdentitySource.PCSC_IDCARD,
        id_hash=None,
        id_masked=None,
        name_masked=None,
        chip_serial=response.data.hex().upper(),
    )


def read_citizen(channel: CardChannel, profile: CitizenProfile, hasher: IdentityHasher) -> Identity:
    record = _read_record(channel, profile, profile.record_length())
    raw_number = _field(record, profile.id_number).rstrip(b"\x00\x20\xff")
    try:
        # the raw number lives only in this frame: hashed and masked, never kept or logged
        number = normalise_id_number(raw_number.decode("ascii"))
    except (UnicodeDecodeError, PrivacyError):
        raise CardInvalid(
            "the citizen card's ID number is malformed or fails the GB 11643 check digit",
            **_CITIZEN_ID_INVALID,
        ) from None
    name = _decode_text(_field(record, profile.holder_name), profile.name_encoding)
    return Identity(
        source=IdentitySource.CITIZEN_CARD,
        id_hash=hasher.hash_id_number(number),
        id_masked=mask_id_number(number),
        name_masked=mask_name(name) if name else None,
        birth_date=_birth_date(number),
    )


def read_staff(channel: CardChannel, profile: StaffProfile) -> Identity:
    record = _read_record(channel, profile, profile.record_length())
    return _staff_identity(record, profile)


def verify_staff_pin(channel: CardChannel, profile: StaffProfile, pin: str) -> Identity:
    """VERIFY the PIN on the staff card in the field; the staff identity read in the same session.

    Reading the staff id in the same card session binds the PIN to that card: a card swapped
    between reading and PIN entry is caught.
    """
    check_pin_format(pin, profile)
    try:
        record = _read_record(channel, profile, profile.record_length())
    except _AppAbsent:
        raise NotAStaffCard("the card in the field is not a staff card") from None
    identity = _staff_identity(record, profile)
    response = channel.send(apdu.verify(pin.encode("ascii"), profile.pin_reference))
    _raise_for_pin(response.sw)
    return identity


def staff_pin_tries_left(channel: CardChannel, profile: StaffProfile) -> int | None:
    """VERIFY without data: tries left, 0 when blocked, None when already verified."""
    try:
        _read_record(channel, profile, profile.record_length())
    except _AppAbsent:
        raise NotAStaffCard("the card in the field is not a staff card") from None
    response = channel.send(apdu.verify(b"", profile.pin_reference))
    if response.ok:
        return None
    if response.sw == 0x6983:
        return 0
    if response.sw & 0xFFF0 == 0x63C0:
        return response.sw & 0x0F
    raise CardCommandFailed("VERIFY (retry counter)", response.sw)


def check_pin_format(pin: str, profile: StaffProfile) -> None:
    if not (
        pin.isascii()
        and pin.isdigit()
        and profile.pin_min_digits <= len(pin) <= profile.pin_max_digits
    ):
        raise StaffPinFormat(
            f"a PIN has {profile.pin_min_digits} to {profile.pin_max_digits} digits"
        )


def _raise_for_pin(sw: int) -> None:
    if sw == apdu.SW_OK:
        return
    if sw in (0x6983, 0x63C0):  # blocked, or this wrong try used the last one
        raise StaffPinBlocked("the card's PIN retry counter is exhausted")
    if sw & 0xFFF0 == 0x63C0:
        raise StaffPinWrong(sw & 0x0F)
    raise CardCommandFailed("VERIFY", sw)


def _read_record(channel: CardChannel, profile: CardFileProfile, length: int) -> bytes:
    selected = channel.send(apdu.select_aid(profile.aid_bytes()))
    if not selected.ok:
        raise _AppAbsent(selected.sw)
    fid = profile.fid_bytes()
    if fid is not None:
        ef = channel.send(apdu.select_ef(fid))
        if not ef.ok:
            raise CardCommandFailed("SELECT EF", ef.sw)
    response = channel.send(apdu.read_binary(0, length))
    if not response.ok:
        raise CardCommandFailed("READ BINARY", response.sw)
    if len(response.data) < length:
        raise CardReadFailed(f"record of {len(response.data)} bytes, expected {length}")
    return response.data


def _staff_identity(record: bytes, profile: StaffProfile) -> Identity:
    staff_id = _decode_text(_field(record, profile.staff_id), "utf-8")
    if not STAFF_ID_PATTERN.match(staff_id):
        raise CardInvalid("the staff id on the card is empty or has characters not allowed")
    name = _decode_text(_field(record, profile.holder_name), profile.name_encoding)
    return Identity(
        source=IdentitySource.STAFF_CARD,
        id_hash=None,
        id_masked=None,
        name_masked=mask_name(name) if name else None,
        staff_id=staff_id,
    )


def _field(record: bytes, spec: FieldSpec) -> bytes:
    return record[spec.offset : spec.end]


def _decode_text(raw: bytes, encoding: NameEncoding) -> str:
    """Decode a padded text field; padding is NUL, space or FF at the end."""
    if encoding == "utf-16-le":
        units = [raw[i : i + 2] for i in range(0, len(raw) - 1, 2)]
        while units and units[-1] in (b"\x00\x00", b"\x20\x00", b"\xff\xff"):
            units.pop()
        raw = b"".join(units)
    else:
        raw = raw.rstrip(b"\x00\x20\xff")
    try:
        return raw.decode(encoding).strip()
    except UnicodeDecodeError:
        raise CardInvalid(f"a text field is not valid {encoding}") from None


def _birth_date(number: str) -> date:
    try:
        return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise CardInvalid(
            "the ID number holds no valid birth date",
            **_CITIZEN_ID_INVALID,
        ) from None
