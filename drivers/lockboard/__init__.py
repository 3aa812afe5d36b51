"""Lock control boards on an RS485/TTL bus: one interface, two board families, simulators.

    bus = LockBus(BusSettings(name="bus0", protocol="8a80", url="/dev/ttyUSB0"))
    bus.start()
    reply = bus.open(board=1, channel=3)        # OpenReply: acknowledged, latch_open
    status = bus.read_doors(board=1)            # BoardStatus: channel -> open?

Serial links are opened with ``serial.serial_for_url``: a device path, ``loop://``, ``spy://``,
a pty, or ``sim://8a80`` / ``sim://kerong`` for an in-process simulated bus.
"""

from drivers.lockboard.errors import (
    BoardOffline,
    BoardTimeout,
    FrameError,
    LockboardError,
)
from drivers.lockboard.settings import BusSettings, FeedbackPolarity, Protocol
from drivers.lockboard.types import BoardStatus, OpenReply

__all__ = [
    "BoardOffline",
    "BoardStatus",
    "BoardTimeout",
    "BusSettings",
    "FeedbackPolarity",
    "FrameError",
    "LockboardError",
    "OpenReply",
    "Protocol",
]
