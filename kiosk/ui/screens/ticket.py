"""Take a queue ticket (取号): renders every ``TicketFlow`` state, one decision per page.

CHECKING       the busy box ("checking the printer") over the journey's name
UNAVAILABLE    why (printer, hall) and where to go instead; Home
CHOOSE_AREA    the business areas as big tiles, paged (fewer per page in elderly mode)
CHOOSE_TYPE    收件 / 取件 / 咨询 for the chosen area
IDENTIFY       place the ID card, or continue without one; ask for the green channel
GREEN_CONFIRM  "staff may check": yes / no
DONE           the number, huge; people ahead and the wait, big; Done
REPRINT_OFFER  the ticket already held: print again / no thanks
PRINT_FAILED   not printed, so not valid: ask staff; Done
REFUSED        the hall's words (e.g. today's quota is used up); Back / Home
CLOSED         nothing left to show (the session moves on)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.flows.base import Msg
from kiosk.flows.home import JourneyKind
from kiosk.flows.ticket import TicketFlow, TicketShown, TicketState, TicketView
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
from kiosk.ui.widgets import TextLabel, Tile, TilePage
from kiosk.ui.widgets.layouts import FitBox
from kiosk.ui.widgets.tiles import Paging

S = TicketState

TITLE = Msg("Take a queue ticket")
GREEN_TEXT = {
    "elderly": Msg("Green channel: priority for older applicants."),
    "disabled": Msg("Green channel: priority for people with disabilities."),
}


class TicketScreen(JourneyScreen[TicketFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self._pages: dict[TicketState, Callable[[TicketFlow, TicketView], None]] = {
            S.CHECKING: self._checking,
            S.UNAVAILABLE: self._unavailable,
            S.CHOOSE_AREA: self._choose_area,
            S.CHOOSE_TYPE: self._choose_type,
            S.IDENTIFY: self._identify,
            S.GREEN_CONFIRM: self._green_confirm,
            S.DONE: self._done,
            S.REPRINT_OFFER: self._reprint_offer,
            S.PRINT_FAILED: self._print_failed,
            S.REFUSED: self._refused,
            S.CLOSED: self._closed,
        }

    def build(self, flow: TicketFlow) -> None:
        self._pages[flow.state](flow, flow.view)

    # -- pages ---------------------------------------------------------------------------------

    def _checking(self, flow: TicketFlow, view: TicketView) -> None:
        self.page(self.title(TITLE))

    def _unavailable(self, flow: TicketFlow, view: TicketView) -> None:
        self.page(
            self.title(Msg("Tickets cannot be issued right now.")),
            self.line(self.reason(flow, S.UNAVAILABLE)),
            self.line(WHERE_INSTEAD),
            nav=[self.nav_button(HOME, act(flow.cancel), "primary")],
        )

    def _choose_area(self, flow: TicketFlow, view: TicketView) -> None:
        tiles = TilePage(self.ctx)
        tiles.show(
            [Tile(area.name, act(flow.choose_area, area.area)) for area in view.areas],
            Paging(view.page, view.page_count, act(flow.prev_page), act(flow.next_page)),
        )
        self.page(
            self.title(flow.prompt),
            self._card_line(view),
            self._green_line(view),
            self._offline_line(view),
            fill=tiles,
            nav=[self.nav_button(HOME, act(flow.cancel))],
        )

    def _choose_type(self, flow: TicketFlow, view: TicketView) -> None:
        tiles = TilePage(self.ctx)
        tiles.show([Tile(t.text, act(flow.choose_type, t.category_id)) for t in view.types])
        self.page(
            self.title(view.area.name if view.area else None),
            self.line(flow.prompt),
            self._card_line(view),
            self._green_line(view),
            fill=tiles,
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _identify(self, flow: TicketFlow, view: TicketView) -> None:
        actions = [self.button(Msg("Continue without a card"), act(flow.skip_card))]
        if view.green is None:  # asked already: the page says so instead
            actions.append(
                self.button(
                    Msg("Green channel for people with disabilities"),
                    act(flow.ask_green_channel),
                    "secondary",
                    role="body",
                )
            )
        self.page(
            self.title(flow.prompt),
            self._choice_line(view),
            self.line(
                Msg("Older applicants are served first when they use their ID card."),
                role="small",
                colour="text_muted",
            ),
            main_actions(self, *actions),
            self._green_line(view),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _green_confirm(self, flow: TicketFlow, view: TicketView) -> None:
        self.page(
            self.title(Msg("Green channel")),
            self.line(flow.prompt),
            main_actions(
                self,
                self.button(Msg("Yes, I need the green channel"), act(flow.confirm_green)),
                self.button(Msg("No"), act(flow.decline_green), "secondary"),
            ),
            nav=[self.nav_button(HOME, act(flow.cancel))],
        )

    def _done(self, flow: TicketFlow, view: TicketView) -> None:
        ticket = view.ticket
        if ticket is None:  # the flow shows no ticket it does not hold
            self._closed(flow, view)
            return
        self.page(
            self.title(flow.prompt),
            *self._ticket(ticket),
            nav=[self.nav_button(DONE, act(flow.finish), "primary")],
        )

    def _reprint_offer(self, flow: TicketFlow, view: TicketView) -> None:
        ticket = view.ticket
        self.page(
            self.title(flow.prompt),
            *(self._ticket(ticket) if ticket is not None else ()),
            main_actions(
                self,
                self.button(Msg("Print it again"), act(flow.reprint)),
            ),
            nav=[self.nav_button(Msg("No, thanks"), act(flow.cancel))],
        )

    def _print_failed(self, flow: TicketFlow, view: TicketView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(self.reason(flow, S.PRINT_FAILED)),
            nav=[self.nav_button(DONE, act(flow.finish), "primary")],
        )

    def _refused(self, flow: TicketFlow, view: TicketView) -> None:
        self.page(
            self.title(Msg("No ticket was issued.")),
            self.line(self.reason(flow, S.REFUSED)),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _closed(self, flow: TicketFlow, view: TicketView) -> None:
        self.page(self.title(TITLE))

    # -- parts ---------------------------------------------------------------------------------

    def _ticket(self, ticket: TicketShown) -> list[TextLabel | FitBox | None]:
        """The number huge, what it is for, and how long the wait is, big."""
        what = (
            Msg.of("{business} · {kind}", business=ticket.business, kind=ticket.kind)
            if ticket.business is not None
            else ticket.kind
        )
        return [
            self.line(what),
            self.hero(ticket.label),
            self.line(ticket.queue_text, role="display"),
            self.line(Msg("Green channel: you will be served first.")) if ticket.green else None,
        ]

    def _card_line(self, view: TicketView) -> TextLabel | None:
        if view.card_name is None:
            return None
        return self.line(
            Msg.of("ID card read: {name}", name=view.card_name), role="small", colour="text_muted"
        )

    def _choice_line(self, view: TicketView) -> TextLabel | None:
        if view.area is None or view.category is None:
            return None
        return self.line(
            Msg.of("{business} · {kind}", business=view.area.name, kind=view.category.text)
        )

    def _green_line(self, view: TicketView) -> TextLabel | None:
        return None if view.green is None else self.line(GREEN_TEXT[view.green])

    def _offline_line(self, view: TicketView) -> TextLabel | None:
        if not view.catalog_cached:
            return None
        return self.line(
            Msg("The hall's system is not answering. Your ticket may be issued offline."),
            role="small",
            colour="text_muted",
        )


SCREENS: dict[str, ScreenFactory] = {JourneyKind.TICKET.value: TicketScreen}

__all__ = ["SCREENS", "TicketScreen"]
