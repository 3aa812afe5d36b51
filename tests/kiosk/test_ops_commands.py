"""Ops lock and unlock a kiosk by signed command, and the kiosk reports its health.

Everything is real: mosquitto with TLS and the production ACL, ``hall serve`` in process
(``HallRunner``), ``hall command`` run as ops run it (a subprocess signing with the hall's key),
and the kiosk assembled in mqtt mode from a site file, with the hall's public key installed, a
plain ``QueueWorker`` and the test playing the UI thread (``post``). The kiosk and ``hall
command`` use the system clock, because a command's window is checked against the kiosk's.
"""

# ruff: noqa: F811  (the shared fixtures are imported by name; pytest passes them back)

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hallkiosk.clock import SystemClock
from kiosk.assembly import Kiosk, assemble
from kiosk.flows.base import Bilingual, QueueWorker
from kiosk.flows.home import JourneyKind, TileId
from kiosk.flows.session import WHERE_INSTEAD
from kiosk.services.telemetry import SOURCE_KEYS
from kiosk.settings import load_kiosk_settings
from tests.fixtures import wait_until
from tests.fixtures.certs import CertAuthority
from tests.fixtures.mosquitto import Broker, MqttProbe
from tests.kiosk.services.helpers import (
    HALL_ID,
    KIOSK,
    WAIT_S,
    HallRunner,
    broker,  # noqa: F401
    hall,  # noqa: F401
    kiosk_site,
    wait_online,
)
from tests.kiosk.test_assembly import UiThread
from uplink.messages import Ack, decode, encode
from uplink.signing import load_private_key, sign_command, write_public_key
from uplink.topics import Topics

K = JourneyKind
TOPICS = Topics(HALL_ID, KIOSK, "kiosk")
MAINTENANCE = Bilingual("设备维护", "Maintenance")
GO_TO_WINDOW_2 = "请到2号综合窗口办理 / Please go to window 2"
METRICS = {
    "app_version",
    "ops_locked",
    *SOURCE_KEYS,
    "outbox_events",
    "outbox_oldest_ts",
    "command_acks_pending",
    "cpu_temp_c",
    "disk_free_bytes",
    "mem_free_bytes",
    "uptime_s",
}


@pytest.fixture
def clock() -> SystemClock:
    return SystemClock("Asia/Shanghai")


@pytest.fixture
def site(tmp_path: Path, broker: Broker, test_ca: CertAuthority, hall: HallRunner) -> Path:
    public = tmp_path / "hall-command.pub"  # provisioning installs it next to the certificate
    write_public_key(public, load_private_key(hall.settings.signing_key_path).public_key())
    return kiosk_site(
        tmp_path / "kiosk",
        broker,
        test_ca,
        hall_key_file=public,
        extra="[kiosk.telemetry]\ninterval_s = 5.0\n",
    )


class Running:
    """The assembled kiosk: started, closed and assembled again on the same data directory."""

    def __init__(self, site: Path, ui: UiThread, worker: QueueWorker, clock: SystemClock) -> None:
        self.site, self.ui, self.worker, self.clock = site, ui, worker, clock
        self.kiosk: Kiosk | None = None

    def assemble(self) -> Kiosk:
        settings = load_kiosk_settings([self.site])
        self.kiosk = assemble(settings, self.worker, self.ui.post, clock=self.clock)
        return self.kiosk

    def start(self) -> Kiosk:
        kiosk = self.assemble()
        kiosk.start()
        wait_online(kiosk.runtime)
        return kiosk

    def close(self) -> None:
        if self.kiosk is not None:
            self.kiosk.close()
            self.kiosk = None


@pytest.fixture
def worker() -> Iterator[QueueWorker]:
    made = QueueWorker()
    yield made
    made.close()


@pytest.fixture
def running(
    site: Path, worker: QueueWorker, clock: SystemClock, hall: HallRunner
) -> Iterator[Running]:
    made = Running(site, UiThread(), worker, clock)
    try:
        yield made
    finally:
        made.close()


