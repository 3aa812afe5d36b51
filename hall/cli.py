"""``hall``: the hall service and its staff/ops command line.

hall [--config FILE]... [--json] serve
hall call --window N [--category C]... next|recall|skip|finish|show
hall queue [--category C]... [--voided]
hall prereview list [--state S] | show ID | accept ID --by STAFF [--note T]
hall prereview return ID --by STAFF --item "TEXT" [--item "TEXT"]...   (一次性告知: all at once)
hall appointments import FILE | list [--day YYYY-MM-DD] | sweep
hall case add CASE_NUMBER --phone PHONE [--recipient-stdin] | import FILE.csv | lookups [--case C]
hall devices | alarms [--all] | alarm ack|resolve ID --by STAFF | evaluations [--day D]
hall telemetry [DEVICE] [--component C] [--last N] [--json]   (latest health, or one's history)
hall command DEVICE ACTION [--component C] [--arg KEY=JSON]... [--wait-s S]
hall keys          (create the hall's keys; print the public ones for provisioning)
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from hall import evaluations
from hall.appointments.http_import import AppointmentImportServer
from hall.appointments.importer import parse_csv, parse_json
from hall.cases import recipient as case_recipient
from hall.command_client import CommandClient
from hall.errors import HallError
from hall.server import HallServer
from hall.service import Hall
from hall.settings import HallSettings, load_hall_settings
from hallkiosk.clock import SystemClock
from hallkiosk.errors import HallkioskError
from uplink.sealing import ensure_seal_key, write_seal_public_key
from uplink.signing import generate_private_key, load_private_key, write_private_key
from uplink.signing import write_public_key as write_sign_public

log = logging.getLogger("hall")


def _print(args: argparse.Namespace, data: Any, text: str | None = None) -> None:
    if args.json or text is None:
        print(json.dumps(data, ensure_ascii=False, indent=None if args.json else 2, default=str))
    else:
        print(text)


def _hall(settings: HallSettings) -> Hall:
    return Hall(settings, SystemClock(settings.site.timezone))


def cmd_serve(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    hall.start()
    server = HallServer(hall) if settings.hall.mqtt.enabled else None
    importer = _start_importer(hall)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if server is not None:
        server.start()
    log.info(
        "hall %s serving (mqtt %s)", settings.site.hall_id, "on" if server else "off: embedded only"
    )
    stop.wait()
    if server is not None:
        server.stop()
    if importer is not None:
        importer.stop()
    hall.close()
    return 0


def _start_importer(hall: Hall) -> Any:
    cfg = hall.settings.hall.appointments.import_
    if not cfg.http_enabled:
        return None
    server = AppointmentImportServer(
        cfg,
        hasher=hall.hasher,
        tz=hall.clock.tz,
        on_import=lambda result: dict(hall.appointments.store_records(result.records)),
    )
    server.start()
    return server


def cmd_call(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        q = hall.queue
        if args.action == "next":
            ticket = q.call_next(args.window, args.category or None)
        elif args.action == "recall":
            ticket = q.recall(args.window)
        elif args.action == "skip":
            ticket = q.skip(args.window)
        elif args.action == "finish":
            ticket = q.finish(args.window)
        else:
            current = q.current(args.window)
            if current is None:
                _print(args, {"window": args.window, "ticket": None}, "no ticket called")
                return 0
            ticket = current
        _print(args, ticket.public(), f"window {args.window}: {ticket.label} ({ticket.state})")
    finally:
        hall.close()
    return 0


def cmd_queue(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        voided = hall.queue.voided(args.category or None)
        if args.voided:
            _print(
                args,
                [
                    {
                        **v.ticket.public(),
                        "reason": v.reason,
                        "voided_by": v.voided_by,
                        "voided_at": v.voided_at.isoformat(),
                    }
                    for v in voided
                ],
                "\n".join(
                    f"VOID {v.ticket.label} {v.reason} by {v.voided_by} at {v.voided_at:%H:%M:%S}"
                    for v in voided
                )
                or "no voided tickets today",
            )
            return 0
        order = hall.queue.waiting(args.category or None)
        text = (
            "\n".join(f"{i + 1:3d}. {t.label} {t.priority}" for i, t in enumerate(order))
            or "nobody waiting"
        )
        if voided:  # never called, listed apart so staff do not look for them
            labels = " ".join(v.ticket.label for v in voided)
            text += f"\nvoided today (never called): {labels}  (hall queue --voided)"
        _print(args, [t.public() for t in order], text)
    finally:
        hall.close()
    return 0


def cmd_prereview(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        desk = hall.prereview
        if args.action == "list":
            subs = desk.list(args.state)
            _print(
                args,
                [s.as_dict() for s in subs],
                "\n".join(
                    f"{s.receipt_no} {s.matter_code} {s.state} {s.name_masked or ''}" for s in subs
                )
                or "no submissions",
            )
        elif args.action == "show":
            sub = desk.get(args.id)
            files = [{**f, **hall.intake.describe(f["upload_id"])} for f in sub.files]
            _print(args, {**sub.as_dict(), "files": files})
        elif args.action == "accept":
            sub = desk.accept(args.id, by=args.by, note=args.note or "")
            _print(args, sub.as_dict(), f"{sub.receipt_no}: accepted")
        else:
            sub = desk.return_(args.id, by=args.by, items=args.item or [], note=args.note or "")
            _print(
                args, sub.as_dict(), f"{sub.receipt_no}: returned ({len(sub.return_items)} items)"
            )
    finally:
        hall.close()
    return 0


def cmd_appointments(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        if args.action == "import":
            data = Path(args.file).read_bytes()
            parse = parse_json if args.file.endswith(".json") else parse_csv
            result = parse(data, hasher=hall.hasher, tz=hall.clock.tz)
            summary = hall.appointments.store_records(result.records)
            errors = [str(e) for e in result.errors]
            _print(
                args,
                {**summary, "errors": errors},
                f"added {summary['added']}, updated {summary['updated']}, kept "
                f"{summary['kept']}; {len(errors)} row error(s)\n" + "\n".join(errors),
            )
            return 1 if errors else 0
        if args.action == "sweep":
            marked = hall.appointments.sweep_no_shows()
            _print(args, {"no_show": marked}, f"{len(marked)} marked no-show")
            return 0
        appts = hall.appointments.today(args.day)
        _print(
            args,
            [a.for_kiosk() for a in appts],
            "\n".join(
                f"{a.booking_code} {a.slot_start:%H:%M} {a.matter_name} {a.name_masked} {a.status}"
                for a in appts
            )
            or "no bookings",
        )
    finally:
        hall.close()
    return 0


def cmd_case(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        if args.action == "import":
            return _case_import(args, hall)
        if args.action == "lookups":
            rows = hall.cases.lookups(case_number=args.case, last=args.last)
            for r in rows:
                r["at"] = datetime.fromisoformat(r["at"]).astimezone(hall.clock.tz).isoformat()
            lines = [
                f"{r['at'][:19]} {r['case_number']} by {r['staff_id']} at {r['device']}: "
                + ("found" if r["found"] else "NOT FOUND")
                for r in rows
            ]
            _print(args, rows, "\n".join(lines) or "no case look-ups")
            return 0
        identity_hash = name_masked = None
        if args.recipient_stdin:
            # never on argv (ps, shell history): the ID number and the name come from stdin
            identity_hash, name_masked = case_recipient(*_read_recipient(), hall.hasher)
        hall.register_case(
            args.case_number,
            phone=args.phone,
            source="cli",
            identity_hash=identity_hash,
            name_masked=name_masked,
        )
        _print(
            args,
            {"case_number": args.case_number, "recipient": name_masked},
            f"case {args.case_number} registered"
            + (f" for {name_masked}" if name_masked is not None else ""),
        )
    finally:
        hall.close()
    return 0


def _case_import(args: argparse.Namespace, hall: Hall) -> int:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"hall case import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    parsed, summary = hall.import_cases(data)
    errors = [str(e) for e in parsed.errors]
    text = (
        f"added {summary['added']}, updated {summary['updated']}, unchanged "
        f"{summary['unchanged']}; {len(errors)} row error(s)"
    )
    if parsed.ignored_columns:
        text += f"\nignored columns: {', '.join(parsed.ignored_columns)}"
    _print(
        args,
        {
            **summary,
            "errors": [e.as_dict() for e in parsed.errors],
            "ignored_columns": parsed.ignored_columns,
        },
        "\n".join([text, *errors]),
    )
    return 1 if errors else 0


def _read_recipient() -> tuple[str, str]:
    """The recipient's ID number and name: typed without echo at a terminal, otherwise the
    first two lines of stdin."""
    if sys.stdin.isatty():
        return getpass.getpass("ID number: "), getpass.getpass("Name: ")
    id_number = sys.stdin.readline().strip()
    name = sys.stdin.readline().strip()
    return id_number, name


def cmd_devices(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        devices = hall.registry.devices()
        _print(
            args,
            devices,
            "\n".join(
                f"{d['device']}/{d['component']}: {d['state']} (session {d['session']}, last seen "
                f"{d['last_seen']}, {d['active_alarms']} alarm(s))"
                for d in devices
            )
            or "no devices",
        )
    finally:
        hall.close()
    return 0


TELEMETRY_LAST_DEFAULT = 10  # snapshots shown for one device; the overview shows the latest


def cmd_telemetry(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        last = args.last or (TELEMETRY_LAST_DEFAULT if args.device else 1)
        entries = hall.registry.telemetry_latest(
            device=args.device, component=args.component, last=last
        )
        now, tz = hall.clock.now(), hall.clock.tz
    finally:
        hall.close()
    if args.device and not any(e["snapshots"] for e in entries):
        what = args.device + (f"/{args.component}" if args.component else "")
        known = "no such device" if not entries else "registered, but no telemetry yet"
        print(f"no telemetry from {what} ({known})", file=sys.stderr)
        if args.json:
            print(json.dumps(_telemetry_json(entries, now, tz), ensure_ascii=False))
        return 1
    data = _telemetry_json(entries, now, tz)
    if args.device or last > 1:
        text = _telemetry_history_text(entries, now, tz)
    else:
        text = _telemetry_overview_text(entries, now)
    _print(args, data, text)
    return 0


def _telemetry_json(
    entries: list[dict[str, Any]], now: datetime, tz: tzinfo
) -> list[dict[str, Any]]:
    """Times in the hall's zone; ``snapshots`` newest first, each with its ``age_s``."""
    return [
        {
            **{k: v for k, v in e.items() if k != "snapshots"},
            "last_seen": _local_iso(e["last_seen"], tz),
            "snapshots": [
                {
                    "ts": _local_iso(s["ts"], tz),
                    "received_at": _local_iso(s["received_at"], tz),
                    "age_s": round(_age_s(s["ts"], now), 1),
                    "metrics": s["metrics"],
                }
                for s in e["snapshots"]
            ],
        }
        for e in entries
    ]


