"""The synced appointment list: today's bookings (hashed identities only) for offline check-in.

The hall publishes the list retained on ``hall/{hall_id}/hall/appointments`` and answers
``appointment.sync`` with the same content. The kiosk keeps the newest list it has heard in
``kiosk.db``, so a kiosk restarted while the hall is unreachable still checks bookings in.
A list replaces the kept one if it is for a later service day, or for the same day and generated
no earlier; so a retained copy arriving after a fresher ``appointment.sync`` answer is ignored.

``handle_message`` runs on the MQTT network thread: it only decodes and stores, and never asks
the hall anything (``Requester.request`` may not be called there).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

import paho.mqtt.client as mqtt

from hallkiosk.clock import Clock, utc_iso
from kiosk.services.store import KioskStore
from uplink.messages import (
    SCHEMA_VERSION,
    AppointmentList,
    MessageError,
    check_topic,
    decode,
    encode,
)
from uplink.topics import Leaf, TopicError, Topics, hall_appointments, parse

log = logging.getLogger(__name__)


class KioskTopics(Topics):
    """The kiosk's topics: a device's own, plus the hall's retained appointment list, so the
    connection subscribes to it on every connect."""

    @property
    def subscriptions(self) -> tuple[tuple[str, int], ...]:
        return (*super().subscriptions, (self.hall_appointments, Leaf.HALL_APPOINTMENTS.qos))


class AppointmentCache:
    def __init__(self, store: KioskStore, clock: Clock, hall_id: str) -> None:
        self._store = store
        self._clock = clock
        self._hall_id = hall_id
        self._topic = hall_appointments(hall_id)
        self.stats = {"stored": 0, "kept_newer": 0, "malformed": 0}

    # -- in ----------------------------------------------------------------------------------

    def handle_message(self, message: mqtt.MQTTMessage) -> None:
        """Message hook (network thread): the retained list, whenever the hall changes it."""
        if message.topic != self._topic:
            return
        payload = bytes(message.payload)
        if not payload:
            return  # a cleared retained message: keep what we have
        try:
            listed = decode(AppointmentList, payload)
            check_topic(listed, parse(message.topic))
        except (MessageError, TopicError) as exc:
            self.stats["malformed"] += 1
            log.warning("appointment list ignored, malformed: %s", exc)
            return
        self.store(listed)

    def store_sync_result(self, result: Mapping[str, Any]) -> bool:
        """An ``appointment.sync`` answer (the same content without hall and revision)."""
        content = {
            "service_day": result.get("service_day"),
            "early_s": result.get("early_s"),
            "late_s": result.get("late_s"),
            "appointments": result.get("appointments"),
        }
        revision = hashlib.sha256(
            json.dumps(content, sort_keys=True, ensure_ascii=False).encode()
        ).hexdigest()[:16]
        document = {
            "v": SCHEMA_VERSION,
            "hall": self._hall_id,
            "revision": revision,
            "generated_at": result.get("generated_at"),
            **content,
        }
        try:
            listed = decode(AppointmentList, json.dumps(document, ensure_ascii=False).encode())
        except MessageError as exc:
            self.stats["malformed"] += 1
            log.warning("appointment.sync answer ignored, malformed: %s", exc)
            return False
        return self.store(listed)

    def store(self, listed: AppointmentList) -> bool:
        """Keep ``listed`` unless the kept list is newer; True if it was stored."""
        generated = utc_iso(listed.generated_at)
        with self._store.transaction() as conn:
            kept = conn.execute(
                "SELECT service_day, generated_at FROM kiosk_appointment_list WHERE id = 1"
            ).fetchone()
            if kept is not None and (kept["service_day"], kept["generated_at"]) > (
                listed.service_day,
                generated,
            ):
                self.stats["kept_newer"] += 1
                return False
            conn.execute(
                "INSERT INTO kiosk_appointment_list (id, service_day, revision, generated_at,"
                " payload, received_at) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " service_day = excluded.service_day, revision = excluded.revision,"
                " generated_at = excluded.generated_at, payload = excluded.payload,"
                " received_at = excluded.received_at",
                (
                    listed.service_day,
                    listed.revision,
                    generated,
                    encode(listed),
                    utc_iso(self._clock.now()),
                ),
            )
        self.stats["stored"] += 1
        log.info(
            "appointment list for %s kept: %d bookings (revision %s)",
            listed.service_day,
            len(listed.appointments),
            listed.revision,
        )
        return True

    # -- out ---------------------------------------------------------------------------------

    def current(self) -> AppointmentList | None:
        """The kept list, whatever its day."""
        row = self._store.one("SELECT payload FROM kiosk_appointment_list WHERE id = 1")
        if row is None:
            return None
        return decode(AppointmentList, bytes(row["payload"]))

    def today(self) -> AppointmentList | None:
        """The kept list if it is for today's service day (the hall's local date)."""
        listed = self.current()
        day = self._clock.now().astimezone(self._clock.tz).date().isoformat()
        return listed if listed is not None and listed.service_day == day else None
