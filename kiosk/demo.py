"""``make demo``: the kiosk in a window with simulated hardware, the hall in process, and lockerd
on a simulated lock board.

    python -m kiosk.demo [--data-dir demo-data]                 # a window; hot keys below
    python -m kiosk.demo --headless DIR                         # a scripted journey, screenshots

Everything but the hardware is real: lockerd and the lock-board simulator run as processes (as
``locker.demo`` starts them), the kiosk assembles its embedded hall, and the card reader,
scanner, printer and camera are the drivers' simulators. The demo seeds today's booking and a
certificate in the locker for the simulated citizen card.

Hot keys (the side panel of a real cabinet):
  F1 citizen card on the reader   F2 staff card (PIN 123456)   F3 take the card away
  F4 scan the demo booking QR     F5 pull the printer's paper   F6 load paper
  F7 the person at the open bay opens and shuts its door
"""

# Kivy reads its environment at first import: it is imported after prepare_kivy_env.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from drivers.identity.vcard.cards import SYNTHETIC_ID_NUMBER, SYNTHETIC_NAME
from drivers.scanner.formats import make_booking_code, make_booking_payload
from hallkiosk.privacy import IdentityHasher, mask_id_number, mask_name
from kiosk.ui.kivy_env import prepare_kivy_env
from locker.demo import wait_for

log = logging.getLogger("kiosk.demo")

DEMO_BOOKING = make_booking_code("20261123001")


def say(text: str) -> None:
    print(text, flush=True)


def kiosk_site(data_dir: Path) -> Path:
    site = data_dir / "kiosk-site.toml"
    site.write_text(
        "schema_version = 1\n"
        f"[site]\ndata_dir = {json.dumps(str(data_dir))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n"
        "[kiosk.locker]\nenabled = true\n",
        encoding="utf-8",
    )
    return site


@dataclass
class Seeded:
    booking_code: str
    password: str
    bay: str


def seed(running: Any, locker_demo: Any) -> Seeded:
    """Today's booking and one stored certificate for the simulated citizen card."""
    from hall.appointments.importer import parse_csv

    kiosk = running.kiosk
    hall = kiosk.runtime.embedded_hall
    now = kiosk.runtime.clock.now()
    slot = now + timedelta(minutes=10)
    end = slot + timedelta(minutes=30)
    csv = (
        "booking_code,id_number,name,matter_code,matter_name,area,slot_start,slot_end,phone\n"
        f"{DEMO_BOOKING},{SYNTHETIC_ID_NUMBER},{SYNTHETIC_NAME},SS-0101,养老保险参保,"
        f"social-security,{slot:%Y-%m-%d %H:%M:%S},{end:%Y-%m-%d %H:%M:%S},13800138000"
    )
    parsed = parse_csv(csv.encode(), hasher=hall.hasher, tz=hall.clock.tz)
    hall.appointments.store_records(parsed.records)
    hasher = IdentityHasher.from_file(kiosk.settings.identity_key_path)
    client, sim = locker_demo.client, locker_demo.sim
    started = client.call(
        "deposit.start",
        staff_id="demo-clerk",
        case_number="SB2026-000123",
        size="M",
        recipient={
            "identity_hash": hasher.hash_id_number(SYNTHETIC_ID_NUMBER),
            "masked_name": mask_name(SYNTHETIC_NAME),
            "masked_id": mask_id_number(SYNTHETIC_ID_NUMBER),
        },
    )
    bay = str(started["bay_id"])
    channel = int(bay[1:])
    sim.pull_door(1, channel)
    wait_for(lambda: locker_demo.door(bay) == "open", "the bay to open")
    sim.close_door(1, channel)
    wait_for(lambda: locker_demo.door(bay) == "closed", "the bay to close")
    confirmed = client.call(
        "deposit.confirm", staff_id="demo-clerk", deposit_id=started["deposit_id"]
    )
    return Seeded(DEMO_BOOKING, str(confirmed["password"]), bay)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.demo", description=__doc__)
    parser.add_argument("--data-dir", default="demo-data", type=Path)
    parser.add_argument("--headless", metavar="DIR", type=Path, help="play a scripted journey")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    data_dir: Path = args.data_dir.resolve()
    if data_dir.exists():
        import shutil

        shutil.rmtree(data_dir)  # every demo starts from an empty hall and locker
    data_dir.mkdir(parents=True)
    prepare_kivy_env(Path(tempfile.gettempdir()) / "hallkiosk-kivy", console_log=False)

    from kiosk.app import RunningKiosk, build_app
    from kiosk.demo_script import HotKeys, Script, journey_steps, person_at_open_bay
    from kiosk.settings import load_kiosk_settings
    from locker.demo import Demo

    locker_demo = Demo(data_dir)
    locker_demo.start()
    settings = load_kiosk_settings([kiosk_site(data_dir)])
    shots: Path | None = args.headless.resolve() if args.headless else None
    failures: list[str] = []

    def started(running: RunningKiosk) -> None:
        seeded = seed(running, locker_demo)
        say(f"[demo] booking {seeded.booking_code}; certificate in bay {seeded.bay}")
        if shots is None:
            keys = HotKeys(running, locker_demo, make_booking_payload(seeded.booking_code))
            running.keep.append(keys)
            keys.bind()
            say("[demo] hot keys: F1 citizen card, F2 staff card, F3 card away, F4 scan booking")
            say("       F5 pull paper, F6 load paper, F7 person opens and shuts the open bay")
            return
        steps = journey_steps(running, locker_demo, seeded, lambda: person_at_open_bay(locker_demo))
        script = Script(running, steps, shots, failures)
        running.keep.append(script)
        script.start()

    try:
        running = build_app(settings, on_started=started)
        try:
            running.app.run()
        finally:
            running.close()
    finally:
        locker_demo.stop()
    if shots is not None:
        if failures:
            say(f"[demo] the scripted journey failed: {failures[0]}")
            return 1
        say(f"[demo] screenshots in {shots}")
    return 0


if __name__ == "__main__":
    if "DISPLAY" not in os.environ:
        sys.exit("kiosk.demo needs a display: run it under Xvfb (make demo HEADLESS=1 does)")
    raise SystemExit(main())
