"""The home page's tiles and the journey kinds they start (no hardware, hall or Kivy imports).

Kept apart from kiosk/flows/home.py so the kiosk can draw its home page before the journeys and
their drivers are imported (kiosk/app.py, "Start-up"); home.py re-exports every name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kiosk.flows.base import Msg, Text


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


# what the home and out-of-service pages say when a service cannot be had here
WHERE_INSTEAD = Msg.of("Please go to the service counter, or use another self-service kiosk.")


def installed_journeys(*, locker: bool) -> frozenset[JourneyKind]:
    """The journeys a kiosk offers: pickup and staff mode only with a locker (kiosk/assembly.py
    installs exactly these; tests/kiosk/test_assembly.py checks that they agree)."""
    always = {
        JourneyKind.TICKET,
        JourneyKind.CHECKIN,
        JourneyKind.STATUS,
        JourneyKind.EVALUATION,
        JourneyKind.PREREVIEW,
    }
    return frozenset(always | ({JourneyKind.PICKUP, JourneyKind.STAFF} if locker else set()))
