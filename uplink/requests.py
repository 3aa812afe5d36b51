"""The device side of request/response (docs/mqtt.md, "Requests and responses").

``HallPresenceTracker`` follows the hall's retained presence; ``Requester`` sends requests with
MQTT 5 ResponseTopic + CorrelationData and waits for the matching response. Every request kind is
registered up front as a ``RequestKind`` with a timeout and an offline fallback, so ``request()``
always returns a ``Reply``: from the hall, or from the fallback with the reason why.

Threading
    ``handle_message`` runs on the MQTT network thread (``UplinkConnection.on_message``).
    ``Requester.request()`` blocks until the answer, the timeout or the fallback, and may be called
    from any thread *except* the network thread: the answer can only arrive on that thread, so
    waiting there would always time out. It raises ``RuntimeError`` if called there.
    ``request_async()`` runs ``request()`` in the event loop's default executor.

Timeouts are real elapsed time (a lock acquired with a timeout); the injected clock gives the
request's ``ts``.

Per request
    The caller's thread builds and publishes the request and then sleeps on a plain lock that
    ``handle_message`` releases once, with the reply in place: one lock per request, no
    ``threading.Event`` (a Condition, its lock and a waiter lock per wait). Topics are worked out
    once per kind, not per message.

    All a request adds to its envelope is ``ts`` and ``args``: ``v``, ``kind``, ``device`` and
    ``component`` are the Requester's own, checked when it was made (``RequestKind``,
    ``Topics``). So the payload is written around ``args``, which are checked by the same
    strict rules and written by the same pydantic serializer as in ``encode(Request)``; the
    bytes are the same (checked for every kind when a Requester is made, and by the tests for
    any args). Args that fail the check, or a clock time that is not aware or not a whole
    minute off UTC, go through the ``Request`` model, which raises the exact error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any, Literal, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ConfigDict, TypeAdapter, ValidationError

from hallkiosk.clock import Clock
from uplink.connection import NotConnected, UplinkConnection
from uplink.errors import UplinkError
from uplink.messages import (
    SCHEMA_VERSION,
    ErrorInfo,
    HallPresence,
    JsonObject,
    MessageError,
    Request,
    Response,
    ResponseOk,
    check_topic,
    decode,
    describe_errors,
    encode,
    format_time,
)
from uplink.topics import Leaf, ParsedTopic, TopicError, Topics, check_segment, parse

log = logging.getLogger(__name__)

# At most this many requests wait for the hall at once; more get the fallback with "busy".
MAX_PENDING = 32
CORRELATION_BYTES = 16
# Correlations that timed out are remembered this long (by count) to log a late answer as late.
RECENT_EXPIRED = 256
# ``args`` of a request on their own, as the Request model checks them (see "Per request")
_ARGS: TypeAdapter[dict[str, Any]] = TypeAdapter(
    JsonObject,
    config=ConfigDict(strict=True, allow_inf_nan=False),  # as Message.model_config
)
_MINUTE = timedelta(minutes=1)
_PROBE_TIME = datetime(2025, 3, 1, 9, 20, 11, 120000, tzinfo=timezone(timedelta(hours=8)))
_PROBE_ARGS: dict[str, Any] = {
    "text": '中文 "\\\n\u2028\x7f/',
    "numbers": [0, -1, 2**63, 2.5, 1e16, 1e-7],
    "other": {"none": None, "yes": True, "empty": {}, "list": []},
}


class FallbackReason(StrEnum):
    """Why a reply came from the kind's fallback rather than from the hall."""

    HALL_OFFLINE = "hall_offline"  # hall presence offline or not yet known: nothing was sent
    NOT_CONNECTED = "not_connected"  # no broker connection: nothing was sent
    BUSY = "busy"  # MAX_PENDING requests already wait: nothing was sent
    TIMEOUT = "timeout"  # sent, but no answer within the kind's timeout
    TRANSPORT_ERROR = "transport_error"  # the publish itself failed
    BAD_RESPONSE = "bad_response"  # an answer came but did not decode