def hall_command(hall: HallRunner, action: str, *args: str) -> dict[str, Any]:
    """``hall command kiosk-01 ACTION --component kiosk --arg K=V ...``, as ops type it."""
    argv = [sys.executable, "-m", "hall", "--config", str(hall.site), "--json", "command"]
    argv += [KIOSK, action, "--component", "kiosk", "--wait-s", str(WAIT_S)]
    for arg in args:
        argv += ["--arg", arg]
    shown = subprocess.run(argv, capture_output=True, text=True, timeout=WAIT_S + 30, check=False)
    assert shown.returncode == 0, shown.stderr
    printed: dict[str, Any] = json.loads(shown.stdout)
    return printed


def statuses(printed: dict[str, Any]) -> list[str]:
    return [a["status"] for a in printed["acks"]]


def hall_probe(broker: Broker, test_ca: CertAuthority) -> MqttProbe:
    """A second hall client: sees the commands the hall sends and the kiosk's acks."""
    probe = broker.connect("hall-ops-probe", cert=test_ca.issue_client(f"hall.{HALL_ID}"))
    probe.subscribe(TOPICS.command, 1)
    probe.subscribe(TOPICS.ack, 1)
    return probe


def acks_of(probe: MqttProbe, command_id: str) -> list[dict[str, Any]]:
    acks = [decode(Ack, p).root for p in probe.payloads(TOPICS.ack)]
    return [json.loads(a.model_dump_json()) for a in acks if a.command_id == command_id]


def wait_rejected(probe: MqttProbe, command_id: str, count: int = 1) -> list[dict[str, Any]]:
    def rejected() -> list[dict[str, Any]] | None:
        found = [a for a in acks_of(probe, command_id) if a["status"] == "rejected"]
        return found if len(found) >= count else None

    return wait_until(rejected, timeout_s=WAIT_S, what=f"{count} rejection(s) of {command_id}")


