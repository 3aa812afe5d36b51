"""``lockerctl``: the command line on lockerd's API, plus a direct field diagnostic for buses.

    lockerctl [--config FILE | --socket PATH] [--json] status
    lockerctl deposit start --staff S --case C --size S (--identity-hash H | --id-stdin) --name N
    lockerctl deposit confirm|cancel|reissue --staff S DEPOSIT
    lockerctl deposits (--identity-hash H | --id-stdin)
    lockerctl pickup (--identity-hash H | --id-stdin) [--deposit N] [--password P]
    lockerctl overdue | retrieve --staff S DEPOSIT | recall --staff S DEPOSIT [--reason R]
    lockerctl maintenance-open --staff S BAY --reason R
    lockerctl bay enable|disable --staff S BAY [--reason R]
    lockerctl audit [--after N] [--limit N] | events
    lockerctl board --url URL --protocol {8a80,kerong} [--baud N] --board B (open CH | status)

``board`` talks to the bus directly, without the daemon (stop lockerd first: one owner per bus).
A raw ID number is read from stdin (``--id-stdin``), never from the command line, and only its
keyed hash leaves this process.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from typing import Any

from drivers.lockboard.bus import LockBus
from drivers.lockboard.errors import LockboardError
from drivers.lockboard.settings import BusSettings, FeedbackPolarity
from hallkiosk.config import ConfigError
from hallkiosk.errors import HallkioskError
from hallkiosk.privacy import IdentityHasher, PrivacyError, mask_id_number, mask_name
from locker.client import LockerClient
from locker.config import LockerdSettings, load_settings


def _settings(args: argparse.Namespace) -> LockerdSettings:
    return load_settings(args.config or [])


def _client(args: argparse.Namespace) -> LockerClient:
    path = args.socket or str(_settings(args).socket_path)
    return LockerClient(path, timeout_s=args.timeout_s)


def _identity(args: argparse.Namespace) -> dict[str, str]:
    if args.identity_hash:
        return {"identity_hash": args.identity_hash, "masked_id": ""}
    if not args.id_stdin:
        raise PrivacyError("give --identity-hash or --id-stdin")
    id_number = sys.stdin.readline().strip()
    hasher = IdentityHasher.from_file(_settings(args).identity_key_path)
    return {
        "identity_hash": hasher.hash_id_number(id_number),
        "masked_id": mask_id_number(id_number),
    }


def _emit(args: argparse.Namespace, result: Any, text: str) -> None:
    print(
        json.dumps(result, ensure_ascii=False, indent=None if args.json else 2)
        if args.json
        else text
    )


def _cmd_status(args: argparse.Namespace) -> None:
    result = _client(args).call("status")
    lines = [f"{result['device_id']}  {result['now']}"]
    for bay in result["bays"]:
        flags = [] if bay["enabled"] else [f"disabled: {bay['disabled_reason']}"]
        if bay.get("out_of_order"):
            flags.append(f"OUT OF ORDER: {bay['out_of_order']} (maintenance-open to clear)")
        if bay["occupied"]:
            flags.append(f"deposit {bay['deposit_id']} ({bay['deposit_state']})")
        lines.append(
            f"  {bay['bay_id']:<6} {bay['size']}  door={bay['door']:<7} "
            f"{bay['bus']}/{bay['board']}/{bay['channel']}  {'; '.join(flags)}"
        )
    for alarm in result["alarms"]:
        lines.append(f"  ALARM {alarm['alarm']} on {alarm['subject']} since {alarm['raised_at']}")
    _emit(args, result, "\n".join(lines))


def _cmd_deposit(args: argparse.Namespace) -> None:
    client = _client(args)
    if args.action == "start":
        ident = _identity(args)
        result = client.call(
            "deposit.start",
            staff_id=args.staff,
            case_number=args.case,
            size=args.size,
            request_id=args.request_id,
            recipient={
                "identity_hash": ident["identity_hash"],
                "masked_name": mask_name(args.name),
                "masked_id": ident["masked_id"],
            },
        )
        _emit(
            args,
            result,
            f"deposit {result['deposit_id']}: bay {result['bay_id']} "
            f"({result['size']}) is open - put the item in and close the door",
        )
        return
    method = {
        "confirm": "deposit.confirm",
        "cancel": "deposit.cancel",
        "reissue": "deposit.reissue_password",
    }[args.action]
    result = client.call(method, staff_id=args.staff, deposit_id=args.deposit)
    if "password" in result:
        text = f"deposit {result['deposit_id']}: pickup password {result['password']}"
        if "deadline" in result:
            text += f", pick up by {result['deadline']}"
    else:
        text = f"deposit {result['deposit_id']}: {result['state']}"
    _emit(args, result, text)


def _cmd_deposits(args: argparse.Namespace) -> None:
    result = _client(args).call(
        "deposits.for_identity", identity_hash=_identity(args)["identity_hash"]
    )
    _emit(args, result, _deposit_lines(result["deposits"]) or "no items waiting")


def _deposit_lines(deposits: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"  deposit {d['deposit_id']}  bay {d['bay_id']}  case {d['case_number']}  "
        f"{d['recipient']}  deadline {d['deadline']}{'  OVERDUE' if d['overdue'] else ''}"
        for d in deposits
    )


def _cmd_pickup(args: argparse.Namespace) -> None:
    ident = _identity(args)
    password = args.password or getpass.getpass("pickup password: ")
    result = _client(args).call(
        "pickup",
        identity_hash=ident["identity_hash"],
        password=password,
        deposit_id=args.deposit,
        request_id=args.request_id,
    )
    _emit(args, result, f"bay {result['bay_id']} is open (deposit {result['deposit_id']})")


def _cmd_overdue(args: argparse.Namespace) -> None:
    result = _client(args).call("overdue.list")
    _emit(args, result, _deposit_lines(result["deposits"]) or "nothing overdue")


def _cmd_staff_open(args: argparse.Namespace) -> None:
    client = _client(args)
    if args.command == "retrieve":
        result = client.call("retrieve", staff_id=args.staff, deposit_id=args.deposit)
    elif args.command == "recall":
        result = client.call(
            "recall", staff_id=args.staff, deposit_id=args.deposit, reason=args.reason
        )
    else:
        result = client.call(
            "maintenance.open", staff_id=args.staff, bay_id=args.bay, reason=args.reason
        )
    _emit(args, result, f"bay {result['bay_id']} is open")


def _cmd_bay(args: argparse.Namespace) -> None:
    result = _client(args).call(
        "bay.set_enabled",
        staff_id=args.staff,
        bay_id=args.bay,
        enabled=args.action == "enable",
        reason=args.reason,
    )
    _emit(args, result, f"bay {result['bay_id']} {'enabled' if result['enabled'] else 'disabled'}")


def _cmd_audit(args: argparse.Namespace) -> None:
    result = _client(args).call("audit.tail", after_seq=args.after, limit=args.limit)
    _emit(
        args,
        result,
        "\n".join(
            f"{e['seq']:>6} {e['at']} {e['kind']:<18} bay={e['bay_id'] or '-'} "
            f"deposit={e['deposit_id'] or '-'} {json.dumps(e['detail'], ensure_ascii=False)}"
            for e in result["entries"]
        ),
    )


def _cmd_events(args: argparse.Namespace) -> None:
    for event in _client(args).events():
        print(json.dumps(event, ensure_ascii=False), flush=True)


def _cmd_board(args: argparse.Namespace) -> None:
    settings = BusSettings(
        name="diag",
        protocol=args.protocol,
        url=args.url,
        baud=args.baud or (9600 if args.protocol == "8a80" else 19200),
        feedback_open=FeedbackPolarity(args.feedback_open),
        expect_reply=not args.no_reply,
        reply_timeout_ms=args.timeout_ms,
        retries=args.retries,
    )
    with LockBus(settings) as bus:
        if args.action == "open":
            reply = bus.open(args.board, args.channel)
            result: dict[str, Any] = {
                "board": reply.board,
                "channel": reply.channel,
                "acknowledged": reply.acknowledged,
                "latch_open": reply.latch_open,
                "confirmed_by_status": reply.confirmed_by_status,
            }
            if not reply.acknowledged:
                text = f"board {args.board} channel {args.channel}: open sent (no reply expected)"
            else:
                state = {True: "open", False: "STILL CLOSED (jammed?)", None: "no state"}
                text = (
                    f"board {args.board} channel {args.channel}: acknowledged, "
                    f"lock {state[reply.latch_open]}"
                )
        else:
            status = bus.read_doors(args.board)
            result = {
                "board": status.board,
                "doors": {
                    str(ch): "open" if o else "closed" for ch, o in sorted(status.doors.items())
                },
                "items": {str(ch): p for ch, p in sorted(status.items.items())},
            }
            text = f"board {args.board}: " + " ".join(
                f"{ch}:{'OPEN' if o else 'closed'}" for ch, o in sorted(status.doors.items())
            )
    _emit(args, result, text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lockerctl", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config",
        action="append",
        metavar="FILE",
        help="lockerd's config layers (to find the socket and identity key)",
    )
    parser.add_argument("--socket", help="lockerd's socket path (overrides --config)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--timeout-s", type=float, default=30.0)
    sub = parser.add_subparsers(dest="command", required=True)

    def identity_args(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group(required=True)
        group.add_argument("--identity-hash", help="the keyed hash of the ID number")
        group.add_argument(
            "--id-stdin", action="store_true", help="read the ID number from stdin and hash it here"
        )

    sub.add_parser("status", help="bays, doors, deposits and alarms").set_defaults(func=_cmd_status)

    dep = sub.add_parser("deposit", help="staff: load a certificate")
    dep_sub = dep.add_subparsers(dest="action", required=True)
    start = dep_sub.add_parser("start")
    start.add_argument("--staff", required=True)
    start.add_argument("--case", required=True, help="case number scanned from the envelope")
    start.add_argument("--size", required=True, choices=["S", "M", "L"])
    start.add_argument(
        "--name", required=True, help="recipient's name (only a masked form is sent)"
    )
    start.add_argument("--request-id")
    identity_args(start)
    for action in ("confirm", "cancel", "reissue"):
        p = dep_sub.add_parser(action)
        p.add_argument("--staff", required=True)
        p.add_argument("deposit", type=int)
    dep.set_defaults(func=_cmd_deposit)

    deposits = sub.add_parser("deposits", help="items waiting for one identity")
    identity_args(deposits)
    deposits.set_defaults(func=_cmd_deposits)

    pickup = sub.add_parser("pickup", help="identity + password: open the bay")
    identity_args(pickup)
    pickup.add_argument("--deposit", type=int)
    pickup.add_argument("--password", help="prompted for when omitted")
    pickup.add_argument("--request-id")
    pickup.set_defaults(func=_cmd_pickup)

    sub.add_parser("overdue", help="stored items past their deadline").set_defaults(
        func=_cmd_overdue
    )
    for name in ("retrieve", "recall"):
        p = sub.add_parser(name, help=f"staff: {name} a deposit")
        p.add_argument("--staff", required=True)
        p.add_argument("deposit", type=int)
        if name == "recall":
            p.add_argument("--reason", default="")
        p.set_defaults(func=_cmd_staff_open)
    maint = sub.add_parser("maintenance-open", help="staff: open a bay for maintenance")
    maint.add_argument("--staff", required=True)
    maint.add_argument("bay")
    maint.add_argument("--reason", required=True)
    maint.set_defaults(func=_cmd_staff_open)

    bay = sub.add_parser("bay", help="staff: enable or disable a bay")
    bay.add_argument("action", choices=["enable", "disable"])
    bay.add_argument("--staff", required=True)
    bay.add_argument("bay")
    bay.add_argument("--reason", default="")
    bay.set_defaults(func=_cmd_bay)

    audit = sub.add_parser("audit", help="the audit log")
    audit.add_argument("--after", type=int, default=0)
    audit.add_argument("--limit", type=int, default=200)
    audit.set_defaults(func=_cmd_audit)
    sub.add_parser("events", help="stream events").set_defaults(func=_cmd_events)

    board = sub.add_parser("board", help="field diagnostic: talk to a bus without lockerd")
    board.add_argument("--url", required=True, help="serial device, pty, or pyserial URL")
    board.add_argument("--protocol", required=True, choices=["8a80", "kerong"])
    board.add_argument("--baud", type=int)
    board.add_argument("--board", type=int, required=True)
    board.add_argument("--feedback-open", choices=["set", "clear"], default="set")
    board.add_argument("--no-reply", action="store_true", help="the board sends no open reply")
    board.add_argument("--timeout-ms", type=int, default=500)
    board.add_argument("--retries", type=int, default=1)
    board_sub = board.add_subparsers(dest="action", required=True)
    board_open = board_sub.add_parser("open")
    board_open.add_argument("channel", type=int)
    board_sub.add_parser("status")
    board.set_defaults(func=_cmd_board)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 2
    except (HallkioskError, LockboardError) as exc:
        if args.json:
            print(
                json.dumps(
                    {
                        "ok": False,
                        "code": exc.code,
                        "message_zh": exc.message_zh,
                        "message_en": exc.message_en,
                        "detail": exc.detail,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            print(
                f"{exc.message_zh}\n{exc.message_en}\n({exc.code}: {exc.detail})", file=sys.stderr
            )
        return 1
    except ValueError as exc:  # e.g. a bus setting out of range
        print(f"invalid argument: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
