"""Pick one face out of a font collection (``.ttc``) and write it as a standalone font file,
with its CFF outlines flattened (``flatten_cff``).

Kivy's SDL2 text provider opens face 0 of a collection, and face 0 of Noto Sans CJK is the
Japanese one: several common characters (直, 令, 骨, 写 ...) are drawn the Japanese way. The
Simplified Chinese face is found by its family name and copied out, table by table.

Kivy opens one FreeType face per font size, and FreeType copies every local subroutine of a
CFF font into memory when it opens a face: for Noto Sans CJK (45,000 subroutines in 18 font
dicts) that is ~1.8 of the ~2.5 MiB each size costs. ``flatten_cff`` writes each glyph's
charstring with the subroutines it calls inlined, and drops the subroutines: the same outlines
and hints, every glyph kept, ~2 MB more on disk, ~0.7 MiB per open size.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping
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


def read_table(source: Path, face: Face, tag: bytes) -> bytes | None:
    """The bytes of ``face``'s table ``tag`` (e.g. ``b"CFF "``), None if it has none."""
    table = next((t for t in face.tables if t.tag == tag), None)
    if table is None:
        return None
    with source.open("rb") as f:
        return _read_at(f, table.offset, table.length)


def extract_face(
    source: Path, face: Face, target: Path, replace: Mapping[bytes, bytes] | None = None
) -> None:
    """Write ``face`` of ``source`` as a standalone sfnt file at ``target`` (atomically), with
    the tables in ``replace`` (tag -> bytes) instead of the face's own."""
    replace = replace or {}
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
            new = replace.get(table.tag)
            data = new if new is not None else _read_at(f, table.offset, table.length)
            body = bytearray(data)
            if table.tag == b"head":
                body[_HEAD_ADJUSTMENT_AT : _HEAD_ADJUSTMENT_AT + 4] = b"\0\0\0\0"
            checksum = table.checksum if new is None else _checksum(bytes(body))
            records += struct.pack(">4s3I", table.tag, checksum, offset, len(body))
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
    # a name of its own: two processes preparing the same face must not write into one file
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        partial.write_bytes(bytes(font))
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


# -- CFF: inlining subroutines ---------------------------------------------------------------
#
# Adobe Technical Notes #5176 (CFF) and #5177 (Type 2 charstrings). Only what a CID-keyed CFF
# (Noto Sans CJK, Source Han Sans) needs; anything else raises FontFileError and the caller
# keeps the font as it is.

_OP_CHARSET = 15
_OP_CHARSTRINGS = 17
_OP_PRIVATE = 18
_OP_SUBRS = 19
_OP_ROS = 1230  # two-byte operators: 1200 + second byte
_OP_FDARRAY = 1236
_OP_FDSELECT = 1237
_OFFSET_OPS = (_OP_CHARSET, _OP_CHARSTRINGS, _OP_FDARRAY, _OP_FDSELECT)
_MAX_SUBR_DEPTH = 10  # Type 2 charstrings nest subroutine calls 10 deep at most
_CALLSUBR, _RETURN, _ENDCHAR, _CALLGSUBR = 10, 11, 14, 29
_STEM_OPS = frozenset((1, 3, 18, 23))  # hstem vstem hstemhm vstemhm
_MASK_OPS = frozenset((19, 20))  # hintmask cntrmask: followed by one bit per stem


@dataclass(frozen=True)
class _Entry:
    op: int
    operands: tuple[float, ...]
    raw: bytes  # operands and operator as they were encoded


def _index(data: bytes, at: int) -> tuple[list[tuple[int, int]], int]:
    """An INDEX at ``at``: its items' (start, end) and where it ends."""
    if at + 2 > len(data):
        raise FontFileError("truncated CFF INDEX")
    (count,) = struct.unpack_from(">H", data, at)
    if count == 0:
        return [], at + 2
    size = data[at + 2]
    if not 1 <= size <= 4:
        raise FontFileError(f"bad CFF offset size {size}")
    start = at + 3
    offsets = [
        int.from_bytes(data[start + size * n : start + size * (n + 1)], "big")
        for n in range(count + 1)
    ]
    base = start + size * (count + 1) - 1  # offsets count from 1
    if base + offsets[-1] > len(data):
        raise FontFileError("truncated CFF INDEX")
    return [(base + offsets[n], base + offsets[n + 1]) for n in range(count)], base + offsets[-1]


