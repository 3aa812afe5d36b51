"""The ``[kiosk.ui]`` settings: window, font and pacing of the touch UI."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hallkiosk.config import StrictModel

Pixels = Annotated[int, Field(ge=240, le=8192)]
FilePath = Annotated[str, Field(max_length=4096)]


class UiSettings(StrictModel):
    # kiosk screens stand in portrait; the Pi's KMS output is rotated by the display config
    window_width_px: Pixels = 1080
    window_height_px: Pixels = 1920
    fullscreen: bool = False
    # the panel's real density, for touch targets in millimetres (a 21.5" 1080p panel is ~102)
    screen_dpi: Annotated[float, Field(ge=40, le=600)] = 102.0
    # empty: search the usual places (see kiosk/ui/fonts.py)
    font_path: FilePath = ""
    font_bold_path: FilePath = ""
    # the face to take out of a font collection (.ttc)
    font_family: Annotated[str, Field(min_length=1, max_length=128)] = "Noto Sans CJK SC"
    # where an extracted face is kept; empty: $CACHE_DIRECTORY, $XDG_CACHE_HOME or ~/.cache
    font_cache_dir: FilePath = ""
    transition: Literal["none", "fade", "slide"] = "none"
    transition_s: Annotated[float, Field(ge=0.0, le=1.0)] = 0.15
    tick_interval_s: Annotated[float, Field(ge=0.05, le=5.0)] = 0.25
    default_language: Literal["zh_CN", "en"] = "zh_CN"
    # a kiosk that cannot be assembled shows why this long, then exits 1 (systemd restarts it)
    start_failed_exit_s: Annotated[float, Field(ge=0.0, le=600.0)] = 30.0
