"""The camera interface and the one value it yields."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Photo:
    """One picture as a complete JPEG file at the configured size."""

    jpeg: bytes
    width: int
    height: int
    source: str  # "sim" or "v4l2:/dev/video0"
    source_format: str  # what the device sent: "MJPG", "YUYV", "sim"
    frame_number: int

    def describe(self) -> dict[str, str | int]:
        return {
            "bytes": len(self.jpeg),
            "width": self.width,
            "height": self.height,
            "source": self.source,
            "source_format": self.source_format,
            "frame_number": self.frame_number,
        }


class Camera(ABC):
    """What the kiosk sees of any document camera."""

    @abstractmethod
    def snap(self) -> Photo:
        """Take one picture. Raises ``CameraError`` subclasses with plain messages."""

    @abstractmethod
    def close(self) -> None:
        """Release the device (a no-op when nothing is held between snaps)."""

    @property
    @abstractmethod
    def source(self) -> str:
        """Short name of the device, e.g. ``v4l2:/dev/video0``."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
