"""The run-time configuration overlay: ``{data_dir}/runtime.toml``, written by ``set_config``.

It is the top configuration layer, above the site file, so a value the hall sets survives a
restart. Only ``RUNTIME_KEYS`` may appear in it (values read at each use, so they apply at once).
A change is validated with every layer exactly as start-up validates it, and the file is replaced
atomically (write, fsync, rename, fsync the directory): a power cut leaves the old or the new file,
never half of one.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path

from hallkiosk.config import SCHEMA_VERSION, ConfigError, read_layer
from locker.config import RUNTIME_KEYS, LockerdSettings, flatten, load_settings

Scalar = int | float


def set_value(settings: LockerdSettings, key: str, value: Scalar) -> LockerdSettings:
    """Write ``key = value`` into the overlay and return the settings with it applied.

    Raises ``ConfigError`` (nothing written) when the key is not changeable at run time or the
    value does not pass the same checks as at start-up.
    """
    if key not in RUNTIME_KEYS:
        raise ConfigError([f"{key}: not changeable at run time"])
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError([f"{key}: must be a number"])
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError([f"{key}: must be finite"])
    path = settings.runtime_config_path
    values = read_values(path)
    values[key] = value
    text = render(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".runtime.", suffix=".toml", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # the same layers as at start-up, with the candidate on top
        updated = load_settings(
            [*_without(settings.sources, path), tmp],
            with_defaults=settings.with_defaults,
            runtime=False,
        )
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return LockerdSettings(
        updated.site,
        updated.lockerd,
        updated.uplink,
        sources=(*_without(settings.sources, path), path),
        with_defaults=settings.with_defaults,
    )


def read_values(path: Path) -> dict[str, Scalar]:
    """The overlay's values by dotted key; an absent file is empty."""
    if not path.is_file():
        return {}
    return {
        key: value
        for key, value in flatten(read_layer(path).data).items()
        if key != "schema_version" and isinstance(value, int | float)
    }


def render(values: dict[str, Scalar]) -> str:
    """TOML for dotted keys of numbers: one table per section, keys sorted."""
    tables: dict[str, list[str]] = {}
    for key in sorted(values):
        table, _, leaf = key.rpartition(".")
        tables.setdefault(table, []).append(f"{leaf} = {values[key]!r}")
    lines = [
        "# Written by lockerd (set_config from the hall). Edit with care: lockerd rewrites it.",
        f"schema_version = {SCHEMA_VERSION}",
    ]
    for table, entries in tables.items():
        lines += ["", f"[{table}]", *entries]
    return "\n".join(lines) + "\n"


def _without(sources: tuple[Path, ...], path: Path) -> list[Path]:
    return [p for p in sources if p != path]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
