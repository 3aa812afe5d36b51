"""A small digit-entry model for on-screen keypads (pickup password, staff PIN, phone number,
booking codes).

The screen draws ``display`` (masked or plain) and forwards key presses; the flow reads the
digits once with ``take()`` when the user confirms. Secret digits never appear in ``repr``.
"""

from __future__ import annotations

MASK_FILLED = "●"
MASK_EMPTY = "○"


class Keypad:
    def __init__(self, min_length: int, max_length: int | None = None, *, secret: bool) -> None:
        max_len = min_length if max_length is None else max_length
        if not 1 <= min_length <= max_len <= 32:
            raise ValueError("need 1 <= min_length <= max_length <= 32")
        self.min_length = min_length
        self.max_length = max_len
        self.secret = secret
        self._digits: list[str] = []

    def __repr__(self) -> str:
        return f"<Keypad {len(self._digits)}/{self.max_length} secret={self.secret}>"

    # -- keys --------------------------------------------------------------------------------

    def press(self, digit: str) -> bool:
        """One key. False (and nothing entered) when it is not a digit or the entry is full."""
        if len(digit) != 1 or digit not in "0123456789" or self.full:
            return False
        self._digits.append(digit)
        return True

    def delete(self) -> None:
        if self._digits:
            self._digits.pop()

    def clear(self) -> None:
        self._digits.clear()

    # -- what the screen shows ---------------------------------------------------------------

    @property
    def count(self) -> int:
        return len(self._digits)

    @property
    def full(self) -> bool:
        return len(self._digits) >= self.max_length

    @property
    def complete(self) -> bool:
        """Enough digits to confirm."""
        return len(self._digits) >= self.min_length

    @property
    def display(self) -> str:
        """What the entry box shows: a dot per digit (and an empty one per missing digit up to
        ``min_length``) for secrets, the digits themselves otherwise."""
        if not self.secret:
            return "".join(self._digits)
        empty = max(0, self.min_length - len(self._digits))
        return MASK_FILLED * len(self._digits) + MASK_EMPTY * empty

    # -- for the flow ------------------------------------------------------------------------

    def take(self) -> str:
        """The digits entered, clearing the entry (a secret is held in one place only)."""
        value = "".join(self._digits)
        self._digits.clear()
        return value

    def peek(self) -> str:
        """The digits without clearing (for non-secret entries such as a phone number)."""
        if self.secret:
            raise ValueError("a secret entry is read once, with take()")
        return "".join(self._digits)
