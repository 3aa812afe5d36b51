"""The session and router: tiles, idle timeout, language, elderly mode with the simulated voice,
card and code dispatch, hand-overs, evaluation offers, out of service. The ticket, check-in,
status and evaluation journeys are the real ones (real hall, printer simulator); pickup,
pre-review and staff are stand-ins here (their own tests cover them)."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum

import pytest

from drivers.identity.types import Identity
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import PaperOut
from drivers.voice import VoiceSettings
from drivers.voice.sim import SimVoice
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.flows.base import Bilingual, Flow, FlowStateError, InlineWorker, Msg, QueueWorker, Text
from kiosk.flows.checkin import CheckinFlow, CheckinState
from kiosk.flows.evaluation import EvaluationFlow
from kiosk.flows.home import (
    Cancelled,
    Component,
    Finished,
    HandOver,
    JourneyEnd,
    JourneyFactory,
    JourneyKind,
    JourneyStart,
    TileId,
)
from kiosk.flows.printing import UnprintedTicket
from kiosk.flows.session import (
    OPS_LOCK_STAYS,
    STAFF_LOCKED,
    KioskParts,
    KioskSession,
    Language,
    SessionSettings,
    plain_translator,
    standard_journeys,
)
from kiosk.flows.status import StatusFlow, StatusState
from kiosk.flows.ticket import TicketFlow, TicketState
from tests.drivers.printer.conftest import PrinterSimHandle
from tests.kiosk.flows.conftest import (
    BOOK_0930,
    BOOK_EARLY,
    BORN_60_TOMORROW,
    YOUNG,
    Rig,
    printed_texts,
    read_card,
    read_citizen_card,
    submit_prereview,
)

K = JourneyKind
SETTINGS = SessionSettings(
    idle_timeout_s=60, elderly_idle_timeout_s=120, countdown_s=15, page_size=2, elderly_page_size=1
)


class StandInState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class StandIn(Flow[StandInState]):
    """Another helper's journey (pickup, pre-review, staff) as the session sees it."""

    name = "stand_in"

    def __init__(self, start: JourneyStart) -> None:
        super().__init__(InlineWorker(), StandInState.OPEN)
        self.start = start
        self.cards: list[Identity] = []
        self._ended: JourneyEnd | None = None

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def prompt(self) -> Msg | None:
        return Msg.of("Stand-in prompt.")

    def card_read(self, identity: Identity) -> bool:
        self.cards.append(identity)
        return True

    def end(self, how: JourneyEnd) -> None:
        self._ended = how
        self.wipe()

    def wipe(self) -> None:
        self.start = JourneyStart(0)
        self.cards.clear()
        self._state = StandInState.CLOSED
        super().wipe()


class StandIns:
    def __init__(self) -> None:
        self.made: list[StandIn] = []

    def factory(self, start: JourneyStart) -> StandIn:
        made = StandIn(start)
        self.made.append(made)
        return made


ZH = {
    "Please choose the business you came for.": "请选择您要办理的业务。",
    "Please choose the service you need.": "请选择您要办理的事项。",
}


def zh_catalog(text: Text, language: Language) -> str:
    """A two-entry catalog standing in for the UI's gettext catalog."""
    if isinstance(text, Msg) and language == "zh" and text.msgid in ZH:
        return ZH[text.msgid]
    return plain_translator(text, language)


@pytest.fixture
def voice() -> Iterator[SimVoice]:
    made = SimVoice(VoiceSettings(backend="sim", sim_chars_per_s=10_000.0))
    yield made
    made.close()


@pytest.fixture
def unprinted() -> list[UnprintedTicket]:
    return []


@pytest.fixture
def stand_ins() -> StandIns:
    return StandIns()


