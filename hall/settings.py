"""``[hall]``: the hall service's own configuration (docs/config.md, "[hall]").

Read once at start by ``load_hall_settings`` and kept as typed values; there is no global config.
Paths left empty default to files under ``[site] data_dir``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from hall.appointments.settings import AppointmentImportSettings
from hall.notify.settings import NotifySettings
from hallkiosk.config import StrictModel, load
from hallkiosk.site import SiteConfig
from uplink.settings import TlsSettings, is_loopback

Ident = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=64)]
FilePath = Annotated[str, Field(max_length=4096)]
TicketType = Literal["submit", "collect", "consult"]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _clock_time(value: str) -> time:
    if not _CLOCK.match(value):
        raise ValueError(f"{value!r} is not a 24-hour HH:MM time")
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class QuotaWindow(StrictModel):
    """Tickets of one category issued between ``start`` and ``end`` (local time) are capped."""

    start: str = "00:00"
    end: str = "24:00"
    max_tickets: Annotated[int, Field(ge=0, le=100_000)]

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        _clock_time(value)
        return value

    @field_validator("end")
    @classmethod
    def _end(cls, value: str) -> str:
        if value != "24:00":
            _clock_time(value)
        return value

    def minutes(self) -> tuple[int, int]:
        start = _clock_time(self.start)
        end = 24 * 60 if self.end == "24:00" else _to_minutes(_clock_time(self.end))
        return _to_minutes(start), end

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        start, end = self.minutes()
        if end <= start:
            raise ValueError(f"quota window {self.start}-{self.end} ends before it starts")
        return self


def _to_minutes(value: time) -> int:
    return value.hour * 60 + value.minute


class Category(StrictModel):
    """One ticket queue: a ticket type (收件/取件/咨询) of one business area."""

    id: Ident
    area: Ident
    area_zh: Name
    area_en: Name
    ticket_type: TicketType
    prefix: Annotated[str, Field(pattern=r"^[A-Z]{1,2}$")]
    first: Annotated[int, Field(ge=1, le=9998)] = 1
    last: Annotated[int, Field(ge=1, le=9999)] = 999
    quotas: list[QuotaWindow] = Field(default_factory=list)

    @model_validator(mode="after")
    def _range(self) -> Self:
        if self.last < self.first:
            raise ValueError(f"category {self.id}: last ({self.last}) < first ({self.first})")
        spans = sorted(q.minutes() for q in self.quotas)
        for (_s1, e1), (s2, _e2) in itertools.pairwise(spans):
            if s2 < e1:
                raise ValueError(f"category {self.id}: quota windows overlap")
        return self


class OfflineRange(StrictModel):
    """Numbers one kiosk may hand out on its own while the hall is unreachable (every category).
    They must lie outside every category's online range, so the two never collide."""

    device: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    first: Annotated[int, Field(ge=1, le=9999)]
    last: Annotated[int, Field(ge=1, le=9999)]


class QueueSettings(StrictModel):
    categories: list[Category] = Field(default_factory=list)
    offline_ranges: list[OfflineRange] = Field(default_factory=list)
    # A waiting normal ticket is overtaken by at most this many priority tickets (green channel,
    # checked-in bookings); after that it is called first.
    priority_overtake_max: Annotated[int, Field(ge=0, le=100)] = 3
    # The estimate uses the mean of the last N finished services of the category...
    service_time_samples: Annotated[int, Field(ge=1, le=1000)] = 20
    # ...or this, while there are none yet today.
    service_time_default_s: Annotated[float, Field(gt=0, le=14_400)] = 600.0
    # Number blocks reserved with one synced write; a power cut skips at most this many numbers
    # and never repeats one (docs/hall.md "Ticket numbers").
    number_block: Annotated[int, Field(ge=1, le=1000)] = 20

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [c.id for c in self.categories]
        if len(set(ids)) != len(ids):
            raise ValueError("category ids must be unique")
        prefixes = [c.prefix for c in self.categories]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("category prefixes must be unique (a ticket number names its queue)")
        spans = sorted((r.first, r.last, r.device) for r in self.offline_ranges)
        for first, last, device in spans:
            if last < first:
                raise ValueError(f"offline range of {device}: last < first")
            for c in self.categories:
                if first <= c.last and c.first <= last:
                    raise ValueError(
                        f"offline range of {device} ({first}-{last}) overlaps the online range "
                        f"of category {c.id} ({c.first}-{c.last})"
                    )
        for (_f1, l1, d1), (f2, _l2, d2) in itertools.pairwise(spans):
            if f2 <= l1:
                raise ValueError(f"offline ranges of {d1} and {d2} overlap")
        return self

    def category(self, category_id: str) -> Category | None:
        return next((c for c in self.categories if c.id == category_id), None)


class AppointmentSettings(StrictModel):
    # Check-in opens this long before the slot (default 30 minutes)...
    early_s: Annotated[int, Field(ge=0, le=86_400)] = 1800
    # ...and a booking is given up this long after the slot start (超过1小时未到场视为放弃).
    late_s: Annotated[int, Field(ge=60, le=86_400)] = 3600
    # How often the no-show sweep runs.
    sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # A booked appointment's SMS reminder goes out this long before the slot (0: none).
    reminder_before_s: Annotated[int, Field(ge=0, le=7 * 86_400)] = 86_400
    # The checked-in booking's priority ticket goes to this ticket type of the booking's area.
    ticket_type: TicketType = "submit"
    import_: AppointmentImportSettings = Field(
        default_factory=AppointmentImportSettings, alias="import"
    )


