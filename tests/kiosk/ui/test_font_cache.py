"""kiosk/ui/font_cache.py: the app's start never waits for a face to be prepared; the plain copy
is used meanwhile and the prepared one is written by a background process for the next start;
``python -m kiosk.ui.font_cache`` prepares at install time, one writer at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.ui.font_cache import CANDIDATES, face_file, plain_path, prepared_path
from kiosk.ui.sfnt import Face, read_faces, read_table
from tests.fixtures import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]
NOTO_CJK = Path(CANDIDATES[0][0])
FAMILY = CANDIDATES[0][1]
# flattening Noto's CFF takes a few seconds on a PC, much longer on a loaded CI machine
PREPARE_TIMEOUT_S = 180.0
needs_noto = pytest.mark.skipif(not NOTO_CJK.is_file(), reason="fonts-noto-cjk is not installed")


def the_face() -> Face:
    faces = read_faces(NOTO_CJK)
    return next(f for f in faces if FAMILY in f.families)


@needs_noto
def test_without_a_prepared_face_the_start_uses_the_plain_one_and_prepares_it_meanwhile(
    tmp_path: Path,
) -> None:
    face = the_face()
    prepared = prepared_path(NOTO_CJK, face, tmp_path)
    plain = plain_path(NOTO_CJK, face, tmp_path)

    used = face_file(NOTO_CJK, FAMILY, tmp_path, wait=False)

    assert used == plain  # the Simplified Chinese face, as it is in the collection
    (copied,) = read_faces(used)
    assert copied.families == (FAMILY,)
    original = read_table(NOTO_CJK, face, b"CFF ")
    assert read_table(used, copied, b"CFF ") == original
    # a background process writes the prepared copy, whole, for the next start
    wait_until(prepared.exists, timeout_s=PREPARE_TIMEOUT_S, what="the prepared face")
    (flat,) = read_faces(prepared)
    assert flat.families == (FAMILY,)
    flat_cff = read_table(prepared, flat, b"CFF ")
    assert flat_cff is not None and flat_cff != original
    assert face_file(NOTO_CJK, FAMILY, tmp_path, wait=False) == prepared
    wait_until(
        lambda: (
            sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
            == sorted([plain.name, prepared.name])
        ),
        timeout_s=PREPARE_TIMEOUT_S,
        what="no temporary file left behind",
    )


@needs_noto
def test_the_install_step_prepares_once_and_two_at_once_do_not_clash(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "kiosk.ui.font_cache",
        "--family",
        FAMILY,
        "--cache-dir",
        str(tmp_path),
        str(NOTO_CJK),
    ]
    first, second = (
        subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    )
    outs = [p.communicate(timeout=PREPARE_TIMEOUT_S)[0] for p in (first, second)]
    assert (first.returncode, second.returncode) == (0, 0)
    face = the_face()
    prepared = prepared_path(NOTO_CJK, face, tmp_path)
    assert [out.strip() for out in outs] == [str(prepared)] * 2
    stamp = prepared.stat().st_mtime_ns
    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == str(prepared)
    assert prepared.stat().st_mtime_ns == stamp  # found, not written again
    assert face_file(NOTO_CJK, FAMILY, tmp_path, wait=False) == prepared