def _encode_index(items: list[bytes]) -> bytes:
    if not items:
        return b"\0\0"
    end = 1 + sum(map(len, items))
    size = next(n for n in (1, 2, 3, 4) if end < 1 << (8 * n))
    offsets = bytearray()
    at = 1
    for item in [b"", *items]:
        at += len(item)
        offsets += at.to_bytes(size, "big")
    return struct.pack(">HB", len(items), size) + bytes(offsets) + b"".join(items)


_NIBBLES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", ".", "E", "E-", "?", "-")


def _real(data: bytes, at: int) -> tuple[float, int]:
    """A real number operand (nibbles, ended by 0xF) starting at ``at``, and where it ends."""
    text = ""
    while True:
        if at >= len(data):
            raise FontFileError("truncated CFF real number")
        byte = data[at]
        at += 1
        for nibble in (byte >> 4, byte & 0xF):
            if nibble == 0xF:
                try:
                    return (float(text) if text else 0.0), at
                except ValueError:
                    raise FontFileError(f"bad CFF real number {text!r}") from None
            text += _NIBBLES[nibble]


def _dict(data: bytes) -> list[_Entry]:
    entries: list[_Entry] = []
    operands: list[float] = []
    start = at = 0
    while at < len(data):
        b0 = data[at]
        if b0 <= 21:
            if b0 == 12:
                if at + 1 >= len(data):
                    raise FontFileError("truncated CFF DICT")
                op, at = 1200 + data[at + 1], at + 2
            else:
                op, at = b0, at + 1
            entries.append(_Entry(op, tuple(operands), data[start:at]))
            operands, start = [], at
        elif b0 == 28:
            operands.append(struct.unpack_from(">h", data, at + 1)[0])
            at += 3
        elif b0 == 29:
            operands.append(struct.unpack_from(">i", data, at + 1)[0])
            at += 5
        elif b0 == 30:
            value, at = _real(data, at + 1)
            operands.append(value)
        elif 32 <= b0 <= 246:
            operands.append(b0 - 139)
            at += 1
        elif 247 <= b0 <= 254:
            if at + 1 >= len(data):
                raise FontFileError("truncated CFF DICT")
            magnitude = (b0 - 247 if b0 <= 250 else b0 - 251) * 256 + data[at + 1] + 108
            operands.append(magnitude if b0 <= 250 else -magnitude)
            at += 2
        else:
            raise FontFileError(f"bad CFF DICT byte {b0}")
    return entries


def _op_bytes(op: int) -> bytes:
    return bytes((12, op - 1200)) if op >= 1200 else bytes((op,))


def _with_offsets(entries: list[_Entry], values: Mapping[int, tuple[int, ...]]) -> bytes:
    """A DICT with the operands of the operators in ``values`` replaced, as 5-byte integers
    (so its length does not depend on them); the other entries as they were."""
    out = bytearray()
    for entry in entries:
        if entry.op in values:
            for value in values[entry.op]:
                out += b"\x1d" + struct.pack(">i", value)
            out += _op_bytes(entry.op)
        else:
            out += entry.raw
    return bytes(out)


def _find(entries: list[_Entry], op: int) -> tuple[float, ...] | None:
    return next((e.operands for e in entries if e.op == op), None)


def _int_operands(entries: list[_Entry], op: int, count: int) -> tuple[int, ...]:
    found = _find(entries, op)
    if found is None or len(found) != count or any(v != int(v) or v < 0 for v in found):
        raise FontFileError(f"bad or missing CFF operator {op}")
    return tuple(int(v) for v in found)


def _bias(count: int) -> int:
    return 107 if count < 1240 else 1131 if count < 33900 else 32768


def _charset_length(cff: bytes, at: int, glyphs: int) -> int:
    kind = cff[at]
    if kind == 0:
        return 1 + 2 * (glyphs - 1)
    if kind not in (1, 2):
        raise FontFileError(f"bad CFF charset format {kind}")
    covered, end = 1, at + 1  # .notdef is implied
    while covered < glyphs:
        if end + 3 > len(cff):
            raise FontFileError("truncated CFF charset")
        left = cff[end + 2] if kind == 1 else struct.unpack_from(">H", cff, end + 2)[0]
        covered += left + 1
        end += 3 if kind == 1 else 4
    return end - at


