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
from typing import Any, Protocol, runtime_checkable

from drivers.identity.types import Identity
from kiosk.flows.base import Bilingual, Msg, Notice, Text
from kiosk.flows.printing import PrinterNotReady, printer_notice

# re-exported (``X as X``): the journeys import these from here, as before tiles.py existed
from kiosk.flows.tiles import COMPONENT_DOWN as COMPONENT_DOWN  # noqa: PLC0414
from kiosk.flows.tiles import TILES as TILES  # noqa: PLC0414
from kiosk.flows.tiles import Component as Component  # noqa: PLC0414
from kiosk.flows.tiles import JourneyKind as JourneyKind  # noqa: PLC0414
from kiosk.flows.tiles import Tile as Tile  # noqa: PLC0414
from kiosk.flows.tiles import TileId as TileId  # noqa: PLC0414
from kiosk.flows.tiles import TileSpec as TileSpec  # noqa: PLC0414
from kiosk.services.hall_gateway import HallRefusal, HallUnreachable

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
