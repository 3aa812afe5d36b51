"""Where python-escpos keeps its parsed printer capabilities.

python-escpos parses its 1 MB ``capabilities.json`` with a YAML parser on import (about 130 ms on
a desktop, several times that on a Pi) unless ``ESCPOS_CAPABILITIES_PICKLE_DIR`` names a folder
holding a pickle of the result. Without it the library makes a new temporary folder per process,
writes the pickle there and never reads it again, so every start pays the parse and leaves a
folder behind. ``use_capabilities_cache`` points it at a lasting cache folder before the first
``import escpos``: systemd's ``CACHE_DIRECTORY`` (kiosk.service), else ``$XDG_CACHE_HOME`` or
``~/.cache``, under ``hallkiosk/escpos``. The library re-parses when its JSON is newer than the
pickle, so an upgrade is picked up.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

PICKLE_DIR_VAR = "ESCPOS_CAPABILITIES_PICKLE_DIR"


def capabilities_cache_dir(env: MutableMapping[str, str]) -> Path:
    systemd = env.get("CACHE_DIRECTORY", "").split(":")[0]
    if systemd:
        return Path(systemd) / "escpos"
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hallkiosk" / "escpos"


def use_capabilities_cache(env: MutableMapping[str, str] = os.environ) -> Path | None:
    """Set the pickle folder unless the environment already names one; None when the cache
    folder cannot be made (the library then falls back to its per-process folder)."""
    if env.get(PICKLE_DIR_VAR):
        return Path(env[PICKLE_DIR_VAR])
    folder = capabilities_cache_dir(env)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    env[PICKLE_DIR_VAR] = str(folder)
    return folder
