"""The kiosk session: which journey is on screen, language, elderly mode, the idle timeout,
card and code dispatch, and being out of service.

    session = KioskSession(clock, standard_journeys(parts) | {PICKUP: ..., STAFF: ...},
                           settings=SessionSettings(), voice=voice, translate=catalog.text)
    session.subscribe(redraw)          # any change of the session (not of the journey itself)
    session.start(TileId.TICKET)       # a home tile; session.journey is the flow to render
    session.tick()                     # ~2x a second from the UI clock
    session.touched()                  # every touch; card_read / code_scanned count as one

Idle timeout: a deadline on ``clock.monotonic()``, pushed back by touches, by any change of the
journey (a job finishing) and for as long as a job runs. In the last ``countdown_s`` the
screen shows ``seconds_left``; ``more_time()`` resets it. On expiry the journey is wiped, the
language goes back to Chinese, elderly mode off, and the home page (or out of service) shows.
Going home by any way resets language and elderly mode too: the next person starts fresh.

Voice (elderly mode only): when the journey's ``prompt`` or notice changes, the session says
it through ``voice.say`` in the session language, using ``translate`` (the UI's catalog) to
turn the ``Msg``/``Bilingual`` into words. Without a voice or a translator it stays silent.

Out of service: the ops lock (``lock()``/``unlock()``, applied by the assembly from the hall's
signed command, kiosk/services/commands.py), the staff lock (the staff journey's lock/unlock
hand-over), or ``hardware_failed(..., critical=True)``. A journey in progress is allowed to
finish (an applicant mid-print keeps the ticket); the next time the session would show home it
shows OUT_OF_SERVICE instead. Staff cards still start the staff journey there (and on home).
Non-critical faults disable only the tiles that need the part.

The two locks are separate, and each is lifted only by whoever set it: a clerk's unlock on site
leaves an ops lock in force (the clerk is told that only ops can lift it), and ops' unlock leaves
a clerk's lock (docs/kiosk.md "Out of service"). While both hold, the page shows ops' reason.

Both outlive the process. The ops lock is applied by the assembly from ``kiosk.db``. The clerk's
is ``staff_lock`` (kiosk/services/staff_lock.py): the staff journey writes it before it hands
over, and the session follows what it holds when it is built (a kiosk restarted while a clerk
had it locked starts out of service) and every time it goes home.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from drivers.identity.types import Identity, IdentitySource
from drivers.printer import TicketPrinter
from drivers.voice import Voice, VoiceError
from hallkiosk.clock import Clock
from kiosk.flows.base import Bilingual, FlowStateError, Msg, Notice, Text, Worker
from kiosk.flows.checkin import CheckinFlow, CheckinSettings, parse_booking_code
from kiosk.flows.evaluation import EvaluationFlow
from kiosk.flows.home import (
    COMPONENT_DOWN,
    NOT_THIS_SCREEN,
    TILES,
    Cancelled,
    Component,
    Finished,
    HandOver,
    Journey,
    JourneyFactory,
    JourneyKind,
    JourneyStart,
    Paged,
    TakesCards,
    TakesCodes,
    Tile,
    TileId,
)
from kiosk.flows.status import StatusFlow, parse_receipt_no
from kiosk.flows.ticket import PrintFailedCallback, TicketFlow, TicketSettings
from kiosk.flows.tiles import WHERE_INSTEAD as WHERE_INSTEAD  # noqa: PLC0414 - re-exported
from kiosk.services.hall_gateway import HallService
from kiosk.services.staff_lock import StaffLock

log = logging.getLogger(__name__)

Language = Literal["zh", "en"]
Translator = Callable[[Text, Language], str]
SessionListener = Callable[["KioskSession"], None]

HOME, OUT_OF_SERVICE = JourneyKind.HOME, JourneyKind.OUT_OF_SERVICE
HOME_PROMPT = Msg.of("Please choose the service you need.")
STAFF_LOCKED = Msg.of("This kiosk has been taken out of service by staff.")
# Told to the clerk whose unlock did not lift the ops lock (a Bilingual: not yet in the catalog).
OPS_LOCK_STAYS = Bilingual(
    "运维人员已远程停用本机，只有运维人员可以恢复使用。请联系运维人员。",
    "Operations took this kiosk out of service remotely. Only operations can put it back in "
    "service: please call them.",
)


@dataclass(frozen=True)
class SessionSettings:
    idle_timeout_s: float = 60.0
    elderly_idle_timeout_s: float = 120.0  # 大字版: more time to read and find the card
    countdown_s: float = 15.0  # the countdown shows in the last seconds only
    page_size: int = 6
    elderly_page_size: int = 3  # 大字版: fewer, bigger choices
    where_instead: Msg = WHERE_INSTEAD

    def __post_init__(self) -> None:
        if not 10 <= self.idle_timeout_s <= 600 or not 10 <= self.elderly_idle_timeout_s <= 900:
            raise ValueError("idle timeouts: 10-600 s (elderly 10-900 s)")
        if not 0 < self.countdown_s < min(self.idle_timeout_s, self.elderly_idle_timeout_s):
            raise ValueError("countdown_s: above 0 and below both idle timeouts")
        if not 1 <= self.elderly_page_size <= self.page_size <= 20:
            raise ValueError("page sizes: 1 <= elderly_page_size <= page_size <= 20")


@dataclass(frozen=True)
class Fault:
    reason: Text
    critical: bool


@dataclass(frozen=True)
class Lock:
    reason: Text
    where_instead: Text
    staff_id: str | None = None  # a clerk's lock: the staff card that set it
    since: str | None = None  # a clerk's lock, when it is on record: UTC, ISO 8601


# -- the standard journeys ---------------------------------------------------------------------


@dataclass(frozen=True)
class KioskParts:
    """What this module's journeys are built from (the pickup, pre-review and staff journeys
    come from their own modules' factories)."""

    worker: Worker
    clock: Clock
    hall: HallService
    printer: TicketPrinter
    ticket_settings: TicketSettings = field(default_factory=TicketSettings)
    checkin_settings: CheckinSettings = field(default_factory=CheckinSettings)
    on_print_failed: PrintFailedCallback | None = None