def _telemetry_overview_text(entries: list[dict[str, Any]], now: datetime) -> str:
    if not entries:
        return "no telemetry"
    header = ["DEVICE", "COMPONENT", "PRESENCE", "AGE", "PAPER", "LOCK", "OUTBOX", "ALARMS"]
    rows = []
    for e in entries:
        first = [e["device"], e["component"], e["state"] or "?"]
        if e["snapshots"]:
            cells = _metric_cells(e["snapshots"][0], now)
            rows.append([*first, *cells[:4], str(e["active_alarms"]), cells[4]])
        else:
            rows.append([*first, "-", "-", "-", "-", str(e["active_alarms"]), "no telemetry yet"])
    offline = sum(e["state"] == "offline" for e in entries)
    alarmed = sum(e["active_alarms"] > 0 for e in entries)
    footer = f"{len(entries)} device component(s), {offline} offline, {alarmed} with active alarms"
    return _table([*header, "DETAIL"], rows) + "\n" + footer


def _telemetry_history_text(entries: list[dict[str, Any]], now: datetime, tz: tzinfo) -> str:
    blocks = []
    for e in entries:
        title = (
            f"{e['device']}/{e['component']}: {e['state'] or 'no presence'}, "
            f"last seen {_local_iso(e['last_seen'], tz) or '-'}, "
            f"{e['active_alarms']} active alarm(s)"
        )
        if not e["snapshots"]:
            blocks.append(f"{title}\n  no telemetry yet")
            continue
        rows = []
        for snap in reversed(e["snapshots"]):  # oldest first, like a log
            when = datetime.fromisoformat(snap["ts"]).astimezone(tz)
            rows.append([f"{when:%Y-%m-%d %H:%M:%S}", *_metric_cells(snap, now)])
        header = [f"TIME ({tz})", "AGE", "PAPER", "LOCK", "OUTBOX", "DETAIL"]
        blocks.append(f"{title}\n{_table(header, rows)}")
    return "\n\n".join(blocks)