def build(
    rig: Rig,
    stand_ins: StandIns,
    unprinted: list[UnprintedTicket],
    *,
    worker: InlineWorker | QueueWorker | None = None,
    voice: SimVoice | None = None,
    others: tuple[JourneyKind, ...] = (K.PICKUP, K.PREREVIEW, K.STAFF),
) -> KioskSession:
    parts = KioskParts(
        worker or rig.inline,
        rig.clock,
        rig.hall_service,
        rig.printer,
        on_print_failed=unprinted.append,
    )
    journeys: dict[JourneyKind, JourneyFactory] = standard_journeys(parts)
    for kind in others:
        journeys[kind] = stand_ins.factory
    return KioskSession(rig.clock, journeys, settings=SETTINGS, voice=voice, translate=zh_catalog)


@pytest.fixture
def session(
    rig: Rig, stand_ins: StandIns, unprinted: list[UnprintedTicket], voice: SimVoice
) -> KioskSession:
    return build(rig, stand_ins, unprinted, voice=voice)


def ticket_flow(session: KioskSession) -> TicketFlow:
    assert isinstance(session.journey, TicketFlow)
    return session.journey


def enabled(session: KioskSession) -> dict[TileId, bool]:
    return {t.id: t.enabled for t in session.tiles}


# -- home ------------------------------------------------------------------------------------------


def test_home_tiles_and_clock(session: KioskSession, clock: ManualClock) -> None:
    assert session.active is K.HOME and session.journey is None
    assert [t.id for t in session.tiles] == [
        TileId.TICKET,
        TileId.CHECKIN,
        TileId.PREREVIEW,
        TileId.STATUS,
        TileId.PICKUP,
    ]
    assert all(enabled(session).values())
    assert session.tiles[0].title == Msg.of("Take a queue ticket")
    assert session.now() == clock.now()
    assert (session.language, session.elderly, session.page_size) == ("zh", False, 2)


def test_tiles_of_journeys_not_installed_are_not_shown(
    rig: Rig, stand_ins: StandIns, unprinted: list[UnprintedTicket]
) -> None:
    bare = build(rig, stand_ins, unprinted, others=())
    assert [t.id for t in bare.tiles] == [TileId.TICKET, TileId.CHECKIN, TileId.STATUS]


def test_listeners_see_journey_switches(session: KioskSession) -> None:
    seen: list[JourneyKind] = []
    unsubscribe = session.subscribe(lambda s: seen.append(s.active))
    session.start(TileId.STATUS)
    session.go_home()
    assert seen[0] is K.STATUS and seen[-1] is K.HOME
    unsubscribe()
    count = len(seen)
    session.start(TileId.STATUS)
    assert len(seen) == count
    with pytest.raises(FlowStateError):
        session.start(TileId.TICKET)  # tiles are on home only


# -- a ticket, then the evaluation offer -----------------------------------------------------------


def test_ticket_then_evaluation_then_home(
    session: KioskSession, hall: Hall, printer_sim: PrinterSimHandle
) -> None:
    session.set_language("en")
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    assert flow.view.page_count == 2  # the session's page size
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    flow.skip_card()
    shown = flow.view.ticket
    assert shown is not None and "A001" in printed_texts(printer_sim)
    flow.finish()
    assert session.active is K.EVALUATION and session.language == "en"  # the same person
    evaluation = session.journey
    assert isinstance(evaluation, EvaluationFlow)
    assert (evaluation.service, evaluation.reference) == ("ticket", shown.ticket_id)
    assert flow.state is TicketState.CLOSED
    evaluation.choose_level(5)
    evaluation.submit()
    evaluation.finish()
    assert session.active is K.HOME and session.journey is None and session.language == "zh"


def test_cancel_goes_home_and_the_journey_is_wiped(
    session: KioskSession, id_reader: SimIdentityReader
) -> None:
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    session.card_read(read_citizen_card(id_reader, YOUNG))
    assert flow.view.card_name == "张*三"
    flow.cancel()
    assert flow.ended == Cancelled()
    assert session.active is K.HOME and flow._d.identity is None


def test_offer_evaluation_directly(session: KioskSession) -> None:
    session.offer_evaluation("pickup", "deposit-7")
    assert session.active is K.EVALUATION
    evaluation = session.journey
    assert isinstance(evaluation, EvaluationFlow) and evaluation.reference == "deposit-7"
    evaluation.skip()
    assert session.active is K.HOME


