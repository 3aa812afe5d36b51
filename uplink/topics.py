"""The MQTT topic tree of contract v1: builders, the parser, and the hall's subscription filters.

Device topics are ``hall/{hall_id}/dev/{device_id}/{component}/{leaf}[/{name}]``; the hall's own
presence is ``hall/{hall_id}/hall/presence``. Every variable segment is 1-64 characters of
``[A-Za-z0-9_.-]``, so a segment can never be a wildcard, a level separator or a ``$`` topic.
The broker ACL (docs/mqtt.md) confines each device to its own ``dev/{device_id}`` subtree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from uplink.errors import UplinkError

ROOT = "hall"
SEGMENT_MAX_CHARS = 64
SEGMENT_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
# The hall's certificate CN is "hall.{hall_id}"; a device id with this prefix would get its ACL.
HALL_IDENTITY_PREFIX = "hall."
# compiled once; the outbox checks event types with the same rule at append time
SEGMENT_RE = re.compile(SEGMENT_PATTERN)
_BAD_CHAR = re.compile(r"[^A-Za-z0-9_.-]")
# Long enough to see what went wrong, short enough that garbage cannot flood a log line.
_SHOWN_TOPIC_CHARS = 120


class TopicError(UplinkError, ValueError):
    code = "topic_invalid"


class Leaf(StrEnum):
    """What a topic carries. The value is the topic word, except for the hall's presence."""

    PRESENCE = "presence"
    EVENT = "evt"
    TELEMETRY = "tele"
    REQUEST = "req"
    RESPONSE = "res"
    COMMAND = "cmd"
    ACK = "ack"
    HALL_PRESENCE = "hall_presence"
    HALL_APPOINTMENTS = "hall_appointments"

    @property
    def qos(self) -> int:
        # Telemetry is superseded by the next sample; everything else must arrive.
        return 0 if self is Leaf.TELEMETRY else 1

    @property
    def retained(self) -> bool:
        # A subscriber arriving later must learn the current state at once.
        return self in (Leaf.PRESENCE, Leaf.HALL_PRESENCE, Leaf.HALL_APPOINTMENTS)

    @property
    def published_by_hall(self) -> bool:
        return self in (Leaf.RESPONSE, Leaf.COMMAND, Leaf.HALL_PRESENCE, Leaf.HALL_APPOINTMENTS)

    @property
    def has_name(self) -> bool:
        """Events carry their type and requests their kind as one more segment."""
        return self in (Leaf.EVENT, Leaf.REQUEST)


_HALL_LEAVES = {"presence": Leaf.HALL_PRESENCE, "appointments": Leaf.HALL_APPOINTMENTS}
_DEVICE_LEAVES = {leaf.value: leaf for leaf in Leaf if leaf not in _HALL_LEAVES.values()}


def check_segment(value: str, what: str) -> str:
    """Return ``value`` if it is a valid topic segment, else raise TopicError naming ``what``."""
    if not isinstance(value, str):
        raise TopicError(f"{what}: must be a string, got {type(value).__name__}")
    if SEGMENT_RE.fullmatch(value):
        return value
    if not value:
        reason = "is empty"
    elif len(value) > SEGMENT_MAX_CHARS:
        reason = f"is {len(value)} characters, at most {SEGMENT_MAX_CHARS} allowed"
    elif "/" in value:
        reason = "contains '/' (a topic level separator)"
    elif "+" in value or "#" in value:
        reason = "contains an MQTT wildcard ('+' or '#')"
    else:
        bad = _BAD_CHAR.search(value)
        reason = f"contains {bad.group()!r}" if bad else "is invalid"
    raise TopicError(f"{what} {_shown(value)}: {reason}; allowed are 1-64 of A-Z a-z 0-9 _ . -")


def check_device_id(device_id: str) -> str:
    check_segment(device_id, "device_id")
    if device_id.startswith(HALL_IDENTITY_PREFIX):
        raise TopicError(
            f"device_id {device_id!r}: the prefix {HALL_IDENTITY_PREFIX!r} is reserved for the "
            "hall's identity"
        )
    return device_id


def hall_presence(hall_id: str) -> str:
    """The hall's retained presence topic; every device of the hall subscribes to it."""
    return f"{ROOT}/{check_segment(hall_id, 'hall_id')}/hall/presence"


def hall_appointments(hall_id: str) -> str:
    """The hall's retained list of today's appointments (hashed identities only), so kiosks can
    check bookings in while the hall is unreachable."""
    return f"{ROOT}/{check_segment(hall_id, 'hall_id')}/hall/appointments"


def hall_username(hall_id: str) -> str:
    """The hall's certificate CN and so its MQTT username (the ACL's ``user`` line)."""
    return HALL_IDENTITY_PREFIX + check_segment(hall_id, "hall_id")


