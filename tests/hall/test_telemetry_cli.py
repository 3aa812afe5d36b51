"""``hall telemetry``: the ops view of device health, run as ops run it (``python -m hall``)
against a serving hall that received real telemetry over a real mosquitto (TLS + the production
ACL): a real lockerd on the board simulator, and a kiosk's snapshots published on its own
certificate."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hall.server import HallServer
from hallkiosk.clock import ManualClock, SystemClock
from locker.client import ApiError
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MosquittoFactory, MqttProbe
from tests.fixtures.processes import LockboardSimFactory
from tests.hall.test_server import HALL_ID, WAIT_S, serving_hall
from tests.locker.harness import InProcessLockerd
from uplink.messages import Telemetry, encode
from uplink.topics import Topics

KIOSK = Topics(HALL_ID, "kiosk-01", "kiosk")
LOCKER = "locker-test"


@pytest.fixture
def broker(mosquitto: MosquittoFactory) -> Broker:
    return mosquitto(tls=True, hall_id=HALL_ID)


@pytest.fixture
def hall(tmp_path: Path, broker: Broker, test_ca: CertAuthority) -> Iterator[HallServer]:
    with serving_hall(tmp_path, broker, test_ca, SystemClock()) as server:
        yield server


@pytest.fixture
def locker(
    tmp_path: Path,
    hall: HallServer,
    broker: Broker,
    test_ca: CertAuthority,
    lockboard_sim: LockboardSimFactory,
) -> Iterator[InProcessLockerd]:
    cert = test_ca.issue_client(LOCKER)
    q = json.dumps
    extra = (
        f"[uplink]\nenabled = true\nhost = {q(broker.host)}\nport = {broker.port}\n"
        "reconnect_min_s = 0.05\nreconnect_max_s = 0.5\n"
        f"[uplink.tls]\nca_file = {q(str(cert.ca))}\ncert_file = {q(str(cert.cert))}\n"
        f"key_file = {q(str(cert.key))}\n"
    )
    sim = lockboard_sim("8a80", boards=(1,), channels=16)
    (tmp_path / "locker").mkdir()
    made = InProcessLockerd(
        tmp_path / "locker", sim, "8a80", channels=6, extra=extra, clock=ManualClock(now())
    ).start()
    try:
        yield made
    finally:
        made.stop()


def now() -> datetime:
    return SystemClock().now()


def kiosk_metrics(**changed: Any) -> dict[str, Any]:
    """What a kiosk reports (kiosk/services/telemetry.py), healthy unless changed."""
    return {
        "app_version": "0.1.0",
        "ops_locked": False,
        "out_of_service": False,
        "staff_locked": False,
        "staff_locked_by": None,
        "staff_locked_since": None,
        "printer_paper": "ok",
        "printer_error": None,
        "id_reader_present": True,
        "scanner_ok": True,
        "camera_ok": True,
        "lockerd_reachable": None,
        "outbox_events": 0,
        "outbox_oldest_ts": None,
        "command_acks_pending": 0,
        "cpu_temp_c": 48.5,
        "disk_free_bytes": 9_800_000_000,
        "mem_free_bytes": 812_000_000,
        "uptime_s": 3600.0,
        **changed,
    }


def publish_kiosk(probe: MqttProbe, taken: datetime, metrics: dict[str, Any]) -> None:
    message = Telemetry(v=1, ts=taken, device="kiosk-01", component="kiosk", metrics=metrics)
    probe.publish(KIOSK.telemetry, encode(message), qos=0)


def birth(session: int) -> bytes:
    return json.dumps(
        {
            "v": 1,
            "state": "online",
            "device": "kiosk-01",
            "component": "kiosk",
            "session": session,
            "boot_id": uuid.uuid4().hex,
            "ts": datetime.now(UTC).isoformat(),
            "versions": {"hallkiosk": "0.1.0", "schema": 1},
        }
    ).encode()


def hall_cli(hall: HallServer, *args: str) -> subprocess.CompletedProcess[str]:
    site = Path(hall.hall.settings.site.data_dir) / "site.toml"
    return subprocess.run(
        [sys.executable, "-m", "hall", "--config", str(site), *args],
        capture_output=True,
        text=True,
        timeout=WAIT_S + 30,
        check=False,
    )


def table(text: str) -> list[dict[str, str]]:
    """The printed table as rows keyed by the header (columns are 2+ spaces apart)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.split(r"\s{2,}", lines[0].strip())
    rows = []
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def test_ops_see_the_latest_health_of_every_device_and_one_devices_history(
    hall: HallServer, locker: InProcessLockerd, broker: Broker, test_ca: CertAuthority
) -> None:
    registry = hall.hall.registry
    # the kiosk: online, an older healthy snapshot, then one from two hours ago with problems
    probe = broker.connect("kiosk-01-probe", cert=test_ca.issue_client("kiosk-01"))
    probe.publish(KIOSK.presence, birth(3), retain=True)
    taken = now() - timedelta(hours=2)
    publish_kiosk(probe, taken - timedelta(hours=1), kiosk_metrics())
    publish_kiosk(
        probe,
        taken,
        kiosk_metrics(
            printer_paper="low",
            ops_locked=True,
            out_of_service=True,
            camera_ok=False,
            outbox_events=3,
            outbox_oldest_ts=(taken - timedelta(minutes=10)).astimezone(UTC).isoformat(),
        ),
    )
    wait_until(
        lambda: any(d["device"] == "kiosk-01" for d in registry.devices()),
        timeout_s=WAIT_S,
        what="the kiosk's birth at the hall",
    )
    wait_until(
        lambda: len(registry.telemetry_history("kiosk-01", "kiosk")) == 2,
        timeout_s=WAIT_S,
        what="the kiosk's two snapshots at the hall",
    )
    # the locker: a bay jams on a load (out of order), the next load takes another bay
    locker.sim.control.jam(locker.board, 1)
    with pytest.raises(ApiError):
        locker.start_load("a" * 64, size="S")
    assert locker.start_load("b" * 64, size="S")["bay_id"] == "A02"

    def locker_reported() -> bool:
        latest = registry.telemetry_history(LOCKER, "lockerd", limit=1)
        metrics = latest[0]["metrics"] if latest else {}
        return metrics.get("bays_out_of_order") == 1 and metrics.get("bays_occupied") == 1

    wait_until(locker_reported, timeout_s=WAIT_S, what="the locker's snapshot with the jam")
    wait_until(
        lambda: any(a["code"] == "door_jammed" for a in registry.alarms()),
        timeout_s=WAIT_S,
        what="the jam alarm at the hall",
    )

    # the overview: one line per device component, newest snapshot
    shown = hall_cli(hall, "telemetry")
    assert shown.returncode == 0, shown.stderr
    rows = {(r["DEVICE"], r["COMPONENT"]): r for r in table(shown.stdout)}
    kiosk, lockerd = rows[("kiosk-01", "kiosk")], rows[(LOCKER, "lockerd")]
    assert kiosk["PRESENCE"] == "online" and kiosk["AGE"].startswith("2h")
    assert (kiosk["PAPER"], kiosk["LOCK"]) == ("LOW", "OPS")
    assert kiosk["OUTBOX"] == "3 (oldest 2h10m)"
    assert "camera DOWN" in kiosk["DETAIL"] and "disk 9.8GB free" in kiosk["DETAIL"]
    assert lockerd["PRESENCE"] == "online" and re.fullmatch(r"\d+(s|m\d\ds)", lockerd["AGE"])
    assert (lockerd["PAPER"], lockerd["LOCK"], lockerd["ALARMS"]) == ("-", "-", "1")
    assert re.fullmatch(r"\d+( \(oldest .+\))?( \+\d+ acks)?", lockerd["OUTBOX"])
    assert "bays 1/6 used, 1 OUT OF ORDER" in lockerd["DETAIL"]
    assert "boards 1/1" in lockerd["DETAIL"] and "DOWN" not in lockerd["DETAIL"]
    assert shown.stdout.rstrip().endswith("2 device component(s), 0 offline, 1 with active alarms")

    # the same as JSON, times in the hall's zone
    shown = hall_cli(hall, "telemetry", "--component", "kiosk", "--json")
    assert shown.returncode == 0, shown.stderr
    (entry,) = json.loads(shown.stdout)
    assert (entry["device"], entry["state"], entry["active_alarms"]) == ("kiosk-01", "online", 0)
    (latest,) = entry["snapshots"]
    assert latest["metrics"]["printer_paper"] == "low" and latest["age_s"] >= 7200
    assert latest["ts"] == taken.astimezone(hall.hall.clock.tz).isoformat()
    assert latest["ts"].endswith("+08:00")

    # one device's history, oldest first
    shown = hall_cli(hall, "telemetry", "kiosk-01", "--last", "5")
    assert shown.returncode == 0, shown.stderr
    title, _, rest = shown.stdout.partition("\n")
    assert title.startswith("kiosk-01/kiosk: online, last seen ")
    history = table(rest)
    assert [(r["PAPER"], r["LOCK"]) for r in history] == [("ok", "no"), ("LOW", "OPS")]
    assert history[0]["AGE"].startswith("3h") and history[1]["AGE"].startswith("2h")
    local = taken.astimezone(hall.hall.clock.tz)
    assert history[1]["TIME (Asia/Shanghai)"] == f"{local:%Y-%m-%d %H:%M:%S}"
    shown = hall_cli(hall, "--json", "telemetry", "kiosk-01", "--last", "1")
    assert [len(e["snapshots"]) for e in json.loads(shown.stdout)] == [1]

    # an unknown device is said so, not shown as an empty table
    shown = hall_cli(hall, "telemetry", "kiosk-99")
    assert shown.returncode == 1 and "no telemetry from kiosk-99 (no such device)" in shown.stderr
    shown = hall_cli(hall, "telemetry", "--last", "0")
    assert shown.returncode == 2 and "--last" in shown.stderr
