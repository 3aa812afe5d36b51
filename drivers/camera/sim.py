"""Simulated document camera: a drawn A4 page on the camera's base plate, as a JPEG.

The page has a Chinese title (Noto Sans CJK SC when installed), body lines, ruled lines, a red
stamp and a frame counter in the corner, optionally skewed and noisy. Hooks:
``set_document(title, ...)``, ``fail_next(error)``, ``unplug()`` / ``plug()``.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFont

from drivers.camera.base import Camera, Photo
from drivers.camera.errors import CameraError, CameraOffline, CameraTimeout
from drivers.camera.settings import CameraSettings

log = logging.getLogger(__name__)

CJK_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
# Face order inside the Noto CJK collection is JP, KR, SC, TC, HK; the name is checked anyway.
SC_FACE_INDEX = 2
SC_FAMILY = "Noto Sans CJK SC"
PLATE = (58, 60, 66)  # the dark base plate around the page
INK = (25, 25, 30)
STAMP_RED = (205, 30, 35)
A4_RATIO = 297 / 210

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

DEFAULT_LINES = (
    "申请人：张*三",
    "证件类型：居民身份证",
    "申请事项：不动产登记（转移登记）",
    "坐落：某市某区某街道 1 号",
    "申请日期：2024 年 6 月 15 日",
)


class FontSource:
    """Finds the SC face of the CJK collection once; falls back to Pillow's own font."""

    def __init__(self, path: Path = CJK_FONT) -> None:
        self.path = path
        self.index: int | None = self._find_sc_face()
        self._cache: dict[int, Font] = {}

    @property
    def name(self) -> str:
        return SC_FAMILY if self.index is not None else "Pillow default (no CJK glyphs)"

    def _find_sc_face(self) -> int | None:
        if not self.path.exists():
            log.warning("%s missing: the simulated page has no Chinese glyphs", self.path)
            return None
        order = [SC_FACE_INDEX, *[i for i in range(10) if i != SC_FACE_INDEX]]
        for index in order:
            try:
                face = ImageFont.truetype(str(self.path), 12, index=index)
            except OSError:
                continue  # past the last face in the collection
            if face.getname()[0] == SC_FAMILY:
                return index
        return None

    def get(self, size: int) -> Font:
        font = self._cache.get(size)
        if font is None:
            if self.index is None:
                font = ImageFont.load_default(size)
            else:
                font = ImageFont.truetype(str(self.path), size, index=self.index)
            self._cache[size] = font
        return font


