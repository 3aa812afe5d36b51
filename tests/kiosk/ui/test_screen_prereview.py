"""The pre-review screen on a real PreReviewFlow: the real hall in process, the document-camera
simulator, the simulated card reader and the ESC/POS printer simulator on a pty (the receipt is
read back from it), driven by synthetic touches in the real Kivy window. Every page is drawn in
Chinese, English and elderly mode (screenshots kept), with no text overflowing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kivy.uix.image import Image as KivyImage
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget
from PIL import Image, ImageStat

from drivers.camera import CameraSettings
from drivers.camera.sim import SimCamera
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.flows.base import Bilingual, Msg, QueueWorker
from kiosk.flows.home import Finished
from kiosk.flows.prereview import PreReviewFlow, PreReviewState
from kiosk.services.hall_gateway import EmbeddedTransport, Matter
from kiosk.services.hall_service import HallGateway
from kiosk.services.store import KioskStore
from kiosk.services.uploads import PreReviewSpool
from kiosk.ui.context import UiContext
from kiosk.ui.screens.prereview import SCREENS, PreReviewScreen
from kiosk.ui.widgets import KioskButton
from tests.drivers.printer.conftest import PrinterSimHandle
from tests.kiosk.flows.conftest import (  # noqa: F401  (fixtures used by name below)
    DEVICE,
    YOUNG,
    SwitchableTransport,
    clock,
    hall,
    hall_service,
    id_reader,
    open_hall,
    printed_texts,
    printer,
    printer_sim,
    printer_sim_process,
    queued,
    read_citizen_card,
)
from tests.kiosk.ui.harness import KivyHarness
from tests.kiosk.ui.test_screen_pickup import (
    EveryMode,
    dismiss_notice,
    pump,
    show,
    tap,
    tap_digits,
    tap_tile,
)

S = PreReviewState
PHONE = "13800138000"
PENSION = "SS-0101"  # id card, household register (required), bank card (optional)
_RULE = "本人持有效身份证件原件办理，委托他人办理的须提交授权委托书及双方身份证件"
_RULE_EN = "Bring the original ID; an agent also brings a signed authorisation and both IDs"
LONG_MATTER = (  # a hall whose one matter has a long 办事指南 and eight items
    "[[hall.prereview.matters]]\n"
    'code = "SS-0909"\narea = "social-security"\ndepartment = "社保中心"\n'
    'name_zh = "社会保障卡挂失补办"\nname_en = "Replacing a lost social security card"\n'
    f'guide_zh = "{"；".join(f"第{n}条：{_RULE}" for n in range(1, 13))}。"\n'
    f'guide_en = "{" ".join(f"Rule {n}: {_RULE_EN}." for n in range(1, 13))}"\n'
    "items = [\n"
    + ",\n".join(
        f'{{ id = "doc{n}", name_zh = "材料{n}（原件及复印件各一份）", '
        f'name_en = "Document {n} (the original and one copy)", required = {str(n < 6).lower()} }}'
        for n in range(1, 9)
    )
    + "\n]\n"
)


@pytest.fixture
def camera() -> SimCamera:
    return SimCamera(CameraSettings(width=640, height=480))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KioskStore]:
    made = KioskStore(tmp_path / "kiosk.db")
    yield made
    made.close()


def matter(flow: PreReviewFlow, code: str) -> Bilingual:
    found: Matter = next(m for m in flow.view.matters if m.code == code)
    return Bilingual(found.name_zh, found.name_en)


def to_phone(flow: PreReviewFlow, worker: QueueWorker, camera: SimCamera) -> None:
    """Pension items as the buttons would do it: two pictures taken and used, the optional
    one skipped."""
    flow.choose_matter(PENSION)
    flow.start_capture()
    for title in ("居民身份证", "户口簿"):
        camera.set_document(title)
        flow.snap()
        worker.pump()
        flow.accept()
    flow.skip()
    assert flow.state is S.PHONE


# -- every page in every mode ----------------------------------------------------------------


def test_every_prereview_page_in_every_mode(  # noqa: PLR0917 - fixtures
    ui: KivyHarness,
    ctx: UiContext,
    tmp_path: Path,
    hall: Hall,  # noqa: F811
    clock: ManualClock,  # noqa: F811
    store: KioskStore,
    queued: QueueWorker,  # noqa: F811
    camera: SimCamera,
    printer: EscposTicketPrinter,  # noqa: F811
    printer_sim: PrinterSimHandle,  # noqa: F811
    id_reader: SimIdentityReader,  # noqa: F811
) -> None:
    check = EveryMode(ui, ctx)
    card = read_citizen_card(id_reader, YOUNG)

    # the hall cannot be reached and the kiosk never had the catalog
    cut = SwitchableTransport(EmbeddedTransport(hall, DEVICE))
    cut.down = True
    flow = PreReviewFlow(queued, HallGateway(cut, clock=clock), camera, printer)
    shell = show(ui, ctx, SCREENS, "prereview", flow)
    pump(ui, queued)
    assert flow.state is S.UNAVAILABLE
    dismiss_notice(ui, ctx, shell)
    check("unavailable", Msg("Pre-review is not available right now"))
    tap(ui, ctx, Msg("Finish"))

    transport = SwitchableTransport(EmbeddedTransport(hall, DEVICE))
    spool = PreReviewSpool(store, tmp_path / "spool", clock, 64 * 1024)
    gateway = HallGateway(transport, clock=clock, spool=spool)
    flow = PreReviewFlow(queued, gateway, camera, printer)
    shell.show("prereview", flow)
    ui.settle()
    assert flow.state is S.LOADING and flow.busy is not None
    check("loading", Msg("Loading the matters…"))  # the busy box over the page
    pump(ui, queued)
    check("choose_matter", Msg("Please choose the matter you want to apply for."))
    tap_tile(ui, ctx, matter(flow, PENSION))
    assert flow.state is S.GUIDE
    check("guide", Msg("Guide (办事指南)"))
    tap(ui, ctx, Msg("Start taking pictures"))
    check("capture", Msg("Take picture"))
    camera.set_document("居民身份证")
    tap(ui, ctx, Msg("Take picture"))
    pump(ui, queued)
    assert flow.state is S.PREVIEW
    check("preview", Msg("Use this picture"))
    tap(ui, ctx, Msg("Use this picture"))
    camera.set_document("户口簿")
    flow.snap()
    queued.pump()
    flow.accept()
    ui.settle()
    check("capture-optional", Msg("Skip this item"))
    tap(ui, ctx, Msg("Skip this item"))
    assert flow.state is S.PHONE
    for digit in PHONE:
        flow.press(digit)
    ui.settle()
    check("phone", Msg("Please enter your mobile phone number."))
    tap(ui, ctx, Msg("OK"))
    assert flow.state is S.IDENTIFY
    check("identify", Msg("Please place your ID card on the reader."))
    assert flow.card_read(card)
    ui.settle()
    assert flow.state is S.CONFIRM
    check("confirm", Msg("Submit"))
    printer_sim.control.pull_paper()
    tap(ui, ctx, Msg("Submit"))
    pump(ui, queued)
    assert flow.state is S.PRINT_FAILED
    dismiss_notice(ui, ctx, shell)
    check("print_failed", Msg("Please write the number down, or try printing again."))
    printer_sim.control.load_paper()
    tap(ui, ctx, Msg("Print again"))
    pump(ui, queued)
    assert flow.state is S.DONE
    check("done", Msg("Receipt number"))
    tap(ui, ctx, Msg("Finish"))
    assert isinstance(flow.ended, Finished)

    # the hall goes away between the catalog and the submit: kept on the kiosk
    flow = PreReviewFlow(queued, gateway, camera, printer, identity=card)
    shell.show("prereview", flow)
    queued.pump()
    to_phone(flow, queued, camera)
    for digit in PHONE:
        flow.press(digit)
    flow.confirm_phone()
    transport.down = True
    flow.submit()
    pump(ui, queued)
    assert flow.state is S.QUEUED
    dismiss_notice(ui, ctx, shell)
    check("queued", Msg("Your materials are saved"))
    assert check.pages == 13
    check.assert_clean()


# -- the applicant's journey by touch --------------------------------------------------------


def test_choose_capture_retake_phone_card_submit_and_receipt_by_touch(  # noqa: PLR0917
    ui: KivyHarness,
    ctx: UiContext,
    hall_service: HallGateway,  # noqa: F811
    queued: QueueWorker,  # noqa: F811
    camera: SimCamera,
    printer: EscposTicketPrinter,  # noqa: F811
    printer_sim: PrinterSimHandle,  # noqa: F811
    id_reader: SimIdentityReader,  # noqa: F811
) -> None:
    flow = PreReviewFlow(queued, hall_service, camera, printer)
    shell = show(ui, ctx, SCREENS, "prereview", flow)
    screen = shell.current
    assert isinstance(screen, PreReviewScreen)
    pump(ui, queued)
    assert "请选择您要办理的事项。" in ui.texts()
    tap_tile(ui, ctx, matter(flow, PENSION))
    # the checklist with what is required, and the guide
    assert "收件清单" in ui.texts() and "办事指南" in ui.texts()
    assert ui.texts().count("必交") == 2 and ui.texts().count("可选") == 1
    view_matter = flow.view.matter
    assert view_matter is not None and view_matter.guide_zh in ui.texts()
    tap(ui, ctx, Msg("Start taking pictures"))
    assert "第1项，共3项" in ui.texts()
    current = flow.view.current
    assert current is not None and current.name_zh in ui.texts()

    # a blurred first picture, looked at and taken again
    camera.set_document("模糊的照片", noise=40)
    tap(ui, ctx, Msg("Take picture"))
    pump(ui, queued)
    assert flow.state is S.PREVIEW
    image = screen.preview_image
    assert image is not None and image.texture is not None
    assert image.texture.size == (640, 480)  # the camera's picture, decoded here
    assert image.norm_image_size[0] > 0 and image.norm_image_size[1] > 0
    blurred = ImageStat.Stat(screen_region(ui, image)).stddev
    assert max(blurred) > 10, "the preview box shows no picture"
    tap(ui, ctx, Msg("Take again"))
    assert flow.state is S.CAPTURE and flow.view.preview is None
    assert screen.preview_image is None  # the picture left with its page
    camera.set_document("居民身份证")
    tap(ui, ctx, Msg("Take picture"))
    pump(ui, queued)
    tap(ui, ctx, Msg("Use this picture"))
    assert "第2项，共3项" in ui.texts()
    camera.set_document("户口簿")
    tap(ui, ctx, Msg("Take picture"))
    pump(ui, queued)
    tap(ui, ctx, Msg("Use this picture"))
    assert "第3项，共3项" in ui.texts() and "可选" in ui.texts()
    tap(ui, ctx, Msg("Skip this item"))

    # the phone number by touch: shown as typed, refused until it is a mobile number
    assert flow.state is S.PHONE
    tap_digits(ui, PHONE)
    assert screen.keypad is not None and screen.keypad.entry.text == PHONE
    tap(ui, ctx, Msg("OK"))
    assert flow.state is S.IDENTIFY and "请将身份证放在读卡区。" in ui.texts()
    card = read_citizen_card(id_reader, YOUNG)
    assert flow.card_read(card)  # the reader's card, handed over as the app does
    ui.settle()
    assert flow.state is S.CONFIRM
    texts = ui.texts()
    assert "138****8000" in texts and PHONE not in "".join(texts)
    assert "张*三" in texts and YOUNG not in "".join(texts)
    assert "居民身份证：已拍摄" in texts and "银行卡：已跳过" in texts
    # "retake" on the summary, then Back: the summary again, no other item touched
    tap_row_button(ui, "户口簿：已拍摄")
    assert flow.state is S.CAPTURE and "户口簿" in ui.texts()
    tap(ui, ctx, Msg("Back"))
    assert flow.state is S.CONFIRM
    assert [(i.item.id, i.captured) for i in flow.view.items] == [
        ("id_card", True),
        ("hukou", True),
        ("bank_card", False),
    ]
    tap(ui, ctx, Msg("Submit"))
    pump(ui, queued)  # the upload, then the receipt printed
    assert flow.state is S.DONE, flow.notice
    receipt = flow.view.receipt
    assert receipt is not None and receipt.receipt_no == "YS2026112300001"
    assert "YS2026112300001" in ui.texts() and "已提交。请取走您的回执。" in ui.texts()
    assert "预审编号：YS2026112300001" in printed_texts(printer_sim)
    tap(ui, ctx, Msg("Finish"))
    assert flow.ended == Finished("prereview", "YS2026112300001", evaluate=True)


def tap_row_button(ui: KivyHarness, text: str) -> None:
    """Tap the button on the same row as the label showing ``text``."""
    label = ui.find_text(text)
    [button] = [w for w in label.parent.children if isinstance(w, KioskButton)]
    ui.tap(button)


def screen_region(ui: KivyHarness, widget: KivyImage) -> Image.Image:
    """The screenshot's pixels under ``widget``'s drawn picture."""
    shot = ui.screenshot("preview-picture")
    w, h = widget.norm_image_size
    cx, cy = widget.to_window(*widget.center)
    with Image.open(shot) as image:
        top = image.height - (cy + h / 2)
        return image.crop((round(cx - w / 2), round(top), round(cx + w / 2), round(top + h)))


def test_a_long_guide_scrolls_under_fixed_buttons(  # noqa: PLR0917
    ui: KivyHarness,
    ctx: UiContext,
    tmp_path: Path,
    clock: ManualClock,  # noqa: F811
    queued: QueueWorker,  # noqa: F811
    camera: SimCamera,
    printer: EscposTicketPrinter,  # noqa: F811
) -> None:
    long_hall = open_hall(tmp_path / "long-guide-hall", clock, LONG_MATTER)
    try:
        gateway = HallGateway(EmbeddedTransport(long_hall, DEVICE), clock=clock)
        flow = PreReviewFlow(queued, gateway, camera, printer)
        shell = show(ui, ctx, SCREENS, "prereview", flow)
        pump(ui, queued)
        tap_tile(ui, ctx, matter(flow, "SS-0909"))
        assert flow.state is S.GUIDE
        check = EveryMode(ui, ctx)
        check("guide-long", Msg("Start taking pictures"))  # nothing sticks out, in any mode
        check.assert_clean()
        ctx.set_elderly(True)  # large text: the guide is far longer than the page
        ui.settle()
        screen = shell.current
        assert screen is not None
        [scroll] = [w for w in screen.body.walk() if isinstance(w, ScrollView)]
        content = scroll.children[0]
        assert content.height > scroll.height  # longer than its box: it must scroll
        guide = content.children[0]  # the last block: the guide text
        assert guide.text.startswith("第1条") and guide.text.endswith("。")

        def on_view(widget: Widget) -> bool:
            _, bottom = widget.to_window(widget.x, widget.y)
            _, view_bottom = scroll.to_window(scroll.x, scroll.y)
            return bool(bottom >= view_bottom - 1)

        assert scroll.scroll_y == 1 and not on_view(guide)  # starts at the top
        scroll.scroll_y = 0  # as a swipe up would leave it
        ui.settle()
        assert on_view(guide)
        tap(ui, ctx, Msg("Start taking pictures"))  # the buttons stayed put under the list
        assert flow.state is S.CAPTURE and "第1项，共8项" in ui.texts()
    finally:
        ctx.set_elderly(False)
        long_hall.close()
