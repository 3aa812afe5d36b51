"""``hall command``: a short-lived MQTT client under the hall's identity that sends one signed
command and waits for its acknowledgements (accepted or rejected, then the result).

It uses its own client id (``hall-{hall_id}-cli-{pid}``) with a clean session, so it never
takes over the server's persistent session. The server records the same acks in the hall DB.
"""

from __future__ import annotations

import json
import os
import threading
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hall.errors import HallError
from hall.server import send_command
from hall.service import Hall
from hall.store import dumps
from hallkiosk.clock import utc_iso
from uplink.messages import Ack, MessageError, decode
from uplink.topics import Topics

CONNECT_TIMEOUT_S = 10.0


class CommandClient:
    def __init__(self, hall: Hall) -> None:
        self._hall = hall
        self._settings = hall.settings.hall.mqtt
        if not self._settings.enabled:
            raise HallError(
                "[hall.mqtt] is disabled: there is no broker to send commands on",
                code="hall_offline",
            )
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"hall-{hall.settings.site.hall_id}-cli-{os.getpid()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        tls = self._settings.tls
        if tls.enabled:
            self._client.tls_set(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file)
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._acks: list[dict[str, Any]] = []
        self._acks_changed = threading.Condition()
        self._client.on_connect = lambda *_a: self._connected.set()
        self._client.on_subscribe = lambda *_a: self._subscribed.set()
        self._client.on_message = self._on_message

    def __enter__(self) -> CommandClient:
        self._client.connect(
            self._settings.host, self._settings.port, keepalive=30, clean_start=True
        )
        self._client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            raise HallError("cannot reach the hall broker", code="hall_offline")
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            ack = decode(Ack, bytes(message.payload)).root
        except MessageError:
            return
        with self._acks_changed:
            self._acks.append(json.loads(ack.model_dump_json()))
            self._acks_changed.notify_all()

    def send_and_wait(
        self, device: str, component: str, action: str, args: dict[str, Any], *, wait_s: float
    ) -> dict[str, Any]:
        topics = Topics(self._hall.settings.site.hall_id, device, component)
        self._subscribed.clear()
        self._client.subscribe(topics.ack, qos=1)
        self._subscribed.wait(CONNECT_TIMEOUT_S)

        def publish(topic: str, payload: bytes) -> None:
            self._client.publish(topic, payload, qos=1).wait_for_publish(CONNECT_TIMEOUT_S)

        command_id = send_command(
            self._hall, publish, device=device, component=component, action=action, args=args
        )

        def mine_now() -> list[dict[str, Any]]:
            return [a for a in self._acks if a["command_id"] == command_id]

        with self._acks_changed:
            # woken by each ack; done at the final one (rejected or result) or at wait_s
            self._acks_changed.wait_for(
                lambda: any(a["status"] in ("rejected", "result") for a in mine_now()),
                timeout=wait_s,
            )
            mine = mine_now()
        if mine:
            last = mine[-1]
            with self._hall.store.transaction() as conn:
                conn.execute(
                    "UPDATE commands SET status = ?, reason = ?, result = ?, updated_at = ?"
                    " WHERE command_id = ?",
                    (
                        last["status"],
                        last.get("reason"),
                        dumps(last["result"]) if "result" in last else None,
                        utc_iso(self._hall.clock.now()),
                        command_id,
                    ),
                )
        return {"command_id": command_id, "device": device, "action": action, "acks": mine}
