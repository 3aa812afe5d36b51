"""Camera frames to JPEG with Pillow: MJPEG passed through when it already fits, YUYV converted.

Pure functions on bytes, so they are tested without a device. A frame that does not decode is
a ``CameraFormatError``; the caller may try the next frame.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from drivers.camera.errors import CameraFormatError


def fourcc(code: str) -> int:
    """V4L2 pixel-format code, as v4l2_fourcc() in videodev2.h."""
    a, b, c, d = (ord(ch) for ch in code)
    return a | (b << 8) | (c << 16) | (d << 24)


def fourcc_name(value: int) -> str:
    return "".join(chr((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))


FOURCC_MJPEG = fourcc("MJPG")
FOURCC_JPEG = fourcc("JPEG")
FOURCC_YUYV = fourcc("YUYV")
JPEG_FORMATS = frozenset({FOURCC_MJPEG, FOURCC_JPEG})

_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"
_DHT = b"\xff\xc4"
_SOS = b"\xff\xda"
WHITE = (255, 255, 255)

# YUYV from a UVC camera is BT.601 "limited range" (Y 16-235, Cb/Cr 16-240); JPEG's YCbCr is
# full range. Without this stretch every document comes out grey and flat.
_Y_FULL = [min(255, max(0, round((v - 16) * 255 / 219))) for v in range(256)]
_C_FULL = [min(255, max(0, round((v - 128) * 255 / 224 + 128))) for v in range(256)]


def frame_to_jpeg(
    data: bytes,
    *,
    pixel_format: int,
    width: int,
    height: int,
    bytes_per_line: int,
    out_width: int,
    out_height: int,
    quality: int,
) -> tuple[bytes, bool]:
    """``(jpeg, passed_through)``: the frame as a JPEG of exactly ``out_width`` x ``out_height``.

    An MJPEG frame of the right size that carries its own Huffman tables is returned as it came
    (no second compression). UVC MJPEG often leaves the tables out (the decoder is to assume the
    standard ones); such a frame is re-encoded, so every viewer downstream can open it.
    """
    if pixel_format in JPEG_FORMATS:
        image, jpeg = _decode_jpeg(data)
        if image.size == (out_width, out_height) and _has_huffman_tables(jpeg):
            return jpeg, True
    elif pixel_format == FOURCC_YUYV:
        image = yuyv_to_image(data, width=width, height=height, bytes_per_line=bytes_per_line)
    else:
        raise CameraFormatError(f"pixel format {fourcc_name(pixel_format)!r} is not supported")
    return encode_jpeg(image, out_width, out_height, quality), False


def yuyv_to_image(data: bytes, *, width: int, height: int, bytes_per_line: int) -> Image.Image:
    """Packed YUV 4:2:2 (Y0 U Y1 V per two pixels) to an RGB image."""
    row = width * 2
    if width < 2 or width % 2 or height < 1:
        raise CameraFormatError(f"YUYV frame of {width}x{height} is impossible")
    stride = max(bytes_per_line, row)
    if len(data) < stride * (height - 1) + row:
        raise CameraFormatError(f"YUYV frame is short: {len(data)} bytes for {width}x{height}")
    if stride != row:  # drop the padding at the end of each line
        data = b"".join(data[r * stride : r * stride + row] for r in range(height))
    else:
        data = data[: row * height]
    y = Image.frombytes("L", (width, height), data[0::2]).point(_Y_FULL)
    half = (width // 2, height)
    cb = Image.frombytes("L", half, data[1::4]).point(_C_FULL)
    cr = Image.frombytes("L", half, data[3::4]).point(_C_FULL)
    full = (width, height)
    resample = Image.Resampling.BILINEAR
    merged = Image.merge("YCbCr", (y, cb.resize(full, resample), cr.resize(full, resample)))
    return merged.convert("RGB")


def encode_jpeg(image: Image.Image, out_width: int, out_height: int, quality: int) -> bytes:
    """Scale to fit, pad with white to the exact size (a document is never cropped), encode."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (out_width, out_height):
        image = ImageOps.pad(
            image, (out_width, out_height), method=Image.Resampling.BICUBIC, color=WHITE
        )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _decode_jpeg(data: bytes) -> tuple[Image.Image, bytes]:
    """Fully decode (a torn USB frame fails here, not in the viewer) and trim buffer padding."""
    if not data.startswith(_SOI):
        raise CameraFormatError("frame does not start like a JPEG")
    end = data.rfind(_EOI)
    if end < 0:
        raise CameraFormatError("JPEG frame has no end marker")
    jpeg = data[: end + 2]
    try:
        image = Image.open(io.BytesIO(jpeg), formats=["JPEG"])
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CameraFormatError(f"JPEG frame does not decode: {exc}") from None
    return image, jpeg


def _has_huffman_tables(jpeg: bytes) -> bool:
    sos = jpeg.find(_SOS)
    return _DHT in (jpeg[:sos] if sos >= 0 else jpeg)
