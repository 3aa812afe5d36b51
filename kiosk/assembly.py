"""Puts the kiosk together without the screen: services, devices, journeys, the session, and the
bridges that carry hardware and network callbacks onto the UI thread.

    kiosk = assemble(settings, worker, post)       # post: run a callable on the UI thread
    kiosk.start()                                   # card watch, scanner, locker events, health
    kiosk.session.start(TileId.TICKET)
    kiosk.close()

Every callback that comes from a device thread (a card read, a scan, a door event, an upload's
progress, a printer's health) goes through ``post``: the Kivy app passes
``Clock.schedule_once``, so they reach the session and the flows only on the Kivy main thread
(DESIGN §4 "UI thread"); tests pass their own queue. Nothing here imports Kivy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from drivers.identity import CardInserted, CardRemoved, WatchCallbacks
from drivers.identity.errors import IdentityReaderError
from drivers.scanner.errors import ScannerError, ScannerTimeout, ScanRejected
from hallkiosk.clock import Clock
from kiosk.flows.base import Bilingual, Msg, Notice, Worker
from kiosk.flows.checkin import CheckinSettings
from kiosk.flows.home import Component, Journey, JourneyKind, JourneyStart
from kiosk.flows.pickup import HelpRequest, PickupFlow
from kiosk.flows.prereview import PreReviewFlow
from kiosk.flows.printing import UnprintedTicket
from kiosk.flows.selftest import SelfTest
from kiosk.flows.session import KioskParts, KioskSession, SessionSettings, standard_journeys
from kiosk.flows.staff import RememberingPrinter, StaffFlow, StaffPinGuard
from kiosk.flows.ticket import TicketSettings
from kiosk.hardware import KioskDevices, open_devices
from kiosk.health import KioskHealth, read_devices
from kiosk.runtime import KioskRuntime, start_runtime
from kiosk.services.hall_service import HallCaseDirectory, HallGateway
from kiosk.services.locker_gateway import LockerEvent, LockerGateway, Unavailable
from kiosk.settings import KioskSettings

log = logging.getLogger(__name__)

Post = Callable[[Callable[[], None]], None]
Translate = Callable[[Any, Any], str]

HEALTH_INTERVAL_S = 5.0  # how often the printer and reader are asked how they are
SCAN_POLL_S = 0.5  # the scanner thread's read timeout, so it notices stop() promptly
CODE_NOT_RECOGNISED = Msg.of("This code cannot be read here. Please check it and try again.")
PRINTER_DOWN = Msg.of("The ticket printer is not working. Please ask staff for a ticket.")
READER_DOWN = Msg.of("The ID card reader is not working. Please ask staff for help.")


@dataclass
class Kiosk:
    """Everything the kiosk runs, assembled; ``close`` stops it in reverse order."""

    settings: KioskSettings
    runtime: KioskRuntime
    devices: KioskDevices
    printer: RememberingPrinter
    locker: LockerGateway | None
    session: KioskSession
    post: Post
    health: KioskHealth = field(init=False)  # devices and session, for the hall's telemetry
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _closers: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __post_init__(self) -> None:
        has_locker = self.locker is not None
        self.health = KioskHealth(has_locker=has_locker, on_change=self.runtime.telemetry.changed)

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the device bridges: card watch, scanner reader, locker events, health."""
        self.devices.identity.start_watch(
            WatchCallbacks(
                on_inserted=self._card_inserted,
                on_removed=self._card_removed,
                on_error=self._reader_error,
            )
        )
        self._closers.callback(self.devices.identity.stop_watch)
        self.devices.scanner.start()
        self._thread("kiosk-scanner", self._scanner_loop)
        self._thread("kiosk-health", self._health_loop)
        if self.locker is not None:
            subscription = self.locker.subscribe(self._locker_event, on_connection=self._locker_up)
            self._closers.callback(subscription.close)
        unsubscribe = self.runtime.hall.on_upload_progress(self._upload_progress)
        self._closers.callback(unsubscribe)
        # ops: the ops lock reaches the session on the UI thread; telemetry reads self.health
        ops_lock = self.runtime.ops_lock
        self._closers.callback(ops_lock.subscribe(lambda _s: self.post(self._apply_ops_lock)))
        self.post(self._apply_ops_lock)  # a command may have come since assemble()
        self._closers.callback(self.session.subscribe(self.health.record_session))
        self.post(lambda: self.health.record_session(self.session))
        self.runtime.telemetry.set_source(self.health)
        self._closers.callback(self.runtime.telemetry.set_source, None)

    def close(self) -> None:
        self._stop.set()
        self._closers.close()
        for thread in self._threads:
            thread.join(timeout=5)
        self.session.go_home()  # wipes whatever journey was on screen
        with contextlib.suppress(Exception):
            self.devices.close()
        self.runtime.close()

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- device callbacks (device threads) -> the UI thread ---------------------------------

    def _card_inserted(self, event: CardInserted) -> None:
        identity = event.identity
        self.post(lambda: self.session.card_read(identity))

    def _card_removed(self, _event: CardRemoved) -> None:
        return  # a journey keeps what it read; the idle timeout wipes it

    def _reader_error(self, error: IdentityReaderError) -> None:
        log.warning("card reader: %s", error.code)
        notice = Notice(Bilingual.from_error(error), code=error.code)
        self.post(lambda: self.session.notify(notice))

    def _scanner_loop(self) -> None:
        scanner = self.devices.scanner
        while not self._stop.is_set():
            try:
                scan = scanner.read(timeout_s=SCAN_POLL_S)
            except ScannerTimeout:
                continue
            except ScanRejected as exc:
                # the content may be personal data: only the reason is logged
                log.info("scan refused: %s", exc.code)
                notice = Notice(CODE_NOT_RECOGNISED, code=exc.code)
                self.post(lambda n=notice: self.session.notify(n))  # type: ignore[misc]
                continue
            except ScannerError as exc:
                log.warning("scanner: %s", exc.code)
                self._stop.wait(SCAN_POLL_S)
                continue
            value = scan.value
            self.post(lambda v=value: self.session.code_scanned(v))  # type: ignore[misc]

    def _health_loop(self) -> None:
        while True:
            self._check_health()
            if self._stop.wait(HEALTH_INTERVAL_S):
                return

    def _check_health(self) -> None:
        reading = read_devices(self.devices)  # never raises: a fault is a reading
        self.health.record_devices(reading)
        printer_ok, reader_ok = reading.printer_ok, reading.id_reader_present

        def apply() -> None:
            for component, ok, reason in (
                (Component.PRINTER, printer_ok, PRINTER_DOWN),
                (Component.CARD_READER, reader_ok, READER_DOWN),
            ):
                if ok and component in self.session.faults:
                    self.session.hardware_recovered(component)
                elif not ok and component not in self.session.faults:
                    # critical: only the card reader, without which no journey can start
                    critical = component is Component.CARD_READER
                    self.session.hardware_failed(component, critical, reason)

        self.post(apply)

    def _locker_event(self, event: LockerEvent) -> None:
        bay, door = event.bay_id, event.door
        if bay is None or door not in ("open", "closed"):
            return

        def deliver() -> None:
            journey = self.session.journey
            handler = getattr(journey, "door_opened" if door == "open" else "door_closed", None)
            if callable(handler):
                handler(bay)

        self.post(deliver)

    def _apply_ops_lock(self) -> None:
        """UI thread: the session follows the ops lock as it is now (so the last post wins)."""
        state = self.runtime.ops_lock.state()
        if state is not None:
            self.session.lock(state.reason, state.where_instead)
        elif self.session.ops_locked:
            self.session.unlock()

    def _locker_up(self, up: bool) -> None:
        def apply() -> None:
            if up:
                self.session.hardware_recovered(Component.LOCKER)
            else:
                self.session.hardware_failed(
                    Component.LOCKER, False, Bilingual.from_error(Unavailable("lockerd"))
                )

        self.post(apply)

    def _upload_progress(self, progress: Any) -> None:
        def deliver() -> None:
            handler = getattr(self.session.journey, "upload_progressed", None)
            if callable(handler):
                handler(progress.file_index, progress.files_total)

        self.post(deliver)


