"""The virtual card program against a real pcscd + vpcd, seen through bare pyscard calls."""

from __future__ import annotations

from typing import Any

import pytest

from drivers.identity.vcard.cards import IdCardChip, StaffCard
from drivers.identity.vcard.control import VcardControlError
from tests.fixtures import wait_until
from tests.fixtures.pcscd import READER, Pcscd, card_atr


def transmit(apdu_hex: str) -> str:
    """Connect, send one APDU, disconnect: what any PC/SC application does."""
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert result == scard.SCARD_S_SUCCESS
    try:
        result, card, protocol = scard.SCardConnect(
            context,
            READER,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        assert result == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(result)
        result, response = scard.SCardTransmit(card, protocol, list(bytes.fromhex(apdu_hex)))
        assert result == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(result)
        scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        return bytes(response).hex().upper()
    finally:
        scard.SCardReleaseContext(context)


def kinds(log: list[tuple[str, str]]) -> list[str]:
    return [kind for kind, _ in log]


def test_insert_transmit_remove(pcscd: Pcscd) -> None:
    vcard = pcscd.vcard("idcard", "--serial", "0102030405060708")
    assert vcard.wait_present() == IdCardChip().atr.hex().upper()
    mark = vcard.control.status()["log_total"]
    assert transmit("0036000008") == "01020304050607089000"
    assert ("apdu", "0036000008") in vcard.control.log(since=mark)
    # pcscd powered the card (01) and read its ATR (04) before the first APDU
    seen = kinds(vcard.control.log())
    assert {"on", "atr"} <= set(seen[: seen.index("apdu")])

    vcard.control.remove()
    vcard.wait_absent()
    assert vcard.control.status()["connected"] is False
    vcard.control.insert()
    vcard.wait_present()
    status: dict[str, Any] = vcard.control.status()
    assert (status["connects"], status["drops"]) == (2, 0)


def test_switching_cards_changes_what_pcscd_sees(pcscd: Pcscd) -> None:
    vcard = pcscd.vcard("idcard")
    vcard.wait_present()
    vcard.control.insert("staff")
    staff_atr = StaffCard().atr.hex().upper()
    wait_until(lambda: card_atr() == staff_atr, what=vcard.describe)
    assert transmit("00A4040008F0484B5354414646") == "9000"
    assert transmit("0036000008") == "6D00"


def test_card_comes_back_by_itself_after_a_pcscd_restart(pcscd: Pcscd) -> None:
    vcard = pcscd.vcard("citizen")
    vcard.wait_present()
    pcscd.restart()
    # vpcd closed our connection when pcscd stopped; the card is still "on the reader"
    wait_until(lambda: vcard.control.status()["drops"] >= 1, what=vcard.describe)
    vcard.wait_present()
    assert vcard.control.status()["connects"] >= 2
    assert transmit("00A4040008F0484B4349545A01") == "9000"


def test_a_card_that_starts_absent_and_bad_control_requests(pcscd: Pcscd) -> None:
    vcard = pcscd.vcard("staff", absent=True)
    assert vcard.control.status()["connects"] == 0
    assert card_atr() is None
    with pytest.raises(VcardControlError, match="unknown hook"):
        vcard.control.call("explode")
    with pytest.raises(VcardControlError, match="card must be one of"):
        vcard.control.insert("passport")
    with pytest.raises(VcardControlError, match="unexpected arguments"):
        vcard.control.call("remove", now=True)
    vcard.control.insert()
    vcard.wait_present()
