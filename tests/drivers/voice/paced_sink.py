"""Stands in for ``aplay`` (no sound card here): reads audio from stdin at a sound card's pace
and writes it to DIR/<pid>.wav, so espeak-ng blocks on the pipe exactly as with a speaker."""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    out_dir, bytes_per_s = sys.argv[1], int(sys.argv[2])
    chunk = 4096
    with open(os.path.join(out_dir, f"{os.getpid()}.wav"), "wb") as out:
        while data := sys.stdin.buffer.read(chunk):
            out.write(data)
            out.flush()
            time.sleep(len(data) / bytes_per_s)  # pacing: this is the "sound card"


if __name__ == "__main__":
    main()
