"""PcscReader through a real pcscd + vpcd and our virtual cards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.identity import IdentityReaderSettings, open_reader
from drivers.identity.errors import NoCard
from drivers.identity.pcsc.errors import (
    NoReader,
    PcscServiceDown,
    StaffPinBlocked,
    StaffPinFormat,
    StaffPinWrong,
    UnsupportedCard,
)
from drivers.identity.pcsc.reader import PcscReader
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import IdentitySource
from drivers.identity.vcard.cards import SYNTHETIC_ID_NUMBER
from hallkiosk.privacy import IdentityHasher
from tests.fixtures import wait_until
from tests.fixtures.pcscd import READER, SECOND_READER, Pcscd

HASHER = IdentityHasher(b"test-identity-key-0123456789abcd")


@pytest.fixture
def reader() -> Iterator[PcscReader]:
    with PcscReader(PcscSettings(), HASHER) as opened:
        yield opened


def apdus(log: list[tuple[str, str]]) -> list[str]:
    return [data for kind, data in log if kind == "apdu"]


def test_id_card_chip_serial(pcscd: Pcscd, reader: PcscReader) -> None:
    vcard = pcscd.vcard("idcard", "--serial", "1122334455667788")
    identity = reader.read(5.0)
    assert identity.source is IdentitySource.PCSC_IDCARD
    assert identity.chip_serial == "1122334455667788"
    assert identity.id_hash is None and identity.name_masked is None
    assert apdus(vcard.control.log()) == ["0036000008"]


def test_citizen_card_identity(pcscd: Pcscd) -> None:
    pcscd.vcard("citizen")
    with open_reader(IdentityReaderSettings(reader="pcsc"), HASHER) as reader:
        assert isinstance(reader, PcscReader)
        identity = reader.read(5.0)
    assert identity.source is IdentitySource.CITIZEN_CARD
    assert identity.id_hash == HASHER.hash_id_number(SYNTHETIC_ID_NUMBER)
    assert identity.id_masked == "9901**********" + SYNTHETIC_ID_NUMBER[-4:]
    assert identity.name_masked == "李*试"
    assert SYNTHETIC_ID_NUMBER not in repr(identity)


def test_staff_pin_right_wrong_blocked(pcscd: Pcscd, reader: PcscReader) -> None:
    vcard = pcscd.vcard("staff", "--pin", "246810", "--pin-tries", "3")
    assert reader.read(5.0).staff_id == "S0001234"
    with pytest.raises(StaffPinWrong) as wrong:
        reader.verify_staff_pin("111111")
    assert wrong.value.tries_left == 2
    assert reader.staff_pin_tries_left() == 2
    staff = reader.verify_staff_pin("246810")
    assert (staff.staff_id, staff.name_masked) == ("S0001234", "王*作")
    assert reader.staff_pin_tries_left() is None  # verified in the card session we just had
    assert [exc_tries(reader, "000000") for _ in range(3)] == [2, 1, "blocked"]
    with pytest.raises(StaffPinBlocked) as blocked:
        reader.verify_staff_pin("246810")
    assert blocked.value.message_zh == "工作证密码已锁定，请联系管理员解锁。"
    assert reader.staff_pin_tries_left() == 0
    with pytest.raises(StaffPinFormat):
        reader.verify_staff_pin("24681O")
    vcard.control.unblock()
    assert reader.verify_staff_pin("246810").staff_id == "S0001234"
    # the VERIFY bytes on the wire: 00 20 00 00 06 "246810"
    assert "0020000006323436383130" in apdus(vcard.control.log())


def exc_tries(reader: PcscReader, pin: str) -> int | str:
    try:
        reader.verify_staff_pin(pin)
    except StaffPinWrong as exc:
        return exc.tries_left
    except StaffPinBlocked:
        return "blocked"
    raise AssertionError("a wrong PIN was accepted")


def test_repeated_reads_are_answered_from_memory_until_the_card_leaves(
    pcscd: Pcscd, reader: PcscReader
) -> None:
    vcard = pcscd.vcard("idcard")
    first = reader.read(5.0)
    sent = vcard.control.status()["apdus"]
    assert reader.read(5.0) == first
    assert vcard.control.status()["apdus"] == sent  # no new exchange with the chip
    vcard.control.remove()
    vcard.wait_absent()
    vcard.control.insert()
    vcard.wait_present()
    assert reader.read(5.0) == first
    assert vcard.control.status()["apdus"] == sent + 1


def test_a_hung_chip_gets_its_field_cycled(pcscd: Pcscd, reader: PcscReader) -> None:
    vcard = pcscd.vcard("idcard", "--serial", "0102030405060708")
    vcard.wait_present()
    vcard.control.hang()
    mark = vcard.control.status()["log_total"]
    assert reader.read(5.0).chip_serial == "0102030405060708"
    seen = [kind for kind, _ in vcard.control.log(since=mark) if kind != "atr"]
    # 6F 00 to the first try; SCardReconnect(UNPOWER) sends power off then on; the retry works
    assert seen == ["apdu", "off", "on", "apdu"]


def test_no_card_and_an_unsupported_card(pcscd: Pcscd) -> None:
    vcard = pcscd.vcard("idcard", absent=True)
    with PcscReader(PcscSettings(apps=("citizen", "staff")), HASHER) as reader:
        with pytest.raises(NoCard):
            reader.read(0.3)
        vcard.control.insert()
        with pytest.raises(UnsupportedCard) as caught:
            reader.read(5.0)
    assert "citizen:6A82" in str(caught.value)


def test_reader_name_selects_a_reader(pcscd: Pcscd) -> None:
    pcscd.vcard("idcard")
    with PcscReader(PcscSettings(reader_name="00 01"), HASHER) as reader:
        status = reader.status()
        assert (status.online, status.readers, status.card_present) == (
            True,
            (SECOND_READER,),
            False,
        )
        with pytest.raises(NoCard):
            reader.read(0.2)
    with PcscReader(PcscSettings(reader_name="ACR1281"), HASHER) as reader:
        with pytest.raises(NoReader):
            reader.read(0.2)
        assert reader.status().detail == "pcsc_no_reader"


def test_pcscd_restart_and_a_reader_gone(pcscd: Pcscd, reader: PcscReader) -> None:
    vcard = pcscd.vcard("idcard")
    serial = reader.read(5.0).chip_serial
    assert reader.status().readers == (READER, SECOND_READER)
    pcscd.stop()
    with pytest.raises(PcscServiceDown) as down:
        reader.read(0.2)
    assert down.value.message_en.startswith("The card reader service is not running")
    assert reader.status().detail == "pcscd_down"
    pcscd.start(readers=False)  # pcscd runs, the reader is unplugged
    with pytest.raises(NoReader):
        reader.read(0.2)
    pcscd.restart()
    # the same reader object: its dead context is dropped and a new one established
    assert reader.read(5.0).chip_serial == serial
    wait_until(lambda: vcard.control.status()["connects"] >= 2, what=vcard.describe)