def standard_journeys(parts: KioskParts) -> dict[JourneyKind, JourneyFactory]:
    def ticket(start: JourneyStart) -> Journey:
        return TicketFlow(
            parts.worker,
            parts.clock,
            parts.hall,
            parts.printer,
            settings=parts.ticket_settings,
            page_size=start.page_size,
            area=start.area,
            identity=start.identity,
            on_print_failed=parts.on_print_failed,
        )

    def checkin(start: JourneyStart) -> Journey:
        return CheckinFlow(
            parts.worker,
            parts.clock,
            parts.hall,
            parts.printer,
            settings=parts.checkin_settings,
            ticket_settings=parts.ticket_settings,
            page_size=start.page_size,
            identity=start.identity,
            code=start.code,
            on_print_failed=parts.on_print_failed,
        )

    def status(start: JourneyStart) -> Journey:
        return StatusFlow(
            parts.worker,
            parts.hall,
            page_size=start.page_size,
            identity=start.identity,
            code=start.code,
        )

    def evaluation(start: JourneyStart) -> Journey:
        return EvaluationFlow(
            parts.worker, parts.hall, service=start.service or "", reference=start.reference or ""
        )

    return {
        JourneyKind.TICKET: ticket,
        JourneyKind.CHECKIN: checkin,
        JourneyKind.STATUS: status,
        JourneyKind.EVALUATION: evaluation,
    }


# -- the session -------------------------------------------------------------------------------