def _metric_cells(snapshot: Mapping[str, Any], now: datetime) -> list[str]:
    """AGE, PAPER, LOCK, OUTBOX, DETAIL of one snapshot; "-" where the device has no such
    metric (a locker has no printer) or did not measure it (null)."""
    m: Mapping[str, Any] = snapshot["metrics"]
    return [
        _age(_age_s(snapshot["ts"], now)),
        _paper(m),
        _lock(m),
        _outbox(m, now),
        ", ".join(_detail(m)) or "-",
    ]


def _paper(m: Mapping[str, Any]) -> str:
    paper, error = m.get("printer_paper"), m.get("printer_error")
    if error:
        return str(error).removeprefix("printer_").upper()
    if paper is None:
        return "-"
    return "ok" if paper == "ok" else str(paper).upper()


def _lock(m: Mapping[str, Any]) -> str:
    if not any(k in m for k in ("ops_locked", "staff_locked", "out_of_service")):
        return "-"
    parts = []
    if m.get("ops_locked"):
        parts.append("OPS")
    if m.get("staff_locked"):
        by = m.get("staff_locked_by")
        parts.append(f"STAFF:{by}" if by else "STAFF")
    if not parts:
        return "FAULT" if m.get("out_of_service") else "no"
    return "+".join(parts)