Fallback = Callable[[Mapping[str, Any], FallbackReason], Mapping[str, Any]]


class UnknownRequestKind(UplinkError, LookupError):
    code = "request_kind_unknown"


@dataclass(frozen=True)
class RequestKind:
    """One request kind: its topic name, how long to wait for the hall, and what to do without.

    ``fallback(args, reason)`` returns the result to use instead of the hall's. It runs on the
    caller's thread; an exception it raises reaches the caller of ``request()``.
    """

    name: str
    timeout_s: float
    fallback: Fallback

    def __post_init__(self) -> None:
        check_segment(self.name, "request kind")
        if (
            isinstance(self.timeout_s, bool)
            or not isinstance(self.timeout_s, int | float)
            or not math.isfinite(self.timeout_s)
            or self.timeout_s <= 0
        ):
            raise ValueError(
                f"request kind {self.name!r}: timeout_s must be a positive number of seconds, "
                f"got {self.timeout_s!r}"
            )
        if not callable(self.fallback):
            raise TypeError(f"request kind {self.name!r}: an offline fallback is required")


@dataclass(frozen=True)
class Reply:
    """The answer to one request. ``ok`` is False only for an error from the hall."""

    kind: str
    source: Literal["hall", "fallback"]
    result: Mapping[str, Any] | None  # None exactly when ``error`` is set
    error: ErrorInfo | None = None  # the hall's error, with its texts for the applicant
    reason: FallbackReason | None = None  # set exactly when source is "fallback"
    detail: str | None = None  # e.g. the MessageError text of a bad response

    @property
    def ok(self) -> bool:
        return self.error is None


# --- hall presence -----------------------------------------------------------------------------


class HallState(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True)
class HallPresenceStats:
    state: HallState
    session: int | None  # of the presence applied last
    applied: int
    stale: int  # lower session than the last seen: ignored
    malformed: int  # did not decode or did not match the topic: ignored


class HallPresenceTracker:
    """The hall's presence as this device last heard it; UNKNOWN until the first message.

    A presence with a lower session than the last one applied is a late will (or a stale birth)
    and is ignored. Malformed payloads are logged and counted; the state stays as it was.
    """

    def __init__(self, topics: Topics) -> None:
        self._topic = topics.hall_presence
        self._changed = threading.Condition()
        self._state = HallState.UNKNOWN
        self._session: int | None = None
        self._applied = 0
        self._stale = 0
        self._malformed = 0

    @property
    def state(self) -> HallState:
        with self._changed:
            return self._state

    @property
    def hall_online(self) -> bool:
        return self.state is HallState.ONLINE

    @property
    def stats(self) -> HallPresenceStats:
        with self._changed:
            return HallPresenceStats(
                self._state, self._session, self._applied, self._stale, self._malformed
            )

    def wait_online(self, timeout_s: float | None = None) -> bool:
        """Block until the hall is online; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._state is HallState.ONLINE, timeout_s)

    def handle_message(self, message: mqtt.MQTTMessage) -> None:
        """Message hook (network thread); ignores every topic but the hall's presence."""
        if message.topic == self._topic:
            self.apply(bytes(message.payload))

    def apply(self, payload: bytes) -> None:
        try:
            presence = decode(HallPresence, payload)
            check_topic(presence, parse(self._topic))
        except MessageError as exc:
            with self._changed:
                self._malformed += 1
            log.warning("hall presence ignored, malformed: %s", exc)
            return
        with self._changed:
            if self._session is not None and presence.session < self._session:
                self._stale += 1
                log.info(
                    "stale hall presence ignored: %s, session %d < %d",
                    presence.state,
                    presence.session,
                    self._session,
                )
                return
            previous = self._state
            self._state = HallState(presence.state)
            self._session = presence.session
            self._applied += 1
            self._changed.notify_all()
        if previous is not self._state:
            log.info("hall %s is %s (session %d)", presence.hall, presence.state, presence.session)


