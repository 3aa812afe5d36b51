"""Certificate pickup (自助取件): one page per ``PickupFlow`` state.

    IDENTIFY   put the ID card on the reader (a picture of card and reader)
    NO_ITEMS   nothing waits for this card; ask staff, or finish
    CHOOSE     the items waiting, a page at a time (fewer in elderly mode)
    PASSWORD   the keypad (digits shown as ●), tries left after a wrong password
    OPEN       the cabinet picture with the open bay blinking, until the door is shut
    DONE       thank you, take your card
    OVERDUE    the deadline passed: collect it at the window
    LOCKED     too many wrong passwords: locked until a time; staff issue a new password
    NEW_CODE   staff were asked for a new password (it comes by SMS)
    HELP       staff were asked to come

The card is read by the reader (the app hands it to ``flow.card_read``) and door events come
from lockerd (``flow.door_closed``): this screen only shows what follows. The password never
appears: the keypad shows the flow's masked entry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kiosk.flows.base import Msg, Text
from kiosk.flows.home import JourneyKind
from kiosk.flows.pickup import PickupFlow, PickupState, PickupView
from kiosk.services.locker_gateway import Deposit
from kiosk.ui.context import UiContext
from kiosk.ui.screens.cabinet import CabinetPicture
from kiosk.ui.screens.common_b import (
    ASK_STAFF,
    BACK,
    CANCEL,
    FINISH,
    CardHint,
    PageScreen,
    StatusMark,
    act,
    day,
    hhmm,
)
from kiosk.ui.shell import ScreenFactory
from kiosk.ui.widgets import Keypad, TextLabel, Tile, TilePage, plain
from kiosk.ui.widgets.tiles import Paging

S = PickupState

_DOOR: dict[str, Msg] = {
    "unlocked": Msg("The door has unlocked. Pull it open."),
    "open": Msg("The door is open. Take your item, then close the door."),
    "closed": Msg("The door is closed."),
}


class PickupScreen(PageScreen[PickupFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.keypad: Keypad | None = None
        self.cabinet: CabinetPicture | None = None
        self.door: TextLabel | None = None

    def forget(self) -> None:
        self.keypad = None
        self.cabinet = None
        self.door = None

    # -- PageScreen ------------------------------------------------------------------------------

    def signature(self, flow: PickupFlow) -> object:
        # typing and the door's state change a line, not the page
        view = flow.view
        bay = view.open_bay
        return replace(
            view,
            entry="",
            can_confirm=False,
            open_bay=replace(bay, door="") if bay is not None else None,
        )

    def update(self, flow: PickupFlow) -> None:
        view = flow.view
        if self.keypad is not None:
            self.keypad.show(view.entry, can_confirm=view.can_confirm)
        if self.door is not None and view.open_bay is not None:
            self.door.set_source(_DOOR.get(view.open_bay.door, _DOOR["unlocked"]))

    def build(self, flow: PickupFlow) -> None:
        view = flow.view
        pages = {
            S.IDENTIFY: self._identify,
            S.NO_ITEMS: self._no_items,
            S.CHOOSE: self._choose,
            S.PASSWORD: self._password,
            S.OPEN: self._open,
            S.DONE: self._done,
            S.OVERDUE: self._overdue,
            S.LOCKED: self._locked,
            S.NEW_CODE: self._new_code,
            S.HELP: self._help,
        }
        page = pages.get(flow.state)
        if page is not None:  # CLOSED: an empty page until the session moves on
            page(flow, view)

    # -- pages -----------------------------------------------------------------------------------

    def _identify(self, flow: PickupFlow, _view: PickupView) -> None:
        self.page(
            self.title(flow.prompt or Msg("Please place your ID card on the reader.")),
            self.line(Msg("An ID card or a citizen card can be used.")),
            fill=CardHint(self.ctx),
            bottom=[
                self.actions(
                    self.small_button(ASK_STAFF, act(flow.contact_staff)),
                    self.small_button(CANCEL, act(flow.cancel)),
                )
            ],
        )

    def _no_items(self, flow: PickupFlow, _view: PickupView) -> None:
        self.page(
            StatusMark(self.ctx, "attention"),
            self.title(Msg("No item is waiting for you")),
            self.line(self.reason(flow, S.NO_ITEMS.value) or _NO_ITEMS_HELP),
            self.line(Msg("You can also put another card on the reader."), colour="text_muted"),
            centre=True,
            bottom=[
                self.actions(
                    self.small_button(ASK_STAFF, act(flow.contact_staff)),
                    self.small_button(FINISH, act(flow.finish), "primary"),
                )
            ],
        )

    def _choose(self, flow: PickupFlow, view: PickupView) -> None:
        tiles = TilePage(self.ctx)
        tiles.show(
            [Tile(_case(d), act(flow.choose, d.deposit_id), note=_for(d)) for d in view.deposits],
            Paging(view.page, view.page_count, act(flow.prev_page), act(flow.next_page)),
        )
        self.page(
            self.title(flow.prompt),
            self.line(self.reason(flow, S.CHOOSE.value)),
            fill=tiles,
            bottom=[
                self.actions(
                    self.small_button(ASK_STAFF, act(flow.contact_staff)),
                    self.small_button(CANCEL, act(flow.cancel)),
                )
            ],
        )

    def _password(self, flow: PickupFlow, view: PickupView) -> None:
        self.keypad = Keypad(self.ctx, act(flow.press), act(flow.delete), act(flow.confirm))
        selected = view.selected
        tries = None
        if view.attempts_left is not None:
            tries = self.banner(
                Msg.of("Wrong password. {tries} tries left.", tries=view.attempts_left)
            )
        self.page(
            self.title(flow.prompt),
            self.line(_case(selected), colour="text_muted") if selected is not None else None,
            tries,
            self.keypad,
            bottom=[
                self.actions(
                    self.small_button(Msg("Forgot the password"), act(flow.new_code)),
                    self.small_button(ASK_STAFF, act(flow.contact_staff)),
                    self.small_button(BACK, act(flow.back)) if _several(view) else None,
                    self.small_button(CANCEL, act(flow.cancel)),
                )
            ],
        )

    def _open(self, flow: PickupFlow, view: PickupView) -> None:
        bay = view.open_bay
        if bay is None:  # never: OPEN always has its bay
            return
        self.cabinet = CabinetPicture(self.ctx)
        self.cabinet.show(bay.grid, bay.bay_id)
        self.door = self.line(None)  # the door's state, kept up to date by update
        self.page(
            self.title(Msg.of("Bay {bay} is open", bay=bay.bay_id)),
            self.door,
            fill=self.cabinet,
            bottom=[
                self.line(Msg("The open door is shown in yellow."), role="small",
                          colour="text_muted"),
                self.actions(self.small_button(ASK_STAFF, act(flow.contact_staff))),
            ],
        )  # fmt: skip

    def _done(self, flow: PickupFlow, view: PickupView) -> None:
        bay = view.open_bay
        self.page(
            StatusMark(self.ctx, "done"),
            self.title(Msg("You have collected your certificate.")),
            self.line(flow.prompt),
            self.line(Msg.of("Bay {bay} is closed again.", bay=bay.bay_id), colour="text_muted")
            if bay is not None
            else None,
            centre=True,
            bottom=[self.actions(self.button(FINISH, act(flow.finish)))],
        )

    def _overdue(self, flow: PickupFlow, view: PickupView) -> None:
        selected = view.selected
        self.page(
            StatusMark(self.ctx, "attention"),
            self.title(Msg("The pickup deadline has passed")),
            self.line(self.reason(flow, S.OVERDUE.value) or _OVERDUE_HELP),
            self.line(_case(selected), colour="text_muted") if selected is not None else None,
            centre=True,
            bottom=[
                self.actions(
                    self.small_button(BACK, act(flow.back)) if _several(view) else None,
                    self.small_button(ASK_STAFF, act(flow.contact_staff)),
                    self.small_button(FINISH, act(flow.finish), "primary"),
                )
            ],
        )

    def _locked(self, flow: PickupFlow, view: PickupView) -> None:
        self.page(
            StatusMark(self.ctx, "attention"),
            self.title(Msg("Too many wrong passwords")),
            self.line(
                Msg.of(
                    "For your safety, pickup is locked until {time}.", time=hhmm(view.locked_until)
                )
            ),
            self.line(Msg("If you have forgotten the password, staff can send you a new one.")),
            centre=True,
            bottom=[
                self.actions(
                    self.small_button(Msg("Get a new password"), act(flow.new_code), "primary"),
                    self.small_button(FINISH, act(flow.finish)),
                )
            ],
        )

    def _new_code(self, flow: PickupFlow, _view: PickupView) -> None:
        self.page(
            StatusMark(self.ctx, "attention"),
            self.title(Msg("Staff have been asked for a new password")),
            self.line(self.reason(flow, S.NEW_CODE.value) or _NEW_CODE_HELP),
            centre=True,
            bottom=[self.actions(self.button(FINISH, act(flow.finish)))],
        )

    def _help(self, flow: PickupFlow, _view: PickupView) -> None:
        self.page(
            StatusMark(self.ctx, "attention"),
            self.title(Msg("Staff are coming to help you")),
            self.line(self.reason(flow, S.HELP.value) or _HELP_DEFAULT),
            centre=True,
            bottom=[self.actions(self.button(FINISH, act(flow.finish)))],
        )


_NO_ITEMS_HELP = Msg("If you received a pickup message, please ask staff for help.")
_OVERDUE_HELP = Msg("Please collect it at the pickup window during office hours.")
_HELP_DEFAULT = Msg("Staff have been asked to come and help you. Please wait here.")
_NEW_CODE_HELP = Msg("The new password will be sent by SMS to the phone number of your case.")


def _case(deposit: Deposit) -> Text:
    return Msg.of("Case {case}", case=deposit.case_number)


def _for(deposit: Deposit) -> Text:
    if deposit.deadline is None:
        return plain(deposit.masked_name)
    return Msg.of("{name}, collect by {date}", name=deposit.masked_name, date=day(deposit.deadline))


def _several(view: PickupView) -> bool:
    """More than one item waits: the keypad and the overdue note can go back to the list."""
    return len(view.deposits) > 1 or view.page_count > 1


SCREENS: dict[str, ScreenFactory] = {JourneyKind.PICKUP.value: PickupScreen}

__all__ = ["SCREENS", "PickupScreen"]
