"""The hall's side of lockerd's uplink in tests: a real MQTT client with the hall's certificate
that records events, telemetry and acks, and publishes commands signed with a hall key.

``uplink_toml(...)`` renders the ``[uplink]`` table that points a lockerd at the test broker.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority, CertFiles
from tests.fixtures.mosquitto import Broker, MqttProbe
from uplink.messages import Ack, AckResult, Event, Telemetry, decode, encode
from uplink.signing import generate_private_key, sign_command, write_public_key
from uplink.topics import HallFilters, Leaf, Topics, parse

HALL_ID = "demo-hall"
WAIT_S = 30.0


def uplink_toml(broker: Broker, cert: CertFiles, hall_key_file: Path) -> str:
    q = json.dumps  # a JSON string is a valid TOML basic string
    return (
        "[uplink]\nenabled = true\n"
        f"host = {q(broker.host)}\nport = {broker.port}\n"
        "reconnect_min_s = 0.05\nreconnect_max_s = 0.5\n"
        f"hall_key_file = {q(str(hall_key_file))}\n"
        "[uplink.tls]\n"
        f"ca_file = {q(str(cert.ca))}\ncert_file = {q(str(cert.cert))}\n"
        f"key_file = {q(str(cert.key))}\n"
    )


class HallSide:
    def __init__(self, broker: Broker, ca: CertAuthority, directory: Path, device_id: str) -> None:
        self.broker = broker
        self.ca = ca
        self.key: Ed25519PrivateKey = generate_private_key()
        self.public_key_file = directory / "hall-command.pub"
        write_public_key(self.public_key_file, self.key.public_key())
        self.topics = Topics(HALL_ID, device_id, "lockerd")
        self._ids = itertools.count(1)
        self.probes: list[MqttProbe] = []
        self.connect()

    def connect(self) -> MqttProbe:
        """(Re)connect the hall client, e.g. after a broker restart; earlier messages are kept."""
        probe = self.broker.connect(
            f"hall-worker-{len(self.probes)}", cert=self.ca.issue_client(f"hall.{HALL_ID}")
        )
        for topic_filter, qos in HallFilters(HALL_ID).subscriptions:
            probe.subscribe(topic_filter, qos)
        self.probes.append(probe)
        return probe

    @property
    def probe(self) -> MqttProbe:
        return self.probes[-1]

    def _payloads(self, leaf: Leaf) -> list[tuple[str, bytes]]:
        out = []
        for probe in self.probes:
            for message in probe.messages():
                topic = parse(message.topic)
                if topic.device_id == self.topics.device_id and topic.leaf is leaf:
                    out.append((message.topic, bytes(message.payload)))
        return out

    def events(self) -> list[Event]:
        """Every event received, first arrivals only (dedup on id, as the hall does)."""
        seen: set[str] = set()
        out = []
        for _topic, payload in self._payloads(Leaf.EVENT):
            event = decode(Event, payload)
            if event.id not in seen:
                seen.add(event.id)
                out.append(event)
        return out

    def raw_events(self) -> list[bytes]:
        return [payload for _topic, payload in self._payloads(Leaf.EVENT)]

    def event_types(self) -> list[str]:
        return [e.type for e in self.events()]

    def wait_event(self, event_type: str, **data: Any) -> Event:
        def found() -> Event | None:
            return next(
                (
                    e
                    for e in self.events()
                    if e.type == event_type and all(e.data.get(k) == v for k, v in data.items())
                ),
                None,
            )

        return wait_until(
            found,
            timeout_s=WAIT_S,
            what=lambda: f"event {event_type} {data}; got {self.event_types()}",
        )

    def telemetry(self) -> list[Telemetry]:
        return [decode(Telemetry, p) for _t, p in self._payloads(Leaf.TELEMETRY)]

    def acks(self, command_id: str) -> list[Ack]:
        return [
            ack
            for _topic, payload in self._payloads(Leaf.ACK)
            if (ack := decode(Ack, payload)).root.command_id == command_id
        ]

    def send(
        self,
        action: str,
        args: dict[str, Any],
        *,
        now: datetime,
        command_id: str | None = None,
        valid_s: float = 300,
        key: Ed25519PrivateKey | None = None,
        device: str | None = None,
    ) -> str:
        """Sign and publish a command; returns its id."""
        command_id = command_id or f"cmd-{next(self._ids)}"
        command = sign_command(
            key or self.key,
            device=device or self.topics.device_id,
            component="lockerd",
            command_id=command_id,
            issued_at=now,
            expires_at=now + timedelta(seconds=valid_s),
            action=action,
            args=args,
        )
        self.probe.publish(self.topics.command, encode(command))
        return command_id

    def publish_raw(self, payload: bytes) -> None:
        self.probe.publish(self.topics.command, payload)

    def wait_status(self, command_id: str, status: str) -> Ack:
        return wait_until(
            lambda: next((a for a in self.acks(command_id) if a.root.status == status), None),
            timeout_s=WAIT_S,
            what=lambda: f"{status} ack of {command_id}; got {self.acks(command_id)}",
        )

    def result(self, command_id: str) -> dict[str, Any]:
        ack = self.wait_status(command_id, "result").root
        assert isinstance(ack, AckResult)
        return dict(ack.result)
