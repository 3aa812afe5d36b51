"""A Hall on a temporary data directory with a ManualClock, for the hall tests."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hall.service import Hall
from hall.settings import load_hall_settings
from hallkiosk.clock import ManualClock

TZ = ZoneInfo("Asia/Shanghai")


def local(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> datetime:  # noqa: PLR0917
    return datetime(y, mo, d, h, mi, s, tzinfo=TZ)


def make_hall(directory: Path, clock: ManualClock, extra: str = "") -> Hall:
    site = directory / "site.toml"
    site.write_text(f"schema_version = 1\n[site]\ndata_dir = {json.dumps(str(directory))}\n{extra}")
    hall = Hall(load_hall_settings([site]), clock)
    hall.start()  # the serving process: recovers ticket numbers, runs the sender
    return hall
