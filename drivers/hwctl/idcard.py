"""``hwctl idcard``: read one card, or show the reader's state, without the kiosk running.

    hwctl [--json] idcard --reader ga467 --url /dev/ttyUSB0 [--timeout S] read
    hwctl [--json] idcard --reader pcsc [--url "ACR1281"] [--timeout S] read | status

For ``ga467`` the URL is the serial port (any pyserial URL); for ``pcsc`` it is an optional part
of the PC/SC reader name (default: any reader pcscd lists). Only masked fields are printed (the
ID number as 3301**********1234, the name as 张*三); the keyed hash is made with a throw-away key
and never printed. Exit 0 with a card read, 2 when nothing could be read (no card within the
timeout, reader offline, card not valid): the error's code and plain message say which.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pydantic import ValidationError

from drivers.identity import IdentityReader, IdentityReaderSettings, open_reader
from hallkiosk.privacy import IDENTITY_KEY_BYTES, IdentityHasher


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "idcard", help="identity card reader: read a card, reader status"
    )
    parser.add_argument("--reader", choices=("ga467", "pcsc"), required=True)
    parser.add_argument(
        "--url", default=None, help="ga467: serial port or pyserial URL; pcsc: part of the name"
    )
    parser.add_argument("--baud", type=int, default=None, help="ga467 only (default 115200)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for a card")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("read", help="wait for a card and print its masked identity")
    actions.add_parser("status", help="is the reader there, is a card in the field")
    parser.set_defaults(handler=_run)


def settings_for(reader: str, url: str | None, baud: int | None) -> IdentityReaderSettings:
    if reader == "ga467":
        if not url:
            raise SystemExit("hwctl idcard: --reader ga467 needs --url (the serial port)")
        table: dict[str, Any] = {"url": url}
        if baud is not None:
            table["baud"] = baud
        return IdentityReaderSettings.model_validate({"reader": "ga467", "ga467": table})
    return IdentityReaderSettings.model_validate(
        {"reader": "pcsc", "pcsc": {"reader_name": url or ""}}
    )


def _run(args: argparse.Namespace, out: Any) -> int:
    if args.timeout < 0:
        raise SystemExit("hwctl idcard: --timeout must not be negative")
    try:
        settings = settings_for(args.reader, args.url, args.baud)
    except ValidationError as exc:
        raise SystemExit(f"hwctl idcard: bad --url/--baud: {exc}") from None
    # a throw-away key: hwctl shows masked forms only, so no hash it makes is ever usable
    hasher = IdentityHasher(os.urandom(IDENTITY_KEY_BYTES))
    with open_reader(settings, hasher) as reader:
        if args.action == "status":
            return _status(reader, args, out)
        identity = reader.read(args.timeout)
    data: dict[str, Any] = {"ok": True, "reader": args.reader, **identity.describe()}
    shown = [f"{key}={value}" for key, value in identity.describe().items() if value is not None]
    out.result(data, "card: " + " ".join(shown))
    return 0


def _status(reader: IdentityReader, args: argparse.Namespace, out: Any) -> int:
    status = reader.status()
    data = {
        "ok": status.online,
        "reader": args.reader,
        "online": status.online,
        "detail": status.detail,
        "readers": list(status.readers),
        "card_present": status.card_present,
    }
    state = "online" if status.online else "OFFLINE"
    card = "card in the field" if status.card_present else "no card"
    names = ", ".join(status.readers) or "-"
    out.result(data, f"reader {state} ({status.detail}); readers: {names}; {card}")
    return 0 if status.online else 2
