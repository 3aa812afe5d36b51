"""The Simplified Chinese font, registered as Kivy's default (``DEFAULT_FONT``), so every
Label draws Chinese and Latin text without naming a font.

A configured path wins; otherwise the usual Debian/Raspberry Pi OS places are searched
(``font_cache.CANDIDATES``). Kivy opens a copy of the face prepared once in the cache
(kiosk/ui/font_cache.py: the collection's Simplified Chinese face, CFF subroutines inlined); the
app's start never waits for that preparation (``wait=False``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kivy.core.text import DEFAULT_FONT, LabelBase

from kiosk.flows.base import KioskError
from kiosk.ui.font_cache import (
    CANDIDATES,
    FaceNotFound,
    bold_beside,
    default_cache_dir,
    face_file,
)
from kiosk.ui.settings import UiSettings

__all__ = ["CANDIDATES", "FontError", "Fonts", "register_default_font", "resolve_fonts"]


class FontError(KioskError, FileNotFoundError):
    code = "font_missing"


@dataclass(frozen=True)
class Fonts:
    regular: Path  # a single-face file Kivy can open
    bold: Path | None
    source: Path  # where it came from (a collection, or the same file)


def _face_file(path: Path, family: str, cache_dir: Path, wait: bool) -> Path:
    try:
        return face_file(path, family, cache_dir, wait=wait)
    except FaceNotFound as error:
        raise FontError(str(error)) from None


def resolve_fonts(
    settings: UiSettings, env: Mapping[str, str] = os.environ, *, wait: bool = True
) -> Fonts:
    """The font files to register. ``wait=False`` (the app's start): never wait for a face to
    be prepared; use the plain copy meanwhile (kiosk/ui/font_cache.py)."""
    cache_dir = Path(settings.font_cache_dir) if settings.font_cache_dir else default_cache_dir(env)
    if settings.font_path:
        source, family = Path(settings.font_path), settings.font_family
        if not source.is_file():
            raise FontError(f"[kiosk.ui] font_path {source} does not exist")
    else:
        found = next(((Path(p), f) for p, f in CANDIDATES if Path(p).is_file()), None)
        if found is None:
            searched = "\n  ".join(p for p, _ in CANDIDATES)
            raise FontError(
                "no Simplified Chinese font found. Install fonts-noto-cjk or set "
                f"[kiosk.ui] font_path. Searched:\n  {searched}"
            )
        source, family = found
    bold_source = Path(settings.font_bold_path) if settings.font_bold_path else bold_beside(source)
    if bold_source is not None and not bold_source.is_file():
        raise FontError(f"[kiosk.ui] font_bold_path {bold_source} does not exist")
    return Fonts(
        regular=_face_file(source, family, cache_dir, wait),
        bold=None if bold_source is None else _face_file(bold_source, family, cache_dir, wait),
        source=source,
    )


def register_default_font(fonts: Fonts) -> None:
    """Make ``fonts`` Kivy's default. Call before the first Label is drawn."""
    bold = str(fonts.bold) if fonts.bold is not None else None
    LabelBase.register(DEFAULT_FONT, str(fonts.regular), fn_bold=bold)
