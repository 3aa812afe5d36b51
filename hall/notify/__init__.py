"""The hall's SMS notifications to applicants (DESIGN §1; issue 4 item 5).

Kinds: the locker pickup password, pre-review accepted, pre-review returned (every item listed
at once), overdue pickup reminder, booking reminder. The hall queues a message in its own
transaction (``enqueue``); a ``NotificationDispatcher`` sends due messages through a
``NotificationSender`` (file spool or HTTP gateway), retrying with backoff and raising an alarm
when a message cannot be delivered. See docs/hall-notify.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hall.notify.errors import (
    InvalidPhone,
    MessageTooLong,
    NotifyConfigError,
    NotifyError,
    PermanentSendError,
    SendError,
    TemplateError,
    TransientSendError,
)
from hall.notify.message import OutgoingMessage, mask_phone, normalise_phone
from hall.notify.queue import (
    SCHEMA,
    TABLE,
    NotificationRecord,
    QueueStats,
    enqueue,
    ensure_schema,
    list_recent,
    purge_finished,
    requeue,
    stats,
)
from hall.notify.senders import NotificationSender
from hall.notify.settings import HttpSmsSettings, NotifySettings, RetrySettings
from hall.notify.templates import KINDS, TEMPLATES, render
from hallkiosk.clock import Clock
from hallkiosk.lazy import lazy_exports

if TYPE_CHECKING:  # imported on first use, not with the settings (hallkiosk/lazy.py)
    from hall.notify.dispatcher import ALARM_FAILED, NotificationDispatcher, backoff_s
    from hall.notify.file_sender import FileSender, read_spool
    from hall.notify.http_sms import HttpSmsSender

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "hall.notify.dispatcher": (
            "ALARM_FAILED",
            "NotificationDispatcher",
            "backoff_s",
        ),
        "hall.notify.file_sender": (
            "FileSender",
            "read_spool",
        ),
        "hall.notify.http_sms": ("HttpSmsSender",),
    },
)


def make_sender(
    settings: NotifySettings, *, clock: Clock | None = None, base_dir: Path | str | None = None
) -> NotificationSender:
    """The configured backend. ``base_dir`` (the data directory) anchors relative paths:
    the spool directory and the credential files."""
    # the backends are imported here, not with the package (see above)
    from hall.notify.file_sender import FileSender  # noqa: PLC0415
    from hall.notify.http_sms import HttpSmsSender  # noqa: PLC0415

    if settings.backend == "http_sms":
        return HttpSmsSender(settings.http_sms, base_dir=base_dir)
    spool = Path(settings.spool_dir)
    if base_dir is not None and not spool.is_absolute():
        spool = Path(base_dir) / spool
    return FileSender(spool, clock=clock)


__all__ = [
    "ALARM_FAILED",
    "KINDS",
    "SCHEMA",
    "TABLE",
    "TEMPLATES",
    "FileSender",
    "HttpSmsSender",
    "HttpSmsSettings",
    "InvalidPhone",
    "MessageTooLong",
    "NotificationDispatcher",
    "NotificationRecord",
    "NotificationSender",
    "NotifyConfigError",
    "NotifyError",
    "NotifySettings",
    "OutgoingMessage",
    "PermanentSendError",
    "QueueStats",
    "RetrySettings",
    "SendError",
    "TemplateError",
    "TransientSendError",
    "backoff_s",
    "enqueue",
    "ensure_schema",
    "list_recent",
    "make_sender",
    "mask_phone",
    "normalise_phone",
    "purge_finished",
    "read_spool",
    "render",
    "requeue",
    "stats",
]
