"""A real hall (``hall.service.Hall`` + ``hall.server.HallServer``) that can be stopped and started
again on the same data directory, and kiosk runtimes built from real site files.

The hall side follows tests/hall/test_server.py (TLS broker with the production ACL, the hall's
certificate CN ``hall.demo-hall``); the kiosk is ``kiosk-01`` with the demo hall's offline range.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from hall.appointments.importer import parse_csv
from hall.server import HallServer
from hall.service import Hall
from hall.settings import load_hall_settings
from hallkiosk.clock import Clock
from hallkiosk.privacy import gb11643_check_digit
from kiosk.runtime import KioskRuntime, start_runtime
from kiosk.settings import load_kiosk_settings
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MosquittoFactory
from uplink.signing import generate_private_key, write_private_key

HALL_ID = "demo-hall"
KIOSK = "kiosk-01"
WAIT_S = 30.0
q = json.dumps


def id_number(serial: int) -> str:
    first17 = f"33010619800101{serial:03d}"
    return first17 + gb11643_check_digit(first17)


def import_bookings(hall: Hall, rows: Iterable[tuple[str, int, str, str]]) -> None:
    """(booking_code, id serial, day YYYY-MM-DD, slot start HH:MM), through the platform's CSV
    import as ``hall appointments import`` does; each slot lasts 30 minutes."""
    lines = ["booking_code,id_number,name,matter_code,matter_name,area,slot_start,slot_end,phone"]
    for code, serial, day, start in rows:
        hour, minute = (int(x) for x in start.split(":"))
        end = f"{hour + (minute + 30) // 60:02d}:{(minute + 30) % 60:02d}"
        lines.append(
            f"{code},{id_number(serial)},张小三,SS-0101,养老保险参保,social-security,"
            f"{day} {start}:00,{day} {end}:00,13800138000"
        )
    result = parse_csv("\n".join(lines).encode(), hasher=hall.hasher, tz=hall.clock.tz)
    assert not result.errors, result.errors
    hall.appointments.store_records(result.records)


class HallRunner:
    """``hall serve`` in process on a fixed data directory: stop and start it at will."""

    def __init__(self, directory: Path, broker: Broker, ca: CertAuthority, clock: Clock) -> None:
        cert = ca.issue_client(f"hall.{HALL_ID}")
        directory.mkdir(parents=True, exist_ok=True)
        self.site = directory / "site.toml"
        self.site.write_text(
            "schema_version = 1\n"
            f"[site]\nhall_id = {q(HALL_ID)}\ndata_dir = {q(str(directory))}\n"
            f"[hall.mqtt]\nenabled = true\nhost = {q(broker.host)}\nport = {broker.port}\n"
            "reconnect_min_s = 0.05\nreconnect_max_s = 0.5\nappointments_check_s = 0.2\n"
            f"[hall.mqtt.tls]\nca_file = {q(str(cert.ca))}\ncert_file = {q(str(cert.cert))}\n"
            f"key_file = {q(str(cert.key))}\n"
        )
        self.settings = load_hall_settings([self.site])
        write_private_key(self.settings.signing_key_path, generate_private_key())
        self.broker = broker
        self.clock = clock
        self.hall: Hall | None = None
        self.server: HallServer | None = None
        self.starts = 0

    def start(self) -> Hall:
        hall = Hall(self.settings, self.clock)
        hall.start()
        server = HallServer(hall)
        server.start()
        self.hall, self.server = hall, server
        assert server.wait_connected(WAIT_S)
        self.starts += 1
        return hall

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        if self.hall is not None:
            self.hall.close()
        self.hall = self.server = None

    @property
    def running(self) -> Hall:
        assert self.hall is not None, "the hall is stopped"
        return self.hall


def kiosk_site(
    directory: Path,
    broker: Broker,
    ca: CertAuthority,
    *,
    ranges: str = "[{ first = 1001, last = 1199 }]",
    extra: str = "",
    offline: str = "",
    hall_key_file: Path | None = None,
) -> Path:
    """A kiosk's site file: hall over MQTT (TLS, its own certificate), short timeouts;
    ``offline``: more ``[kiosk.offline]`` lines; ``hall_key_file``: the hall's command public
    key (without it every command is refused)."""
    cert = ca.issue_client(KIOSK)
    key = f"hall_key_file = {q(str(hall_key_file))}\n" if hall_key_file is not None else ""
    directory.mkdir(parents=True, exist_ok=True)
    site = directory / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\nhall_id = {q(HALL_ID)}\ndata_dir = {q(str(directory))}\n"
        f'[kiosk]\ndevice_id = {q(KIOSK)}\nhall_mode = "mqtt"\n'
        "[kiosk.timeouts]\nprereview_upload_s = 3.0\nticket_issue_s = 3.0\n"
        f"[kiosk.offline]\nranges = {ranges}\nretry_interval_s = 1.0\n{offline}"
        f"[uplink]\nenabled = true\nhost = {q(broker.host)}\nport = {broker.port}\n"
        f"reconnect_min_s = 0.05\nreconnect_max_s = 0.5\n{key}"
        f"[uplink.tls]\nca_file = {q(str(cert.ca))}\ncert_file = {q(str(cert.cert))}\n"
        f"key_file = {q(str(cert.key))}\n" + extra
    )
    return site


def start_kiosk(site: Path, clock: Clock, *, background: bool = True) -> KioskRuntime:
    return start_runtime(load_kiosk_settings([site]), clock=clock, background=background)


def wait_online(runtime: KioskRuntime, online: bool = True) -> None:
    wait_until(
        lambda: runtime.hall.online is online,
        timeout_s=WAIT_S,
        what=f"the kiosk to see the hall {'online' if online else 'offline'}",
    )


# -- fixtures shared by the MQTT tests (imported by name; the module's ``clock`` is used) -----


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    """The hall's broker: TLS, the production ACL, persistent sessions (a restart keeps them)."""
    return mosquitto(tls=True, hall_id=HALL_ID, persistence=True)


@pytest.fixture
def hall(
    tmp_path: Path, broker: Broker, test_ca: CertAuthority, clock: Clock
) -> Iterator[HallRunner]:
    """``hall serve`` in process on ``broker``, under the test module's ``clock``."""
    runner = HallRunner(tmp_path / "hall", broker, test_ca, clock)
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
