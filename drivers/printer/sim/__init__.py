"""A simulated ESC/POS ticket printer, written from the command reference alone.

- ``SimPrinter`` (model.py): parses the byte stream into printed items, answers DLE EOT, and
  has hooks: ``pull_paper``, ``near_end``, ``load_paper``, ``go_offline``, ``come_online``,
  ``open_cover``, ``close_cover``, ``jam_cutter``, ``run_out_after``.
- ``python -m drivers.printer.sim``: the printer behind a pty, with a JSON control socket.
- ``PrinterSimControl`` (control.py): the client for that socket.
- backend ``"sim"`` in the printer settings: the same model in-process.
"""

from drivers.printer.sim.control import PrinterSimControl, SimControlError
from drivers.printer.sim.model import SimPrinter, raster_image

__all__ = ["PrinterSimControl", "SimControlError", "SimPrinter", "raster_image"]