def test_print_failure_reaches_the_apps_callback(
    session: KioskSession, printer_sim: PrinterSimHandle, unprinted: list[UnprintedTicket]
) -> None:
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    flow.choose_area("business")
    flow.choose_type("biz-consult")
    printer_sim.control.run_out_after(2)
    flow.skip_card()
    assert flow.state is TicketState.PRINT_FAILED
    assert [u.label for u in unprinted] == ["J001"]
    flow.finish()
    assert session.active is K.HOME  # no evaluation offered: the applicant needs staff


# -- the idle timeout ------------------------------------------------------------------------------


def test_timeout_counts_down_then_wipes_and_resets(
    session: KioskSession, clock: ManualClock, id_reader: SimIdentityReader
) -> None:
    session.set_language("en")
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    flow.choose_area("real-estate")
    card = read_citizen_card(id_reader, YOUNG)
    session.card_read(card)
    assert flow._d.identity == card

    clock.advance(44)
    session.tick()
    assert not session.countdown_visible
    clock.advance(1)
    session.tick()
    assert session.countdown_visible and session.seconds_left == 15
    session.more_time()
    assert not session.countdown_visible and session.seconds_left == 60
    clock.advance(50)
    session.touched()  # any touch pushes the deadline too
    clock.advance(50)
    session.tick()
    assert session.active is K.TICKET and session.countdown_visible
    clock.advance(10)
    session.tick()

    assert session.active is K.HOME and session.journey is None
    assert (session.language, session.elderly) == ("zh", False)
    assert flow.state is TicketState.CLOSED and flow.ended is None
    assert flow._d.identity is None and flow._d.area is None and flow.view.card_name is None
    assert card.id_hash is not None and card.id_hash not in repr(vars(flow))
    assert not session.countdown_visible


def test_a_fresh_home_page_never_times_out_but_a_changed_one_does(
    session: KioskSession, clock: ManualClock
) -> None:
    clock.advance(1000)
    session.tick()
    assert session.active is K.HOME and not session.countdown_visible
    session.set_elderly(True)
    clock.advance(110)
    session.tick()
    assert session.countdown_visible  # 120 s in elderly mode
    clock.advance(10)
    session.tick()
    assert not session.elderly and session.page_size == 2


def test_no_timeout_while_the_kiosk_works(
    rig: Rig, queued: QueueWorker, stand_ins: StandIns, unprinted: list[UnprintedTicket]
) -> None:
    clock = rig.clock
    session = build(rig, stand_ins, unprinted, worker=queued)
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    assert flow.busy is not None
    clock.advance(300)
    session.tick()
    assert session.active is K.TICKET and not session.countdown_visible
    queued.pump()
    assert flow.state is TicketState.CHOOSE_AREA
    clock.advance(59)
    session.tick()
    assert session.active is K.TICKET  # the deadline starts when the job is done
    clock.advance(1)
    session.tick()
    assert session.active is K.HOME


def test_home_button_waits_for_a_job(
    rig: Rig, queued: QueueWorker, stand_ins: StandIns, unprinted: list[UnprintedTicket]
) -> None:
    session = build(rig, stand_ins, unprinted, worker=queued)
    session.start(TileId.STATUS)
    status = session.journey
    assert isinstance(status, StatusFlow)
    session.code_scanned("YS2026112300001")
    assert status.busy is not None
    session.go_home()
    assert session.active is K.STATUS and session.notice is not None
    assert session.notice.code == "busy"
    queued.pump()
    session.go_home()
    assert session.active is K.HOME and session.notice is None


# -- elderly mode and voice ------------------------------------------------------------------------


