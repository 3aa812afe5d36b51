"""Read and write PO files, and compile them to MO, in pure Python.

Only what the kiosk uses: singular messages, translator comments, ``#:`` references and
``#,`` flags. Plurals and contexts are refused rather than silently mistranslated. The MO
output is deterministic (sorted, no hash table), so a committed ``.mo`` can be checked against a
fresh compile of its ``.po``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace

MO_MAGIC = 0x950412DE
_MO_HEADER_BYTES = 28
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class PoError(ValueError):
    """A PO file this reader does not understand (a syntax error, a plural, a context)."""


@dataclass
class Entry:
    msgid: str
    msgstr: str = ""
    comments: list[str] = field(default_factory=list)  # "# ..." lines, kept as written
    references: list[str] = field(default_factory=list)  # "#: path:line"
    flags: list[str] = field(default_factory=list)  # "#, fuzzy"

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and "fuzzy" not in self.flags


@dataclass
class Catalog:
    header: str
    entries: list[Entry]

    def get(self, msgid: str) -> Entry | None:
        return next((e for e in self.entries if e.msgid == msgid), None)


def header_for(language: str) -> str:
    return (
        "Project-Id-Version: hallkiosk\n"
        f"Language: {language}\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=UTF-8\n"
        "Content-Transfer-Encoding: 8bit\n"
    )


# -- reading -----------------------------------------------------------------------------------


def _unquote(token: str, where: str) -> str:
    if len(token) < 2 or token[0] != '"' or token[-1] != '"':
        raise PoError(f"{where}: expected a quoted string, got {token!r}")
    out: list[str] = []
    chars = iter(token[1:-1])
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")
        if nxt not in _ESCAPES:
            raise PoError(f"{where}: unknown escape \\{nxt}")
        out.append(_ESCAPES[nxt])
    return "".join(out)


def parse_po(text: str, name: str = "<po>") -> Catalog:
    header: str | None = None
    entries: list[Entry] = []
    pending = Entry("")
    keyword = ""  # the keyword the current string continuation belongs to
    values: dict[str, str] = {}

    def flush(lineno: int) -> None:
        nonlocal pending, values, header, keyword
        if "msgid" in values:
            if "msgstr" not in values:
                raise PoError(f"{name}:{lineno}: msgid without msgstr")
            if values["msgid"] == "":
                header = values["msgstr"]
            else:
                pending.msgid, pending.msgstr = values["msgid"], values["msgstr"]
                entries.append(pending)
        elif pending.comments or pending.references or pending.flags:
            pass  # trailing comments with no entry are dropped
        pending, values, keyword = Entry(""), {}, ""

    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{name}:{lineno}"
        if not line:
            flush(lineno)
            continue
        if line.startswith("#"):
            if "msgid" in values:
                flush(lineno)
            if line.startswith("#:"):
                pending.references.extend(line[2:].split())
            elif line.startswith("#,"):
                pending.flags.extend(f.strip() for f in line[2:].split(",") if f.strip())
            elif line.startswith("#~"):
                continue  # obsolete entries are not kept
            else:
                pending.comments.append(raw)
            continue
        if line.startswith('"'):
            if not keyword:
                raise PoError(f"{where}: a string continuation with nothing to continue")
            values[keyword] += _unquote(line, where)
            continue
        word, _, rest = line.partition(" ")
        if word in ("msgid_plural", "msgctxt") or word.startswith("msgstr["):
            raise PoError(f"{where}: {word} is not supported (singular messages only)")
        if word not in ("msgid", "msgstr"):
            raise PoError(f"{where}: unexpected {word!r}")
        if word == "msgid" and "msgid" in values:
            flush(lineno)
        if word in values:
            raise PoError(f"{where}: a second {word} in one entry")
        keyword = word
        values[word] = _unquote(rest.strip(), where)
    flush(len(text.splitlines()) + 1)
    if header is None:
        raise PoError(f'{name}: no header entry (msgid "")')
    seen: set[str] = set()
    for entry in entries:
        if entry.msgid in seen:
            raise PoError(f"{name}: msgid {entry.msgid!r} appears twice")
        seen.add(entry.msgid)
    return Catalog(header, entries)


# -- writing -----------------------------------------------------------------------------------


def _quote(value: str) -> str:
    body = value.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t").replace("\r", "\\r")
    return '"' + body.replace("\n", "\\n") + '"'


def _field(keyword: str, value: str) -> list[str]:
    lines = value.splitlines(keepends=True)
    if len(lines) <= 1:
        return [f"{keyword} {_quote(value)}"]
    return [f'{keyword} ""', *(_quote(part) for part in lines)]


def format_po(catalog: Catalog) -> str:
    out = [*_field("msgid", ""), *_field("msgstr", catalog.header)]
    for entry in catalog.entries:
        out.append("")
        out.extend(entry.comments)
        out.extend(f"#: {ref}" for ref in entry.references)
        if entry.flags:
            out.append("#, " + ", ".join(entry.flags))
        out.extend(_field("msgid", entry.msgid))
        out.extend(_field("msgstr", entry.msgstr))
    return "\n".join(out) + "\n"


def with_entries(catalog: Catalog, entries: list[Entry]) -> Catalog:
    return replace(catalog, entries=entries)


# -- compiling ---------------------------------------------------------------------------------


def compile_mo(catalog: Catalog) -> bytes:
    """GNU MO bytes: the header plus every translated (non-empty, non-fuzzy) entry."""
    pairs = {"": catalog.header}
    pairs.update({e.msgid: e.msgstr for e in catalog.entries if e.translated})
    keys = sorted(pairs, key=lambda k: k.encode("utf-8"))
    ids = [k.encode("utf-8") for k in keys]
    strs = [pairs[k].encode("utf-8") for k in keys]
    count = len(keys)
    ids_table = _MO_HEADER_BYTES
    strs_table = ids_table + 8 * count
    data_start = strs_table + 8 * count
    blob = bytearray()
    id_index: list[tuple[int, int]] = []
    for raw in ids:
        id_index.append((len(raw), data_start + len(blob)))
        blob += raw + b"\0"
    str_index: list[tuple[int, int]] = []
    for raw in strs:
        str_index.append((len(raw), data_start + len(blob)))
        blob += raw + b"\0"
    head = struct.pack("<7I", MO_MAGIC, 0, count, ids_table, strs_table, 0, data_start)
    tables = b"".join(struct.pack("<2I", *pair) for pair in (*id_index, *str_index))
    return head + tables + bytes(blob)
