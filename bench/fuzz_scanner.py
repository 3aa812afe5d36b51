"""Fuzz the scanner input path: classifier, serial bytes path and keyboard-wedge translator.

Feeds ``--examples`` generated inputs (default 100,000) through the code a real scan takes:

* text: random printable/unicode strings, random bytes, and mutations of valid codes of every
  format (substitution, insertion, deletion, adjacent swap, truncation, doubling, case flips,
  URL tricks) through ``classify``;
* bytes: the same and raw garbage through a ``SimScanner``'s byte path (ASCII decode, delivery);
* keys: random ``evdev``-shaped key event streams through ``KeyTranslator`` and then ``classify``.

Anything raised other than a ``ScanRejected`` counts in ``unexpected_exceptions`` (goal 0).
``single_errors_accepted`` counts single-character substitutions in a valid code that were
accepted with a different value (goal 0: every check digit here catches any single
substitution; a changed URL path or unrelated URL parameter keeps the value and is fine).

Floor, measured in the same run on the same text inputs: the cheapest check imaginable (length
and ASCII charset only). ``ratio`` = full classify rate / floor rate, a machine-independent
figure of what the real validation costs.

Progress goes to stderr; stdout gets exactly one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from drivers.scanner import ScannerSettings, ScanRejected  # noqa: E402
from drivers.scanner.formats import (  # noqa: E402
    ALNUM36,
    ScanKind,
    classify,
    make_booking_code,
    make_booking_payload,
    make_case_barcode,
    make_receipt_payload,
)
from drivers.scanner.settings import FormatSettings  # noqa: E402
from drivers.scanner.sim import SimKeyEvent, SimScanner, key_events  # noqa: E402
from drivers.scanner.wedge import (  # noqa: E402
    CHORD_KEYS,
    EV_KEY,
    SHIFT_KEYS,
    US_KEYMAP,
    KeyTranslator,
)

HOST = "yy.zwfw.example.cn"
FMT = FormatSettings(booking_url_hosts=(HOST,))
TYPEABLE = frozenset(c for pair in US_KEYMAP.values() for c in pair)
KEY_CODES = [*US_KEYMAP, *SHIFT_KEYS, *CHORD_KEYS, 1, 14, 15, 28, 58, 69, 96, 59, 111, 125, 240]


def valid_code(rng: random.Random) -> str:
    pick = rng.randrange(5)
    if pick == 0:
        return make_booking_code("".join(rng.choices(string.digits, k=11)))
    if pick == 1:
        return make_booking_payload(make_booking_code("".join(rng.choices(string.digits, k=11))))
    if pick == 2:
        return make_receipt_payload("YS" + "".join(rng.choices(string.digits, k=13)))
    if pick == 3:
        dept = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(2, 4)))
        return make_case_barcode(dept, rng.randint(2000, 2099), rng.randrange(1_000_000))
    code = make_booking_code("".join(rng.choices(string.digits, k=11)))
    return f"https://{HOST}/c?x={rng.randrange(99)}&yyh={code}"


def substitute(rng: random.Random, code: str) -> str:
    """One character replaced by another of the same class (digit for digit, etc.)."""
    i = rng.randrange(len(code))
    ch = code[i]
    pool = string.digits if ch.isdigit() else ALNUM36 if ch.isalnum() else string.punctuation
    other = rng.choice([c for c in pool if c != ch])
    return code[:i] + other + code[i + 1 :]


def mutate(rng: random.Random, code: str) -> str:
    op = rng.randrange(9)
    i = rng.randrange(len(code))
    if op == 0:
        return code[:i] + rng.choice(string.printable) + code[i:]
    if op == 1:
        return code[:i] + code[i + 1 :]
    if op == 2 and i + 1 < len(code):
        return code[:i] + code[i + 1] + code[i] + code[i + 2 :]
    if op == 3:
        return code[:i]
    if op == 4:
        return code * rng.randint(2, 60)
    if op == 5:
        return code.swapcase()
    if op == 6:
        tricks = [
            f"https://{HOST}@evil.example/?yyh=",
            f"https://{HOST}.evil.example/?yyh=",
            "https://[::1/?yyh=",
            f"https://{HOST}:99999/?yyh=",
            f"https://{HOST}/?yyh=%00",
            f"http://{HOST}/?yyh=",
            "HK1:R:",
            "HK1:B:",
            "HK1:",
        ]
        return rng.choice(tricks) + code
    if op == 7:
        return code[:i] + chr(rng.randrange(0x0, 0x3000)) + code[i:]
    return substitute(rng, code)


def random_text(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return "".join(rng.choices(string.printable, k=rng.randrange(0, 80)))
    if kind == 1:
        return "".join(chr(rng.randrange(0, 0x10000)) for _ in range(rng.randrange(0, 40)))
    if kind == 2:
        return "".join(
            rng.choices(string.ascii_uppercase + string.digits + ":", k=rng.randrange(40))
        )
    return mutate(rng, valid_code(rng))


def random_keys(rng: random.Random) -> list[SimKeyEvent]:
    if rng.random() < 0.3:
        text = "".join(c for c in mutate(rng, valid_code(rng)) if c in TYPEABLE)
        return key_events(text, end=28)
    out: list[SimKeyEvent] = []
    t = 1_700_000_000.0
    for _ in range(rng.randrange(0, 120)):
        t += rng.choice((0.001, 0.003, 0.2, 2.0))
        sec, usec = divmod(round(t * 1e6), 1_000_000)
        ev_type = rng.choice((EV_KEY, EV_KEY, EV_KEY, 0, 4))
        code = rng.choice(KEY_CODES) if rng.random() < 0.9 else rng.randrange(0, 768)
        out.append(SimKeyEvent(sec, usec, ev_type, code, rng.choice((0, 1, 1, 2))))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20240615)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    n_text = args.examples * 6 // 10
    n_bytes = args.examples * 2 // 10
    n_keys = args.examples - n_text - n_bytes
    texts = [random_text(rng) for _ in range(n_text)]
    singles = [(substitute(rng, code), code) for code in (valid_code(rng) for _ in range(2000))]
    blobs = [
        rng.randbytes(rng.randrange(0, 700))
        if rng.random() < 0.5
        else random_text(rng).encode("utf-8", "replace")
        for _ in range(n_bytes)
    ]
    key_streams = [random_keys(rng) for _ in range(n_keys)]
    print(f"generated {args.examples} examples (seed {args.seed})", file=sys.stderr)

    unexpected: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()

    def run(text: str, raw_length: int | None = None) -> None:
        try:
            scan = classify(text, FMT, source="fuzz", raw_length=raw_length)
            outcomes[scan.kind.value] += 1
        except ScanRejected as exc:
            outcomes[exc.code] += 1
        except Exception as exc:  # the whole point: count what must never happen
            unexpected[type(exc).__name__] += 1
            if sum(unexpected.values()) <= 5:
                print(f"UNEXPECTED {type(exc).__name__}: {exc} on {text!r:.120}", file=sys.stderr)

    # floor: length + charset only, same inputs, same loop shape
    allowed = frozenset(chr(c) for c in range(0x21, 0x7F))
    start = time.perf_counter()
    floor_ok = 0
    for text in texts:
        stripped = text.strip()
        if len(text) <= FMT.max_length and stripped and allowed.issuperset(stripped):
            floor_ok += 1
    floor_s = time.perf_counter() - start

    start = time.perf_counter()
    for text in texts:
        run(text)
    text_s = time.perf_counter() - start

    single_errors_accepted = 0
    for mutated, original in singles:
        try:
            scan = classify(mutated, FMT)
        except ScanRejected:
            continue
        except Exception as exc:
            unexpected[type(exc).__name__] += 1
            continue
        # a changed URL path or extra parameter is harmless; a changed code value is not
        if scan.value != classify(original, FMT).value:
            single_errors_accepted += 1
            print(f"single error accepted: {original} -> {mutated} ({scan.kind})", file=sys.stderr)

    start = time.perf_counter()
    sim = SimScanner(ScannerSettings(queue_size=1))
    sim.when_scanned = lambda scan: None
    sim.when_rejected = lambda exc: None
    sim.start()
    for blob in blobs:
        try:
            sim.scan_bytes(blob)
        except Exception as exc:
            unexpected[type(exc).__name__] += 1
    outcomes["bytes_path"] += len(blobs)

    for stream in key_streams:
        translator = KeyTranslator(end_key="enter", max_length=FMT.max_length, silence_s=0.15)
        try:
            raws = [raw for event in stream for raw in translator.feed(event)]
            last = translator.flush()
        except Exception as exc:
            unexpected[type(exc).__name__] += 1
            continue
        for raw in [*raws, *([last] if last else [])]:
            run(raw.text, raw.length)
    rest_s = time.perf_counter() - start

    total = len(texts) + len(blobs) + len(key_streams)
    elapsed = text_s + rest_s
    per_s = total / elapsed
    classify_per_s = len(texts) / text_s
    floor_per_s = len(texts) / floor_s
    print(
        f"classify {classify_per_s:,.0f}/s vs floor {floor_per_s:,.0f}/s "
        f"(ratio {classify_per_s / floor_per_s:.3f}); all paths {per_s:,.0f}/s; "
        f"outcomes {dict(outcomes.most_common())}",
        file=sys.stderr,
    )
    result = {
        "bench": "fuzz_scanner",
        "examples": total,
        "unexpected_exceptions": sum(unexpected.values()),
        "unexpected_types": dict(unexpected),
        "single_errors_accepted": single_errors_accepted,
        "single_error_trials": len(singles),
        "per_s": round(per_s),
        "classify_per_s": round(classify_per_s),
        "floor_per_s": round(floor_per_s),
        "ratio": round(classify_per_s / floor_per_s, 4),
        "accepted": sum(outcomes[k.value] for k in ScanKind),
        "seed": args.seed,
    }
    print(json.dumps(result))
    return 0 if not unexpected and not single_errors_accepted else 1


if __name__ == "__main__":
    sys.exit(main())
