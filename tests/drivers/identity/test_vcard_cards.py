"""The virtual cards and the card apps, byte for byte, without pcscd.

The apps run over ``CardChannel(card.process)``: the same exchanges the PC/SC backend runs, so
these pin the wire format the pcscd tests then carry through a real daemon.
"""

from __future__ import annotations

import pytest

from drivers.identity import (
    CardInserted,
    IdentityReaderSettings,
    SimSettings,
    WatchCallbacks,
    open_reader,
)
from drivers.identity.errors import CardInvalid, NoCard
from drivers.identity.pcsc import apdu, apps
from drivers.identity.pcsc.apdu import Command, Response, describe_sw
from drivers.identity.pcsc.apps import CardChannel
from drivers.identity.pcsc.errors import (
    ChipNotAnswering,
    NotAStaffCard,
    StaffPinBlocked,
    StaffPinFormat,
    StaffPinWrong,
    UnsupportedCard,
)
from drivers.identity.pcsc.settings import CitizenProfile, FieldSpec, PcscSettings, StaffProfile
from drivers.identity.types import IdentitySource
from drivers.identity.vcard.cards import (
    SYNTHETIC_ID_NUMBER,
    CitizenCard,
    IdCardChip,
    StaffCard,
    contactless_atr,
)
from drivers.identity.vcard.sim import SimIdentityReader
from hallkiosk.privacy import IdentityHasher, gb11643_check_digit
from tests.fixtures import wait_until

HASHER = IdentityHasher(b"test-identity-key-0123456789abcd")


def channel_for(card: CardChannel | StaffCard | CitizenCard | IdCardChip) -> CardChannel:
    assert not isinstance(card, CardChannel)
    card.power_on()
    return CardChannel(card.process)


def test_id_chip_serial_apdu_is_byte_exact() -> None:
    card = IdCardChip("0102030405060708")
    assert card.process(bytes.fromhex("0036000008")) == bytes.fromhex("0102030405060708 9000")
    assert card.process(bytes.fromhex("0036000004")) == bytes.fromhex("6C08")
    assert card.process(bytes.fromhex("8036000008")) == bytes.fromhex("6E00")


def test_chip_serial_identity_has_no_person_data() -> None:
    identity = apps.read_id_chip(channel_for(IdCardChip("0102030405060708")))
    assert identity.source is IdentitySource.PCSC_IDCARD
    assert identity.chip_serial == "0102030405060708"
    assert (identity.id_hash, identity.id_masked, identity.name_masked) == (None, None, None)


def test_channel_resends_with_the_le_the_card_asks_for() -> None:
    sent: list[bytes] = []
    card = IdCardChip("0102030405060708")

    def transmit(raw: bytes) -> bytes:
        sent.append(raw)
        return card.process(raw)

    response = CardChannel(transmit).send(Command(0x00, 0x36, 0x00, 0x00, le=4))
    assert sent == [bytes.fromhex("0036000004"), bytes.fromhex("0036000008")]
    assert response == Response(bytes.fromhex("0102030405060708"), 0x9000)


def test_channel_follows_get_response_chains() -> None:
    answers = iter([bytes.fromhex("6104"), bytes.fromhex("AABBCCDD 9000")])
    sent: list[bytes] = []

    def transmit(raw: bytes) -> bytes:
        sent.append(raw)
        return next(answers)

    response = CardChannel(transmit).send(apdu.select_aid(b"\xa0\x00\x00\x00\x01"))
    assert sent[1] == bytes.fromhex("00C0000004")
    assert response == Response(bytes.fromhex("AABBCCDD"), 0x9000)


def test_citizen_card_record_layout_follows_the_profile() -> None:
    card = CitizenCard()
    channel = channel_for(card)
    assert channel.send(apdu.select_aid(bytes.fromhex("F0484B4349545A01"))).ok
    assert card.process(bytes.fromhex("00A4020C020015")) == bytes.fromhex("9000")
    record = card.process(bytes.fromhex("00B0000030"))
    assert record[:18] == SYNTHETIC_ID_NUMBER.encode()
    assert record[18:24] == "李测试".encode("gbk")
    assert record[24:48] == b" " * 24
    assert record[-2:] == bytes.fromhex("9000")


