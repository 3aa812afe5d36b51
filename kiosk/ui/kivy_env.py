"""Environment Kivy reads once, at its first import. Call ``prepare_kivy_env`` before anything
imports kivy (the kiosk's entry points and the test suite's conftest do).

Without it Kivy parses the process's argv as its own options (and exits on pytest's), writes a
config file and logs under ~/.kivy, and reroutes ``sys.stderr`` through its logger.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path

KIVY_DEFAULTS = {
    "KIVY_NO_ARGS": "1",  # our argv is ours
    "KIVY_NO_CONFIG": "1",  # settings come from our TOML, not ~/.kivy/config.ini
    "KIVY_NO_FILELOG": "1",  # journald keeps the logs
    "KIVY_LOG_MODE": "PYTHON",  # plain logging; no stderr redirection
    "KIVY_WINDOW": "sdl2",
    # SDL would turn SIGTERM/SIGINT into a window-close request; the app handles the signals
    # itself (KioskApp) and ignores close requests, so nothing but a stop can end the kiosk
    "SDL_NO_SIGNAL_HANDLERS": "1",
}


class KivyAlreadyImported(RuntimeError):
    pass


def prepare_kivy_env(
    kivy_home: Path, env: MutableMapping[str, str] = os.environ, console_log: bool = False
) -> None:
    """Set Kivy's environment (keeping values already set). Raises if kivy is already imported
    with a different setting, since Kivy would silently ignore the change."""
    wanted = {**KIVY_DEFAULTS, "KIVY_HOME": str(kivy_home)}
    if not console_log:
        wanted["KIVY_NO_CONSOLELOG"] = "1"
    if "kivy" in sys.modules:
        wrong = [k for k in ("KIVY_NO_ARGS", "KIVY_LOG_MODE") if env.get(k) != wanted[k]]
        if wrong:
            raise KivyAlreadyImported(
                f"kivy was imported before its environment was prepared ({', '.join(wrong)}); "
                "call kiosk.ui.kivy_env.prepare_kivy_env first"
            )
    kivy_home.mkdir(parents=True, exist_ok=True)
    for key, value in wanted.items():
        env.setdefault(key, value)
