"""Format negotiation and frame conversion, with real linuxpy objects and real JPEG decoding.

No /dev/video* exists in this container (no camera, no vivid or v4l2loopback module to load),
so the V4L2 ioctls themselves are covered in test_v4l2.py only as far as a missing or non-video
node goes; everything that decides and converts is tested here on linuxpy's own types.
"""

from __future__ import annotations

import io

import pytest
from linuxpy.video.device import (
    BufferFlag,
    Format,
    Frame,
    FrameSize,
    FrameSizeType,
    PixelFormat,
    raw,
)
from PIL import Image, ImageDraw

from drivers.camera import CameraFormatError, CameraSettings
from drivers.camera.convert import (
    FOURCC_JPEG,
    FOURCC_MJPEG,
    FOURCC_YUYV,
    fourcc,
    fourcc_name,
    frame_to_jpeg,
)
from drivers.camera.v4l2 import choose_frame_size, choose_pixel_format, jpeg_from_frame

BARS = [(255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0), (255, 0, 255), (200, 0, 0)]


def test_fourcc_codes_are_linuxpys() -> None:
    assert FOURCC_MJPEG == PixelFormat.MJPEG
    assert FOURCC_JPEG == PixelFormat.JPEG
    assert FOURCC_YUYV == PixelFormat.YUYV
    assert fourcc_name(PixelFormat.NV12) == "NV12"
    assert fourcc("H264") == PixelFormat.H264


# --- negotiation ---


@pytest.mark.parametrize(
    ("offered", "preference", "chosen"),
    [
        ([PixelFormat.YUYV, PixelFormat.MJPEG], "auto", PixelFormat.MJPEG),
        ([PixelFormat.H264, PixelFormat.JPEG, PixelFormat.YUYV], "auto", PixelFormat.JPEG),
        ([PixelFormat.NV12, PixelFormat.YUYV], "auto", PixelFormat.YUYV),
        ([PixelFormat.MJPEG, PixelFormat.YUYV], "yuyv", PixelFormat.YUYV),
        ([PixelFormat.YUYV, PixelFormat.MJPEG], "mjpeg", PixelFormat.MJPEG),
    ],
)
def test_pixel_format_choice(offered: list[int], preference: str, chosen: int) -> None:
    assert choose_pixel_format(offered, preference) == chosen  # type: ignore[arg-type]


def test_no_usable_pixel_format_is_a_typed_error_naming_what_was_offered() -> None:
    with pytest.raises(CameraFormatError) as caught:
        choose_pixel_format([PixelFormat.H264, PixelFormat.NV12], "auto")
    assert "H264" in caught.value.detail and "NV12" in caught.value.detail
    assert caught.value.message_en.startswith("The document camera cannot take a picture")
    with pytest.raises(CameraFormatError):
        choose_pixel_format([PixelFormat.YUYV], "mjpeg")


def _discrete(*sizes: tuple[int, int]) -> list[FrameSize]:
    return [
        FrameSize(i, PixelFormat.MJPEG, FrameSizeType.DISCRETE, raw.v4l2_frmsize_discrete(w, h))
        for i, (w, h) in enumerate(sizes)
    ]


def test_frame_size_exact_then_smallest_covering_then_largest() -> None:
    sizes = _discrete((640, 480), (1600, 1200), (2592, 1944), (2048, 1536), (3264, 2448))
    assert choose_frame_size(sizes, 2048, 1536) == (2048, 1536)
    assert choose_frame_size(sizes, 1920, 1080) == (2048, 1536)
    assert choose_frame_size(sizes, 4000, 3000) == (3264, 2448)
    assert choose_frame_size(_discrete((640, 480), (320, 240)), 800, 600) == (640, 480)


def test_stepwise_sizes_are_clamped_and_stepped() -> None:
    step = raw.v4l2_frmsize_stepwise(
        min_width=160,
        max_width=2592,
        step_width=16,
        min_height=120,
        max_height=1944,
        step_height=8,
    )
    sizes = [FrameSize(0, PixelFormat.YUYV, FrameSizeType.STEPWISE, step)]
    assert choose_frame_size(sizes, 1000, 701) == (992, 696)
    assert choose_frame_size(sizes, 8000, 6000) == (2592, 1944)
    assert choose_frame_size([], 1234, 567) == (1234, 567)


# --- conversion ---


