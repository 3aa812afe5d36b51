"""The simulated document camera, its hooks, and ``hwctl camera snap`` run for real."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat
from pydantic import ValidationError

from drivers.camera import (
    CameraBusy,
    CameraOffline,
    CameraSettings,
    CameraTimeout,
    open_camera,
)
from drivers.camera.sim import CJK_FONT, PLATE, SC_FAMILY, FontSource, SimCamera
from tests.fixtures.processes import REPO_ROOT


def _sim(width: int = 800, height: int = 600) -> SimCamera:
    camera = open_camera(CameraSettings(width=width, height=height))
    assert isinstance(camera, SimCamera)
    return camera


def _image(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    assert image.format == "JPEG"
    image.load()
    return image.convert("RGB")


@pytest.mark.parametrize(("width", "height"), [(640, 480), (1280, 720), (1200, 1600)])
def test_the_sim_jpeg_decodes_at_the_configured_size(width: int, height: int) -> None:
    photo = _sim(width, height).snap()
    assert (photo.width, photo.height) == (width, height)
    assert _image(photo.jpeg).size == (width, height)


def test_the_cjk_face_is_the_simplified_chinese_one() -> None:
    fonts = FontSource()
    if not CJK_FONT.exists():
        pytest.skip(reason=f"{CJK_FONT} is not installed (Debian package fonts-noto-cjk)")
    assert fonts.name == SC_FAMILY
    assert fonts.get(20).getname()[0] == SC_FAMILY  # type: ignore[union-attr]
    # a CJK glyph has ink: with the SC face 政 is not an empty box
    assert fonts.get(40).getbbox("政")[2] > 20


def test_a_missing_font_falls_back_and_still_draws(tmp_path: Path) -> None:
    camera = SimCamera(
        CameraSettings(width=640, height=480), fonts=FontSource(tmp_path / "none.ttc")
    )
    assert camera.fonts.index is None
    assert _image(camera.snap().jpeg).size == (640, 480)


def _page_top(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((w // 4, h // 20, 3 * w // 4, h // 6))


def test_the_title_is_drawn_where_a_title_belongs() -> None:
    camera = _sim()
    first = camera.render()
    camera.set_document("营业执照变更登记申请书")
    second = camera.render()
    top = ImageChops.difference(_page_top(first), _page_top(second)).getbbox()
    assert top is not None  # the title area changed
    w, h = first.size
    lower = ImageChops.difference(
        first.crop((0, h // 2, w, h)), second.crop((0, h // 2, w, h))
    ).getbbox()
    assert lower is None  # and nothing else did


def test_frame_counter_counts_snaps() -> None:
    camera = _sim()
    a, b = camera.snap(), camera.snap()
    assert (a.frame_number, b.frame_number) == (1, 2)
    corner = (0, 0, 120, 50)
    diff = ImageChops.difference(_image(a.jpeg).crop(corner), _image(b.jpeg).crop(corner))
    assert diff.getbbox() is not None


def test_skew_turns_the_page_and_keeps_it_on_the_plate() -> None:
    camera = _sim()
    upright = camera.render()
    camera.set_document("不动产登记申请表", skew_deg=8.0)
    skewed = camera.render()
    assert ImageChops.difference(upright, skewed).getbbox() is not None
    w, h = skewed.size
    for xy in ((0, h - 1), (w - 1, 0), (w - 1, h - 1), (w // 2, 0)):
        assert skewed.getpixel(xy) == PLATE, xy
    # the upright page's top-left corner is plate once the page turns anticlockwise
    left = (w - round(h * 0.92 / (297 / 210))) // 2
    assert upright.getpixel((left + 3, round(h * 0.04) + 3)) != PLATE
    assert skewed.getpixel((left + 3, round(h * 0.04) + 3)) == PLATE


def test_noise_roughens_the_plate() -> None:
    camera = _sim()
    clean = camera.render().crop((0, 300, 60, 600)).convert("L")
    camera.set_document("不动产登记申请表", noise=40.0)
    noisy = camera.render().crop((0, 300, 60, 600)).convert("L")
    assert ImageStat.Stat(clean).stddev[0] < 1.0
    assert 30.0 < ImageStat.Stat(noisy).stddev[0] < 50.0  # sigma 40, a little clipped


def test_set_document_refuses_silly_values() -> None:
    with pytest.raises(ValueError):
        _sim().set_document("x", skew_deg=90)
    with pytest.raises(ValueError):
        _sim().set_document("x", noise=-1)


def test_fail_next_and_unplug() -> None:
    camera = _sim()
    camera.fail_next()
    camera.fail_next(CameraBusy("another program"))
    with pytest.raises(CameraTimeout):
        camera.snap()
    with pytest.raises(CameraBusy):
        camera.snap()
    assert camera.snap().frame_number == 1  # failures took no frame
    camera.unplug()
    with pytest.raises(CameraOffline) as caught:
        camera.snap()
    assert caught.value.message_zh == "高拍仪未连接，请联系工作人员。"
    camera.plug()
    assert camera.snap().frame_number == 2


@pytest.mark.parametrize(
    "data",
    [
        {"width": 100},
        {"height": 7000},
        {"jpeg_quality": 100},
        {"warmup_frames": 31},
        {"capture_timeout_ms": 50},
        {"backend": "opencv"},
        {"resolution": "1080p"},
        {"width": "800"},
    ],
)
def test_settings_refuse_out_of_range_and_unknown_values(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CameraSettings.model_validate(data)


# --- hwctl for real ---


def _hwctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drivers.hwctl", "--json", "camera", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hwctl_snap_writes_a_real_jpeg(tmp_path: Path) -> None:
    target = tmp_path / "page.jpg"
    out = _hwctl(
        "snap", str(target), "--width", "1024", "--height", "768", "--sim-title", "户口迁移"
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result == {
        "ok": True,
        "file": str(target),
        "bytes": target.stat().st_size,
        "width": 1024,
        "height": 768,
        "source": "sim",
        "source_format": "sim",
        "frame_number": 1,
    }
    assert _image(target.read_bytes()).size == (1024, 768)
    assert [p.name for p in tmp_path.iterdir()] == ["page.jpg"]  # no temporary left behind


def test_hwctl_snap_without_a_camera_says_so(tmp_path: Path) -> None:
    target = tmp_path / "page.jpg"
    out = _hwctl("snap", str(target), "--backend", "v4l2", "--device", str(tmp_path / "video0"))
    assert out.returncode == 2
    error = json.loads(out.stdout)
    assert (error["ok"], error["code"]) == (False, "camera_offline")
    assert not target.exists()


def test_hwctl_snap_refuses_a_size_out_of_range(tmp_path: Path) -> None:
    out = _hwctl("snap", str(tmp_path / "x.jpg"), "--width", "100")
    assert out.returncode == 2
    assert json.loads(out.stdout)["code"] == "config_invalid"


def test_hwctl_devices_lists_none_here() -> None:
    out = _hwctl("devices")
    assert out.returncode == 0
    assert json.loads(out.stdout) == {"ok": True, "devices": []} or "/dev/video" in out.stdout
