"""Ed25519 keys for commands: the hall signs, devices verify (docs/mqtt.md "Commands").

Keys are PEM files: the hall's private key (PKCS#8, mode 0600, only on the hall) and its public key
(SubjectPublicKeyInfo), installed on every device at provisioning. ``sign_command`` is what the hall
(and the tests) use to build a command; ``verify_command`` is the device's check.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from uplink.errors import UplinkError
from uplink.messages import SCHEMA_VERSION, Command, format_time, signing_bytes


class SigningKeyError(UplinkError, ValueError):
    """A key file that is missing, unreadable or not an Ed25519 key."""

    code = "signing_key_invalid"


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def write_private_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write the hall's private key, readable by its owner only; never overwrite an existing key."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())


def write_public_key(path: Path, key: Ed25519PublicKey) -> None:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    data = _read(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return key


def sign_command(
    key: Ed25519PrivateKey,
    *,
    device: str,
    component: str,
    command_id: str,
    issued_at: datetime,
    expires_at: datetime,
    action: str,
    args: Mapping[str, Any],
) -> Command:
    """A complete, signed command (raises ``MessageError`` if a field breaks the contract)."""
    fields: dict[str, Any] = {
        "device": device,
        "component": component,
        "command_id": command_id,
        "issued_at": format_time(issued_at),
        "expires_at": format_time(expires_at),
        "action": action,
        "args": dict(args),
    }
    signature = key.sign(signing_bytes(fields))
    return Command.model_validate(
        {"v": SCHEMA_VERSION, **fields, "sig": base64.b64encode(signature).decode("ascii")}
    )


def verify_command(key: Ed25519PublicKey, command: Command) -> bool:
    try:
        key.verify(command.signature, command.signing_bytes())
    except InvalidSignature:
        return False
    return True


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read key file: {exc.strerror}") from None
