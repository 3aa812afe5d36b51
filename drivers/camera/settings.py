"""Document-camera settings (``[kiosk.camera]``). Every value range-checked, units in names."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from hallkiosk.config import StrictModel

CameraBackend = Literal["sim", "v4l2"]
# "auto": MJPEG (or JPEG) when the camera offers it, else YUYV converted with Pillow.
PixelPreference = Literal["auto", "mjpeg", "yuyv"]


class CameraSettings(StrictModel):
    backend: CameraBackend = "sim"
    # Which device. ``device_path`` wins (best: a /dev/v4l/by-id/...-video-index0 link); else
    # the first capture device whose card name contains ``device_name`` (case-insensitive) and
    # whose bus info starts with ``bus_info``; with neither, the first capture device.
    device_path: Annotated[str, Field(max_length=256)] = ""
    device_name: Annotated[str, Field(max_length=128)] = ""
    bus_info: Annotated[str, Field(max_length=128)] = ""
    # Size of the JPEG handed out. 5 MP document cameras do 2592x1944 MJPEG; 2048x1536 keeps
    # A4 text readable at about 180 dpi and uploads in reasonable time.
    width: Annotated[int, Field(ge=320, le=8192)] = 2048
    height: Annotated[int, Field(ge=240, le=6144)] = 1536
    pixel_format: PixelPreference = "auto"
    jpeg_quality: Annotated[int, Field(ge=50, le=95)] = 85
    # Frames thrown away after the stream starts, while exposure and focus settle.
    warmup_frames: Annotated[int, Field(ge=0, le=30)] = 3
    capture_timeout_ms: Annotated[int, Field(ge=200, le=30_000)] = 5_000

    @property
    def capture_timeout_s(self) -> float:
        return self.capture_timeout_ms / 1000
