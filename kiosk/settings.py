"""``[kiosk]``: the kiosk app's section (docs/config.md "[kiosk]"), read once at start.

``load_kiosk_settings(paths)`` validates ``[site]``, ``[kiosk]`` and ``[uplink]`` (and, for the
embedded hall, ``[hall]``) from the same layers as every other component and returns typed,
immutable values; there is no global config object. Paths left empty default to files under
``[site] data_dir``.

The kiosk's device id is ``[kiosk] device_id``, or ``[site] device_id`` when that is empty. On a
kiosk of its own the site's id is the kiosk's (its certificate's CN); a cabinet with a screen
runs lockerd and the kiosk under the one device id, as components ``lockerd`` and ``kiosk``.
The override is for several simulated devices on one machine.

Offline ticket ranges must be the ones the hall gives this device
(``[[hall.queue.offline_ranges]]``). With the embedded hall both sections come from the same
layers and a mismatch fails at start; over MQTT the hall's configuration lives on the hall, so
provisioning writes both (``offline_range_problems`` checks a pair).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import Field, model_validator

from drivers.camera.settings import CameraSettings
from drivers.gpio.settings import GpioSettings
from drivers.identity import IdentityReaderSettings
from drivers.printer.settings import PrinterSettings
from drivers.scanner.settings import ScannerSettings
from drivers.voice.settings import VoiceSettings
from hall.settings import HallConfig, HallSettings, QueueSettings
from hallkiosk.config import ConfigError, LoadedConfig, StrictModel, load
from hallkiosk.site import SiteConfig
from kiosk.start_settings import LockerLinkSettings
from kiosk.ui.settings import UiSettings
from uplink.settings import UplinkSettings
from uplink.topics import HALL_IDENTITY_PREFIX

COMPONENT: Final = "kiosk"
FilePath = Annotated[str, Field(max_length=4096)]
Timeout = Annotated[float, Field(gt=0, le=120)]
TicketType = Literal["submit", "collect", "consult"]
# The hall refuses chunks above its [hall.prereview] max_chunk_bytes (at most 1 MiB).
CHUNK_MIN_BYTES: Final = 1024
CHUNK_MAX_BYTES: Final = 1024 * 1024


class OfflineRange(StrictModel):
    """Ticket numbers this kiosk may hand out on its own (in every category)."""

    first: Annotated[int, Field(ge=1, le=9999)]
    last: Annotated[int, Field(ge=1, le=9999)]

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.last < self.first:
            raise ValueError(f"last ({self.last}) < first ({self.first})")
        return self


class OfflineSettings(StrictModel):
    """``[kiosk.offline]``: what the kiosk does while the hall cannot be reached."""

    # Must equal the hall's [[hall.queue.offline_ranges]] for this device. Empty: no offline
    # tickets (the applicant is told the hall cannot be reached).
    ranges: Annotated[list[OfflineRange], Field(max_length=16)] = Field(default_factory=list)
    # An offline check-in's ticket goes to this ticket type of the booking's area; must equal
    # [hall.appointments] ticket_type.
    appointment_ticket_type: TicketType = "submit"
    # Pre-review files travel in chunks of this size (base64 in the request adds a third).
    upload_chunk_bytes: Annotated[int, Field(ge=CHUNK_MIN_BYTES, le=CHUNK_MAX_BYTES)] = 64 * 1024
    # How often queued pre-reviews are retried, and the catalog and appointment list refreshed
    # when missing, while the hall is reachable.
    retry_interval_s: Annotated[float, Field(ge=1, le=3600)] = 30.0
    # More events than this waiting for the hall raises the outbox_over_limit alarm (cleared
    # once below it again); nothing is ever dropped (kiosk/services/backlog.py).
    outbox_alarm_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000

    @model_validator(mode="after")
    def _no_overlap(self) -> Self:
        spans = sorted((r.first, r.last) for r in self.ranges)
        for (f1, l1), (f2, l2) in itertools.pairwise(spans):
            if f2 <= l1:
                raise ValueError(f"offline ranges {f1}-{l1} and {f2}-{l2} overlap")
        return self

    def numbers(self) -> list[tuple[int, int]]:
        return sorted((r.first, r.last) for r in self.ranges)


class RequestTimeouts(StrictModel):
    """``[kiosk.timeouts]``: how long the kiosk waits for the hall per request kind."""

    catalog_s: Timeout = 5.0
    ticket_issue_s: Timeout = 5.0
    ticket_status_s: Timeout = 3.0
    appointment_lookup_s: Timeout = 5.0
    appointment_checkin_s: Timeout = 5.0
    appointment_sync_s: Timeout = 10.0
    prereview_upload_s: Timeout = 15.0
    prereview_submit_s: Timeout = 10.0
    prereview_status_s: Timeout = 5.0
    case_lookup_s: Timeout = 3.0  # a clerk at the locker waits; then the applicant's card

    def for_kind(self, kind: str) -> float:
        """``ticket.issue`` -> ``ticket_issue_s``; KeyError for an unknown kind."""
        name = kind.replace(".", "_") + "_s"
        if name not in type(self).model_fields:
            raise KeyError(f"no timeout for request kind {kind!r}")
        value: float = getattr(self, name)
        return value


class IdleSettings(StrictModel):
    """``[kiosk.idle]``: an untouched screen goes home and forgets personal data."""

    normal_s: Annotated[float, Field(ge=15, le=600)] = 60.0
    elderly_s: Annotated[float, Field(ge=15, le=1800)] = 120.0

    @model_validator(mode="after")
    def _elders_get_longer(self) -> Self:
        if self.elderly_s < self.normal_s:
            raise ValueError(
                f"elderly_s ({self.elderly_s}) must be at least normal_s ({self.normal_s})"
            )
        return self


class ElderlySettings(StrictModel):
    """``[kiosk.elderly]``: 绿色通道 by age, read from the ID card's birth date."""

    green_channel: bool = True
    age: Annotated[int, Field(ge=50, le=100)] = 65