def test_ops_lock_the_kiosk_it_stays_locked_across_a_restart_and_unlock_brings_it_home(
    running: Running, hall: HallRunner, broker: Broker, test_ca: CertAuthority
) -> None:
    kiosk = running.start()
    ui, session = running.ui, kiosk.session
    probe = hall_probe(broker, test_ca)

    locked = hall_command(
        hall,
        "lock",
        f"reason={json.dumps({'zh': MAINTENANCE.zh, 'en': MAINTENANCE.en}, ensure_ascii=False)}",
        f"where_instead={GO_TO_WINDOW_2}",
    )
    assert statuses(locked) == ["accepted", "result"], locked
    result = locked["acks"][-1]["result"]
    assert (result["ops_locked"], result["already_locked"]) == (True, False)
    # durable before the result: the row in kiosk.db
    row = kiosk.runtime.store.one("SELECT * FROM kiosk_ops_lock")
    assert row is not None and (row["reason_zh"], row["reason_en"]) == ("设备维护", "Maintenance")
    assert row["command_id"] == locked["command_id"]
    # the session, on the UI thread only, shows out of service with ops' words
    ui.run_until(lambda: session.active is K.OUT_OF_SERVICE, "out of service")
    assert session.ops_locked and not session.staff_locked
    assert session.out_of_service_reason == MAINTENANCE
    assert session.where_instead == Bilingual(GO_TO_WINDOW_2, GO_TO_WINDOW_2)
    assert not any(t.enabled for t in session.tiles)
    # the hall recorded the outcome of the command it sent
    record = hall.running.store.one(
        "SELECT status, result FROM commands WHERE command_id = ?", locked["command_id"]
    )
    assert record is not None and record["status"] == "result"
    assert json.loads(record["result"])["ops_locked"] is True

    # `status` reports the lock and the kiosk's health
    status = hall_command(hall, "status")["acks"][-1]["result"]
    assert status["ops_locked"] is True and status["out_of_service"] is True
    assert status["ops_lock"]["reason_en"] == "Maintenance"
    assert status["ops_lock"]["command_id"] == locked["command_id"]
    assert status["printer_paper"] == "ok" and status["id_reader_present"] is True

    # a kiosk restarted while locked is locked from its first frame, before any post runs
    lock_payload = wait_until(
        lambda: probe.payloads(TOPICS.command), timeout_s=WAIT_S, what="the lock as sent"
    )[0]
    running.close()
    kiosk = running.assemble()
    session = kiosk.session
    assert session.active is K.OUT_OF_SERVICE and session.out_of_service_reason == MAINTENANCE
    kiosk.start()
    wait_online(kiosk.runtime)
    ui.run_until(lambda: True, "posts")
    assert session.active is K.OUT_OF_SERVICE

    unlocked = hall_command(hall, "unlock")
    assert statuses(unlocked) == ["accepted", "result"]
    assert unlocked["acks"][-1]["result"] == {
        "ops_locked": False,
        "was_locked": True,
        "staff_locked": False,
    }
    ui.run_until(lambda: session.active is K.HOME, "home again")
    assert not session.locked and all(t.enabled for t in session.tiles)
    assert kiosk.runtime.store.one("SELECT * FROM kiosk_ops_lock") is None

    # the same signed lock delivered again (after the restart): refused as a replay, not re-run
    probe.publish(TOPICS.command, lock_payload, qos=1)
    (replay,) = wait_rejected(probe, locked["command_id"])
    assert replay["reason"] == "replay"
    commands = kiosk.runtime.command_store
    assert commands is not None
    audit = [e for e in commands.audit() if e.command_id == locked["command_id"]]
    assert [e.stage for e in audit] == ["accepted", "result", "rejected"]
    assert audit[-1].reason == "command id already accepted"
    assert audit[1].detail["result"]["ops_locked"] is True  # the one run, before the restart
    assert kiosk.runtime.ops_lock.state() is None
    ui.run_until(lambda: True, "posts")
    assert session.active is K.HOME

    # a lock signed by the hall but expired before it arrived: refused, nothing locked
    now = running.clock.now()
    expired = sign_command(
        load_private_key(hall.settings.signing_key_path),
        device=KIOSK,
        component="kiosk",
        command_id="cmd-expired-lock",
        issued_at=now - timedelta(minutes=10),
        expires_at=now - timedelta(minutes=5),
        action="lock",
        args={"reason": "维护"},
    )
    probe.publish(TOPICS.command, encode(expired), qos=1)
    (refused,) = wait_rejected(probe, "cmd-expired-lock")
    assert refused["reason"] == "expired"
    assert kiosk.runtime.ops_lock.state() is None
    assert session.active is K.HOME


def test_bad_arguments_are_rejected_with_the_reason_and_change_nothing(
    running: Running, hall: HallRunner
) -> None:
    kiosk = running.start()
    commands = kiosk.runtime.command_store
    assert commands is not None

    def rejected(action: str, *args: str) -> tuple[str, str]:
        printed = hall_command(hall, action, *args)
        assert statuses(printed) == ["rejected"], printed
        (entry,) = [e for e in commands.audit() if e.command_id == printed["command_id"]]
        return printed["acks"][0]["reason"], entry.reason or ""

    reason, why = rejected("lock")
    assert reason == "invalid_args" and "reason: Field required" in why
    reason, why = rejected("lock", "reason=" + "维" * 201)
    assert reason == "invalid_args" and "at most 200 characters" in why
    reason, why = rejected("lock", 'reason={"zh": "维护"}')
    assert reason == "invalid_args" and "reason.zh_en.en: Field required" in why
    reason, why = rejected("lock", "reason=维护", "colour=red")
    assert reason == "invalid_args" and "colour: unknown field" in why
    reason, why = rejected("unlock", "force=true")
    assert reason == "invalid_args" and "force: unknown field" in why
    reason, why = rejected("reboot")
    assert reason == "unknown_action" and "known: lock, status, unlock" in why

    assert kiosk.runtime.ops_lock.state() is None
    running.ui.run_until(lambda: True, "posts")
    assert kiosk.session.active is K.HOME and not kiosk.session.locked

    # a single text serves both languages, and the kiosk's own "where instead" is kept
    printed = hall_command(hall, "lock", "reason=系统升级")
    assert statuses(printed) == ["accepted", "result"]
    running.ui.run_until(lambda: kiosk.session.active is K.OUT_OF_SERVICE, "locked")
    assert kiosk.session.out_of_service_reason == Bilingual("系统升级", "系统升级")
    assert kiosk.session.where_instead == WHERE_INSTEAD
    again = hall_command(hall, "lock", "reason=系统升级中")["acks"][-1]["result"]
    assert again["already_locked"] is True
    running.ui.run_until(
        lambda: kiosk.session.out_of_service_reason == Bilingual("系统升级中", "系统升级中"),
        "the new words",
    )