def test_citizen_identity_is_hashed_masked_and_dated() -> None:
    identity = apps.read_citizen(channel_for(CitizenCard()), CitizenProfile(), HASHER)
    assert identity.source is IdentitySource.CITIZEN_CARD
    assert identity.id_hash == HASHER.hash_id_number(SYNTHETIC_ID_NUMBER)
    assert identity.id_masked == SYNTHETIC_ID_NUMBER[:4] + "*" * 10 + SYNTHETIC_ID_NUMBER[-4:]
    assert identity.name_masked == "李*试"
    assert identity.birth_date is not None and identity.birth_date.isoformat() == "1950-01-01"


def test_city_profile_is_data_a_different_layout_reads_the_same_person() -> None:
    profile = CitizenProfile(
        aid="A00000000386980701",
        ef_fid=None,
        id_number=FieldSpec(offset=40, length=18),
        holder_name=FieldSpec(offset=0, length=40),
        name_encoding="utf-16-le",
    )
    identity = apps.read_citizen(channel_for(CitizenCard(profile)), profile, HASHER)
    assert identity.id_hash == HASHER.hash_id_number(SYNTHETIC_ID_NUMBER)
    assert identity.name_masked == "李*试"


def test_citizen_card_with_a_bad_check_digit_is_refused_without_echoing_it() -> None:
    first17 = SYNTHETIC_ID_NUMBER[:17]
    wrong = "0" if gb11643_check_digit(first17) != "0" else "1"
    bad_number = first17 + wrong
    with pytest.raises(CardInvalid) as caught:
        apps.read_citizen(channel_for(CitizenCard(id_number=bad_number)), CitizenProfile(), HASHER)
    assert caught.value.code == "citizen_id_invalid"
    assert "市民卡" in caught.value.message_zh
    assert bad_number not in str(caught.value)


def test_staff_pin_right_wrong_and_blocked_on_the_wire() -> None:
    card = StaffCard(pin="2468", pin_tries=3)
    channel_for(card)
    assert card.process(bytes.fromhex("00A4040008F0484B5354414646")) == bytes.fromhex("9000")
    assert card.process(bytes.fromhex("00200000")) == bytes.fromhex("63C3")
    assert card.process(bytes.fromhex("002000000431313131")) == bytes.fromhex("63C2")
    assert card.process(bytes.fromhex("002000000432343638")) == bytes.fromhex("9000")
    for expected in ("63C2", "63C1", "63C0", "6983"):
        assert card.process(bytes.fromhex("002000000430303030")) == bytes.fromhex(expected)
    assert card.process(bytes.fromhex("002000000432343638")) == bytes.fromhex("6983")


def test_verify_staff_pin_maps_status_words_to_typed_errors() -> None:
    profile = StaffProfile()
    card = StaffCard(pin="123456", pin_tries=2)
    channel = channel_for(card)
    with pytest.raises(StaffPinWrong) as wrong:
        apps.verify_staff_pin(channel, profile, "000000")
    assert wrong.value.tries_left == 1
    assert wrong.value.message_en == "Wrong PIN. 1 try left."
    assert wrong.value.message_zh == "密码错误，还可以再试 1 次。"
    staff = apps.verify_staff_pin(channel, profile, "123456")
    assert (staff.source, staff.staff_id, staff.name_masked) == (
        IdentitySource.STAFF_CARD,
        "S0001234",
        "王*作",
    )
    for _ in range(2):
        with pytest.raises((StaffPinWrong, StaffPinBlocked)):
            apps.verify_staff_pin(channel, profile, "000000")
    with pytest.raises(StaffPinBlocked) as blocked:
        apps.verify_staff_pin(channel, profile, "123456")
    assert blocked.value.code == "staff_pin_blocked"
    assert apps.staff_pin_tries_left(channel, profile) == 0


def test_pin_format_is_refused_before_the_card_sees_it() -> None:
    card = StaffCard()
    channel = channel_for(card)
    before = len(card.log.entries)
    for pin in ("12", "12345678901", "12a456", "１２３４５６"):
        with pytest.raises(StaffPinFormat):
            apps.verify_staff_pin(channel, StaffProfile(), pin)
    assert len(card.log.entries) == before
    assert card.pin_tries_left == card.pin_tries_max


