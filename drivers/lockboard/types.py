"""Values that cross the lock-board interface. Channels are 1-based for every family."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OpenReply:
    """What the board said to an open command.

    ``acknowledged`` is False only when the bus is configured to expect no reply (some Kerong
    units): then the frame was sent and nothing more is known. ``latch_open`` is the lock feedback
    in the reply, already corrected for the bus's polarity, or None when the reply carries none.
    ``confirmed_by_status`` is True when the reply was lost and a status query showed the lock open,
    so the open was not sent a second time.
    """

    board: int
    channel: int
    acknowledged: bool
    latch_open: bool | None
    confirmed_by_status: bool = False
    # monotonic time the first open frame was written: readings taken before it say nothing
    sent_at: float = 0.0


@dataclass(frozen=True)
class BoardStatus:
    """Door feedback for every channel the reply covers (True = open), polarity applied.

    ``items`` holds item-present sensors where the family reports them (Kerong infrared), else {}.
    """

    board: int
    doors: dict[int, bool]
    items: dict[int, bool] = field(default_factory=dict)
    # monotonic time the status request was written (0.0 when unknown)
    taken_at: float = 0.0
