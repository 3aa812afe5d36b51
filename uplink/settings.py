"""``[uplink]``: how a device process reaches its hall's MQTT broker.

Disabled by default (embedded mode, docs/mqtt.md "TLS"): there is no broker, nothing connects,
and the outbox keeps every event until a broker is configured. A plain (non-TLS) connection is
allowed only to a loopback address, because a plain listener must never face a network.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Self

from pydantic import Field, model_validator

from hallkiosk.config import StrictModel

# The broker's Session Expiry must outlast any outage we ride through with QoS 1 state intact.
DEFAULT_SESSION_EXPIRY_S = 14 * 24 * 3600
SESSION_EXPIRY_MAX_S = 2**32 - 1  # a four-byte MQTT property
RECONNECT_LIMIT_S = 3600.0
LOOPBACK_NAMES = frozenset({"localhost"})

Path = Annotated[str, Field(max_length=4096)]


class TlsSettings(StrictModel):
    """All three files, or none for plain MQTT. Production always sets all three."""

    ca_file: Path = ""
    cert_file: Path = ""
    key_file: Path = ""

    @property
    def enabled(self) -> bool:
        return bool(self.ca_file)

    @model_validator(mode="after")
    def _all_or_none(self) -> Self:
        given = [bool(self.ca_file), bool(self.cert_file), bool(self.key_file)]
        if any(given) and not all(given):
            raise ValueError(
                "ca_file, cert_file and key_file must all be set (TLS with a client "
                "certificate) or all be empty (plain MQTT on loopback)"
            )
        return self


class UplinkSettings(StrictModel):
    enabled: bool = False
    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8883
    tls: TlsSettings = TlsSettings()
    # paho sends PINGREQ after this much silence; the broker drops us after 1.5x of it.
    keepalive_s: Annotated[int, Field(ge=5, le=65535)] = 60
    reconnect_min_s: Annotated[float, Field(gt=0, le=RECONNECT_LIMIT_S)] = 1.0
    reconnect_max_s: Annotated[float, Field(gt=0, le=RECONNECT_LIMIT_S)] = 60.0
    # Unacknowledged QoS 1 events at once; the hall broker allows 20 per client.
    max_inflight: Annotated[int, Field(ge=1, le=65535)] = 20
    # Outbox rows read per query while draining.
    drain_batch: Annotated[int, Field(ge=1, le=100_000)] = 500
    session_expiry_s: Annotated[int, Field(ge=1, le=SESSION_EXPIRY_MAX_S)] = (
        DEFAULT_SESSION_EXPIRY_S
    )
    # The hall's Ed25519 public key (PEM), installed at provisioning. Empty: every command is
    # rejected (bad_signature), and the log says that no key is installed.
    hall_key_file: Path = ""
    # The hall's X25519 public key (PEM) for sealing pickup passwords into deposit events, so the
    # hall can send the SMS without ever holding a password in clear. Empty: no password leaves
    # the device, and the hall raises pickup_password_not_sent (staff hand the code over).
    hall_seal_key_file: Path = ""
    # A command valid for longer than this is refused (window_too_long): it bounds how long the
    # replay store must keep an id.
    command_max_window_s: Annotated[float, Field(ge=10, le=86_400)] = 900.0
    # How far a command's issued_at may be ahead of our clock (devices drift; NTP may be late).
    command_clock_skew_s: Annotated[float, Field(ge=0, le=3_600)] = 300.0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"reconnect_max_s ({self.reconnect_max_s}) must be at least reconnect_min_s "
                f"({self.reconnect_min_s})"
            )
        if not self.tls.enabled and not is_loopback(self.host):
            raise ValueError(
                f"plain MQTT (no tls files) is allowed only to a loopback address, not "
                f"{self.host!r}; configure [uplink.tls]"
            )
        return self


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
