"""``[lockerd]``: the locker daemon's section, validated once at start-up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import Field, model_validator

from drivers.lockboard.settings import BOARD_RANGE, CHANNEL_RANGE, BusSettings
from hallkiosk import config
from hallkiosk.config import StrictModel
from hallkiosk.site import SiteConfig
from uplink.settings import UplinkSettings

BaySize = Literal["S", "M", "L"]


class BayConfig(StrictModel):
    """``[[lockerd.bays]]``: one physical bay and where its lock is wired."""

    id: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]
    size: BaySize
    bus: str
    board: Annotated[int, Field(ge=0, le=31)]
    channel: Annotated[int, Field(ge=1, le=48)]


class ApiConfig(StrictModel):
    """``[lockerd.api]``: the local Unix socket."""

    # Empty means ``{data_dir}/lockerd.sock``.
    socket_path: str = ""
    # Access is by socket ownership and mode: only the owner and the group may connect.
    socket_mode: Annotated[int, Field(ge=0o600, le=0o666)] = 0o660
    # Group that owns the socket (the kiosk user's group). Empty keeps the daemon's group.
    socket_group: str = ""
    # An idle connection (no complete request line for this long) is closed.
    request_timeout_s: Annotated[float, Field(gt=0, le=120)] = 30.0
    max_request_bytes: Annotated[int, Field(ge=1024, le=1_048_576)] = 65_536


class PickupConfig(StrictModel):
    """``[lockerd.pickup]``: deposits, passwords and lockouts."""

    deadline_days: Annotated[int, Field(ge=1, le=90)] = 7
    max_wrong_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    lockout_s: Annotated[int, Field(ge=60, le=86_400)] = 900
    # scrypt cost for the stored password hash: slow on purpose; 2**14 = 16 MiB per check.
    scrypt_n: Annotated[int, Field(ge=2, le=2**20)] = 2**14
    scrypt_r: Annotated[int, Field(ge=1, le=32)] = 8
    scrypt_p: Annotated[int, Field(ge=1, le=16)] = 1

    @model_validator(mode="after")
    def _n_power_of_two(self) -> PickupConfig:
        if self.scrypt_n & (self.scrypt_n - 1):
            raise ValueError("scrypt_n must be a power of two")
        return self


class DoorWatchConfig(StrictModel):
    """``[lockerd.door_watch]``: polling and the door alarms."""

    # Catch a whole open-take-close between two polls: at most 500 ms (hardware notes).
    poll_interval_ms: Annotated[int, Field(ge=50, le=500)] = 250
    # After an unlock, the door must be seen open within this window or it is a jam.
    jam_window_s: Annotated[float, Field(ge=1, le=60)] = 10.0
    left_open_alarm_s: Annotated[float, Field(ge=5, le=3_600)] = 120.0
    # A door is "unknown" only after this many failed polls of its board in a row.
    failed_polls_for_unknown: Annotated[int, Field(ge=1, le=20)] = 3


class TelemetryConfig(StrictModel):
    """``[lockerd.telemetry]``: health reports to the hall and the overdue sweep."""

    # A snapshot is also taken at once when a door or an alarm changes.
    interval_s: Annotated[float, Field(ge=5, le=3_600)] = 60.0
    # How often deposits past their deadline are looked for (and reported once each).
    overdue_check_s: Annotated[float, Field(ge=5, le=3_600)] = 60.0


class LockerdConfig(StrictModel):
    # Empty means ``{data_dir}/locker.db``.
    db_path: str = ""
    # Keyed-hash secret for identities (HMAC). Empty means ``{data_dir}/identity.key``.
    identity_key_file: str = ""
    api: ApiConfig = ApiConfig()
    pickup: PickupConfig = PickupConfig()
    door_watch: DoorWatchConfig = DoorWatchConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    buses: Annotated[list[BusSettings], Field(min_length=1)]
    bays: Annotated[list[BayConfig], Field(min_length=1)]


def wiring_problems(cfg: LockerdConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Cross-checks between buses and bays, each with the key it is about."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    buses: dict[str, BusSettings] = {}
    bus: BusSettings | None
    for i, bus in enumerate(cfg.buses):
        if bus.name in buses:
            problems.append((("lockerd", "buses", i, "name"), f"bus name {bus.name!r} used twice"))
        buses[bus.name] = bus
    seen_ids: set[str] = set()
    seen_wires: dict[tuple[str, int, int], str] = {}
    for i, bay in enumerate(cfg.bays):
        here: tuple[str | int, ...] = ("lockerd", "bays", i)
        if bay.id in seen_ids:
            problems.append(((*here, "id"), f"bay id {bay.id!r} used twice"))
        seen_ids.add(bay.id)
        bus = buses.get(bay.bus)
        if bus is None:
            problems.append(((*here, "bus"), f"no bus named {bay.bus!r}"))
            continue
        lo, hi = BOARD_RANGE[bus.protocol]
        if not lo <= bay.board <= hi:
            problems.append(
                (
                    (*here, "board"),
                    f"board {bay.board} outside {lo}-{hi} for protocol {bus.protocol}",
                )
            )
        lo, hi = CHANNEL_RANGE[bus.protocol]
        if not lo <= bay.channel <= hi:
            problems.append(
                (
                    (*here, "channel"),
                    f"channel {bay.channel} outside {lo}-{hi} for protocol {bus.protocol}",
                )
            )
        wire = (bay.bus, bay.board, bay.channel)
        if wire in seen_wires:
            problems.append(((*here, "channel"), f"same lock as bay {seen_wires[wire]}"))
        seen_wires[wire] = bay.id
    return problems


RUNTIME_FILE_NAME = "runtime.toml"
# Keys the hall may change at run time (``set_config``): read at each use, so they apply at once.
RUNTIME_KEYS: Final = (
    "lockerd.pickup.deadline_days",
    "lockerd.pickup.max_wrong_attempts",
    "lockerd.pickup.lockout_s",
    "lockerd.door_watch.jam_window_s",
    "lockerd.door_watch.left_open_alarm_s",
    "lockerd.telemetry.interval_s",
    "lockerd.telemetry.overdue_check_s",
)


class LockerdSettings:
    """The typed sections lockerd reads, with derived paths resolved once, and the layers they
    came from (so a run-time change can be validated against all of them)."""

    def __init__(
        self,
        site: SiteConfig,
        lockerd: LockerdConfig,
        uplink: UplinkSettings | None = None,
        *,
        sources: Sequence[Path] = (),
        with_defaults: bool = True,
    ) -> None:
        self.site = site
        self.lockerd = lockerd
        self.uplink = uplink if uplink is not None else UplinkSettings()
        self.sources = tuple(sources)
        self.with_defaults = with_defaults
        data = Path(site.data_dir)
        self.data_dir = data
        # the top layer, written only by set_config (locker/runtime_config.py)
        self.runtime_config_path = data / RUNTIME_FILE_NAME
        self.db_path = Path(lockerd.db_path) if lockerd.db_path else data / "locker.db"
        self.socket_path = (
            Path(lockerd.api.socket_path) if lockerd.api.socket_path else data / "lockerd.sock"
        )
        self.identity_key_path = (
            Path(lockerd.identity_key_file) if lockerd.identity_key_file else data / "identity.key"
        )


def load_settings(
    paths: Sequence[str | Path], *, with_defaults: bool = True, runtime: bool = True
) -> LockerdSettings:
    """Load and check every layer; then, if ``runtime``, the run-time overlay in data_dir."""
    sources = [Path(p) for p in paths]
    settings = _load(sources, with_defaults)
    runtime_file = settings.runtime_config_path
    if runtime and runtime_file.is_file() and runtime_file not in sources:
        check_runtime_layer(runtime_file)
        settings = _load([*sources, runtime_file], with_defaults)
    return settings


def check_runtime_layer(path: Path) -> None:
    """The run-time overlay may hold only ``RUNTIME_KEYS``; anything else is refused."""
    layer = config.read_layer(path)
    problems = [
        f"{path}: {key}: not changeable at run time (allowed: {', '.join(RUNTIME_KEYS)})"
        for key in flatten(layer.data)
        if key != "schema_version" and key not in RUNTIME_KEYS
    ]
    if problems:
        raise config.ConfigError(problems)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaf values of nested tables by dotted key: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        out.update(flatten(value, key + ".") if isinstance(value, dict) else {key: value})
    return out


def _load(sources: list[Path], with_defaults: bool) -> LockerdSettings:
    loaded = config.load(sources, with_defaults=with_defaults)
    sections = loaded.sections(
        {"site": SiteConfig, "lockerd": LockerdConfig, "uplink": UplinkSettings}
    )
    site = sections["site"]
    lockerd = sections["lockerd"]
    uplink = sections["uplink"]
    assert isinstance(site, SiteConfig) and isinstance(lockerd, LockerdConfig)
    assert isinstance(uplink, UplinkSettings)
    problems = [loaded.describe(loc, reason) for loc, reason in wiring_problems(lockerd)]
    if problems:
        raise config.ConfigError(problems)
    return LockerdSettings(site, lockerd, uplink, sources=sources, with_defaults=with_defaults)
