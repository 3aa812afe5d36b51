"""Pre-review against the real hall in process, the document-camera simulator, the simulated card
reader and the ESC/POS printer simulator on a pty (the printed receipt is read back from it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from drivers.camera import CameraSettings, CameraTimeout
from drivers.camera.sim import SimCamera
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter
from drivers.scanner.formats import classify
from drivers.scanner.settings import FormatSettings
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.flows.base import Bilingual, FlowStateError, Msg, QueueWorker
from kiosk.flows.home import Cancelled, Finished
from kiosk.flows.prereview import PreReviewFlow, PreReviewState, UploadShown
from kiosk.flows.status import parse_receipt_no
from kiosk.services.hall_gateway import EmbeddedTransport
from kiosk.services.hall_service import HallGateway
from kiosk.services.store import KioskStore
from kiosk.services.uploads import PreReviewSpool, UploadProgress
from tests.drivers.printer.conftest import PrinterSimHandle
from tests.fixtures import wait_until
from tests.kiosk.flows.conftest import (
    DEVICE,
    YOUNG,
    SwitchableTransport,
    printed_qr,
    printed_texts,
    read_card,
    read_citizen_card,
)

S = PreReviewState
PHONE = "13800138000"


@pytest.fixture
def camera() -> SimCamera:
    return SimCamera(CameraSettings(width=640, height=480))


def start(
    worker: QueueWorker,
    hall: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    **extra: object,
) -> PreReviewFlow:
    flow = PreReviewFlow(worker, hall, camera, printer, page_size=1, **extra)  # type: ignore[arg-type]
    assert flow.state is S.LOADING and flow.busy == Msg.of("Loading the matters…")
    worker.pump()
    assert flow.state is S.CHOOSE_MATTER
    return flow


def snap_and_use(flow: PreReviewFlow, worker: QueueWorker, camera: SimCamera, title: str) -> None:
    camera.set_document(title)
    flow.snap()
    assert flow.busy == Msg.of("Taking the picture…")
    worker.pump()
    assert flow.state is S.PREVIEW
    flow.accept()


def enter(flow: PreReviewFlow, digits: str) -> None:
    for digit in digits:
        flow.press(digit)


def capture_pension_items(flow: PreReviewFlow, worker: QueueWorker, camera: SimCamera) -> None:
    """SS-0101: ID card and household register (required), bank card (optional, skipped)."""
    flow.choose_matter("SS-0101")
    flow.start_capture()
    snap_and_use(flow, worker, camera, "居民身份证")
    snap_and_use(flow, worker, camera, "户口簿")
    flow.skip()
    assert flow.state is S.PHONE


def test_capture_retake_skip_phone_card_submit_and_receipt(
    *,
    queued: QueueWorker,
    hall: Hall,
    hall_service: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
    id_reader: SimIdentityReader,
) -> None:
    flow = start(queued, hall_service, camera, printer)
    # the catalog a page at a time (elderly mode: one matter a page)
    assert [m.code for m in flow.view.matters] == ["SS-0101"] and flow.view.page_count == 2
    flow.next_page()
    assert [m.code for m in flow.view.matters] == ["RE-0201"]
    flow.prev_page()
    flow.choose_matter("SS-0101")
    assert flow.state is S.GUIDE
    view = flow.view
    assert view.matter is not None and "身份证" in view.matter.guide_zh
    assert [(i.item.id, i.item.required) for i in view.items] == [
        ("id_card", True),
        ("hukou", True),
        ("bank_card", False),
    ]
    flow.start_capture()
    current = flow.view.current
    assert current is not None and current.id == "id_card" and not flow.view.can_skip
    with pytest.raises(FlowStateError):
        flow.skip()  # a required item
    camera.set_document("模糊的照片", noise=40)
    flow.snap()
    queued.pump()
    first = flow.view.preview
    assert first is not None and first.jpeg[:2] == b"\xff\xd8" and first.width == 640
    flow.retake()
    assert flow.state is S.CAPTURE and flow.view.preview is None
    snap_and_use(flow, queued, camera, "居民身份证")
    assert [i.captured for i in flow.view.items] == [True, False, False]
    snap_and_use(flow, queued, camera, "户口簿")
    assert flow.view.can_skip
    flow.skip()
    assert [(i.captured, i.skipped) for i in flow.view.items] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    # the phone number: checked before it is taken
    assert flow.state is S.PHONE
    enter(flow, "12345678901")
    assert flow.view.phone_entry == "12345678901"
    flow.press("5")  # the twelfth digit is not taken
    flow.confirm_phone()
    assert flow.state is S.PHONE and flow.notice is not None
    assert flow.notice.code == "phone_invalid"
    for _ in range(11):
        flow.delete()
    enter(flow, PHONE)
    flow.confirm_phone()
    assert flow.state is S.IDENTIFY and flow.prompt == Msg.of(
        "Please place your ID card on the reader."
    )
    card = read_citizen_card(id_reader, YOUNG)
    assert flow.card_read(card)
    assert flow.state is S.CONFIRM
    assert flow.view.phone_masked == "138****8000" and flow.view.name_masked == "张*三"
    uploads: list[UploadProgress] = []  # on the sending thread; the app posts them on
    unsubscribe = hall_service.on_upload_progress(uploads.append)
    flow.submit()
    assert flow.busy == Msg.of("Uploading your materials…")
    assert flow.view.upload == UploadShown(0, 2)
    wait_until(lambda: any(p.file_index == 1 and p.complete for p in uploads), what="uploads")
    last = uploads[-1]
    flow.upload_progressed(last.file_index, last.files_total)  # as the app does on the UI thread
    assert flow.view.upload == UploadShown(1, 2) and flow.busy is not None
    queued.pump()  # the submit's answer, then the receipt printed
    unsubscribe()
    assert flow.state is S.DONE, flow.notice
    assert flow.view.upload is None
    receipt = flow.view.receipt
    assert receipt is not None and receipt.receipt_no == "YS2026112300001"
    assert not receipt.queued
    # the receipt as it came out of the printer
    texts = printed_texts(printer_sim)
    assert "网上预审提交回执" in texts
    assert "事项：城乡居民养老保险参保登记" in texts
    assert "预审编号：YS2026112300001" in texts
    assert "申请人：张*三" in texts and "提交材料：2 份" in texts
    # the printed QR is what the kiosk's scanner accepts, and hands the status flow the number
    scanned = [classify(qr, FormatSettings()).value for qr in printed_qr(printer_sim)]
    assert [parse_receipt_no(v) for v in scanned] == ["YS2026112300001"]
    # the hall has it, for this card, with both pictures as taken
    [status] = hall_service.prereview_status(identity_hash=card.id_hash)
    assert (status.receipt_no, status.matter_code, status.state) == (
        "YS2026112300001",
        "SS-0101",
        "pending",
    )
    flow.finish()
    assert flow.ended == Finished("prereview", "YS2026112300001", evaluate=True)


def test_the_hall_receives_the_pictures_as_taken(
    *,
    queued: QueueWorker,
    hall: Hall,
    hall_service: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    flow = start(
        queued, hall_service, camera, printer, identity=read_citizen_card(id_reader, YOUNG)
    )
    flow.choose_matter("SS-0101")
    flow.start_capture()
    taken = []
    for title in ("居民身份证", "户口簿", "银行卡"):
        camera.set_document(title)
        flow.snap()
        queued.pump()
        preview = flow.view.preview
        assert preview is not None
        taken.append(hashlib.sha256(preview.jpeg).hexdigest())
        flow.accept()
    enter(flow, PHONE)
    flow.confirm_phone()
    assert flow.state is S.CONFIRM  # the card came with the hand-over: no second read
    flow.submit()
    queued.pump()
    receipt = flow.view.receipt
    assert receipt is not None and receipt.receipt_no is not None
    submission = hall.prereview.get(receipt.receipt_no)
    assert [f["item_id"] for f in submission.files] == ["id_card", "hukou", "bank_card"]
    stored = [
        hashlib.sha256(hall.intake.file_path(f["upload_id"]).read_bytes()).hexdigest()
        for f in submission.files
    ]
    assert stored == taken


def test_recapture_from_the_summary_and_a_camera_fault(
    queued: QueueWorker,
    hall_service: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    flow = start(queued, hall_service, camera, printer)
    capture_pension_items(flow, queued, camera)
    enter(flow, PHONE)
    flow.confirm_phone()
    flow.card_read(read_citizen_card(id_reader, YOUNG))
    assert flow.state is S.CONFIRM
    flow.recapture("bank_card")  # the optional item after all
    assert flow.state is S.CAPTURE and flow.view.current is not None
    camera.fail_next(CameraTimeout("simulated: no frame"))
    flow.snap()
    queued.pump()
    assert flow.state is S.CAPTURE and flow.notice is not None
    assert flow.notice.code == "camera_timeout" and isinstance(flow.notice.text, Bilingual)
    snap_and_use(flow, queued, camera, "银行卡")
    assert flow.state is S.CONFIRM
    assert [i.captured for i in flow.view.items] == [True, True, True]
    flow.edit_phone()
    assert flow.state is S.PHONE and flow.view.phone_entry == ""
    enter(flow, "13912345678")
    flow.confirm_phone()
    assert flow.state is S.CONFIRM and flow.view.phone_masked == "139****5678"


def test_queued_when_the_hall_cannot_be_reached(
    *,
    tmp_path: Path,
    queued: QueueWorker,
    hall: Hall,
    clock: ManualClock,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
    id_reader: SimIdentityReader,
) -> None:
    store = KioskStore(tmp_path / "kiosk.db")
    spool = PreReviewSpool(store, tmp_path / "spool", clock, 64 * 1024)
    transport = SwitchableTransport(EmbeddedTransport(hall, DEVICE))
    gateway = HallGateway(transport, clock=clock, spool=spool)
    try:
        flow = start(queued, gateway, camera, printer)  # the catalog while still online
        capture_pension_items(flow, queued, camera)
        enter(flow, PHONE)
        flow.confirm_phone()
        flow.card_read(read_citizen_card(id_reader, YOUNG))
        transport.down = True
        flow.submit()
        queued.pump()
        assert flow.state is S.QUEUED
        assert flow.notice is not None and flow.notice.code == "prereview_queued"
        receipt = flow.view.receipt
        assert receipt is not None and receipt.queued and receipt.receipt_no is None
        assert printer_sim.control.items() == []  # no number yet, so no receipt
        assert [p.submission_key for p in gateway.pending_prereviews()] == [receipt.submission_key]
        flow.finish()
        assert flow.ended == Finished("prereview", receipt.submission_key, evaluate=True)
    finally:
        store.close()


def test_printer_out_of_paper_then_printed_again(
    *,
    queued: QueueWorker,
    hall_service: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
    id_reader: SimIdentityReader,
) -> None:
    flow = start(queued, hall_service, camera, printer)
    capture_pension_items(flow, queued, camera)
    enter(flow, PHONE)
    flow.confirm_phone()
    flow.card_read(read_citizen_card(id_reader, YOUNG))
    printer_sim.control.pull_paper()
    flow.submit()
    queued.pump()
    assert flow.state is S.PRINT_FAILED
    assert flow.notice is not None and flow.notice.call_staff
    receipt = flow.view.receipt
    assert receipt is not None and receipt.receipt_no is not None  # shown on the screen
    assert printer_sim.control.items() == []
    printer_sim.control.load_paper()
    flow.print_again()
    assert flow.busy == Msg.of("Printing your receipt…")
    queued.pump()
    assert flow.state is S.DONE
    assert [classify(qr, FormatSettings()).value for qr in printed_qr(printer_sim)] == [
        receipt.receipt_no
    ]


def test_cards_without_a_number_and_staff_cards(
    queued: QueueWorker,
    hall_service: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    flow = start(queued, hall_service, camera, printer)
    assert not flow.card_read(read_card(id_reader, "staff"))
    assert flow.card_read(read_card(id_reader, "idcard"))  # chip serial only
    assert flow.notice is not None and flow.notice.code == "card_without_number"
    assert not flow.view.has_identity


def test_wipe_drops_pictures_phone_and_identity(
    queued: QueueWorker,
    hall_service: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
    id_reader: SimIdentityReader,
) -> None:
    card = read_citizen_card(id_reader, YOUNG)
    flow = start(queued, hall_service, camera, printer, identity=card)
    capture_pension_items(flow, queued, camera)
    enter(flow, PHONE[:7])
    flow.wipe()
    view = flow.view
    assert flow.state is S.CLOSED and flow.ended is None
    assert view.items == () and view.preview is None and view.phone_entry == ""
    assert view.phone_masked is None and not view.has_identity and view.name_masked is None
    assert flow._d.photos == {} and flow._d.identity is None and flow._d.phone is None
    # a picture being taken when the screen timed out is dropped on arrival
    again = start(queued, hall_service, camera, printer)
    again.choose_matter("RE-0201")
    again.start_capture()
    again.snap()
    again.wipe()
    queued.pump()
    assert again.view.preview is None and again.state is S.CLOSED


def test_cancel_ends_the_journey(
    queued: QueueWorker,
    hall_service: HallGateway,
    camera: SimCamera,
    printer: EscposTicketPrinter,
) -> None:
    flow = start(queued, hall_service, camera, printer)
    flow.choose_matter("RE-0201")
    flow.back()
    assert flow.state is S.CHOOSE_MATTER
    flow.cancel()
    assert flow.ended == Cancelled()