def _outbox(m: Mapping[str, Any], now: datetime) -> str:
    events = m.get("outbox_events")
    if not isinstance(events, int):
        return "-"
    text = str(events)
    oldest = m.get("outbox_oldest_ts")
    if events and isinstance(oldest, str):
        with contextlib.suppress(ValueError):  # not an ISO time: leave the age out
            text += f" (oldest {_age(_age_s(oldest, now))})"
    acks = m.get("command_acks_pending")
    if isinstance(acks, int) and acks:
        text += f" +{acks} acks"
    return text


def _detail(m: Mapping[str, Any]) -> list[str]:
    out = []
    if isinstance(m.get("bays_total"), int):
        bays = f"bays {m.get('bays_occupied', '?')}/{m['bays_total']} used"
        for key, label in (("bays_disabled", "disabled"), ("bays_out_of_order", "OUT OF ORDER")):
            if m.get(key):
                bays += f", {m[key]} {label}"
        out.append(bays)
    if m.get("doors_open"):
        out.append(f"doors open {m['doors_open']}")
    replying, boards = m.get("boards_replying"), m.get("boards_total")
    if isinstance(boards, int):
        down = boards - replying if isinstance(replying, int) else 0
        out.append(f"boards {replying}/{boards}" + (f" ({down} DOWN)" if down else ""))
    for key, label in (
        ("id_reader_present", "reader"),
        ("scanner_ok", "scanner"),
        ("camera_ok", "camera"),
        ("lockerd_reachable", "lockerd"),
    ):
        if m.get(key) is False:
            out.append(f"{label} DOWN")
    if isinstance(m.get("cpu_temp_c"), (int, float)):
        out.append(f"cpu {m['cpu_temp_c']:.0f}C")
    if isinstance(m.get("disk_free_bytes"), int):
        out.append(f"disk {m['disk_free_bytes'] / 1e9:.1f}GB free")
    return out