def test_the_hall_receives_the_kiosks_health_and_its_lock_at_once(
    running: Running, hall: HallRunner
) -> None:
    kiosk = running.start()

    def latest(**expected: Any) -> dict[str, Any] | None:
        history = hall.running.registry.telemetry_history(KIOSK, "kiosk", limit=1)
        if not history:
            return None
        metrics: dict[str, Any] = history[0]["metrics"]
        return metrics if all(metrics.get(k) == v for k, v in expected.items()) else None

    def wait_metrics(what: str, **expected: Any) -> dict[str, Any]:
        def step() -> dict[str, Any] | None:
            while not running.ui.calls.empty():  # the UI thread runs what was posted
                running.ui.calls.get()()
            return latest(**expected)

        return wait_until(step, timeout_s=WAIT_S, what=what)

    metrics = wait_metrics(
        "a snapshot with the devices and the session", id_reader_present=True, out_of_service=False
    )
    assert set(metrics) == METRICS  # nothing else: no identity, ticket or booking in it
    assert metrics["ops_locked"] is False and metrics["out_of_service"] is False
    assert (metrics["printer_paper"], metrics["printer_error"]) == ("ok", None)
    assert metrics["scanner_ok"] is True and metrics["camera_ok"] is True
    assert metrics["lockerd_reachable"] is None  # no locker on this kiosk
    assert metrics["command_acks_pending"] == 0 and metrics["outbox_events"] >= 0
    assert metrics["disk_free_bytes"] > 0

    # the paper runs low and the camera is unplugged: the next health check reports it
    kiosk.devices.printer.sim.near_end()  # type: ignore[attr-defined]
    kiosk.devices.camera.unplug()  # type: ignore[attr-defined]
    wait_metrics("paper low, camera gone", printer_paper="low", camera_ok=False)
    kiosk.devices.printer.sim.open_cover()  # type: ignore[attr-defined]
    wait_metrics("cover open", printer_paper=None, printer_error="printer_cover_open")

    # a lock is reported at once, not at the next interval; out of service once the UI applied it
    hall_command(hall, "lock", "reason=维护")
    wait_metrics("ops locked", ops_locked=True)
    running.ui.run_until(lambda: kiosk.session.active is K.OUT_OF_SERVICE, "out of service")
    wait_metrics("out of service", ops_locked=True, out_of_service=True)

    # `hall devices` shows the kiosk's own connection
    shown = subprocess.run(
        [sys.executable, "-m", "hall", "--config", str(hall.site), "--json", "devices"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    devices = {(d["device"], d["component"]): d for d in json.loads(shown.stdout)}
    assert devices[(KIOSK, "kiosk")]["state"] == "online"


def test_an_applicant_mid_journey_finishes_before_the_ops_lock_shows(
    running: Running, hall: HallRunner
) -> None:
    kiosk = running.start()
    session = kiosk.session
    session.start(TileId.STATUS)
    assert session.active is K.STATUS
    hall_command(hall, "lock", "reason=维护")
    running.ui.run_until(lambda: session.ops_locked, "the lock reached the session")
    assert session.active is K.STATUS  # not torn away mid-journey
    session.go_home()
    assert session.active is K.OUT_OF_SERVICE
