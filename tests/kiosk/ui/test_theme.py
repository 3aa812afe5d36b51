"""Sizes and colours: touch targets of at least 15 mm, bigger everything in elderly mode, few
distinct font sizes (each one is a font face in memory), and text contrast of at least 7:1."""

from __future__ import annotations

import pytest

from kiosk.ui.theme import (
    STANDARD_PALETTE,
    TYPE_SCALE_MM,
    FontRole,
    contrast_ratio,
    make_theme,
    mm_to_px,
)

AAA_CONTRAST = 7.0
ROLES: tuple[FontRole, ...] = ("title", "body", "small", "tile", "key", "display")


@pytest.mark.parametrize("pair", list(STANDARD_PALETTE.text_pairs()))
def test_every_text_colour_has_aaa_contrast(pair: str) -> None:
    foreground, background = STANDARD_PALETTE.text_pairs()[pair]
    assert contrast_ratio(foreground, background) >= AAA_CONTRAST


@pytest.mark.parametrize("dpi", [70.0, 102.0, 160.0])
def test_touch_targets_are_at_least_15_mm(dpi: float) -> None:
    for elderly in (False, True):
        sizes = make_theme(elderly, dpi).sizes
        assert sizes.touch_min_px >= mm_to_px(15, dpi)
        assert min(sizes.key_px, sizes.tile_height_px) >= sizes.touch_min_px


@pytest.mark.parametrize("dpi", [70.0, 102.0, 160.0])
def test_elderly_mode_is_bigger_in_every_way(dpi: float) -> None:
    standard, elderly = make_theme(False, dpi).sizes, make_theme(True, dpi).sizes
    for role in ROLES:
        assert elderly.font(role) > standard.font(role), role
    assert elderly.touch_min_px > standard.touch_min_px
    assert elderly.tile_height_px > standard.tile_height_px
    assert elderly.key_px > standard.key_px
    assert elderly.tile_columns < standard.tile_columns


@pytest.mark.parametrize("dpi", [70.0, 102.0, 160.0])
def test_both_modes_draw_text_in_six_sizes_at_most(dpi: float) -> None:
    # Kivy opens a face of the CJK font per pixel size (~0.7 MiB each, for good): a role may
    # take any step of the type scale, but no size of its own
    sizes = {
        make_theme(elderly, dpi).sizes.font(role) for elderly in (False, True) for role in ROLES
    }
    assert sizes <= {mm_to_px(mm, dpi) for mm in TYPE_SCALE_MM}
    assert all(type(px) is int for px in sizes)  # 34.0 would be another face than 34


def test_the_standard_sizes_are_as_designed() -> None:
    standard = make_theme(False, 102).sizes
    assert [standard.font(role) for role in ROLES] == [48, 34, 26, 40, 48, 56]