class KioskTelemetrySettings(StrictModel):
    """``[kiosk.telemetry]``: the kiosk's health snapshot for the hall (docs/kiosk.md)."""

    # A snapshot is also taken at once (at most once a second) when the kiosk goes in or out of
    # service or a device's health changes.
    interval_s: Annotated[float, Field(ge=5, le=3_600)] = 60.0


class KioskConfig(StrictModel):
    device_id: Annotated[str, Field(max_length=64, pattern=r"^([A-Za-z0-9_.-]+)?$")] = ""
    # embedded: the hall in this process ([hall] from the same layers); mqtt: a hall service
    # over the [uplink] broker.
    hall_mode: Literal["embedded", "mqtt"] = "embedded"
    db_file: FilePath = ""  # default {data_dir}/kiosk.db: outbox, session, offline state
    spool_dir: FilePath = ""  # default {data_dir}/kiosk-spool: pre-review files not yet sent
    identity_key_file: FilePath = ""  # default {data_dir}/identity.key (the hall secret)
    timeouts: RequestTimeouts = Field(default_factory=RequestTimeouts)
    idle: IdleSettings = Field(default_factory=IdleSettings)
    elderly: ElderlySettings = Field(default_factory=ElderlySettings)
    offline: OfflineSettings = Field(default_factory=OfflineSettings)
    locker: LockerLinkSettings = Field(default_factory=LockerLinkSettings)
    telemetry: KioskTelemetrySettings = Field(default_factory=KioskTelemetrySettings)
    identity: IdentityReaderSettings = Field(default_factory=IdentityReaderSettings)
    printer: PrinterSettings = Field(default_factory=PrinterSettings)
    scanner: ScannerSettings = Field(default_factory=ScannerSettings)
    camera: CameraSettings = Field(default_factory=CameraSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    gpio: GpioSettings = Field(default_factory=GpioSettings)
    ui: UiSettings = Field(default_factory=UiSettings)  # window, font, pacing (kiosk/ui)


@dataclass(frozen=True)
class KioskSettings:
    site: SiteConfig
    kiosk: KioskConfig
    uplink: UplinkSettings
    hall: HallSettings | None  # the embedded hall's settings; None over MQTT
    sources: tuple[str, ...]

    @property
    def device_id(self) -> str:
        return self.kiosk.device_id or self.site.device_id

    @property
    def data_dir(self) -> Path:
        return Path(self.site.data_dir)

    def _path(self, value: str, default_name: str) -> Path:
        path = Path(value) if value else self.data_dir / default_name
        return path if path.is_absolute() else self.data_dir / path

    @property
    def db_path(self) -> Path:
        return self._path(self.kiosk.db_file, "kiosk.db")

    @property
    def spool_dir(self) -> Path:
        return self._path(self.kiosk.spool_dir, "kiosk-spool")

    @property
    def identity_key_path(self) -> Path:
        return self._path(self.kiosk.identity_key_file, "identity.key")

    @property
    def locker_socket_path(self) -> Path | None:
        """lockerd's socket, or None when this kiosk has no locker."""
        if not self.kiosk.locker.enabled:
            return None
        return self._path(self.kiosk.locker.socket_path, "lockerd.sock")


def offline_range_problems(
    ranges: Sequence[tuple[int, int]], device_id: str, queue: QueueSettings
) -> list[str]:
    """Why ``ranges`` (first, last) are not the ones ``queue`` gives ``device_id``: they must be
    exactly the hall's offline ranges for the device, and so outside every online range."""
    problems = []
    mine = sorted(ranges)
    halls = sorted((r.first, r.last) for r in queue.offline_ranges if r.device == device_id)
    for first, last in mine:
        for c in queue.categories:
            if first <= c.last and c.first <= last:
                problems.append(
                    f"offline range {first}-{last} overlaps the online range of category "
                    f"{c.id} ({c.first}-{c.last})"
                )
    if mine != halls:
        shown = ", ".join(f"{first}-{last}" for first, last in halls) or "none"
        problems.append(
            f"the hall gives {device_id} the offline range(s) {shown}; "
            f"[kiosk.offline] ranges must be the same"
        )
    return problems


def load_kiosk_settings(
    paths: Sequence[str | Path], *, with_defaults: bool = True
) -> KioskSettings:
    """Load and check every layer. Raises ConfigError listing every problem found."""
    return kiosk_settings_from(load(list(paths), with_defaults=with_defaults))


def kiosk_settings_from(loaded: LoadedConfig) -> KioskSettings:
    """Check every section of layers already read (ConfigError listing every problem)."""
    sections = loaded.sections({"site": SiteConfig, "kiosk": KioskConfig, "uplink": UplinkSettings})
    site, kiosk, uplink = sections["site"], sections["kiosk"], sections["uplink"]
    assert isinstance(site, SiteConfig)
    assert isinstance(kiosk, KioskConfig)
    assert isinstance(uplink, UplinkSettings)
    hall: HallSettings | None = None
    if kiosk.hall_mode == "embedded":
        hall_config = loaded.section("hall", HallConfig)
        hall = HallSettings(site=site, hall=hall_config, sources=loaded.files)
    settings = KioskSettings(site, kiosk, uplink, hall, loaded.files)
    problems = _cross_problems(settings, loaded)
    if problems:
        raise ConfigError(problems)
    return settings


def _cross_problems(settings: KioskSettings, loaded: LoadedConfig) -> list[str]:
    kiosk, problems = settings.kiosk, []
    device_id = settings.device_id
    if device_id.startswith(HALL_IDENTITY_PREFIX):
        where = ("kiosk", "device_id") if kiosk.device_id else ("site", "device_id")
        problems.append(
            loaded.describe(where, f"{HALL_IDENTITY_PREFIX!r} is reserved for the hall's identity")
        )
    if kiosk.hall_mode == "mqtt" and not settings.uplink.enabled:
        problems.append(
            loaded.describe(
                ("kiosk", "hall_mode"), '"mqtt" needs [uplink] enabled = true (the hall broker)'
            )
        )
    if kiosk.hall_mode == "embedded" and settings.uplink.enabled:
        problems.append(
            loaded.describe(
                ("kiosk", "hall_mode"),
                '"embedded" runs the hall in this process, but [uplink] is enabled; '
                'use hall_mode = "mqtt" to talk to the hall broker',
            )
        )
    hall = settings.hall
    if hall is not None:
        queue = hall.hall.queue
        for problem in offline_range_problems(kiosk.offline.numbers(), device_id, queue):
            problems.append(loaded.describe(("kiosk", "offline", "ranges"), problem))
        wanted = hall.hall.appointments.ticket_type
        if kiosk.offline.appointment_ticket_type != wanted:
            problems.append(
                loaded.describe(
                    ("kiosk", "offline", "appointment_ticket_type"),
                    f"must equal [hall.appointments] ticket_type ({wanted!r})",
                )
            )
        limit = hall.hall.prereview.max_chunk_bytes
        if kiosk.offline.upload_chunk_bytes > limit:
            problems.append(
                loaded.describe(
                    ("kiosk", "offline", "upload_chunk_bytes"),
                    f"{kiosk.offline.upload_chunk_bytes} is above the hall's max_chunk_bytes "
                    f"({limit})",
                )
            )
    return problems
