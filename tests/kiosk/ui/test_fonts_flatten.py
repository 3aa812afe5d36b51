"""The cached face has its CFF subroutines inlined (``kiosk.ui.sfnt.flatten_cff``): Kivy opens
a face per font size, and FreeType copies every subroutine into each. The flattened face must
draw every character exactly as the font it came from: all of GB2312, and every character of
our catalogs, sources and the hall's default catalog."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kivy import kivy_data_dir
from kivy.core.text import DEFAULT_FONT
from kivy.core.text import Label as CoreLabel

from kiosk.ui.fonts import CANDIDATES, resolve_fonts
from kiosk.ui.settings import UiSettings
from kiosk.ui.sfnt import (
    FontFileError,
    _Inliner,
    extract_face,
    find_face,
    flatten_cff,
    read_faces,
    read_table,
)
from tests.kiosk.ui.harness import KivyHarness

REPO_ROOT = Path(__file__).resolve().parents[3]
NOTO_CJK = Path(CANDIDATES[0][0])
NOTO_CJK_BOLD = NOTO_CJK.with_name(NOTO_CJK.name.replace("Regular", "Bold"))
FAMILY = CANDIDATES[0][1]
CHUNK = 300  # characters per label
WRAP_PX = 1800
HERO = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
needs_noto = pytest.mark.skipif(
    not (NOTO_CJK.is_file() and NOTO_CJK_BOLD.is_file()), reason="fonts-noto-cjk is not installed"
)


def gb2312() -> str:
    found = []
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                found.append(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return "".join(found)


def our_characters() -> str:
    """Every non-ASCII character of the gettext catalogs, the kiosk's and hall's sources and
    the packaged defaults (the hall's areas and matters)."""
    files = [
        *(REPO_ROOT / "kiosk").rglob("*.po"),
        *(REPO_ROOT / "kiosk").rglob("*.py"),
        *(REPO_ROOT / "hall").rglob("*.py"),
        *(REPO_ROOT / "hallkiosk").rglob("*.toml"),
    ]
    found = {c for path in files for c in path.read_text(encoding="utf-8") if ord(c) > 0x7F}
    return "".join(sorted(c for c in found if c.isprintable() and not c.isspace()))


def chunks(text: str) -> Iterator[str]:
    for at in range(0, len(text), CHUNK):
        yield text[at : at + CHUNK]


def drawn(text: str, font: str, size: int) -> bytes:
    label = CoreLabel(text=text, font_size=size, font_name=font, text_size=(WRAP_PX, None))
    label.refresh()
    pixels: bytes = label.texture.pixels
    return pixels


def registered(bold: bool) -> str:
    """The file Kivy draws the default font from (the harness's prepared face)."""
    label = CoreLabel(text="x", font_name=DEFAULT_FONT, bold=bold)
    label.resolve_font_name()
    path: str = label.options["font_name_r"]
    return path


def fresh(path: str, tmp_path: Path) -> str:
    """``path`` under a name of its own. Kivy shares a face between labels of the same file
    and size, and a face used by earlier tests' labels can measure a line a pixel or two
    differently: compared with a new face of the original, the flattened one is new too."""
    link = tmp_path / f"fresh-{Path(path).name}"
    link.symlink_to(path)
    return str(link)


def unflattened(source: Path, target: Path) -> str:
    faces = read_faces(source)
    face = find_face(faces, FAMILY)
    assert face is not None
    extract_face(source, face, target)
    return str(target)


@needs_noto
def test_the_prepared_faces_have_no_subroutines_left(kivy_window: KivyHarness) -> None:
    for bold in (False, True):
        path = Path(registered(bold))
        (face,) = read_faces(path)
        cff = read_table(path, face, b"CFF ")
        assert cff is not None
        assert flatten_cff(cff) is None, f"{path} still has subroutines"
        original = read_faces(NOTO_CJK_BOLD if bold else NOTO_CJK)
        source_face = find_face(original, FAMILY)
        assert source_face is not None
        assert face.families == source_face.families


@needs_noto
def test_the_flattened_face_draws_every_character_as_the_original(
    kivy_window: KivyHarness, tmp_path: Path
) -> None:
    original = unflattened(NOTO_CJK, tmp_path / "regular.otf")
    flat = fresh(registered(bold=False), tmp_path)
    text = gb2312() + our_characters()
    assert "龄" in text and "號" not in text  # the GB2312 table decoded, simplified only
    for size in (26, 64):  # the theme's smallest and biggest sizes
        for part in chunks(text):
            assert drawn(part, flat, size) == drawn(part, original, size), (size, part)


@needs_noto
def test_the_flattened_bold_face_draws_as_the_original(
    kivy_window: KivyHarness, tmp_path: Path
) -> None:
    original = unflattened(NOTO_CJK_BOLD, tmp_path / "bold.otf")
    flat = fresh(registered(bold=True), tmp_path)
    assert drawn(HERO, flat, 168) == drawn(HERO, original, 168)  # a ticket number
    for part in chunks(our_characters()):
        assert drawn(part, flat, 34) == drawn(part, original, 34), part


def test_a_truetype_font_is_used_as_it_is(tmp_path: Path) -> None:
    roboto = Path(kivy_data_dir) / "fonts" / "Roboto-Regular.ttf"
    fonts = resolve_fonts(UiSettings(font_path=str(roboto), font_cache_dir=str(tmp_path)))
    assert fonts.regular == roboto
    assert not any(tmp_path.iterdir())  # nothing to prepare


# -- inlining, on hand-made Type 2 charstrings ---------------------------------------------


def num(value: int) -> bytes:
    assert -107 <= value <= 107
    return bytes((value + 139,))


HSTEMHM, HINTMASK, RLINETO, CALLSUBR, RETURN, ENDCHAR, CALLGSUBR = 18, 19, 5, 10, 11, 14, 29
LOCAL_BIAS = GLOBAL_BIAS = 107  # fewer than 1240 subroutines


def test_subroutine_calls_are_replaced_by_their_bodies() -> None:
    local = [num(1) + num(2) + bytes((RLINETO, RETURN))]
    global_ = [num(3) + num(4) + bytes((RLINETO, RETURN))]
    glyph = num(0 - LOCAL_BIAS) + bytes((CALLSUBR,)) + num(0 - GLOBAL_BIAS) + bytes((CALLGSUBR,))
    glyph += bytes((ENDCHAR,))
    flat = _Inliner(global_, [local]).glyph(glyph, 0)
    assert flat == num(1) + num(2) + bytes((RLINETO,)) + num(3) + num(4) + bytes((RLINETO, ENDCHAR))


def test_a_hintmask_counts_the_stems_declared_across_subroutines() -> None:
    # 4 stems in the glyph, 5 implied by the operands before the first hintmask (in a
    # subroutine): 9 stems, so the mask takes two bytes; the bytes after it are an ordinary
    # rlineto, not to be read as more mask
    stems = b"".join(num(v) for v in range(8)) + bytes((HSTEMHM,))
    implied = b"".join(num(v) for v in range(10))
    mask = bytes((HINTMASK, 0xFF, 0x80))
    local = [implied + mask + num(5) + num(6) + bytes((RLINETO, RETURN))]
    glyph = stems + num(0 - LOCAL_BIAS) + bytes((CALLSUBR, ENDCHAR))
    flat = _Inliner([], [local]).glyph(glyph, 0)
    assert flat == stems + implied + mask + num(5) + num(6) + bytes((RLINETO, ENDCHAR))


def test_endchar_in_a_subroutine_ends_the_glyph() -> None:
    local = [num(1) + num(1) + bytes((RLINETO, ENDCHAR))]
    glyph = num(0 - LOCAL_BIAS) + bytes((CALLSUBR,)) + num(9) + num(9) + bytes((RLINETO, ENDCHAR))
    assert _Inliner([], [local]).glyph(glyph, 0) == num(1) + num(1) + bytes((RLINETO, ENDCHAR))


def test_a_computed_subroutine_index_is_refused() -> None:
    glyph = num(1) + num(1) + bytes((RLINETO, CALLSUBR, ENDCHAR))  # no index before the call
    with pytest.raises(FontFileError, match="literal index"):
        _Inliner([], [[b""]]).glyph(glyph, 0)


def test_something_else_than_cff_is_refused() -> None:
    with pytest.raises(FontFileError):
        flatten_cff(b"\x02\x00\x04\x04")
