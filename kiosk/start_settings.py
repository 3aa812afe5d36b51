"""What the kiosk's first frame needs from the configuration, checked before the window opens.

Validating every section (kiosk/settings.py: the drivers', the embedded hall's and the uplink's
models) costs about as long again as a bare Kivy app takes to show its first frame, so the app
(kiosk/app.py "Start-up") checks only these parts first:

- ``[site]``: ``data_dir`` holds Kivy's home and the kiosk's state;
- ``[kiosk.ui]``: window, font and pacing;
- ``[kiosk.locker]``: whether the pickup tile is offered.

``StartSettings.full()`` then checks every layer exactly as ``load_kiosk_settings`` does, on the
frame after the first; a problem found there shows the out-of-service page and the app exits 1.
``kiosk.service`` also runs ``python -m kiosk --check-config`` before the app, so a bad file
stops the service before the window in production.

Imports here stay light (no drivers, no hall): see ``tests/kiosk/test_start_settings.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from hallkiosk.config import LoadedConfig, StrictModel, load
from hallkiosk.site import SiteConfig
from kiosk.ui.settings import UiSettings

if TYPE_CHECKING:
    from kiosk.settings import KioskSettings

FilePath = Annotated[str, Field(max_length=4096)]


class LockerLinkSettings(StrictModel):
    """``[kiosk.locker]``: lockerd on this device (a cabinet with a screen)."""

    enabled: bool = False
    socket_path: FilePath = ""  # default {data_dir}/lockerd.sock, as lockerd's own default
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 30.0


@dataclass(frozen=True)
class StartSettings:
    site: SiteConfig
    ui: UiSettings
    locker: LockerLinkSettings
    # the layers read, checked whole by ``full``; None when built from checked settings
    loaded: LoadedConfig | None
    checked: KioskSettings | None = None

    @classmethod
    def load(cls, paths: Sequence[str | Path], *, with_defaults: bool = True) -> StartSettings:
        """Read every layer; check only the first frame's parts. Raises ConfigError."""
        loaded = load(list(paths), with_defaults=with_defaults)
        return cls(
            site=loaded.validate(("site",), SiteConfig),
            ui=loaded.validate(("kiosk", "ui"), UiSettings),
            locker=loaded.validate(("kiosk", "locker"), LockerLinkSettings),
            loaded=loaded,
        )

    @classmethod
    def of(cls, settings: KioskSettings) -> StartSettings:
        """From settings already checked whole (tests, the demo)."""
        kiosk = settings.kiosk
        return cls(settings.site, kiosk.ui, kiosk.locker, loaded=None, checked=settings)

    @property
    def data_dir(self) -> Path:
        return Path(self.site.data_dir)

    @property
    def has_locker(self) -> bool:
        return self.locker.enabled

    def full(self) -> KioskSettings:
        """Every section checked (ConfigError listing every problem), as at ``--check-config``."""
        if self.checked is not None:
            return self.checked
        if self.loaded is None:
            raise RuntimeError("StartSettings holds neither layers nor checked settings")
        from kiosk.settings import kiosk_settings_from  # noqa: PLC0415 - the heavy models

        return kiosk_settings_from(self.loaded)
