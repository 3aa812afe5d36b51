"""lockerd's local API: versioned JSON lines on a Unix socket.

Request:  {"v": 1, "id": 7, "method": "pickup", "params": {...}}
Response: {"v": 1, "id": 7, "ok": true, "result": {...}}
          {"v": 1, "id": 7, "ok": false, "error": {"code", "message_zh", "message_en", "detail"}}
``events.subscribe`` turns the connection into a stream of {"v": 1, "event": {...}} lines.

Access is by socket ownership and mode (set by the daemon) and checked again per connection with
SO_PEERCRED: root, the daemon's own user, and members of the socket's group may connect.
An operation that has started is never cancelled by a client going away: an opening, once its
intent is committed, always gets its outcome recorded.
"""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import pwd
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from locker.errors import InvalidRequest, LockedOut, LockerError, NotPermitted, WrongPassword
from locker.service import LockerService, Recipient

log = logging.getLogger(__name__)

API_VERSION = 1


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NoParams(_Params):
    pass


class RecipientParams(_Params):
    identity_hash: str
    masked_name: str
    masked_id: str = ""


class DepositStart(_Params):
    staff_id: str
    case_number: str
    recipient: RecipientParams
    size: Literal["S", "M", "L"]
    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class StaffDeposit(_Params):
    staff_id: str
    deposit_id: int


class Recall(StaffDeposit):
    reason: str = ""


class ForIdentity(_Params):
    identity_hash: str


class Pickup(_Params):
    identity_hash: str
    password: str
    deposit_id: int | None = None
    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class MaintenanceOpen(_Params):
    staff_id: str
    bay_id: str
    reason: str
    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None


class BayEnabled(_Params):
    staff_id: str
    bay_id: str
    enabled: bool
    reason: str = ""


class AuditTail(_Params):
    after_seq: int = 0
    limit: int = 200


Handler = Callable[[Any], Awaitable[Any]]


def error_body(exc: LockerError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "code": exc.code,
        "message_zh": exc.message_zh,
        "message_en": exc.message_en,
        "detail": exc.detail,
    }
    if isinstance(exc, WrongPassword):
        body["attempts_left"] = exc.attempts_left
    if isinstance(exc, LockedOut):
        body["locked_until"] = exc.until.isoformat()
    return body


def _peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