def report_unprinted(hall: HallGateway, unprinted: UnprintedTicket) -> None:
    """A number the applicant did not get on paper (any thread). A new ticket is voided: the
    ``ticket_voided`` event (with the ticket's fields) takes it out of the hall's queue and the
    kiosk forgets it. A failed reprint voids nothing: the first slip is still valid. Either
    way ``ticket_not_printed`` tells staff the printer failed; ``voided`` false means the
    number is still in the queue and staff skip it."""
    voided = False
    if not unprinted.reprint:
        voided = hall.record_ticket_voided(
            ticket_id=unprinted.ticket_id,
            label=unprinted.label,
            category=unprinted.category,
            partly_printed=unprinted.partly_printed,
            error=unprinted.error_code,
        )
    hall.record_alarm(
        "ticket_not_printed",
        unprinted.label,
        {
            "ticket_id": unprinted.ticket_id,
            "error": unprinted.error_code,
            "partly_printed": unprinted.partly_printed,  # a torn slip with the number may be out
            "voided": voided,
        },
    )


def report_help(hall: HallGateway, request: HelpRequest) -> None:
    """The applicant asked for staff at the locker (no personal data in it)."""
    hall.record_alarm(
        "help_requested",
        request.bay_id or "",
        {"reason": request.reason, "deposit_id": request.deposit_id},
    )


