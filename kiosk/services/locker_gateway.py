"""``LockerGateway``: the kiosk's typed view of lockerd (docs/lockerd-api.md).

Every method blocks on the local socket, so flows call it through their worker. A refusal
arrives as a ``LockerRefusal`` subclass carrying lockerd's own ``code`` and both texts (shown
as they are); ``Unavailable`` means lockerd did not answer at all.

Pickup passwords cross this module only inbound (``pickup``). The one lockerd returns from
``deposit.confirm``/``reissue_password`` is dropped here: the hall sends it to the applicant by
SMS (sealed in the ``deposit_stored`` event), and the kiosk has no reason to hold it.

Door and bay events (``events.subscribe``) come through ``subscribe`` on a background thread;
the app posts them to the UI thread and calls the flow's ``door_opened``/``door_closed``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from kiosk.flows.base import KioskError
from locker.api import API_VERSION
from locker.client import ApiError, LockerClient, LockerdUnavailable

log = logging.getLogger(__name__)

Size = Literal["S", "M", "L"]
SIZES: tuple[Size, ...] = ("S", "M", "L")


# -- errors -----------------------------------------------------------------------------------


class LockerGatewayError(KioskError):
    """Root of what the gateway raises; ``code`` and both texts are for the screen."""

    code = "locker_error"


class Unavailable(LockerGatewayError, ConnectionError):
    """lockerd is not running, or the socket broke before an answer came."""

    code = "lockerd_unavailable"
    message_zh = LockerdUnavailable.message_zh
    message_en = LockerdUnavailable.message_en


class LockerRefusal(LockerGatewayError):
    """lockerd answered with an error body: ``code``, ``message_zh``, ``message_en``."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        code = str(body.get("code") or "locker_error")
        super().__init__(
            str(body.get("detail") or code),
            code=code,
            message_zh=str(body.get("message_zh") or LockerGatewayError.message_zh),
            message_en=str(body.get("message_en") or LockerGatewayError.message_en),
        )
        self.body = dict(body)


class WrongPassword(LockerRefusal):
    def __init__(self, body: Mapping[str, Any]) -> None:
        super().__init__(body)
        self.attempts_left = int(body.get("attempts_left", 0))


class LockedOut(LockerRefusal):
    def __init__(self, body: Mapping[str, Any]) -> None:
        super().__init__(body)
        self.until = datetime.fromisoformat(str(body["locked_until"]))


class NotFound(LockerRefusal):
    """``no_such_deposit`` (nothing waiting for this card) or ``no_such_bay``."""


class ChooseDeposit(LockerRefusal):
    pass


class Overdue(LockerRefusal):
    pass


class NotOverdue(LockerRefusal):
    pass


class DoorJammed(LockerRefusal):
    pass


class BayFault(LockerRefusal):
    pass


class DoorNotClosed(LockerRefusal):
    pass


class NoFreeBay(LockerRefusal):
    pass


class WrongState(LockerRefusal):
    pass


_REFUSALS: dict[str, type[LockerRefusal]] = {
    "wrong_password": WrongPassword,
    "locked_out": LockedOut,
    "no_such_deposit": NotFound,
    "no_such_bay": NotFound,
    "choose_deposit": ChooseDeposit,
    "overdue": Overdue,
    "not_overdue": NotOverdue,
    "door_jammed": DoorJammed,
    "bay_fault": BayFault,
    "door_not_closed": DoorNotClosed,
    "no_free_bay": NoFreeBay,
    "wrong_state": WrongState,
}


def refusal(body: Mapping[str, Any]) -> LockerRefusal:
    return _REFUSALS.get(str(body.get("code")), LockerRefusal)(body)


# -- typed answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Deposit:
    deposit_id: int
    bay_id: str
    case_number: str
    masked_name: str
    masked_id: str
    stored_at: datetime | None
    deadline: datetime | None
    overdue: bool


@dataclass(frozen=True)
class Opened:
    bay_id: str
    deposit_id: int | None
    repeated: bool = False  # a retried request whose bay had already opened


