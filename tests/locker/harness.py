"""lockerd assembled in process on a real socket, against a simulator process on a real pty.

The daemon's event loop runs in a thread; tests talk to it through the real Unix-socket API with
``LockerClient``. The clock is a ``ManualClock``, so lockouts, deadlines, jam windows and
left-open alarms are moved by the test instead of waited for.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from hallkiosk.clock import ManualClock
from locker.client import LockerClient
from locker.config import load_settings
from locker.daemon import Lockerd
from locker.service import LockerService
from tests.fixtures import wait_until
from tests.fixtures.processes import SimHandle

T = TypeVar("T")
START = datetime(2026, 11, 23, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # 3 a.m., nobody around
BOARD = {"8a80": 1, "kerong": 0}


def site_toml(
    data_dir: Path,
    sim: SimHandle,
    protocol: str,
    channels: int,
    *,
    expect_reply: bool = True,
    feedback_open: str = "set",
    extra: str = "",
) -> str:
    board = BOARD[protocol]
    sizes = "SSMMLL"
    bays = "".join(
        f'[[lockerd.bays]]\nid = "A{ch:02d}"\nsize = "{sizes[(ch - 1) % 6]}"\nbus = "bus0"\n'
        f"board = {board}\nchannel = {ch}\n\n"
        for ch in range(1, channels + 1)
    )
    return f"""schema_version = 1
[site]
device_id = "locker-test"
data_dir = "{data_dir}"

[lockerd.pickup]
scrypt_n = 1024

[lockerd.door_watch]
poll_interval_ms = 50

[[lockerd.buses]]
name = "bus0"
protocol = "{protocol}"
url = "{sim.pty_path}"
expect_reply = {"true" if expect_reply else "false"}
feedback_open = "{feedback_open}"
reply_timeout_ms = 150
inter_frame_gap_ms = 2

{bays}{extra}"""


class InProcessLockerd:
    def __init__(
        self,
        tmp_path: Path,
        sim: SimHandle,
        protocol: str,
        *,
        channels: int = 6,
        clock: ManualClock | None = None,
        **toml: Any,
    ) -> None:
        self.protocol = protocol
        self.board = BOARD[protocol]
        self.sim = sim
        self.clock = clock or ManualClock(START)
        self.config_path = tmp_path / "site.toml"
        self.config_path.write_text(
            site_toml(tmp_path / "data", sim, protocol, channels, **toml), encoding="utf-8"
        )
        self.settings = load_settings([self.config_path])
        self.client = LockerClient(str(self.settings.socket_path), timeout_s=20)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.daemon: Lockerd | None = None

    def start(self) -> InProcessLockerd:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="lockerd-loop", daemon=True)
        self._thread.start()
        self.daemon = Lockerd(self.settings, clock=self.clock)
        self.run(self.daemon.start())
        return self

    def stop(self) -> None:
        """Stop the daemon, and always the loop thread, even when the daemon's stop fails:
        a loop left running would keep polling a pty path a later test may own."""
        if self._loop is None:
            return
        loop = self._loop
        try:
            if self.daemon is not None:
                self.run(self.daemon.stop())
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=10)
                if self._thread.is_alive():
                    raise RuntimeError("lockerd's loop thread did not stop within 10 s")
            loop.close()
            self._loop = None

    def run(self, coro: Any, timeout_s: float = 30.0) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def on_loop(self, fn: Callable[[LockerService], T]) -> T:
        """Run fn(service) on the daemon's loop thread (the database's owner)."""
        assert self.daemon is not None and self.daemon.service is not None
        service = self.daemon.service

        async def call() -> T:
            return fn(service)

        result: T = self.run(call())
        return result

    # -- conveniences used across the locker tests -----------------------------------------

    def door(self, bay_id: str) -> str:
        bays = self.client.call("status")["bays"]
        return str(next(b["door"] for b in bays if b["bay_id"] == bay_id))

    def wait_door(self, bay_id: str, state: str, timeout_s: float = 10.0) -> None:
        wait_until(
            lambda: self.door(bay_id) == state, timeout_s=timeout_s, what=f"{bay_id} door {state}"
        )

    def alarms(self) -> set[tuple[str, str]]:
        return {(a["alarm"], a["subject"]) for a in self.client.call("status")["alarms"]}

    def audit(self, kind: str | None = None) -> list[dict[str, Any]]:
        entries = self.client.call("audit.tail", after_seq=0, limit=1000)["entries"]
        return [e for e in entries if kind is None or e["kind"] == kind]

    def start_load(
        self,
        identity_hash: str,
        *,
        size: str = "S",
        case: str = "ZJ2026-0001",
        name: str = "张*三",
        **extra: Any,
    ) -> dict[str, Any]:
        """Staff: deposit.start for one recipient; the bay opens for loading."""
        result: dict[str, Any] = self.client.call(
            "deposit.start",
            staff_id="clerk1",
            case_number=case,
            size=size,
            recipient={
                "identity_hash": identity_hash,
                "masked_name": name,
                "masked_id": "3301**********1234",
            },
            **extra,
        )
        return result

    def load(
        self, identity_hash: str, *, size: str = "S", case: str = "ZJ2026-0001", name: str = "张*三"
    ) -> tuple[int, str, str]:
        """Staff load: start, wait for the simulated person to shut the door, confirm."""
        started = self.start_load(identity_hash, size=size, case=case, name=name)
        bay_id = started["bay_id"]
        self.wait_door(bay_id, "open")  # the simulated clerk opens, loads, and shuts the door
        self.wait_door(bay_id, "closed")
        confirmed = self.client.call(
            "deposit.confirm", staff_id="clerk1", deposit_id=started["deposit_id"]
        )
        return started["deposit_id"], bay_id, confirmed["password"]

    def channel(self, bay_id: str) -> int:
        return int(bay_id[1:])
