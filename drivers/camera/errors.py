"""Document-camera (高拍仪) errors, each with plain words for the person at the kiosk."""

from __future__ import annotations

from drivers.errors import DriverError


class CameraError(DriverError):
    code = "camera_fault"
    message_zh = "高拍仪故障，请联系工作人员。"
    message_en = "The document camera has a fault. Please contact staff."


class CameraOffline(CameraError, ConnectionError):
    """No such device, unplugged, or not a V4L2 capture device."""

    code = "camera_offline"
    message_zh = "高拍仪未连接，请联系工作人员。"
    message_en = "The document camera is not connected. Please contact staff."


class CameraBusy(CameraOffline):
    """Another program is streaming from the camera."""

    code = "camera_busy"
    message_zh = "高拍仪正被占用，请稍后再试或联系工作人员。"
    message_en = "The document camera is in use. Please try again or contact staff."


class CameraTimeout(CameraError, TimeoutError):
    code = "camera_timeout"
    message_zh = "高拍仪没有画面，请稍后再试。"
    message_en = "The document camera gave no picture. Please try again."


class CameraFormatError(CameraError, ValueError):
    """The device offers no format we can turn into a JPEG, or sent a broken frame."""

    code = "camera_bad_image"
    message_zh = "高拍仪无法拍照，请联系工作人员。"
    message_en = "The document camera cannot take a picture. Please contact staff."