@dataclass(frozen=True)
class LoadStarted:
    deposit_id: int
    bay_id: str
    size: Size


@dataclass(frozen=True)
class Stored:
    deposit_id: int
    bay_id: str
    deadline: datetime


@dataclass(frozen=True)
class Recipient:
    """Who may collect a deposit: keyed hash and masked forms only."""

    identity_hash: str
    masked_name: str
    masked_id: str = ""


@dataclass(frozen=True)
class GridPosition:
    """Where a bay sits in the cabinet picture: column and row from the top left."""

    column: int
    row: int


@dataclass(frozen=True)
class Bay:
    bay_id: str
    size: str
    bus: str
    board: int
    channel: int
    enabled: bool
    door: str  # open / closed / unknown
    occupied: bool
    opening_in_flight: bool
    deposit_id: int | None
    deposit_state: str | None


@dataclass(frozen=True)
class Alarm:
    alarm: str
    subject: str


@dataclass(frozen=True)
class LockerStatus:
    device_id: str
    now: datetime
    bays: tuple[Bay, ...]
    alarms: tuple[Alarm, ...]

    def bay(self, bay_id: str) -> Bay | None:
        return next((b for b in self.bays if b.bay_id == bay_id), None)

    def grid(self, rows: int = 6) -> CabinetGrid:
        return CabinetGrid.of(self.bays, rows)


@dataclass(frozen=True)
class CabinetGrid:
    """A simple picture of the cabinet: each lock board fills columns of ``rows`` bays, top
    to bottom in channel order; the next board starts a new column. Wiring follows columns on
    the cabinets we know, so this matches the doors closely enough to point at one."""

    columns: int
    rows: int
    positions: Mapping[str, GridPosition] = field(default_factory=dict)

    @classmethod
    def of(cls, bays: tuple[Bay, ...], rows: int = 6) -> CabinetGrid:
        positions: dict[str, GridPosition] = {}
        column = -1
        board: tuple[str, int] | None = None
        row = rows
        for bay in sorted(bays, key=lambda b: (b.bus, b.board, b.channel)):
            if (bay.bus, bay.board) != board or row >= rows:
                column += 1
                row = 0
                board = (bay.bus, bay.board)
            positions[bay.bay_id] = GridPosition(column, row)
            row += 1
        used_rows = max((p.row for p in positions.values()), default=-1) + 1
        return cls(columns=column + 1, rows=used_rows, positions=positions)

    def position(self, bay_id: str) -> GridPosition | None:
        return self.positions.get(bay_id)


@dataclass(frozen=True)
class LockerEvent:
    """One ``events.subscribe`` line: ``type`` (door, alarm, opening, deposit_*, bay,
    events_dropped), the bay it is about, and the rest of lockerd's fields."""

    type: str
    seq: int
    bay_id: str | None
    data: Mapping[str, Any]

    @property
    def door(self) -> str | None:
        value = self.data.get("door")
        return None if value is None else str(value)


def _size(value: Any, default: Size) -> Size:
    for size in SIZES:
        if value == size:
            return size
    return default


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def _deposit(d: Mapping[str, Any]) -> Deposit:
    return Deposit(
        deposit_id=int(d["deposit_id"]),
        bay_id=str(d["bay_id"]),
        case_number=str(d.get("case_number") or ""),
        masked_name=str(d.get("recipient") or ""),
        masked_id=str(d.get("recipient_id") or ""),
        stored_at=_time(d.get("stored_at")),
        deadline=_time(d.get("deadline")),
        overdue=bool(d.get("overdue", False)),
    )


def _bay(b: Mapping[str, Any]) -> Bay:
    deposit_id = b.get("deposit_id")
    return Bay(
        bay_id=str(b["bay_id"]),
        size=str(b["size"]),
        bus=str(b.get("bus", "")),
        board=int(b.get("board", 0)),
        channel=int(b.get("channel", 0)),
        enabled=bool(b.get("enabled", True)),
        door=str(b.get("door", "unknown")),
        occupied=bool(b.get("occupied", False)),
        opening_in_flight=bool(b.get("opening_in_flight", False)),
        deposit_id=None if deposit_id is None else int(deposit_id),
        deposit_state=None if b.get("deposit_state") is None else str(b["deposit_state"]),
    )


