"""Settings of the PC/SC backend, including the per-city card profiles.

A city's citizen card (市民卡) and a hall's staff card differ in AID, file and record layout, so
those are data here, not code. The defaults are the project's synthetic demo profiles, which the
virtual cards (``drivers.identity.vcard``) also use; a site overrides them in its TOML.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, model_validator

from hallkiosk.config import StrictModel

CardApp = Literal["idcard", "citizen", "staff"]
NameEncoding = Literal["gbk", "utf-8", "utf-16-le"]

# ISO 7816-4: an AID is 5 to 16 bytes; a file id 2 bytes.
AidHex = Annotated[str, Field(pattern=r"^(?:[0-9A-Fa-f]{2}){5,16}$")]
FidHex = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{4}$")]


def _list_to_tuple(value: object) -> object:
    # TOML gives lists; the frozen model keeps tuples (strict mode refuses the list otherwise)
    return tuple(value) if isinstance(value, list) else value


class FieldSpec(StrictModel):
    """Where a field sits in the record that READ BINARY returns."""

    offset: Annotated[int, Field(ge=0, le=254)]
    length: Annotated[int, Field(ge=1, le=255)]

    @property
    def end(self) -> int:
        return self.offset + self.length


class CardFileProfile(StrictModel):
    """SELECT the application by AID, optionally SELECT an EF by file id, READ BINARY from 0."""

    aid: AidHex
    ef_fid: FidHex | None = None
    holder_name: FieldSpec
    name_encoding: NameEncoding = "gbk"

    def aid_bytes(self) -> bytes:
        return bytes.fromhex(self.aid)

    def fid_bytes(self) -> bytes | None:
        return None if self.ef_fid is None else bytes.fromhex(self.ef_fid)


class CitizenProfile(CardFileProfile):
    """``[...pcsc.citizen]``. Default: synthetic demo city (AID F0 48 4B 43 49 54 5A 01)."""

    aid: AidHex = "F0484B4349545A01"
    ef_fid: FidHex | None = "0015"
    id_number: FieldSpec = FieldSpec(offset=0, length=18)  # ASCII, GB 11643 check digit
    holder_name: FieldSpec = FieldSpec(offset=18, length=30)

    @model_validator(mode="after")
    def _fits(self) -> CitizenProfile:
        if self.id_number.length != 18:
            raise ValueError("id_number.length must be 18 (a resident ID number)")
        if max(self.id_number.end, self.holder_name.end) > 255:
            raise ValueError("the record must fit one READ BINARY (255 bytes)")
        return self

    def record_length(self) -> int:
        return max(self.id_number.end, self.holder_name.end)


class StaffProfile(CardFileProfile):
    """``[...pcsc.staff]``. Default: synthetic hall staff card (AID F0 48 4B 53 54 41 46 46)."""

    aid: AidHex = "F0484B5354414646"
    ef_fid: FidHex | None = "0016"
    staff_id: FieldSpec = FieldSpec(offset=0, length=16)  # ASCII, space or NUL padded
    holder_name: FieldSpec = FieldSpec(offset=16, length=30)
    # VERIFY 00 20 00 P2: P2 is the card's PIN reference (00 on the demo card)
    pin_reference: Annotated[int, Field(ge=0, le=255)] = 0x00
    pin_min_digits: Annotated[int, Field(ge=4, le=12)] = 4
    pin_max_digits: Annotated[int, Field(ge=4, le=12)] = 8

    @model_validator(mode="after")
    def _fits(self) -> StaffProfile:
        if self.pin_min_digits > self.pin_max_digits:
            raise ValueError("pin_min_digits must not exceed pin_max_digits")
        if max(self.staff_id.end, self.holder_name.end) > 255:
            raise ValueError("the record must fit one READ BINARY (255 bytes)")
        return self

    def record_length(self) -> int:
        return max(self.staff_id.end, self.holder_name.end)


class PcscSettings(StrictModel):
    """``[kiosk.identity.pcsc]``: which readers, which card apps, and the watch's timing."""

    # A substring of the PC/SC reader name (e.g. "ACR1281"); empty: every reader pcscd lists.
    reader_name: Annotated[str, Field(max_length=128)] = ""
    # Card apps tried in this order on each card; the first that recognises the card wins.
    apps: Annotated[
        tuple[CardApp, ...], BeforeValidator(_list_to_tuple), Field(min_length=1, max_length=3)
    ] = ("idcard", "citizen", "staff")
    citizen: CitizenProfile = CitizenProfile()
    staff: StaffProfile = StaffProfile()
    # Longest single wait on pcscd; also how often the watch looks at pending removals.
    poll_ms: Annotated[int, Field(ge=20, le=5_000)] = 500
    # A card that leaves and comes back as the same card within this time is one presence:
    # no removed/inserted events and no new read (a hand hovering at the field's edge).
    debounce_ms: Annotated[int, Field(ge=0, le=10_000)] = 800
    # Backoff while pcscd or the reader is gone: starts at min, doubles up to max.
    reconnect_min_ms: Annotated[int, Field(ge=10, le=10_000)] = 200
    reconnect_max_ms: Annotated[int, Field(ge=100, le=60_000)] = 5_000
    # Power cycles of the card (SCardReconnect with unpower) tried when the chip hangs.
    field_cycles: Annotated[int, Field(ge=0, le=3)] = 1

    @model_validator(mode="after")
    def _check(self) -> PcscSettings:
        if len(set(self.apps)) != len(self.apps):
            raise ValueError("apps must not repeat a card app")
        if self.reconnect_min_ms > self.reconnect_max_ms:
            raise ValueError("reconnect_min_ms must not exceed reconnect_max_ms")
        return self