class KioskSession:
    def __init__(
        self,
        clock: Clock,
        journeys: Mapping[JourneyKind, JourneyFactory],
        *,
        settings: SessionSettings | None = None,
        voice: Voice | None = None,
        translate: Translator | None = None,
        staff_lock: StaffLock | None = None,
    ) -> None:
        self._clock = clock
        self._journeys = dict(journeys)
        self._settings = settings or SessionSettings()
        self._voice = voice
        self._translate = translate
        self._listeners: list[SessionListener] = []
        self._active = HOME
        self._journey: Journey | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._language: Language = "zh"
        self._elderly = False
        self._notice: Notice | None = None
        self._ops_lock: Lock | None = None
        self._staff_locks = staff_lock
        self._staff_lock: Lock | None = None
        self._faults: dict[Component, Fault] = {}
        self._deadline_s = clock.monotonic() + self._timeout_s()
        self._shown: tuple[bool, int] = (False, 0)  # the countdown last drawn
        self._spoken: Text | None = None
        self._follow_staff_lock()  # restarted while a clerk had it locked: out of service
        self._active = OUT_OF_SERVICE if self.out_of_service_reason else HOME

    # -- what the screens read ---------------------------------------------------------------

    @property
    def active(self) -> JourneyKind:
        return self._active

    @property
    def journey(self) -> Journey | None:
        """The flow on screen (None on home and out of service)."""
        return self._journey

    @property
    def language(self) -> Language:
        return self._language

    @property
    def elderly(self) -> bool:
        return self._elderly

    @property
    def page_size(self) -> int:
        return self._settings.elderly_page_size if self._elderly else self._settings.page_size

    @property
    def notice(self) -> Notice | None:
        return self._notice

    @property
    def seconds_left(self) -> int:
        return max(0, math.ceil(self._deadline_s - self._clock.monotonic()))

    @property
    def countdown_visible(self) -> bool:
        return (
            self._armed() and not self._busy() and self.seconds_left <= self._settings.countdown_s
        )

    @property
    def locked(self) -> bool:
        """Locked by ops or by staff."""
        return self._current_lock() is not None

    @property
    def ops_locked(self) -> bool:
        return self._ops_lock is not None

    @property
    def staff_locked(self) -> bool:
        return self._staff_lock is not None

    @property
    def staff_lock(self) -> Lock | None:
        """The clerk's lock in force, with the staff id and time on record (None: none)."""
        return self._staff_lock

    @property
    def out_of_service_reason(self) -> Text | None:
        """Why the kiosk is out of service (shown on that page); None when it is not."""
        lock = self._current_lock()
        if lock is not None:
            return lock.reason
        critical = next((f for f in self._faults.values() if f.critical), None)
        return critical.reason if critical else None

    @property
    def where_instead(self) -> Text | None:
        lock = self._current_lock()
        if lock is not None:
            return lock.where_instead
        return self._settings.where_instead if self.out_of_service_reason else None

    @property
    def faults(self) -> Mapping[Component, Fault]:
        return dict(self._faults)

    @property
    def tiles(self) -> tuple[Tile, ...]:
        """Home tiles of the installed journeys, each enabled or with the reason it is not."""
        tiles = []
        for tile_id, spec in TILES.items():
            if spec.journey in self._journeys:
                reason = self._tile_blocked(tile_id)
                tiles.append(Tile(tile_id, spec.title, reason is None, reason))
        return tuple(tiles)

    def now(self) -> datetime:
        """For the clock on screen: the hall's local time."""
        return self._clock.now()

    def subscribe(self, listener: SessionListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    # -- touches -----------------------------------------------------------------------------

    def touched(self) -> None:
        self._rearm()

    def more_time(self) -> None:
        self._rearm()

    def set_language(self, language: Language) -> None:
        if language not in ("zh", "en"):
            raise ValueError(f"language zh or en, not {language!r}")
        self._language = language
        self._spoken = None  # the next prompt is said again, in the new language
        self._rearm(force=True)
        self._speak()

    def set_elderly(self, on: bool) -> None:
        self._elderly = on
        self._spoken = None  # said again on the next change (or now, below)
        if isinstance(self._journey, Paged):
            self._journey.set_page_size(self.page_size)  # a change: speaks the prompt
        self._rearm(force=True)
        self._speak()

    def dismiss_notice(self) -> None:
        self._notice = None
        self._changed()

    def notify(self, notice: Notice) -> None:
        """A message from a device (a code that cannot be read, a reader fault), shown over
        whatever is on screen."""
        self._set_notice(notice)

    def start(self, tile: TileId) -> None:
        """A home tile was touched."""
        if self._active is not HOME:
            raise FlowStateError(f"session: tiles are on the home page, not on {self._active}")
        self._rearm()
        blocked = self._tile_blocked(tile)
        if blocked is not None:
            self._set_notice(Notice(blocked, "tile_disabled"))
            return
        self._start(TILES[tile].journey, JourneyStart(self.page_size, self._elderly))

    def go_home(self) -> None:
        """The Home button: leave the journey (its personal data is wiped)."""
        if self._busy():
            self._set_notice(Notice(Msg.of("Please wait until the kiosk has finished."), "busy"))
            return
        self._home()

    def offer_evaluation(self, service: str, reference: str) -> None:
        """Start the 好差评 journey about ``reference`` (home if it is not installed)."""
        if JourneyKind.EVALUATION not in self._journeys or self.out_of_service_reason:
            self._home()
            return
        start = JourneyStart(self.page_size, self._elderly, service=service, reference=reference)
        self._start(JourneyKind.EVALUATION, start)

    # -- devices -----------------------------------------------------------------------------

    def card_read(self, identity: Identity) -> None:
        self._rearm()
        if identity.source is IdentitySource.STAFF_CARD and self._active in (HOME, OUT_OF_SERVICE):
            self._start_staff(identity)
            return
        journey = self._journey
        if journey is None:
            if self._active is HOME:
                self._set_notice(
                    Notice(
                        Msg.of("Please choose a service first, then place your card."),
                        "choose_first",
                    )
                )
            return  # out of service: the page says where to go
        taken = journey.card_read(identity) if isinstance(journey, TakesCards) else False
        if taken is False:
            self._set_notice(NOT_THIS_SCREEN)

    def code_scanned(self, text: str) -> None:
        self._rearm()
        journey = self._journey
        if journey is None:
            if self._active is HOME:
                self._code_on_home(text)
            return
        taken = journey.code_scanned(text) if isinstance(journey, TakesCodes) else False
        if taken is False:
            self._set_notice(NOT_THIS_SCREEN)

    # -- ops and hardware --------------------------------------------------------------------

    def lock(self, reason: Text, where_instead: Text | None = None) -> None:
        """The ops lock (or new texts for it); only ``unlock()`` lifts it."""
        self._ops_lock = Lock(reason, where_instead or self._settings.where_instead)
        self._settle()

    def unlock(self) -> None:
        """Lift the ops lock; a staff lock stays."""
        self._ops_lock = None
        self._settle()

    def hardware_failed(
        self, component: Component, critical: bool, reason: Text | None = None
    ) -> None:
        """A part stopped working. ``reason`` (e.g. the driver's ``Bilingual``) is shown on
        the tiles it disables; critical parts take the whole kiosk out of service."""
        self._faults[component] = Fault(reason or COMPONENT_DOWN[component], critical)
        self._settle()

    def hardware_recovered(self, component: Component) -> None:
        self._faults.pop(component, None)
        self._settle()

    # -- the clock ---------------------------------------------------------------------------

    def tick(self) -> None:
        now = self._clock.monotonic()
        if not self._armed() or self._busy():
            self._deadline_s = now + self._timeout_s()  # nothing to lose, or the kiosk works
        elif now >= self._deadline_s:
            self._expire()
            return
        shown = (self.countdown_visible, self.seconds_left if self.countdown_visible else 0)
        if shown != self._shown:
            self._shown = shown
            self._changed()

    # -- internals ---------------------------------------------------------------------------

    def _timeout_s(self) -> float:
        s = self._settings
        return s.elderly_idle_timeout_s if self._elderly else s.idle_timeout_s

    def _armed(self) -> bool:
        """Something to lose: a journey, or a language or mode the next person did not pick."""
        if self._active not in (HOME, OUT_OF_SERVICE):
            return True
        return self._language != "zh" or self._elderly

    def _busy(self) -> bool:
        return self._journey is not None and self._journey.busy is not None

    def _rearm(self, *, force: bool = False) -> None:
        was_visible = self._shown[0]
        self._deadline_s = self._clock.monotonic() + self._timeout_s()
        if was_visible or force:
            self._shown = (False, 0)
            self._changed()

    def _expire(self) -> None:
        log.info("session timed out on %s", self._active.value)
        self._home()

    def _start(self, kind: JourneyKind, start: JourneyStart) -> None:
        self._drop_journey()
        self._notice = None
        journey = self._journeys[kind](start)
        self._active = kind
        self._journey = journey
        self._unsubscribe = journey.subscribe(self._journey_changed)
        self._rearm(force=True)
        self._speak()
        if journey.ended is not None:  # it ended while starting (e.g. an inline worker)
            self._journey_changed(journey)

    def _start_staff(self, identity: Identity) -> None:
        if JourneyKind.STAFF not in self._journeys:
            return
        self._start(JourneyKind.STAFF, JourneyStart(self.page_size, identity=identity))

    def _journey_changed(self, journey: Any) -> None:
        current = self._journey
        if current is None or journey is not current:
            return  # a flow dropped already (its wipe notifies once more)
        self._deadline_s = self._clock.monotonic() + self._timeout_s()
        end = current.ended
        if end is None:
            self._speak()
            self._changed()
            return
        self._drop_journey()
        if isinstance(end, Finished) and end.evaluate:
            self.offer_evaluation(end.service, end.reference)
        elif isinstance(end, HandOver):
            self._hand_over(end)
        else:
            assert isinstance(end, Finished | Cancelled)
            self._home()

    def _hand_over(self, end: HandOver) -> None:
        # With a staff_lock the journey wrote the change to it before handing over, and
        # _home() follows it; without one (tests, tools) the lock lives in memory only.
        if end.to is OUT_OF_SERVICE:  # the staff journey locked the kiosk
            if self._staff_locks is None:
                self._staff_lock = Lock(STAFF_LOCKED, self._settings.where_instead)
            self._home()
            return
        if end.to is HOME:  # the staff journey unlocked it: the staff lock, not an ops lock
            if self._staff_locks is None:
                self._staff_lock = None
            self._home()
            if self._ops_lock is not None:
                self._set_notice(Notice(OPS_LOCK_STAYS, "ops_locked"))
            return
        tile = next((t for t, spec in TILES.items() if spec.journey is end.to), None)
        blocked = self._tile_blocked(tile) if tile is not None else None
        if end.to not in self._journeys or blocked is not None:
            self._home()
            self._set_notice(Notice(blocked or Msg.of("Please ask staff for help."), "handover"))
            return
        start = JourneyStart(self.page_size, self._elderly, area=end.area, identity=end.identity)
        self._start(end.to, start)

    def _code_on_home(self, text: str) -> None:
        if parse_receipt_no(text) is not None and JourneyKind.STATUS in self._journeys:
            kind, tile = JourneyKind.STATUS, TileId.STATUS
        elif parse_booking_code(text) is not None and JourneyKind.CHECKIN in self._journeys:
            kind, tile = JourneyKind.CHECKIN, TileId.CHECKIN
        else:
            self._set_notice(Notice(Msg.of("This code is not recognised here."), "unknown_code"))
            return
        blocked = self._tile_blocked(tile)
        if blocked is not None:
            self._set_notice(Notice(blocked, "tile_disabled"))
            return
        self._start(kind, JourneyStart(self.page_size, self._elderly, code=text))

    def _drop_journey(self) -> None:
        """Forget the journey on screen, and every personal datum it held."""
        journey, self._journey = self._journey, None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if journey is not None:
            journey.wipe()

    def _follow_staff_lock(self) -> None:
        """The clerk's lock as ``staff_lock`` holds it (on disk); unchanged without one."""
        if self._staff_locks is None:
            return
        state = self._staff_locks.state()
        if state is None:
            self._staff_lock = None
        else:
            where = self._settings.where_instead
            self._staff_lock = Lock(STAFF_LOCKED, where, state.staff_id, state.since)

    def _home(self) -> None:
        self._follow_staff_lock()
        self._drop_journey()
        self._notice = None
        self._language = "zh"
        self._elderly = False
        self._spoken = None
        self._active = OUT_OF_SERVICE if self.out_of_service_reason else HOME
        self._rearm(force=True)

    def _settle(self) -> None:
        """Home and out of service follow the lock and the faults; journeys run to their end."""
        if self._active is HOME and self.out_of_service_reason:
            self._active = OUT_OF_SERVICE
        elif self._active is OUT_OF_SERVICE and not self.out_of_service_reason:
            self._active = HOME
        self._changed()

    def _current_lock(self) -> Lock | None:
        return self._ops_lock or self._staff_lock

    def _tile_blocked(self, tile: TileId) -> Text | None:
        lock = self._current_lock()
        if lock is not None:
            return lock.reason
        spec = TILES[tile]
        for component in sorted(spec.needs):
            if component in self._faults:
                return self._faults[component].reason
        if spec.needs_any and all(c in self._faults for c in spec.needs_any):
            return self._faults[min(spec.needs_any)].reason
        return None

    def _set_notice(self, notice: Notice) -> None:
        self._notice = notice
        self._changed()
        if self._elderly:
            self._say(notice.text)

    def _speak(self) -> None:
        """Elderly mode: say the journey's notice or prompt when it changes."""
        journey = self._journey
        if not self._elderly:
            return
        if journey is None:
            if self._active is HOME and self._spoken is None:
                self._say(HOME_PROMPT)
            return
        notice = getattr(journey, "notice", None)
        text: Text | None = notice.text if isinstance(notice, Notice) else journey.prompt
        if text is not None and text != self._spoken:
            self._say(text)

    def _say(self, text: Text) -> None:
        self._spoken = text
        if self._voice is None or self._translate is None:
            return
        try:
            self._voice.say(self._translate(text, self._language), self._language)
        except VoiceError as exc:  # a missing speaker must not stop the applicant
            log.warning("voice prompt not spoken: %s", exc)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            listener(self)


def plain_translator(text: Text, language: Language) -> str:
    """A translator without a catalog: Bilingual by language, a Msg as its English source.
    For tests and tools; the app passes its gettext catalog instead."""
    if isinstance(text, Bilingual):
        return text.zh if language == "zh" else text.en
    return text.msgid.format(**dict(text.params))
