"""The pickup screen on a real PickupFlow against a real lockerd (board simulator on a pty, doors
pulled and shut through its hooks as a person would), the simulated card reader, driven by
synthetic touches in the real Kivy window. Every page is drawn in Chinese, English and elderly
mode (screenshots kept) and no text may overflow its box."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kivy.uix.widget import Widget
from PIL import Image

from drivers.identity.types import Identity
from drivers.identity.vcard.sim import SimIdentityReader
from kiosk.flows.base import Msg, QueueWorker, Text
from kiosk.flows.home import Finished
from kiosk.flows.pickup import HelpRequest, PickupFlow, PickupState
from kiosk.i18n import Language
from kiosk.services.locker_gateway import GridPosition, LockerGateway
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import Observable
from kiosk.ui.screens.cabinet import HIGHLIGHT, CabinetPicture
from kiosk.ui.screens.pickup import SCREENS, PickupScreen
from kiosk.ui.shell import KioskShell, ScreenFactory
from kiosk.ui.widgets import BusyOverlay, NoticeBox
from tests.fixtures.processes import LockboardSimFactory
from tests.kiosk.flows.locker_fixtures import (
    DoorFeed,
    card_reader,
    citizen,
    close_door,
    feed,  # noqa: F401 (a fixture)
    gateway,  # noqa: F401 (a fixture)
    load,
    open_door,
    running_lockerd,
    worker,  # noqa: F401 (a fixture)
    wrong_password,
)
from tests.kiosk.ui.harness import KivyHarness
from tests.locker.harness import InProcessLockerd

S = PickupState
NO_ITEMS = Msg(  # the flow's own words, kept on the page after the notice went
    "No item is waiting for you. If you received a pickup message, please ask staff for help."
)
MODES = {
    "zh": (Language.ZH_CN, False),
    "en": (Language.EN, False),
    "elderly": (Language.ZH_CN, True),
}


# -- helpers shared with the staff and pre-review screen tests --------------------------------


def show(
    ui: KivyHarness,
    ctx: UiContext,
    screens: Mapping[str, ScreenFactory],
    name: str,
    flow: Observable,
) -> KioskShell:
    """The app's shell on the window, showing ``flow`` on the screen called ``name``."""
    shell = KioskShell(ctx, screens)
    ui.mount(shell)
    shell.show(name, flow)
    ui.settle()
    return shell


class EveryMode:
    """Checks the page on screen in zh, en and elderly mode: a screenshot of each (unless
    ``shots`` is off, e.g. for a notice over a page already pictured), ``expect`` shown in each
    language, and every overflowing text noted. ``assert_clean`` fails listing them all."""

    def __init__(self, ui: KivyHarness, ctx: UiContext) -> None:
        self.ui = ui
        self.ctx = ctx
        self.problems: list[str] = []
        self.pages = 0
        self.shots: dict[tuple[str, str], Path] = {}  # (page, mode) -> screenshot

    def __call__(self, name: str, expect: Text, *, shots: bool = True) -> None:
        ui, ctx = self.ui, self.ctx
        self.pages += 1
        try:
            for mode, (language, elderly) in MODES.items():
                ctx.set_language(language)
                ctx.set_elderly(elderly)
                ui.settle()
                if shots:
                    self.shots[name, mode] = ui.screenshot(f"{name}-{mode}")
                wanted = ctx.text(expect)
                if not any(wanted in text for text in ui.texts()):
                    self.problems.append(f"{name} ({mode}): {wanted!r} not in {ui.texts()}")
                self.problems.extend(f"{name} ({mode}): {o}" for o in ui.overflows())
        finally:
            ctx.set_language(Language.ZH_CN)
            ctx.set_elderly(False)
            ui.settle()

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)


def tap_digits(ui: KivyHarness, digits: str) -> None:
    for digit in digits:
        ui.tap_text(digit)


