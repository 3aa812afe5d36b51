"""Loading certificates with the hall's case table: a case the hall knows goes from the scan
straight to the size (no card), an unknown one still asks for the applicant's card, and so does
one the hall could not be asked about. Real lockerd on the board simulator, the real hall in
process with cases imported from CSV, the simulated card reader hashing with the hall's key;
last the whole kiosk as ``assemble`` builds it."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from drivers.identity import SimSettings
from drivers.identity.pcsc.settings import PcscSettings
from drivers.identity.types import Identity
from drivers.identity.vcard.cards import (
    SYNTHETIC_STAFF_ID,
    SYNTHETIC_STAFF_PIN,
    CitizenCard,
    StaffCard,
)
from drivers.identity.vcard.sim import SimIdentityReader
from drivers.scanner import ScannerSettings
from drivers.scanner.formats import make_case_barcode
from drivers.scanner.sim import SimScanner
from hall.service import Hall
from hallkiosk.clock import ManualClock
from hallkiosk.privacy import IdentityHasher
from kiosk.assembly import assemble
from kiosk.flows.base import Msg, QueueWorker
from kiosk.flows.home import JourneyKind
from kiosk.flows.staff import CASE_LOOKUP_FAILED, StaffFlow, StaffPinGuard, StaffState
from kiosk.services.hall_gateway import EmbeddedTransport, HallUnreachable
from kiosk.services.hall_service import HallCaseDirectory, HallGateway
from kiosk.services.locker_gateway import LockerGateway
from kiosk.settings import load_kiosk_settings
from tests.fixtures import wait_until
from tests.fixtures.processes import LockboardSimFactory
from tests.hall.helpers import make_hall
from tests.kiosk.flows.locker_fixtures import (
    DoorFeed,
    close_door,
    feed,  # noqa: F401 (a fixture)
    gateway,  # noqa: F401 (a fixture)
    id_number,
    open_door,
    queue_worker,
    running_lockerd,
    worker,  # noqa: F401 (a fixture)
)
from tests.locker.harness import InProcessLockerd

PIN = "246810"
KNOWN, UNKNOWN, OTHER = (make_case_barcode("GA", 2026, n) for n in (301, 302, 303))
UNKNOWN_PROMPT = Msg.of("This case is not known here. Read the applicant's ID card.")


def cases_csv() -> bytes:
    """The case system's export: KNOWN and OTHER for id_number(31) 李小明 / (32) 欧阳小红."""
    return (
        "case_number,phone,id_number,name\n"
        f"{KNOWN},13800138031,{id_number(31)},李小明\n"
        f"{OTHER},13800138032,{id_number(32)},欧阳小红\n"
    ).encode()