def test_elderly_mode_pages_and_speaks(session: KioskSession, voice: SimVoice) -> None:
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    assert voice.history == []  # voice only in elderly mode
    session.set_elderly(True)
    assert session.page_size == 1 and flow.view.page_count == 3  # resized in the journey
    said = [(u.text, u.lang) for u in voice.history]
    assert said == [("请选择您要办理的业务。", "zh")]
    session.set_language("en")
    assert voice.history[-1].text == "Please choose the business you came for."
    assert voice.history[-1].lang == "en"
    flow.choose_area("business")
    assert voice.history[-1].text.startswith("Please choose: submit documents")
    session.go_home()
    assert not session.elderly and session.language == "zh"


def test_elderly_mode_on_home_speaks_the_home_prompt_and_starts_with_fewer_choices(
    session: KioskSession, voice: SimVoice
) -> None:
    session.set_elderly(True)
    assert [u.text for u in voice.history] == ["请选择您要办理的事项。"]
    session.start(TileId.TICKET)
    assert ticket_flow(session).view.page_count == 3


def test_elderly_mode_speaks_notices_in_the_halls_or_printers_words(
    session: KioskSession, voice: SimVoice, rig: Rig
) -> None:
    session.set_elderly(True)
    session.set_language("en")
    rig.printer_sim.control.pull_paper()
    session.start(TileId.TICKET)
    assert ticket_flow(session).state is TicketState.UNAVAILABLE
    assert voice.history[-1].text == "The printer is out of paper. Please contact staff."
    session.go_home()  # elderly mode and English end with the session
    session.card_read(read_citizen_card(rig.id_reader, YOUNG))
    assert session.notice is not None and session.notice.code == "choose_first"
    assert len(voice.history) == 3  # home prompt (zh, then en), the notice; nothing after


def test_voice_failure_does_not_stop_the_applicant(session: KioskSession, voice: SimVoice) -> None:
    voice.close()
    session.set_elderly(True)
    session.start(TileId.TICKET)
    assert session.active is K.TICKET


# -- cards and codes -------------------------------------------------------------------------------


def test_card_dispatch(
    session: KioskSession, id_reader: SimIdentityReader, hall: Hall, stand_ins: StandIns
) -> None:
    card = read_citizen_card(id_reader, YOUNG)
    session.card_read(card)
    assert session.notice is not None and session.notice.code == "choose_first"
    session.dismiss_notice()
    session.start(TileId.PICKUP)
    assert stand_ins.made[-1].start.page_size == 2
    session.card_read(card)
    assert stand_ins.made[-1].cards == [card]
    session.go_home()
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    flow.choose_area("social-security")
    flow.choose_type("ss-submit")
    flow.skip_card()
    session.card_read(card)  # the DONE screen takes no card
    assert session.notice is not None and session.notice.code == "not_taken"
    session.code_scanned("anything")  # nor codes
    assert session.notice.code == "not_taken"


def test_codes_on_home_start_the_right_journey(
    session: KioskSession, hall: Hall, id_reader: SimIdentityReader
) -> None:
    session.code_scanned(f"HK1:B:{BOOK_0930}")
    checkin = session.journey
    assert isinstance(checkin, CheckinFlow) and checkin.state is CheckinState.DONE
    assert hall.appointments.get(BOOK_0930).status == "checked_in"
    session.go_home()

    card = read_citizen_card(id_reader, YOUNG)
    assert card.id_hash is not None
    receipt = submit_prereview(hall, card.id_hash)
    session.code_scanned(f"hallkiosk:receipt:{receipt}")
    status = session.journey
    assert isinstance(status, StatusFlow) and status.state is StatusState.DETAIL
    session.go_home()

    session.code_scanned("https://example.org/nothing")
    assert session.active is K.HOME
    assert session.notice is not None and session.notice.code == "unknown_code"


