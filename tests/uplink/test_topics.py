"""Topic tree: builders, the parser, segment rules and the hall's filters (contract v1)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from uplink.errors import UplinkError
from uplink.topics import (
    HallFilters,
    Leaf,
    ParsedTopic,
    TopicError,
    Topics,
    check_segment,
    hall_presence,
    hall_username,
    parse,
    shared,
)

T = Topics("demo-hall", "locker-01", "lockerd")
BASE = "hall/demo-hall/dev/locker-01/lockerd"


def device_topics(t: Topics) -> dict[str, str]:
    return {
        "presence": t.presence,
        "event": t.event("bay_opened"),
        "telemetry": t.telemetry,
        "request": t.request("ticket.issue"),
        "response": t.response,
        "command": t.command,
        "ack": t.ack,
    }


def test_builders_follow_the_contract() -> None:
    assert device_topics(T) == {
        "presence": f"{BASE}/presence",
        "event": f"{BASE}/evt/bay_opened",
        "telemetry": f"{BASE}/tele",
        "request": f"{BASE}/req/ticket.issue",
        "response": f"{BASE}/res",
        "command": f"{BASE}/cmd",
        "ack": f"{BASE}/ack",
    }
    assert hall_presence("demo-hall") == "hall/demo-hall/hall/presence"
    assert T.hall_presence == "hall/demo-hall/hall/presence"
    assert T.client_id == "locker-01.lockerd"
    assert hall_username("demo-hall") == "hall.demo-hall"


def test_device_subscribes_to_its_commands_responses_and_the_hall() -> None:
    assert T.subscriptions == (
        (f"{BASE}/cmd", 1),
        (f"{BASE}/res", 1),
        ("hall/demo-hall/hall/presence", 1),
    )


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (f"{BASE}/presence", ParsedTopic("demo-hall", "locker-01", "lockerd", Leaf.PRESENCE, None)),
        (
            f"{BASE}/evt/bay_opened",
            ParsedTopic("demo-hall", "locker-01", "lockerd", Leaf.EVENT, "bay_opened"),
        ),
        (f"{BASE}/tele", ParsedTopic("demo-hall", "locker-01", "lockerd", Leaf.TELEMETRY, None)),
        (
            f"{BASE}/req/ticket.issue",
            ParsedTopic("demo-hall", "locker-01", "lockerd", Leaf.REQUEST, "ticket.issue"),
        ),
        (f"{BASE}/res", ParsedTopic("demo-hall", "locker-01", "lockerd", Leaf.RESPONSE, None)),
        (f"{BASE}/cmd", ParsedTopic("demo-hall", "locker-01", "lockerd", Leaf.COMMAND, None)),
        (f"{BASE}/ack", ParsedTopic("demo-hall", "locker-01", "lockerd", Leaf.ACK, None)),
        (
            "hall/demo-hall/hall/presence",
            ParsedTopic("demo-hall", None, None, Leaf.HALL_PRESENCE, None),
        ),
    ],
)
def test_parse(topic: str, expected: ParsedTopic) -> None:
    assert parse(topic) == expected


def test_parsed_device_topic_gives_back_the_senders_topics() -> None:
    parsed = parse(T.request("appointment.lookup"))
    assert parsed.device_topics() == T
    assert parsed.device_topics().response == f"{BASE}/res"
    with pytest.raises(TopicError, match="belongs to no device"):
        parse("hall/demo-hall/hall/presence").device_topics()


segments = st.from_regex(r"\A[A-Za-z0-9_.-]{1,64}\Z")


@given(hall_id=segments, device_id=segments, component=segments, name=segments)
def test_every_built_topic_parses_back(
    hall_id: str, device_id: str, component: str, name: str
) -> None:
    if device_id.startswith("hall."):  # reserved for the hall's identity
        device_id = ("d" + device_id)[:64]
    t = Topics(hall_id, device_id, component)
    for topic in device_topics(t).values():
        parsed = parse(topic)
        assert (parsed.hall_id, parsed.device_topics()) == (hall_id, t)
    assert parse(t.event(name)).name == name
    assert parse(t.request(name)).name == name
    assert parse(hall_presence(hall_id)).hall_id == hall_id


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("", "must start with 'hall/'"),
        ("hall", "too short"),
        ("/hall/h/dev/d/c/tele", "must start with 'hall/'"),
        ("hallx/h/dev/d/c/tele", "must start with 'hall/'"),
        ("$SYS/broker/uptime", "must start with 'hall/'"),
        ("hall/h/dev/d/c", "needs hall/{hall_id}/dev"),
        ("hall/h/dev/d/c/tele/extra", "'tele' takes no further segment"),
        ("hall/h/dev/d/c/tele/", "'tele' takes no further segment"),
        ("hall/h/dev/d/c/presence/x", "'presence' takes no further segment"),
        ("hall/h/dev/d/c/evt", "'evt' takes exactly one more segment, the event type"),
        ("hall/h/dev/d/c/evt/a/b", "'evt' takes exactly one more segment"),
        ("hall/h/dev/d/c/req", "'req' takes exactly one more segment, the request kind"),
        ("hall/h/dev/d/c/evt/", "event type '': is empty"),
        ("hall/h/dev/d/c/status", "unknown leaf 'status'"),
        ("hall/h/dev/d/c/TELE", "unknown leaf 'TELE'"),
        ("hall/h/devices/d/c/tele", "third level must be 'dev' or 'hall'"),
        ("hall/h/hall/presence/x", "the hall's own topics are"),
        ("hall/h/hall/status", "the hall's own topics are"),
        ("hall/+/dev/d/c/tele", "hall_id '+': contains an MQTT wildcard"),
        ("hall/h/dev/#", "hall/{hall_id}/dev/{device_id}"),
        ("hall/h/dev/+/c/tele", "device_id '+': contains an MQTT wildcard"),
        ("hall/h/dev/d/#/tele", "component '#': contains an MQTT wildcard"),
        ("hall/h/dev/d/c/evt/+", "event type '+': contains an MQTT wildcard"),
        ("hall//dev/d/c/tele", "hall_id '': is empty"),
        ("hall/h/dev//c/tele", "device_id '': is empty"),
        ("hall/h/dev/d e/c/tele", "device_id 'd e': contains ' '"),
        ("hall/h/dev/储物柜/c/tele", "device_id '储物柜': contains '储'"),
        ("hall/h/dev/d/c\x00/tele", "contains '\\x00'"),
        (f"hall/h/dev/{'x' * 65}/c/tele", "is 65 characters, at most 64 allowed"),
        ("hall/h/dev/hall.h/c/tele", "reserved for the hall's identity"),
    ],
)
def test_parse_rejects_topics_outside_the_tree(topic: str, reason: str) -> None:
    with pytest.raises(TopicError) as info:
        parse(topic)
    assert reason in str(info.value)
    assert str(info.value).startswith(f"topic {topic[:120]!r}")


def test_topic_error_is_an_uplink_error_and_a_value_error() -> None:
    with pytest.raises(UplinkError):
        parse("nope")
    with pytest.raises(ValueError, match="must start with"):
        parse("nope")


def test_huge_garbage_topic_is_shortened_in_the_message() -> None:
    with pytest.raises(TopicError) as info:
        parse("x" * 100_000)
    assert len(str(info.value)) < 300
    assert "(100000 characters)" in str(info.value)


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (
            lambda: Topics("demo-hall", "locker/01", "lockerd"),
            "device_id 'locker/01': contains '/'",
        ),
        (lambda: Topics("demo-hall", "locker-01", ""), "component '': is empty"),
        (lambda: Topics("demo#hall", "locker-01", "lockerd"), "hall_id 'demo#hall': contains an"),
        (lambda: Topics("demo-hall", "hall.demo-hall", "lockerd"), "reserved for the hall"),
        (lambda: T.event("bay+opened"), "event type 'bay+opened': contains an MQTT wildcard"),
        (lambda: T.request(""), "request kind '': is empty"),
        (lambda: T.request("k" * 65), "at most 64 allowed"),
        (lambda: hall_presence("a/b"), "hall_id 'a/b': contains '/'"),
        (lambda: HallFilters("+"), "hall_id '+'"),
        (lambda: shared("a/b", "x"), "share group 'a/b'"),
    ],
)
def test_builders_refuse_bad_segments(build: Callable[[], object], reason: str) -> None:
    with pytest.raises(TopicError) as info:
        build()
    assert reason in str(info.value)


def test_check_segment_accepts_the_full_alphabet_and_64_characters() -> None:
    assert check_segment("Az09_.-", "x") == "Az09_.-"
    assert check_segment("a" * 64, "x") == "a" * 64
    with pytest.raises(TopicError, match="must be a string"):
        check_segment(5, "x")  # type: ignore[arg-type]
    with pytest.raises(TopicError, match="contains"):
        check_segment("a\n", "x")  # a regex "$" would let a trailing newline through


def test_qos_and_retain_per_leaf_follow_the_contract() -> None:
    table = {leaf: (leaf.qos, leaf.retained, leaf.published_by_hall) for leaf in Leaf}
    assert table == {
        Leaf.PRESENCE: (1, True, False),
        Leaf.EVENT: (1, False, False),
        Leaf.TELEMETRY: (0, False, False),
        Leaf.REQUEST: (1, False, False),
        Leaf.RESPONSE: (1, False, True),
        Leaf.COMMAND: (1, False, True),
        Leaf.ACK: (1, False, False),
        Leaf.HALL_PRESENCE: (1, True, True),
        Leaf.HALL_APPOINTMENTS: (1, True, True),
    }


def test_hall_filters_match_exactly_what_devices_publish() -> None:
    f = HallFilters("demo-hall")
    assert f.events == "hall/demo-hall/dev/+/+/evt/+"
    expected = {
        f.presence: {"presence"},
        f.events: {"event"},
        f.telemetry: {"telemetry"},
        f.requests: {"request"},
        f.acks: {"ack"},
    }
    others = [Topics("demo-hall", "kiosk-02", "kiosk"), T]
    for topic_filter, qos in f.subscriptions:
        assert qos == 1 or topic_filter == f.telemetry
        for t in others:
            matched = {
                name
                for name, topic in device_topics(t).items()
                if topic_matches_sub(topic_filter, topic)
            }
            assert matched == expected[topic_filter]
            assert not topic_matches_sub(topic_filter, t.hall_presence)
        other_hall = Topics("other-hall", "locker-01", "lockerd")
        assert not any(
            topic_matches_sub(topic_filter, x) for x in device_topics(other_hall).values()
        )
    assert [qos for _, qos in f.subscriptions] == [1, 1, 0, 1, 1]


def test_shared_subscription() -> None:
    f = HallFilters("demo-hall")
    assert shared("hall-workers", f.events) == "$share/hall-workers/hall/demo-hall/dev/+/+/evt/+"