class ApiServer:
    def __init__(
        self,
        service: LockerService,
        socket_path: str,
        *,
        socket_mode: int,
        socket_group: str,
        max_request_bytes: int,
        request_timeout_s: float,
    ) -> None:
        self.service = service
        self.socket_path = socket_path
        self.socket_mode = socket_mode
        self.socket_group = socket_group
        self.max_request_bytes = max_request_bytes
        self.request_timeout_s = request_timeout_s
        self._server: asyncio.AbstractServer | None = None
        self._group_gid: int | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._connections: dict[asyncio.StreamWriter, asyncio.Task[Any] | None] = {}
        s = service
        self._methods: dict[str, tuple[type[_Params], Handler]] = {
            "status": (NoParams, lambda p: _sync(s.status())),
            "deposit.start": (
                DepositStart,
                lambda p: s.deposit_start(
                    p.staff_id,
                    p.case_number,
                    Recipient(
                        p.recipient.identity_hash, p.recipient.masked_name, p.recipient.masked_id
                    ),
                    p.size,
                    p.request_id,
                ),
            ),
            "deposit.confirm": (
                StaffDeposit,
                lambda p: s.deposit_confirm(p.staff_id, p.deposit_id),
            ),
            "deposit.cancel": (
                StaffDeposit,
                lambda p: _sync(s.deposit_cancel(p.staff_id, p.deposit_id)),
            ),
            "deposit.reissue_password": (
                StaffDeposit,
                lambda p: s.reissue_password(p.staff_id, p.deposit_id),
            ),
            "deposits.for_identity": (
                ForIdentity,
                lambda p: _sync({"deposits": s.deposits_for(p.identity_hash)}),
            ),
            "pickup": (
                Pickup,
                lambda p: s.pickup(p.identity_hash, p.password, p.deposit_id, p.request_id),
            ),
            "overdue.list": (NoParams, lambda p: _sync({"deposits": s.overdue()})),
            "retrieve": (StaffDeposit, lambda p: s.retrieve(p.staff_id, p.deposit_id)),
            "recall": (Recall, lambda p: s.recall(p.staff_id, p.deposit_id, p.reason)),
            "maintenance.open": (
                MaintenanceOpen,
                lambda p: s.maintenance_open(p.staff_id, p.bay_id, p.reason, p.request_id),
            ),
            "bay.set_enabled": (
                BayEnabled,
                lambda p: _sync(s.set_bay_enabled(p.staff_id, p.bay_id, p.enabled, p.reason)),
            ),
            "audit.tail": (
                AuditTail,
                lambda p: _sync({"entries": s.audit_tail(p.after_seq, p.limit)}),
            ),
        }

    async def start(self) -> None:
        path = self.socket_path
        if os.path.exists(path):
            os.unlink(path)  # a stale socket from a killed daemon
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._server = await asyncio.start_unix_server(
            self._serve, path=path, limit=self.max_request_bytes
        )
        if self.socket_group:
            self._group_gid = grp.getgrnam(self.socket_group).gr_gid
            os.chown(path, -1, self._group_gid)
        else:
            self._group_gid = os.getgid()
        os.chmod(path, self.socket_mode)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._inflight:  # openings under way always get their outcome recorded
            await asyncio.gather(*self._inflight, return_exceptions=True)
        # then end idle connections and event streams, so no handler is left to be cancelled
        for writer in list(self._connections):
            writer.close()
        tasks = [t for t in self._connections.values() if t is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        if self._server is not None:
            await self._server.wait_closed()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def _allowed(self, uid: int, gid: int) -> bool:
        if uid in (0, os.getuid()) or gid == self._group_gid:
            return True
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            return False
        return self._group_gid is not None and name in grp.getgrgid(self._group_gid).gr_mem

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        self._connections[writer] = asyncio.current_task()
        try:
            _pid, uid, gid = _peer_credentials(sock)
            if not self._allowed(uid, gid):
                await self._send(
                    writer,
                    {
                        "v": API_VERSION,
                        "id": None,
                        "ok": False,
                        "error": error_body(NotPermitted(f"uid {uid}")),
                    },
                )
                return
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), self.request_timeout_s)
                except TimeoutError:
                    return  # idle client: free the connection
                except ValueError:  # longer than max_request_bytes
                    await self._send(writer, self._fail(None, InvalidRequest("request too large")))
                    return
                if not line:
                    return
                reply = await self._handle_line(line, reader, writer)
                if reply is None:
                    return  # the connection became an event stream and has ended
                await self._send(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._connections.pop(writer, None)
            writer.close()

    async def _handle_line(
        self, line: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> dict[str, Any] | None:
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return self._fail(None, InvalidRequest("not a JSON object"))
        if not isinstance(request, dict):
            return self._fail(None, InvalidRequest("not a JSON object"))
        req_id = request.get("id")
        if request.get("v") != API_VERSION:
            return self._fail(
                req_id,
                InvalidRequest(
                    f"unsupported API version {request.get('v')!r}; "
                    f"this lockerd speaks {API_VERSION}",
                    code="api_version",
                ),
            )
        method = request.get("method")
        if method == "events.subscribe":
            await self._stream_events(reader, writer)
            return None
        entry = self._methods.get(method) if isinstance(method, str) else None
        if entry is None:
            return self._fail(
                req_id, InvalidRequest(f"unknown method {method!r}", code="unknown_method")
            )
        model, handler = entry
        try:
            params = model.model_validate(request.get("params", {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"
                for e in exc.errors()
            )
            return self._fail(req_id, InvalidRequest(problems))
        # run to completion even if this client disappears (see module docstring)
        task = asyncio.ensure_future(_call(handler, params))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        try:
            result = await asyncio.shield(task)
        except LockerError as exc:
            log.info("%s refused: %s %s", method, exc.code, exc.detail)
            return self._fail(req_id, exc)
        except Exception as exc:
            log.exception("%s failed", method)
            return self._fail(req_id, LockerError(f"internal error: {type(exc).__name__}"))
        return {"v": API_VERSION, "id": req_id, "ok": True, "result": result}

    def _fail(self, req_id: Any, exc: LockerError) -> dict[str, Any]:
        return {"v": API_VERSION, "id": req_id, "ok": False, "error": error_body(exc)}

    async def _stream_events(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        queue = self.service.events.subscribe()
        try:
            await self._send(writer, {"v": API_VERSION, "ok": True, "result": {"subscribed": True}})
            closed = asyncio.ensure_future(reader.read())  # EOF means the client went away
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if closed in done:
                    getter.cancel()
                    return
                await self._send(writer, {"v": API_VERSION, "event": getter.result()})
        finally:
            self.service.events.unsubscribe(queue)

    async def _send(self, writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
        writer.write(json.dumps(message, ensure_ascii=False, default=str).encode() + b"\n")
        await writer.drain()


async def _sync(value: Any) -> Any:
    return value


async def _call(handler: Handler, params: Any) -> Any:
    # a synchronous handler body raises inside this coroutine, where the caller catches it
    return await handler(params)
