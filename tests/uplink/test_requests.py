"""Request/response on a real mosquitto with the production TLS + ACL config.

The device is "locker-01"/"lockerd" in hall "demo-hall" (helpers from test_connection.py). The
hall side is a ``HallResponder``: an MqttProbe with the hall's certificate that subscribes to every
device's requests and answers to the ResponseTopic with the CorrelationData, automatically or when
the test says so.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hallkiosk.clock import SystemClock
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MosquittoFactory, MqttProbe
from tests.uplink.test_connection import HALL_ID, Device, device_settings, make_device
from uplink.messages import (
    ErrorInfo,
    HallPresence,
    Request,
    ResponseError,
    ResponseOk,
    check_topic,
    decode,
    encode,
)
from uplink.requests import (
    FallbackReason,
    HallPresenceTracker,
    HallState,
    Reply,
    Requester,
    RequestKind,
    attach,
)
from uplink.topics import HallFilters, hall_presence, parse

WAIT_S = 10.0
LONG_TIMEOUT_S = 10.0  # never reached in a test that expects the hall's answer
SHORT_TIMEOUT_S = 0.3  # for the tests that expect a timeout
KIND = "ticket.issue"
SLOW_KIND = "ticket.slow"


def offline_ticket(args: Mapping[str, Any], reason: str) -> Mapping[str, Any]:
    return {"ticket": "X001", "offline": True, "reason": reason, "args": dict(args)}


KINDS = (
    RequestKind(KIND, LONG_TIMEOUT_S, offline_ticket),
    RequestKind(SLOW_KIND, SHORT_TIMEOUT_S, offline_ticket),
)


# --- the hall side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    topic: str
    request: Request
    response_topic: str | None
    correlation: bytes | None
    qos: int


Answer = Callable[["HallResponder", Received], None]


def answer_ok(hall: HallResponder, received: Received) -> None:
    hall.reply(received, {"ticket": "S017", "echo": received.request.args})


def hold(_hall: HallResponder, _received: Received) -> None:
    """Answer nothing now; the test replies later with ``hall.reply``."""


class HallResponder:
    """The hall: answers each request on the network thread with ``self.answer``."""

    def __init__(self, probe: MqttProbe) -> None:
        self.probe = probe
        self.answer: Answer = answer_ok
        self._lock = threading.Lock()
        self._received: list[Received] = []
        requests = HallFilters(HALL_ID).requests
        probe.client.message_callback_add(requests, self._on_request)
        probe.subscribe(requests, 1)

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def wait_received(self, count: int) -> list[Received]:
        wait_until(
            lambda: len(self.received) >= count,
            timeout_s=WAIT_S,
            what=lambda: f"{count} requests at the hall; got {self.received}",
        )
        return self.received

    def publish_presence(self, state: str, session: int) -> None:
        presence = HallPresence.model_validate(
            {
                "v": 1,
                "state": state,
                "hall": HALL_ID,
                "session": session,
                "ts": SystemClock().now(),
            }
        )
        self.probe.publish(hall_presence(HALL_ID), encode(presence), retain=True)

    def reply(
        self,
        received: Received,
        result: Mapping[str, Any] | None = None,
        *,
        error: ErrorInfo | None = None,
        payload: bytes | None = None,
        correlation: bytes | None = None,
        topic: str | None = None,
    ) -> None:
        """Answer ``received``; the keywords make the answer wrong in one chosen way."""
        if payload is None:
            body = (
                ResponseError(v=1, ok=False, error=error)
                if error is not None
                else ResponseOk(v=1, ok=True, result=dict(result or {}))
            )
            payload = encode(body)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        chosen = correlation if correlation is not None else received.correlation
        if chosen != b"":
            properties.CorrelationData = chosen
        target = topic or received.response_topic
        assert target is not None
        # not waiting for the PUBACK: this may run on the probe's network thread
        self.probe.client.publish(target, payload, qos=1, properties=properties)

    def _on_request(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        request = decode(Request, bytes(message.payload))
        check_topic(request, parse(message.topic))
        properties = message.properties
        received = Received(
            message.topic,
            request,
            getattr(properties, "ResponseTopic", None),
            getattr(properties, "CorrelationData", None),
            message.qos,
        )
        with self._lock:
            self._received.append(received)
        self.answer(self, received)


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    return mosquitto(tls=True, hall_id=HALL_ID)


@pytest.fixture
def hall(broker: Broker, test_ca: CertAuthority) -> HallResponder:
    return HallResponder(
        broker.connect("hall-worker", cert=test_ca.issue_client(f"hall.{HALL_ID}"))
    )


@pytest.fixture
def device(tmp_path: Path, broker: Broker, test_ca: CertAuthority) -> Iterator[Device]:
    settings = device_settings(broker, test_ca.issue_client("locker-01"))
    with make_device(tmp_path, settings) as made:
        yield made


@pytest.fixture
def requester(device: Device) -> Requester:
    return attach(device.connection, device.topics, SystemClock(), KINDS, max_pending=4)


@pytest.fixture
def online(hall: HallResponder, device: Device, requester: Requester) -> Requester:
    """A connected device that has seen the hall online (session 5)."""
    hall.publish_presence("online", 5)
    device.connection.start()
    assert device.connection.wait_connected(WAIT_S)
    assert requester.presence.wait_online(WAIT_S), requester.presence.stats
    return requester


def in_thread(job: Callable[[], Reply]) -> Callable[[], Reply]:
    """Run ``job`` on a thread now; the returned function joins it and gives its reply."""
    replies: list[Reply] = []
    thread = threading.Thread(target=lambda: replies.append(job()), daemon=True)
    thread.start()

    def join() -> Reply:
        thread.join(WAIT_S + LONG_TIMEOUT_S)
        assert replies, "request thread did not finish"
        return replies[0]

    return join


def fallback_reply(kind: str, reason: FallbackReason, args: Mapping[str, Any]) -> Reply:
    return Reply(kind, "fallback", offline_ticket(args, reason), reason=reason)


# --- registration ----------------------------------------------------------------------------


def test_every_kind_needs_a_timeout_and_a_fallback() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        RequestKind(KIND, 0, offline_ticket)
    with pytest.raises(ValueError, match="timeout_s"):
        RequestKind(KIND, float("inf"), offline_ticket)
    with pytest.raises(ValueError, match="timeout_s"):
        RequestKind(KIND, None, offline_ticket)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="fallback"):
        RequestKind(KIND, 5.0, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="request kind"):
        RequestKind("ticket/issue", 5.0, offline_ticket)


def test_kinds_are_registered_once_and_unknown_kinds_refused(device: Device) -> None:
    presence = HallPresenceTracker(device.topics)
    with pytest.raises(ValueError, match="twice"):
        Requester(device.connection, device.topics, SystemClock(), presence, KINDS * 2)
    requester = Requester(device.connection, device.topics, SystemClock(), presence, KINDS)
    with pytest.raises(LookupError, match=r"'ticket\.unknown' is not registered"):
        requester.request("ticket.unknown", {})


# --- through the broker ------------------------------------------------------------------------


def test_round_trip(hall: HallResponder, online: Requester, device: Device) -> None:
    args = {"area": "social-security", "ticket_type": "submit"}
    reply = online.request(KIND, args)

    assert reply == Reply(KIND, "hall", {"ticket": "S017", "echo": args})
    assert reply.ok
    [received] = hall.received
    assert received.topic == device.topics.request(KIND)
    assert received.qos == 1
    assert received.response_topic == device.topics.response
    assert received.correlation is not None and len(received.correlation) == 16
    assert received.request.args == args
    assert received.request.device == "locker-01" and received.request.component == "lockerd"

    # a new correlation per request
    online.request(KIND, args)
    assert len({r.correlation for r in hall.wait_received(2)}) == 2
    assert online.stats.answered == 2 and online.stats.pending == 0


def test_hall_error_is_surfaced(hall: HallResponder, online: Requester) -> None:
    error = ErrorInfo(
        code="quota_exhausted",
        message_zh="今日该业务号源已发完。",
        message_en="No more tickets for this service today.",
    )
    hall.answer = lambda h, received: h.reply(received, error=error)

    reply = online.request(KIND, {"area": "tax"})

    assert reply == Reply(KIND, "hall", None, error=error)
    assert not reply.ok


def test_timeout_falls_back_and_the_late_answer_is_dropped(
    hall: HallResponder, online: Requester
) -> None:
    hall.answer = hold
    first = online.request(SLOW_KIND, {"n": 1})
    assert first == fallback_reply(SLOW_KIND, FallbackReason.TIMEOUT, {"n": 1})

    [late] = hall.wait_received(1)
    hall.reply(late, {"ticket": "LATE"})
    wait_until(
        lambda: online.stats.dropped_late == 1, timeout_s=WAIT_S, what=lambda: str(online.stats)
    )

    hall.answer = answer_ok
    second = online.request(SLOW_KIND, {"n": 2})
    assert second == Reply(SLOW_KIND, "hall", {"ticket": "S017", "echo": {"n": 2}})


def test_no_hall_presence_yet_means_fallback_and_nothing_sent(
    hall: HallResponder, device: Device, requester: Requester
) -> None:
    device.connection.start()
    assert device.connection.wait_connected(WAIT_S)
    assert requester.presence.state is HallState.UNKNOWN

    reply = requester.request(KIND, {"n": 1})
    assert reply == fallback_reply(KIND, FallbackReason.HALL_OFFLINE, {"n": 1})

    # Requests on one topic from one client arrive in order: when the hall has the second, it
    # would have had the first before it, had it been sent.
    hall.publish_presence("online", 1)
    assert requester.presence.wait_online(WAIT_S)
    assert requester.request(KIND, {"n": 2}).source == "hall"
    assert [r.request.args for r in hall.received] == [{"n": 2}]


def test_retained_offline_hall_means_fallback_and_nothing_sent(
    hall: HallResponder, device: Device, requester: Requester
) -> None:
    hall.publish_presence("offline", 3)
    device.connection.start()
    wait_until(lambda: requester.presence.state is HallState.OFFLINE, timeout_s=WAIT_S)

    reply = requester.request(KIND, {"n": 1})
    assert reply == fallback_reply(KIND, FallbackReason.HALL_OFFLINE, {"n": 1})

    hall.publish_presence("online", 4)
    assert requester.presence.wait_online(WAIT_S)
    assert requester.request(KIND, {"n": 2}).source == "hall"
    assert [r.request.args for r in hall.received] == [{"n": 2}]


def test_stale_hall_presence_is_ignored(hall: HallResponder, online: Requester) -> None:
    hall.publish_presence("offline", 4)  # a late will of an older hall session
    wait_until(lambda: online.presence.stats.stale == 1, timeout_s=WAIT_S)
    assert online.presence.hall_online
    assert online.request(KIND, {}).source == "hall"

    hall.publish_presence("offline", 5)  # the current session's will
    wait_until(lambda: online.presence.state is HallState.OFFLINE, timeout_s=WAIT_S)
    assert online.request(KIND, {}).reason is FallbackReason.HALL_OFFLINE


def test_malformed_hall_presence_is_counted_and_changes_nothing(
    hall: HallResponder, online: Requester
) -> None:
    hall.probe.publish(hall_presence(HALL_ID), b'{"v": 1, "state": "offline"}')
    other_hall = {
        "v": 1,
        "state": "offline",
        "hall": "other-hall",  # does not match the topic
        "session": 9,
        "ts": "2025-03-01T06:00:00+08:00",
    }
    hall.probe.publish(hall_presence(HALL_ID), json.dumps(other_hall).encode())
    wait_until(lambda: online.presence.stats.malformed == 2, timeout_s=WAIT_S)
    assert online.presence.hall_online
    assert online.presence.stats.session == 5


def test_unknown_correlation_is_dropped(
    hall: HallResponder, online: Requester, device: Device
) -> None:
    def answer_wrong_then_right(h: HallResponder, received: Received) -> None:
        h.reply(received, {"ticket": "WRONG"}, correlation=bytes(16))
        h.reply(received, {"ticket": "NONE"}, correlation=b"")  # no CorrelationData at all
        h.reply(received, {"ticket": "RIGHT"})

    hall.answer = answer_wrong_then_right
    reply = online.request(KIND, {})
    assert reply == Reply(KIND, "hall", {"ticket": "RIGHT"})
    # the three answers arrive in order on the one response topic
    assert online.stats.dropped_unknown == 2


def test_a_response_on_another_topic_is_not_accepted(
    hall: HallResponder, online: Requester, device: Device
) -> None:
    on_cmd: list[bytes] = []
    device.connection.on_message(
        lambda m: on_cmd.append(bytes(m.payload)) if m.topic == device.topics.command else None
    )
    hall.answer = lambda h, received: h.reply(
        received, {"ticket": "CMD"}, topic=device.topics.command
    )
    join = in_thread(lambda: online.request(KIND, {}))
    [received] = hall.wait_received(1)
    wait_until(lambda: on_cmd, timeout_s=WAIT_S, what="the wrong-topic answer at the device")

    hall.reply(received, {"ticket": "RES"})
    assert join() == Reply(KIND, "hall", {"ticket": "RES"})


def test_malformed_response_is_a_bad_response(hall: HallResponder, online: Requester) -> None:
    hall.answer = lambda h, received: h.reply(received, payload=b'{"v": 1, "ok": "yes"}')
    reply = online.request(KIND, {"n": 1})
    assert reply.source == "fallback"
    assert reply.reason is FallbackReason.BAD_RESPONSE
    assert reply.result == offline_ticket({"n": 1}, FallbackReason.BAD_RESPONSE)
    assert reply.detail == "response.ok: Input should be true or false"


def test_concurrent_requests_each_get_their_own_answer(
    hall: HallResponder, online: Requester
) -> None:
    hall.answer = hold
    joins = [in_thread(functools.partial(online.request, KIND, {"n": n})) for n in range(4)]
    received = hall.wait_received(4)
    for each in reversed(received):  # answered out of order: matched by correlation only
        hall.reply(each, {"n": each.request.args["n"]})
    assert [join() for join in joins] == [Reply(KIND, "hall", {"n": n}) for n in range(4)]


def test_beyond_max_pending_is_busy(hall: HallResponder, online: Requester) -> None:
    hall.answer = hold
    joins = [in_thread(functools.partial(online.request, KIND, {"n": n})) for n in range(4)]
    received = hall.wait_received(4)
    assert online.stats.pending == 4

    assert online.request(KIND, {"n": 9}) == fallback_reply(KIND, FallbackReason.BUSY, {"n": 9})

    for each in received:
        hall.reply(each, {"n": each.request.args["n"]})
    assert [join().result for join in joins] == [{"n": n} for n in range(4)]


def test_not_connected_means_fallback(requester: Requester) -> None:
    assert requester.request(KIND, {}) == fallback_reply(KIND, FallbackReason.NOT_CONNECTED, {})


def test_request_on_the_network_thread_is_refused(
    hall: HallResponder, online: Requester, device: Device
) -> None:
    errors: list[BaseException] = []

    def hook(message: mqtt.MQTTMessage) -> None:
        if message.topic == device.topics.command:
            try:
                online.request(KIND, {})
            except RuntimeError as exc:
                errors.append(exc)

    device.connection.on_message(hook)
    hall.probe.publish(device.topics.command, b"poke")
    wait_until(lambda: errors, timeout_s=WAIT_S)
    assert "network thread" in str(errors[0])
    assert hall.received == []


def test_request_async(hall: HallResponder, online: Requester) -> None:
    async def ask() -> list[Reply]:
        return list(await asyncio.gather(*(online.request_async(KIND, {"n": n}) for n in range(3))))

    replies = asyncio.run(ask())
    assert [r.result for r in replies] == [{"ticket": "S017", "echo": {"n": n}} for n in range(3)]
