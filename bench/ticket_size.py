"""Queue-ticket size and serial wire time: native QR (GS ( k) against a raster QR (GS v 0).

    .venv/bin/python bench/ticket_size.py [--profile generic-58] [--baud 9600] [--repeats 5]

The main figures are computed: bytes of the ESC/POS job the driver sends for one queue ticket,
and the time those bytes take on a serial line at the given baud with 8N1 framing (10 bits per
byte). The raster job renders the same ticket on the same profile with ``native_qr`` off.
The floor is the native job measured in the same run; ``ratio`` is raster over native.

For contrast it also pushes both jobs through a real pty whose termios speed is set to the baud
and times the transfer. A pty ignores the baud setting (there is no UART), so that time is the
cost of the kernel copy only, not the wire time: it shows why the computed figure is the one
that matters on a real RS-232 printer. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import tty
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import serial  # noqa: E402

from drivers.printer.escpos_render import render_layout  # noqa: E402
from drivers.printer.layout import Layout, QRCode, QueueTicket, queue_ticket_layout  # noqa: E402
from drivers.printer.profiles import PROFILES  # noqa: E402

BITS_PER_BYTE_8N1 = 10
JOB_START_BYTES = 4  # ESC @, FS &


def ticket() -> QueueTicket:
    return QueueTicket(
        hall_name="杭州市西湖区政务服务中心",
        ticket_number="A023",
        category="收件号",
        business="社保医保",
        people_ahead=12,
        estimated_wait_min=35,
        issued_at=datetime(2025, 5, 1, 8, 30, tzinfo=ZoneInfo("Asia/Shanghai")),
        # a realistic look-up URL: hall, ticket, day and a short signature
        qr_payload="https://zwfw.example.gov.cn/q/330106001/A023?d=20250501&s=7f3a9c2e",
    )


def wire_s(n_bytes: int, baud: int) -> float:
    return n_bytes * BITS_PER_BYTE_8N1 / baud


def pty_push_s(data: bytes, baud: int) -> float:
    """Write ``data`` to a pty slave opened at ``baud`` and time until the master read it all."""
    master_fd, slave_fd = os.openpty()
    tty.setraw(slave_fd)
    port = serial.serial_for_url(os.ttyname(slave_fd), baudrate=baud, write_timeout=60)
    received = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal received
        while received < len(data):
            chunk = os.read(master_fd, 65536)
            if not chunk:
                break
            received += len(chunk)
        done.set()

    thread = threading.Thread(target=reader, daemon=True)
    try:
        start = time.perf_counter()
        thread.start()
        port.write(data)
        port.flush()
        if not done.wait(60):
            raise RuntimeError("pty reader did not finish")
        elapsed = time.perf_counter() - start
    finally:
        port.close()
        thread.join(timeout=5)
        os.close(master_fd)
        os.close(slave_fd)
    if received != len(data):
        raise RuntimeError(f"pty delivered {received} of {len(data)} bytes")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="generic-58")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--repeats", type=int, default=5, help="pty pushes per job (median)")
    args = parser.parse_args()

    native_profile = PROFILES[args.profile].model_copy(update={"native_qr": True})
    raster_profile = PROFILES[args.profile].model_copy(update={"native_qr": False})
    layout = queue_ticket_layout(ticket())
    native = render_layout(layout, native_profile)
    raster = render_layout(layout, raster_profile)
    qr_only = Layout("qr", (QRCode(ticket().qr_payload),))
    native_qr_bytes = len(render_layout(qr_only, native_profile)) - JOB_START_BYTES
    raster_qr_bytes = len(render_layout(qr_only, raster_profile)) - JOB_START_BYTES

    pty_native = statistics.median(pty_push_s(native, args.baud) for _ in range(args.repeats))
    pty_raster = statistics.median(pty_push_s(raster, args.baud) for _ in range(args.repeats))

    native_wire = wire_s(len(native), args.baud)
    raster_wire = wire_s(len(raster), args.baud)
    print(
        f"profile {args.profile}, {args.baud} baud 8N1 ({BITS_PER_BYTE_8N1} bits/byte)\n"
        f"  native QR ticket: {len(native):6d} bytes, wire {native_wire:6.3f} s "
        f"(QR commands alone {native_qr_bytes} bytes)\n"
        f"  raster QR ticket: {len(raster):6d} bytes, wire {raster_wire:6.3f} s "
        f"(QR image alone {raster_qr_bytes} bytes)\n"
        f"  ratio raster/native: {len(raster) / len(native):.1f}x whole ticket, "
        f"{raster_qr_bytes / native_qr_bytes:.1f}x QR alone\n"
        f"  pty push (median of {args.repeats}): native {pty_native * 1000:.2f} ms, "
        f"raster {pty_raster * 1000:.2f} ms -- a pty ignores the baud setting, so this is\n"
        f"  kernel copy time, not wire time; the computed wire time is the real figure",
        file=sys.stderr,
    )
    result = {
        "bench": "ticket_size",
        "profile": args.profile,
        "baud": args.baud,
        "native_bytes": len(native),
        "raster_bytes": len(raster),
        "native_wire_s": round(native_wire, 4),
        "raster_wire_s": round(raster_wire, 4),
        "ratio": round(len(raster) / len(native), 2),
        "qr_native_bytes": native_qr_bytes,
        "qr_raster_bytes": raster_qr_bytes,
        "qr_ratio": round(raster_qr_bytes / native_qr_bytes, 2),
        "pty_native_s": round(pty_native, 6),
        "pty_raster_s": round(pty_raster, 6),
        "pty_ignores_baud": pty_raster < raster_wire / 10,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
