"""Ed25519 command signing: keys on disk, what the signature covers, and what breaks it."""

from __future__ import annotations

import base64
import json
import stat
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from uplink.messages import Command, decode, encode, signing_bytes
from uplink.signing import (
    SigningKeyError,
    generate_private_key,
    load_private_key,
    load_public_key,
    sign_command,
    verify_command,
    write_private_key,
    write_public_key,
)

T0 = datetime(2026, 11, 23, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def signed(**overrides: Any) -> tuple[Command, Ed25519PrivateKey]:
    key = generate_private_key()
    fields: dict[str, Any] = {
        "device": "locker-01",
        "component": "lockerd",
        "command_id": "cmd-1",
        "issued_at": T0,
        "expires_at": T0 + timedelta(minutes=5),
        "action": "open_bay",
        "args": {"bay": "A03", "reason": "维修"},
        **overrides,
    }
    return sign_command(key, **fields), key


def test_keys_round_trip_through_pem_files_and_the_private_key_is_owner_only(
    tmp_path: Path,
) -> None:
    key = generate_private_key()
    write_private_key(tmp_path / "hall.key", key)
    write_public_key(tmp_path / "hall.pub", key.public_key())
    assert stat.S_IMODE((tmp_path / "hall.key").stat().st_mode) == 0o600
    command, _ = signed()
    resigned = sign_command(
        load_private_key(tmp_path / "hall.key"),
        device=command.device,
        component=command.component,
        command_id=command.command_id,
        issued_at=command.issued_at,
        expires_at=command.expires_at,
        action=command.action,
        args=command.args,
    )
    assert verify_command(load_public_key(tmp_path / "hall.pub"), resigned)
    with pytest.raises(FileExistsError):  # a hall key is never silently replaced
        write_private_key(tmp_path / "hall.key", generate_private_key())


def test_bad_key_files_are_reported_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_public_key(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(SigningKeyError, match=r"junk\.pem"):
        load_public_key(tmp_path / "junk.pem")


def test_a_signed_command_survives_the_wire_and_verifies() -> None:
    command, key = signed()
    received = decode(Command, encode(command))
    assert verify_command(key.public_key(), received)
    # the signature is over exactly the contract's canonical bytes
    key.public_key().verify(received.signature, signing_bytes(json.loads(encode(command))))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device", "locker-02"),
        ("component", "kiosk"),
        ("command_id", "cmd-2"),
        ("issued_at", (T0 + timedelta(seconds=1)).isoformat()),
        ("expires_at", (T0 + timedelta(minutes=50)).isoformat()),
        ("action", "disable_bay"),
        ("args", {"bay": "A04", "reason": "维修"}),
    ],
)
def test_changing_any_signed_field_breaks_the_signature(field: str, value: object) -> None:
    command, key = signed()
    document = json.loads(encode(command))
    document[field] = value
    tampered = decode(Command, json.dumps(document, ensure_ascii=False).encode())
    assert not verify_command(key.public_key(), tampered)


def test_another_key_does_not_verify() -> None:
    command, _ = signed()
    assert not verify_command(generate_private_key().public_key(), command)


def test_a_flipped_signature_bit_does_not_verify() -> None:
    command, key = signed()
    raw = bytearray(command.signature)
    raw[0] ^= 1
    document = json.loads(encode(command))
    document["sig"] = base64.b64encode(bytes(raw)).decode()
    assert not verify_command(key.public_key(), decode(Command, json.dumps(document).encode()))
