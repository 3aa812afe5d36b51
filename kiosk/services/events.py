"""Events the kiosk reports to the hall: through its durable outbox, or straight into the
embedded hall.

Over MQTT the uplink connection drains the outbox (``uplink/drain.py``). With the embedded
hall there is no broker, so ``EmbeddedEventPump`` hands every outbox event to the hall in this
process (``DeviceRegistry.ingest``, deduplicated on the event id exactly as over MQTT) and
deletes it once ingested: the hall sees the same events either way. The latest telemetry
snapshot goes the same way (``DeviceRegistry.telemetry``), taken from the outbox as the uplink
connection takes it to publish: latest wins, and one the hall fails on is not retried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from uplink.messages import Event, MessageError, Telemetry, decode
from uplink.outbox import Outbox

log = logging.getLogger(__name__)

PUMP_BATCH = 500


class Ingests(Protocol):
    """What the pump needs of ``hall.registry.DeviceRegistry``."""

    def ingest(self, event: Event) -> bool: ...

    def telemetry(self, message: Telemetry) -> None: ...


class OutboxEvents:
    """``record_event`` appends to the outbox (fsynced); ``on_recorded`` then runs, e.g. the
    embedded pump. A full disk raises ``OutboxFull``: the fact was not recorded."""

    def __init__(self, outbox: Outbox, on_recorded: Callable[[], object] | None = None) -> None:
        self.outbox = outbox
        self._on_recorded = on_recorded

    def record_event(self, event_type: str, data: Mapping[str, Any]) -> None:
        self.outbox.append(event_type, data)
        self.recorded()

    def recorded(self) -> None:
        """Call after a transaction that wrote events with ``Outbox.append_in``."""
        if self._on_recorded is None:
            return
        try:
            self._on_recorded()
        except Exception:  # the event is safe in the outbox; the next pump takes it
            log.exception("event hand-over after recording failed")


class EmbeddedEventPump:
    """Moves outbox events into the in-process hall's registry, oldest first, then the latest
    telemetry snapshot."""

    def __init__(self, outbox: Outbox, registry: Ingests) -> None:
        self._outbox = outbox
        self._registry = registry
        self._lock = threading.Lock()
        self.delivered = 0

    def pump(self) -> int:
        """Deliver everything pending; returns how many events were delivered. An event the
        hall fails on stays in the outbox (and stops the pump, to keep the order)."""
        done = 0
        with self._lock:
            while True:
                batch = self._outbox.pending(PUMP_BATCH)
                if not batch:
                    self._telemetry()
                    return done
                acked: list[int] = []
                try:
                    for row in batch:
                        try:
                            event = decode(Event, row.payload)
                        except MessageError:
                            log.exception("outbox event %s does not decode; dropped", row.id)
                            acked.append(row.row_id)
                            continue
                        self._registry.ingest(event)
                        acked.append(row.row_id)
                finally:
                    self._outbox.ack_many(acked)
                    done += len(acked)
                    self.delivered += len(acked)

    def _telemetry(self) -> None:
        payload = self._outbox.take_telemetry()
        if payload is None:
            return
        try:
            self._registry.telemetry(decode(Telemetry, payload))
        except Exception:  # a state, not a fact: the next snapshot replaces it
            log.exception("telemetry snapshot not handed to the hall")