def _fd_select(cff: bytes, at: int, glyphs: int) -> tuple[list[int], int]:
    """Each glyph's font dict, and the FDSelect's length."""
    kind = cff[at]
    if kind == 0:
        return list(cff[at + 1 : at + 1 + glyphs]), 1 + glyphs
    if kind != 3:
        raise FontFileError(f"bad CFF FDSelect format {kind}")
    (ranges,) = struct.unpack_from(">H", cff, at + 1)
    firsts = [struct.unpack_from(">HB", cff, at + 3 + 3 * n) for n in range(ranges)]
    (sentinel,) = struct.unpack_from(">H", cff, at + 3 + 3 * ranges)
    select = [0] * glyphs
    for n, (first, fd) in enumerate(firsts):
        last = firsts[n + 1][0] if n + 1 < ranges else sentinel
        select[first:last] = [fd] * (last - first)
    return select[:glyphs], 5 + 3 * ranges


class _Inliner:
    """Writes one glyph's charstring with every ``callsubr``/``callgsubr`` replaced by the
    subroutine's body (without its ``return``). The bytes are copied as they are; the only
    state kept is what finding a ``hintmask``'s length needs: the number of stems."""

    def __init__(self, global_subrs: list[bytes], local_subrs: list[list[bytes]]) -> None:
        self.global_subrs = global_subrs
        self.global_bias = _bias(len(global_subrs))
        self.local_subrs = local_subrs
        self.local_bias = [_bias(len(subrs)) for subrs in local_subrs]

    def glyph(self, charstring: bytes, fd: int) -> bytes:
        if fd >= len(self.local_subrs):
            raise FontFileError(f"glyph in font dict {fd} of {len(self.local_subrs)}")
        self.out = bytearray()
        self.fd = fd
        self.stems = 0
        self.operands = 0  # on the stack since the last operator
        self.hints_closed = False  # after the first hintmask no stem is declared
        self._run(charstring, 0)
        return bytes(self.out)

    def _run(self, code: bytes, depth: int) -> bool:
        """Copy ``code`` into ``out``; True once ``endchar`` ends the glyph."""
        out = self.out
        at, end = 0, len(code)
        number_at = -1  # where the last operand starts in ``out``, if it was the last token
        number: int | None = None
        while at < end:
            b0 = code[at]
            if b0 >= 32 or b0 == 28:
                size = 1 if b0 <= 246 else 2 if b0 <= 254 else 5
                if b0 == 28:
                    size, number = 3, struct.unpack_from(">h", code, at + 1)[0]
                elif b0 <= 246:
                    number = b0 - 139
                elif b0 <= 254:
                    magnitude = (b0 - 247 if b0 <= 250 else b0 - 251) * 256 + code[at + 1] + 108
                    number = magnitude if b0 <= 250 else -magnitude
                else:
                    number = None  # a 16.16 fixed number: never a subroutine index
                number_at = len(out)
                out += code[at : at + size]
                at += size
                self.operands += 1
                continue
            if b0 in (_CALLSUBR, _CALLGSUBR):
                if number is None or number_at < 0:
                    raise FontFileError("subroutine call without a literal index")
                del out[number_at:]
                self.operands -= 1
                if depth >= _MAX_SUBR_DEPTH:
                    raise FontFileError("subroutines nested too deep")
                subrs, bias = (
                    (self.local_subrs[self.fd], self.local_bias[self.fd])
                    if b0 == _CALLSUBR
                    else (self.global_subrs, self.global_bias)
                )
                index = number + bias
                if not 0 <= index < len(subrs):
                    raise FontFileError(f"subroutine {number} out of range")
                at += 1
                number_at, number = -1, None
                if self._run(subrs[index], depth + 1):
                    return True
                continue
            number_at, number = -1, None
            if b0 == _RETURN:
                return False
            if b0 == _ENDCHAR:
                out.append(b0)
                return True
            if b0 in _STEM_OPS:
                self.stems += self.operands // 2
            elif b0 in _MASK_OPS:
                if not self.hints_closed:  # operands left here are an implied vstem
                    self.stems += self.operands // 2
                    self.hints_closed = True
                size = 1 + (self.stems + 7) // 8
                out += code[at : at + size]
                at += size
                self.operands = 0
                continue
            size = 2 if b0 == 12 else 1
            out += code[at : at + size]
            at += size
            self.operands = 0
        return False


