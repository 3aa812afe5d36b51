"""``make demo`` (for now): lockerd on a simulated 8A/80 board, with a scripted load and pickup.

Everything is real except the board: the simulator runs as its own process on a pty and speaks
the byte protocol; lockerd runs as its own process with its database under ``demo-data/``; this
script is a client of lockerd's socket API, like the kiosk will be.

    python -m locker.demo [--data-dir demo-data] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from drivers.lockboard.sim.control import SimControl
from hallkiosk.privacy import IdentityHasher, ensure_key_file, mask_id_number, mask_name
from locker.client import ApiError, LockerClient

# A synthetic resident ID number with a valid GB 11643 check digit (not a real person).
DEMO_ID_NUMBER = "110101199003070011"
DEMO_NAME = "张小三"
STEP_TIMEOUT_S = 15.0


def say(text: str) -> None:
    print(text, flush=True)


def _read_line(stream: IO[str], timeout_s: float) -> str:
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    if not result or not result[0]:
        raise RuntimeError("a demo process did not start; see its output above")
    return result[0].strip()


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    # lockerd and the simulator are other processes: their state is read, there is no
    # condition in this process to wait on
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _site_toml(data_dir: Path, pty_path: str) -> str:
    bays = "".join(
        f'[[lockerd.bays]]\nid = "A{ch:02d}"\nsize = "{"SSMMLLLL"[ch - 1]}"\nbus = "bus0"\n'
        f"board = 1\nchannel = {ch}\n\n"
        for ch in range(1, 9)
    )
    return (
        f'schema_version = 1\n[site]\ndevice_id = "locker-demo"\ndata_dir = "{data_dir}"\n\n'
        f'[[lockerd.buses]]\nname = "bus0"\nprotocol = "8a80"\nurl = "{pty_path}"\n\n{bays}'
    )


class Demo:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.procs: list[subprocess.Popen[str]] = []

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        sim = self._spawn(
            [
                "drivers.lockboard.sim",
                "--protocol",
                "8a80",
                "--boards",
                "1",
                "--channels",
                "8",
                "--control",
                str(self.data_dir / "sim.sock"),
                "--exit-with-parent",
            ],
            stdout=subprocess.PIPE,
        )
        assert sim.stdout is not None
        pty_path = _read_line(sim.stdout, STEP_TIMEOUT_S)
        _read_line(sim.stdout, STEP_TIMEOUT_S)
        self.sim = SimControl(self.data_dir / "sim.sock")
        say(f"[sim]     8A/80 lock board (address 1, 8 channels) on {pty_path}")
        config = self.data_dir / "site.toml"
        config.write_text(_site_toml(self.data_dir, pty_path), encoding="utf-8")
        self._spawn(["locker.daemon", "--config", str(config), "--log-level", "WARNING"])
        self.client = LockerClient(str(self.data_dir / "lockerd.sock"))
        socket_path = self.data_dir / "lockerd.sock"
        wait_for(socket_path.exists, "lockerd's socket")
        say(f"[lockerd] running, database {self.data_dir / 'locker.db'}")
        ensure_key_file(self.data_dir / "identity.key")
        self.hasher = IdentityHasher.from_file(self.data_dir / "identity.key")
        threading.Thread(target=self._print_events, daemon=True).start()

    def _spawn(self, args: list[str], stdout: int | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", *args], stdout=stdout, text=True)
        self.procs.append(proc)
        return proc

    def _print_events(self) -> None:
        try:
            for event in LockerClient(str(self.data_dir / "lockerd.sock")).events():
                if event["type"] == "door":
                    say(
                        f"    [door]  bay {event['bay_id']}: {event['previous']} -> {event['door']}"
                    )
                elif event["type"] == "alarm" and event.get("active"):
                    say(f"    [ALARM] {event['alarm']} on {event['subject']}")
        except (ApiError, OSError):
            return

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    def door(self, bay_id: str) -> str:
        bays = self.client.call("status")["bays"]
        return str(next(b["door"] for b in bays if b["bay_id"] == bay_id))

    def run(self) -> None:
        identity = {
            "identity_hash": self.hasher.hash_id_number(DEMO_ID_NUMBER),
            "masked_name": mask_name(DEMO_NAME),
            "masked_id": mask_id_number(DEMO_ID_NUMBER),
        }
        say("\n== 1. 工作人员存件 / Staff loads a certificate ==")
        started = self.client.call(
            "deposit.start",
            staff_id="clerk01",
            case_number="ZJ2026-000123",
            size="M",
            recipient=identity,
        )
        bay = started["bay_id"]
        say(
            f"  bay {bay} ({started['size']}) opens for case ZJ2026-000123, "
            f"recipient {identity['masked_name']} {identity['masked_id']}"
        )
        wait_for(lambda: self.door(bay) == "open", "the clerk to open the door")
        wait_for(lambda: self.door(bay) == "closed", "the clerk to close the door")
        stored = self.client.call(
            "deposit.confirm", staff_id="clerk01", deposit_id=started["deposit_id"]
        )
        password = stored["password"]
        say(
            f"  stored. SMS to the applicant: 取件密码 {password}, 请于 {stored['deadline'][:10]} "
            "前凭身份证取件 / pickup password, bring your ID card"
        )

        say("\n== 2. 申请人取件（凌晨3点）/ The applicant picks up at 3 a.m. ==")
        waiting = self.client.call(
            "deposits.for_identity", identity_hash=identity["identity_hash"]
        )["deposits"]
        say(
            f"  ID card read: {identity['masked_name']} {identity['masked_id']} has "
            f"{len(waiting)} item(s) waiting"
        )
        wrong = "000000" if password != "000000" else "111111"  # noqa: S105 - a demo guess
        try:
            self.client.call("pickup", identity_hash=identity["identity_hash"], password=wrong)
        except ApiError as exc:
            say(f"  wrong password -> {exc.message_zh} / {exc.message_en}")
        result = self.client.call(
            "pickup", identity_hash=identity["identity_hash"], password=password
        )
        say(f"  right password -> bay {result['bay_id']} opened: 柜门已打开，请取件并关好柜门")
        wait_for(lambda: self.door(bay) == "open", "the applicant to open the door")
        wait_for(lambda: self.door(bay) == "closed", "the applicant to close the door")
        say("  door closed again: pickup complete")

        say("\n== 3. 柜门被撬 / A door is forced open ==")
        self.sim.set_auto_person(False)
        self.sim.force_open(1, 8)
        wait_for(lambda: self.door("A08") == "open", "the forced door to be seen")
        alarms = self.client.call("status")["alarms"]
        say("  active alarms: " + ", ".join(f"{a['alarm']}@{a['subject']}" for a in alarms))
        self.sim.close_door(1, 8)
        wait_for(lambda: self.door("A08") == "closed", "the forced door to close")

        say("\n== 4. 审计日志 / The audit log ==")
        for entry in self.client.call("audit.tail", after_seq=0, limit=100)["entries"]:
            detail: dict[str, Any] = entry["detail"]
            say(
                f"  {entry['seq']:>3} {entry['kind']:<17} bay={entry['bay_id'] or '-':<4} "
                f"{json.dumps(detail, ensure_ascii=False)}"
            )
        say(
            "\nDemo finished: the raw ID number never left this script; lockerd stored only "
            "its keyed hash and masked forms."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="locker.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="demo-data", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the previous database")
    args = parser.parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    if data_dir.exists() and not args.keep:
        shutil.rmtree(data_dir)
    os.umask(0o027)
    demo = Demo(data_dir)
    try:
        demo.start()
        demo.run()
    except (RuntimeError, ApiError) as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