def test_a_lapsed_booking_hands_over_to_a_ticket_of_its_area(
    session: KioskSession, hall: Hall, id_reader: SimIdentityReader
) -> None:
    session.start(TileId.CHECKIN)
    checkin = session.journey
    assert isinstance(checkin, CheckinFlow)
    card = read_citizen_card(id_reader, BORN_60_TOMORROW)
    session.card_read(card)
    assert checkin.state is CheckinState.FORFEITED
    assert hall.appointments.get(BOOK_EARLY).status == "no_show"
    checkin.take_normal_ticket()
    assert session.active is K.TICKET
    flow = ticket_flow(session)
    assert flow.state is TicketState.CHOOSE_TYPE and flow.view.card_name == "张*三"
    assert flow.view.area is not None and flow.view.area.area == "social-security"
    flow.choose_type("ss-submit")  # the card from the check-in: no second read
    shown = flow.view.ticket
    assert shown is not None and hall.queue.get(shown.ticket_id).identity_hash == card.id_hash


# -- hardware faults and out of service ------------------------------------------------------------


def test_paper_out_disables_only_ticket_taking_tiles(session: KioskSession) -> None:
    reason = Bilingual.from_error(PaperOut("paper end"))
    session.hardware_failed(Component.PRINTER, critical=False, reason=reason)
    tiles = {t.id: t for t in session.tiles}
    assert not tiles[TileId.TICKET].enabled and tiles[TileId.TICKET].reason == reason
    assert not tiles[TileId.CHECKIN].enabled
    assert tiles[TileId.STATUS].enabled and tiles[TileId.PICKUP].enabled
    session.start(TileId.TICKET)
    assert session.active is K.HOME
    assert session.notice is not None and session.notice.text == reason
    session.code_scanned(f"HK1:B:{BOOK_0930}")  # a check-in prints too
    assert session.active is K.HOME and session.notice.code == "tile_disabled"
    session.hardware_recovered(Component.PRINTER)
    assert all(enabled(session).values())


def test_card_reader_down_disables_tiles_needing_an_id(session: KioskSession) -> None:
    session.hardware_failed(Component.CARD_READER, critical=False)
    tiles = {t.id: t for t in session.tiles}
    assert not tiles[TileId.PICKUP].enabled and not tiles[TileId.PREREVIEW].enabled
    assert tiles[TileId.PICKUP].reason == Msg.of("The ID card reader is not working right now.")
    assert tiles[TileId.TICKET].enabled and tiles[TileId.STATUS].enabled  # QR still works
    session.hardware_failed(Component.SCANNER, critical=False)
    assert not enabled(session)[TileId.STATUS]
    assert session.active is K.HOME


def test_ops_lock_shows_where_to_go_and_a_clerk_card_still_gets_in(
    session: KioskSession, id_reader: SimIdentityReader, stand_ins: StandIns
) -> None:
    reason, where = Msg.of("Closed for maintenance."), Msg.of("Please use the kiosk at gate 2.")
    session.lock(reason, where)
    assert session.active is K.OUT_OF_SERVICE and session.locked
    assert (session.out_of_service_reason, session.where_instead) == (reason, where)
    assert not any(enabled(session).values())
    with pytest.raises(FlowStateError):
        session.start(TileId.TICKET)
    session.card_read(read_citizen_card(id_reader, YOUNG))
    assert session.active is K.OUT_OF_SERVICE  # applicants are not let in
    session.code_scanned(f"HK1:B:{BOOK_0930}")
    assert session.active is K.OUT_OF_SERVICE

    staff_card = read_card(id_reader, "staff")
    session.card_read(staff_card)
    assert session.active is K.STAFF
    staff = stand_ins.made[-1]
    assert staff.start.identity == staff_card
    staff.end(Finished("staff", evaluate=False))
    assert session.active is K.OUT_OF_SERVICE  # still locked
    session.unlock()
    assert session.active is K.HOME and session.out_of_service_reason is None


def test_the_clerk_journey_locks_and_unlocks_the_kiosk(
    session: KioskSession, id_reader: SimIdentityReader, stand_ins: StandIns
) -> None:
    staff_card = read_card(id_reader, "staff")
    session.card_read(staff_card)  # from home
    assert session.active is K.STAFF
    stand_ins.made[-1].end(HandOver(K.OUT_OF_SERVICE))
    assert session.active is K.OUT_OF_SERVICE and session.locked
    assert session.out_of_service_reason == Msg.of(
        "This kiosk has been taken out of service by staff."
    )
    session.card_read(staff_card)
    stand_ins.made[-1].end(HandOver(K.HOME))
    assert session.active is K.HOME and not session.locked


