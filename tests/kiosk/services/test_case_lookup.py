"""``case.lookup`` from the kiosk: over a real mosquitto (TLS, the production ACL) to a real
``hall serve``, and over the embedded hall, bare and as the runtime assembles it. The hall's
case table is filled by its CSV import, as ``hall case import`` does."""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.scanner.formats import make_case_barcode
from hall.service import Hall
from hallkiosk.clock import ManualClock
from kiosk.runtime import start_runtime
from kiosk.services.hall_gateway import (
    CaseRecipient,
    EmbeddedTransport,
    HallRefusal,
    HallUnreachable,
)
from kiosk.services.hall_service import HallCaseDirectory, HallGateway
from kiosk.services.locker_gateway import Recipient
from kiosk.services.mqtt_transport import request_kinds
from kiosk.settings import RequestTimeouts, load_kiosk_settings
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker
from tests.hall.helpers import local, make_hall
from tests.kiosk.services.helpers import (
    HALL_ID,
    KIOSK,
    WAIT_S,
    HallRunner,
    broker,  # noqa: F401
    hall,  # noqa: F401
    id_number,
    kiosk_site,
    start_kiosk,
    wait_online,
)
from uplink.topics import Topics

KNOWN, OTHER, UNKNOWN = (make_case_barcode("GA", 2026, n) for n in (201, 202, 299))
FULL_NAMES = ("李小明", "欧阳小红")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 18, 0))


def import_cases(hall: Hall) -> str:
    """KNOWN for id_number(41) 李小明, OTHER for id_number(42) 欧阳小红; the hash of KNOWN's."""
    data = (
        "case_number,phone,id_number,name\n"
        f"{KNOWN},13800138041,{id_number(41)},{FULL_NAMES[0]}\n"
        f"{OTHER},13800138042,{id_number(42)},{FULL_NAMES[1]}\n"
    ).encode()
    parsed, summary = hall.import_cases(data)
    assert parsed.errors == [] and summary["added"] == 2
    return hall.hasher.hash_id_number(id_number(41))


def test_case_lookup_over_mqtt_answers_audits_and_falls_back_when_the_hall_is_down(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: ManualClock, hall: HallRunner
) -> None:
    identity_hash = import_cases(hall.running)
    topics = Topics(HALL_ID, KIOSK, "kiosk")
    probe = broker.connect("hall-probe", cert=test_ca.issue_client(f"hall.{HALL_ID}"))
    probe.subscribe(f"{topics.base}/#")
    site = kiosk_site(tmp_path / "kiosk", broker, test_ca, extra="")
    runtime = start_kiosk(site, clock)
    try:
        wait_online(runtime)
        gateway = runtime.hall
        found = gateway.lookup_case(KNOWN, staff_id="clerk7")
        assert found == CaseRecipient(KNOWN, identity_hash, "李*明")
        directory = HallCaseDirectory(gateway)
        assert directory.recipient_for(KNOWN, staff_id="clerk7") == Recipient(
            identity_hash, "李*明"
        )
        assert directory.recipient_for(UNKNOWN, staff_id="clerk7") is None
        # malformed args: the hall's usual refusal, with its texts for the screen
        with pytest.raises(HallRefusal) as refused:
            gateway.lookup_case("GA", staff_id="clerk7")
        assert refused.value.code == "request_invalid"
        with pytest.raises(HallRefusal) as refused:
            gateway.lookup_case(KNOWN, staff_id="no staff id")
        assert refused.value.code == "request_invalid"

        audit = hall.running.cases.lookups()
        assert [(a["device"], a["staff_id"], a["case_number"], a["found"]) for a in audit] == [
            (KIOSK, "clerk7", UNKNOWN, False),
            (KIOSK, "clerk7", KNOWN, True),
            (KIOSK, "clerk7", KNOWN, True),
        ]
        # on the wire: the keyed hash and the masked name, never an ID number or full name
        wait_until(
            lambda: len(probe.payloads(f"{topics.base}/res")) >= 5,
            timeout_s=WAIT_S,
            what="the hall's five answers seen on the broker",
        )
        requests = probe.payloads(f"{topics.base}/req/case.lookup")
        answers = probe.payloads(f"{topics.base}/res")
        assert len(requests) == 5
        assert json.loads(requests[0])["args"] == {"case_number": KNOWN, "staff_id": "clerk7"}
        assert any(identity_hash.encode() in a for a in answers)
        for payload in requests + answers:
            for private in (id_number(41), id_number(42), *FULL_NAMES, "13800138041"):
                assert private.encode() not in payload

        # the hall goes away: no request is sent, the flow's card read is the fallback
        hall.stop()
        wait_online(runtime, online=False)
        with pytest.raises(HallUnreachable) as unreachable:
            directory.recipient_for(KNOWN, staff_id="clerk7")
        assert unreachable.value.reason.startswith("hall_offline")
        assert len(probe.payloads(f"{topics.base}/req/case.lookup")) == 5  # nothing sent
        hall.start()
        wait_online(runtime)
        assert directory.recipient_for(OTHER, staff_id="clerk8") == Recipient(
            hall.running.hasher.hash_id_number(id_number(42)), "欧**红"
        )
    finally:
        runtime.close()
        probe.close()


