"""``python -m drivers.identity.vcard --card idcard|citizen|staff``: virtual cards for vpcd.

Connects to vpcd (``--host``/``--port``, default 127.0.0.1:35963, the first "Virtual PCD"
reader) and answers for the chosen card; ``--absent`` starts with no card in the field. stdout
line 1: ``control <socket path>``; the control socket takes JSON lines (``VcardControl``):
insert [card], remove, hang, unblock, status, log. SIGTERM or SIGINT ends it (exit 0).
Synthetic data only: see ``drivers.identity.vcard.cards``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from types import FrameType

from drivers.identity.vcard.cards import (
    CARD_KINDS,
    STAFF_PIN_TRIES,
    SYNTHETIC_CHIP_SERIAL,
    SYNTHETIC_ID_NUMBER,
    SYNTHETIC_NAME,
    SYNTHETIC_STAFF_ID,
    SYNTHETIC_STAFF_NAME,
    SYNTHETIC_STAFF_PIN,
    CardKind,
    CitizenCard,
    IdCardChip,
    StaffCard,
    VirtualCard,
)
from drivers.identity.vcard.runner import DEFAULT_VPCD_PORT, VcardRunner


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drivers.identity.vcard", description=__doc__)
    parser.add_argument("--card", choices=CARD_KINDS, required=True, help="card in the field")
    parser.add_argument("--host", default="127.0.0.1", help="where vpcd listens")
    parser.add_argument("--port", type=int, default=DEFAULT_VPCD_PORT, help="vpcd port")
    parser.add_argument("--absent", action="store_true", help="start with no card in the field")
    parser.add_argument("--serial", default=SYNTHETIC_CHIP_SERIAL, help="ID card chip serial hex")
    parser.add_argument("--id-number", default=SYNTHETIC_ID_NUMBER, help="citizen card (synthetic)")
    parser.add_argument("--name", default=SYNTHETIC_NAME, help="citizen card holder (synthetic)")
    parser.add_argument("--staff-id", default=SYNTHETIC_STAFF_ID)
    parser.add_argument("--staff-name", default=SYNTHETIC_STAFF_NAME)
    parser.add_argument("--pin", default=SYNTHETIC_STAFF_PIN, help="staff card PIN")
    parser.add_argument("--pin-tries", type=int, default=STAFF_PIN_TRIES)
    parser.add_argument("--control", default=None, help="control socket path (default: temp dir)")
    parser.add_argument("--verbose", action="store_true", help="log every APDU to stderr")
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the parent process dies"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parent_pid = os.getppid() if args.exit_with_parent else None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="vcard %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        cards: dict[CardKind, VirtualCard] = {
            "idcard": IdCardChip(args.serial),
            "citizen": CitizenCard(id_number=args.id_number, name=args.name),
            "staff": StaffCard(
                staff_id=args.staff_id,
                name=args.staff_name,
                pin=args.pin,
                pin_tries=args.pin_tries,
            ),
        }
    except ValueError as exc:
        print(f"vcard: {exc}", file=sys.stderr)
        return 2

    temp_dir: str | None = None
    control_path: str = args.control
    if not control_path:
        temp_dir = tempfile.mkdtemp(prefix="vcard-")
        control_path = os.path.join(temp_dir, "control.sock")
    try:
        with VcardRunner(
            cards,
            args.card,
            control_path,
            host=args.host,
            port=args.port,
            inserted=not args.absent,
        ) as runner:

            def _stop(_signum: int, _frame: FrameType | None) -> None:
                runner.request_stop()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            sys.stdout.write(f"control {control_path}\n")
            sys.stdout.flush()
            logging.info("%s card for vpcd at %s:%d", args.card, args.host, args.port)
            runner.serve(parent_pid=parent_pid)
            logging.info("stopping")
    except OSError as exc:
        print(f"vcard: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(temp_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
