"""Board-side simulators for the lock-board families, written from the hardware notes alone.

They deliberately share no code with the host codecs, so a codec bug cannot hide behind the
same bug in the simulator.

- ``SimBus`` (model.py): one simulated RS485 bus: boards, latches, doors, a person who opens doors.
- ``python -m drivers.lockboard.sim``: the bus behind a pty, with a JSON control socket.
- ``SimControl`` (control.py): the client for that socket.
- ``sim://`` (drivers/lockboard/protocol_sim.py): the bus in-process, as a pyserial URL.
"""

from drivers.lockboard.sim.control import SimControl, SimControlError
from drivers.lockboard.sim.model import ChannelState, CoilFire, SimBus

__all__ = ["ChannelState", "CoilFire", "SimBus", "SimControl", "SimControlError"]
