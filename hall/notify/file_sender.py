"""The file backend: each SMS becomes one JSON file in a spool directory.

It is the simulator (tests and the embedded default read the spool) and a hand-off point for a
site whose SMS platform picks files up. The spool file IS the delivered SMS, so it holds the
phone and the rendered text (with a pickup password): the directory is 0700 and each file 0600.

Writes are atomic (temp file, fsync, rename, fsync of the directory), so a reader never sees a
half-written message, and a file once renamed survives a power cut. The file is named after
the message's ``out_id``: a send repeated after a crash replaces the same file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
from pathlib import Path
from typing import Any, Final

from hall.notify.errors import PermanentSendError, TransientSendError
from hall.notify.message import OutgoingMessage
from hall.notify.senders import NotificationSender
from hallkiosk.clock import Clock, SystemClock, utc_iso

FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
_OUT_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class FileSender(NotificationSender):
    def __init__(self, spool_dir: Path | str, *, clock: Clock | None = None) -> None:
        self.spool_dir = Path(spool_dir)
        self._clock: Clock = clock if clock is not None else SystemClock()

    def path_for(self, out_id: str) -> Path:
        return self.spool_dir / f"{out_id}.json"

    def send(self, msg: OutgoingMessage) -> str:
        if not _OUT_ID_RE.fullmatch(msg.out_id):
            # it names a file: refuse anything that could leave the spool directory
            raise PermanentSendError("out_id is not a plain token")
        record: dict[str, Any] = {
            "id": msg.id,
            "out_id": msg.out_id,
            "kind": msg.kind,
            "lang": msg.lang,
            "phone": msg.phone,
            "text": msg.text,
            "written_at": utc_iso(self._clock.now()),
        }
        if msg.template_id is not None:
            record["template_id"] = msg.template_id
            record["template_params"] = msg.template_params
        data = json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8") + b"\n"
        try:
            self.spool_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            _write_atomic(self.path_for(msg.out_id), data)
        except OSError as exc:
            # disk full, read-only remount, a missing mount: all may clear, so retry (and alarm
            # after max_attempts). strerror names the cause without any message content.
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, type(exc).__name__)
            raise TransientSendError(f"spool write failed: {reason}") from None
        return f"file:{msg.out_id}"

    def delivered(self) -> list[dict[str, Any]]:
        """Every spooled message, oldest first (the simulator's view of the handset)."""
        return read_spool(self.spool_dir)


def read_spool(spool_dir: Path | str) -> list[dict[str, Any]]:
    spool = Path(spool_dir)
    if not spool.is_dir():
        return []
    out: list[dict[str, Any]] = []
    for path in spool.glob("*.json"):
        with contextlib.suppress(FileNotFoundError):  # a consumer took it meanwhile
            out.append(json.loads(path.read_text(encoding="utf-8")))
    out.sort(key=lambda r: (str(r.get("written_at", "")), int(r.get("id", 0))))
    return out


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left by a crash of this very pid number
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # exact, whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a power cut
    finally:
        os.close(dir_fd)
