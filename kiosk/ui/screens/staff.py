"""Staff mode: one page per ``StaffFlow`` state. Terse words; big targets all the same, since a
clerk loads dozens of certificates in a row before closing time.

    LOGIN          staff card on the reader        PIN / PIN_LOCKED   keypad (●), tries left
    MENU           load / overdue / reprint / lock / unlock / self-test / log out
    LOAD_SCAN      scan the envelope; the size kept for the next one; unfinished loads; the
                   certificates loaded so far (newest first)
    LOAD_RECIPIENT read the applicant's card       LOAD_SIZE          S / M / L
    LOAD_OPEN      cabinet picture, door state, "door closed: confirm" / cancel the load
    OVERDUE_LIST   overdue items, a page at a time RETRIEVE_OPEN      cabinet picture, confirm
    SELF_TEST      a pass/fail row per device with its message

Scans and cards come from the devices through the app (``flow.code_scanned``,
``flow.card_read``); door events from lockerd (``flow.door_closed``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from kivy.uix.widget import Widget

from kiosk.flows.base import Msg, Text
from kiosk.flows.home import JourneyKind
from kiosk.flows.pickup import OpenBay
from kiosk.flows.selftest import CheckResult
from kiosk.flows.staff import StaffFlow, StaffState, StaffView
from kiosk.services.locker_gateway import SIZES, Deposit, Size
from kiosk.ui.context import UiContext
from kiosk.ui.screens.cabinet import CabinetPicture
from kiosk.ui.screens.common_b import (
    BACK_TO_MENU,
    CANCEL,
    Banner,
    BarcodeHint,
    CardHint,
    PageScreen,
    act,
    day,
    hhmm,
)
from kiosk.ui.shell import ScreenFactory
from kiosk.ui.widgets import Keypad, TextLabel, Tile, TilePage, plain
from kiosk.ui.widgets.layouts import FitBox
from kiosk.ui.widgets.tiles import Paging

S = StaffState

SIZE_NAMES: dict[Size, Msg] = {
    "S": Msg("Small (S)"),
    "M": Msg("Medium (M)"),
    "L": Msg("Large (L)"),
}
COMPONENT_NAMES: dict[str, Msg] = {
    "printer": Msg("Printer"),
    "card_reader": Msg("Card reader"),
    "scanner": Msg("Code scanner"),
    "camera": Msg("Document camera"),
    "locker": Msg("Locker"),
    "voice": Msg("Speaker"),
}
_DOOR: dict[str, Msg] = {
    "unlocked": Msg("Door unlocked."),
    "open": Msg("Door open."),
    "closed": Msg("Door closed."),
    "unknown": Msg("Door state unknown."),
}
CONFIRM_CLOSED = Msg("Door closed: confirm")
LOADED_SHOWN = 20  # the newest loads listed on the scan page (the count covers all)


class ResultRow(FitBox):
    """One device on the self-test page: name, PASS/FAIL badge, the driver's words."""

    def __init__(self, ctx: UiContext, result: CheckResult, **kwargs: Any) -> None:
        super().__init__(orientation="vertical", spacing=ctx.theme.sizes.spacing_px // 2, **kwargs)
        self.result = result
        head = FitBox(orientation="horizontal", spacing=ctx.theme.sizes.spacing_px)
        self.name = TextLabel(
            ctx,
            COMPONENT_NAMES.get(result.component, plain(result.component)),
            halign="left",
            fit_height=True,
        )
        self.badge = Banner(
            ctx,
            Msg("Pass") if result.ok else Msg("Fail"),
            "primary" if result.ok else "danger",
            fit_width=True,
            size_hint_y=None,
        )
        self.badge.bind(height=self._fit_head)
        self.name.bind(height=self._fit_head)
        head.add_widget(self.name)
        head.add_widget(self.badge)
        self._head = head
        self.message = TextLabel(ctx, result.text, role="small", halign="left", fit_height=True)
        self.add_widget(head)
        self.add_widget(self.message)
        if not result.ok and result.code:
            self.add_widget(
                TextLabel(
                    ctx, plain(result.code), role="small", colour="text_muted", halign="left",
                    fit_height=True,
                )
            )  # fmt: skip
        self._fit_head()

    def _fit_head(self, *_args: Any) -> None:
        self.badge.height = self.badge.texture_size[1]
        self._head.height = max(self.name.height, self.badge.height)


class StaffScreen(PageScreen[StaffFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.keypad: Keypad | None = None
        self.cabinet: CabinetPicture | None = None
        self.result_rows: dict[str, ResultRow] = {}
        self.door: TextLabel | None = None

    def forget(self) -> None:
        self.keypad = None
        self.cabinet = None
        self.result_rows = {}
        self.door = None

    # -- PageScreen ------------------------------------------------------------------------------

    def signature(self, flow: StaffFlow) -> object:
        # typing and the door's state change a line, not the page: a button being pressed
        # while the door shuts stays the same button
        view = flow.view
        bay = view.open_bay
        return replace(
            view,
            entry="",
            can_confirm=False,
            open_bay=replace(bay, door="") if bay is not None else None,
        )

    def update(self, flow: StaffFlow) -> None:
        view = flow.view
        if self.keypad is not None:
            self.keypad.show(view.entry, can_confirm=view.can_confirm)
        if self.door is not None and view.open_bay is not None:
            self.door.set_source(_DOOR.get(view.open_bay.door, _DOOR["unknown"]))

    def build(self, flow: StaffFlow) -> None:
        pages = {
            S.LOGIN: self._login,
            S.PIN: self._pin,
            S.PIN_LOCKED: self._pin_locked,
            S.MENU: self._menu,
            S.LOAD_SCAN: self._load_scan,
            S.LOAD_RECIPIENT: self._load_recipient,
            S.LOAD_SIZE: self._load_size,
            S.LOAD_OPEN: self._load_open,
            S.OVERDUE_LIST: self._overdue_list,
            S.RETRIEVE_OPEN: self._retrieve_open,
            S.SELF_TEST: self._self_test,
        }
        page = pages.get(flow.state)
        if page is not None:
            page(flow, flow.view)

    # -- login -----------------------------------------------------------------------------------

    def _login(self, flow: StaffFlow, _view: StaffView) -> None:
        reason = self.reason(flow, S.LOGIN.value)
        self.page(
            self.title(flow.prompt),
            self.banner(reason) if reason is not None else None,
            fill=CardHint(self.ctx),
            bottom=[self.actions(self.small_button(CANCEL, act(flow.cancel)))],
        )

    def _pin(self, flow: StaffFlow, view: StaffView) -> None:
        self.keypad = Keypad(self.ctx, act(flow.press), act(flow.delete), act(flow.confirm))
        tries = None
        if view.tries_left is not None:
            tries = self.banner(Msg.of("Wrong PIN. {tries} tries left.", tries=view.tries_left))
        self.page(
            self.title(flow.prompt),
            self.line(_who(view), colour="text_muted"),
            tries,
            self.keypad,
            bottom=[self.actions(self.small_button(CANCEL, act(flow.cancel)))],
        )

    def _pin_locked(self, flow: StaffFlow, view: StaffView) -> None:
        self.page(
            self.title(Msg("Staff login is locked")),
            self.line(
                self.reason(flow, S.PIN_LOCKED.value)
                or Msg.of("Locked until {time}.", time=hhmm(view.locked_until))
            ),
            bottom=[self.actions(self.small_button(CANCEL, act(flow.cancel)))],
        )

    # -- the menu --------------------------------------------------------------------------------

    def _menu(self, flow: StaffFlow, view: StaffView) -> None:
        tiles = TilePage(self.ctx)
        tiles.show(
            [
                Tile(Msg("Load certificates"), act(flow.start_loading)),
                Tile(Msg("Overdue items"), act(flow.show_overdue)),
                Tile(Msg("Reprint the last slip"), act(flow.reprint), view.can_reprint),
                Tile(Msg("Device self-test"), act(flow.self_test)),
                Tile(Msg("Lock this kiosk"), act(flow.lock_kiosk)),
                Tile(Msg("Unlock this kiosk"), act(flow.unlock_kiosk)),
            ]
        )
        loaded = None
        if view.loaded:
            loaded = self.line(
                Msg.of("Loaded in this session: {count}", count=len(view.loaded)),
                colour="text_muted",
            )
        self.page(
            self.title(Msg("Staff menu")),
            self.line(_who(view), colour="text_muted"),
            loaded,
            fill=tiles,
            bottom=[self.actions(self.small_button(Msg("Log out"), act(flow.logout)))],
        )

    # -- loading ---------------------------------------------------------------------------------

    def _load_scan(self, flow: StaffFlow, view: StaffView) -> None:
        reason = self.reason(flow, S.LOAD_SCAN.value)
        size = None
        if view.size is not None:
            size = self.row(
                [
                    self.line(
                        Msg.of("Next bay size: {size}", size=SIZE_NAMES[view.size]),
                        halign="left",
                    ),
                    self.small_button(Msg("Change size"), act(flow.change_size)),
                ],
                widths=(0.6, 0.4),
            )
        listed: list[Widget | None] = []
        if view.pending_loads:
            listed.append(self.line(Msg("Unfinished loads: finish or cancel each."), halign="left"))
            listed.extend(
                self.small_button(
                    Msg.of("Bay {bay}: finish or cancel", bay=bay.bay_id),
                    act(flow.resume_load, bay.deposit_id),
                    "warning",
                )
                for bay in view.pending_loads
                if bay.deposit_id is not None
            )
        if view.loaded:
            listed.append(
                self.line(
                    Msg.of("Loaded in this session: {count}", count=len(view.loaded)),
                    halign="left",
                )
            )
            listed.extend(
                self.line(
                    Msg.of("Case {case}: bay {bay}", case=item.case_number or "—", bay=item.bay_id),
                    role="small",
                    colour="text_muted",
                    halign="left",
                )
                for item in reversed(view.loaded[-LOADED_SHOWN:])
            )
        self.page(
            self.title(flow.prompt),
            BarcodeHint(self.ctx),
            self.banner(reason, "secondary") if reason is not None else None,
            size,
            fill=self.scrolled(listed) if listed else None,
            bottom=[self.actions(self.small_button(BACK_TO_MENU, act(flow.back_to_menu)))],
        )

    def _load_recipient(self, flow: StaffFlow, view: StaffView) -> None:
        reason = self.reason(flow, S.LOAD_RECIPIENT.value)
        self.page(
            self.title(flow.prompt),
            self.line(_case_line(view), colour="text_muted"),
            self.banner(reason) if reason is not None else None,
            fill=CardHint(self.ctx),
            bottom=[self.actions(self.small_button(BACK_TO_MENU, act(flow.back_to_menu)))],
        )

    def _load_size(self, flow: StaffFlow, view: StaffView) -> None:
        reason = self.reason(flow, S.LOAD_SIZE.value)
        sizes = self.actions(
            *(
                self.button(SIZE_NAMES[size], act(flow.choose_size, size), height_role="tile")
                for size in SIZES
            ),
            columns=1,
        )
        recipient = None
        if view.recipient_name is not None:
            recipient = self.line(
                Msg.of("For {name}", name=view.recipient_name), colour="text_muted"
            )
        self.page(
            self.title(flow.prompt),
            self.line(_case_line(view), colour="text_muted"),
            recipient,
            self.banner(reason) if reason is not None else None,
            sizes,
            bottom=[self.actions(self.small_button(BACK_TO_MENU, act(flow.back_to_menu)))],
        )

    def _load_open(self, flow: StaffFlow, view: StaffView) -> None:
        bay = view.open_bay
        if bay is None:
            return
        reason = self.reason(flow, S.LOAD_OPEN.value)
        self.page(
            self.title(Msg.of("Bay {bay} is open", bay=bay.bay_id)),
            self.line(flow.prompt),
            self.line(_case_line(view), colour="text_muted") if view.case_number else None,
            self.banner(reason) if reason is not None else None,
            fill=self._cabinet(bay),
            bottom=[
                self._door_line(),
                self.actions(
                    self.button(CONFIRM_CLOSED, act(flow.confirm_loaded)),
                    self.small_button(Msg("Cancel this load"), act(flow.cancel_load)),
                    columns=1,
                ),
            ],
        )

    # -- overdue ---------------------------------------------------------------------------------

    def _overdue_list(self, flow: StaffFlow, view: StaffView) -> None:
        reason = self.reason(flow, S.OVERDUE_LIST.value)
        tiles = None
        if view.overdue:
            tiles = TilePage(self.ctx)
            tiles.show(
                [
                    Tile(
                        Msg.of("Take out of bay {bay}", bay=d.bay_id),
                        act(flow.retrieve, d.deposit_id),
                        note=_overdue_note(d),
                    )
                    for d in view.overdue
                ],
                Paging(view.page, view.page_count, act(flow.prev_page), act(flow.next_page)),
            )
        self.page(
            self.title(Msg("Overdue items")),
            self.banner(reason, "secondary") if reason is not None else None,
            None if view.overdue else self.line(Msg("No item is overdue.")),
            fill=tiles,
            bottom=[self.actions(self.small_button(BACK_TO_MENU, act(flow.back_to_menu)))],
        )

    def _retrieve_open(self, flow: StaffFlow, view: StaffView) -> None:
        bay = view.open_bay
        if bay is None:
            return
        reason = self.reason(flow, S.RETRIEVE_OPEN.value)
        self.page(
            self.title(Msg.of("Bay {bay} is open", bay=bay.bay_id)),
            self.line(flow.prompt),
            self.banner(reason) if reason is not None else None,
            fill=self._cabinet(bay),
            bottom=[
                self._door_line(),
                self.actions(self.button(CONFIRM_CLOSED, act(flow.confirm_retrieved))),
            ],
        )

    # -- self-test -------------------------------------------------------------------------------

    def _self_test(self, flow: StaffFlow, view: StaffView) -> None:
        self.result_rows = {r.component: ResultRow(self.ctx, r) for r in view.results}
        failed = sum(1 for r in view.results if not r.ok)
        summary: Text = (
            Msg.of("{failed} of {total} devices failed.", failed=failed, total=len(view.results))
            if failed
            else Msg("Every device passed.")
        )
        self.page(
            self.title(Msg("Device self-test")),
            self.banner(summary, "danger" if failed else "primary")
            if view.results
            else self.line(Msg("No devices to test.")),
            fill=self.scrolled(list(self.result_rows.values())),
            bottom=[
                self.actions(
                    self.small_button(Msg("Test again"), act(flow.self_test), "primary"),
                    self.small_button(BACK_TO_MENU, act(flow.back_to_menu)),
                )
            ],
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _door_line(self) -> TextLabel:
        self.door = self.line(None)  # filled in by update
        return self.door

    def _cabinet(self, bay: OpenBay) -> CabinetPicture:
        self.cabinet = CabinetPicture(self.ctx)
        self.cabinet.show(bay.grid, bay.bay_id)
        return self.cabinet


def _who(view: StaffView) -> Text | None:
    name = view.staff_name or view.staff_id
    return Msg.of("Staff: {name}", name=name) if name else None


def _case_line(view: StaffView) -> Text | None:
    if not view.case_number:
        return None
    return Msg.of("Case {case}", case=view.case_number)


def _overdue_note(deposit: Deposit) -> Text:
    return Msg.of(
        "Case {case}, {name}, deadline {date}",
        case=deposit.case_number,
        name=deposit.masked_name,
        date=day(deposit.deadline),
    )


SCREENS: dict[str, ScreenFactory] = {JourneyKind.STAFF.value: StaffScreen}

__all__ = ["COMPONENT_NAMES", "SCREENS", "SIZE_NAMES", "ResultRow", "StaffScreen"]
