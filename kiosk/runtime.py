"""Assembles the kiosk's non-UI services from its settings (docs/kiosk.md "Services").

    runtime = start_runtime(load_kiosk_settings(paths))
    ticket = runtime.hall.issue_ticket("ss-submit", identity_hash=None, priority="normal")
    runtime.close()

``[kiosk] hall_mode = "embedded"`` (the default) runs ``hall.service.Hall`` in this process,
with the ``[hall]`` section of the same layers, behind ``EmbeddedTransport``; the kiosk's
outbox events are handed to it as they are recorded. ``"mqtt"`` gives the kiosk its own uplink
connection (client id ``{device_id}.kiosk``, its own presence, outbox and session counter in
``kiosk.db``, as lockerd has in locker.db), a ``Requester`` with every kind and its timeout,
the subscription to the hall's retained appointment list, and ``MqttTransport``.

Either way one small thread (``RetryWorker``) calls ``HallGateway.drain()`` every
``[kiosk.offline] retry_interval_s`` (and at once when the hall comes back): queued pre-reviews
are sent, and a missing catalog or appointment list is fetched.

Ops: ``runtime.ops_lock`` (kiosk/services/commands.py) is the ops lock, kept in ``kiosk.db``;
over MQTT a ``CommandHandler`` (uplink/commands.py, its replay store and audit in ``kiosk.db``,
the hall's key from ``[uplink] hall_key_file``) runs the kiosk's signed commands (``lock``,
``unlock``, ``status``) on its worker thread. The runtime never touches the session: the
assembly subscribes to ``ops_lock`` and applies it on the UI thread. ``runtime.telemetry``
(kiosk/services/telemetry.py) takes a health snapshot every ``[kiosk.telemetry] interval_s``;
the assembly gives it the devices' and the session's state with ``set_source``, and before each
snapshot it raises or clears ``outbox_over_limit`` (``runtime.backlog_alarm``,
kiosk/services/backlog.py: the backlog against ``[kiosk.offline] outbox_alarm_rows``).

Staff: ``runtime.staff_lock`` (kiosk/services/staff_lock.py) is the clerk's lock, kept in
``kiosk.db`` beside the ops lock; the staff journey writes it, the session follows it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

import hallkiosk
from hallkiosk.clock import Clock, SystemClock
from kiosk.services.appointments import AppointmentCache, KioskTopics
from kiosk.services.backlog import BacklogAlarm
from kiosk.services.commands import OpsLock, kiosk_actions
from kiosk.services.events import EmbeddedEventPump, OutboxEvents
from kiosk.services.hall_gateway import EmbeddedTransport
from kiosk.services.hall_service import HallGateway
from kiosk.services.mqtt_transport import MqttTransport, request_kinds
from kiosk.services.offline import OfflineDesk
from kiosk.services.staff_lock import StaffLock
from kiosk.services.store import KioskStore
from kiosk.services.telemetry import KioskTelemetry
from kiosk.services.uploads import PreReviewSpool
from kiosk.settings import COMPONENT, KioskSettings
from uplink.connection import UplinkConnection
from uplink.outbox import Outbox
from uplink.requests import Requester, attach
from uplink.session import SessionStore

if TYPE_CHECKING:
    from hall.service import Hall
    from uplink.commands import CommandHandler, CommandStore

log = logging.getLogger(__name__)

STOP_JOIN_S = 10.0


class RetryWorker:
    """Runs ``jobs`` now, then every ``interval_s`` and whenever ``wake()`` is called, on one
    daemon thread. A job that raises is logged; the next round runs anyway."""

    def __init__(
        self,
        jobs: Sequence[Callable[[], object]],
        interval_s: float,
        *,
        name: str = "kiosk-hall-retry",
    ) -> None:
        self._jobs = list(jobs)
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.rounds = 0

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout_s: float = STOP_JOIN_S) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            for job in self._jobs:
                if self._stop.is_set():
                    return
                try:
                    job()
                except Exception:
                    log.exception("background job %r failed", job)
            self.rounds += 1
            self._wake.wait(self._interval_s)
            self._wake.clear()


@dataclass
class KioskRuntime:
    settings: KioskSettings
    clock: Clock
    hall: HallGateway
    store: KioskStore
    outbox: Outbox
    appointments: AppointmentCache
    offline: OfflineDesk
    spool: PreReviewSpool
    worker: RetryWorker
    ops_lock: OpsLock
    staff_lock: StaffLock
    backlog_alarm: BacklogAlarm
    telemetry: KioskTelemetry
    embedded_hall: Hall | None = None
    connection: UplinkConnection | None = None
    requester: Requester | None = None
    commands: CommandHandler | None = None  # over MQTT only
    command_store: CommandStore | None = None
    _closers: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def close(self) -> None:
        """Stop the background thread and the connection (its will marks us offline), then
        close the files and the embedded hall. Closing twice is harmless."""
        self._closers.close()


def start_runtime(
    settings: KioskSettings, *, clock: Clock | None = None, background: bool = True
) -> KioskRuntime:
    """Build and start everything; ``background=False`` leaves the retry and telemetry threads
    unstarted (tests then call ``runtime.hall.drain()`` and ``runtime.telemetry.take()``)."""
    clock = clock or SystemClock(settings.site.timezone)
    kiosk = settings.kiosk
    device_id = settings.device_id
    with contextlib.ExitStack() as stack:
        embedded_hall: Hall | None = None
        if kiosk.hall_mode == "embedded":
            from hall.service import Hall  # noqa: PLC0415 - only the embedded mode needs it

            assert settings.hall is not None
            embedded_hall = Hall(settings.hall, clock)
            stack.callback(embedded_hall.close)
            embedded_hall.start()
        store = KioskStore(settings.db_path)
        stack.callback(store.close)
        outbox = Outbox(
            settings.db_path,
            device=device_id,
            component=COMPONENT,
            clock=clock,
            max_business_rows=kiosk.offline.outbox_alarm_rows,
        )
        stack.callback(outbox.close)
        pump = None
        if embedded_hall is not None:
            pump = EmbeddedEventPump(outbox, embedded_hall.registry)
        events = OutboxEvents(outbox, on_recorded=pump.pump if pump is not None else None)
        appointments = AppointmentCache(store, clock, settings.site.hall_id)
        offline = OfflineDesk(
            store,
            events,
            clock,
            appointments,
            ranges=kiosk.offline.numbers(),
            appointment_ticket_type=kiosk.offline.appointment_ticket_type,
        )
        spool = PreReviewSpool(store, settings.spool_dir, clock, kiosk.offline.upload_chunk_bytes)
        ops_lock = OpsLock(store, clock)
        staff_lock = StaffLock(store, clock)
        backlog_alarm = BacklogAlarm(
            store,
            events,
            clock,
            subject=f"{device_id}.{COMPONENT}",  # the kiosk's client id, as lockerd's subject
            limit_rows=kiosk.offline.outbox_alarm_rows,
        )
        connection: UplinkConnection | None = None
        requester: Requester | None = None
        commands: CommandHandler | None = None
        command_store: CommandStore | None = None
        presence: Callable[[], bool] | None = None
        transport: Any
        if embedded_hall is not None:
            transport = EmbeddedTransport(embedded_hall, device_id)
        else:
            topics = KioskTopics(settings.site.hall_id, device_id, COMPONENT)
            session = SessionStore(settings.db_path, topics.client_id)
            stack.callback(session.close)
            connection = UplinkConnection(
                settings.uplink,
                topics,
                outbox,
                session,
                clock,
                versions={"hallkiosk": hallkiosk.__version__},
            )
            requester = attach(connection, topics, clock, request_kinds(kiosk.timeouts))
            connection.on_message(appointments.handle_message)
            # only over MQTT: signed commands (the cryptography import costs the embedded start)
            from uplink.commands import CommandHandler, CommandStore  # noqa: PLC0415
            from uplink.signing import load_public_key  # noqa: PLC0415

            command_store = CommandStore(settings.db_path)
            stack.callback(command_store.close)
            mqtt_transport = MqttTransport(requester, connected=connection)
            transport = mqtt_transport
            presence = lambda: mqtt_transport.online  # noqa: E731
        telemetry = KioskTelemetry(
            outbox,
            ops_lock,
            data_dir=settings.data_dir,
            interval_s=kiosk.telemetry.interval_s,
            acks_pending=command_store.pending_replies if command_store is not None else None,
            on_put=pump.pump if pump is not None else None,
            backlog_alarm=backlog_alarm,
        )
        gateway = HallGateway(
            transport,
            clock=clock,
            offline=offline,
            spool=spool,
            events=events,
            presence=presence,
        )
        jobs: list[Callable[[], object]] = [gateway.drain]
        if pump is not None:
            jobs.insert(0, pump.pump)  # what an earlier run left in the outbox
        worker = RetryWorker(jobs, kiosk.offline.retry_interval_s)
        if connection is not None:
            hall_presence = KioskTopics(settings.site.hall_id, device_id, COMPONENT).hall_presence

            def wake_on_hall(message: mqtt.MQTTMessage) -> None:
                if message.topic == hall_presence:  # applied by the tracker just before
                    worker.wake()

            connection.on_message(wake_on_hall)
            assert command_store is not None
            key_file = settings.uplink.hall_key_file
            commands = CommandHandler(
                command_store,
                KioskTopics(settings.site.hall_id, device_id, COMPONENT),
                clock,
                load_public_key(Path(key_file)) if key_file else None,
                kiosk_actions(ops_lock, telemetry.take),
                max_window_s=settings.uplink.command_max_window_s,
                clock_skew_s=settings.uplink.command_clock_skew_s,
            )
            commands.attach(connection)
            commands.start()
            stack.callback(commands.stop)  # after the connection: no command arrives meanwhile
            stack.callback(connection.stop)  # before the files close: it drains the outbox
            connection.start()
        if background:
            telemetry.start()
            worker.start()
        stack.callback(telemetry.stop)
        stack.callback(worker.stop)  # first to run at close
        runtime = KioskRuntime(
            settings=settings,
            clock=clock,
            hall=gateway,
            store=store,
            outbox=outbox,
            appointments=appointments,
            offline=offline,
            spool=spool,
            worker=worker,
            ops_lock=ops_lock,
            staff_lock=staff_lock,
            backlog_alarm=backlog_alarm,
            telemetry=telemetry,
            embedded_hall=embedded_hall,
            connection=connection,
            requester=requester,
            commands=commands,
            command_store=command_store,
        )
        runtime._closers = stack.pop_all()
        log.info(
            "kiosk %s services up (hall %s)",
            device_id,
            "embedded" if embedded_hall is not None else "over MQTT",
        )
        return runtime
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns
