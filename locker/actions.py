"""What the hall may ask lockerd to do by signed command (docs/mqtt.md "Commands").

| action | args | result |
|---|---|---|
| ``open_bay`` | ``bay``, ``reason`` | ``{"bay", "opened": true}`` or ``{"error": "door_jammed"}`` |
| ``disable_bay`` | ``bay``, ``reason`` | ``{"bay", "enabled": false}`` |
| ``enable_bay`` | ``bay`` | ``{"bay", "enabled": true}`` |
| ``resync`` | (none) | ``{"boards_total", "boards_replying", "doors_open"}`` |
| ``set_config`` | ``key``, ``value`` | ``{"key", "value"}`` or ``{"error": "invalid_value"}`` |

Every action runs on lockerd's event loop (the database's only thread) and is audited there with
actor ``hall`` and the command id. ``open_bay`` passes the command id as the opening's request id,
so even a second, differently-signed delivery of the same id cannot open the bay twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any, Literal, Protocol

from pydantic import Field

from hallkiosk.config import ConfigError, StrictModel
from locker.config import RUNTIME_KEYS
from locker.errors import LockerError
from uplink.commands import Action, ActionFailed
from uplink.messages import Command

ACTOR = "hall"
ACTION_TIMEOUT_S = 120.0  # longer than any opening (jam window at most 60 s)

BayId = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]
Reason = Annotated[str, Field(min_length=1, max_length=200)]
RuntimeKey = Literal[RUNTIME_KEYS]  # type: ignore[valid-type]


class OpenBayArgs(StrictModel):
    bay: BayId
    reason: Reason


class DisableBayArgs(StrictModel):
    bay: BayId
    reason: Reason


class EnableBayArgs(StrictModel):
    bay: BayId


class ResyncArgs(StrictModel):
    pass


class SetConfigArgs(StrictModel):
    key: RuntimeKey
    value: int | float


class LockerOps(Protocol):
    """What the actions need from the running daemon; every method runs on its event loop."""

    async def open_bay(self, bay: str, reason: str, command_id: str) -> Mapping[str, Any]: ...

    async def set_bay_enabled(self, bay: str, enabled: bool, reason: str) -> Mapping[str, Any]: ...

    async def resync(self) -> Mapping[str, Any]: ...

    async def set_config(self, key: str, value: int | float) -> Mapping[str, Any]: ...


def locker_actions(ops: LockerOps, loop: asyncio.AbstractEventLoop) -> list[Action]:
    """The actions, run from the command worker thread on the daemon's loop ``loop``."""

    def on_loop(make: Callable[[], Awaitable[Mapping[str, Any]]]) -> dict[str, Any]:
        async def call() -> Mapping[str, Any]:
            return await make()

        future = asyncio.run_coroutine_threadsafe(call(), loop)
        try:
            return dict(future.result(ACTION_TIMEOUT_S))
        except LockerError as exc:
            raise ActionFailed(exc.code, str(exc)) from exc
        except ConfigError as exc:
            raise ActionFailed("invalid_value", str(exc), problems=exc.problems) from exc

    def open_bay(command: Command, args: OpenBayArgs) -> Mapping[str, Any]:
        return on_loop(lambda: ops.open_bay(args.bay, args.reason, command.command_id))

    def disable_bay(_command: Command, args: DisableBayArgs) -> Mapping[str, Any]:
        return on_loop(lambda: ops.set_bay_enabled(args.bay, False, args.reason))

    def enable_bay(_command: Command, args: EnableBayArgs) -> Mapping[str, Any]:
        return on_loop(lambda: ops.set_bay_enabled(args.bay, True, ""))

    def resync(_command: Command, _args: ResyncArgs) -> Mapping[str, Any]:
        return on_loop(ops.resync)

    def set_config(_command: Command, args: SetConfigArgs) -> Mapping[str, Any]:
        return on_loop(lambda: ops.set_config(args.key, args.value))

    return [
        Action("open_bay", OpenBayArgs, open_bay),
        Action("disable_bay", DisableBayArgs, disable_bay),
        Action("enable_bay", EnableBayArgs, enable_bay),
        Action("resync", ResyncArgs, resync),
        Action("set_config", SetConfigArgs, set_config),
    ]
