"""Service evaluations (好差评) from kiosks: stored per event, summarised per service day.

A kiosk sends one ``evaluation`` event per rating (docs/kiosk.md). The registry has already
deduplicated the event, so each rating is counted once however often it is redelivered.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Any

from hallkiosk.clock import Clock, utc_iso
from uplink.messages import Event

SERVICES = ("ticket", "checkin", "pickup", "prereview", "status", "other")
MAX_REASONS = 8
MAX_TEXT = 64


class EvaluationInvalid(ValueError):
    pass


def check(data: dict[str, Any]) -> tuple[str, str, int, list[str]]:
    service, reference, level = data.get("service"), data.get("reference", ""), data.get("level")
    reasons = data.get("reasons", [])
    if service not in SERVICES:
        raise EvaluationInvalid(f"service: one of {', '.join(SERVICES)}")
    if not isinstance(reference, str) or len(reference) > MAX_TEXT:
        raise EvaluationInvalid(f"reference: text of at most {MAX_TEXT} characters")
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5:
        raise EvaluationInvalid("level: 1 (very dissatisfied) to 5 (very satisfied)")
    if (
        not isinstance(reasons, list)
        or len(reasons) > MAX_REASONS
        or not all(isinstance(r, str) and 0 < len(r) <= MAX_TEXT for r in reasons)
    ):
        raise EvaluationInvalid(f"reasons: at most {MAX_REASONS} short texts")
    return service, reference, level, reasons


def record(conn: sqlite3.Connection, event: Event, clock: Clock) -> None:
    service, reference, level, reasons = check(event.data)
    day = event.ts.astimezone(clock.tz).date().isoformat()
    conn.execute(
        "INSERT OR IGNORE INTO evaluations (device, event_id, service_day, service, reference,"
        " level, reasons, rated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            event.device,
            event.id,
            day,
            service,
            reference,
            level,
            json.dumps(reasons, ensure_ascii=False),
            utc_iso(event.ts),
        ),
    )


def summary(conn: sqlite3.Connection, day: str) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT service, level, reasons FROM evaluations WHERE service_day = ?", (day,)
    ).fetchall()
    levels = Counter(int(r["level"]) for r in rows)
    reasons = Counter(reason for r in rows for reason in json.loads(r["reasons"]))
    return {
        "service_day": day,
        "count": len(rows),
        "levels": {str(level): levels.get(level, 0) for level in range(1, 6)},
        "by_service": dict(Counter(r["service"] for r in rows)),
        "reasons": dict(reasons.most_common()),
        # 差评率: levels 1 and 2 count as bad, as in the national 好差评 statistics
        "bad_ratio": round((levels[1] + levels[2]) / len(rows), 3) if rows else 0.0,
    }
