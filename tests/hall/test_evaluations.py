"""Service evaluations (好差评): stored once per event, summarised per day by `hall evaluations`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from hall.service import Hall
from hallkiosk.clock import ManualClock
from tests.hall.helpers import local, make_hall
from uplink.messages import Event


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(local(2026, 11, 23, 10, 0))


@pytest.fixture
def hall(tmp_path: Path, clock: ManualClock) -> Hall:
    made = make_hall(tmp_path, clock)
    yield made
    made.close()


def rating(seq: int, data: dict[str, object]) -> Event:
    return Event(
        v=1,
        id=uuid.uuid4().hex,
        seq=seq,
        ts=local(2026, 11, 23, 9, seq),
        type="evaluation",
        device="kiosk-01",
        component="kiosk",
        data=data,
    )


def test_ratings_are_counted_once_and_summarised_by_the_cli(
    tmp_path: Path, clock: ManualClock
) -> None:
    hall = make_hall(tmp_path, clock)
    events = [
        rating(1, {"service": "ticket", "reference": "t1", "level": 5, "reasons": []}),
        rating(2, {"service": "pickup", "reference": "d1", "level": 2, "reasons": ["slow"]}),
        rating(3, {"service": "ticket", "reference": "t2", "level": 1, "reasons": ["slow", "bad"]}),
    ]
    for event in events:
        assert hall.registry.ingest(event)
    assert not hall.registry.ingest(events[1])  # redelivered: not counted again
    hall.close()
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "hall",
            "--config",
            str(tmp_path / "site.toml"),
            "--json",
            "evaluations",
            "--day",
            "2026-11-23",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    summary = json.loads(shown.stdout)
    assert summary["count"] == 3
    assert summary["levels"] == {"1": 1, "2": 1, "3": 0, "4": 0, "5": 1}
    assert summary["reasons"] == {"slow": 2, "bad": 1}
    assert summary["by_service"] == {"ticket": 2, "pickup": 1}
    assert summary["bad_ratio"] == pytest.approx(0.667)


@pytest.mark.parametrize(
    "data",
    [
        {"service": "ticket", "level": 6},
        {"service": "ticket", "level": True},
        {"service": "karaoke", "level": 3},
        {"service": "ticket", "level": 3, "reasons": "slow"},
        {"service": "ticket", "level": 3, "reasons": ["x" * 65]},
    ],
)
def test_a_malformed_rating_is_not_counted_and_raises_an_alarm(
    hall: Hall, data: dict[str, object]
) -> None:
    event = rating(1, data)
    assert hall.registry.ingest(event)
    assert hall.store.all("SELECT * FROM evaluations") == []
    alarms = hall.store.all("SELECT code, subject FROM alarms WHERE state = 'active'")
    assert [(a["code"], a["subject"]) for a in alarms] == [("evaluation_rejected", event.id)]