def test_the_kind_is_registered_with_its_timeout_from_the_settings(tmp_path: Path) -> None:
    kinds = {k.name: k.timeout_s for k in request_kinds(RequestTimeouts())}
    assert kinds["case.lookup"] == 3.0
    site = tmp_path / "site.toml"
    site.write_text(
        f"schema_version = 1\n[site]\ndata_dir = {json.dumps(str(tmp_path))}\n"
        "[kiosk.timeouts]\ncase_lookup_s = 1.5\n"
    )
    timeouts = load_kiosk_settings([site]).kiosk.timeouts
    assert {k.name: k.timeout_s for k in request_kinds(timeouts)}["case.lookup"] == 1.5


@pytest.fixture
def embedded_hall(tmp_path: Path, clock: ManualClock) -> Iterator[Hall]:
    (tmp_path / "hall").mkdir()
    made = make_hall(tmp_path / "hall", clock)
    yield made
    made.close()


def test_case_lookup_on_the_embedded_hall(embedded_hall: Hall) -> None:
    identity_hash = import_cases(embedded_hall)
    gateway = HallGateway(EmbeddedTransport(embedded_hall, "kiosk-03"))
    assert gateway.lookup_case(KNOWN, staff_id="clerk7") == CaseRecipient(
        KNOWN, identity_hash, "李*明"
    )
    assert gateway.lookup_case(UNKNOWN, staff_id="clerk7") is None
    with pytest.raises(HallRefusal) as refused:
        gateway.lookup_case(KNOWN, staff_id="")
    assert refused.value.code == "request_invalid"
    [audit, *_] = embedded_hall.cases.lookups()
    assert (audit["device"], audit["case_number"], audit["found"]) == ("kiosk-03", UNKNOWN, False)


def test_the_runtime_asks_its_in_process_hall(tmp_path: Path, clock: ManualClock) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        f"schema_version = 1\n[site]\ndata_dir = {json.dumps(str(tmp_path))}\n"
        '[kiosk]\ndevice_id = "kiosk-09"\n'
    )
    runtime = start_runtime(load_kiosk_settings([site]), clock=clock, background=False)
    try:
        hall = runtime.embedded_hall
        assert hall is not None and runtime.connection is None
        identity_hash = import_cases(hall)
        directory = HallCaseDirectory(runtime.hall)
        assert directory.recipient_for(KNOWN, staff_id="clerk9") == Recipient(
            identity_hash, "李*明"
        )
        [audit] = hall.cases.lookups()
        assert (audit["device"], audit["staff_id"]) == ("kiosk-09", "clerk9")
    finally:
        runtime.close()
