"""Case status (办件查询): renders every ``StatusFlow`` state.

IDENTIFY    the two ways: the receipt's QR code at the scanner, or the ID card
LIST        the applications found, as tiles (matter, receipt number, state), paged
DETAIL      one application: its state in plain words and, when it was returned, every
            item the department asks for, all listed at once (一次性告知)
NONE_FOUND  nothing found: the flow's words; Back / Home
REFUSED     the look-up failed (hall unreachable): its words; Back / Home
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.flows.base import Msg, Text
from kiosk.flows.home import JourneyKind
from kiosk.flows.status import StatusFlow, StatusState, StatusView, SubmissionShown
from kiosk.ui.context import UiContext
from kiosk.ui.screens.common_a import BACK, DONE, HOME, JourneyScreen, act
from kiosk.ui.shell import ScreenFactory
from kiosk.ui.widgets import Tile, TilePage, plain
from kiosk.ui.widgets.tiles import Paging

S = StatusState

TITLE = Msg("Case status")
STATE_SHORT: dict[str, Msg] = {
    "pending": Msg("Being reviewed"),
    "accepted": Msg("Passed"),
    "returned": Msg("Returned"),
}


def matter_name(shown: SubmissionShown) -> Text:
    return shown.matter if shown.matter is not None else plain(shown.matter_code)


def state_short(shown: SubmissionShown) -> Text:
    return STATE_SHORT.get(shown.state, plain(shown.state))


class StatusScreen(JourneyScreen[StatusFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self._pages: dict[StatusState, Callable[[StatusFlow, StatusView], None]] = {
            S.IDENTIFY: self._identify,
            S.LIST: self._list,
            S.DETAIL: self._detail,
            S.NONE_FOUND: self._none_found,
            S.REFUSED: self._refused,
            S.CLOSED: self._closed,
        }

    def build(self, flow: StatusFlow) -> None:
        self._pages[flow.state](flow, flow.view)

    # -- pages ---------------------------------------------------------------------------------

    def _identify(self, flow: StatusFlow, view: StatusView) -> None:
        self.page(
            self.title(TITLE),
            self.line(flow.prompt),
            self.line(Msg("① Receipt QR code: hold it under the scanner.")),
            self.line(Msg("② ID card: place it on the card reader.")),
            nav=[self.nav_button(HOME, act(flow.cancel))],
        )

    def _list(self, flow: StatusFlow, view: StatusView) -> None:
        tiles = TilePage(self.ctx)
        tiles.show(
            [
                Tile(
                    matter_name(s),
                    act(flow.select, s.receipt_no),
                    note=Msg.of("{receipt} · {state}", receipt=s.receipt_no, state=state_short(s)),
                )
                for s in view.submissions
            ],
            Paging(view.page, view.page_count, act(flow.prev_page), act(flow.next_page)),
        )
        self.page(
            self.title(flow.prompt),
            fill=tiles,
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(DONE, act(flow.finish))],
        )

    def _detail(self, flow: StatusFlow, view: StatusView) -> None:
        shown = view.selected
        if shown is None:
            self._closed(flow, view)
            return
        items = [
            self.line(plain(f"{number}、{item}"), halign="left")
            for number, item in enumerate(shown.return_items, start=1)
        ]
        # no submitted/decided times: the gateway hands them over in UTC, not the hall's time
        self.page(
            self.title(matter_name(shown)),
            self.line(Msg.of("Receipt number: {receipt}", receipt=shown.receipt_no), role="small"),
            self.title(shown.state_text),
            self.line(Msg("Items to supply:"), halign="left") if items else None,
            fill=self.scrolled(items) if items else None,
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(DONE, act(flow.finish))],
        )

    def _none_found(self, flow: StatusFlow, view: StatusView) -> None:
        self.page(
            self.title(flow.prompt),
            self.line(self.reason(flow, S.NONE_FOUND)),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _refused(self, flow: StatusFlow, view: StatusView) -> None:
        self.page(
            self.title(Msg("The look-up did not work.")),
            self.line(self.reason(flow, S.REFUSED)),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(HOME, act(flow.cancel))],
        )

    def _closed(self, flow: StatusFlow, view: StatusView) -> None:
        self.page(self.title(TITLE))


SCREENS: dict[str, ScreenFactory] = {JourneyKind.STATUS.value: StatusScreen}

__all__ = ["SCREENS", "StatusScreen"]
