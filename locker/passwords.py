"""Six-digit pickup passwords: generated with ``secrets``, stored only as a salted scrypt hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

PASSWORD_DIGITS = 6


@dataclass(frozen=True)
class ScryptCost:
    n: int = 2**14
    r: int = 8
    p: int = 1

    def maxmem(self) -> int:
        return 128 * self.r * (self.n + self.p + 2) + 1024 * 1024


def generate() -> str:
    return f"{secrets.randbelow(10**PASSWORD_DIGITS):0{PASSWORD_DIGITS}d}"


def is_well_formed(password: str) -> bool:
    return len(password) == PASSWORD_DIGITS and password.isascii() and password.isdigit()


def hash_password(password: str, cost: ScryptCost) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=cost.maxmem(), dklen=32
    )
    b64 = base64.b64encode
    return f"scrypt${cost.n}${cost.r}${cost.p}${b64(salt).decode()}${b64(digest).decode()}"


def verify(password: str, stored: str) -> bool:
    """Constant-time check; the cost parameters travel with the hash so they can change later."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        cost = ScryptCost(int(n), int(r), int(p))
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
    except ValueError:
        return False
    actual = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=cost.n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.maxmem(),
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)
