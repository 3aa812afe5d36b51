"""A simulated lock-board bus: the board side of both wire protocols, plus door physics.

Written from the hardware notes alone (no host codec imports), so it can check the host codecs.
Pure and I/O-free: ``handle`` takes bytes the host sent and returns replies, each with the
monotonic time it is due; runners do the reading and writing. Time-driven physics (latch
windows, the automatic person) are scheduled events applied lazily by ``tick``, which every
public method calls first, so a fake clock makes the whole model deterministic.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, NamedTuple

from drivers.lockboard.settings import BOARD_RANGE, CHANNEL_RANGE, Protocol

FeedbackOpen = Literal["set", "clear"]

# 8A/80 family: HEAD BOARD CHANNEL FUNC XOR
HEAD_OPEN = 0x8A
HEAD_QUERY = 0x80
FUNC_OPEN = 0x11
FUNC_QUERY = 0x33
ST_8A80_SET = 0x11
# Kerong family: STX ADDR CMD ETX SUM
STX = 0x02
ETX = 0x03
CMD_STATUS = 0x30
CMD_UNLOCK = 0x31
CMD_STATUS_REPLY = 0x35
ST_KERONG_SET = 0x01
KERONG_CHANNELS_PER_WORD = 16

REQUEST_LEN = 5  # every request of both families


class CoilFire(NamedTuple):
    """One lock coil pulse. ``jammed`` pulses fired but the latch did not move."""

    board: int
    channel: int
    at_s: float
    jammed: bool


@dataclass(frozen=True)
class ChannelState:
    """A read-only copy of one channel's physical state."""

    latch_released: bool
    door_open: bool
    jammed: bool
    item_present: bool
    held_open: bool
    openings: int
    coil_fires: int

    @property
    def secured(self) -> bool:
        """What the lock feedback contact reports: latch engaged and door shut."""
        return not (self.latch_released or self.door_open)


@dataclass
class _Channel:
    latch_released: bool = False
    door_open: bool = False
    jammed: bool = False
    item_present: bool = False
    held_open: bool = False
    openings: int = 0
    coil_fires: int = 0
    # Pending events carry the generation they were scheduled in; a bump makes them stale.
    latch_generation: int = 0
    person_generation: int = 0

    def view(self) -> ChannelState:
        return ChannelState(
            latch_released=self.latch_released,
            door_open=self.door_open,
            jammed=self.jammed,
            item_present=self.item_present,
            held_open=self.held_open,
            openings=self.openings,
            coil_fires=self.coil_fires,
        )


class _Kind(Enum):
    FIRE = "fire"  # one coil of an open-all, which fires the locks one after another
    RELATCH = "relatch"
    PULL = "pull"
    CLOSE = "close"


class _Event(NamedTuple):
    due_s: float
    seq: int  # unique, so the heap never compares the fields after it
    kind: _Kind
    board: int
    channel: int
    generation: int


def _xor(data: bytes) -> int:
    result = 0
    for byte in data:
        result ^= byte
    return result


def _sum(data: bytes) -> int:
    return sum(data) % 256