def assemble(
    settings: KioskSettings,
    worker: Worker,
    post: Post,
    *,
    clock: Clock | None = None,
    translate: Translate | None = None,
    background: bool = True,
) -> Kiosk:
    """Build the kiosk from ``settings``; the caller starts it with ``start()``."""
    kiosk_cfg = settings.kiosk
    with contextlib.ExitStack() as stack:
        runtime = start_runtime(settings, clock=clock, background=background)
        stack.callback(runtime.close)
        devices = open_devices(settings)
        stack.callback(devices.close)
        clock = runtime.clock
        printer = RememberingPrinter(devices.printer)
        locker: LockerGateway | None = None
        socket_path = settings.locker_socket_path
        if socket_path is not None:
            locker = LockerGateway.connect(str(socket_path), timeout_s=kiosk_cfg.locker.timeout_s)
        guard = StaffPinGuard(clock)
        parts = KioskParts(
            worker=worker,
            clock=clock,
            hall=runtime.hall,
            printer=printer,
            ticket_settings=TicketSettings(elderly_age_years=kiosk_cfg.elderly.age),
            checkin_settings=CheckinSettings(),
            on_print_failed=partial(report_unprinted, runtime.hall),
        )
        journeys = standard_journeys(parts)
        self_test = SelfTest(
            printer=printer,
            reader=devices.identity,
            scanner=devices.scanner,
            camera=devices.camera,
            locker=locker,
            voice=devices.voice,
        )

        def prereview(start: JourneyStart) -> Journey:
            return PreReviewFlow(
                worker,
                runtime.hall,
                devices.camera,
                printer,
                page_size=start.page_size,
                identity=start.identity,
            )

        def staff(start: JourneyStart) -> Journey:
            assert locker is not None  # the session offers staff only with a locker (below)
            flow = StaffFlow(
                worker,
                clock,
                locker,
                devices.identity,
                guard,
                cases=HallCaseDirectory(runtime.hall),  # case.lookup, else the card
                printer=printer,
                self_test=self_test,
                kiosk_locks=runtime.staff_lock,  # on disk before the screen says so
                page_size=start.page_size,
            )
            if start.identity is not None:
                flow.card_read(start.identity)
            return flow

        def pickup(start: JourneyStart) -> Journey:
            assert locker is not None
            return PickupFlow(
                worker,
                locker,
                page_size=start.page_size,
                identity=start.identity,
                on_help=partial(report_help, runtime.hall),
            )

        journeys[JourneyKind.PREREVIEW] = prereview
        if locker is not None:
            journeys[JourneyKind.PICKUP] = pickup
            journeys[JourneyKind.STAFF] = staff
        session = KioskSession(
            clock,
            journeys,
            settings=SessionSettings(
                idle_timeout_s=kiosk_cfg.idle.normal_s,
                elderly_idle_timeout_s=kiosk_cfg.idle.elderly_s,
            ),
            voice=devices.voice,
            translate=translate,
            staff_lock=runtime.staff_lock,  # restarted while a clerk had it locked: locked
        )
        kiosk = Kiosk(settings, runtime, devices, printer, locker, session, post)
        kiosk._apply_ops_lock()  # restarted while ops-locked: locked from the first frame
        stack.pop_all()
        return kiosk
    raise AssertionError("unreachable")  # pragma: no cover
