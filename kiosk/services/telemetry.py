"""The kiosk's telemetry: a health snapshot for the hall (docs/kiosk.md "Telemetry").

    telemetry = KioskTelemetry(outbox, ops_lock, data_dir=..., interval_s=60.0)
    telemetry.set_source(health)       # the assembly's readings of devices and session
    telemetry.start()                  # a snapshot now, then every interval_s
    telemetry.changed()                # something alarm-relevant changed: a snapshot soon

Each snapshot replaces the one waiting in the outbox (``Outbox.put_telemetry``: latest wins,
never counted as backlog). Over MQTT the uplink connection publishes it on ``{base}/tele``; with
the embedded hall ``on_put`` runs the event pump, which hands it to the hall's registry
(kiosk/services/events.py). A snapshot is taken every ``[kiosk.telemetry] interval_s``, and at
once (one for a burst, ``min_gap_s`` after the first change) after ``changed()``: the ops lock
calls it, and the assembly when the kiosk goes in or out of service or a device's health changes.
Before each snapshot the ``outbox_over_limit`` alarm is raised or cleared (``backlog_alarm``,
kiosk/services/backlog.py), as lockerd does with its telemetry.

Metrics (null: not measured on this kiosk):

- ``app_version``: the hallkiosk release.
- ``ops_locked``: locked by ops' signed command (kiosk/services/commands.py).
- ``out_of_service``: what the screen shows (ops lock, staff lock or a critical fault);
  ``staff_locked``: locked by a clerk on site; ``staff_locked_by``, ``staff_locked_since``: the
  staff id of the card that locked it and when (UTC), null while no clerk's lock holds.
- ``printer_paper``: ``"ok"``, ``"low"`` or ``"out"``; ``printer_error``: the driver's error
  code (``printer_offline``, ``printer_cover_open``, ...) when the printer gave no paper status.
- ``id_reader_present``, ``scanner_ok``, ``camera_ok``: the ID card reader answers, the code
  scanner is connected, the document camera is there.
- ``lockerd_reachable``: lockerd's socket answers (null: no locker on this kiosk).
- ``outbox_events``, ``outbox_oldest_ts``: events the hall has not acknowledged, the oldest's time.
- ``command_acks_pending``: command acks waiting for the broker (null: embedded, no commands).
- ``cpu_temp_c``, ``disk_free_bytes``, ``mem_free_bytes``, ``uptime_s``: the host, as lockerd's.

The device and session values come from ``set_source``: a callable returning a mapping, read on
the telemetry thread (or the command worker, for ``status``); only the keys above are taken, so
nothing else (no personal data: no identity, name, ticket or booking) can reach a snapshot.
Without a source (the runtime alone) they are null.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import hallkiosk
from kiosk.services.backlog import BacklogAlarm
from kiosk.services.commands import OpsLock
from locker.telemetry import host_metrics
from uplink.outbox import Outbox, OutboxError

log = logging.getLogger(__name__)

StateSource = Callable[[], Mapping[str, Any]]

# What a state source may report; anything else it returns is ignored.
SOURCE_KEYS: Final = (
    "out_of_service",
    "staff_locked",
    "staff_locked_by",
    "staff_locked_since",
    "printer_paper",
    "printer_error",
    "id_reader_present",
    "scanner_ok",
    "camera_ok",
    "lockerd_reachable",
)
MIN_GAP_S: Final = 1.0
STOP_JOIN_S: Final = 10.0


class KioskTelemetry:
    def __init__(
        self,
        outbox: Outbox,
        ops_lock: OpsLock,
        *,
        data_dir: Path,
        interval_s: float,
        acks_pending: Callable[[], int] | None = None,
        on_put: Callable[[], object] | None = None,
        backlog_alarm: BacklogAlarm | None = None,
        min_gap_s: float = MIN_GAP_S,
    ) -> None:
        self._outbox = outbox
        self._ops_lock = ops_lock
        self._data_dir = data_dir
        self._interval_s = interval_s
        self._acks_pending = acks_pending
        self._on_put = on_put
        self._backlog_alarm = backlog_alarm
        self._min_gap_s = min_gap_s
        self._source: StateSource | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe = ops_lock.subscribe(lambda _state: self.changed())
        self.taken = 0

    def set_source(self, source: StateSource | None) -> None:
        """Where the device and session values come from (None: not measured)."""
        self._source = source

    def snapshot(self) -> dict[str, Any]:
        """The metrics now (see the module docstring); nothing is queued."""
        backlog = self._outbox.backlog()
        metrics: dict[str, Any] = {
            "app_version": hallkiosk.__version__,
            "ops_locked": self._ops_lock.locked,
            **dict.fromkeys(SOURCE_KEYS),
            **self._read_source(),
            "outbox_events": backlog.events,
            "outbox_oldest_ts": backlog.oldest_ts,
            "command_acks_pending": self._acks_pending() if self._acks_pending else None,
            **host_metrics(self._data_dir),
        }
        return metrics

    def take(self) -> dict[str, Any]:
        """Raise or clear the backlog alarm, then take a snapshot and queue it for the hall
        (replacing one not yet sent)."""
        if self._backlog_alarm is not None:
            self._backlog_alarm.check()  # never raises
        metrics = self.snapshot()
        try:
            self._outbox.put_telemetry(metrics)
        except OutboxError:
            log.exception("telemetry snapshot not queued")
            return metrics
        self.taken += 1
        if self._on_put is not None:
            try:
                self._on_put()
            except Exception:  # the snapshot waits in the outbox for the next pump
                log.exception("telemetry hand-over failed")
        return metrics

    def changed(self) -> None:
        """Something worth reporting changed: take a snapshot soon (any thread)."""
        self._wake.set()

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kiosk-telemetry", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = STOP_JOIN_S) -> None:
        self._unsubscribe()
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # a change from here on gets a snapshot of its own
            try:
                self.take()
            except Exception:  # telemetry must never take the kiosk down
                log.exception("telemetry snapshot failed")
            woken = self._wake.wait(self._interval_s)
            if woken and not self._stop.is_set():
                self._stop.wait(self._min_gap_s)  # one snapshot for a burst of changes

    def _read_source(self) -> dict[str, Any]:
        source = self._source
        if source is None:
            return {}
        try:
            values = source()
        except Exception:
            log.exception("kiosk state for telemetry could not be read")
            return {}
        picked: dict[str, Any] = {}
        for key in SOURCE_KEYS:
            value = values.get(key)
            if value is not None and not isinstance(value, bool | int | float | str):
                log.warning("telemetry %s: %r is not a plain value; sent as null", key, value)
                value = None
            picked[key] = value
        return picked
