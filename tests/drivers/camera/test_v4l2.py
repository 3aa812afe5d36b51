"""The V4L2 backend against real device nodes, as far as this machine has them.

This container has no /dev/video* and no kernel module (vivid, v4l2loopback) to make one, so a
real capture runs only in ``test_a_real_camera_takes_a_picture``, which skips with that reason
here and runs on a kiosk with a camera. What can run: opening real paths through linuxpy (a
missing node, a character device that is no camera, whose VIDIOC_QUERYCAP ioctl fails), and the
device search over a directory of such nodes.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from drivers.camera import (
    CameraBusy,
    CameraError,
    CameraOffline,
    CameraSettings,
    open_camera,
)
from drivers.camera.v4l2 import V4L2Camera, _map_os_error, list_capture_devices
from tests.fixtures.processes import REPO_ROOT


def _v4l2(**kw: object) -> V4L2Camera:
    camera = open_camera(CameraSettings.model_validate({"backend": "v4l2", **kw}))
    assert isinstance(camera, V4L2Camera)
    return camera


def test_a_missing_device_is_offline_in_plain_words(tmp_path: Path) -> None:
    camera = _v4l2(device_path=str(tmp_path / "video0"))
    with pytest.raises(CameraOffline) as caught:
        camera.snap()
    assert caught.value.message_zh == "高拍仪未连接，请联系工作人员。"
    assert caught.value.message_en.startswith("The document camera is not connected")
    assert isinstance(caught.value, ConnectionError)


def test_a_node_that_is_no_camera_is_offline_not_a_crash() -> None:
    # /dev/null opens fine; linuxpy's VIDIOC_QUERYCAP on it fails with ENOTTY
    with pytest.raises(CameraOffline) as caught:
        _v4l2(device_path="/dev/null").snap()
    assert "not a V4L2 video device" in caught.value.detail


def _null_node(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the same device as /dev/null
    except PermissionError:
        pytest.skip(reason="mknod needs root (CAP_MKNOD); this test makes a char node")


def test_device_search_skips_nodes_that_are_no_camera(tmp_path: Path) -> None:
    _null_node(tmp_path / "video0")
    (tmp_path / "video1").write_bytes(b"a plain file, not a char device")
    assert list_capture_devices(str(tmp_path)) == []
    camera = V4L2Camera(
        CameraSettings(backend="v4l2", device_name="Document"), dev_dir=str(tmp_path)
    )
    with pytest.raises(CameraOffline) as caught:
        camera.snap()
    assert "name 'Document'" in caught.value.detail


@pytest.mark.parametrize(
    ("err", "kind", "words"),
    [
        (errno.EBUSY, CameraBusy, "in use"),
        (errno.EACCES, CameraError, "group 'video'"),
        (errno.ENODEV, CameraOffline, "/dev/video0"),
        (errno.EIO, CameraOffline, "/dev/video0"),
        (errno.EINVAL, CameraError, "/dev/video0"),
    ],
)
def test_os_errors_map_to_typed_errors(err: int, kind: type[CameraError], words: str) -> None:
    mapped = _map_os_error(OSError(err, os.strerror(err)), "/dev/video0")
    assert type(mapped) is kind
    assert words in mapped.detail


def test_importing_the_camera_package_does_not_import_linuxpy() -> None:
    code = (
        "import sys, drivers.camera, drivers.camera.v4l2, drivers.camera.sim, "
        "drivers.hwctl.camera; open_camera = drivers.camera.open_camera; "
        "print('linuxpy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_a_real_camera_takes_a_picture() -> None:
    devices = list_capture_devices()
    if not devices:
        pytest.skip(reason="no V4L2 capture device (/dev/video*) on this machine")
    camera = _v4l2(device_path=devices[0]["path"], width=640, height=480)
    photo = camera.snap()
    image = Image.open(io.BytesIO(photo.jpeg))
    assert (image.format, image.size) == ("JPEG", (640, 480))
    assert photo.source_format in ("MJPG", "JPEG", "YUYV")
