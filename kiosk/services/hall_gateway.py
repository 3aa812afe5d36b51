"""The kiosk's view of the hall: typed answers over one of two transports.

``HallGateway`` turns request kinds (docs/hall.md "Requests") into typed results. Its
transport is either ``EmbeddedTransport`` (the hall in process, the default with no broker) or
the MQTT transport (``kiosk/services/mqtt_transport.py``) over ``uplink.requests.Requester``.

A transport raises ``HallRefusal`` when the hall answered with an error (show its text as it
is) and ``HallUnreachable`` when no answer came (the gateway then uses the offline fallback of
that kind, or raises it for kinds with none).
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from hall.errors import HallError
from hallkiosk.clock import Clock
from kiosk.flows.base import KioskError
from uplink.messages import Event

Priority = Literal["normal", "green", "appointment"]
_IDENTITY_HASH = re.compile(r"^[0-9a-f]{64}$")


class HallRefusal(KioskError):
    """The hall said no. ``code`` and both texts come from the hall (shown as they are)."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


class HallUnreachable(KioskError, ConnectionError):
    code = "hall_unreachable"
    message_zh = "暂时连不上大厅系统，请稍后再试或联系工作人员。"
    message_en = "The hall system cannot be reached right now. Please try again or ask staff."

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HallTransport(Protocol):
    def call(self, kind: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        """One request; raises HallRefusal or HallUnreachable."""
        ...


@runtime_checkable
class EventSink(Protocol):
    """Where the kiosk's events for the hall go: its durable outbox (``OutboxEvents``), or,
    for a bare ``HallGateway(EmbeddedTransport(...))``, straight into the hall in process."""

    def record_event(self, event_type: str, data: Mapping[str, Any]) -> None: ...


# -- typed answers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Category:
    id: str
    area: str
    area_zh: str
    area_en: str
    ticket_type: str  # 收件 / 取件 / 咨询 (hall config: "submit" / "collect" / "consult")
    prefix: str
    label_digits: int = 3  # the hall pads numbers to this many digits (A001, A1001)


@dataclass(frozen=True)
class ChecklistItem:
    id: str
    name_zh: str
    name_en: str
    required: bool


@dataclass(frozen=True)
class Matter:
    code: str
    name_zh: str
    name_en: str
    guide_zh: str
    guide_en: str
    items: tuple[ChecklistItem, ...]


@dataclass(frozen=True)
class Catalog:
    hall_name_zh: str
    hall_name_en: str
    categories: tuple[Category, ...]
    matters: tuple[Matter, ...]
    cached: bool = False  # from the last known catalog, the hall did not answer now


@dataclass(frozen=True)
class Ticket:
    ticket_id: str
    label: str  # "A023"
    category: str
    priority: str
    issued_at: datetime
    people_ahead: int | None  # None for an offline ticket
    wait_estimate_s: int | None
    offline: bool
    reprint: bool = False
    state: str = "waiting"


@dataclass(frozen=True)
class Booking:
    booking_code: str
    name_masked: str
    matter_code: str
    matter_name: str
    area: str
    slot_start: datetime
    slot_end: datetime
    place: str
    status: str  # booked / checked_in / no_show / cancelled


@dataclass(frozen=True)
class CheckedIn:
    booking: Booking
    ticket: Ticket
    offline: bool = False  # checked against the synced list, ticket from the offline range


@dataclass(frozen=True)
class CaseRecipient:
    """Who may collect a case's certificate, from the hall's case table (``case.lookup``):
    the keyed identity hash and the masked name, never more."""

    case_number: str
    identity_hash: str
    masked_name: str


def parse_case_lookup(case_number: str, result: Mapping[str, Any]) -> CaseRecipient | None:
    """The ``case.lookup`` result; a result that is not one is ``HallUnreachable``
    (``bad_response``): no usable answer, so the clerk reads the applicant's card."""
    found = result.get("found")
    if found is False:
        return None
    identity_hash = result.get("identity_hash")
    masked_name = result.get("masked_name")
    if (
        found is not True
        or not isinstance(identity_hash, str)
        or not _IDENTITY_HASH.match(identity_hash)
        or not isinstance(masked_name, str)
        or not 1 <= len(masked_name) <= 32
        or "*" not in masked_name
    ):
        raise HallUnreachable("bad_response: case.lookup result is malformed")
    return CaseRecipient(case_number, identity_hash, masked_name)


def parse_ticket(result: Mapping[str, Any]) -> Ticket:
    ahead = result.get("people_ahead")
    wait = result.get("wait_estimate_s")
    return Ticket(
        ticket_id=str(result["ticket_id"]),
        label=str(result["ticket"]),
        category=str(result["category"]),
        priority=str(result.get("priority", "normal")),
        issued_at=datetime.fromisoformat(str(result["issued_at"])),
        people_ahead=None if ahead is None else int(ahead),
        wait_estimate_s=None if wait is None else int(wait),
        offline=bool(result.get("offline", False)),
        reprint=bool(result.get("reprint", False)),
        state=str(result.get("state", "waiting")),
    )


def parse_booking(a: Mapping[str, Any]) -> Booking:
    return Booking(
        booking_code=str(a["booking_code"]),
        name_masked=str(a.get("name_masked") or ""),
        matter_code=str(a.get("matter_code") or ""),
        matter_name=str(a.get("matter_name") or ""),
        area=str(a.get("area") or ""),
        slot_start=datetime.fromisoformat(str(a["slot_start"])),
        slot_end=datetime.fromisoformat(str(a["slot_end"])),
        place=str(a.get("place") or ""),
        status=str(a.get("status") or "booked"),
    )


def parse_catalog(result: Mapping[str, Any], *, cached: bool = False) -> Catalog:
    hall = result.get("hall") or {}
    return Catalog(
        hall_name_zh=str(hall.get("name_zh", "")),
        hall_name_en=str(hall.get("name_en", "")),
        categories=tuple(
            Category(
                id=str(c["id"]),
                area=str(c["area"]),
                area_zh=str(c["area_zh"]),
                area_en=str(c["area_en"]),
                ticket_type=str(c["ticket_type"]),
                prefix=str(c["prefix"]),
                label_digits=int(c.get("label_digits", 3)),
            )
            for c in result.get("categories", [])
        ),
        matters=tuple(_matter(m) for m in result.get("matters", [])),
        cached=cached,
    )


def _matter(m: Mapping[str, Any]) -> Matter:
    return Matter(
        code=str(m["code"]),
        name_zh=str(m.get("name_zh", "")),
        name_en=str(m.get("name_en", "")),
        guide_zh=str(m.get("guide_zh", "")),
        guide_en=str(m.get("guide_en", "")),
        items=tuple(
            ChecklistItem(
                id=str(i["id"]),
                name_zh=str(i.get("name_zh", "")),
                name_en=str(i.get("name_en", "")),
                required=bool(i.get("required", True)),
            )
            for i in m.get("items", [])
        ),
    )


# -- the embedded transport ----------------------------------------------------------------------


class EmbeddedTransport:
    """The hall in process (``hall.service.Hall``): the single-machine default.

    It is also an ``EventSink`` for a gateway built without an outbox: ``record_event`` hands
    the event to the hall's registry at once (sequence numbers count from 1 per transport; the
    hall deduplicates on the event id). The runtime (kiosk/runtime.py) uses the outbox instead,
    so events survive a restart before the hall has taken them.
    """

    COMPONENT = "kiosk"

    def __init__(self, hall: Any, device_id: str) -> None:
        self._hall = hall
        self._device_id = device_id
        self._seq = itertools.count(1)

    @property
    def clock(self) -> Clock:
        clock: Clock = self._hall.clock
        return clock

    def record_event(self, event_type: str, data: Mapping[str, Any]) -> None:
        event = Event(
            v=1,
            id=uuid.uuid4().hex,
            seq=next(self._seq),
            ts=self.clock.now(),
            type=event_type,
            device=self._device_id,
            component=self.COMPONENT,
            data=dict(data),
        )
        self._hall.registry.ingest(event)

    def call(self, kind: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            result: Mapping[str, Any] = self._hall.handle_request(self._device_id, kind, args)
        except HallError as exc:
            raise HallRefusal(exc.code, exc.message_zh, exc.message_en) from exc
        return result


# -- what the flows call ----------------------------------------------------------------------


@dataclass(frozen=True)
class MaterialFile:
    item_id: str  # the checklist item it answers
    file_name: str  # e.g. "id_front.jpg"
    data: bytes  # the captured image (JPEG); kept only until the upload is acknowledged


@dataclass(frozen=True)
class PreReviewSubmission:
    submission_key: str  # 32 hex, chosen by the kiosk: makes the submit idempotent
    matter_code: str
    phone: str
    identity_hash: str | None
    id_masked: str | None
    name_masked: str | None
    files: tuple[MaterialFile, ...]


@dataclass(frozen=True)
class PreReviewReceipt:
    submission_key: str
    receipt_no: str | None  # None while it waits in the outbox (the hall gives the number)
    queued: bool  # True: stored on the kiosk, sent when the hall is back
    submitted_at: datetime


@dataclass(frozen=True)
class SubmissionStatus:
    receipt_no: str
    matter_code: str
    state: str  # pending / accepted / returned
    submitted_at: datetime
    decided_at: datetime | None
    return_items: tuple[str, ...]


@dataclass(frozen=True)
class Evaluation:
    """好差评: 1 (very dissatisfied) .. 5 (very satisfied), reasons from a fixed list."""

    service: str  # e.g. "ticket", "pickup", "prereview"
    reference: str  # the ticket id, deposit id or receipt the rating is about
    level: int
    reasons: tuple[str, ...]


class HallService(Protocol):
    """What the flows use. Implemented by ``kiosk.services.hall_service.HallGateway``; every
    method may block, so flows call it through their worker. Each kind's offline behaviour
    is in docs/kiosk.md ("Offline")."""

    @property
    def online(self) -> bool: ...

    def catalog(self) -> Catalog:
        """The hall's catalog, or the last cached one (``cached=True``) when unreachable."""
        ...

    def issue_ticket(
        self, category_id: str, *, identity_hash: str | None, priority: Literal["normal", "green"]
    ) -> Ticket:
        """A ticket from the hall, or from this kiosk's offline range (``offline=True``)."""
        ...

    def ticket_status(self, ticket_id: str) -> Ticket: ...

    def find_bookings(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> list[Booking]:
        """Today's bookings for the identity or code; from the synced list when offline."""
        ...

    def check_in(
        self, *, identity_hash: str | None = None, booking_code: str | None = None
    ) -> CheckedIn:
        """Raises HallRefusal ``appointment_too_early`` / ``appointment_forfeited`` /
        ``appointment_not_found``; offline it applies the same windows to the synced list."""
        ...

    def submit_prereview(self, submission: PreReviewSubmission) -> PreReviewReceipt:
        """Uploads every file (resumable chunks), then submits; queued when unreachable."""
        ...

    def prereview_status(
        self, *, receipt_no: str | None = None, identity_hash: str | None = None
    ) -> list[SubmissionStatus]: ...

    def record_evaluation(self, evaluation: Evaluation) -> None:
        """An outbox event; never fails for want of a network."""
        ...

    def lookup_case(self, case_number: str, *, staff_id: str) -> CaseRecipient | None:
        """Who the hall's case table says may collect this case's certificate; None when the
        hall knows no recipient for it. No offline fallback: ``HallUnreachable`` (the staff
        flow then asks for the applicant's card), or ``HallRefusal``."""
        ...
