"""The cached copy of a font face that Kivy opens (no Kivy here: it also runs as its own process).

Kivy can open only a collection's first face, and it opens the font once per pixel size. So the
Simplified Chinese face of Noto Sans CJK's ``.ttc`` is copied into the cache, with its CFF
subroutines inlined (``sfnt.flatten_cff``): each opening of the original costs ~1.8 MiB more
(docs/kiosk-ui.md "Fonts"). Two copies, named after the source file's size and mtime:

- **plain** (``...-{index}-{size}-{mtime}.otf``): the face as it is; written in well under a
  second;
- **prepared** (``...-flat.otf``): flattened; a few seconds on a PC, longer on a Pi, once per
  font file version.

``face_file(..., wait=True)`` returns the prepared copy, writing it first if needed (tests, the
bench, an install step: ``python -m kiosk.ui.font_cache``). ``wait=False`` (the app's start)
never makes the window wait: without a prepared copy it returns the plain one and prepares the
other in a background process at low priority, for the next start. Every copy is written to a
temporary file and renamed, so a killed writer leaves no half file behind.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from kiosk.ui.sfnt import (
    Face,
    FontFileError,
    extract_face,
    find_face,
    flatten_cff,
    read_faces,
    read_table,
)

log = logging.getLogger(__name__)

# (path, family to take from it when it is a collection), best first
CANDIDATES: tuple[tuple[str, str], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", "Noto Sans CJK SC"),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", "Noto Sans CJK SC"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", "WenQuanYi Micro Hei"),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", "WenQuanYi Zen Hei"),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", "Droid Sans Fallback"),
)

# in the prepared copy's name: a file written by an older way of preparing is not used
PREPARED = "flat"
BACKGROUND_NICE = 10


class FaceNotFound(FontFileError):
    pass


def default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("CACHE_DIRECTORY") or env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base.split(":")[0]) / "hallkiosk" / "fonts"


def bold_beside(regular: Path) -> Path | None:
    bold = regular.with_name(regular.name.replace("Regular", "Bold"))
    return bold if bold != regular and bold.exists() else None


def _face_of(path: Path, family: str) -> tuple[Face, bool]:
    """``family``'s face of ``path``, and whether it is the file's only face."""
    faces = read_faces(path)
    if len(faces) == 1:
        return faces[0], True
    found = find_face(faces, family)
    if found is None:
        names = sorted({name for f in faces for name in f.families})
        raise FaceNotFound(f"{path} has no face named {family!r}; it has: {', '.join(names)}")
    return found, False


def _has_cff(face: Face) -> bool:
    return any(table.tag == b"CFF " for table in face.tables)


def _stem(path: Path, face: Face) -> str:
    stat = path.stat()
    return f"{path.stem}-{face.index}-{stat.st_size}-{stat.st_mtime_ns}"


def prepared_path(path: Path, face: Face, cache_dir: Path) -> Path:
    return cache_dir / f"{_stem(path, face)}-{PREPARED}.otf"


def plain_path(path: Path, face: Face, cache_dir: Path) -> Path:
    return cache_dir / f"{_stem(path, face)}.otf"


def face_file(path: Path, family: str, cache_dir: Path, *, wait: bool = True) -> Path:
    """A single-face file of ``family``'s face of ``path`` that Kivy can open: ``path`` itself
    for a lone TrueType face, else a copy in ``cache_dir`` (see the module doc for ``wait``)."""
    face, lone = _face_of(path, family)
    if lone and not _has_cff(face):
        return path
    prepared = prepared_path(path, face, cache_dir)
    if prepared.exists():
        return prepared
    if wait:
        prepare_face(path, face, prepared)
        return prepared
    start_preparing(path, family, cache_dir)
    if lone:
        return path
    plain = plain_path(path, face, cache_dir)
    if not plain.exists():
        extract_face(path, face, plain)
    return plain


def prepare_face(path: Path, face: Face, target: Path) -> None:
    """Write ``face`` of ``path`` to ``target`` with its CFF subroutines inlined. A CFF that
    cannot be flattened is copied as it is (and not tried again: the target exists)."""
    started = time.perf_counter()
    replace: dict[bytes, bytes] = {}
    cff = read_table(path, face, b"CFF ")
    if cff is not None:
        try:
            flat = flatten_cff(cff)
        except FontFileError as error:
            log.warning("%s: CFF outlines copied unflattened: %s", path, error)
            flat = None
        if flat is not None:  # None: nothing to gain
            replace[b"CFF "] = flat
    extract_face(path, face, target, replace)
    log.info(
        "font face %s of %s prepared in %.1f s: %s",
        face.index,
        path,
        time.perf_counter() - started,
        target,
    )


def start_preparing(path: Path, family: str, cache_dir: Path) -> None:
    """``python -m kiosk.ui.font_cache`` for one face, detached, at low priority; its log goes
    where ours goes (journald). A second one for the same cache waits for the first's lock
    and then finds the copy written."""
    log.info("font face of %s not prepared yet: preparing it for the next start", path)
    try:
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kiosk.ui.font_cache",
                "--family",
                family,
                "--cache-dir",
                str(cache_dir),
                "--nice",
                str(BACKGROUND_NICE),
                str(path),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as error:  # the plain copy works; the next start tries again
        log.warning("could not start preparing the font face of %s: %s", path, error)


def prepare(paths: Sequence[Path], family: str, cache_dir: Path) -> list[Path]:
    """Each path's face prepared in ``cache_dir`` (one writer at a time per cache)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    done = []
    with (cache_dir / ".prepare.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for path in paths:
            done.append(face_file(path, family, cache_dir, wait=True))
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kiosk.ui.font_cache",
        description="Prepare the kiosk's font faces (once per install; the app does it too).",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="default: the first font found")
    parser.add_argument("--family", default="Noto Sans CJK SC")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--nice", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
    if args.nice:
        with contextlib.suppress(OSError):
            os.nice(args.nice)
    paths, family = list(args.paths), args.family
    if not paths:
        found = next(((Path(p), f) for p, f in CANDIDATES if Path(p).is_file()), None)
        if found is None:
            print("no font found; install fonts-noto-cjk", file=sys.stderr)
            return 1
        bold = bold_beside(found[0])
        paths, family = [found[0], *([bold] if bold else [])], found[1]
    try:
        for prepared in prepare(paths, family, args.cache_dir or default_cache_dir(os.environ)):
            print(prepared)
    except (FontFileError, OSError) as error:
        print(f"font not prepared: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
