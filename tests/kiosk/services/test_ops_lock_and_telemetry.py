"""The ops lock in kiosk.db, the kiosk's telemetry sampler, and telemetry into the embedded hall.

The signed commands themselves, over a real broker with ``hall command``, are in
tests/kiosk/test_ops_commands.py."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.camera.settings import CameraSettings
from drivers.camera.sim import SimCamera
from drivers.camera.v4l2 import V4L2Camera
from hallkiosk.clock import ManualClock
from kiosk.flows.base import Bilingual
from kiosk.health import camera_present
from kiosk.runtime import KioskRuntime, start_runtime
from kiosk.services.commands import OpsLock, OpsLockState
from kiosk.services.store import MIGRATIONS, KioskStore, KioskStoreError
from kiosk.services.telemetry import SOURCE_KEYS, KioskTelemetry
from kiosk.settings import load_kiosk_settings
from tests.fixtures import wait_until
from tests.hall.helpers import local
from uplink.messages import Telemetry, decode
from uplink.outbox import Outbox
from uplink.schema import migrate_in

MAINTENANCE = Bilingual("设备维护", "Maintenance")
WINDOW_2 = Bilingual("请到2号窗口", "Please go to window 2")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 9, 45))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[KioskStore]:
    made = KioskStore(tmp_path / "kiosk.db")
    yield made
    made.close()


def test_the_ops_lock_is_on_disk_before_anyone_hears_of_it_and_outlives_the_process(
    tmp_path: Path, store: KioskStore, clock: ManualClock
) -> None:
    ops = OpsLock(store, clock)
    assert ops.state() is None and not ops.locked
    heard: list[tuple[OpsLockState | None, list[Any]]] = []

    def listener(state: OpsLockState | None) -> None:
        other = sqlite3.connect(tmp_path / "kiosk.db")  # what a restart would find
        try:
            heard.append((state, other.execute("SELECT reason_en FROM kiosk_ops_lock").fetchall()))
        finally:
            other.close()

    unsubscribe = ops.subscribe(listener)
    state, already = ops.lock(MAINTENANCE, WINDOW_2, "cmd-1")
    assert not already and heard == [(state, [("Maintenance",)])]
    assert state == OpsLockState(MAINTENANCE, WINDOW_2, "cmd-1", "2026-11-23T01:45:00.000000+00:00")
    assert state.describe() == {
        "reason_zh": "设备维护",
        "reason_en": "Maintenance",
        "where_instead_zh": "请到2号窗口",
        "where_instead_en": "Please go to window 2",
        "command_id": "cmd-1",
        "since": "2026-11-23T01:45:00.000000+00:00",
    }
    store.close()

    reopened = KioskStore(tmp_path / "kiosk.db")  # the kiosk restarted
    try:
        after = OpsLock(reopened, clock)
        assert after.state() == state
        clock.advance(60)
        newer, already = after.lock(Bilingual("升级", "Upgrade"), None, "cmd-2")
        assert already and newer.where_instead is None and newer.command_id == "cmd-2"
        assert after.unlock("cmd-3") == newer
        assert after.state() is None and after.unlock("cmd-4") is None
        assert OpsLock(reopened, clock).state() is None
    finally:
        reopened.close()
    unsubscribe()
    assert len(heard) == 1  # the first OpsLock's listener heard its own change only


def test_a_kiosk_db_of_the_previous_release_gets_the_ops_lock_table_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "kiosk.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    migrate_in(conn, "kiosk", MIGRATIONS[:1], KioskStoreError)
    conn.execute("INSERT INTO kiosk_catalog VALUES (1, '{}', '2026-11-22T08:00:00+08:00')")
    conn.execute("COMMIT")
    conn.close()
    store = KioskStore(path)
    try:
        version = store.one("SELECT version FROM kiosk_schema")
        assert version is not None and version[0] == len(MIGRATIONS) == 4
        assert store.one("SELECT payload FROM kiosk_catalog") is not None
        assert OpsLock(store, ManualClock(local(2026, 11, 23, 9, 0))).state() is None
    finally:
        store.close()


def test_a_change_gets_a_snapshot_at_once_with_only_known_plain_values(
    tmp_path: Path, store: KioskStore, clock: ManualClock
) -> None:
    outbox = Outbox(tmp_path / "kiosk.db", device="kiosk-01", component="kiosk", clock=clock)
    ops = OpsLock(store, clock)
    telemetry = KioskTelemetry(outbox, ops, data_dir=tmp_path, interval_s=3600, min_gap_s=0.01)
    telemetry.set_source(
        lambda: {
            "printer_paper": "low",
            "camera_ok": False,
            "id_number": "330106198001010012",  # not a metric: never sent
            "scanner_ok": ["not", "plain"],
        }
    )
    telemetry.start()
    try:
        wait_until(lambda: telemetry.taken == 1, what="the first snapshot")
        ops.lock(MAINTENANCE, None, "cmd-1")  # an hour before the next interval
        wait_until(lambda: telemetry.taken == 2, what="a snapshot for the lock")
    finally:
        telemetry.stop()
        outbox.close()
    payload = Outbox(tmp_path / "kiosk.db", device="kiosk-01", component="kiosk", clock=clock)
    try:
        raw = payload.take_telemetry()
    finally:
        payload.close()
    assert raw is not None
    metrics = decode(Telemetry, raw).metrics
    assert metrics["ops_locked"] is True
    assert (metrics["printer_paper"], metrics["camera_ok"]) == ("low", False)
    assert "id_number" not in metrics and "330106198001010012" not in raw.decode()
    assert metrics["scanner_ok"] is None and metrics["out_of_service"] is None
    assert metrics["command_acks_pending"] is None  # no command handler here
    assert isinstance(metrics["outbox_events"], int) and metrics["app_version"]


@pytest.fixture
def embedded(tmp_path: Path, clock: ManualClock) -> Iterator[KioskRuntime]:
    site = tmp_path / "site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\ndata_dir = {json.dumps(str(tmp_path / 'data'))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n"
    )
    runtime = start_runtime(load_kiosk_settings([site]), clock=clock, background=False)
    try:
        yield runtime
    finally:
        runtime.close()


def test_with_the_embedded_hall_telemetry_reaches_its_registry(embedded: KioskRuntime) -> None:
    hall = embedded.embedded_hall
    assert hall is not None and embedded.commands is None  # no broker: no commands either
    assert hall.registry.telemetry_history("kiosk-01", "kiosk") == []
    metrics = embedded.telemetry.take()
    (received,) = hall.registry.telemetry_history("kiosk-01", "kiosk")
    assert received["metrics"] == json.loads(json.dumps(metrics))
    assert all(metrics[key] is None for key in SOURCE_KEYS)  # no assembly: nothing measured
    assert metrics["ops_locked"] is False and metrics["command_acks_pending"] is None
    assert not embedded.outbox.backlog().telemetry_pending  # taken out of the outbox
    embedded.ops_lock.lock(MAINTENANCE, None, "cmd-local")
    embedded.telemetry.take()
    latest = hall.registry.telemetry_history("kiosk-01", "kiosk", limit=1)[0]["metrics"]
    assert latest["ops_locked"] is True


def test_the_camera_is_checked_without_taking_a_picture(tmp_path: Path) -> None:
    sim = SimCamera(CameraSettings())
    assert camera_present(sim) is True
    sim.unplug()
    assert camera_present(sim) is False and sim.frame_number == 0  # no picture was taken
    by_path = V4L2Camera(CameraSettings(backend="v4l2", device_path=str(tmp_path / "video9")))
    assert camera_present(by_path) is False
    by_path = V4L2Camera(CameraSettings(backend="v4l2", device_path="/dev/null"))  # a char node
    assert camera_present(by_path) is True
    by_name = V4L2Camera(
        CameraSettings(backend="v4l2", device_name="Document"), dev_dir=str(tmp_path)
    )
    assert camera_present(by_name) is False  # no capture node at all