def flatten_cff(cff: bytes) -> bytes | None:
    """``cff``, a CID-keyed 'CFF ' table, rewritten without subroutines: every glyph's
    charstring with the subroutines it calls inlined, the global and local subroutines dropped.
    None if it has no subroutines or is not CID-keyed (nothing to gain). Raises FontFileError
    on anything it does not understand."""
    try:
        return _flatten_cff(cff)
    except (struct.error, IndexError) as error:  # read past the end of a table
        raise FontFileError(f"truncated CFF table: {error}") from None


def _flatten_cff(cff: bytes) -> bytes | None:
    if len(cff) < 4 or cff[0] != 1:
        raise FontFileError("not a CFF table (version 1)")
    names, at = _index(cff, cff[2])
    tops, at = _index(cff, at)
    strings, at = _index(cff, at)
    global_subrs, _ = _index(cff, at)
    if len(names) != 1 or len(tops) != 1:
        return None  # a font set: not what a font file holds
    top = _dict(cff[tops[0][0] : tops[0][1]])
    if _find(top, _OP_ROS) is None or _find(top, _OP_FDARRAY) is None:
        return None  # name-keyed: not handled
    (charstrings_at,) = _int_operands(top, _OP_CHARSTRINGS, 1)
    (charset_at,) = _int_operands(top, _OP_CHARSET, 1)
    (fd_array_at,) = _int_operands(top, _OP_FDARRAY, 1)
    (fd_select_at,) = _int_operands(top, _OP_FDSELECT, 1)
    if _find(top, _OP_PRIVATE) is not None or _find(top, 16) is not None:
        raise FontFileError("a CID-keyed CFF with a top-level Private or Encoding")
    charstrings, _ = _index(cff, charstrings_at)
    fd_array, _ = _index(cff, fd_array_at)
    font_dicts = [_dict(cff[start:end]) for start, end in fd_array]
    privates: list[list[_Entry]] = []
    local_subrs: list[list[bytes]] = []
    for font_dict in font_dicts:
        size, offset = _int_operands(font_dict, _OP_PRIVATE, 2)
        private = _dict(cff[offset : offset + size])
        privates.append(private)
        subrs = _find(private, _OP_SUBRS)
        items = _index(cff, offset + int(subrs[0]))[0] if subrs else []
        local_subrs.append([cff[start:end] for start, end in items])
    if not global_subrs and not any(local_subrs):
        return None
    glyphs = len(charstrings)
    select, select_length = _fd_select(cff, fd_select_at, glyphs)
    inliner = _Inliner([cff[start:end] for start, end in global_subrs], local_subrs)
    flat = [inliner.glyph(cff[start:end], select[n]) for n, (start, end) in enumerate(charstrings)]

    # header, Name, Top DICT, String, (empty) Global Subr INDEX, charset, FDSelect,
    # CharStrings, the Private DICTs, FDArray
    head = cff[: cff[2]]
    name_index = _encode_index([cff[start:end] for start, end in names])
    string_index = _encode_index([cff[start:end] for start, end in strings])
    charset = cff[charset_at : charset_at + _charset_length(cff, charset_at, glyphs)]
    fd_select = cff[fd_select_at : fd_select_at + select_length]
    charstring_index = _encode_index(flat)
    private_dicts = [_with_offsets([e for e in p if e.op != _OP_SUBRS], {}) for p in privates]
    blank = dict.fromkeys(_OFFSET_OPS, (0,))
    top_index_length = len(_encode_index([_with_offsets(top, blank)]))
    at = len(head) + len(name_index) + top_index_length + len(string_index) + 2
    new_charset_at = at
    new_fd_select_at = new_charset_at + len(charset)
    new_charstrings_at = new_fd_select_at + len(fd_select)
    at = new_charstrings_at + len(charstring_index)
    new_font_dicts = []
    for font_dict, private_dict in zip(font_dicts, private_dicts, strict=True):
        new_font_dicts.append(_with_offsets(font_dict, {_OP_PRIVATE: (len(private_dict), at)}))
        at += len(private_dict)
    offsets = {
        _OP_CHARSET: (new_charset_at,),
        _OP_FDSELECT: (new_fd_select_at,),
        _OP_CHARSTRINGS: (new_charstrings_at,),
        _OP_FDARRAY: (at,),
    }
    top_index = _encode_index([_with_offsets(top, offsets)])
    return b"".join(
        (
            head,
            name_index,
            top_index,
            string_index,
            _encode_index([]),
            charset,
            fd_select,
            charstring_index,
            *private_dicts,
            _encode_index(new_font_dicts),
        )
    )
