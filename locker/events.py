"""In-process fan-out of locker events (door changes, alarms, deposits) to API subscribers.

Each subscriber has a bounded queue; a subscriber that stops reading loses its oldest events and
is told so (``{"type": "events_dropped"}``) instead of slowing the daemon down.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

SUBSCRIBER_QUEUE_LEN = 1000


class EventHub:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._seq = itertools.count(1)

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(SUBSCRIBER_QUEUE_LEN)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(q)

    def publish(self, event_type: str, **fields: Any) -> None:
        event = {"seq": next(self._seq), "type": event_type, **fields}
        for q in self._subscribers:
            if q.full():
                while not q.empty():
                    q.get_nowait()
                q.put_nowait({"seq": event["seq"], "type": "events_dropped"})
            q.put_nowait(event)
