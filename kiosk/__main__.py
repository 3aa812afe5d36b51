"""``python -m kiosk [--config FILE]...``: the kiosk app (what kiosk.service runs).

Layers: packaged defaults, then each ``--config`` file in order (provisioning overlay, site
file). ``--check-config`` validates them all and exits (kiosk.service runs it first); the app
itself checks the first frame's part before the window and the rest just after it
(kiosk/start_settings.py).
"""

# Kivy reads its environment at first import: it is imported after prepare_kivy_env.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from kiosk.ui.kivy_env import prepare_kivy_env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk", description=__doc__)
    parser.add_argument("--config", action="append", default=[], help="a TOML layer")
    parser.add_argument("--check-config", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(name)s %(levelname)s %(message)s")

    from hallkiosk.config import ConfigError

    try:
        if args.check_config:
            from kiosk.settings import load_kiosk_settings

            settings = load_kiosk_settings(args.config)
            print(f"kiosk config OK: device {settings.device_id}, hall {settings.kiosk.hall_mode}")
            return 0
        from kiosk.start_settings import StartSettings

        # the first frame's part now, the rest on the frame after it (kiosk/start_settings.py)
        start = StartSettings.load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:  # one line each, as lockerd's: FILE: key.path: reason
            print(problem, file=sys.stderr)
        return 2
    prepare_kivy_env(Path(os.environ.get("STATE_DIRECTORY", start.data_dir)) / "kivy")
    from kiosk.app import run

    return run(start)


if __name__ == "__main__":
    raise SystemExit(main())