class CuttableTransport:
    """The network between kiosk and hall, which the test can cut (a real hall behind it)."""

    def __init__(self, inner: EmbeddedTransport) -> None:
        self.inner = inner
        self.down = False

    def call(self, kind: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.down:
            raise HallUnreachable("network cut by the test")
        return self.inner.call(kind, args)


@pytest.fixture
def locker(tmp_path: Path, lockboard_sim: LockboardSimFactory) -> Iterator[InProcessLockerd]:
    with running_lockerd(tmp_path, lockboard_sim) as daemon:
        yield daemon


@pytest.fixture
def hall(tmp_path: Path, locker: InProcessLockerd) -> Iterator[Hall]:
    (tmp_path / "hall").mkdir()
    made = make_hall(tmp_path / "hall", ManualClock(locker.clock.now()))
    parsed, _summary = made.import_cases(cases_csv())
    assert parsed.errors == []
    yield made
    made.close()


def applicant_card(hasher: IdentityHasher, serial: int, name: str) -> Identity:
    """The applicant's citizen card read with the hall's identity key (as every kiosk is
    provisioned)."""
    reader = SimIdentityReader(SimSettings(), PcscSettings(), hasher)
    try:
        reader.present_card(CitizenCard(PcscSettings().citizen, id_number(serial), name))
        return reader.read(timeout_s=2.0)
    finally:
        reader.close()


def log_in(flow: StaffFlow, worker: QueueWorker, reader: SimIdentityReader) -> None:
    assert flow.card_read(reader.read(timeout_s=2.0))
    for digit in PIN:
        flow.press(digit)
    flow.confirm()
    worker.pump()
    assert flow.state is StaffState.MENU and flow.staff_id == "clerk7"


def scan(flow: StaffFlow, scanner: SimScanner, code: str) -> None:
    assert scanner.scan(code)
    assert flow.code_scanned(scanner.read(timeout_s=2.0).value)


def test_a_known_case_needs_no_card_an_unknown_or_unasked_one_does(
    *,
    worker: QueueWorker,
    locker: InProcessLockerd,
    gateway: LockerGateway,
    feed: DoorFeed,
    hall: Hall,
) -> None:
    reader = SimIdentityReader(SimSettings(), PcscSettings(), hall.hasher)
    reader.present_card(StaffCard(PcscSettings().staff, staff_id="clerk7", pin=PIN))
    scanner = SimScanner(ScannerSettings())
    scanner.start()
    transport = CuttableTransport(EmbeddedTransport(hall, "kiosk-01"))
    cases = HallCaseDirectory(HallGateway(transport))
    flow = StaffFlow(
        worker,
        locker.clock,
        gateway,
        reader,
        StaffPinGuard(locker.clock),
        cases=cases,
        grid_rows=3,
    )
    try:
        log_in(flow, worker, reader)
        flow.start_loading()
        worker.pump()
        assert flow.state is StaffState.LOAD_SCAN

        # 1: the hall knows the case: from the scan straight to the size, no card read
        scan(flow, scanner, KNOWN)
        assert flow.busy == Msg.of("Looking up the case…")
        worker.pump()
        assert flow.state is StaffState.LOAD_SIZE
        assert (flow.view.case_number, flow.view.recipient_name) == (KNOWN, "李*明")
        flow.choose_size("S")
        worker.pump()
        assert flow.state is StaffState.LOAD_OPEN
        bay = flow.view.open_bay
        assert bay is not None
        open_door(locker, bay.bay_id)
        locker.sim.control.put_item(locker.board, locker.channel(bay.bay_id))
        close_door(locker, bay.bay_id)
        feed.deliver_until(
            flow, lambda: flow.view.open_bay is not None and flow.view.open_bay.door == "closed"
        )
        flow.confirm_loaded()
        worker.pump()
        assert flow.state is StaffState.LOAD_SCAN and flow.notice is not None
        assert flow.notice.code == "stored"
        # it is the applicant's: lockerd finds it by the hash their own card gives
        card = applicant_card(hall.hasher, 31, "李小明")
        found = locker.client.call("deposits.for_identity", identity_hash=card.id_hash)
        assert [(d["case_number"], d["recipient"]) for d in found["deposits"]] == [(KNOWN, "李*明")]

        # 2: a case the hall does not know: the applicant's card, as before
        scan(flow, scanner, UNKNOWN)
        worker.pump()
        assert flow.state is StaffState.LOAD_RECIPIENT and flow.prompt == UNKNOWN_PROMPT
        assert flow.card_read(applicant_card(hall.hasher, 33, "赵小六"))
        worker.pump()  # the size is kept: the bay opens at once
        assert flow.state is StaffState.LOAD_OPEN and flow.view.recipient_name == "赵*六"
        flow.cancel_load()
        worker.pump()
        assert flow.state is StaffState.LOAD_SCAN

        # 3: the hall cannot be asked: the card just the same, and the clerk is told why
        transport.down = True
        scan(flow, scanner, OTHER)
        worker.pump()
        assert flow.state is StaffState.LOAD_RECIPIENT and flow.prompt == CASE_LOOKUP_FAILED
        assert flow.card_read(applicant_card(hall.hasher, 32, "欧阳小红"))
        worker.pump()
        assert flow.state is StaffState.LOAD_OPEN and flow.view.recipient_name == "欧**红"
        flow.cancel_load()
        worker.pump()
        # back again: the next scan asks the hall afresh
        transport.down = False
        scan(flow, scanner, OTHER)
        worker.pump()
        assert flow.state is StaffState.LOAD_OPEN and flow.view.recipient_name == "欧**红"
        flow.cancel_load()
        worker.pump()

        audit = hall.cases.lookups()
        assert [(a["staff_id"], a["case_number"], a["found"]) for a in reversed(audit)] == [
            ("clerk7", KNOWN, True),
            ("clerk7", UNKNOWN, False),
            ("clerk7", OTHER, True),
        ]
    finally:
        scanner.stop()
        reader.close()


def test_the_assembled_kiosk_asks_its_hall_for_the_case(
    tmp_path: Path, lockboard_sim: LockboardSimFactory
) -> None:
    """``assemble`` wires the staff flow's case directory to the kiosk's hall: staff card on
    home, PIN, the scan of a case imported at the hall, and the size comes next, no card."""
    posted: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()

    def ui_until(done: Callable[[], bool], what: str) -> None:
        def step() -> bool:
            while not posted.empty():
                posted.get()()  # the test's thread plays the Kivy main thread
            return done()

        wait_until(step, timeout_s=10.0, what=what)

    (tmp_path / "locker").mkdir()
    (tmp_path / "kiosk").mkdir()
    with running_lockerd(tmp_path / "locker", lockboard_sim) as locker, queue_worker() as worker:
        site = tmp_path / "kiosk" / "site.toml"
        site.write_text(
            "schema_version = 1\n"
            f"[site]\ndata_dir = {json.dumps(str(tmp_path / 'kiosk'))}\n"
            '[kiosk]\ndevice_id = "kiosk-01"\n'
            "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n"
            "[kiosk.locker]\nenabled = true\n"
            f"socket_path = {json.dumps(str(locker.settings.socket_path))}\n"
        )
        kiosk = assemble(load_kiosk_settings([site]), worker, posted.put)
        kiosk.start()
        try:
            hall = kiosk.runtime.embedded_hall
            assert hall is not None
            parsed, _summary = hall.import_cases(cases_csv())
            assert parsed.errors == []
            kiosk.devices.identity.present_card("staff")  # type: ignore[attr-defined]
            ui_until(lambda: kiosk.session.active is JourneyKind.STAFF, "staff mode")
            flow = kiosk.session.journey
            assert isinstance(flow, StaffFlow)
            ui_until(lambda: flow.state is StaffState.PIN, "the PIN asked")
            for digit in SYNTHETIC_STAFF_PIN:
                flow.press(digit)
            flow.confirm()
            worker.pump()
            assert flow.state is StaffState.MENU
            flow.start_loading()
            worker.pump()
            assert flow.state is StaffState.LOAD_SCAN
            kiosk.devices.scanner.scan(KNOWN)  # type: ignore[attr-defined]
            ui_until(
                lambda: worker.outstanding > 0 or flow.state is not StaffState.LOAD_SCAN,
                "the scan reaching the flow",
            )
            worker.pump()
            assert flow.state is StaffState.LOAD_SIZE
            assert (flow.view.case_number, flow.view.recipient_name) == (KNOWN, "李*明")
            [audit] = hall.cases.lookups()
            assert (audit["device"], audit["staff_id"], audit["found"]) == (
                "kiosk-01",
                SYNTHETIC_STAFF_ID,
                True,
            )
        finally:
            kiosk.close()
