"""``python -m kiosk.ui``: the UI shell with the demo router (kiosk/ui/demo.py) in a window.
The real entry point, with the session and the journeys, replaces the demo parts."""

# Kivy reads its environment at first import: it is imported after prepare_kivy_env.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kiosk.ui.kivy_env import prepare_kivy_env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.ui", description=__doc__)
    parser.add_argument("--fullscreen", action="store_true")
    parser.add_argument("--transition", choices=["none", "fade", "slide"], default="none")
    args = parser.parse_args(argv)
    prepare_kivy_env(Path(tempfile.gettempdir()) / "hallkiosk-kivy", console_log=True)

    from kiosk.ui.app import KioskApp, configure_kivy
    from kiosk.ui.demo import DemoRouter, demo_screens
    from kiosk.ui.settings import UiSettings
    from kiosk.ui.shell import KioskShell
    from kiosk.ui.worker import KivyWorker

    settings = UiSettings(fullscreen=args.fullscreen, transition=args.transition)
    configure_kivy(settings)
    worker = KivyWorker()

    def start(shell: KioskShell) -> None:
        DemoRouter(shell, worker).go_home()

    try:
        KioskApp(settings, demo_screens(), start=start).run()
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
