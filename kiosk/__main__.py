"""``python -m kiosk [--config FILE]...``: the kiosk app (what kiosk.service runs).

Layers: packaged defaults, then each ``--config`` file in order (provisioning overlay, site
file). ``--check-config`` validates them and exits.
"""

# Kivy reads its environment at first import: it is imported after prepare_kivy_env.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import logging
import os
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

    from kiosk.settings import load_kiosk_settings

    settings = load_kiosk_settings(args.config)
    if args.check_config:
        print(f"kiosk config OK: device {settings.device_id}, hall {settings.kiosk.hall_mode}")
        return 0
    kivy_home = Path(os.environ.get("STATE_DIRECTORY", settings.site.data_dir)) / "kivy"
    prepare_kivy_env(kivy_home)
    from kiosk.app import run

    return run(settings)


if __name__ == "__main__":
    raise SystemExit(main())
