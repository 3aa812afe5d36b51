"""One device process's MQTT 5 connection to its hall broker (docs/mqtt.md).

Threading
    ``start()`` runs one thread, the network thread, that owns the paho client and calls
    ``client.loop()`` itself. paho's callbacks, the outbox drain and the periodic polls all run on
    it, so the drain's state needs no lock. Every socket write happens on it too: the client gets
    a no-op ``on_socket_register_write``, which is paho's sign that an external loop does the
    writing, so ``client.publish()`` from any thread only queues the packet (under paho's own
    lock) and wakes the loop. Without it paho writes at once on the publishing thread, which
    races the network thread on the socket (with TLS the broker sees "bad record mac") and, for
    the drain, costs one send per event between reading one PUBACK and the next. With it the
    loop reads every PUBACK that has come, and the packets queued meanwhile go out together, as
    with paho's own ``loop_start()``.

    A fresh paho client is made for every connection attempt: the will must carry the new
    session number (paho registers the will only in CONNECT, and its built-in reconnect would
    resend the old one), and a fresh client has no stale in-flight state of its own to resend
    behind our replay. The broker session is kept across attempts (same client id, Clean Start 0,
    Session Expiry), so the cmd/res subscriptions and messages queued for us survive.

One loop
    ``client.loop(timeout=LOOP_TIMEOUT_S)`` waits for the socket (or a queued packet), reads
    everything that has arrived, running the callbacks, and writes everything queued. Then
    ``OutboxDrain.pump()`` publishes the next events up to ``max_inflight`` and deletes the rows
    acknowledged in that read, in one transaction (uplink/drain.py). Then, at most every
    ``EVENT_POLL_S`` and ``TELEMETRY_POLL_S``, the drain looks for newly appended events and
    sends the latest telemetry.

Reconnecting
    After a failed or lost connection the thread waits a random time in
    ``[reconnect_min_s, min(reconnect_max_s, reconnect_min_s * 2**(n+1))]`` (n = failures in a
    row, ``backoff_s``), then tries again. paho's ``reconnect_delay_set`` has no jitter, and
    after a hall broker restart every device of the hall would come back in the same instant;
    the random spread avoids that herd. A successful CONNACK resets n. The wait is an Event, so
    ``stop()`` ends it.

Callbacks
    Every paho callback and every periodic job is wrapped: an exception is logged with its
    traceback and counted in ``stats.callback_errors``, and never reaches paho's loop, which
    would otherwise stop the network thread.

Orderly stop
    ``stop()`` stops publishing new events, gives those in flight a short grace to be
    acknowledged, then sends DISCONNECT with reason 0x04 "Disconnect with Will Message", so the
    broker publishes the retained offline presence exactly as it would after a crash.
"""

from __future__ import annotations

import functools
import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hallkiosk.clock import Clock
from uplink.drain import DrainCounters, OutboxDrain
from uplink.errors import UplinkError
from uplink.messages import SCHEMA_VERSION, Birth, Will, encode
from uplink.outbox import Outbox
from uplink.session import SessionStore
from uplink.settings import UplinkSettings
from uplink.topics import Leaf, Topics

log = logging.getLogger(__name__)

# paho's select() timeout: the longest the periodic polls wait when the link is idle.
LOOP_TIMEOUT_S = 0.05


def set_no_delay(client: mqtt.Client) -> None:
    """Turn off Nagle on the client's socket (paho leaves it on). A request's PUBACK and the
    next small packet would otherwise wait for the peer's delayed ACK, ~40 ms on Linux, in
    every request/response round trip. The hall broker sets the same (set_tcp_nodelay)."""
    sock = client.socket()
    if isinstance(sock, socket.socket):  # also ssl.SSLSocket; not a websocket wrapper
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# How often an idle connection looks for newly appended events (pickup latency when idle).
EVENT_POLL_S = 0.1
TELEMETRY_POLL_S = 1.0
STOP_GRACE_S = 2.0  # in-flight events may still be acknowledged during an orderly stop
STOP_JOIN_S = 10.0
DISCONNECT_WITH_WILL = 0x04

MessageHandler = Callable[[mqtt.MQTTMessage], None]
ConnectHandler = Callable[[], None]


class NotConnected(UplinkError, ConnectionError):
    """A publish was asked for while no connection is up; nothing was sent."""

    code = "uplink_not_connected"


@dataclass(frozen=True)
class UplinkStats:
    connected: bool
    connects: int  # successful CONNACKs
    publishes: int  # events handed to the broker (replays count again)
    acks: int  # events the broker accepted and the outbox deleted
    refused: int  # events the broker refused (PUBACK failure); their rows are kept
    ack_errors: int  # acknowledged rows that could not be deleted (they are sent again)
    telemetry: int
    callback_errors: int
    session: int  # the session number of the current or last connection attempt


