"""Fuzz the GA 467 codec and text-block parser: random bytes and mutated valid frames.

Every example goes through the streaming ``FrameParser`` in random-sized chunks; every body that
looks like a ``30 01`` reply goes on to ``parse_text_block``; half the text-block examples are
blocks on their own (random, or a valid synthetic block with bytes changed). Anything raised
other than ``Ga467FrameError`` / ``CardInvalid`` is an unexpected exception; an unchanged valid
frame that does not come out whole, or whose card does not parse, is an invariant violation.
Both must be 0.

The floor, measured on the same inputs in the same run, is the least any parser must do: one
C-speed pass over every byte (``bytes.find`` of the preamble plus ``zlib.crc32``). ``ratio`` is
our time per example over the floor's. Only the parsing is timed, not making the examples.

Progress goes to stderr; stdout gets exactly one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from drivers.identity.errors import CardInvalid  # noqa: E402
from drivers.identity.ga467.codec import (  # noqa: E402
    PREAMBLE,
    FrameParser,
    Ga467FrameError,
    build_reply,
)
from drivers.identity.ga467.sim import SimCard  # noqa: E402
from drivers.identity.ga467.textblock import TEXT_BLOCK_LEN, parse_text_block  # noqa: E402

BATCH = 1000
KINDS = ("random_bytes", "mutated_reply", "valid_reply", "noise_then_frame", "random_block")
KINDS += ("mutated_block",)
CARDS = 64  # synthetic cards to mutate from


class Example:
    __slots__ = ("chunks", "data", "kind", "valid_body")

    def __init__(
        self, kind: str, data: bytes, chunks: list[int], valid_body: bytes | None = None
    ) -> None:
        self.kind = kind
        self.data = data
        self.chunks = chunks
        self.valid_body = valid_body


def mutate(rnd: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(6)
        at = rnd.randrange(len(out)) if out else 0
        if op == 0 and out:
            out[at] ^= rnd.randint(1, 255)
        elif op == 1:
            out.insert(at, rnd.randrange(256))
        elif op == 2 and out:
            del out[at]
        elif op == 3:
            del out[rnd.randrange(len(out) + 1) :]  # truncated
        elif op == 4:
            out[at:at] = PREAMBLE[: rnd.randint(1, 5)]  # a preamble piece inside
        else:
            out[5:7] = rnd.randrange(0x10000).to_bytes(2, "big")  # any LEN
    return bytes(out)


def make_batch(rnd: random.Random, replies: list[bytes], blocks: list[bytes]) -> list[Example]:
    batch = []
    for _ in range(BATCH):
        kind = rnd.choices(KINDS, weights=(25, 30, 5, 10, 15, 15))[0]
        valid_body = None
        if kind == "random_bytes":
            data = rnd.randbytes(rnd.randrange(1500))
        elif kind == "mutated_reply":
            data = mutate(rnd, rnd.choice(replies))
        elif kind == "valid_reply":
            data = rnd.choice(replies)
            valid_body = data[7:-1]
        elif kind == "noise_then_frame":
            frame = build_reply(rnd.choice((0x90, 0x9F, 0x80, 0x41)), rnd.randbytes(8))
            noise = bytes(rnd.choice((0x00, 0xAA, 0x96, 0x69, 0x55)) for _ in range(20))
            data = noise + frame
            # a whole preamble in the noise may start a frame whose LEN swallows ours: a real
            # limit of any LEN-framed protocol, so only noise without one is held to the rule
            valid_body = None if PREAMBLE in noise else frame[7:-1]
        elif kind == "random_block":
            data = rnd.randbytes(TEXT_BLOCK_LEN)
        else:
            data = bytes(mutate(rnd, rnd.choice(blocks))[:TEXT_BLOCK_LEN].ljust(TEXT_BLOCK_LEN))
        cuts = sorted(rnd.randrange(len(data) + 1) for _ in range(rnd.randrange(4)))
        batch.append(Example(kind, data, cuts, valid_body))
    return batch


def run_one(example: Example, outcomes: Counter[str]) -> str | None:
    """Parse one example; count outcomes; return a violation text, if any."""
    if example.kind in ("random_block", "mutated_block"):
        try:
            parse_text_block(example.data)
            outcomes["text_ok"] += 1
        except CardInvalid as exc:
            outcomes[f"text_{exc.code}"] += 1
        return None
    parser = FrameParser()
    bodies: list[bytes] = []
    start = 0
    for cut in [*example.chunks, len(example.data)]:
        parser.feed(example.data[start:cut])
        start = cut
        while True:
            try:
                body = parser.next_body()
            except Ga467FrameError as exc:
                outcomes[f"frame_{exc.code}"] += 1
                continue
            if body is None:
                break
            bodies.append(body)
    outcomes["frames_ok"] += len(bodies)
    if not bodies:
        outcomes["no_frame"] += 1
    violation = None
    if example.valid_body is not None and (not bodies or bodies[-1] != example.valid_body):
        violation = f"{example.kind}: a valid frame did not come out whole"
    for body in bodies:
        if body[2] == 0x90 and len(body) >= 7 + TEXT_BLOCK_LEN:
            try:
                parse_text_block(body[7 : 7 + TEXT_BLOCK_LEN])
                outcomes["text_ok"] += 1
            except CardInvalid as exc:
                outcomes[f"text_{exc.code}"] += 1
                if example.kind == "valid_reply":
                    violation = f"valid_reply: the card did not parse ({exc.code})"
    return violation


def floor_one(example: Example) -> int:
    return example.data.find(PREAMBLE) + zlib.crc32(example.data)


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rnd = random.Random(seed)

    cards = [SimCard.synthetic(n) for n in range(CARDS)]
    lengths = b"\x01\x00\x04\x00"
    replies = [build_reply(0x90, lengths + c.text_block() + c.photo()) for c in cards]
    blocks = [c.text_block() for c in cards]

    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    unexpected: Counter[str] = Counter()
    unexpected_examples: list[str] = []
    violations: list[str] = []
    ours_s = floor_s = 0.0
    total_bytes = 0
    done = 0
    while done < args.examples:
        batch = make_batch(rnd, replies, blocks)[: args.examples - done]

        def ours(batch: list[Example] = batch) -> None:
            for example in batch:
                try:
                    violation = run_one(example, outcomes)
                except Exception as exc:  # the point of the bench: count, never stop
                    unexpected[type(exc).__name__] += 1
                    if len(unexpected_examples) < 5:
                        unexpected_examples.append(f"{example.kind}: {exc!r} on {example.data!r}")
                    continue
                if violation is not None:
                    violations.append(violation)

        def floor(batch: list[Example] = batch) -> None:
            for example in batch:
                floor_one(example)

        ours_s += timed(ours)
        floor_s += timed(floor)
        for example in batch:
            kinds[example.kind] += 1
            total_bytes += len(example.data)
        done += len(batch)
        if done % 20_000 == 0:
            print(f"{done} examples, {done / ours_s:,.0f}/s", file=sys.stderr)

    for text in unexpected_examples + violations[:5]:
        print(text, file=sys.stderr)
    result = {
        "bench": "fuzz_ga467",
        "examples": done,
        "unexpected_exceptions": sum(unexpected.values()),
        "unexpected_by_type": dict(unexpected),
        "invariant_violations": len(violations),
        "examples_per_s": round(done / ours_s),
        "mb_per_s": round(total_bytes / ours_s / 1e6, 2),
        "floor_examples_per_s": round(done / floor_s),
        "ratio": round(ours_s / floor_s, 1),
        "kinds": dict(sorted(kinds.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "bytes": total_bytes,
        "seed": seed,
        "elapsed_s": round(ours_s + floor_s, 2),
    }
    print(json.dumps(result, ensure_ascii=False))
    return 1 if unexpected or violations else 0


if __name__ == "__main__":
    sys.exit(main())
