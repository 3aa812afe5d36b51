"""Pick one face out of a font collection (``.ttc``) and write it as a standalone font file.

Kivy's SDL2 text provider opens face 0 of a collection, and face 0 of Noto Sans CJK is the
Japanese one: several common characters (直, 令, 骨, 写 ...) are drawn the Japanese way. The
Simplified Chinese face is found by its family name and copied out, table by table.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_TTC_TAG = b"ttcf"
_NAME_FAMILY = 1
_NAME_TYPOGRAPHIC_FAMILY = 16
_HEAD_ADJUSTMENT_AT = 8  # byte offset of checkSumAdjustment in 'head'
_CHECKSUM_MAGIC = 0xB1B0AFBA


class FontFileError(ValueError):
    pass


@dataclass(frozen=True)
class Table:
    tag: bytes
    checksum: int
    offset: int
    length: int


@dataclass(frozen=True)
class Face:
    index: int
    sfnt_version: bytes
    tables: tuple[Table, ...]
    families: tuple[str, ...]


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise FontFileError(f"truncated font file at {offset}")
    return data


def _face_offsets(f: BinaryIO) -> list[int]:
    head = _read_at(f, 0, 12)
    if head[:4] != _TTC_TAG:
        return [0]
    (count,) = struct.unpack(">I", head[8:12])
    return list(struct.unpack(f">{count}I", _read_at(f, 12, 4 * count)))


def _families(f: BinaryIO, name: Table | None) -> tuple[str, ...]:
    if name is None:
        return ()
    data = _read_at(f, name.offset, name.length)
    _format, count, strings_at = struct.unpack(">3H", data[:6])
    found: list[str] = []
    for n in range(count):
        platform, _enc, _lang, name_id, length, offset = struct.unpack(
            ">6H", data[6 + 12 * n : 18 + 12 * n]
        )
        if name_id not in (_NAME_FAMILY, _NAME_TYPOGRAPHIC_FAMILY):
            continue
        raw = data[strings_at + offset : strings_at + offset + length]
        text = raw.decode("utf-16-be" if platform in (0, 3) else "latin-1", errors="replace")
        if text not in found:
            found.append(text)
    return tuple(found)


def read_faces(path: Path) -> list[Face]:
    with path.open("rb") as f:
        faces = []
        for index, at in enumerate(_face_offsets(f)):
            version, count = struct.unpack(">4sH", _read_at(f, at, 6))
            records = _read_at(f, at + 12, 16 * count)
            tables = tuple(
                Table(tag, checksum, offset, length)
                for tag, checksum, offset, length in (
                    struct.unpack(">4s3I", records[16 * n : 16 * n + 16]) for n in range(count)
                )
            )
            name = next((t for t in tables if t.tag == b"name"), None)
            faces.append(Face(index, version, tables, _families(f, name)))
    return faces


def find_face(faces: list[Face], family: str) -> Face | None:
    wanted = family.casefold()
    return next((face for face in faces if wanted in map(str.casefold, face.families)), None)


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    words: tuple[int, ...] = struct.unpack(f">{len(padded) // 4}I", padded)
    return sum(words) & 0xFFFFFFFF


def extract_face(source: Path, face: Face, target: Path) -> None:
    """Write ``face`` of ``source`` as a standalone sfnt file at ``target`` (atomically)."""
    tables = sorted(face.tables, key=lambda t: t.tag)
    count = len(tables)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(
        ">4s4H", face.sfnt_version, count, power * 16, power.bit_length() - 1, (count - power) * 16
    )
    offset = 12 + 16 * count
    records = bytearray()
    bodies: list[bytes] = []
    with source.open("rb") as f:
        for table in tables:
            body = bytearray(_read_at(f, table.offset, table.length))
            if table.tag == b"head":
                body[_HEAD_ADJUSTMENT_AT : _HEAD_ADJUSTMENT_AT + 4] = b"\0\0\0\0"
            records += struct.pack(">4s3I", table.tag, table.checksum, offset, table.length)
            body += b"\0" * (-len(body) % 4)
            bodies.append(bytes(body))
            offset += len(body)
    font = bytearray(header + records + b"".join(bodies))
    head_at = next(
        (
            struct.unpack(">I", records[16 * n + 8 : 16 * n + 12])[0]
            for n in range(count)
            if tables[n].tag == b"head"
        ),
        None,
    )
    if head_at is not None:
        adjustment = (_CHECKSUM_MAGIC - _checksum(bytes(font))) & 0xFFFFFFFF
        font[head_at + _HEAD_ADJUSTMENT_AT : head_at + _HEAD_ADJUSTMENT_AT + 4] = struct.pack(
            ">I", adjustment
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(bytes(font))
    partial.replace(target)