# --- requests ----------------------------------------------------------------------------------


class Publisher(Protocol):
    """What the requester needs of ``UplinkConnection``."""

    @property
    def connected(self) -> bool: ...

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo: ...


@dataclass(frozen=True)
class RequesterStats:
    pending: int
    sent: int
    answered: int  # a decodable response from the hall, ok or error
    fallbacks: Mapping[FallbackReason, int]
    dropped_unknown: int  # responses with no or an unknown correlation
    dropped_late: int  # responses for a request that had already timed out
    dropped_duplicate: int  # a second response for a request already answered


@dataclass
class _Pending:
    kind: str
    # held from the start; released once, by handle_message, when ``reply`` is set
    done: threading.Lock = field(default_factory=threading.Lock)
    reply: Reply | None = None  # the hall's reply, or a bad_response marker (result None)


class Requester:
    """Sends requests to the hall and matches responses by CorrelationData.

    Feed it with ``handle_message`` (network thread, see ``attach``). ``request()`` must not be
    called on the network thread.
    """

    def __init__(
        self,
        connection: Publisher,
        topics: Topics,
        clock: Clock,
        presence: HallPresenceTracker,
        kinds: Iterable[RequestKind],
        *,
        max_pending: int = MAX_PENDING,
    ) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, got {max_pending}")
        self._connection = connection
        self._topics = topics
        self._clock = clock
        self.presence = presence
        self._max_pending = max_pending
        self._kinds: dict[str, RequestKind] = {}
        for kind in kinds:
            if not isinstance(kind, RequestKind):
                raise TypeError(f"not a RequestKind: {kind!r}")
            if kind.name in self._kinds:
                raise ValueError(f"request kind {kind.name!r} registered twice")
            self._kinds[kind.name] = kind
        # topics are the same for every message: built (and checked) once
        self._request_topics = {name: topics.request(name) for name in self._kinds}
        self._response_topic = topics.response
        self._response_parsed: ParsedTopic = parse(self._response_topic)
        # each kind's payload around its ts and args; used only if it writes what encode() does
        self._envelopes = {
            name: (
                f'{{"v":{SCHEMA_VERSION},"kind":"{name}","ts":"'.encode(),
                f'","device":"{topics.device_id}","component":"{topics.component}","args":'.encode(),
            )
            for name in self._kinds
        }
        self._shortcut = self._shortcut_matches_encode()
        self._lock = threading.Lock()
        self._pending: dict[bytes, _Pending] = {}
        self._expired: OrderedDict[bytes, str] = OrderedDict()
        self._network_thread: int | None = None
        self._sent = 0
        self._answered = 0
        self._fallbacks = dict.fromkeys(FallbackReason, 0)
        self._dropped_unknown = 0
        self._dropped_late = 0
        self._dropped_duplicate = 0

    @property
    def kinds(self) -> Mapping[str, RequestKind]:
        return dict(self._kinds)

    @property
    def stats(self) -> RequesterStats:
        with self._lock:
            return RequesterStats(
                pending=len(self._pending),
                sent=self._sent,
                answered=self._answered,
                fallbacks=dict(self._fallbacks),
                dropped_unknown=self._dropped_unknown,
                dropped_late=self._dropped_late,
                dropped_duplicate=self._dropped_duplicate,
            )

    # -- caller side ---------------------------------------------------------------------------

    def request(self, kind: str, args: Mapping[str, Any]) -> Reply:
        """Ask the hall and wait; never raises for a missing or slow hall (see ``Reply``).

        Raises ``UnknownRequestKind`` for an unregistered kind, ``MessageError`` if ``args`` is
        not a JSON object, and ``RuntimeError`` on the MQTT network thread.
        """
        spec = self._kinds.get(kind)
        if spec is None:
            known = ", ".join(sorted(self._kinds)) or "none"
            raise UnknownRequestKind(f"request kind {kind!r} is not registered (known: {known})")
        if self._network_thread == threading.get_ident():
            raise RuntimeError(
                "Requester.request() called on the MQTT network thread, where its answer would "
                "have to arrive; call it from another thread"
            )
        payload = self._payload(kind, args)
        if not self._connection.connected:
            return self._fallback(spec, args, FallbackReason.NOT_CONNECTED)
        if not self.presence.hall_online:
            return self._fallback(spec, args, FallbackReason.HALL_OFFLINE)

        correlation = os.urandom(CORRELATION_BYTES)
        pending = _Pending(kind)
        pending.done.acquire()  # a new lock: never blocks
        with self._lock:
            if len(self._pending) >= self._max_pending:
                busy = True
            else:
                busy = False
                self._pending[correlation] = pending
        if busy:
            return self._fallback(spec, args, FallbackReason.BUSY)

        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ResponseTopic = self._response_topic
        properties.CorrelationData = correlation
        try:
            self._connection.publish(
                self._request_topics[kind], payload, qos=Leaf.REQUEST.qos, properties=properties
            )
        except NotConnected as exc:
            self._forget(correlation)
            return self._fallback(spec, args, FallbackReason.NOT_CONNECTED, str(exc))
        except Exception as exc:
            self._forget(correlation)
            log.exception("request %s: publish failed", kind)
            return self._fallback(spec, args, FallbackReason.TRANSPORT_ERROR, repr(exc))
        with self._lock:
            self._sent += 1

        pending.done.acquire(timeout=spec.timeout_s)
        with self._lock:
            # An answer that lands between the wait ending and this lock still counts.
            del self._pending[correlation]
            reply = pending.reply
            if reply is None:
                self._expired[correlation] = kind
                while len(self._expired) > RECENT_EXPIRED:
                    self._expired.popitem(last=False)
        if reply is None:
            log.warning("request %s: no answer within %s s", kind, spec.timeout_s)
            return self._fallback(spec, args, FallbackReason.TIMEOUT)
        if reply.reason is FallbackReason.BAD_RESPONSE:
            return self._fallback(spec, args, FallbackReason.BAD_RESPONSE, reply.detail)
        return reply

    async def request_async(self, kind: str, args: Mapping[str, Any]) -> Reply:
        """``request()`` for asyncio code, run in the loop's default executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.request, kind, args))

    def _payload(self, kind: str, args: Mapping[str, Any]) -> bytes:
        """``encode(self._build(kind, args))``, without the Request model when it can."""
        now = self._clock.now()
        data = dict(args)
        if self._shortcut:
            payload = self._written_around(kind, now, data)
            if payload is not None:
                return payload
        return encode(self._build(kind, data, now))

    def _written_around(self, kind: str, now: datetime, data: dict[str, Any]) -> bytes | None:
        """The payload written around ``now`` and ``data``; None if the model must decide."""
        if type(now) is not datetime:
            return None
        offset = now.utcoffset()
        if offset is None or offset % _MINUTE:
            return None
        try:
            checked = _ARGS.validate_python(data)
        except ValidationError:
            return None
        head, middle = self._envelopes[kind]
        return b"".join((head, format_time(now).encode(), middle, _ARGS.dump_json(checked), b"}"))

    def _shortcut_matches_encode(self) -> bool:
        """Whether ``_written_around`` writes what ``encode`` does, for every kind: checked once,
        so that a change of the model or of pydantic's output turns the shortcut off."""
        try:
            return all(
                self._written_around(name, _PROBE_TIME, _PROBE_ARGS)
                == encode(self._build(name, _PROBE_ARGS, _PROBE_TIME))
                for name in self._kinds
            )
        except MessageError:
            return False

    def _build(self, kind: str, args: Mapping[str, Any], now: datetime | None = None) -> Request:
        try:
            return Request.model_validate(
                {
                    "v": SCHEMA_VERSION,
                    "kind": kind,
                    "ts": self._clock.now() if now is None else now,
                    "device": self._topics.device_id,
                    "component": self._topics.component,
                    "args": dict(args),
                }
            )
        except ValidationError as exc:
            raise MessageError(describe_errors(Request, exc)) from None

    def _forget(self, correlation: bytes) -> None:
        with self._lock:
            self._pending.pop(correlation, None)

    def _fallback(
        self,
        spec: RequestKind,
        args: Mapping[str, Any],
        reason: FallbackReason,
        detail: str | None = None,
    ) -> Reply:
        with self._lock:
            self._fallbacks[reason] += 1
        log.log(
            logging.DEBUG
            if reason in (FallbackReason.HALL_OFFLINE, FallbackReason.NOT_CONNECTED)
            else logging.WARNING,
            "request %s: using the offline fallback (%s)%s",
            spec.name,
            reason,
            f": {detail}" if detail else "",
        )
        result = spec.fallback(args, reason)
        return Reply(spec.name, "fallback", dict(result), reason=reason, detail=detail)

    # -- network thread ------------------------------------------------------------------------

    def handle_connected(self) -> None:
        """Connect hook (network thread): remembers which thread must not call ``request()``."""
        self._network_thread = threading.get_ident()

    def handle_message(self, message: mqtt.MQTTMessage) -> None:
        """Message hook (network thread); ignores every topic but this component's responses."""
        self._network_thread = threading.get_ident()
        if message.topic != self._response_topic:
            return
        properties = message.properties
        correlation = getattr(properties, "CorrelationData", None) if properties else None
        if not isinstance(correlation, bytes):
            with self._lock:
                self._dropped_unknown += 1
            log.warning("response without CorrelationData dropped")
            return
        try:
            response = decode(Response, bytes(message.payload))
            check_topic(response, self._response_parsed)  # message.topic is our response topic
        except (MessageError, TopicError) as exc:
            answer: Response | None = None
            problem = str(exc)
        else:
            answer, problem = response, ""
        with self._lock:
            pending = self._pending.get(correlation)
            if pending is None:
                kind = self._expired.pop(correlation, None)
                outcome = "unknown" if kind is None else "late"
            elif pending.reply is not None:
                kind = pending.kind
                outcome = "duplicate"
            else:
                kind = pending.kind
                outcome = "answered" if answer is not None else "bad"
                pending.reply = self._reply_from(pending.kind, answer, problem)
                pending.done.release()  # once: a second answer finds the reply set
            if outcome == "unknown":
                self._dropped_unknown += 1
            elif outcome == "late":
                self._dropped_late += 1
            elif outcome == "duplicate":
                self._dropped_duplicate += 1
            elif outcome == "answered":
                self._answered += 1
        if outcome == "unknown":
            log.warning("response with unknown correlation %s dropped", correlation.hex())
        elif outcome == "late":
            log.warning("late response to a timed-out %s request dropped", kind)
        elif outcome == "duplicate":
            log.info("duplicate response to a %s request dropped", kind)
        elif outcome == "bad":
            log.warning("bad response to a %s request: %s", kind, problem)

    @staticmethod
    def _reply_from(kind: str, answer: Response | None, problem: str) -> Reply:
        if answer is None:
            return Reply(kind, "fallback", None, reason=FallbackReason.BAD_RESPONSE, detail=problem)
        inner = answer.root
        if isinstance(inner, ResponseOk):
            return Reply(kind, "hall", inner.result)
        return Reply(kind, "hall", None, error=inner.error)


def attach(
    connection: UplinkConnection,
    topics: Topics,
    clock: Clock,
    kinds: Iterable[RequestKind],
    *,
    max_pending: int = MAX_PENDING,
) -> Requester:
    """A ``Requester`` with its ``HallPresenceTracker``, both hooked into ``connection``
    (an ``UplinkConnection``): its message hook and its connect hook."""
    presence = HallPresenceTracker(topics)
    requester = Requester(connection, topics, clock, presence, kinds, max_pending=max_pending)
    connection.on_message(presence.handle_message)
    connection.on_message(requester.handle_message)
    connection.on_connected(requester.handle_connected)
    return requester