def _bars(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    bar = width // len(BARS)
    for i, colour in enumerate(BARS):
        draw.rectangle((i * bar, 0, (i + 1) * bar - 1, height - 1), fill=colour)
    return image


def _to_yuyv(image: Image.Image, pad: int = 0) -> bytes:
    """Reference encoder: BT.601 limited range, packed Y0 U Y1 V, ``pad`` bytes after each line."""
    ycc = image.convert("YCbCr")
    y_lim = [round(16 + v * 219 / 255) for v in range(256)]
    c_lim = [round(128 + (v - 128) * 224 / 255) for v in range(256)]
    w, h = image.size
    ys, cbs, crs = (band.tobytes() for band in ycc.split())
    out = bytearray()
    for row in range(h):
        for x in range(0, w, 2):
            i = row * w + x
            cb = (cbs[i] + cbs[i + 1]) // 2
            cr = (crs[i] + crs[i + 1]) // 2
            out += bytes((y_lim[ys[i]], c_lim[cb], y_lim[ys[i + 1]], c_lim[cr]))
        out += b"\x00" * pad
    return bytes(out)


def _decode(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    image.load()
    return image.convert("RGB")


def _close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 14) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("pad", [0, 32])
def test_yuyv_converts_to_the_right_colours_at_full_range(pad: int) -> None:
    w, h = 192, 64
    data = _to_yuyv(_bars(w, h), pad=pad)
    jpeg, passed = frame_to_jpeg(
        data,
        pixel_format=FOURCC_YUYV,
        width=w,
        height=h,
        bytes_per_line=w * 2 + pad,
        out_width=w,
        out_height=h,
        quality=95,
    )
    assert not passed
    image = _decode(jpeg)
    assert image.size == (w, h)
    bar = w // len(BARS)
    for i, colour in enumerate(BARS):
        got = image.getpixel((i * bar + bar // 2, h // 2))
        assert isinstance(got, tuple)
        assert _close(got, colour), (i, got, colour)  # white stays white, not limited-range grey


@pytest.mark.parametrize(
    ("data", "width", "height"),
    [(b"\x80" * 100, 64, 48), (b"\x80" * 4000, 63, 10), (b"", 2, 1)],
)
def test_bad_yuyv_frames_are_typed_errors(data: bytes, width: int, height: int) -> None:
    with pytest.raises(CameraFormatError):
        frame_to_jpeg(
            data,
            pixel_format=FOURCC_YUYV,
            width=width,
            height=height,
            bytes_per_line=width * 2,
            out_width=320,
            out_height=240,
            quality=85,
        )


def _mjpeg(width: int, height: int) -> bytes:
    out = io.BytesIO()
    _bars(width, height).save(out, "JPEG", quality=90)
    return out.getvalue()


def _strip_huffman_tables(jpeg: bytes) -> bytes:
    """What many UVC cameras send: the DHT segments left out (the standard tables are meant)."""
    out, i = bytearray(jpeg[:2]), 2
    while i < len(jpeg):
        marker, length = jpeg[i + 1], int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if marker == 0xDA:
            out += jpeg[i:]
            break
        if marker != 0xC4:
            out += jpeg[i : i + 2 + length]
        i += 2 + length
    return bytes(out)


def _mjpeg_args(width: int, height: int) -> dict[str, int]:
    return {
        "pixel_format": FOURCC_MJPEG,
        "width": width,
        "height": height,
        "bytes_per_line": 0,
        "out_width": width,
        "out_height": height,
        "quality": 85,
    }


def test_a_fitting_mjpeg_frame_passes_through_untouched_minus_buffer_padding() -> None:
    jpeg = _mjpeg(320, 240)
    out, passed = frame_to_jpeg(jpeg + b"\x00" * 500, **_mjpeg_args(320, 240))
    assert passed
    assert out == jpeg


def test_an_mjpeg_frame_without_huffman_tables_is_reencoded_with_them() -> None:
    bare = _strip_huffman_tables(_mjpeg(320, 240))
    assert b"\xff\xc4" not in bare
    out, passed = frame_to_jpeg(bare, **_mjpeg_args(320, 240))
    assert not passed
    assert b"\xff\xc4" in out
    assert _close(_decode(out).getpixel((10, 120)), BARS[0])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a jpeg at all",
        b"\xff\xd8\xff\xe0 no end marker",
        "torn",
    ],
)
def test_broken_mjpeg_frames_are_typed_errors(data: bytes | str) -> None:
    if data == "torn":  # a frame cut in the middle: stuffing keeps FF D9 out of the data
        whole = _mjpeg(320, 240)
        data = whole[: len(whole) // 2] + b"\x00" * 64
    assert isinstance(data, bytes)
    with pytest.raises(CameraFormatError):
        frame_to_jpeg(data, **_mjpeg_args(320, 240))


def test_a_frame_of_another_size_is_fitted_and_padded_white_never_cropped() -> None:
    wide = _mjpeg(640, 360)  # 16:9 frame, 4:3 wanted
    args = {**_mjpeg_args(640, 360), "out_width": 640, "out_height": 480}
    out, passed = frame_to_jpeg(wide, **args)
    assert not passed
    image = _decode(out)
    assert image.size == (640, 480)
    assert _close(image.getpixel((600, 5)), (255, 255, 255))  # type: ignore[arg-type]
    assert _close(image.getpixel((600, 240)), BARS[-1], tol=20)  # type: ignore[arg-type]


def test_unsupported_format_is_refused() -> None:
    with pytest.raises(CameraFormatError):
        frame_to_jpeg(b"\x00" * 100, **{**_mjpeg_args(8, 8), "pixel_format": PixelFormat.H264})


def test_real_linuxpy_frames_through_the_backend_path() -> None:
    w, h = 128, 96
    settings = CameraSettings(backend="v4l2", width=320, height=240)
    data = _to_yuyv(_bars(w, h))
    buff = raw.v4l2_buffer()
    buff.bytesused = len(data)
    frame = Frame(data, buff, Format(w, h, PixelFormat.YUYV, len(data), w * 2))
    image = _decode(jpeg_from_frame(frame, settings))
    assert image.size == (320, 240)  # scaled up to the configured size
    jpeg = _mjpeg(320, 240)
    mframe = Frame(jpeg, raw.v4l2_buffer(), Format(320, 240, PixelFormat.MJPEG, len(jpeg), 0))
    assert jpeg_from_frame(mframe, settings) == jpeg


def test_a_frame_the_driver_marked_damaged_is_refused_even_if_it_decodes() -> None:
    jpeg = _mjpeg(320, 240)
    buff = raw.v4l2_buffer()
    buff.flags = BufferFlag.ERROR | BufferFlag.MAPPED
    frame = Frame(jpeg, buff, Format(320, 240, PixelFormat.MJPEG, len(jpeg), 0))
    with pytest.raises(CameraFormatError):
        jpeg_from_frame(frame, CameraSettings(width=320, height=240))
