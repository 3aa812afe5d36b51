"""``python -m drivers.lockboard.sim``: a simulated lock-board bus on a pty.

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

from drivers.lockboard.sim.model import SimBus
from drivers.lockboard.sim.runner import SimRunner


def _board_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, not {text!r}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drivers.lockboard.sim", description=__doc__)
    parser.add_argument("--protocol", choices=("8a80", "kerong"), required=True)
    parser.add_argument("--boards", type=_board_list, default=None, help="e.g. 1,2")
    parser.add_argument("--channels", type=int, default=16, help="channels per board")
    parser.add_argument("--feedback-open", choices=("set", "clear"), default="set")
    parser.add_argument("--no-reply", action="store_true", help="stay silent on unlock")
    parser.add_argument("--status-bytes", type=int, default=3, help="8A/80 query-all bitmap bytes")
    parser.add_argument("--control", default=None, help="control socket path (default: temp dir)")
    parser.add_argument("--no-auto-person", action="store_true", help="nobody opens doors")
    parser.add_argument("--verbose", action="store_true", help="log every frame to stderr")
    parser.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the parent process dies"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    parent_pid = os.getppid() if args.exit_with_parent else None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="lockboard-sim %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    boards = args.boards if args.boards is not None else ([1] if args.protocol == "8a80" else [0])
    try:
        sim = SimBus(
            args.protocol,
            boards,
            args.channels,
            feedback_open=args.feedback_open,
            expect_reply=not args.no_reply,
            status_bytes=args.status_bytes,
            auto_person=not args.no_auto_person,
        )
    except ValueError as exc:
        print(f"lockboard-sim: {exc}", file=sys.stderr)
        return 2

    temp_dir: str | None = None
    control_path: str = args.control
    if not control_path:
        temp_dir = tempfile.mkdtemp(prefix="lockboard-sim-")
        control_path = os.path.join(temp_dir, "control.sock")
    try:
        with SimRunner(sim, control_path) as runner:

            def _stop(_signum: int, _frame: FrameType | None) -> None:
                runner.request_stop()

            # handlers first: once the parent has read our lines, SIGTERM must be clean
            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            sys.stdout.write(f"{runner.slave_path}\ncontrol {control_path}\n")
            sys.stdout.flush()
            logging.info(
                "%s boards %s x %d channels on %s",
                args.protocol,
                boards,
                args.channels,
                runner.slave_path,
            )
            runner.serve(parent_pid=parent_pid)
            logging.info("stopping")
    except OSError as exc:
        print(f"lockboard-sim: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp_dir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(temp_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