class SimCamera(Camera):
    def __init__(self, settings: CameraSettings, *, fonts: FontSource | None = None) -> None:
        self.settings = settings
        self.fonts = fonts or FontSource()
        self.frame_number = 0
        self._plugged = True
        self._fail: list[CameraError] = []
        self.set_document("不动产登记申请表")

    @property
    def source(self) -> str:
        return "sim"

    def close(self) -> None:
        return None

    # --- hooks ---

    def set_document(
        self,
        title: str,
        *,
        lines: Sequence[str] = DEFAULT_LINES,
        stamp: str | None = "政务服务中心",
        skew_deg: float = 0.0,
        noise: float = 0.0,
    ) -> None:
        """What lies under the camera next. ``noise`` is a sigma in grey levels (0-64)."""
        if not -45.0 <= skew_deg <= 45.0 or not 0.0 <= noise <= 64.0:
            raise ValueError("skew_deg must be within ±45, noise within 0-64")
        self.title = title
        self.lines = tuple(lines)
        self.stamp = stamp
        self.skew_deg = skew_deg
        self.noise = noise

    def fail_next(self, error: CameraError | None = None) -> None:
        """The next snap raises ``error`` (default: no picture in time)."""
        self._fail.append(error or CameraTimeout("simulated: no frame"))

    def unplug(self) -> None:
        self._plugged = False

    def plug(self) -> None:
        self._plugged = True

    @property
    def plugged(self) -> bool:
        """False between ``unplug()`` and ``plug()`` (the kiosk's health check reads it)."""
        return self._plugged

    # --- the picture ---

    def snap(self) -> Photo:
        if not self._plugged:
            raise CameraOffline("simulated camera is unplugged")
        if self._fail:
            raise self._fail.pop(0)
        self.frame_number += 1
        image = self.render()
        out = io.BytesIO()
        image.save(out, "JPEG", quality=self.settings.jpeg_quality)
        return Photo(
            out.getvalue(),
            image.width,
            image.height,
            "sim",
            "sim",
            self.frame_number,
        )

    def render(self) -> Image.Image:
        s = self.settings
        canvas = Image.new("RGB", (s.width, s.height), PLATE)
        page = self._page(s.height * 0.92)
        if self.skew_deg:
            # RGBA: the corners the rotation uncovers are transparent, so the plate shows there
            page = page.rotate(self.skew_deg, resample=Image.Resampling.BICUBIC, expand=True)
        scale = min(s.width * 0.96 / page.width, s.height * 0.96 / page.height, 1.0)
        if scale < 1.0:
            size = (max(1, round(page.width * scale)), max(1, round(page.height * scale)))
            page = page.resize(size, Image.Resampling.BICUBIC)
        mask = page.getchannel("A")
        offset = ((s.width - page.width) // 2, (s.height - page.height) // 2)
        canvas.paste(page.convert("RGB"), offset, mask)
        draw = ImageDraw.Draw(canvas)
        draw.text(
            (max(4, s.width // 80), max(4, s.height // 80)),
            f"#{self.frame_number:04d}",
            fill=(230, 230, 230),
            font=self.fonts.get(max(10, s.height // 40)),
        )
        if self.noise:
            canvas = self._add_noise(canvas)
        return canvas

    def _page(self, page_h: float) -> Image.Image:
        """The A4 page, drawn upright, with an alpha channel so a skewed page keeps its corners."""
        h = max(40, round(page_h))
        w = max(28, round(h / A4_RATIO))
        page = Image.new("RGBA", (w, h), (250, 250, 246, 255))
        draw = ImageDraw.Draw(page)
        margin = w // 10
        title_font = self.fonts.get(max(8, h // 28))
        body_font = self.fonts.get(max(6, h // 55))
        tw = draw.textlength(self.title, font=title_font)
        draw.text(((w - tw) / 2, h * 0.07), self.title, fill=INK, font=title_font)
        y = h * 0.17
        step = h / 22
        for line in self.lines:
            draw.text((margin, y), line, fill=INK, font=body_font)
            draw.line((margin, y + step * 0.8, w - margin, y + step * 0.8), fill=(150, 150, 150))
            y += step
        for _ in range(4):  # empty ruled lines for a signature block
            y += step
            draw.line((margin, y, w - margin, y), fill=(150, 150, 150), width=max(1, h // 600))
        if self.stamp:
            self._draw_stamp(draw, w, h)
        return page

    def _draw_stamp(self, draw: ImageDraw.ImageDraw, w: int, h: int) -> None:
        assert self.stamp is not None
        r = w // 7
        cx, cy = w - w // 4, h - h // 5
        ring = max(2, r // 12)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=STAMP_RED, width=ring)
        star = [
            (cx + r * 0.35 * f * _cos(90 + 36 * i), cy - r * 0.35 * f * _sin(90 + 36 * i))
            for i, f in zip(range(10), [1.0, 0.4] * 5, strict=True)
        ]
        draw.polygon(star, fill=STAMP_RED)
        # the text sits on a chord about 1.5 r wide: one CJK glyph is about one font size wide
        font = self.fonts.get(max(6, min(r // 4, int(1.3 * r / max(1, len(self.stamp))))))
        tw = draw.textlength(self.stamp, font=font)
        draw.text((cx - tw / 2, cy + r * 0.45), self.stamp, fill=STAMP_RED, font=font)

    def _add_noise(self, image: Image.Image) -> Image.Image:
        # effect_noise is Gaussian around 128 with sigma = noise; added around zero, it is
        # sensor noise of that many grey levels
        noise = Image.effect_noise(image.size, self.noise).convert("RGB")
        return ImageChops.add(image, noise, scale=1.0, offset=-128)


def _cos(deg: float) -> float:
    return math.cos(math.radians(deg))


def _sin(deg: float) -> float:
    return math.sin(math.radians(deg))
