"""Sealing a short secret (a pickup password) from a device to its hall.

The device never sends a password in clear: it seals it to the hall's X25519 public key
(installed at provisioning, ``[uplink] hall_seal_key_file``). Only the hall's notification
sender opens it, in memory, when the SMS goes out; the hall stores only the sealed form.

Format (base64 of): ephemeral X25519 public key (32) | nonce (12) | ChaCha20-Poly1305 ciphertext.
The key is HKDF-SHA256 over the shared secret with both public keys as info; the associated data
(e.g. ``device/deposit_id``) binds the box to the fact it belongs to, so a box cannot be moved to
another deposit.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from uplink.errors import UplinkError

_INFO = b"hallkiosk seal v1"


class SealError(UplinkError, ValueError):
    code = "seal_invalid"


def _key(shared: bytes, eph_pub: bytes, recipient_pub: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + eph_pub + recipient_pub
    ).derive(shared)


def _raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(secret: str, recipient: X25519PublicKey, associated: str) -> str:
    eph = X25519PrivateKey.generate()
    eph_pub, rec_pub = _raw(eph.public_key()), _raw(recipient)
    key = _key(eph.exchange(recipient), eph_pub, rec_pub)
    nonce = os.urandom(12)
    box = ChaCha20Poly1305(key).encrypt(nonce, secret.encode(), associated.encode())
    return base64.b64encode(eph_pub + nonce + box).decode("ascii")


def unseal(sealed: str | bytes, private: X25519PrivateKey, associated: str) -> str:
    try:
        raw = base64.b64decode(sealed, validate=True)
    except (binascii.Error, ValueError):
        raise SealError("sealed secret is not base64") from None
    if len(raw) < 32 + 12 + 16:
        raise SealError("sealed secret is too short")
    eph_pub, nonce, box = raw[:32], raw[32:44], raw[44:]
    key = _key(
        private.exchange(X25519PublicKey.from_public_bytes(eph_pub)),
        eph_pub,
        _raw(private.public_key()),
    )
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, box, associated.encode()).decode()
    except (InvalidTag, UnicodeDecodeError):
        raise SealError("sealed secret does not open with this key") from None


def ensure_seal_key(path: Path) -> X25519PrivateKey:
    """Load the hall's sealing key, creating it (mode 0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = X25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise SealError(f"{path}: not an X25519 private key")
    return key


def write_seal_public_key(path: Path, private: X25519PrivateKey) -> None:
    path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def load_seal_public_key(path: Path) -> X25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, X25519PublicKey):
        raise SealError(f"{path}: not an X25519 public key")
    return key
