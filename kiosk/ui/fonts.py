"""The Simplified Chinese font, registered as Kivy's default (``DEFAULT_FONT``), so every
Label draws Chinese and Latin text without naming a font.

A configured path wins; otherwise the usual Debian/Raspberry Pi OS places are searched. A font
collection (Noto Sans CJK's ``.ttc``) has its Simplified Chinese face copied out to a cache
file once (see ``sfnt``), because Kivy can only open a collection's first face.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kivy.core.text import DEFAULT_FONT, LabelBase

from kiosk.flows.base import KioskError
from kiosk.ui.settings import UiSettings
from kiosk.ui.sfnt import extract_face, find_face, read_faces

# (path, family to take from it when it is a collection), best first
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", "Noto Sans CJK SC"),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "WenQuanYi Micro Hei"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "WenQuanYi Zen Hei"),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "Droid Sans Fallback"),
)


class FontError(KioskError, FileNotFoundError):
    code = "font_missing"


@dataclass(frozen=True)
class Fonts:
    regular: Path  # a single-face file Kivy can open
    bold: Path | None
    source: Path  # where it came from (a collection, or the same file)


def default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("CACHE_DIRECTORY") or env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base.split(":")[0]) / "hallkiosk" / "fonts"


def single_face(path: Path, family: str, cache_dir: Path) -> Path:
    """``path`` itself if it holds one face, else ``family``'s face extracted into the cache."""
    faces = read_faces(path)
    if len(faces) == 1:
        return path
    face = find_face(faces, family)
    if face is None:
        names = sorted({name for f in faces for name in f.families})
        raise FontError(f"{path} has no face named {family!r}; it has: {', '.join(names)}")
    stat = path.stat()
    target = cache_dir / f"{path.stem}-{face.index}-{stat.st_size}-{stat.st_mtime_ns}.otf"
    if not target.exists():
        extract_face(path, face, target)
    return target


def _bold_beside(regular: Path) -> Path | None:
    bold = regular.with_name(regular.name.replace("Regular", "Bold"))
    return bold if bold != regular and bold.exists() else None


def resolve_fonts(settings: UiSettings, env: Mapping[str, str] = os.environ) -> Fonts:
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
    bold_source = Path(settings.font_bold_path) if settings.font_bold_path else _bold_beside(source)
    if bold_source is not None and not bold_source.is_file():
        raise FontError(f"[kiosk.ui] font_bold_path {bold_source} does not exist")
    return Fonts(
        regular=single_face(source, family, cache_dir),
        bold=None if bold_source is None else single_face(bold_source, family, cache_dir),
        source=source,
    )


def register_default_font(fonts: Fonts) -> None:
    """Make ``fonts`` Kivy's default. Call before the first Label is drawn."""
    bold = str(fonts.bold) if fonts.bold is not None else None
    LabelBase.register(DEFAULT_FONT, str(fonts.regular), fn_bold=bold)