class ChecklistItem(StrictModel):
    id: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")]
    name_zh: Name
    name_en: Name
    required: bool = True


class Matter(StrictModel):
    """A service matter (事项) with its 收件清单 and 办事指南, shown on the kiosk."""

    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")]
    area: Ident
    name_zh: Name
    name_en: Name
    guide_zh: Annotated[str, Field(max_length=4000)] = ""
    guide_en: Annotated[str, Field(max_length=4000)] = ""
    department: Name = "综合受理"
    items: list[ChecklistItem] = Field(default_factory=list)


class PreReviewSettings(StrictModel):
    storage_dir: FilePath = ""  # default {data_dir}/prereview
    max_chunk_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 256 * 1024
    max_file_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 8 * 1024 * 1024
    max_files: Annotated[int, Field(ge=1, le=100)] = 30
    # An unfinished upload is kept this long for resuming, then its parts are removed.
    upload_expiry_s: Annotated[int, Field(ge=600, le=30 * 86_400)] = 7 * 86_400
    matters: list[Matter] = Field(default_factory=list)

    def matter(self, code: str) -> Matter | None:
        return next((m for m in self.matters if m.code == code), None)


class RegistrySettings(StrictModel):
    # Telemetry samples kept per device component; older ones are deleted on insert.
    telemetry_keep: Annotated[int, Field(ge=1, le=100_000)] = 500
    # Ingested event ids kept for deduplication (the outbox replays only recent ones).
    dedup_keep_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # A component's missing event seqs raise event_seq_gap when still missing this long after
    # the gap was noticed (events of different types may overtake each other in flight).
    seq_gap_grace_s: Annotated[int, Field(ge=10, le=86_400)] = 120


class HallMqttSettings(StrictModel):
    """How the hall reaches its own broker. Disabled: the hall runs embedded, in process."""

    enabled: bool = False
    host: Annotated[str, Field(min_length=1, max_length=253)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8883
    tls: TlsSettings = TlsSettings()
    # Several workers may share a hall's load; each needs its own client id.
    worker: Annotated[int, Field(ge=1, le=64)] = 1
    keepalive_s: Annotated[int, Field(ge=5, le=65535)] = 30
    reconnect_min_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    reconnect_max_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    session_expiry_s: Annotated[int, Field(ge=1, le=2**32 - 1)] = 14 * 86_400
    # Commands are valid this long after issue (devices refuse longer windows).
    command_ttl_s: Annotated[float, Field(ge=10, le=86_400)] = 300.0
    # How often worker 1 compares today's appointment list with the one it last published
    # (changes made in this process are pushed at once; an import by another process, and the
    # new service day after midnight, within this time).
    appointments_check_s: Annotated[float, Field(ge=0.2, le=300)] = 2.0

    @model_validator(mode="after")
    def _plain_only_on_loopback(self) -> Self:
        if not self.tls.enabled and not is_loopback(self.host):
            raise ValueError(f"plain MQTT to {self.host!r}: TLS is required off loopback")
        return self


class HallConfig(StrictModel):
    name_zh: Name = "政务服务中心"
    name_en: Name = "Government Service Center"
    db_file: FilePath = ""  # default {data_dir}/hall.db
    signing_key_file: FilePath = ""  # default {data_dir}/hall-command.key (Ed25519, 0600)
    identity_key_file: FilePath = ""  # default {data_dir}/identity.key (HMAC of ID numbers)
    seal_key_file: FilePath = ""  # default {data_dir}/hall-seal.key (X25519, for SMS secrets)
    mqtt: HallMqttSettings = HallMqttSettings()
    queue: QueueSettings = QueueSettings()
    appointments: AppointmentSettings = Field(default_factory=AppointmentSettings)
    prereview: PreReviewSettings = PreReviewSettings()
    notify: NotifySettings = Field(default_factory=NotifySettings)
    registry: RegistrySettings = RegistrySettings()


@dataclass(frozen=True)
class HallSettings:
    site: SiteConfig
    hall: HallConfig
    sources: tuple[str, ...]

    def _path(self, value: str, default_name: str) -> Path:
        path = Path(value) if value else Path(self.site.data_dir) / default_name
        return path if path.is_absolute() else Path(self.site.data_dir) / path

    @property
    def db_path(self) -> Path:
        return self._path(self.hall.db_file, "hall.db")

    @property
    def signing_key_path(self) -> Path:
        return self._path(self.hall.signing_key_file, "hall-command.key")

    @property
    def identity_key_path(self) -> Path:
        return self._path(self.hall.identity_key_file, "identity.key")

    @property
    def seal_key_path(self) -> Path:
        return self._path(self.hall.seal_key_file, "hall-seal.key")

    @property
    def prereview_dir(self) -> Path:
        return self._path(self.hall.prereview.storage_dir, "prereview")


def load_hall_settings(paths: Sequence[str | Path], *, with_defaults: bool = True) -> HallSettings:
    loaded = load(list(paths), with_defaults=with_defaults)
    sections = loaded.sections({"site": SiteConfig, "hall": HallConfig})
    site = sections["site"]
    hall = sections["hall"]
    assert isinstance(site, SiteConfig) and isinstance(hall, HallConfig)
    return HallSettings(site=site, hall=hall, sources=loaded.files)
