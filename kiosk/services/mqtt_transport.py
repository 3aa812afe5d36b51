"""``MqttTransport``: the ``HallTransport`` over ``uplink.requests.Requester`` (docs/mqtt.md).

Every request kind of docs/hall.md is registered with its timeout from ``[kiosk.timeouts]``.
The Requester's own fallback only marks the reply as not from the hall; the transport turns
that into ``HallUnreachable(reason)`` (``not_connected``, ``hall_offline``, ``busy``, ``timeout``,
``transport_error``, ``bad_response``), and the gateway applies the kind's real offline
fallback, where it knows the types. An error from the hall becomes ``HallRefusal`` with the
hall's code and both texts, shown to the applicant as they are.

``call`` blocks up to the kind's timeout and must not run on the MQTT network thread (the
Requester raises ``RuntimeError`` there, since the answer could never arrive).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from kiosk.services.hall_gateway import HallRefusal, HallUnreachable
from kiosk.settings import RequestTimeouts
from uplink.requests import FallbackReason, Publisher, Requester, RequestKind

KINDS: Final = (
    "catalog",
    "ticket.issue",
    "ticket.status",
    "appointment.lookup",
    "appointment.checkin",
    "appointment.sync",
    "prereview.upload",
    "prereview.submit",
    "prereview.status",
    "case.lookup",
)


def _not_from_the_hall(_args: Mapping[str, Any], _reason: FallbackReason) -> Mapping[str, Any]:
    return {}


def request_kinds(timeouts: RequestTimeouts) -> list[RequestKind]:
    """Every kind the kiosk asks, with its timeout."""
    return [RequestKind(kind, timeouts.for_kind(kind), _not_from_the_hall) for kind in KINDS]


class MqttTransport:
    def __init__(self, requester: Requester, *, connected: Publisher | None = None) -> None:
        self._requester = requester
        self._connected = connected  # the UplinkConnection (anything with ``connected``)

    @property
    def online(self) -> bool:
        """Connected to the broker and the hall's presence is online: requests are sent."""
        if self._connected is not None and not self._connected.connected:
            return False
        return self._requester.presence.hall_online

    def call(self, kind: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        reply = self._requester.request(kind, args)
        if reply.source == "fallback":
            reason = str(reply.reason) if reply.reason is not None else "unknown"
            raise HallUnreachable(f"{reason}: {reply.detail}" if reply.detail else reason)
        if reply.error is not None:
            error = reply.error
            raise HallRefusal(error.code, error.message_zh, error.message_en)
        return reply.result or {}
