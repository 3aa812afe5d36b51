"""Document cameras over V4L2 (UVC), through linuxpy.

Each ``snap`` opens the device, negotiates a format (MJPEG first, else YUYV) and the frame size
nearest the configured one, streams a few warm-up frames, keeps one and closes the device. Holding
nothing between snaps means a replugged camera simply works on the next snap. linuxpy is imported
only here, inside the calls, so a laptop without it still imports the package.
"""

from __future__ import annotations

import errno
import logging
import select
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from drivers.camera.base import Camera, Photo
from drivers.camera.convert import (
    FOURCC_JPEG,
    FOURCC_MJPEG,
    FOURCC_YUYV,
    fourcc_name,
    frame_to_jpeg,
)
from drivers.camera.errors import (
    CameraBusy,
    CameraError,
    CameraFormatError,
    CameraOffline,
    CameraTimeout,
)
from drivers.camera.settings import CameraSettings, PixelPreference

log = logging.getLogger(__name__)

# V4L2_BUF_FLAG_ERROR: uvcvideo sets it on a frame that lost USB packets. Such an MJPEG frame
# often still decodes (libjpeg fills the missing part grey), so this flag is the only tell.
BUF_FLAG_ERROR = 0x40
# V4L2_FRMSIZE_TYPE_DISCRETE; the other two (continuous, stepwise) carry min/max/step
FRAMESIZE_DISCRETE = 1
# consecutive undecodable frames before a snap gives up (a torn frame now and then is normal)
MAX_BAD_FRAMES = 3
_OFFLINE_ERRNOS = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO, errno.ENOTTY})

PREFERENCE: dict[PixelPreference, tuple[int, ...]] = {
    "auto": (FOURCC_MJPEG, FOURCC_JPEG, FOURCC_YUYV),
    "mjpeg": (FOURCC_MJPEG, FOURCC_JPEG),
    "yuyv": (FOURCC_YUYV,),
}


def choose_pixel_format(offered: Iterable[int], preference: PixelPreference) -> int:
    """The first of our preferred formats the device offers (values are V4L2 fourcc codes)."""
    have = {int(code) for code in offered}
    for code in PREFERENCE[preference]:
        if code in have:
            return code
    names = ", ".join(sorted(fourcc_name(c) for c in have)) or "none"
    wanted = "/".join(fourcc_name(c) for c in PREFERENCE[preference])
    raise CameraFormatError(f"camera offers {names}; this driver needs {wanted}")


def choose_frame_size(sizes: Sequence[Any], width: int, height: int) -> tuple[int, int]:
    """Frame size to ask for, from linuxpy ``FrameSize`` entries of the chosen format.

    Discrete sizes: the exact one, else the smallest that covers the request (scaled down
    later, so no detail is invented), else the largest. Stepwise: the request clamped to the
    range and rounded to the step. No list at all: the request, and the driver adjusts it.
    """
    discrete = [
        (int(s.info.width), int(s.info.height)) for s in sizes if s.type == FRAMESIZE_DISCRETE
    ]
    if discrete:
        if (width, height) in discrete:
            return width, height
        covering = [wh for wh in discrete if wh[0] >= width and wh[1] >= height]
        if covering:
            return min(covering, key=lambda wh: wh[0] * wh[1])
        return max(discrete, key=lambda wh: wh[0] * wh[1])
    for s in sizes:
        info = s.info
        return (
            _clamp_step(width, info.min_width, info.max_width, info.step_width),
            _clamp_step(height, info.min_height, info.max_height, info.step_height),
        )
    return width, height


def _clamp_step(value: int, low: int, high: int, step: int) -> int:
    value = min(max(value, int(low)), int(high))
    step = max(int(step), 1)
    return int(low) + (value - int(low)) // step * step


def _map_os_error(exc: OSError, path: str) -> CameraError:
    if exc.errno == errno.EBUSY:
        return CameraBusy(f"{path}: in use by another program")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return CameraError(f"{path}: permission denied (is the kiosk user in group 'video'?)")
    if exc.errno == errno.ENOTTY:
        return CameraOffline(f"{path}: not a V4L2 video device")
    if exc.errno in _OFFLINE_ERRNOS:
        return CameraOffline(f"{path}: {exc.strerror or 'not available'}")
    return CameraError(f"{path}: {exc.strerror or exc}")