def _age_s(iso: str, now: datetime) -> float:
    """Seconds since ``iso``; never negative (a device clock ahead of the hall's reads 0)."""
    return max(0.0, (now - datetime.fromisoformat(iso)).total_seconds())


def _age(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _local_iso(iso: str | None, tz: tzinfo) -> str | None:
    return datetime.fromisoformat(iso).astimezone(tz).isoformat() if iso else None


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns; the last one is free text and not padded."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip()
        for r in [header, *rows]
    )


def cmd_evaluations(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        day = args.day or hall.queue.service_day()
        with hall.store.lock:
            result = evaluations.summary(hall.store.conn, day)
        levels = " ".join(f"{k}★ {v}" for k, v in result["levels"].items())
        _print(
            args,
            result,
            f"{day}: {result['count']} rating(s); {levels}; bad {result['bad_ratio']:.1%}"
            + "".join(f"\n  {reason}: {n}" for reason, n in result["reasons"].items()),
        )
    finally:
        hall.close()
    return 0


def cmd_alarms(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        alarms = hall.registry.alarms(include_resolved=args.all)
        _print(
            args,
            alarms,
            "\n".join(
                f"#{a['id']} {a['state']:12} {a['device']}/{a['component']} {a['code']} "
                f"{a['subject']} ({a['raised_at']})"
                for a in alarms
            )
            or "no alarms",
        )
    finally:
        hall.close()
    return 0


def cmd_alarm(args: argparse.Namespace, settings: HallSettings) -> int:
    hall = _hall(settings)
    try:
        if args.action == "ack":
            done = hall.registry.acknowledge(args.id, by=args.by)
        else:
            done = hall.registry.resolve(args.id, by=args.by)
        _print(
            args,
            {"id": args.id, "changed": done},
            f"alarm #{args.id} {'updated' if done else 'unchanged'}",
        )
        return 0 if done else 1
    finally:
        hall.close()


def cmd_keys(args: argparse.Namespace, settings: HallSettings) -> int:
    path = settings.signing_key_path
    if not path.exists():
        write_private_key(path, generate_private_key())
    sign_pub = path.with_suffix(".pub")
    write_sign_public(sign_pub, load_private_key(path).public_key())
    seal = ensure_seal_key(settings.seal_key_path)
    seal_pub = settings.seal_key_path.with_suffix(".pub")
    write_seal_public_key(seal_pub, seal)
    _print(
        args,
        {"command_public_key": str(sign_pub), "seal_public_key": str(seal_pub)},
        f"command key (install as [uplink] hall_key_file): {sign_pub}\n"
        f"seal key (install as [uplink] hall_seal_key_file): {seal_pub}",
    )
    return 0


def cmd_command(args: argparse.Namespace, settings: HallSettings) -> int:
    command_args: dict[str, Any] = {}
    for item in args.arg or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise HallError(f"--arg {item!r}: expected KEY=VALUE", code="usage")
        try:
            command_args[key] = json.loads(raw)
        except json.JSONDecodeError:
            command_args[key] = raw
    hall = _hall(settings)
    try:
        with CommandClient(hall) as client:
            result = client.send_and_wait(
                args.device, args.component, args.action, command_args, wait_s=args.wait_s
            )
        _print(
            args,
            result,
            "\n".join(f"{a['status']}: {json.dumps(a, ensure_ascii=False)}" for a in result["acks"])
            or "no acknowledgement",
        )
        return 0 if result["acks"] else 1
    finally:
        hall.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hall", description="hallkiosk hall service")
    p.add_argument("--config", action="append", default=[], help="config layer (repeatable)")
    p.add_argument("--json", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("serve").set_defaults(fn=cmd_serve)
    c = sub.add_parser("call")
    c.add_argument("--window", type=int, required=True)
    c.add_argument("--category", action="append")
    c.add_argument("action", choices=["next", "recall", "skip", "finish", "show"])
    c.set_defaults(fn=cmd_call)
    q = sub.add_parser("queue")
    q.add_argument("--category", action="append")
    q.add_argument("--voided", action="store_true", help="today's voided tickets (never called)")
    q.set_defaults(fn=cmd_queue)
    pr = sub.add_parser("prereview")
    pr.add_argument("action", choices=["list", "show", "accept", "return"])
    pr.add_argument("id", nargs="?")
    pr.add_argument("--state", choices=["pending", "accepted", "returned"])
    pr.add_argument("--by", default="")
    pr.add_argument("--note")
    pr.add_argument("--item", action="append")
    pr.set_defaults(fn=cmd_prereview)
    ap = sub.add_parser("appointments")
    ap.add_argument("action", choices=["import", "list", "sweep"])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--day")
    ap.set_defaults(fn=cmd_appointments)
    cs = sub.add_parser("case", help="cases whose certificates staff load into the lockers")
    case_sub = cs.add_subparsers(dest="action", required=True)
    ca = case_sub.add_parser("add", help="one case by hand")
    ca.add_argument("case_number")
    ca.add_argument("--phone", required=True)
    ca.add_argument(
        "--recipient-stdin",
        action="store_true",
        help="read the recipient's ID number and name (one per line) from stdin; they are "
        "stored only as keyed hash and masked name",
    )
    ci = case_sub.add_parser(
        "import", help="the case system's CSV: case_number, phone, id_number, name"
    )
    ci.add_argument("file")
    cl = case_sub.add_parser("lookups", help="kiosks' case look-ups (audit), newest first")
    cl.add_argument("--case", help="only this case number")
    cl.add_argument("--last", type=_positive, default=50)
    cs.set_defaults(fn=cmd_case)
    sub.add_parser("devices").set_defaults(fn=cmd_devices)
    te = sub.add_parser(
        "telemetry",
        help="latest health of every device, or the recent history of one",
        description="Without DEVICE: the latest snapshot of every device component (age, "
        "paper, lock, outbox backlog, alarms at the hall), one line each. With DEVICE (or "
        "--last above 1): the last N snapshots per component, oldest first. Times are in the "
        "hall's time zone; --json gives every metric, snapshots newest first.",
    )
    te.add_argument("device", nargs="?", help="a device id (e.g. kiosk-01): its history")
    te.add_argument("--component", help="only this component (kiosk, lockerd)")
    te.add_argument(
        "--last",
        type=_positive,
        help=f"snapshots per component (default: 1, or {TELEMETRY_LAST_DEFAULT} for one device)",
    )
    te.add_argument(  # also accepted here, as `hall telemetry --json`
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON"
    )
    te.set_defaults(fn=cmd_telemetry)
    ev = sub.add_parser("evaluations", help="好差评 summary of a service day")
    ev.add_argument("--day", help="YYYY-MM-DD (default: today)")
    ev.set_defaults(fn=cmd_evaluations)
    al = sub.add_parser("alarms")
    al.add_argument("--all", action="store_true")
    al.set_defaults(fn=cmd_alarms)
    a1 = sub.add_parser("alarm")
    a1.add_argument("action", choices=["ack", "resolve"])
    a1.add_argument("id", type=int)
    a1.add_argument("--by", required=True)
    a1.set_defaults(fn=cmd_alarm)
    sub.add_parser("keys").set_defaults(fn=cmd_keys)
    cm = sub.add_parser("command")
    cm.add_argument("device")
    cm.add_argument("action")
    cm.add_argument("--component", default="lockerd")
    cm.add_argument("--arg", action="append")
    cm.add_argument("--wait-s", type=float, default=10.0)
    cm.set_defaults(fn=cmd_command)
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100_000:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 100000: {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.cmd == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.cmd == "prereview" and args.action != "list" and not args.id:
        print("hall prereview: an ID or receipt number is required", file=sys.stderr)
        return 2
    try:
        settings = load_hall_settings(args.config)
        code: int = args.fn(args, settings)
        return code
    except HallkioskError as exc:
        print(
            f"error [{exc.code}]: {exc.detail}\n  {exc.message_zh}\n  {exc.message_en}",
            file=sys.stderr,
        )
        return 2
    except BrokenPipeError:  # e.g. `hall telemetry | head`: the reader had enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the exit flush does not fail again
        return 1


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["main", "time"]
