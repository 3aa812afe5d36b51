"""The default font draws Simplified Chinese: real glyphs (not tofu boxes), in their mainland
forms (the Simplified Chinese face of the collection, not its first, Japanese face)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kivy.core.text import DEFAULT_FONT
from kivy.core.text import Label as CoreLabel

from kiosk.ui.fonts import CANDIDATES, FontError, resolve_fonts
from kiosk.ui.settings import UiSettings
from kiosk.ui.sfnt import read_faces
from tests.kiosk.ui.harness import KivyHarness

NOTO_CJK = Path(CANDIDATES[0][0])
PRIVATE_USE = "\ue000"  # no font has it: drawn as the .notdef box ("tofu")


def glyph(text: str, font: str = DEFAULT_FONT) -> bytes:
    label = CoreLabel(text=text, font_size=64, font_name=font)
    label.refresh()
    pixels: bytes = label.texture.pixels
    return pixels


def test_chinese_characters_render_as_distinct_glyphs(kivy_window: KivyHarness) -> None:
    take, number, tofu = glyph("取"), glyph("号"), glyph(PRIVATE_USE)
    assert take != number, "two different characters drew the same picture: tofu"
    assert take != tofu
    assert number != tofu


@pytest.mark.skipif(not NOTO_CJK.is_file(), reason="fonts-noto-cjk is not installed")
def test_the_simplified_chinese_face_is_used_not_the_japanese_one(
    kivy_window: KivyHarness,
) -> None:
    # 直 differs between the mainland and the Japanese forms; face 0 of the .ttc is Japanese
    assert glyph("直") != glyph("直", font=str(NOTO_CJK))
    assert glyph("户") == glyph("户", font=str(NOTO_CJK))  # the same in both: same rendering


@pytest.mark.skipif(not NOTO_CJK.is_file(), reason="fonts-noto-cjk is not installed")
def test_a_collection_face_is_extracted_once_into_the_cache(tmp_path: Path) -> None:
    fonts = resolve_fonts(UiSettings(font_cache_dir=str(tmp_path)))
    assert fonts.source == NOTO_CJK
    (face,) = read_faces(fonts.regular)
    assert face.families == ("Noto Sans CJK SC",)
    assert fonts.regular.parent == tmp_path
    assert fonts.bold is not None
    assert read_faces(fonts.bold)[0].families == ("Noto Sans CJK SC",)
    stamp = fonts.regular.stat().st_mtime_ns
    again = resolve_fonts(UiSettings(font_cache_dir=str(tmp_path)))
    assert again.regular == fonts.regular
    assert again.regular.stat().st_mtime_ns == stamp  # not written again


def test_a_missing_configured_font_is_a_clear_error(tmp_path: Path) -> None:
    settings = UiSettings(font_path=str(tmp_path / "nope.ttf"), font_cache_dir=str(tmp_path))
    with pytest.raises(FontError, match=r"font_path .*nope\.ttf does not exist"):
        resolve_fonts(settings)


@pytest.mark.skipif(not NOTO_CJK.is_file(), reason="fonts-noto-cjk is not installed")
def test_a_face_missing_from_a_collection_lists_the_faces(tmp_path: Path) -> None:
    settings = UiSettings(
        font_path=str(NOTO_CJK), font_family="Noto Sans CJK XX", font_cache_dir=str(tmp_path)
    )
    with pytest.raises(FontError, match="Noto Sans CJK SC"):
        resolve_fonts(settings)
