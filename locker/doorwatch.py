"""The door watch: polls every board, turns readings into door states, alarms and audit rows.

It runs inside lockerd whatever the API clients do. One task per bus; boards on a bus are polled
in turn through the bus actor (which puts opens ahead of polls). A board is reported unreachable
(doors "unknown") only after ``failed_polls_for_unknown`` failed polls in a row.
"""

from __future__ import annotations

import asyncio
import logging

from drivers.lockboard.bus import LockBus
from drivers.lockboard.errors import LockboardError
from drivers.lockboard.types import BoardStatus
from locker.service import LockerService

log = logging.getLogger(__name__)


class DoorWatch:
    def __init__(self, service: LockerService, buses: dict[str, LockBus]) -> None:
        self.service = service
        self.buses = buses
        self.cfg = service.cfg.door_watch
        self._failures: dict[tuple[str, int], int] = {}

    async def read_all_once(self) -> dict[tuple[str, int], BoardStatus | None]:
        """One reading of every board (the bus actor retries); None where a board is silent."""
        readings: dict[tuple[str, int], BoardStatus | None] = {}
        for bus, board in self.service.boards():
            try:
                status: BoardStatus = await asyncio.wrap_future(
                    self.buses[bus].submit_status(board)
                )
                readings[(bus, board)] = status
            except LockboardError as exc:
                log.warning("start-up reading of %s/%d failed: %s", bus, board, exc)
                readings[(bus, board)] = None
        return readings

    async def run(self) -> None:
        names = sorted({bus for bus, _ in self.service.boards()})
        await asyncio.gather(*(self._watch_bus(name) for name in names))

    async def _watch_bus(self, bus: str) -> None:
        interval_s = self.cfg.poll_interval_ms / 1000
        while True:
            started = asyncio.get_running_loop().time()
            for name, board in self.service.boards():
                if name == bus:
                    await self.poll_board(bus, board)
            try:
                self.service.expire_expectations()
            except Exception:  # the watch must outlive any single bad reading
                log.exception("door watch: expiring expectations failed")
            elapsed_s = asyncio.get_running_loop().time() - started
            await asyncio.sleep(max(0.0, interval_s - elapsed_s))

    async def poll_board(self, bus: str, board: int) -> None:
        key = (bus, board)
        try:
            status = await asyncio.wrap_future(self.buses[bus].submit_status(board))
        except LockboardError as exc:
            self._failures[key] = self._failures.get(key, 0) + 1
            if self._failures[key] >= self.cfg.failed_polls_for_unknown:
                self.service.record_board_unreachable(bus, board, str(exc))
            return
        except Exception:
            log.exception("door watch: polling %s/%d failed unexpectedly", bus, board)
            return
        self._failures[key] = 0
        try:
            self.service.record_board_status(bus, status)
        except Exception:
            log.exception("door watch: recording %s/%d failed", bus, board)