class SimBus:
    """One simulated bus with several boards of one family. Thread-safe (one lock).

    Channels are 1-based. ``feedback_open`` is the wiring polarity: with "set" a feedback bit of 1
    means "not secured" (latch released or door open); with "clear" the bit is inverted on the
    wire. ``expect_reply=False`` models units that stay silent on unlock (status is still
    answered). Channels that do not exist read as secured in status bitmaps.
    """

    def __init__(
        self,
        protocol: Protocol,
        boards: Sequence[int],
        channels_per_board: int,
        *,
        feedback_open: FeedbackOpen = "set",
        expect_reply: bool = True,
        status_bytes: int = 3,
        monotonic: Callable[[], float] = time.monotonic,
        release_window_ms: int = 3000,
        auto_person: bool = True,
        pull_after_ms: int = 150,
        close_after_ms: int = 800,
        open_all_step_ms: int = 50,
    ) -> None:
        if protocol not in BOARD_RANGE:
            raise ValueError(f"unknown protocol {protocol!r}")
        low, high = BOARD_RANGE[protocol]
        if not boards or len(set(boards)) != len(boards):
            raise ValueError("boards must be a non-empty list without duplicates")
        for board in boards:
            if not low <= board <= high:
                raise ValueError(f"{protocol} board address {board} outside {low}-{high}")
        ch_low, ch_high = CHANNEL_RANGE[protocol]
        if not ch_low <= channels_per_board <= ch_high:
            raise ValueError(f"{protocol} channels per board must be {ch_low}-{ch_high}")
        if feedback_open not in ("set", "clear"):
            raise ValueError("feedback_open must be 'set' or 'clear'")
        if not 1 <= status_bytes <= 6:
            raise ValueError("status_bytes must be 1-6")
        for name, value in (
            ("release_window_ms", release_window_ms),
            ("pull_after_ms", pull_after_ms),
            ("close_after_ms", close_after_ms),
            ("open_all_step_ms", open_all_step_ms),
        ):
            _check_ms(name, value)
        self.protocol: Protocol = protocol
        self.boards: tuple[int, ...] = tuple(boards)
        self.channels_per_board = channels_per_board
        self.feedback_open: FeedbackOpen = feedback_open
        self.expect_reply = expect_reply
        self.status_bytes = status_bytes
        self._monotonic = monotonic
        self._release_window_s = release_window_ms / 1000
        self._open_all_step_s = open_all_step_ms / 1000
        self._auto_person = auto_person
        self._pull_after_s = pull_after_ms / 1000
        self._close_after_s = close_after_ms / 1000
        self._lock = threading.Lock()
        self._channels = {
            (board, channel): _Channel()
            for board in self.boards
            for channel in range(1, channels_per_board + 1)
        }
        self._offline: set[int] = set()
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self._rx = bytearray()
        self._log: list[CoilFire] = []
        self._garble_pending = 0
        self._reply_delay_s = 0.0

    # -- wire -------------------------------------------------------------------------------

    def handle(self, data: bytes) -> list[tuple[float, bytes]]:
        """Feed bytes from the host; return ``(due_monotonic_s, reply)`` pairs to write."""
        with self._lock:
            now = self._tick_locked()
            self._rx += data
            replies: list[tuple[float, bytes]] = []
            for frame in self._take_frames():
                if self.protocol == "8a80":
                    replies.extend(self._dispatch_8a80(frame, now))
                else:
                    replies.extend(self._dispatch_kerong(frame, now))
            return replies

    def tick(self) -> None:
        """Apply every scheduled physical event that is due."""
        with self._lock:
            self._tick_locked()

    # -- hooks: what people and faults do ---------------------------------------------------

    def pull_door(self, board: int, channel: int) -> bool:
        """A person pulls the handle. Returns whether the door is open afterwards.

        A door opened by a hook stays open until ``close_door``.
        """
        with self._lock:
            self._tick_locked()
            state = self._state(board, channel)
            if not state.door_open and state.latch_released:
                self._open_door(state)
            return state.door_open

    def close_door(self, board: int, channel: int) -> None:
        """A person shuts the door (the latch catches) and walks away."""
        with self._lock:
            self._tick_locked()
            state = self._state(board, channel)
            state.held_open = False
            state.person_generation += 1
            if state.door_open:
                self._shut(state)

    def hold_door_open(self, board: int, channel: int) -> bool:
        """A person opens the door as soon as it can be opened and never closes it.

        Returns whether it is open now; if latched, the person opens it after the next unlock.
        """
        with self._lock:
            self._tick_locked()
            state = self._state(board, channel)
            state.held_open = True
            if not state.door_open and state.latch_released:
                self._open_door(state)
            return state.door_open

    def force_open(self, board: int, channel: int) -> None:
        """The door is forced open with no unlock (tamper). It stays open until ``close_door``."""
        with self._lock:
            self._tick_locked()
            state = self._state(board, channel)
            if not state.door_open:
                self._open_door(state)

    def jam(self, board: int, channel: int, jammed: bool = True) -> None:
        """A jammed lock fires its coil on unlock but the latch never releases."""
        with self._lock:
            self._tick_locked()
            self._state(board, channel).jammed = jammed

    def set_offline(self, board: int, offline: bool = True) -> None:
        """An offline board ignores every command and never replies."""
        with self._lock:
            self._tick_locked()
            self._check_board(board)
            if offline:
                self._offline.add(board)
            else:
                self._offline.discard(board)

    def garble_next(self, count: int = 1) -> None:
        """Corrupt one byte in each of the next ``count`` replies, so their checksums fail."""
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._tick_locked()
            self._garble_pending = count

    def delay_replies(self, delay_ms: int) -> None:
        """Make every later reply due ``delay_ms`` after its request (0 resets)."""
        _check_ms("delay_ms", delay_ms)
        with self._lock:
            self._tick_locked()
            self._reply_delay_s = delay_ms / 1000

    def set_auto_person(
        self,
        enabled: bool,
        pull_after_ms: int | None = None,
        close_after_ms: int | None = None,
    ) -> None:
        """Switch the automatic person (pull after an unlock, close after a while)."""
        if pull_after_ms is not None:
            _check_ms("pull_after_ms", pull_after_ms)
        if close_after_ms is not None:
            _check_ms("close_after_ms", close_after_ms)
        with self._lock:
            self._tick_locked()
            self._auto_person = enabled
            if pull_after_ms is not None:
                self._pull_after_s = pull_after_ms / 1000
            if close_after_ms is not None:
                self._close_after_s = close_after_ms / 1000

    def put_item(self, board: int, channel: int) -> None:
        with self._lock:
            self._tick_locked()
            self._state(board, channel).item_present = True

    def take_item(self, board: int, channel: int) -> None:
        with self._lock:
            self._tick_locked()
            self._state(board, channel).item_present = False

    # -- records ----------------------------------------------------------------------------

    @property
    def unlock_log(self) -> list[CoilFire]:
        """Every coil fire so far, jammed ones included, oldest first."""
        with self._lock:
            self._tick_locked()
            return list(self._log)

    @property
    def door_openings(self) -> dict[tuple[int, int], int]:
        """How often each (board, channel) door went from shut to open."""
        with self._lock:
            self._tick_locked()
            return {key: state.openings for key, state in self._channels.items()}

    def channel_state(self, board: int, channel: int) -> ChannelState:
        with self._lock:
            self._tick_locked()
            return self._state(board, channel).view()

    def snapshot(self) -> dict[str, Any]:
        """Everything, JSON-able; board and channel keys are decimal strings."""
        with self._lock:
            now = self._tick_locked()
            boards: dict[str, Any] = {}
            for board in self.boards:
                channels: dict[str, Any] = {}
                for channel in range(1, self.channels_per_board + 1):
                    state = self._channels[(board, channel)]
                    channels[str(channel)] = {
                        "latch": "released" if state.latch_released else "locked",
                        "door": "open" if state.door_open else "closed",
                        "jammed": state.jammed,
                        "item": state.item_present,
                        "held_open": state.held_open,
                        "openings": state.openings,
                        "coil_fires": state.coil_fires,
                    }
                boards[str(board)] = {"offline": board in self._offline, "channels": channels}
            return {
                "protocol": self.protocol,
                "now_s": now,
                "boards": boards,
                "offline_boards": sorted(self._offline),
                "coil_fires": len(self._log),
                "door_openings": sum(s.openings for s in self._channels.values()),
                "auto_person": self._auto_person,
                "reply_delay_ms": round(self._reply_delay_s * 1000),
                "garble_pending": self._garble_pending,
            }

    # -- framing ----------------------------------------------------------------------------

    def _take_frames(self) -> list[bytes]:
        heads = (HEAD_OPEN, HEAD_QUERY) if self.protocol == "8a80" else (STX,)
        buf = self._rx
        frames: list[bytes] = []
        pos = 0
        while True:
            while pos < len(buf) and buf[pos] not in heads:
                pos += 1
            if len(buf) - pos < REQUEST_LEN:
                break
            candidate = bytes(buf[pos : pos + REQUEST_LEN])
            if self._valid_request(candidate):
                frames.append(candidate)
                pos += REQUEST_LEN
            else:
                # a head value inside garbage: the real frame may start at any later byte
                pos += 1
        del buf[:pos]
        return frames

    def _valid_request(self, frame: bytes) -> bool:
        if self.protocol == "8a80":
            return frame[4] == _xor(frame[:4])
        return frame[3] == ETX and frame[4] == _sum(frame[:4])

    def _dispatch_8a80(self, frame: bytes, now: float) -> list[tuple[float, bytes]]:
        head, board, channel, func, _ = frame
        if board not in self.boards or board in self._offline:
            return []
        due = now + self._reply_delay_s
        exists = 1 <= channel <= self.channels_per_board
        if head == HEAD_OPEN and func == FUNC_OPEN:
            if channel == 0:
                return self._open_all_8a80(board, now)
            if not exists:
                return []
            self._fire(board, channel, now)
            if not self.expect_reply:
                return []
            return [
                self._reply(
                    due, self._xor_frame(HEAD_OPEN, board, channel, self._st(board, channel))
                )
            ]
        if head == HEAD_QUERY and func == FUNC_QUERY:
            if channel == 0:
                bitmap = self._feedback_word(board, 8 * self.status_bytes)
                body = bytes([HEAD_QUERY, board]) + bitmap.to_bytes(self.status_bytes, "big")
                return [self._reply(due, self._xor_frame(*body, FUNC_QUERY))]
            if exists:
                return [
                    self._reply(
                        due, self._xor_frame(HEAD_QUERY, board, channel, self._st(board, channel))
                    )
                ]
        return []

    def _open_all_8a80(self, board: int, now: float) -> list[tuple[float, bytes]]:
        for index in range(self.channels_per_board):
            self._schedule(now + index * self._open_all_step_s, _Kind.FIRE, board, index + 1, 0)
        self._apply_due(now)
        if not self.expect_reply:
            return []
        due = now + self._reply_delay_s + self._open_all_step_s * self.channels_per_board
        return [self._reply(due, self._xor_frame(HEAD_OPEN, board, 0, FUNC_OPEN))]

    def _dispatch_kerong(self, frame: bytes, now: float) -> list[tuple[float, bytes]]:
        _, addr, cmd, _, _ = frame
        board, index = addr >> 4, addr & 0x0F
        if board not in self.boards or board in self._offline:
            return []
        due = now + self._reply_delay_s
        if cmd == CMD_UNLOCK and index < self.channels_per_board:
            self._fire(board, index + 1, now)
            if not self.expect_reply:
                return []
            st = ST_KERONG_SET if self._wire_bit(board, index + 1) else 0x00
            return [self._reply(due, self._sum_frame(addr, CMD_UNLOCK, st))]
        if cmd == CMD_STATUS and index == 0:
            locks = self._feedback_word(board, KERONG_CHANNELS_PER_WORD)
            items = 0
            for channel in range(1, self.channels_per_board + 1):
                if self._channels[(board, channel)].item_present:
                    items |= 1 << (channel - 1)
            payload = locks.to_bytes(2, "little") + items.to_bytes(2, "little")
            return [self._reply(due, self._sum_frame(addr, CMD_STATUS_REPLY, *payload))]
        return []

    def _xor_frame(self, *body: int) -> bytes:
        return bytes([*body, _xor(bytes(body))])

    def _sum_frame(self, *inner: int) -> bytes:
        body = bytes([STX, *inner, ETX])
        return body + bytes([_sum(body)])

    def _reply(self, due: float, frame: bytes) -> tuple[float, bytes]:
        if self._garble_pending:
            self._garble_pending -= 1
            # flip the checksum byte: head and length stay intact, the checksum can never match
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        return (due, frame)

    def _wire_bit(self, board: int, channel: int) -> bool:
        not_secured = not self._channels[(board, channel)].view().secured
        return not_secured != (self.feedback_open == "clear")

    def _st(self, board: int, channel: int) -> int:
        return ST_8A80_SET if self._wire_bit(board, channel) else 0x00

    def _feedback_word(self, board: int, width: int) -> int:
        """Feedback bits for channels 1..width, bit 0 = channel 1, in wire polarity."""
        absent = self.feedback_open == "clear"  # an absent channel reads as secured
        word = 0
        for channel in range(1, width + 1):
            present = channel <= self.channels_per_board
            if self._wire_bit(board, channel) if present else absent:
                word |= 1 << (channel - 1)
        return word

    # -- physics ----------------------------------------------------------------------------

    def _tick_locked(self) -> float:
        now = self._monotonic()
        self._apply_due(now)
        return now

    def _apply_due(self, now: float) -> None:
        while self._events and self._events[0].due_s <= now:
            self._apply(heapq.heappop(self._events))

    def _schedule(self, due_s: float, kind: _Kind, board: int, channel: int, gen: int) -> None:
        heapq.heappush(self._events, _Event(due_s, next(self._seq), kind, board, channel, gen))

    def _apply(self, event: _Event) -> None:
        board, channel = event.board, event.channel
        state = self._channels[(board, channel)]
        if event.kind is _Kind.FIRE:
            self._fire(board, channel, event.due_s)
        elif event.kind is _Kind.RELATCH:
            if event.generation == state.latch_generation:
                state.latch_released = False
        elif event.generation != state.person_generation:
            return
        elif event.kind is _Kind.PULL:
            wants = self._auto_person or state.held_open
            if wants and state.latch_released and not state.door_open:
                self._open_door(state)
                if not state.held_open:
                    self._schedule(
                        event.due_s + self._close_after_s,
                        _Kind.CLOSE,
                        board,
                        channel,
                        state.person_generation,
                    )
        elif event.kind is _Kind.CLOSE and state.door_open and not state.held_open:
            self._shut(state)

    def _fire(self, board: int, channel: int, at_s: float) -> None:
        state = self._channels[(board, channel)]
        state.coil_fires += 1
        self._log.append(CoilFire(board, channel, at_s, state.jammed))
        if state.jammed:
            return
        state.latch_released = True
        state.latch_generation += 1
        self._schedule(
            at_s + self._release_window_s, _Kind.RELATCH, board, channel, state.latch_generation
        )
        if not state.door_open and (self._auto_person or state.held_open):
            self._schedule(
                at_s + self._pull_after_s, _Kind.PULL, board, channel, state.person_generation
            )

    def _open_door(self, state: _Channel) -> None:
        state.door_open = True
        state.openings += 1

    def _shut(self, state: _Channel) -> None:
        # the latch bolt catches as the door shuts, whatever was left of the release window
        state.door_open = False
        state.latch_released = False
        state.latch_generation += 1

    def _check_board(self, board: int) -> None:
        if board not in self.boards:
            raise ValueError(f"no board {board} on this bus (boards: {list(self.boards)})")

    def _state(self, board: int, channel: int) -> _Channel:
        self._check_board(board)
        state = self._channels.get((board, channel))
        if state is None:
            raise ValueError(
                f"board {board} has channels 1-{self.channels_per_board}, not {channel}"
            )
        return state


def _check_ms(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer of milliseconds")
