"""A request's payload is written around its ``ts`` and ``args`` (uplink/requests.py, "Per
request"): byte for byte what ``encode(Request)`` writes, and the model's own error otherwise."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import uplink.requests as requests_module
from hallkiosk.clock import ManualClock
from uplink.messages import encode
from uplink.requests import HallPresenceTracker, Requester, RequestKind
from uplink.topics import Topics

TOPICS = Topics("demo-hall", "kiosk-02", "kiosk")
KINDS = ("ticket.issue", "appointment.lookup", "prereview.upload")


class FixedClock:
    def __init__(self, now: Any, tz: tzinfo = UTC) -> None:
        self.tz = tz
        self._now = now

    def now(self) -> Any:
        return self._now

    def monotonic(self) -> float:
        return 0.0


def requester(clock: Any) -> Requester:
    kinds = [RequestKind(name, 5.0, lambda _a, _r: {}) for name in KINDS]
    return Requester(None, TOPICS, clock, HallPresenceTracker(TOPICS), kinds)  # type: ignore[arg-type]


def outcome(call: Any) -> tuple[Any, ...]:
    try:
        return ("ok", call())
    except Exception as exc:  # the same exception, with the same text, both ways
        return ("raised", type(exc), str(exc))


def compare(req: Requester, kind: str, args: Any) -> None:
    now = req._clock.now()
    fast = outcome(lambda: req._payload(kind, args))
    model = outcome(lambda: encode(req._build(kind, args, now)))
    assert fast == model


leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    # not JSON: the model refuses them, so must the shortcut
    st.binary(max_size=3),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2),
    st.just(datetime(2025, 3, 1, tzinfo=UTC)),
)
json_like = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    args=st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), json_like, max_size=5),
)
def test_any_args_give_what_the_model_gives(kind: str, args: dict[Any, Any]) -> None:
    req = requester(ManualClock(datetime(2026, 11, 23, 9, 0, 0, 123456, tzinfo=UTC)))
    assert req._shortcut
    compare(req, kind, args)


@pytest.mark.parametrize(
    "now",
    [
        datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=8))),
        datetime(2025, 3, 1, 9, 0, 0, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(seconds=30))),  # refused
        datetime(2025, 3, 1, 9, 0),  # noqa: DTZ001 - naive, on purpose: refused
        "2025-03-01T09:00:00+08:00",  # not a datetime from the clock: the model decides
    ],
)
def test_every_clock_time_gives_what_the_model_gives(now: Any) -> None:
    compare(requester(FixedClock(now)), "ticket.issue", {"category": "ss-submit"})


@pytest.mark.parametrize(
    "args",
    [
        {"x": math.nan},
        {"x": [1, {"y": math.inf}]},
        {1: "int key"},
        [("category", "ss-submit")],  # pairs: dict() takes them, as before
        "not a mapping",
        42,
    ],
)
def test_odd_args_give_what_the_model_gives(args: Any) -> None:
    compare(requester(FixedClock(datetime(2025, 3, 1, tzinfo=UTC))), "ticket.issue", args)


def test_the_shortcut_turns_itself_off_when_it_would_write_other_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = requests_module.encode
    monkeypatch.setattr(requests_module, "encode", lambda model: real(model).replace(b":", b": "))
    req = requester(FixedClock(datetime(2025, 3, 1, tzinfo=UTC)))
    assert not req._shortcut
    assert req._payload("ticket.issue", {"a": 1}) == real(
        req._build("ticket.issue", {"a": 1}, datetime(2025, 3, 1, tzinfo=UTC))
    ).replace(b":", b": ")
