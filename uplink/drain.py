"""Publishing the outbox: events QoS 1 in seq order with bounded in-flight, telemetry QoS 0.

One ``OutboxDrain`` serves one MQTT connection and is driven only from that connection's network
thread (paho's callbacks and the loop around them, see uplink/connection.py), so it needs no lock
of its own.

The network loop
    ``on_puback`` (a paho callback) only records the outcome: it takes the message out of the
    in-flight map and notes the row to delete, or the refusal. After each ``client.loop()`` the
    connection calls ``pump()``, which first publishes up to ``max_inflight`` unacknowledged
    events (``fill``), so the broker has work again at once, and then deletes every row whose
    successful PUBACK was read in that loop with one ``Outbox.ack_many`` transaction. One
    commit per burst of PUBACKs instead of one per event, and no second thread taking the GIL
    back and forth, is what lets the drain keep pace with raw paho (bench/outbox_drain.py).

Order and replay
    Rows are read with ``pending(limit, after_seq=last read seq)`` into a small buffer and
    published in seq order, at most ``max_inflight`` unacknowledged at once. A row is deleted
    only after a successful PUBACK of its own message id, a moment later at the end of that
    loop; if the process dies in that moment the event is published again, which the hall
    absorbs (dedup on (device, id)). When the connection is lost, everything not acknowledged
    stays in the outbox, and ``start()`` on the next connection deletes what is still noted,
    then reads again from the oldest pending row: the hall may see an event twice, never out of
    order for the first time, and it deduplicates on (device, id).

Refused rows
    A PUBACK with a failure reason code (0x87 Not authorized, 0x99 Payload format invalid, 0x97
    Quota exceeded, ...) means the broker did not take the event. Business events are never
    deleted without the broker's acceptance, so the row stays in the outbox and keeps counting in
    ``backlog()``; it is logged, counted in ``refused`` and skipped for the rest of this
    connection, so one bad row cannot block the queue. The next connection tries it once more
    (an ACL or broker fix then lets it through). The hall sees the seq gap meanwhile and alarms,
    which is the right outcome for an event the broker refuses. 0x10 "No matching subscribers"
    is a success: the broker took the message.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from uplink.outbox import Outbox, OutboxEvent
from uplink.topics import Leaf, Topics

log = logging.getLogger(__name__)


@dataclass
class DrainCounters:
    publishes: int = 0  # events handed to paho (a replay counts again)
    acks: int = 0  # rows deleted after a successful PUBACK
    refused: int = 0  # PUBACKs with a failure code, rows kept
    telemetry: int = 0  # telemetry snapshots published
    ack_errors: int = 0  # deletes that failed; the rows stay and are published again later


class OutboxDrain:
    def __init__(
        self,
        outbox: Outbox,
        client: mqtt.Client,
        topics: Topics,
        *,
        max_inflight: int = 20,
        batch: int = 500,
        counters: DrainCounters | None = None,
    ) -> None:
        if max_inflight < 1 or batch < 1:
            raise ValueError("max_inflight and batch must be at least 1")
        self._outbox = outbox
        self._client = client
        self._topics = topics
        self._max_inflight = max_inflight
        self._batch = batch
        # shared across connections when the caller passes its own, so totals survive them
        self.counters = counters if counters is not None else DrainCounters()
        # seq -> reason text of rows the broker refused on this connection
        self.refused_rows: dict[int, str] = {}
        self._inflight: dict[int, OutboxEvent] = {}  # paho mid -> row
        self._buffer: deque[OutboxEvent] = deque()
        self._event_topics: dict[str, str] = {}
        self._acked: list[int] = []  # rows whose successful PUBACK came, not yet deleted
        self._last_read_seq = 0
        self._exhausted = False  # the last read returned less than asked: poll before reading
        self._active = False

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def active(self) -> bool:
        return self._active

    def start(self) -> None:
        """A new connection: forget what was in flight and replay from the oldest pending row."""
        self._inflight.clear()
        self._buffer.clear()
        self.commit_acks()  # rows acknowledged earlier must be gone before we read from the oldest
        self.refused_rows.clear()
        self._last_read_seq = 0
        self._exhausted = False
        self._active = True
        self.fill()

    def stop(self) -> None:
        """Publish nothing more; rows in flight stay in the outbox unless their PUBACK comes."""
        self._active = False

    def pump(self) -> None:
        """Called after every network loop: refill the window, then delete what was acked."""
        self.fill()
        self.commit_acks()

    def commit_acks(self) -> None:
        """Delete, in one transaction, every row whose successful PUBACK has come."""
        if not self._acked:
            return
        rows, self._acked = self._acked, []
        try:
            self._outbox.ack_many(rows)
        except Exception:
            # the rows stay; the next connection publishes them again and the hall dedups
            self.counters.ack_errors += len(rows)
            log.exception("could not delete %d acknowledged outbox rows", len(rows))
        else:
            self.counters.acks += len(rows)

    def poll(self) -> None:
        """Called periodically: pick up events appended since the outbox last ran dry."""
        self._exhausted = False
        self.fill()

    def fill(self) -> None:
        """Publish buffered and newly read rows until max_inflight are unacknowledged."""
        inflight, qos = self._inflight, Leaf.EVENT.qos
        while self._active and len(inflight) < self._max_inflight:
            if not self._buffer:
                if self._exhausted:
                    return
                rows = self._outbox.pending(self._batch, after_seq=self._last_read_seq)
                self._exhausted = len(rows) < self._batch
                if not rows:
                    return
                self._last_read_seq = rows[-1].seq
                self._buffer.extend(rows)
            event = self._buffer.popleft()
            topic = self._event_topics.get(event.type)
            if topic is None:  # built (and checked) once per type, not once per event
                topic = self._event_topics[event.type] = self._topics.event(event.type)
            info = self._client.publish(topic, event.payload, qos=qos)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                # The connection is going away; the row stays and the next start() replays it.
                log.info(
                    "publish of seq %d not sent (%s); waiting to reconnect", event.seq, info.rc
                )
                self._active = False
                return
            inflight[info.mid] = event
            self.counters.publishes += 1

    def on_puback(self, mid: int, reason_code: ReasonCode) -> bool:
        """Record a PUBACK; False if the mid is not one of our events (e.g. the birth).

        Nothing is published or deleted here: ``pump()`` does both after the loop that read it.
        """
        event = self._inflight.pop(mid, None)
        if event is None:
            return False
        if reason_code.is_failure:
            self.counters.refused += 1
            self.refused_rows[event.seq] = str(reason_code)
            log.error(
                "broker refused event seq=%d id=%s type=%s: %s (0x%02x); the row stays in the "
                "outbox and is retried on the next connection",
                event.seq,
                event.id,
                event.type,
                reason_code,
                reason_code.value,
            )
        else:  # 0x10 "No matching subscribers" included: the broker took the message
            self._acked.append(event.row_id)
        return True

    def publish_telemetry(self) -> bool:
        """Send the latest telemetry snapshot, if any (QoS 0: latest wins, no retry)."""
        if not self._active:
            return False
        payload = self._outbox.take_telemetry()
        if payload is None:
            return False
        self._client.publish(self._topics.telemetry, payload, qos=Leaf.TELEMETRY.qos)
        self.counters.telemetry += 1
        return True
