"""lockerd's link to the hall: outbox, MQTT connection, signed commands, telemetry, overdue sweep.

Events are not sent from here: ``LockerService`` writes each one into the outbox inside the
transaction of the change it reports (``Outbox.append_in``), so an event exists exactly when its
business change does, and the connection drains the outbox. This module owns what runs beside the
business logic:

- the uplink connection (``[uplink]``; disabled = embedded mode, the outbox keeps everything);
- the command handler with lockerd's actions (locker/actions.py);
- telemetry every ``[lockerd.telemetry] interval_s``, and at once (at most once a second) when a
  door, an alarm or a bay changes;
- the overdue sweep every ``overdue_check_s``;
- the ``outbox_over_limit`` alarm when the unsent backlog passes the written bound.

Everything but the connection's and the command handler's own threads runs on lockerd's loop, the
only thread that touches the locker database through ``LockerService``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import hallkiosk
from hallkiosk.clock import Clock
from locker import runtime_config
from locker.actions import ACTOR, locker_actions
from locker.config import LockerdSettings
from locker.doorwatch import DoorWatch
from locker.service import LockerService
from locker.telemetry import host_metrics
from uplink.commands import CommandHandler, CommandStore
from uplink.connection import UplinkConnection
from uplink.outbox import Outbox
from uplink.session import SessionStore
from uplink.signing import load_public_key
from uplink.topics import Topics

log = logging.getLogger(__name__)

COMPONENT: Final = "lockerd"
# Event types after which a telemetry snapshot is taken at once (alarm-relevant state).
TELEMETRY_TRIGGERS: Final = frozenset({"door", "alarm", "bay"})
TELEMETRY_MIN_GAP_S: Final = 1.0


def open_outbox(settings: LockerdSettings, clock: Clock) -> Outbox:
    """The outbox lives in locker.db, so ``append_in`` shares the business transaction."""
    return Outbox(
        settings.db_path, device=settings.site.device_id, component=COMPONENT, clock=clock
    )


class HallLink:
    def __init__(
        self,
        settings: LockerdSettings,
        service: LockerService,
        watch: DoorWatch,
        outbox: Outbox,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.service = service
        self.watch = watch
        self.outbox = outbox
        self.clock = clock
        site = settings.site
        self.topics = Topics(site.hall_id, site.device_id, COMPONENT)
        self.session = SessionStore(settings.db_path, self.topics.client_id)
        self.connection = UplinkConnection(
            settings.uplink,
            self.topics,
            outbox,
            self.session,
            clock,
            versions={"hallkiosk": hallkiosk.__version__},
        )
        key_file = settings.uplink.hall_key_file
        self.command_store = CommandStore(settings.db_path)
        self._key = load_public_key(Path(key_file)) if key_file else None
        self.commands: CommandHandler | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        uplink = self.settings.uplink
        self.commands = CommandHandler(
            self.command_store,
            self.topics,
            self.clock,
            self._key,
            locker_actions(self, loop),
            max_window_s=uplink.command_max_window_s,
            clock_skew_s=uplink.command_clock_skew_s,
        )
        self.commands.attach(self.connection)
        self.commands.start()
        self.take_telemetry()
        self.service.report_overdue()
        self._tasks = [
            # subscribed here, not when the task first runs: no change is missed in between
            asyncio.create_task(
                self._telemetry_loop(self.service.events.subscribe()), name="telemetry"
            ),
            asyncio.create_task(self._overdue_loop(), name="overdue"),
        ]
        self.connection.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # the connection first: no command arrives while the handler winds down
        await asyncio.to_thread(self.connection.stop)
        if self.commands is not None:
            await asyncio.to_thread(self.commands.stop)
        self.command_store.close()
        self.session.close()

    # -- telemetry and the overdue sweep (event loop) ------------------------------------------

    def take_telemetry(self) -> None:
        """Replace the pending snapshot with a fresh one; raise or clear the backlog alarm."""
        backlog = self.outbox.backlog()
        self.service.set_alarm(
            "outbox_over_limit",
            self.topics.client_id,
            backlog.over_limit,
            events=backlog.events,
        )
        metrics: dict[str, Any] = {
            **host_metrics(self.settings.data_dir),
            **self.service.metrics(),
            "outbox_events": backlog.events,
            "outbox_oldest_ts": backlog.oldest_ts,
            "command_acks_pending": self.command_store.pending_replies(),
        }
        self.outbox.put_telemetry(metrics)

    async def _telemetry_loop(self, changes: asyncio.Queue[dict[str, Any]]) -> None:
        try:
            while True:
                interval_s = self.settings.lockerd.telemetry.interval_s
                with contextlib.suppress(TimeoutError):
                    event = await asyncio.wait_for(changes.get(), interval_s)
                    if event["type"] not in TELEMETRY_TRIGGERS:
                        continue
                    await asyncio.sleep(TELEMETRY_MIN_GAP_S)  # one snapshot for a burst
                    while not changes.empty():
                        changes.get_nowait()
                try:
                    self.take_telemetry()
                except Exception:  # telemetry must never take lockerd down
                    log.exception("telemetry snapshot failed")
        finally:
            self.service.events.unsubscribe(changes)

    async def _overdue_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lockerd.telemetry.overdue_check_s)
            try:
                count = self.service.report_overdue()
            except Exception:
                log.exception("overdue sweep failed")
                continue
            if count:
                log.info("%d deposit(s) became overdue", count)

    # -- LockerOps: what signed commands do (event loop) ---------------------------------------

    async def open_bay(self, bay: str, reason: str, command_id: str) -> Mapping[str, Any]:
        result = await self.service.maintenance_open(ACTOR, bay, reason, request_id=command_id)
        return {"bay": bay, "opened": bool(result["opened"])}

    async def set_bay_enabled(self, bay: str, enabled: bool, reason: str) -> Mapping[str, Any]:
        self.service.set_bay_enabled(ACTOR, bay, enabled, reason)
        return {"bay": bay, "enabled": enabled}

    async def resync(self) -> Mapping[str, Any]:
        """Read every board now, record what it says, and send a fresh snapshot."""
        readings = await self.watch.read_all_once()
        for (bus, _board), status in readings.items():
            if status is not None:
                self.service.record_board_status(bus, status)
        self.take_telemetry()
        return {
            "boards_total": len(readings),
            "boards_replying": sum(status is not None for status in readings.values()),
            "doors_open": self.service.metrics()["doors_open"],
        }

    async def set_config(self, key: str, value: int | float) -> Mapping[str, Any]:
        updated = runtime_config.set_value(self.settings, key, value)
        self.settings = updated
        self.service.apply_settings(updated, changed=key, value=value, actor=ACTOR)
        return {"key": key, "value": value}
