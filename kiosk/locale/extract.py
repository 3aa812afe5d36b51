"""Find every msgid the kiosk's code can show: ``Msg("...")`` and ``Msg.of("...", ...)``.

Read with ``ast``, so nothing is imported or run. A call whose msgid is not a string literal
cannot be translated ahead of time; it is reported as ``Dynamic`` with its place.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Found:
    msgid: str
    place: str  # "kiosk/flows/tickets.py:42"


@dataclass(frozen=True)
class Dynamic:
    place: str
    source: str


def _is_msg_call(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "Msg"
    if isinstance(func, ast.Attribute) and func.attr == "of":
        owner = func.value
        return (isinstance(owner, ast.Name) and owner.id == "Msg") or (
            isinstance(owner, ast.Attribute) and owner.attr == "Msg"
        )
    return isinstance(func, ast.Attribute) and func.attr == "Msg"


def _msgid_node(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((kw.value for kw in call.keywords if kw.arg == "msgid"), None)


def scan_source(source: str, place: str) -> tuple[list[Found], list[Dynamic]]:
    found: list[Found] = []
    dynamic: list[Dynamic] = []
    for node in ast.walk(ast.parse(source, filename=place)):
        if not isinstance(node, ast.Call) or not _is_msg_call(node):
            continue
        arg = _msgid_node(node)
        where = f"{place}:{node.lineno}"
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            found.append(Found(arg.value, where))
        elif arg is not None:
            dynamic.append(Dynamic(where, ast.unparse(arg)))
    return found, dynamic


def scan_files(paths: Iterable[Path], relative_to: Path) -> tuple[list[Found], list[Dynamic]]:
    found: list[Found] = []
    dynamic: list[Dynamic] = []
    for path in sorted(paths):
        place = path.relative_to(relative_to).as_posix()
        more, odd = scan_source(path.read_text(encoding="utf-8"), place)
        found.extend(more)
        dynamic.extend(odd)
    return found, dynamic


def scan_package(package_dir: Path) -> tuple[list[Found], list[Dynamic]]:
    """Every ``.py`` under ``package_dir``; places are relative to its parent (``kiosk/...``)."""
    return scan_files(package_dir.rglob("*.py"), package_dir.parent)


def msgids_in_order(found: Iterable[Found]) -> dict[str, list[str]]:
    """msgid -> the places it appears, in first-seen order."""
    places: dict[str, list[str]] = {}
    for item in found:
        places.setdefault(item.msgid, []).append(item.place)
    return places
