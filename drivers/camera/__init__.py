"""Document camera (高拍仪): one interface, a V4L2 backend through linuxpy, a simulator.

    camera = open_camera(CameraSettings(backend="v4l2", device_name="Document"))
    photo = camera.snap()          # Photo(jpeg, width, height, source, source_format, ...)

The JPEG is always exactly ``width`` x ``height`` from the settings. Failures are
``CameraError`` subclasses with plain Chinese and English words.
"""

from __future__ import annotations

from drivers.camera.base import Camera, Photo
from drivers.camera.errors import (
    CameraBusy,
    CameraError,
    CameraFormatError,
    CameraOffline,
    CameraTimeout,
)
from drivers.camera.settings import CameraSettings


def open_camera(settings: CameraSettings) -> Camera:
    """The backend the settings name. Nothing is opened until the first ``snap``."""
    if settings.backend == "v4l2":
        from drivers.camera.v4l2 import V4L2Camera  # noqa: PLC0415

        return V4L2Camera(settings)
    from drivers.camera.sim import SimCamera  # noqa: PLC0415

    return SimCamera(settings)


__all__ = [
    "Camera",
    "CameraBusy",
    "CameraError",
    "CameraFormatError",
    "CameraOffline",
    "CameraSettings",
    "CameraTimeout",
    "Photo",
    "open_camera",
]
