"""``python -m drivers.printer.sim``: a simulated ESC/POS ticket printer on a pty.

stdout, line 1: the pty path alone; line 2: ``control <socket path>``. Then it serves until
SIGTERM or SIGINT and exits 0, removing the socket. Log lines go to stderr.
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

from drivers.printer.sim.model import PAPER_STATES, SimPrinter
from drivers.printer.sim.runner import SimRunner


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drivers.printer.sim", description=__doc__)
    parser.add_argument("--paper", choices=PAPER_STATES, default="ok")
    parser.add_argument(
        "--no-native-qr", action="store_true", help="a cheap model: GS ( k prints as garbage"
    )
    parser.add_argument(
        "--no-near-end-sensor", action="store_true", help="only the paper-end sensor"
    )
    parser.add_argument(
        "--chinese-default",
        choices=("on", "off"),
        default="on",
        help="Chinese mode after power-on and ESC @",
    )
    parser.add_argument("--control", default=None, help="control socket path (default: temp dir)")
    parser.add_argument("--verbose", action="store_true", help="log traffic to stderr")
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the parent process dies"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parent_pid = os.getppid() if args.exit_with_parent else None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="printer-sim %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    sim = SimPrinter(
        native_qr=not args.no_native_qr,
        near_end_sensor=not args.no_near_end_sensor,
        chinese_default=args.chinese_default == "on",
        paper=args.paper,
    )
    temp_dir: str | None = None
    control_path: str = args.control
    if not control_path:
        temp_dir = tempfile.mkdtemp(prefix="printer-sim-")
        control_path = os.path.join(temp_dir, "control.sock")
    try:
        with SimRunner(sim, control_path) as runner:

            def _stop(_signum: int, _frame: FrameType | None) -> None:
                runner.request_stop()

            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            sys.stdout.write(f"{runner.slave_path}\ncontrol {control_path}\n")
            sys.stdout.flush()
            logging.info("printer on %s, paper %s", runner.slave_path, args.paper)
            runner.serve(parent_pid=parent_pid)
            logging.info("stopping")
    except OSError as exc:
        print(f"printer-sim: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(temp_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
