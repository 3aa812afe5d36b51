"""Appointment check-in (预约签到): renders every ``CheckinFlow`` state.

CHECKING        the busy box over the journey's name
UNAVAILABLE     why (printer, hall) and where to go instead; Home
IDENTIFY        the three ways: ID card on the reader, booking QR at the scanner, or the
                booking number on the keypad (the only one that needs a touch)
ENTER_CODE      the on-screen keypad, bound to the flow's keypad model
CHOOSE_BOOKING  today's bookings as tiles (time, matter, place), paged
DONE            the priority ticket: number huge, people ahead big, the booking; Done
REPRINT_OFFER   checked in before: print the ticket again / no thanks
PRINT_FAILED    checked in, ticket not printed: ask staff; Done
TOO_EARLY       the hall's words and the booking's time; Back / Home
FORFEITED       the hall's words; take a normal ticket (hands over to the ticket journey)
NOT_FOUND       the hall's words; enter the number / take a normal ticket
REFUSED         the hall's or the kiosk's words; Back / Home
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from kivy.uix.widget import Widget

from kiosk.flows.base import Msg
from kiosk.flows.checkin import CheckinFlow, CheckinState, CheckinView
from kiosk.flows.home import JourneyKind
from kiosk.flows.ticket import TicketShown
from kiosk.services.hall_gateway import Booking
from kiosk.ui.context import UiContext
from kiosk.ui.screens.common_a import (
    BACK,
    DONE,
    HOME,
    WHERE_INSTEAD,
    JourneyScreen,
    act,
    main_actions,
)
from kiosk.ui.shell import ScreenFactory
from kiosk.ui.widgets import Keypad, TextLabel, Tile, TilePage, plain
from kiosk.ui.widgets.tiles import Paging

S = CheckinState

TITLE = Msg("Appointment check-in")
TAKE_NORMAL = Msg("Take a normal ticket")
ENTER_NUMBER = Msg("Enter the booking number")


def slot_text(booking: Booking) -> str:
    return f"{booking.slot_start:%H:%M}–{booking.slot_end:%H:%M}"


class CheckinScreen(JourneyScreen[CheckinFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.keypad: Keypad | None = None  # one per journey: its keys call that flow
        self._pages: dict[CheckinState, Callable[[CheckinFlow, CheckinView], None]] = {
            S.CHECKING: self._checking,
            S.UNAVAILABLE: self._unavailable,
            S.IDENTIFY: self._identify,
            S.ENTER_CODE: self._enter_code,
            S.CHOOSE_BOOKING: self._choose_booking,
            S.DONE: self._done,
            S.REPRINT_OFFER: self._reprint_offer,
            S.PRINT_FAILED: self._print_failed,
            S.TOO_EARLY: self._too_early,
            S.FORFEITED: self._forfeited,
            S.NOT_FOUND: self._not_found,
            S.REFUSED: self._refused,
            S.CLOSED: self._closed,
        }

    def attach(self, flow: CheckinFlow) -> None:
        self.keypad = None  # the previous journey's keys called the previous flow
        super().attach(flow)

    def detach(self) -> None:
        super().detach()
        self.keypad = None

    def render(self, flow: CheckinFlow) -> None:
        if self.keypad is not None:  # a digit typed: only the entry box changes
            view = flow.view
            self.keypad.show(view.code_prefix + view.code_entry, can_confirm=True)
        super().render(flow)

    def page_key(self, flow: CheckinFlow) -> object:
        view = replace(flow.view, code_entry="", code_complete=False)
        return (flow.state, view, flow.prompt, flow.notice, self.ctx.elderly)

    def build(self, flow: CheckinFlow) -> None:
        self._pages[flow.state](flow, flow.view)

    # -- pages ---------------------------------------------------------------------------------

    def _checking(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(self.title(TITLE))

    def _unavailable(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(Msg("Check-in is not possible right now.")),
            self.line(self.reason(flow, S.UNAVAILABLE)),
            self.line(WHERE_INSTEAD),
            nav=[self.nav_button(HOME, act(flow.cancel), "primary")],
        )

    def _identify(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(Msg("① ID card: place it on the card reader.")),
            self.line(Msg("② Booking QR code: hold it under the scanner.")),
            self.line(Msg("③ Booking number: touch the button below.")),
            main_actions(self, self.button(ENTER_NUMBER, act(flow.enter_code))),
            nav=[self.nav_button(HOME, act(flow.cancel))],
        )

    def _enter_code(self, flow: CheckinFlow, view: CheckinView) -> None:
        if self.keypad is None:
            self.keypad = Keypad(self.ctx, act(flow.press), act(flow.delete), act(flow.submit_code))
        keypad = self.keypad
        if keypad.parent is not None:
            keypad.parent.remove_widget(keypad)
        # the flow decides whether the code is complete (and says so): OK always answers
        keypad.show(view.code_prefix + view.code_entry, can_confirm=True)
        self.page(
            self.title(flow.prompt),
            self.line(
                Msg.of(
                    "It starts with {prefix}; type the digits after {prefix}.",
                    prefix=view.code_prefix,
                ),
                colour="text_muted",
            )
            if view.code_prefix
            else None,
            keypad,
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _choose_booking(self, flow: CheckinFlow, view: CheckinView) -> None:
        tiles = TilePage(self.ctx)
        tiles.show(
            [
                Tile(
                    plain(f"{slot_text(b)} {b.matter_name}"),
                    act(flow.choose, b.booking_code),
                    note=plain(b.place),
                )
                for b in view.bookings
            ],
            Paging(view.page, view.page_count, act(flow.prev_page), act(flow.next_page)),
        )
        self.page(
            self.title(flow.prompt),
            fill=tiles,
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _done(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(flow.prompt),
            *self._ticket(view.ticket),
            *self._booking(view.booking),
            nav=[self.nav_button(DONE, act(flow.finish), "primary")],
        )

    def _reprint_offer(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(flow.prompt),
            *self._ticket(view.ticket),
            main_actions(self, self.button(Msg("Print it again"), act(flow.reprint))),
            nav=[self.nav_button(Msg("No, thanks"), act(flow.cancel))],
        )

    def _print_failed(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(self.reason(flow, S.PRINT_FAILED)),
            nav=[self.nav_button(DONE, act(flow.finish), "primary")],
        )

    def _too_early(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(self.reason(flow, S.TOO_EARLY)),
            *self._booking(view.booking),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _forfeited(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(self.reason(flow, S.FORFEITED)),
            *self._booking(view.booking),
            main_actions(self, self.button(TAKE_NORMAL, act(flow.take_normal_ticket))),
            nav=[self.nav_button(HOME, act(flow.cancel))],
        )

    def _not_found(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(self.reason(flow, S.NOT_FOUND)),
            main_actions(
                self,
                self.button(ENTER_NUMBER, act(flow.enter_code), "secondary"),
                self.button(TAKE_NORMAL, act(flow.take_normal_ticket)),
            ),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _refused(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(
            self.title(Msg("Check-in did not work.")),
            self.line(self.reason(flow, S.REFUSED)),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _closed(self, flow: CheckinFlow, view: CheckinView) -> None:
        self.page(self.title(TITLE))

    # -- parts ---------------------------------------------------------------------------------

    def _ticket(self, ticket: TicketShown | None) -> list[Widget | None]:
        if ticket is None:
            return []
        return [self.hero(ticket.label), self.line(ticket.queue_text, role="display")]

    def _booking(self, booking: Booking | None) -> list[TextLabel]:
        """What was booked, as the hall has it (Chinese: the booking platform's own texts)."""
        if booking is None:
            return []
        return [
            self.line(
                Msg.of(
                    "Booked: {time} {matter}", time=slot_text(booking), matter=booking.matter_name
                )
            ),
            self.line(Msg.of("Place: {place}", place=booking.place)),
        ]


SCREENS: dict[str, ScreenFactory] = {JourneyKind.CHECKIN.value: CheckinScreen}

__all__ = ["SCREENS", "CheckinScreen"]