# -- the gateway ------------------------------------------------------------------------------


class LockerGateway:
    """Typed calls over one shared ``LockerClient`` (thread-safe)."""

    def __init__(self, client: LockerClient) -> None:
        self._client = client

    @classmethod
    def connect(cls, socket_path: str, *, timeout_s: float = 30.0) -> LockerGateway:
        """Nothing is opened until the first call."""
        return cls(LockerClient(socket_path, timeout_s=timeout_s))

    @property
    def socket_path(self) -> str:
        return self._client.socket_path

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, *, repeatable: bool = False, **params: Any) -> Any:
        """One request. ``repeatable`` calls (read-only, or carrying a request_id) are sent
        once more on a fresh connection when the first breaks: lockerd may have restarted."""
        attempts = 2 if repeatable else 1
        for attempt in range(attempts):
            try:
                return self._client.call(method, **params)
            except ApiError as exc:
                raise refusal(exc.error) from exc
            except LockerdUnavailable as exc:
                if attempt + 1 < attempts:
                    log.info("%s: lockerd connection broke, asking once more", method)
                    continue
                raise Unavailable(exc.detail) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- applicant ---------------------------------------------------------------------------

    def deposits_for(self, identity_hash: str) -> list[Deposit]:
        result = self._call("deposits.for_identity", repeatable=True, identity_hash=identity_hash)
        return [_deposit(d) for d in result.get("deposits", [])]

    def pickup(
        self, identity_hash: str, password: str, deposit_id: int | None, request_id: str
    ) -> Opened:
        """Opens the bay once the password matches; a repeated ``request_id`` never opens
        twice. Raises WrongPassword, LockedOut, NotFound, Overdue, DoorJammed, BayFault..."""
        result = self._call(
            "pickup",
            repeatable=True,
            identity_hash=identity_hash,
            password=password,
            deposit_id=deposit_id,
            request_id=request_id,
        )
        return Opened(
            bay_id=str(result["bay_id"]),
            deposit_id=int(result["deposit_id"]),
            repeated=bool(result.get("repeated", False)),
        )

    # -- everyone ----------------------------------------------------------------------------

    def status(self) -> LockerStatus:
        result = self._call("status", repeatable=True)
        return LockerStatus(
            device_id=str(result.get("device_id", "")),
            now=datetime.fromisoformat(str(result["now"])),
            bays=tuple(_bay(b) for b in result.get("bays", [])),
            alarms=tuple(
                Alarm(str(a.get("alarm")), str(a.get("subject"))) for a in result.get("alarms", [])
            ),
        )

    # -- staff -------------------------------------------------------------------------------

    def deposit_start(
        self,
        staff_id: str,
        case_number: str,
        size: Size,
        recipient: Recipient,
        request_id: str,
    ) -> LoadStarted:
        """A free bay of ``size`` or larger opens for loading."""
        recipient_params: dict[str, str] = {
            "identity_hash": recipient.identity_hash,
            "masked_name": recipient.masked_name,
        }
        if recipient.masked_id:
            recipient_params["masked_id"] = recipient.masked_id
        result = self._call(
            "deposit.start",
            repeatable=True,
            staff_id=staff_id,
            case_number=case_number,
            size=size,
            recipient=recipient_params,
            request_id=request_id,
        )
        return LoadStarted(
            deposit_id=int(result["deposit_id"]),
            bay_id=str(result["bay_id"]),
            size=_size(result.get("size"), size),  # lockerd may give a larger bay
        )

    def deposit_confirm(self, staff_id: str, deposit_id: int) -> Stored:
        """Stores the item; DoorNotClosed while the door is open. The password lockerd
        returns is dropped (see the module docstring)."""
        result = self._call("deposit.confirm", staff_id=staff_id, deposit_id=deposit_id)
        return Stored(
            deposit_id=int(result["deposit_id"]),
            bay_id=str(result["bay_id"]),
            deadline=datetime.fromisoformat(str(result["deadline"])),
        )

    def deposit_cancel(self, staff_id: str, deposit_id: int) -> None:
        self._call("deposit.cancel", staff_id=staff_id, deposit_id=deposit_id)

    def reissue_password(self, staff_id: str, deposit_id: int) -> None:
        """A new code goes to the applicant by SMS (through the hall); lockouts reset."""
        self._call("deposit.reissue_password", staff_id=staff_id, deposit_id=deposit_id)

    def overdue(self) -> list[Deposit]:
        result = self._call("overdue.list", repeatable=True)
        return [_deposit(d) for d in result.get("deposits", [])]

    def retrieve(self, staff_id: str, deposit_id: int) -> Opened:
        """Opens an overdue deposit's bay for staff (NotOverdue before the deadline)."""
        result = self._call("retrieve", staff_id=staff_id, deposit_id=deposit_id)
        return Opened(bay_id=str(result["bay_id"]), deposit_id=int(result["deposit_id"]))

    def set_bay_enabled(self, staff_id: str, bay_id: str, enabled: bool, reason: str = "") -> None:
        self._call(
            "bay.set_enabled", staff_id=staff_id, bay_id=bay_id, enabled=enabled, reason=reason
        )

    # -- events ------------------------------------------------------------------------------

    def subscribe(
        self,
        on_event: Callable[[LockerEvent], None],
        *,
        on_connection: Callable[[bool], None] | None = None,
        retry_s: float = 1.0,
    ) -> EventSubscription:
        """Deliver lockerd's events to ``on_event`` on a background thread until ``close``.
        The subscription reconnects by itself when lockerd restarts."""
        subscription = EventSubscription(
            self._client.socket_path, on_event, on_connection=on_connection, retry_s=retry_s
        )
        subscription.start()
        return subscription


