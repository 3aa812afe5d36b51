"""What the session and every journey share: journey kinds, how a journey ends, home tiles.

A journey is any flow the session can route to. Besides ``Flow``'s ``state``, ``busy``,
``notice``, ``subscribe`` and ``wipe`` it exposes:

- ``ended``: ``None`` while it runs; ``Finished``, ``Cancelled`` or ``HandOver`` once it is over.
  The session watches it, wipes the flow and goes on (evaluation, another journey, home).
- ``prompt``: the sentence to speak in elderly mode for the current state (``Msg`` or None).
  The session speaks it (``Voice.say``) through the UI's translator; flows never hold a
  translated string.

Optional, found by ``isinstance`` against the protocols below: ``card_read(identity) -> bool``,
``code_scanned(text) -> bool`` (False: this screen does not take it, the session says so) and
``set_page_size(n)`` (elderly mode switched during the journey).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from drivers.identity.types import Identity
from kiosk.flows.base import Bilingual, Msg, Notice, Text
from kiosk.flows.printing import PrinterNotReady, printer_notice
from kiosk.services.hall_gateway import HallRefusal, HallUnreachable


class JourneyKind(StrEnum):
    HOME = "home"
    TICKET = "ticket"
    CHECKIN = "checkin"
    STATUS = "status"
    EVALUATION = "evaluation"
    PICKUP = "pickup"
    PREREVIEW = "prereview"
    STAFF = "staff"
    OUT_OF_SERVICE = "out_of_service"


# -- how a journey ends ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """The service was given. ``evaluate``: the session offers 好差评 about ``reference``."""

    service: str  # "ticket", "checkin", "pickup", "prereview", "status", ...
    reference: str = ""  # ticket id, deposit id, receipt number
    evaluate: bool = True


@dataclass(frozen=True)
class Cancelled:
    """The applicant left (Cancel / Home)."""


@dataclass(frozen=True)
class HandOver:
    """Continue in another journey, e.g. a lapsed booking becomes a normal ticket of its area.
    ``identity`` is the card already read, so the applicant need not read it again."""

    to: JourneyKind
    area: str | None = None
    identity: Identity | None = None


JourneyEnd = Finished | Cancelled | HandOver


@dataclass(frozen=True)
class JourneyStart:
    """What a journey is started with; each journey reads the fields it knows."""

    page_size: int
    elderly: bool = False
    area: str | None = None  # ticket: business area chosen already (hand-over)
    identity: Identity | None = None  # a card read already (hand-over, staff card)
    code: str | None = None  # a code scanned on the home screen (booking QR, receipt QR)
    service: str | None = None  # evaluation: the service rated
    reference: str | None = None  # evaluation: what it is about


# -- the journey protocols --------------------------------------------------------------------


class Journey(Protocol):
    @property
    def ended(self) -> JourneyEnd | None: ...

    @property
    def busy(self) -> Text | None: ...

    @property
    def prompt(self) -> Msg | None: ...

    def wipe(self) -> None: ...

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...


@runtime_checkable
class TakesCards(Protocol):
    def card_read(self, identity: Identity) -> bool:
        """True when this state used the card; False: the session tells the applicant."""
        ...


@runtime_checkable
class TakesCodes(Protocol):
    def code_scanned(self, text: str) -> bool: ...


@runtime_checkable
class Paged(Protocol):
    def set_page_size(self, size: int) -> None: ...


JourneyFactory = Callable[[JourneyStart], Journey]


# -- home tiles -------------------------------------------------------------------------------


class Component(StrEnum):
    """Hardware a tile may depend on (``KioskSession.hardware_failed``)."""

    PRINTER = "printer"
    CARD_READER = "card_reader"
    SCANNER = "scanner"
    CAMERA = "camera"
    LOCKER = "locker"


class TileId(StrEnum):
    TICKET = "ticket"
    CHECKIN = "checkin"
    PREREVIEW = "prereview"
    STATUS = "status"
    PICKUP = "pickup"


@dataclass(frozen=True)
class TileSpec:
    journey: JourneyKind
    title: Msg
    needs: frozenset[Component]  # every one of these
    needs_any: frozenset[Component] = frozenset()  # at least one of these, when given


TILES: dict[TileId, TileSpec] = {
    TileId.TICKET: TileSpec(
        JourneyKind.TICKET, Msg.of("Take a queue ticket"), frozenset({Component.PRINTER})
    ),
    # a check-in prints the priority ticket; the booking can be found by card, code or QR
    TileId.CHECKIN: TileSpec(
        JourneyKind.CHECKIN, Msg.of("Appointment check-in"), frozenset({Component.PRINTER})
    ),
    TileId.PREREVIEW: TileSpec(
        JourneyKind.PREREVIEW,
        Msg.of("Online pre-review"),
        frozenset({Component.CAMERA, Component.CARD_READER}),
    ),
    TileId.STATUS: TileSpec(
        JourneyKind.STATUS,
        Msg.of("Case status"),
        frozenset(),
        frozenset({Component.CARD_READER, Component.SCANNER}),
    ),
    TileId.PICKUP: TileSpec(
        JourneyKind.PICKUP,
        Msg.of("Collect a certificate"),
        frozenset({Component.CARD_READER, Component.LOCKER}),
    ),
}

COMPONENT_DOWN: dict[Component, Msg] = {
    Component.PRINTER: Msg.of("The ticket printer is not working right now."),
    Component.CARD_READER: Msg.of("The ID card reader is not working right now."),
    Component.SCANNER: Msg.of("The code scanner is not working right now."),
    Component.CAMERA: Msg.of("The document camera is not working right now."),
    Component.LOCKER: Msg.of("The certificate lockers are not available right now."),
}


@dataclass(frozen=True)
class Tile:
    id: TileId
    title: Msg
    enabled: bool
    reason: Text | None = None  # why it is disabled, shown on the tile


# -- notices every journey gives ----------------------------------------------------------------


NO_ID_NUMBER = Notice(
    Msg.of("This card does not give an ID number here. Please use your ID card or citizen card."),
    "card_without_number",
)
NOT_THIS_SCREEN = Notice(Msg.of("This screen does not need a card or a code."), "not_taken")


def problem_notice(error: BaseException | None) -> Notice:
    """A job's failure in plain words: the hall's or the printer's own text when there is one."""
    if isinstance(error, PrinterNotReady):
        return printer_notice(error)
    if isinstance(error, HallRefusal):
        return Notice(Bilingual.from_error(error), error.code)
    if isinstance(error, HallUnreachable):
        return Notice(Bilingual.from_error(error), error.code, call_staff=True)
    return Notice(
        Msg.of("Something went wrong. Please try again or contact staff."),
        "kiosk_error",
        call_staff=True,
    )
