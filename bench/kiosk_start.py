"""Kiosk UI: cold start to the first frame and memory after a journey, against a bare Kivy app.

Both sides run as fresh processes on one private Xvfb (``python -m kiosk.ui.bench_target``),
interleaved run by run, after one warm-up run of each (the font face extraction and bytecode
compilation happen once per install, not per start):

- **floor**: a bare Kivy App showing one Label in a window of the kiosk's size.
- **ours** (``--kiosk app``, the default): the assembled kiosk of kiosk/app.py on a fresh data
  directory (embedded hall, simulated devices, every journey's screen), then ``--rounds`` walks:
  a ticket printed and rated, English, 大字版, check-in, pre-review and case status opened and
  left. ``--kiosk kiosk`` runs the UI shell with the demo router instead, whose walk also times
  screen changes.

Cold start is process start (just before ``Popen``) to the child's ``FIRST_FRAME`` line, printed
from the first ``on_flip`` showing the home page. The app draws its home page first and
assembles the journeys, drivers and hall on the next frame (kiosk/app.py "Start-up"); a tile
touched meanwhile is started once they are up. ``READY`` marks that point (systemd's READY=1):
``ready_ratio`` = median ready / median bare start is printed too, so nothing is hidden. Both
sides run with their bytecode cached (``PYTHONPYCACHEPREFIX`` in the temporary folder, written
by the warm-up run) and python-escpos' capabilities pickled there, and the font faces prepared
(``python -m kiosk.ui.font_cache``, run first), as on an installed kiosk.

RSS is VmRSS from ``/proc/<pid>/status``, read by the child itself at the end (after its walk, or
after ``BARE_FRAMES`` frames for the floor), after a ``gc.collect()``. ``start_ratio`` = median
ours / median bare start, ``rss_ratio`` = median ours / median bare RSS (goal: both <= 1.5). A
screen change is timed in the kiosk process from ``shell.show`` to the first frame drawn with the
new screen rendered.

Progress and the table go to stderr; stdout ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.fixtures.processes import ManagedProcess  # noqa: E402
from tests.fixtures.xvfb import start_xvfb  # noqa: E402

RUN_TIMEOUT_S = 180.0
GOAL_RATIO = 1.5


def run_child(args: Sequence[str], display: str, kivy_home: Path) -> dict[str, Any]:
    """One child process: its start-to-first-frame time, RSS and screen-change times."""
    started = time.perf_counter()
    child = ManagedProcess(
        [sys.executable, "-m", "kiosk.ui.bench_target", *args, "--kivy-home", str(kivy_home)],
        # bytecode cached under the run's temporary folder, as an installed kiosk has it
        # (kiosk.service: PYTHONPYCACHEPREFIX); PYTHONDONTWRITEBYTECODE (the Makefile's) would
        # make the side with more modules recompile them on every start
        env={
            "DISPLAY": display,
            "PYTHONPYCACHEPREFIX": str(kivy_home / "pycache"),
            "PYTHONDONTWRITEBYTECODE": "",
            "ESCPOS_CAPABILITIES_PICKLE_DIR": str(kivy_home),
        },
        cwd=REPO_ROOT,
    )
    try:
        first = child.read_line(timeout_s=RUN_TIMEOUT_S)
        start_ms = (time.perf_counter() - started) * 1000
        if first != "FIRST_FRAME":
            raise RuntimeError(f"unexpected first line {first!r}\n{child.describe()}")
        transitions_ms: list[float] = []
        ready_ms: float | None = None
        while True:
            word, _, value = child.read_line(timeout_s=RUN_TIMEOUT_S).partition(" ")
            if word == "READY":
                ready_ms = (time.perf_counter() - started) * 1000
            elif word == "TRANSITION_MS":
                transitions_ms.append(float(value))
            elif word == "RSS_KB":
                rss_kb = int(value)
                break
        if child.wait(timeout_s=RUN_TIMEOUT_S) != 0:
            raise RuntimeError(f"child failed\n{child.describe()}")
    finally:
        if child.is_running():
            child.terminate()
    return {
        "start_ms": start_ms,
        "ready_ms": ready_ms if ready_ms is not None else start_ms,
        "rss_kb": rss_kb,
        "transitions_ms": transitions_ms,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side")
    parser.add_argument("--rounds", type=int, default=3, help="journey walks per kiosk run")
    parser.add_argument(
        "--kiosk",
        choices=["app", "kiosk"],
        default="app",
        help="app: the assembled kiosk (kiosk/app.py) and a ticket journey; kiosk: the UI shell"
        " with the demo router (screen-change times)",
    )
    parser.add_argument("--transition", choices=["none", "fade", "slide"], default="none")
    parser.add_argument("--size", default="1080x1920", help="window WIDTHxHEIGHT (both sides)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        parser.error("--repeats and --rounds: at least 1")
    if args.size != "1080x1920":
        parser.error("--size: the kiosk side uses [kiosk.ui] defaults, 1080x1920")

    bare_args = ["bare", "--size", args.size]
    kiosk_args = [args.kiosk, "--rounds", str(args.rounds), "--transition", args.transition]
    # the font faces prepared once, as at install (kiosk/ui/font_cache.py); otherwise the first
    # runs would use the plain face while a background process prepares it
    subprocess.run(
        [sys.executable, "-m", "kiosk.ui.font_cache"], cwd=REPO_ROOT, check=True, timeout=600
    )
    server = start_xvfb()
    results: dict[str, list[dict[str, Any]]] = {"bare": [], "kiosk": []}
    try:
        with tempfile.TemporaryDirectory(prefix="hk-kiosk-start-") as tmp:
            home = Path(tmp)
            print("warm-up: one run of each side", file=sys.stderr)
            run_child(bare_args, server.display, home)
            run_child(kiosk_args, server.display, home)
            for n in range(args.repeats):
                # alternate which side goes first, so neither always runs on a warmer cache
                order = [("bare", bare_args), ("kiosk", kiosk_args)]
                for side, side_args in order if n % 2 == 0 else reversed(order):
                    run = run_child(side_args, server.display, home)
                    results[side].append(run)
                    print(
                        f"  run {n + 1} {side:>5}: start {run['start_ms']:7.1f} ms, "
                        f"ready {run['ready_ms']:7.1f} ms, "
                        f"RSS {run['rss_kb'] / 1024:6.1f} MiB",
                        file=sys.stderr,
                    )
    finally:
        server.stop()

    def median(side: str, key: str) -> float:
        return statistics.median(run[key] for run in results[side])

    transitions = [ms for run in results["kiosk"] for ms in run["transitions_ms"]]
    result: dict[str, Any] = {
        "repeats": args.repeats,
        "rounds": args.rounds,
        "transition": args.transition,
        "bare_start_ms": round(median("bare", "start_ms"), 1),
        "kiosk_start_ms": round(median("kiosk", "start_ms"), 1),
        "kiosk_ready_ms": round(median("kiosk", "ready_ms"), 1),
        "bare_rss_kb": round(median("bare", "rss_kb")),
        "kiosk_rss_kb": round(median("kiosk", "rss_kb")),
        "screen_change_n": len(transitions),
        # the app's router changes screens a frame after the step: timed with --kiosk kiosk
        "screen_change_p50_ms": round(statistics.median(transitions), 1) if transitions else None,
        "screen_change_max_ms": round(max(transitions), 1) if transitions else None,
    }
    result["start_ratio"] = round(result["kiosk_start_ms"] / result["bare_start_ms"], 2)
    result["rss_ratio"] = round(result["kiosk_rss_kb"] / result["bare_rss_kb"], 2)
    # not a goal of the issue, reported so the staged start hides nothing: until then a
    # touched tile waits (kiosk/app.py "Start-up")
    result["ready_ratio"] = round(result["kiosk_ready_ms"] / result["bare_start_ms"], 2)
    result["goal_met"] = max(result["start_ratio"], result["rss_ratio"]) <= GOAL_RATIO
    for key, value in result.items():
        print(f"{key:>22}: {value}", file=sys.stderr)
    print(json.dumps({"bench": "kiosk_start", **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