def tap(ui: KivyHarness, ctx: UiContext, text: Text) -> None:
    """Tap the button showing ``text`` in the current language."""
    ui.tap_text(ctx.text(text))


def tap_tile(ui: KivyHarness, ctx: UiContext, text: Text) -> None:
    """Tap the tile whose label starts with ``text`` (a note may follow under it)."""
    wanted = ctx.text(text)
    tiles = [w for w in ui.visible_labels() if w.text.split("\n")[0] == wanted]
    assert tiles, f"no tile {wanted!r}; on screen: {ui.texts()}"
    ui.tap(tiles[-1])


def dismiss_notice(ui: KivyHarness, ctx: UiContext, shell: KioskShell) -> None:
    screen = shell.current
    assert screen is not None and screen.notice_box.parent is not None, "no notice on screen"
    ui.tap(screen.notice_box.ok)
    ui.wait_for(lambda: screen.notice_box.parent is None, "the notice box to go")


def pump(ui: KivyHarness, worker: QueueWorker) -> None:
    """The jobs' answers, on this thread (the UI thread), then the frames they cause."""
    worker.pump()
    ui.settle()


def pixel_in(
    image: Image.Image, widget: Widget, rect: tuple[float, float, float, float]
) -> tuple[int, ...]:
    """The screenshot's colour just inside the lower left corner of ``rect`` (a box in
    ``widget``'s coordinates)."""
    x, y, w, h = rect
    left, bottom = widget.to_window(x + w * 0.1, y + h * 0.1)
    value = image.getpixel((round(left), image.height - 1 - round(bottom)))
    assert isinstance(value, tuple)
    return value


def modal_shown(shell: KioskShell) -> bool:
    return any(isinstance(w, BusyOverlay | NoticeBox) for w in shell.walk())


# -- real parts ------------------------------------------------------------------------------


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    # twelve bays (S S M M L L, twice): two columns of six in the cabinet picture
    with running_lockerd(tmp_path, lockboard_sim, channels=12) as daemon:
        yield daemon


@pytest.fixture
def reader() -> SimIdentityReader:
    return card_reader()


def read_card(ui: KivyHarness, flow: PickupFlow, worker: QueueWorker, identity: Identity) -> None:
    """The reader's card reaches the flow as the app hands it over, on the UI thread."""
    assert flow.card_read(identity)
    pump(ui, worker)


# -- every page in every mode ----------------------------------------------------------------


