"""The sender interface. A sender delivers one message per call and classifies every failure.

Backends: ``FileSender`` (file_sender.py, the simulator and the embedded default) and
``HttpSmsSender`` (http_sms.py). ``make_sender`` in the package root picks one from settings.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from hall.notify.message import OutgoingMessage


class NotificationSender(ABC):
    @abstractmethod
    def send(self, msg: OutgoingMessage) -> str:
        """Deliver ``msg``; return the provider's message id.

        Raises ``TransientSendError`` (retry later) or ``PermanentSendError`` (never retry).
        Neither error's text may contain the message text, a password or the raw phone number.
        A sender may be called again with the same ``msg.out_id`` after a crash (at-least-once).
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most senders hold nothing
        """Release what the sender holds; the default holds nothing."""