class EventSubscription:
    """One ``events.subscribe`` stream on its own thread and socket."""

    def __init__(
        self,
        socket_path: str,
        on_event: Callable[[LockerEvent], None],
        *,
        on_connection: Callable[[bool], None] | None = None,
        retry_s: float = 1.0,
    ) -> None:
        self._path = socket_path
        self._on_event = on_event
        self._on_connection = on_connection
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="locker-events", daemon=True)

    @property
    def connected(self) -> bool:
        """True once lockerd accepted the subscription, until the stream breaks."""
        return self._connected.is_set()

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with self._lock:
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked read
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._stream()
            except (OSError, ValueError) as exc:
                log.info("locker event stream: %s", exc)
            if self._connected.is_set():
                self._connected.clear()
                self._tell_connection(False)
            self._stop.wait(self._retry_s)

    def _stream(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return
            self._sock = sock
        try:
            sock.connect(self._path)
            request = {"v": API_VERSION, "id": 0, "method": "events.subscribe"}
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as lines:
                for line in lines:
                    self._line(json.loads(line))
        finally:
            with self._lock:
                self._sock = None
            sock.close()

    def _line(self, message: Any) -> None:
        if not isinstance(message, dict):
            raise ValueError("not a JSON object from lockerd")
        if "event" in message:
            raw = message["event"]
            bay = raw.get("bay_id")
            event = LockerEvent(
                type=str(raw.get("type", "")),
                seq=int(raw.get("seq", 0)),
                bay_id=None if bay is None else str(bay),
                data=raw,
            )
            try:
                self._on_event(event)
            except Exception:  # a bug in the app's handler must not end the stream
                log.exception("locker event handler failed")
        elif message.get("ok"):
            self._connected.set()
            self._tell_connection(True)
        else:
            raise ValueError(f"subscription refused: {message.get('error')}")

    def _tell_connection(self, up: bool) -> None:
        if self._on_connection is not None:
            try:
                self._on_connection(up)
            except Exception:
                log.exception("locker connection handler failed")