@dataclass(frozen=True)
class Topics:
    """Every topic of one process (component) on one device."""

    hall_id: str
    device_id: str
    component: str

    def __post_init__(self) -> None:
        check_segment(self.hall_id, "hall_id")
        check_device_id(self.device_id)
        check_segment(self.component, "component")

    @property
    def base(self) -> str:
        return f"{ROOT}/{self.hall_id}/dev/{self.device_id}/{self.component}"

    @property
    def client_id(self) -> str:
        """Each process has its own MQTT session, presence and outbox."""
        return f"{self.device_id}.{self.component}"

    @property
    def presence(self) -> str:
        return f"{self.base}/{Leaf.PRESENCE}"

    def event(self, event_type: str) -> str:
        return f"{self.base}/{Leaf.EVENT}/{check_segment(event_type, 'event type')}"

    @property
    def telemetry(self) -> str:
        return f"{self.base}/{Leaf.TELEMETRY}"

    def request(self, kind: str) -> str:
        return f"{self.base}/{Leaf.REQUEST}/{check_segment(kind, 'request kind')}"

    @property
    def response(self) -> str:
        """Also the only ResponseTopic the hall will answer to for this component."""
        return f"{self.base}/{Leaf.RESPONSE}"

    @property
    def command(self) -> str:
        return f"{self.base}/{Leaf.COMMAND}"

    @property
    def ack(self) -> str:
        return f"{self.base}/{Leaf.ACK}"

    @property
    def hall_presence(self) -> str:
        return hall_presence(self.hall_id)

    @property
    def hall_appointments(self) -> str:
        return hall_appointments(self.hall_id)

    @property
    def subscriptions(self) -> tuple[tuple[str, int], ...]:
        """(topic, QoS) pairs the device subscribes to: its commands, responses, hall presence."""
        return (
            (self.command, Leaf.COMMAND.qos),
            (self.response, Leaf.RESPONSE.qos),
            (self.hall_presence, Leaf.HALL_PRESENCE.qos),
        )


@dataclass(frozen=True)
class HallFilters:
    """The subscription filters the hall uses for all devices of one hall."""

    hall_id: str

    def __post_init__(self) -> None:
        check_segment(self.hall_id, "hall_id")

    def _devices(self, tail: str) -> str:
        return f"{ROOT}/{self.hall_id}/dev/+/+/{tail}"

    @property
    def presence(self) -> str:
        return self._devices(Leaf.PRESENCE)

    @property
    def events(self) -> str:
        return self._devices(f"{Leaf.EVENT}/+")

    @property
    def telemetry(self) -> str:
        return self._devices(Leaf.TELEMETRY)

    @property
    def requests(self) -> str:
        return self._devices(f"{Leaf.REQUEST}/+")

    @property
    def acks(self) -> str:
        return self._devices(Leaf.ACK)

    @property
    def subscriptions(self) -> tuple[tuple[str, int], ...]:
        """(filter, QoS) pairs for everything devices publish."""
        return (
            (self.presence, Leaf.PRESENCE.qos),
            (self.events, Leaf.EVENT.qos),
            (self.telemetry, Leaf.TELEMETRY.qos),
            (self.requests, Leaf.REQUEST.qos),
            (self.acks, Leaf.ACK.qos),
        )


def shared(group: str, topic_filter: str) -> str:
    """An MQTT 5 shared subscription, so several hall workers split one filter's messages."""
    return f"$share/{check_segment(group, 'share group')}/{topic_filter}"


@dataclass(frozen=True)
class ParsedTopic:
    hall_id: str
    device_id: str | None  # None for the hall's own topics
    component: str | None  # None for the hall's own topics
    leaf: Leaf
    name: str | None  # the event type or request kind; None for other leaves

    def device_topics(self) -> Topics:
        """The sender's topics, e.g. to find the only response topic a request may name."""
        if self.device_id is None or self.component is None:
            raise TopicError("a hall topic belongs to no device")
        return Topics(self.hall_id, self.device_id, self.component)


def parse(topic: str) -> ParsedTopic:
    """Parse a topic name (not a filter) of the tree, or raise TopicError saying why not."""
    if not isinstance(topic, str):
        raise TopicError(f"topic must be a string, got {type(topic).__name__}")
    try:
        return _parse(topic.split("/"))
    except TopicError as exc:
        raise TopicError(f"topic {_shown(topic)}: {exc}") from None


def _parse(parts: list[str]) -> ParsedTopic:
    if parts[0] != ROOT:
        raise TopicError(f"must start with {ROOT + '/'!r}")
    if len(parts) < 4:
        raise TopicError("too short")
    hall_id = check_segment(parts[1], "hall_id")
    if parts[2] == "hall":
        hall_leaf = _HALL_LEAVES.get(parts[3]) if len(parts) == 4 else None
        if hall_leaf is None:
            raise TopicError(
                "the hall's own topics are hall/{hall_id}/hall/presence and .../hall/appointments"
            )
        return ParsedTopic(hall_id, None, None, hall_leaf, None)
    if parts[2] != "dev":
        raise TopicError(f"third level must be 'dev' or 'hall', not {_shown(parts[2])}")
    if len(parts) < 6:
        raise TopicError("a device topic needs hall/{hall_id}/dev/{device_id}/{component}/{leaf}")
    device_id = check_device_id(parts[3])
    component = check_segment(parts[4], "component")
    leaf = _DEVICE_LEAVES.get(parts[5])
    if leaf is None:
        known = ", ".join(_DEVICE_LEAVES)
        raise TopicError(f"unknown leaf {_shown(parts[5])} (known: {known})")
    tail = parts[6:]
    if leaf.has_name:
        what = "event type" if leaf is Leaf.EVENT else "request kind"
        if len(tail) != 1:
            raise TopicError(f"{leaf.value!r} takes exactly one more segment, the {what}")
        return ParsedTopic(hall_id, device_id, component, leaf, check_segment(tail[0], what))
    if tail:
        raise TopicError(f"{leaf.value!r} takes no further segment")
    return ParsedTopic(hall_id, device_id, component, leaf, None)


def _shown(text: str) -> str:
    if len(text) <= _SHOWN_TOPIC_CHARS:
        return repr(text)
    return repr(text[:_SHOWN_TOPIC_CHARS]) + f"... ({len(text)} characters)"
