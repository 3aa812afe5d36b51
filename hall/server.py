"""``hall serve``: the hall side of the MQTT contract around a ``Hall``.

One paho client under the hall's identity (certificate CN ``hall.{hall_id}``) with a persistent
session (Clean Start 0, long Session Expiry), so QoS 1 messages published while the hall is down
wait at the broker. The hall publishes its own retained presence with a session counter and a
matching will. Like the device connection, one thread owns the client and does every socket
write (a no-op ``on_socket_register_write``), so ``send_command`` may publish from any thread.

Requests are answered on the network thread: a ticket is one short SQLite transaction, and a
thread hop per request would cost more than it saves at a hall's request rates
(bench/ticket_rtt.py). The response goes only to the requester's own ``{base}/res``.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from hall.errors import HallError
from hall.service import Hall
from hall.store import dumps
from hallkiosk.clock import utc_iso
from uplink.connection import backoff_s, set_no_delay
from uplink.messages import (
    SCHEMA_VERSION,
    Ack,
    AppointmentList,
    Event,
    HallPresence,
    MessageError,
    Presence,
    Request,
    Telemetry,
    check_topic,
    decode,
    encode,
)
from uplink.session import SessionStore
from uplink.signing import load_private_key, sign_command
from uplink.topics import (
    HallFilters,
    Leaf,
    TopicError,
    Topics,
    hall_appointments,
    hall_presence,
    parse,
)

log = logging.getLogger(__name__)

LOOP_TIMEOUT_S = 0.05
DISCONNECT_WITH_WILL = 0x04


def _no_op(*_args: object) -> None:
    return None


class HallServer:
    def __init__(self, hall: Hall) -> None:
        self.hall = hall
        self._settings = hall.settings.hall.mqtt
        self._hall_id = hall.settings.site.hall_id
        self._client_id = f"hall-{self._hall_id}-{self._settings.worker}"
        self._sessions = SessionStore(
            hall.settings.db_path.with_name(f"hall-session-{self._settings.worker}.db"),
            self._client_id,
        )
        self._session = 0
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._random = random.Random()
        # today's appointment list: pushed when this process changes it, and compared on a timer
        self._appointments_due = threading.Event()
        self._pushed_revision: tuple[str, str] | None = None
        self._next_appointments_check = 0.0
        hall.add_appointment_listener(lambda _day: self._appointments_due.set())
        self.stats: dict[str, int] = {
            "requests": 0,
            "request_errors": 0,
            "dropped": 0,
            "events": 0,
            "duplicates": 0,
            "telemetry": 0,
            "presence": 0,
            "acks": 0,
            "appointment_lists": 0,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hall-mqtt", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                online = self._run_one()
            except Exception:
                log.exception("hall connection attempt failed")
                online = False
            failures = 0 if online else failures + 1
            if not self._stopping.is_set():
                self._stopping.wait(
                    backoff_s(
                        self._settings.reconnect_min_s,
                        self._settings.reconnect_max_s,
                        max(failures, 1) - 1,
                        self._random,
                    )
                )

    def _presence(self, state: str) -> bytes:
        return encode(
            HallPresence.model_validate(
                {
                    "v": SCHEMA_VERSION,
                    "state": state,
                    "hall": self._hall_id,
                    "session": self._session,
                    "ts": self.hall.clock.now(),
                }
            )
        )

    def _run_one(self) -> bool:
        self._session = self._sessions.next_session()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        client.suppress_exceptions = True
        client.on_socket_register_write = _no_op
        tls = self._settings.tls
        if tls.enabled:
            client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file)
        client.will_set(hall_presence(self._hall_id), self._presence("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._settings.session_expiry_s
        try:
            client.connect(
                self._settings.host,
                self._settings.port,
                keepalive=self._settings.keepalive_s,
                clean_start=False,
                properties=props,
            )
            set_no_delay(client)
        except OSError as exc:
            log.warning(
                "hall cannot connect to %s:%d: %s", self._settings.host, self._settings.port, exc
            )
            return False
        online = False
        try:
            while True:
                if client.loop(timeout=LOOP_TIMEOUT_S) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                # the responses just published by the handlers (and the requests' PUBACKs) go
                # out now, on this thread, rather than after one more turn through select()
                if client.want_write() and client.loop_write() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
                online = online or self._connected.is_set()
                if self._connected.is_set():
                    self._maybe_push_appointments(client)
                if self._stopping.is_set():
                    # an orderly stop: the will marks the hall offline for every device
                    client.disconnect(
                        reasoncode=ReasonCode(
                            PacketTypes.DISCONNECT, identifier=DISCONNECT_WITH_WILL
                        )
                    )
                    client.loop_write()
                    break
        finally:
            self._connected.clear()
        return online

    # -- paho callbacks (network thread) -----------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        _u: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the hall: %s", reason)
            return
        client.subscribe(list(HallFilters(self._hall_id).subscriptions))
        client.publish(hall_presence(self._hall_id), self._presence("online"), qos=1, retain=True)
        # a broker that lost its retained store gets the list again on every connect
        self._pushed_revision = None
        self._appointments_due.set()
        self._connected.set()
        log.info(
            "hall %s online (session %d, broker session present: %s)",
            self._hall_id,
            self._session,
            flags.session_present,
        )

    def _on_disconnect(
        self,
        _c: mqtt.Client,
        _u: Any,
        _f: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _p: Properties | None,
    ) -> None:
        self._connected.clear()
        log.warning("hall disconnected: %s", reason)

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            self._dispatch(client, message)
        except Exception:
            # never let paho's loop die; the message is logged by topic only (payloads may
            # hold personal data)
            log.exception("handling a message on %s failed", message.topic)
            self.stats["dropped"] += 1

    def _dispatch(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        try:
            topic = parse(message.topic)
        except TopicError as exc:
            log.warning("dropped: %s", exc)
            self.stats["dropped"] += 1
            return
        payload = bytes(message.payload)
        if topic.leaf is Leaf.REQUEST:
            self._request(client, message, topic)
            return
        try:
            if topic.leaf is Leaf.EVENT:
                event = decode(Event, payload)
                check_topic(event, topic)
                self.stats["events"] += 1
                if not self.hall.registry.ingest(event):
                    self.stats["duplicates"] += 1
            elif topic.leaf is Leaf.PRESENCE:
                if not payload:
                    return  # a cleared retained presence
                presence = decode(Presence, payload)
                check_topic(presence, topic)
                self.stats["presence"] += 1
                self.hall.registry.presence(presence.root)
            elif topic.leaf is Leaf.TELEMETRY:
                tele = decode(Telemetry, payload)
                check_topic(tele, topic)
                self.stats["telemetry"] += 1
                self.hall.registry.telemetry(tele)
            elif topic.leaf is Leaf.ACK:
                ack = decode(Ack, payload)
                check_topic(ack, topic)
                self.stats["acks"] += 1
                self._record_ack(ack.root)
        except MessageError as exc:
            log.warning("dropped malformed %s from %s: %s", topic.leaf.value, topic.device_id, exc)
            self.stats["dropped"] += 1

    def _request(self, client: mqtt.Client, message: mqtt.MQTTMessage, topic: Any) -> None:
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        own = topic.device_topics().response
        if response_topic != own or not correlation:
            log.warning(
                "request from %s dropped: response topic %r is not its own",
                topic.device_id,
                response_topic,
            )
            self.stats["dropped"] += 1
            return
        self.stats["requests"] += 1
        try:
            request = decode(Request, bytes(message.payload))
            check_topic(request, topic)
            result = self.hall.handle_request(request.device, request.kind, request.args)
            body: dict[str, Any] = {"v": SCHEMA_VERSION, "ok": True, "result": result}
        except (HallError, MessageError) as exc:
            self.stats["request_errors"] += 1
            code = exc.code if isinstance(exc, HallError) else "request_invalid"
            log.info("request %s from %s refused: %s", topic.name, topic.device_id, exc)
            body = {
                "v": SCHEMA_VERSION,
                "ok": False,
                "error": {"code": code, "message_zh": exc.message_zh, "message_en": exc.message_en},
            }
        except Exception:
            self.stats["request_errors"] += 1
            log.exception("request %s from %s failed", topic.name, topic.device_id)
            fault = HallError()
            body = {
                "v": SCHEMA_VERSION,
                "ok": False,
                "error": {
                    "code": fault.code,
                    "message_zh": fault.message_zh,
                    "message_en": fault.message_en,
                },
            }
        out = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        out.CorrelationData = correlation
        client.publish(own, dumps(body).encode(), qos=1, properties=out)

    def _record_ack(self, ack: Any) -> None:
        status = ack.status
        with self.hall.store.transaction() as conn:
            conn.execute(
                "UPDATE commands SET status = ?, reason = COALESCE(?, reason),"
                " result = COALESCE(?, result), updated_at = ? WHERE command_id = ?"
                " AND device = ?",
                (
                    status,
                    getattr(ack, "reason", None),
                    dumps(ack.result) if status == "result" else None,
                    utc_iso(self.hall.clock.now()),
                    ack.command_id,
                    ack.device,
                ),
            )

    # -- today's appointments, retained for offline check-in ---------------------------------

    def _maybe_push_appointments(self, client: mqtt.Client) -> None:
        if self._settings.worker != 1:
            return  # one publisher per hall, so workers never flap the retained list
        now_s = time.monotonic()
        if not self._appointments_due.is_set() and now_s < self._next_appointments_check:
            return
        self._appointments_due.clear()
        self._next_appointments_check = now_s + self._settings.appointments_check_s
        try:
            message = appointment_list(self.hall)
        except Exception:
            # a list that does not validate is not sent; kiosks keep the last good one
            log.exception("today's appointment list could not be built; kiosks keep the last one")
            return
        key = (message.service_day, message.revision)
        if key == self._pushed_revision:
            return
        info = client.publish(hall_appointments(self._hall_id), encode(message), qos=1, retain=True)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._pushed_revision = key
            self.stats["appointment_lists"] += 1
            log.info(
                "appointment list for %s pushed: %d bookings, revision %s",
                message.service_day,
                len(message.appointments),
                message.revision,
            )

    # -- commands ----------------------------------------------------------------------------

    def send_command(self, device: str, component: str, action: str, args: dict[str, Any]) -> str:
        return send_command(
            self.hall, self._publish, device=device, component=component, action=action, args=args
        )

    def _publish(self, topic: str, payload: bytes) -> None:
        client = self._client
        if client is None or not self._connected.is_set():
            raise HallError("the hall is not connected to its broker", code="hall_offline")
        client.publish(topic, payload, qos=1)


def appointment_list(hall: Hall, day: str | None = None) -> AppointmentList:
    """Today's bookings as the retained message kiosks check in against offline."""
    payload = hall.appointments.sync_payload(day)
    content = {
        "service_day": payload["service_day"],
        "early_s": payload["early_s"],
        "late_s": payload["late_s"],
        "appointments": payload["appointments"],
    }
    revision = hashlib.sha256(dumps(content).encode()).hexdigest()[:16]
    return AppointmentList.model_validate(
        {
            "v": SCHEMA_VERSION,
            "hall": hall.settings.site.hall_id,
            "revision": revision,
            "generated_at": hall.clock.now(),
            **content,
        },
        strict=False,
    )


def send_command(
    hall: Hall,
    publish: Any,
    *,
    device: str,
    component: str,
    action: str,
    args: dict[str, Any],
) -> str:
    """Sign, record and publish one command; returns its id. Acks update the record."""
    key = load_private_key(hall.settings.signing_key_path)
    now = hall.clock.now()
    expires = now + timedelta(seconds=hall.settings.hall.mqtt.command_ttl_s)
    command_id = f"cmd-{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"
    command = sign_command(
        key,
        device=device,
        component=component,
        command_id=command_id,
        issued_at=now,
        expires_at=expires,
        action=action,
        args=args,
    )
    with hall.store.transaction() as conn:
        conn.execute(
            "INSERT INTO commands (command_id, device, component, action, args, issued_at,"
            " expires_at, status, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'sent', ?)",
            (
                command_id,
                device,
                component,
                action,
                dumps(args),
                utc_iso(now),
                utc_iso(expires),
                utc_iso(now),
            ),
        )
    publish(Topics(hall.settings.site.hall_id, device, component).command, encode(command))
    log.info("command %s %s sent to %s/%s", command_id, action, device, component)
    return command_id


__all__ = ["HallServer", "appointment_list", "send_command"]