def test_a_clerks_unlock_on_site_leaves_the_ops_lock_and_tells_the_clerk_so(
    session: KioskSession, id_reader: SimIdentityReader, stand_ins: StandIns
) -> None:
    reason = Bilingual("设备维护", "Maintenance")
    session.lock(reason)  # ops, by signed command
    staff_card = read_card(id_reader, "staff")
    session.card_read(staff_card)
    assert session.active is K.STAFF
    stand_ins.made[-1].end(HandOver(K.HOME))  # the clerk's "Unlock this kiosk"
    assert session.active is K.OUT_OF_SERVICE and session.ops_locked and not session.staff_locked
    assert session.out_of_service_reason == reason
    assert session.notice is not None and session.notice.text == OPS_LOCK_STAYS
    assert session.notice.code == "ops_locked"
    assert not any(enabled(session).values())
    session.unlock()  # ops lift it
    assert session.active is K.HOME and not session.locked and session.out_of_service_reason is None


def test_an_ops_unlock_leaves_the_clerks_lock(
    session: KioskSession, id_reader: SimIdentityReader, stand_ins: StandIns
) -> None:
    staff_card = read_card(id_reader, "staff")
    session.card_read(staff_card)
    stand_ins.made[-1].end(HandOver(K.OUT_OF_SERVICE))  # the clerk locks: the screen is cracked
    ops_reason = Msg.of("Closed for maintenance.")
    session.lock(ops_reason)
    assert session.ops_locked and session.staff_locked
    assert session.out_of_service_reason == ops_reason  # while both hold, ops' words show
    session.unlock()
    assert session.active is K.OUT_OF_SERVICE and session.staff_locked and not session.ops_locked
    assert session.out_of_service_reason == STAFF_LOCKED
    session.card_read(staff_card)
    stand_ins.made[-1].end(HandOver(K.HOME))  # only the clerk lifts the clerk's lock
    assert session.active is K.HOME and not session.locked and session.notice is None


def test_a_lock_waits_for_the_journey_in_progress(
    session: KioskSession, printer_sim: PrinterSimHandle
) -> None:
    session.start(TileId.TICKET)
    flow = ticket_flow(session)
    flow.choose_area("social-security")
    session.lock(Msg.of("Closed for maintenance."))
    assert session.active is K.TICKET  # the applicant finishes
    flow.choose_type("ss-submit")
    flow.skip_card()
    assert flow.state is TicketState.DONE and "A001" in printed_texts(printer_sim)
    flow.finish()
    assert session.active is K.OUT_OF_SERVICE  # no evaluation offered on a locked kiosk
    assert session.where_instead == SETTINGS.where_instead


def test_critical_failure_takes_the_kiosk_out_of_service_until_it_recovers(
    session: KioskSession,
) -> None:
    session.hardware_failed(Component.PRINTER, critical=True)
    assert session.active is K.OUT_OF_SERVICE
    assert session.out_of_service_reason == Msg.of("The ticket printer is not working right now.")
    assert session.where_instead == SETTINGS.where_instead
    session.hardware_recovered(Component.PRINTER)
    assert session.active is K.HOME


def test_settings_are_range_checked() -> None:
    with pytest.raises(ValueError, match="countdown"):
        SessionSettings(idle_timeout_s=30, countdown_s=30)
    with pytest.raises(ValueError, match="page sizes"):
        SessionSettings(page_size=2, elderly_page_size=3)
    with pytest.raises(ValueError, match="idle"):
        SessionSettings(idle_timeout_s=5)


def test_language_is_zh_or_en(session: KioskSession) -> None:
    with pytest.raises(ValueError):
        session.set_language("fr")  # type: ignore[arg-type]
