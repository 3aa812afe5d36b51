"""Settings of the appointment import (the booking platform pushing 预约 to the hall).

The HTTP listener is off by default. It speaks plain HTTP, so it may bind only a loopback
address: the body carries raw ID numbers and names, and the bearer token travels in a header.
A TLS reverse proxy on the same host (nginx) faces the network when the platform is remote.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator

from hallkiosk.config import StrictModel

DEFAULT_HTTP_PORT = 8470
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024  # ~30 000 rows of a typical export
DEFAULT_MAX_ROWS = 20_000  # a busy city hall books a few thousand slots a day
TOKEN_MIN_CHARS = 32


class AppointmentImportSettings(StrictModel):
    """``[hall.appointments.import]`` in the hall's site file."""

    http_enabled: bool = False
    # An IP literal or "localhost"; only loopback (see the module docstring).
    http_bind: Annotated[str, Field(min_length=1, max_length=64)] = "127.0.0.1"
    # 0 picks a free port (tests); the bound port is AppointmentImportServer.port.
    http_port: Annotated[int, Field(ge=0, le=65535)] = DEFAULT_HTTP_PORT
    # A file holding one bearer token (>= 32 printable ASCII characters), read at start.
    token_file: Annotated[str, Field(max_length=4096)] = ""
    max_body_bytes: Annotated[int, Field(ge=1024, le=256 * 1024 * 1024)] = DEFAULT_MAX_BODY_BYTES
    max_rows: Annotated[int, Field(ge=1, le=500_000)] = DEFAULT_MAX_ROWS
    # Whole-request deadline (headers and body), so a stalled client cannot hold a worker.
    request_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0

    @field_validator("http_bind")
    @classmethod
    def _loopback_only(cls, value: str) -> str:
        if not is_loopback_address(value):
            raise ValueError(
                f"http_bind {value!r} is not a loopback address; the listener speaks plain HTTP "
                "with personal data, so bind 127.0.0.1 or ::1 and put a TLS proxy in front"
            )
        return value

    @model_validator(mode="after")
    def _token_when_enabled(self) -> Self:
        if self.http_enabled and not self.token_file:
            raise ValueError("token_file is required when http_enabled is true")
        return self


def is_loopback_address(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