def test_pin_on_a_card_that_is_not_a_staff_card() -> None:
    with pytest.raises(NotAStaffCard):
        apps.verify_staff_pin(channel_for(CitizenCard()), StaffProfile(), "123456")


def test_apps_are_tried_in_the_configured_order() -> None:
    card = StaffCard()
    identity = apps.read_identity(channel_for(card), PcscSettings(), HASHER)
    assert identity.staff_id == "S0001234"
    commands = [data[:2] for kind, data in card.log.entries if kind == "apdu"]
    # 00 36 (ID chip) and the citizen SELECT were refused before the staff app answered
    assert commands[:3] == [b"\x00\x36", b"\x00\xa4", b"\x00\xa4"]
    with pytest.raises(UnsupportedCard):
        apps.read_identity(channel_for(IdCardChip()), PcscSettings(apps=("staff",)), HASHER)


def test_sim_reader_cycles_the_field_of_a_hung_chip() -> None:
    reader = SimIdentityReader(SimSettings(card="idcard"), PcscSettings(), HASHER)
    reader.hang_chip()
    card = reader.cards["idcard"]
    start = len(card.log.entries)
    assert reader.read(1.0).chip_serial is not None
    kinds = [kind for kind, _ in card.log.entries[start:]]
    assert kinds == ["apdu", "off", "on", "apdu"]


def test_sim_reader_gives_up_after_the_configured_cycles() -> None:
    reader = SimIdentityReader(SimSettings(card="idcard"), PcscSettings(field_cycles=0), HASHER)
    reader.hang_chip()
    with pytest.raises(ChipNotAnswering):
        reader.read(1.0)


def test_factory_sim_backend_and_no_card() -> None:
    reader = open_reader(IdentityReaderSettings(reader="sim"), HASHER)
    assert isinstance(reader, SimIdentityReader)
    with pytest.raises(NoCard):
        reader.read(0.0)
    reader.present_card("citizen")
    assert reader.read(0.0).source is IdentitySource.CITIZEN_CARD
    reader.close()


def test_settings_come_from_toml_shaped_tables() -> None:
    settings = IdentityReaderSettings.model_validate(
        {"reader": "pcsc", "pcsc": {"apps": ["staff", "idcard"], "staff": {"pin_reference": 1}}}
    )
    assert settings.pcsc.apps == ("staff", "idcard")
    for bad in (
        {"pcsc": {"apps": ["idcard", "idcard"]}},
        {"pcsc": {"citizen": {"aid": "F0"}}},
        {"pcsc": {"debounce_ms": -1}},
        {"pcsc": {"unknown": 1}},
    ):
        with pytest.raises(ValueError):
            IdentityReaderSettings.model_validate(bad)


def test_status_words_have_plain_messages() -> None:
    assert describe_sw(0x63C2).message_en == "Wrong PIN. 2 tries left."
    assert describe_sw(0x6983).code == "sw_pin_blocked"
    assert describe_sw(0x63C0).code == "sw_pin_blocked"
    assert describe_sw(0x6A82).code == "sw_not_found"
    assert describe_sw(0x1234).code == "sw_1234"


def test_contactless_atr_checksum() -> None:
    atr = contactless_atr(b"HKSTAF")
    assert atr[:4] == bytes.fromhex("3B868001")
    checksum = 0
    for byte in atr[1:]:
        checksum ^= byte
    assert checksum == 0  # TCK makes the XOR of T0..TCK zero


def test_sim_reader_watch_reports_presented_and_removed_cards() -> None:
    events: list[object] = []
    reader = SimIdentityReader(SimSettings(card="staff"), PcscSettings(), HASHER)
    reader.start_watch(WatchCallbacks(events.append, events.append, events.append, events.append))
    reader.present_card("idcard")
    reader.remove_card()
    wait_until(lambda: len(events) == 5, what=lambda: str(events))
    reader.close()
    assert [type(e).__name__ for e in events] == [
        "ReaderReady",
        "CardInserted",
        "CardRemoved",
        "CardInserted",
        "CardRemoved",
    ]
    staff, chip = events[1], events[3]
    assert isinstance(staff, CardInserted) and staff.identity.staff_id == "S0001234"
    assert isinstance(chip, CardInserted) and chip.identity.chip_serial == "A1B2C3D4E5F60718"