def list_capture_devices(dev_dir: str = "/dev") -> list[dict[str, Any]]:
    """Every V4L2 node under ``dev_dir`` that can capture video, with what identifies it."""
    from linuxpy.video.device import BufferType, Capability, Device  # noqa: PLC0415

    found: list[dict[str, Any]] = []
    nodes = [p for p in Path(dev_dir).glob("video*") if p.is_char_device()]
    for path in sorted(nodes, key=lambda p: (len(p.name), p.name)):
        try:
            with Device(path) as dev:
                if Capability.VIDEO_CAPTURE not in dev.info.device_capabilities:
                    continue  # e.g. the UVC metadata node next to the picture node
                formats = dev.info.buffer_formats(BufferType.VIDEO_CAPTURE)
                found.append(
                    {
                        "path": str(path),
                        "card": dev.info.card,
                        "bus_info": dev.info.bus_info,
                        "driver": dev.info.driver,
                        "formats": [fourcc_name(int(f.pixel_format)) for f in formats],
                    }
                )
        except OSError as exc:
            log.debug("skipping %s: %s", path, exc.strerror)
    return found


def jpeg_from_frame(frame: Any, settings: CameraSettings) -> bytes:
    """A linuxpy ``Frame`` (data + the negotiated ``Format``) as the configured JPEG."""
    if int(frame.buff.flags) & BUF_FLAG_ERROR:
        raise CameraFormatError("the driver marked the frame as damaged")
    fmt = frame.format
    jpeg, _ = frame_to_jpeg(
        bytes(frame.data),
        pixel_format=int(fmt.pixel_format),
        width=int(fmt.width),
        height=int(fmt.height),
        bytes_per_line=int(fmt.bytes_per_line),
        out_width=settings.width,
        out_height=settings.height,
        quality=settings.jpeg_quality,
    )
    return jpeg


class V4L2Camera(Camera):
    def __init__(self, settings: CameraSettings, *, dev_dir: str = "/dev") -> None:
        self.settings = settings
        self._dev_dir = dev_dir
        self._path = settings.device_path or ""

    @property
    def source(self) -> str:
        return f"v4l2:{self._path or '?'}"

    def close(self) -> None:
        return None  # nothing is held between snaps

    def find_device(self) -> str:
        s = self.settings
        if s.device_path:
            return s.device_path
        for dev in list_capture_devices(self._dev_dir):
            if s.device_name and s.device_name.casefold() not in dev["card"].casefold():
                continue
            if s.bus_info and not dev["bus_info"].startswith(s.bus_info):
                continue
            return str(dev["path"])
        wanted = f"name {s.device_name!r} " if s.device_name else ""
        wanted += f"bus {s.bus_info!r}" if s.bus_info else ""
        raise CameraOffline(f"no V4L2 capture device {wanted or 'at all'} under {self._dev_dir}")

    def snap(self) -> Photo:
        from linuxpy.video.device import Device, V4L2Error  # noqa: PLC0415

        path = self.find_device()
        self._path = path
        try:
            with Device(path) as dev:
                return self._snap(dev, path)
        except OSError as exc:
            raise _map_os_error(exc, path) from None
        except V4L2Error as exc:
            raise CameraFormatError(f"{path}: {exc}") from None

    def _snap(self, dev: Any, path: str) -> Photo:
        from linuxpy.video.device import BufferType, Capability, VideoCapture  # noqa: PLC0415

        s = self.settings
        if Capability.VIDEO_CAPTURE not in dev.info.device_capabilities:
            raise CameraOffline(f"{path} is a video node that cannot capture")
        offered = [int(f.pixel_format) for f in dev.info.buffer_formats(BufferType.VIDEO_CAPTURE)]
        code = choose_pixel_format(offered, s.pixel_format)
        width, height = choose_frame_size(dev.info.format_frame_sizes(code), s.width, s.height)
        dev.set_format(BufferType.VIDEO_CAPTURE, width, height, code)
        got = dev.get_format(BufferType.VIDEO_CAPTURE)
        if int(got.pixel_format) != code:
            raise CameraFormatError(
                f"{path}: asked for {fourcc_name(code)}, got {fourcc_name(int(got.pixel_format))}"
            )
        log.info("camera %s: %s %dx%d", path, fourcc_name(code), got.width, got.height)
        with VideoCapture(dev) as capture:
            return self._capture(dev, capture, path, code)

    def _capture(self, dev: Any, capture: Any, path: str, code: int) -> Photo:
        s = self.settings
        deadline = time.monotonic() + s.capture_timeout_s
        seen = bad = 0
        while True:
            left = deadline - time.monotonic()
            ready = select.select([dev], [], [], left)[0] if left > 0 else []
            if not ready:
                raise CameraTimeout(f"{path}: no frame within {s.capture_timeout_ms} ms")
            frame = capture.buffer.raw_read()  # dequeue, copy out, queue again
            seen += 1
            if seen <= s.warmup_frames:
                continue
            try:
                jpeg = jpeg_from_frame(frame, s)
            except CameraFormatError as exc:
                bad += 1
                log.warning("camera %s: bad frame %d (%s)", path, bad, exc.detail)
                if bad >= MAX_BAD_FRAMES:
                    raise
                continue
            return Photo(jpeg, s.width, s.height, f"v4l2:{path}", fourcc_name(code), seen)
