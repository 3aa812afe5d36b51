"""Real parts for the flow tests: the hall in process on a ManualClock (packaged defaults plus
an imported appointment file), the ESC/POS printer simulator on a pty with the real printer
driver, the simulated card reader with virtual cards keyed by the hall's identity secret, and
workers. General fixtures (``clock``, ``hall``, ``hall_service``, ``printer``, ``printer_sim``,
``inline``, ``queued``, ``id_reader``) are meant for every flow test in this folder.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from drivers.identity import SimSettings
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from drivers.identity.vcard.cards import CitizenCard
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.printer import EscposTicketPrinter, open_printer
from drivers.scanner.formats import make_booking_code
from hall.appointments.importer import parse_csv, parse_json
from hall.service import Hall
from hallkiosk.clock import ManualClock
from hallkiosk.privacy import gb11643_check_digit
from kiosk.flows.base import InlineWorker, QueueWorker
from kiosk.services.appointments import AppointmentCache
from kiosk.services.events import EmbeddedEventPump, OutboxEvents
from kiosk.services.hall_gateway import EmbeddedTransport, HallUnreachable
from kiosk.services.hall_service import HallGateway
from kiosk.services.offline import OfflineDesk
from kiosk.services.store import KioskStore
from tests.drivers.printer.conftest import PrinterSimHandle, start_printer_sim, stop_printer_sim
from tests.hall.helpers import local, make_hall
from uplink.outbox import Outbox

DEVICE = "kiosk-01"  # has the offline range 1001-1199 in the packaged [hall] defaults
START = local(2026, 11, 23, 9, 0)  # a Monday morning, inside every quota window


def id_number(birth: str, serial: int) -> str:
    """A synthetic resident ID number: region 990101 belongs to nobody; ``birth`` YYYYMMDD."""
    first17 = f"990101{birth}{serial:03d}"
    return first17 + gb11643_check_digit(first17)


ELDER = id_number("19500101", 1)  # 76 on START
YOUNG = id_number("19900315", 2)
BORN_60_TOMORROW = id_number("19661124", 3)  # 59 on START, 60 the next day

# today's bookings (the 24 hour clock, START's day), by booking code
BOOK_10 = make_booking_code("20261123001")  # YOUNG, 10:00 (too early at 09:00)
BOOK_0930 = make_booking_code("20261123002")  # YOUNG, 09:30 (in the window at 09:00)
BOOK_ELDER = make_booking_code("20261123003")  # ELDER, 09:15, real-estate
BOOK_EARLY = make_booking_code("20261123004")  # BORN_60_TOMORROW, 07:30 (lapses at 08:30)


@dataclass(frozen=True)
class Booked:
    code: str
    id_number: str
    start: str  # HH:MM
    area: str = "social-security"
    matter: str = "SS-0101"


BOOKINGS = (
    Booked(BOOK_10, YOUNG, "10:00"),
    Booked(BOOK_0930, YOUNG, "09:30"),
    Booked(BOOK_ELDER, ELDER, "09:15", area="real-estate", matter="RE-0201"),
    Booked(BOOK_EARLY, BORN_60_TOMORROW, "07:30"),
)


# -- the hall ---------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def appointments_csv(path: Path, bookings: tuple[Booked, ...] = BOOKINGS) -> Path:
    """The booking platform's export, as ``hall appointments import FILE`` reads it."""
    lines = ["预约号,身份证号,姓名,事项编码,事项名称,区域,开始时间,结束时间,手机号,地点"]
    for b in bookings:
        hour = b.start[:2]
        lines.append(
            f"{b.code},{b.id_number},张小三,{b.matter},预约事项,{b.area},"
            f"2026-11-23 {b.start}:00,2026-11-23 {hour}:59:00,13800138000,一楼3号窗口"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def import_appointments(hall: Hall, path: Path) -> None:
    """What ``hall appointments import FILE`` does (hall/cli.py), on this hall."""
    parse = parse_json if path.suffix == ".json" else parse_csv
    result = parse(path.read_bytes(), hasher=hall.hasher, tz=hall.clock.tz)
    assert not result.errors, result.errors
    hall.appointments.store_records(result.records)


def open_hall(directory: Path, clock: ManualClock, extra: str = "") -> Hall:
    directory.mkdir(parents=True, exist_ok=True)
    return make_hall(directory, clock, extra)


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Iterator[Hall]:
    made = open_hall(tmp_path / "hall", clock)
    import_appointments(made, appointments_csv(tmp_path / "appointments.csv"))
    yield made
    made.close()


@pytest.fixture
def hall_service(hall: Hall) -> HallGateway:
    return HallGateway(EmbeddedTransport(hall, DEVICE))


class SwitchableTransport:
    """The network between kiosk and hall, which a test can cut (the thin edge: a real hall
    is behind it)."""

    def __init__(self, inner: EmbeddedTransport) -> None:
        self.inner = inner
        self.down = False

    def call(self, kind: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.down:
            raise HallUnreachable("network cut by the test")
        return self.inner.call(kind, args)


@dataclass
class OfflineKiosk:
    gateway: HallGateway
    transport: SwitchableTransport
    pump: EmbeddedEventPump


@pytest.fixture
def offline_kiosk(tmp_path: Path, hall: Hall, clock: ManualClock) -> Iterator[OfflineKiosk]:
    """The gateway as the runtime builds it (kiosk.db, outbox, offline desk) over a network
    the test can cut; outbox events reach the hall through the embedded pump."""
    db = tmp_path / "kiosk.db"
    store = KioskStore(db)
    outbox = Outbox(db, device=DEVICE, component="kiosk", clock=clock)
    pump = EmbeddedEventPump(outbox, hall.registry)
    events = OutboxEvents(outbox, on_recorded=pump.pump)
    desk = OfflineDesk(
        store, events, clock, AppointmentCache(store, clock, "hall-1"), ranges=[(1001, 1199)]
    )
    transport = SwitchableTransport(EmbeddedTransport(hall, DEVICE))
    gateway = HallGateway(transport, clock=clock, offline=desk, events=events)
    yield OfflineKiosk(gateway, transport, pump)
    outbox.close()
    store.close()


def submit_prereview(hall: Hall, identity_hash: str | None, *, matter: str = "SS-0101") -> str:
    """A pre-review submission through the hall's own requests (uploads, then submit); the
    receipt number."""
    files = []
    found = hall.settings.hall.prereview.matter(matter)
    assert found is not None, matter
    for item in [i.id for i in found.items if i.required]:
        data = f"{item}-image".encode()
        upload_id = uuid.uuid4().hex
        hall.handle_request(
            DEVICE,
            "prereview.upload",
            {
                "upload_id": upload_id,
                "file_name": f"{item}.jpg",
                "total_bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "chunk_bytes": len(data),
                "index": 0,
                "chunk_sha256": hashlib.sha256(data).hexdigest(),
                "data": base64.b64encode(data).decode(),
            },
        )
        files.append({"item_id": item, "upload_id": upload_id})
    args: dict[str, Any] = {
        "submission_key": uuid.uuid4().hex,
        "matter_code": matter,
        "phone": "13800138000",
        "id_masked": "9901**********0012",
        "name_masked": "张*三",
        "files": files,
    }
    if identity_hash is not None:
        args["identity_hash"] = identity_hash
    return str(hall.handle_request(DEVICE, "prereview.submit", args)["receipt_no"])


# -- cards ------------------------------------------------------------------------------------


@pytest.fixture
def id_reader(hall: Hall) -> Iterator[SimIdentityReader]:
    """The simulated reader; its cards are read with the hall's identity secret."""
    reader = SimIdentityReader(SimSettings(), PcscSettings(), hall.hasher)
    yield reader
    reader.close()


def read_citizen_card(reader: SimIdentityReader, number: str, name: str = "张小三") -> Identity:
    """Present a citizen card (市民卡) holding ``number`` and read it as the kiosk would."""
    reader.present_card(CitizenCard(PcscSettings().citizen, id_number=number, name=name))
    try:
        return reader.read(timeout_s=2.0)
    finally:
        reader.remove_card()


def read_card(reader: SimIdentityReader, kind: str) -> Identity:
    """One of the reader's own synthetic cards: ``idcard`` (chip serial only), ``citizen``
    (born 1950) or ``staff``."""
    reader.present_card(kind)  # type: ignore[arg-type]
    try:
        return reader.read(timeout_s=2.0)
    finally:
        reader.remove_card()


# -- the printer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def printer_sim_process() -> Iterator[PrinterSimHandle]:
    handle = start_printer_sim("--chinese-default", "off")
    try:
        yield handle
    finally:
        stop_printer_sim(handle)


@pytest.fixture
def printer_sim(printer_sim_process: PrinterSimHandle) -> PrinterSimHandle:
    """The module's simulator, powered, with paper, closed cover, nothing printed yet."""
    control = printer_sim_process.control
    control.come_online()
    control.load_paper()
    control.close_cover()
    control.jam_cutter(False)
    control.clear()
    return printer_sim_process


@pytest.fixture
def printer(printer_sim: PrinterSimHandle) -> Iterator[EscposTicketPrinter]:
    """The real ESC/POS driver on the simulator's pty (a native-QR 58 mm model)."""
    with open_printer(printer_sim.settings("generic-58")) as made:
        yield made


def printed_texts(sim: PrinterSimHandle) -> list[str]:
    return [str(i["text"]) for i in sim.control.items() if i["kind"] == "text"]


def printed_qr(sim: PrinterSimHandle) -> list[str]:
    return [str(i["data"]) for i in sim.control.items() if i["kind"] == "qr"]


def cuts(sim: PrinterSimHandle) -> int:
    return sum(1 for i in sim.control.items() if i["kind"] == "cut")


# -- workers ----------------------------------------------------------------------------------


@pytest.fixture
def inline() -> InlineWorker:
    return InlineWorker()


@pytest.fixture
def queued() -> Iterator[QueueWorker]:
    worker = QueueWorker()
    yield worker
    worker.close()


def on_day(clock: ManualClock, moment: datetime) -> None:
    """Move the clock forward to ``moment`` (never back)."""
    seconds = (moment - clock.now()).total_seconds()
    assert seconds >= 0, "ManualClock only moves forward"
    clock.advance(seconds)


@dataclass(frozen=True)
class Rig:
    """The usual parts of one flow test, as one fixture."""

    inline: InlineWorker
    clock: ManualClock
    hall: Hall
    hall_service: HallGateway
    printer: EscposTicketPrinter
    printer_sim: PrinterSimHandle
    id_reader: SimIdentityReader


@pytest.fixture
def rig(  # noqa: PLR0917 - fixtures arrive positionally
    inline: InlineWorker,
    clock: ManualClock,
    hall: Hall,
    hall_service: HallGateway,
    printer: EscposTicketPrinter,
    printer_sim: PrinterSimHandle,
    id_reader: SimIdentityReader,
) -> Rig:
    return Rig(inline, clock, hall, hall_service, printer, printer_sim, id_reader)