def backoff_s(
    reconnect_min_s: float, reconnect_max_s: float, failures_before: int, rng: random.Random
) -> float:
    """The wait before the next attempt after ``failures_before`` failures in a row (0, 1, ...):
    uniform in [min, min(max, min * 2**(failures_before + 1))]."""
    # cap the exponent: 2**64 seconds would only overflow the float for nothing
    high = min(reconnect_max_s, reconnect_min_s * 2 ** min(failures_before + 1, 32))
    return rng.uniform(reconnect_min_s, high)


def _no_op(*_args: object) -> None:
    return None


class UplinkConnection:
    def __init__(
        self,
        settings: UplinkSettings,
        topics: Topics,
        outbox: Outbox,
        session: SessionStore,
        clock: Clock,
        *,
        versions: Mapping[str, Any],
    ) -> None:
        self._settings = settings
        self._topics = topics
        self._outbox = outbox
        self._session_store = session
        self._clock = clock
        self._versions = {"schema": SCHEMA_VERSION, **versions}
        self._random = random.Random()
        self._handlers: list[MessageHandler] = []
        self._connect_handlers: list[ConnectHandler] = []
        self._counters = DrainCounters()
        self._connects = 0
        self._callback_errors = 0
        self._session = 0
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._drain: OutboxDrain | None = None

    # -- public --------------------------------------------------------------------------------

    def on_message(self, handler: MessageHandler) -> None:
        """Call ``handler`` (on the network thread) for every message on our subscriptions."""
        self._handlers.append(handler)

    def on_connected(self, handler: ConnectHandler) -> None:
        """Call ``handler`` (on the network thread) after every successful CONNACK, once the
        birth is queued and the subscriptions are requested."""
        self._connect_handlers.append(handler)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float | None = None) -> bool:
        """Block until a connection is up; False on timeout."""
        return self._connected.wait(timeout_s)

    def publish(
        self,
        topic: str,
        payload: bytes,
        *,
        qos: int,
        retain: bool = False,
        properties: Properties | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """Publish on the current connection; thread-safe: paho queues the packet under its own
        lock, and the network thread writes it.

        Raises ``NotConnected`` when there is no connection: nothing is queued for later, so
        a caller that must not lose the message keeps it itself and retries after
        ``on_connected``. ``info.wait_for_publish()`` returns once a QoS 1 PUBACK arrived.
        """
        client = self._client
        if client is None or not self._connected.is_set():
            raise NotConnected(f"not connected; {topic} not published")
        info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise NotConnected(f"{topic} not published: {mqtt.error_string(info.rc)}")
        return info

    @property
    def stats(self) -> UplinkStats:
        # Plain ints written by the network thread: a snapshot, possibly one message behind.
        return UplinkStats(
            connected=self._connected.is_set(),
            connects=self._connects,
            publishes=self._counters.publishes,
            acks=self._counters.acks,
            refused=self._counters.refused,
            ack_errors=self._counters.ack_errors,
            telemetry=self._counters.telemetry,
            callback_errors=self._callback_errors,
            session=self._session,
        )

    @property
    def enabled(self) -> bool:
        return self._settings.enabled

    def start(self) -> None:
        """Connect in the background; in embedded mode (disabled) do nothing at all."""
        if not self._settings.enabled:
            log.info("uplink disabled: events stay in the outbox until a broker is configured")
            return
        if self._thread is not None:
            raise RuntimeError("UplinkConnection already started")
        self._thread = threading.Thread(
            target=self._run, name=f"uplink-{self._topics.client_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = STOP_JOIN_S) -> None:
        """Orderly shutdown: DISCONNECT 0x04 so the broker publishes our offline will."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("uplink thread did not stop within %s s", timeout_s)
            self._thread = None

    # -- the network thread (one connection after another) -------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                reached_online = self._run_one_connection()
            except Exception:
                # e.g. the session store failed: log, count, and retry after the backoff
                log.exception("uplink connection attempt failed")
                self._callback_errors += 1
                reached_online = False
            failures = 0 if reached_online else failures + 1
            if not self._stopping.is_set():
                self._stopping.wait(self._backoff_s(max(failures, 1) - 1))

    def _backoff_s(self, failures_before: int) -> float:
        settings = self._settings
        return backoff_s(
            settings.reconnect_min_s, settings.reconnect_max_s, failures_before, self._random
        )

    def _run_one_connection(self) -> bool:
        """One attempt, and the connection's whole life if it succeeds. True if it got online."""
        session = self._session_store.next_session()  # durable before CONNECT leaves
        self._session = session
        client = self._new_client(session)
        drain = OutboxDrain(
            self._outbox,
            client,
            self._topics,
            max_inflight=self._settings.max_inflight,
            batch=self._settings.drain_batch,
            counters=self._counters,
        )
        self._client, self._drain = client, drain
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._settings.session_expiry_s
        try:
            client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=False,
                properties=properties,
            )
            set_no_delay(client)
        except OSError as exc:  # refused, unreachable, TLS handshake failed
            log.warning(
                "cannot connect to %s:%d: %s", self._settings.host, self._settings.port, exc
            )
            return False
        reached_online = False
        stop_deadline: float | None = None
        disconnect_sent = False
        # pacing is real time: the injected clock is for timestamps, and a test's ManualClock
        # would never reach the next poll
        next_event_poll = next_telemetry = time.monotonic()
        try:
            while True:
                rc = client.loop(timeout=LOOP_TIMEOUT_S)
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                # the PUBACKs just read: publish the next events, then delete the acked rows
                self._guarded("outbox drain", drain.pump)
                reached_online = reached_online or self._connected.is_set()
                now = time.monotonic()
                if self._stopping.is_set():
                    if stop_deadline is None:
                        drain.stop()
                        stop_deadline = now + STOP_GRACE_S
                    grace_over = drain.inflight == 0 or now >= stop_deadline
                    if not disconnect_sent and (grace_over or not reached_online):
                        # once: a second DISCONNECT (reason 0) could follow and cancel the will
                        self._disconnect_with_will(client)
                        disconnect_sent = True
                    continue
                if self._connected.is_set():
                    if now >= next_event_poll:
                        next_event_poll = now + EVENT_POLL_S
                        self._guarded("event poll", drain.poll)
                    if now >= next_telemetry:
                        next_telemetry = now + TELEMETRY_POLL_S
                        self._guarded("telemetry", drain.publish_telemetry)
        finally:
            drain.stop()
            self._connected.clear()
            # rows whose PUBACK was read in the last loop: delete them before the next replay
            self._guarded("outbox drain", drain.commit_acks)
            if client.is_connected() and not disconnect_sent:
                # leaving for any other reason (an error above): still let the will mark us offline
                self._disconnect_with_will(client)
                client.loop_write()  # nobody calls loop() any more to write the DISCONNECT
        return reached_online

    def _disconnect_with_will(self, client: mqtt.Client) -> None:
        if client.is_connected():
            client.disconnect(
                reasoncode=ReasonCode(PacketTypes.DISCONNECT, identifier=DISCONNECT_WITH_WILL)
            )
        else:
            client.disconnect()

    def _new_client(self, session: int) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._topics.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,  # we reconnect ourselves, with a new will and jitter
        )
        # Belt and braces: our wrappers already catch everything.
        client.suppress_exceptions = True
        # Our loop does the writing: paho only queues packets, whichever thread publishes.
        client.on_socket_register_write = _no_op
        client.max_inflight_messages_set(self._settings.max_inflight)
        tls = self._settings.tls
        if tls.enabled:
            client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file)
        will = Will.model_validate(
            {
                "v": SCHEMA_VERSION,
                "state": "offline",
                "device": self._topics.device_id,
                "component": self._topics.component,
                "session": session,
                "boot_id": self._session_store.boot_id,
                "ts": self._clock.now(),
            }
        )
        client.will_set(self._topics.presence, encode(will), qos=Leaf.PRESENCE.qos, retain=True)
        client.on_connect = self._wrap("on_connect", self._on_connect)
        client.on_disconnect = self._wrap("on_disconnect", self._on_disconnect)
        client.on_publish = self._wrap("on_publish", self._on_publish)
        client.on_message = self._wrap("on_message", self._on_message)
        return client

    # -- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self._connected.set()
        self._connects += 1
        log.info(
            "connected as %s, session %d (broker session present: %s)",
            self._topics.client_id,
            self._session,
            flags.session_present,
        )
        birth = Birth.model_validate(
            {
                "v": SCHEMA_VERSION,
                "state": "online",
                "device": self._topics.device_id,
                "component": self._topics.component,
                "session": self._session,
                "boot_id": self._session_store.boot_id,
                "versions": self._versions,
                "ts": self._clock.now(),
            }
        )
        client.publish(self._topics.presence, encode(birth), qos=Leaf.PRESENCE.qos, retain=True)
        client.subscribe(list(self._topics.subscriptions))
        if self._drain is not None:
            self._drain.start()
        for handler in self._connect_handlers:
            self._guarded("connect handler", handler)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if self._drain is not None:
            self._drain.stop()
        log.info("disconnected: %s", reason_code)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties,
    ) -> None:
        drain = self._drain
        if (drain is None or not drain.on_puback(mid, reason_code)) and reason_code.is_failure:
            log.error("broker refused a presence/telemetry publish (mid %d): %s", mid, reason_code)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        for handler in self._handlers:
            # each hook guarded on its own, so one failing hook does not starve the next
            self._guarded(
                f"message handler for {message.topic}", functools.partial(handler, message)
            )

    # -- guarding ------------------------------------------------------------------------------

    def _guarded(self, what: str, job: Callable[[], object]) -> None:
        try:
            job()
        except Exception:
            self._callback_errors += 1
            log.exception("uplink %s raised; the network thread carries on", what)

    def _wrap(self, what: str, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception:
                self._callback_errors += 1
                log.exception("uplink %s raised; the network thread carries on", what)

        return guarded
