"""The digit-entry model behind every on-screen keypad."""

from __future__ import annotations

import pytest

from kiosk.flows.keypad import Keypad


def test_secret_entry_is_masked_and_read_once() -> None:
    pad = Keypad(6, secret=True)
    assert pad.display == "○○○○○○" and not pad.complete
    for digit in "12345":
        assert pad.press(digit)
    assert pad.display == "●●●●●○" and not pad.complete
    assert not pad.press("x") and not pad.press("12") and not pad.press("")
    pad.press("6")
    assert pad.complete and pad.full and not pad.press("7")
    assert "123456" not in repr(pad) and "123456" not in pad.display
    with pytest.raises(ValueError):
        pad.peek()
    assert pad.take() == "123456"
    assert pad.count == 0 and pad.take() == ""


def test_delete_and_clear() -> None:
    pad = Keypad(4, 8, secret=True)
    for digit in "98765":
        pad.press(digit)
    pad.delete()
    assert pad.count == 4 and pad.complete and pad.display == "●●●●"
    pad.clear()
    pad.delete()  # nothing to delete: no error
    assert pad.count == 0 and pad.display == "○○○○"


def test_plain_entry_shows_its_digits() -> None:
    pad = Keypad(11, secret=False)
    for digit in "13800138000":
        pad.press(digit)
    assert pad.display == "13800138000" and pad.peek() == "13800138000"
    assert pad.count == 11  # peek does not clear


def test_lengths_are_checked() -> None:
    with pytest.raises(ValueError):
        Keypad(0, secret=True)
    with pytest.raises(ValueError):
        Keypad(6, 4, secret=True)
