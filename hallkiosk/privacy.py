"""PIPL rules in one place: keyed identity hashes and masked display forms (DESIGN §4).

A raw ID number (身份证号) only ever passes through ``IdentityHasher.hash_id_number`` and
``mask_id_number`` in memory; it is never stored, logged or published.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from hallkiosk.errors import HallkioskError

_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK = "10X98765432"
IDENTITY_KEY_BYTES = 32


class PrivacyError(HallkioskError, ValueError):
    code = "identity_invalid"
    message_zh = "证件号码无效，请重新读卡。"
    message_en = "The ID number is not valid. Please read the card again."


def gb11643_check_digit(first17: str) -> str:
    """The 18th character of a resident ID number (GB 11643, ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not first17.isdigit():
        raise PrivacyError("the first 17 characters must be digits")
    total = sum(int(d) * w for d, w in zip(first17, _GB11643_WEIGHTS, strict=True))
    return _GB11643_CHECK[total % 11]


def normalise_id_number(id_number: str) -> str:
    """Upper-case, strip spaces, and check length, charset and check digit."""
    value = id_number.strip().replace(" ", "").upper()
    if (
        len(value) != 18
        or not value[:17].isdigit()
        or not (value[17].isdigit() or value[17] == "X")
    ):
        raise PrivacyError("an ID number has 17 digits and a digit or X")
    if gb11643_check_digit(value[:17]) != value[17]:
        raise PrivacyError("the ID number's check digit does not match")
    return value


def mask_id_number(id_number: str) -> str:
    """``330106199001011234`` -> ``3301**********1234``."""
    value = id_number.strip().upper()
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_name(name: str) -> str:
    """张三 -> 张*, 张小三 -> 张*三, 欧阳小明 -> 欧**明; Latin names keep the first letter."""
    value = name.strip()
    if len(value) <= 1:
        return value
    if len(value) == 2:
        return value[0] + "*"
    return value[0] + "*" * (len(value) - 2) + value[-1]


class IdentityHasher:
    """HMAC-SHA256 of the normalised ID number under the hall secret."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise PrivacyError("the identity key must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_file(cls, path: Path) -> IdentityHasher:
        return cls(path.read_bytes())

    def hash_id_number(self, id_number: str) -> str:
        value = normalise_id_number(id_number)
        return hmac.new(self._key, value.encode("ascii"), hashlib.sha256).hexdigest()


def ensure_key_file(path: Path) -> None:
    """Create a random identity key (mode 0600) if none exists; provisioning installs the real
    one."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(IDENTITY_KEY_BYTES))
