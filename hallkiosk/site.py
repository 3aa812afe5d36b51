"""``[site]``: who and where this device is. Read by every component."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from hallkiosk.config import StrictModel

Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class SiteConfig(StrictModel):
    hall_id: Ident = "demo-hall"
    device_id: Ident = "locker-01"
    # Service days, deadlines and lockouts run on this zone (DESIGN §4).
    timezone: str = "Asia/Shanghai"
    # SQLite files, keys and sockets live under here unless a path is given explicitly.
    data_dir: Annotated[str, Field(min_length=1)] = "/var/lib/hallkiosk"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
