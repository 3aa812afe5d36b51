"""``hwctl camera``: list V4L2 capture devices, and take one picture into a file.

hwctl camera devices
hwctl camera snap FILE [--backend v4l2] [--device /dev/video0 | --device-name NAME]
                       [--width 2048 --height 1536] [--pixel-format auto|mjpeg|yuyv]
hwctl camera snap FILE --sim-title 营业执照 [--sim-skew-deg 3] [--sim-noise 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from drivers.camera import CameraError, CameraSettings, open_camera
from drivers.camera.sim import SimCamera
from drivers.hwctl.output import Output
from hallkiosk.config import ConfigError


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "camera", help="document camera: list devices, take a picture"
    )
    actions = parser.add_subparsers(dest="action", required=True)

    devices = actions.add_parser("devices", help="list V4L2 capture devices and their formats")
    devices.add_argument("--dev-dir", default="/dev", help=argparse.SUPPRESS)
    devices.set_defaults(handler=_devices)

    snap = actions.add_parser("snap", help="take one picture and write it as a JPEG file")
    snap.add_argument("file", type=Path)
    snap.add_argument("--backend", choices=("sim", "v4l2"), default="sim")
    snap.add_argument("--device", default="", help="v4l2: device path, e.g. /dev/video0")
    snap.add_argument("--device-name", default="", help="v4l2: part of the card name")
    snap.add_argument("--bus-info", default="", help="v4l2: start of the bus info")
    snap.add_argument("--width", type=int, default=2048)
    snap.add_argument("--height", type=int, default=1536)
    snap.add_argument("--pixel-format", choices=("auto", "mjpeg", "yuyv"), default="auto")
    snap.add_argument("--quality", type=int, default=85)
    snap.add_argument("--timeout-ms", type=int, default=5000)
    snap.add_argument("--sim-title", default="", help="sim: title printed on the page")
    snap.add_argument("--sim-skew-deg", type=float, default=0.0)
    snap.add_argument("--sim-noise", type=float, default=0.0)
    snap.set_defaults(handler=_snap)


def _settings(args: argparse.Namespace) -> CameraSettings:
    try:
        return CameraSettings(
            backend=args.backend,
            device_path=args.device,
            device_name=args.device_name,
            bus_info=args.bus_info,
            width=args.width,
            height=args.height,
            pixel_format=args.pixel_format,
            jpeg_quality=args.quality,
            capture_timeout_ms=args.timeout_ms,
        )
    except ValidationError as exc:
        raise ConfigError(
            [f"{'.'.join(str(p) for p in e['loc']) or 'camera'}: {e['msg']}" for e in exc.errors()]
        ) from None


def _snap(args: argparse.Namespace, out: Output) -> int:
    camera = open_camera(_settings(args))
    if isinstance(camera, SimCamera) and (args.sim_title or args.sim_skew_deg or args.sim_noise):
        try:
            camera.set_document(
                args.sim_title or camera.title, skew_deg=args.sim_skew_deg, noise=args.sim_noise
            )
        except ValueError as exc:
            raise ConfigError([str(exc)]) from None
    with camera:
        photo = camera.snap()
    target: Path = args.file
    _write_atomically(target, photo.jpeg)
    out.result(
        {"ok": True, "file": str(target), **photo.describe()},
        f"wrote {target} ({len(photo.jpeg)} bytes, {photo.width}x{photo.height}, "
        f"{photo.source_format} from {photo.source})",
    )
    return 0


def _write_atomically(target: Path, data: bytes) -> None:
    """A half-written picture must never be mistaken for a whole one."""
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise CameraError(f"cannot write into {directory}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CameraError(f"cannot write {target}: {exc.strerror}") from None


def _devices(args: argparse.Namespace, out: Output) -> int:
    try:
        from drivers.camera.v4l2 import list_capture_devices  # noqa: PLC0415

        found = list_capture_devices(args.dev_dir)
    except ImportError:
        raise CameraError("linuxpy is not installed") from None
    lines = [
        f"{d['path']}  {d['card']!r}  bus={d['bus_info']}  formats={','.join(d['formats'])}"
        for d in found
    ]
    out.result(
        {"ok": True, "devices": found},
        "\n".join(lines) or "no V4L2 capture devices (is the camera plugged in? group 'video'?)",
    )
    return 0
