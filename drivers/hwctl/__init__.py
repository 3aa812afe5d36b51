"""``hwctl``: field diagnostics, one sub-command per device kind, without the kiosk app running.

    hwctl [--json] idcard --reader {ga467,pcsc} [--url URL] read
    hwctl [--json] printer [--url URL] status | test-ticket
    hwctl [--json] scanner listen
    hwctl [--json] camera snap FILE
    hwctl [--json] gpio watch
    hwctl [--json] say TEXT

Each kind lives in its own module here with a ``register(subparsers)`` function that adds its
parser and sets ``handler`` (``(args, out) -> int``). Reading a card prints masked fields only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from drivers.hwctl.output import Output
from hallkiosk.errors import HallkioskError

# Module names under drivers.hwctl, in the order the help lists them.
KINDS = ("idcard", "printer", "scanner", "camera", "gpio", "say")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwctl", description="hallkiosk field diagnostics")
    parser.add_argument("--json", action="store_true", help="one JSON object per result line")
    subparsers = parser.add_subparsers(dest="kind", required=True)
    for kind in KINDS:
        module = importlib.import_module(f"drivers.hwctl.{kind}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Output(json_mode=args.json)
    try:
        code: int = args.handler(args, out)
    except HallkioskError as exc:
        out.error(exc)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
