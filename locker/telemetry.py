"""Host health for telemetry: temperature, disk, memory, uptime (docs/mqtt.md "Telemetry").

Each reading is ``None`` where this machine cannot measure it (a laptop has no SoC thermal zone),
never a made-up value. Linux sources: /sys/class/thermal, statvfs, /proc/meminfo, /proc/uptime.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
MEMINFO = Path("/proc/meminfo")
UPTIME = Path("/proc/uptime")


def host_metrics(data_dir: Path) -> dict[str, Any]:
    return {
        "cpu_temp_c": _cpu_temp_c(),
        "disk_free_bytes": _disk_free_bytes(data_dir),
        "mem_free_bytes": _mem_available_bytes(),
        "uptime_s": _uptime_s(),
    }


def _cpu_temp_c() -> float | None:
    try:
        return round(int(THERMAL_ZONE.read_text().strip()) / 1000, 1)  # millidegrees
    except (OSError, ValueError):
        return None


def _disk_free_bytes(directory: Path) -> int | None:
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _mem_available_bytes() -> int | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # reported in kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _uptime_s() -> float | None:
    try:
        return float(UPTIME.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
