"""``python -m uplink schemas --write|--check``: keep uplink/schemas/*.json equal to the models."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from uplink.messages import render_schema_files

SCHEMAS_DIR = Path(__file__).parent / "schemas"


def stale_schema_files(directory: Path) -> list[str]:
    """Names of files that differ from the models, are missing, or are left over."""
    wanted = render_schema_files()
    stale = [
        name
        for name, text in wanted.items()
        if not (directory / name).is_file() or (directory / name).read_text("utf-8") != text
    ]
    leftover = [p.name for p in directory.glob("*.json") if p.name not in wanted]
    return sorted(stale + leftover)


def write_schema_files(directory: Path) -> list[str]:
    """Bring the directory up to date; return the names written or removed."""
    changed = stale_schema_files(directory)
    wanted = render_schema_files()
    directory.mkdir(parents=True, exist_ok=True)
    for name in changed:
        path = directory / name
        if name in wanted:
            path.write_text(wanted[name], "utf-8")
        else:
            path.unlink()  # the directory holds generated files only
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m uplink", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schemas = commands.add_parser("schemas", help="the JSON Schema files of the MQTT payloads")
    action = schemas.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="regenerate the files")
    action.add_argument("--check", action="store_true", help="exit 1 if any file is stale")
    schemas.add_argument("--dir", type=Path, default=SCHEMAS_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)

    if args.write:
        for name in write_schema_files(args.dir):
            print(f"updated {args.dir / name}")
        return 0
    stale = stale_schema_files(args.dir) if args.dir.is_dir() else sorted(render_schema_files())
    for name in stale:
        print(f"stale: {args.dir / name}", file=sys.stderr)
    if stale:
        print("run: python -m uplink schemas --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
