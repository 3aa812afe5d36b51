"""Package re-exports resolved on first use (PEP 562).

A package's ``__init__`` re-exports its public names, but importing its *settings* module (which
every process does at start-up, to validate the whole config) must not import its backends:
python-escpos, http.server, ssl and gpiozero cost the kiosk a third of a second before its first
frame. So the heavy names are listed here and imported when first touched::

    if TYPE_CHECKING:  # what mypy and readers see
        from drivers.printer.printer import TicketPrinter, open_printer
    __getattr__, __dir__ = lazy_exports(
        __name__, {"drivers.printer.printer": ("TicketPrinter", "open_printer")}
    )

``from drivers.printer import open_printer`` works as before; the first such import pays for the
backend module, once. The package's own functions must import such a name locally: a module's
``__getattr__`` serves attribute lookups from outside, never its own global names.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping


def lazy_exports(
    package: str, modules: Mapping[str, Iterable[str]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module ``__getattr__`` and ``__dir__`` for ``package`` serving ``modules``' names."""
    where = {name: module for module, names in modules.items() for name in names}

    def module_getattr(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup is an ordinary one
        return value

    def module_dir() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return module_getattr, module_dir
