"""Identity read latency through a real pcscd, against a bare pyscard transmit of the same APDU.

Starts its own pcscd (vsmartcard's vpcd reader on a free port, as tests/fixtures/pcscd.py does)
and one virtual card (``python -m drivers.identity.vcard``). Needs root, like the tests: pcscd's
socket path is /run/pcscd.

What is timed, per sample, alternating so both see the same noise:

- reader: ``PcscReader.read`` with its per-insertion memory dropped first (``forget``), so every
  sample is a full read: SCardGetStatusChange, SCardConnect, a transaction, the card apps'
  APDUs (1 for an ID card, 4 for a citizen card, 6 for a staff card in the default app order),
  and the Identity (hashing, masking, GB 11643 check).
- floor: one SCardTransmit of the card's own identity APDU on a handle connected beforehand,
  bare pyscard: the least any read costs on this pcscd.

Prints progress to stderr and one JSON line on stdout, e.g.
{"bench": "identity_latency", "card": "idcard", ..., "ratio_p50": 2.05, "ratio_p99": 2.55, ...}.

    sudo .venv/bin/python bench/identity_latency.py [--card idcard|citizen|staff] [--samples N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from smartcard import scard

from drivers.identity.pcsc.reader import PcscReader
from drivers.identity.pcsc.settings import PcscSettings
from hallkiosk.privacy import IdentityHasher
from tests.fixtures.pcscd import (
    LOCK_PATH,
    LOCK_TIMEOUT_S,
    READER,
    Pcscd,
    _ExclusiveLock,
    free_port_pair,
    pcscd_usable,
)

# The one APDU that identifies each card kind (what a bare PC/SC client would send).
FLOOR_APDU = {
    "idcard": "0036000008",
    "citizen": "00A4040008F0484B4349545A01",
    "staff": "00A4040008F0484B5354414646",
}


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class BareTransmit:
    """A connected pyscard handle; ``once`` is a single SCardTransmit."""

    def __init__(self, apdu_hex: str) -> None:
        self.s = scard
        self.apdu = list(bytes.fromhex(apdu_hex))
        result, self.context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert result == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(result)
        result, self.card, self.protocol = scard.SCardConnect(
            self.context,
            READER,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        assert result == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(result)

    def once(self) -> None:
        result, response = self.s.SCardTransmit(self.card, self.protocol, self.apdu)
        assert result == self.s.SCARD_S_SUCCESS and response[-2:] == [0x90, 0x00], response

    def close(self) -> None:
        self.s.SCardDisconnect(self.card, self.s.SCARD_LEAVE_CARD)
        self.s.SCardReleaseContext(self.context)


def run(card: str, samples: int, warmup: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hallkiosk-pcscd-bench-") as scratch:
        daemon = Pcscd(Path(scratch), free_port_pair())
        try:
            daemon.start()
            vcard = daemon.vcard(card, verbose=False)
            vcard.wait_present()
            reader = PcscReader(PcscSettings(), IdentityHasher(b"bench-identity-key-0123456789ab"))
            bare = BareTransmit(FLOOR_APDU[card])
            apdus_before = vcard.control.status()["apdus"]
            try:
                ours: list[float] = []
                floor: list[float] = []
                for index in range(warmup + samples):
                    reader.forget()
                    start = time.perf_counter()
                    identity = reader.read(5.0)
                    mid = time.perf_counter()
                    bare.once()
                    end = time.perf_counter()
                    if index >= warmup:
                        ours.append(mid - start)
                        floor.append(end - mid)
                    if index % 100 == 0:
                        print(f"{index}/{warmup + samples} {identity.source}", file=sys.stderr)
                # APDUs one read sends (the floor's are counted out: one per sample)
                per_read = (vcard.control.status()["apdus"] - apdus_before) / (warmup + samples) - 1
            finally:
                bare.close()
                reader.close()
        finally:
            daemon.teardown()
    ms = 1000.0
    result = {
        "bench": "identity_latency",
        "card": card,
        "samples": samples,
        "reader_p50_ms": round(statistics.median(ours) * ms, 3),
        "reader_p99_ms": round(percentile(ours, 0.99) * ms, 3),
        "floor_p50_ms": round(statistics.median(floor) * ms, 3),
        "floor_p99_ms": round(percentile(floor, 0.99) * ms, 3),
    }
    result["ratio_p50"] = round(result["reader_p50_ms"] / result["floor_p50_ms"], 2)
    result["ratio_p99"] = round(result["reader_p99_ms"] / result["floor_p99_ms"], 2)
    # a citizen card needs 4 APDUs in the default app order: this is the overhead per APDU
    result["apdus_per_read"] = round(per_read, 2)
    result["ratio_p50_per_apdu"] = round(result["ratio_p50"] / per_read, 2)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", choices=sorted(FLOOR_APDU), default="idcard")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    reason = pcscd_usable()
    if reason is not None:
        print(f"identity_latency: {reason}", file=sys.stderr)
        return 2
    lock = _ExclusiveLock(LOCK_PATH)  # the tests' lock: one pcscd per machine
    lock.acquire(LOCK_TIMEOUT_S)
    try:
        result = run(args.card, args.samples, args.warmup)
    finally:
        lock.release()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
