"""``lockerd``: the locker daemon.

    lockerd [--config FILE ...]          run (layers: packaged defaults, then each FILE in order)
    lockerd --check-config FILE ...      validate and exit 0, or list every problem and exit 2

Start-up order: open the database and its outbox, sync bays from config, read every board once,
reconcile interrupted openings, start the door watch, the hall link (uplink connection, commands,
telemetry, overdue sweep) and the API. The door watch runs whatever the
API clients do; SIGTERM stops everything in order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from drivers.lockboard.bus import LockBus
from hallkiosk.clock import Clock, SystemClock
from hallkiosk.config import ConfigError
from hallkiosk.privacy import ensure_key_file
from locker.api import ApiServer
from locker.config import LockerdSettings, load_settings
from locker.doorwatch import DoorWatch
from locker.events import EventHub
from locker.hall_link import HallLink, open_outbox
from locker.service import LockerService
from locker.store import Store
from uplink.outbox import Outbox
from uplink.sealing import load_seal_public_key, seal

log = logging.getLogger("lockerd")


class Lockerd:
    """The assembled daemon; also usable in process (tests, the embedded default)."""

    def __init__(self, settings: LockerdSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or SystemClock(settings.site.timezone)
        self.buses = {b.name: LockBus(b) for b in settings.lockerd.buses}
        self.store: Store | None = None
        self.service: LockerService | None = None
        self.api: ApiServer | None = None
        self.outbox: Outbox | None = None
        self.link: HallLink | None = None
        self._watch_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        s = self.settings
        s.data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
        ensure_key_file(s.identity_key_path)
        self.store = Store.open(s.db_path)
        self.outbox = open_outbox(s, self.clock)
        for bus in self.buses.values():
            bus.start()
        self.service = LockerService(
            s,
            self.store,
            self.buses,
            self.clock,
            EventHub(),
            outbox=self.outbox,
            seal_password=_password_sealer(s.uplink.hall_seal_key_file),
        )
        self.service.sync_bays()
        watch = DoorWatch(self.service, self.buses)
        counts = self.service.reconcile(await watch.read_all_once())
        log.info("reconciled at start-up: %s", counts)
        self._watch_task = asyncio.create_task(watch.run(), name="door-watch")
        self.link = HallLink(s, self.service, watch, self.outbox, self.clock)
        await self.link.start()
        api = s.lockerd.api
        self.api = ApiServer(
            self.service,
            str(s.socket_path),
            socket_mode=api.socket_mode,
            socket_group=api.socket_group,
            max_request_bytes=api.max_request_bytes,
            request_timeout_s=api.request_timeout_s,
        )
        await self.api.start()
        log.info("lockerd ready on %s", s.socket_path)

    async def stop(self) -> None:
        if self.api is not None:
            await self.api.close()
        if self.link is not None:
            await self.link.stop()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        for bus in self.buses.values():
            await asyncio.to_thread(bus.close)
        if self.outbox is not None:
            self.outbox.close()
        if self.store is not None:
            self.store.close()


def _notify_systemd(state: str) -> None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())


async def _run(settings: LockerdSettings) -> None:
    daemon = Lockerd(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await daemon.start()
    _notify_systemd("READY=1")
    print(f"lockerd ready socket={settings.socket_path}", file=sys.stderr, flush=True)
    watch = daemon._watch_task
    waiters = [asyncio.ensure_future(stop.wait())]
    if watch is not None:
        waiters.append(watch)  # type: ignore[arg-type]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if watch is not None and watch.done() and not watch.cancelled() and watch.exception():
        log.error("door watch died: %r", watch.exception())
    _notify_systemd("STOPPING=1")
    await daemon.stop()


def check_config(paths: Sequence[str], with_defaults: bool) -> int:
    try:
        settings = load_settings(list(paths), with_defaults=with_defaults)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    cfg = settings.lockerd
    print(
        f"OK: {len(cfg.buses)} bus(es), {len(cfg.bays)} bay(s), "
        f"device {settings.site.device_id} in {settings.site.timezone}, "
        f"database {settings.db_path}, socket {settings.socket_path}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lockerd", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="a site or overlay TOML file; repeat for layers (later wins)",
    )
    parser.add_argument(
        "--check-config",
        nargs="+",
        metavar="FILE",
        help="validate these files (over the packaged defaults) and exit",
    )
    parser.add_argument(
        "--no-defaults", action="store_true", help="do not start from the packaged defaults layer"
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # the database holds hashed identities and masked names: not for other users' eyes
    os.umask(0o027)
    if args.check_config:
        return check_config(args.check_config, not args.no_defaults)
    try:
        settings = load_settings(args.config, with_defaults=not args.no_defaults)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    asyncio.run(_run(settings))
    return 0


def _password_sealer(key_file: str) -> Callable[[str, str], str] | None:
    """Seal pickup passwords to the hall's key, if one is installed (read once at start)."""
    if not key_file:
        return None
    public = load_seal_public_key(Path(key_file))
    return lambda password, associated: seal(password, public, associated)


if __name__ == "__main__":
    sys.exit(main())