def test_every_pickup_page_in_every_mode(
    *,
    ui: KivyHarness,
    ctx: UiContext,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    worker: QueueWorker,
    reader: SimIdentityReader,
    feed: DoorFeed,
) -> None:
    check = EveryMode(ui, ctx)
    two = citizen(reader, 1, "欧阳小红")
    load(locker, two, size="M", case="ZJ2026-0301")
    _, _, second_pw = load(locker, two, size="S", case="ZJ2026-0302")
    locked = citizen(reader, 2)
    _, _, locked_pw = load(locker, locked)
    late = citizen(reader, 3)
    load(locker, late, case="ZJ2026-0303")
    feed.drain()

    flow = PickupFlow(worker, gateway, grid_rows=6)
    shell = show(ui, ctx, SCREENS, "pickup", flow)
    check("identify", Msg("Please place your ID card on the reader."))

    read_card(ui, flow, worker, citizen(reader, 9))  # nobody loaded anything for this card
    assert flow.state is S.NO_ITEMS
    check("no_items-notice", Msg("OK"), shots=False)
    dismiss_notice(ui, ctx, shell)
    # the page keeps the reason after OK
    check("no_items", NO_ITEMS)

    read_card(ui, flow, worker, two)
    assert flow.state is S.CHOOSE
    check("choose", Msg.of("Case {case}", case="ZJ2026-0302"))
    tap_tile(ui, ctx, Msg.of("Case {case}", case="ZJ2026-0302"))
    assert flow.state is S.PASSWORD
    tap_digits(ui, wrong_password(second_pw))
    tap(ui, ctx, Msg("OK"))
    pump(ui, worker)
    check("password-wrong", Msg.of("Wrong password. {tries} tries left.", tries=4), shots=False)
    dismiss_notice(ui, ctx, shell)
    check("password", Msg("Forgot the password"))
    tap_digits(ui, second_pw)
    tap(ui, ctx, Msg("OK"))
    pump(ui, worker)
    assert flow.state is S.OPEN
    open_bay = flow.view.open_bay
    assert open_bay is not None
    check("open", Msg.of("Bay {bay} is open", bay=open_bay.bay_id))
    open_door(locker, open_bay.bay_id)
    locker.sim.control.take_item(locker.board, locker.channel(open_bay.bay_id))
    close_door(locker, open_bay.bay_id)
    feed.deliver_until(flow, lambda: flow.state is S.DONE)
    ui.settle()
    check("done", Msg("You have collected your certificate."))
    tap(ui, ctx, Msg("Finish"))
    assert isinstance(flow.ended, Finished)

    # lockout: four wrong passwords as the keypad would send them, the fifth by touch
    helps: list[HelpRequest] = []
    flow = PickupFlow(worker, gateway, on_help=helps.append, grid_rows=6)
    shell.show("pickup", flow)
    read_card(ui, flow, worker, locked)
    fired = len(locker.sim.control.unlock_log())
    for _ in range(4):
        for digit in wrong_password(locked_pw):
            flow.press(digit)
        flow.confirm()
        worker.pump()
        flow.dismiss_notice()
    ui.settle()
    assert "密码错误，还可以再试1次。" in ui.texts()
    tap_digits(ui, wrong_password(locked_pw))
    tap(ui, ctx, Msg("OK"))
    pump(ui, worker)
    assert flow.state is S.LOCKED
    until = flow.view.locked_until
    assert until is not None
    assert f"密码错误次数过多，已锁定至 {until:%H:%M}。" in ui.texts()[-2]  # lockerd's, in a box
    dismiss_notice(ui, ctx, shell)
    assert f"为了您的安全，取件已锁定至{until:%H:%M}。" in ui.texts()  # and on the page
    assert len(locker.sim.control.unlock_log()) == fired  # no door opened for a guess
    check("locked", Msg("Too many wrong passwords"))
    tap(ui, ctx, Msg("Get a new password"))
    assert flow.state is S.NEW_CODE
    assert [h.reason for h in helps] == ["new_code"]
    dismiss_notice(ui, ctx, shell)
    check("new_code", Msg("Staff have been asked for a new password"))
    tap(ui, ctx, Msg("Finish"))
    assert flow.ended == Finished("pickup", str(helps[0].deposit_id), evaluate=False)

    flow = PickupFlow(worker, gateway, grid_rows=6)
    shell.show("pickup", flow)
    ui.settle()
    tap(ui, ctx, Msg("Ask staff for help"))
    assert flow.state is S.HELP
    flow.dismiss_notice()
    check("help", Msg("Staff are coming to help you"))

    locker.clock.advance(8 * 86_400)  # past the 7-day pickup deadline
    flow = PickupFlow(worker, gateway, grid_rows=6)
    shell.show("pickup", flow)
    read_card(ui, flow, worker, late)
    assert flow.state is S.OVERDUE
    flow.dismiss_notice()
    check("overdue", Msg("The pickup deadline has passed"))
    assert check.pages == 12
    check.assert_clean()


# -- journeys by touch -----------------------------------------------------------------------


def test_two_wrong_passwords_then_the_bay_opens_until_the_door_is_shut(
    *,
    ui: KivyHarness,
    ctx: UiContext,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    worker: QueueWorker,
    reader: SimIdentityReader,
    feed: DoorFeed,
) -> None:
    load(locker, citizen(reader, 4), size="S", case="ZJ2026-0401")  # A01: someone else's
    person = citizen(reader, 5)
    deposit_id, bay_id, password = load(locker, person, size="M")
    assert bay_id == "A03"
    feed.drain()
    flow = PickupFlow(worker, gateway, grid_rows=6)
    shell = show(ui, ctx, SCREENS, "pickup", flow)
    screen = shell.current
    assert isinstance(screen, PickupScreen)
    assert "请将身份证放在读卡区。" in ui.texts()

    read_card(ui, flow, worker, person)
    assert flow.state is S.PASSWORD
    assert "请输入6位取件密码。" in ui.texts()
    for left in (4, 3):
        builds = screen.builds
        tap_digits(ui, wrong_password(password))
        assert screen.keypad is not None and screen.keypad.entry.text == "●●●●●●"
        assert screen.builds == builds, "typing a digit must not lay out the page again"
        assert password not in "".join(ui.texts()) and wrong_password(password) not in "".join(
            ui.texts()
        )
        tap(ui, ctx, Msg("OK"))
        pump(ui, worker)
        assert flow.state is S.PASSWORD
        assert f"取件密码错误，还可以尝试 {left} 次。" in ui.texts()  # lockerd's words, in a box
        dismiss_notice(ui, ctx, shell)
        # after OK the page itself still says how many tries are left
        assert f"密码错误，还可以再试{left}次。" in ui.texts()
        assert screen.keypad.entry.text == "○○○○○○"
    tap_digits(ui, password)
    tap(ui, ctx, Msg("OK"))
    assert screen.busy_overlay.parent is not None  # "opening" shows while lockerd works
    pump(ui, worker)
    assert flow.state is S.OPEN and not modal_shown(shell)
    assert "A03号柜门已打开" in ui.texts()

    # the cabinet picture: the opened bay, and only it, bright, with its id, where it sits
    cabinet = screen.cabinet
    assert isinstance(cabinet, CabinetPicture) and cabinet.highlighted == "A03"
    lit = [c for c in cabinet.cells.values() if c.fill.rgba == list(HIGHLIGHT)]
    assert [c.bay_id for c in lit] == ["A03"]
    cell = lit[0]
    assert cell.label.text == "A03" and cell.label.bold
    opened = flow.view.open_bay
    assert opened is not None and cell.position == GridPosition(0, 2) == opened.position
    assert len(cabinet.cells) == 12 and cabinet.grid is not None and cabinet.grid.columns == 2
    assert cabinet.blinking
    # and on the screen's pixels: inside that box the amber, in a neighbour not
    shot = ui.screenshot("open-highlight")
    with Image.open(shot) as image:
        picked = pixel_in(image, cabinet, cell.rect)
        neighbour = pixel_in(image, cabinet, cabinet.cells["A04"].rect)
    assert picked == tuple(round(c * 255) for c in HIGHLIGHT[:3])
    assert neighbour != picked
    x, y, w, h = cell.rect
    assert cabinet.cell_at(x + w / 2, y + h / 2) is cell

    # the applicant opens the door, takes the certificate and shuts the door; the door's
    # state changes a line, not the page (a finger on "ask staff" keeps its button)
    builds = screen.builds
    open_door(locker, bay_id)
    feed.deliver_until(
        flow, lambda: flow.view.open_bay is not None and flow.view.open_bay.door == "open"
    )
    ui.settle()
    assert "柜门已打开，请取出物品后关好柜门。" in ui.texts()
    assert screen.builds == builds and screen.cabinet is cabinet
    locker.sim.control.take_item(locker.board, locker.channel(bay_id))
    close_door(locker, bay_id)
    feed.deliver_until(flow, lambda: flow.state is S.DONE)
    ui.settle()
    assert "您已取到证件。" in ui.texts()
    assert not cabinet.blinking  # that page is gone, and its blink with it
    tap(ui, ctx, Msg("Finish"))
    assert flow.ended == Finished("pickup", str(deposit_id), evaluate=True)
    ui.settle()
    assert screen.body.children == []  # wiped: nothing of the applicant's stays on screen
