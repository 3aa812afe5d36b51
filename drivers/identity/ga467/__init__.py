"""GA 467 certified ID-card reader (SAM module on a UART or USB-serial line).

    reader = Ga467Reader(Ga467Settings(url="/dev/ttyUSB0"), hasher)
    with reader:
        print(reader.sam_status())             # the SAM id
        identity = reader.read(timeout_s=10)   # Identity(source=GA467, id_hash, masked fields)

- ``codec``: frames (preamble, LEN, XOR CHK) and a streaming parser that resynchronises.
- ``status``: every SW3 code as OK or a typed error with plain zh/en words.
- ``textblock``: the 256-byte UCS-2 text block, GB 11643 check digit verified.
- ``sim`` / ``sim_runner``: a simulated reader with synthetic cards, on a pty
  (``python -m drivers.identity.ga467.sim_runner``), controlled over a JSON socket.
"""

from drivers.identity.ga467.codec import (
    BadChecksum,
    BadLength,
    Ga467FrameError,
    ShortReply,
    UnexpectedReply,
)
from drivers.identity.ga467.reader import Ga467Reader
from drivers.identity.ga467.settings import Ga467Settings
from drivers.identity.ga467.status import (
    CardAuthFailed,
    CardNotFound,
    CardReadError,
    CommandRefused,
    Ga467StatusError,
    ReaderInternalError,
    RequestDamaged,
    SamFault,
    UnknownStatus,
    WrongCardType,
)
from drivers.identity.ga467.textblock import BadCheckDigit, CardDataInvalid, UnsupportedCard

__all__ = [
    "BadCheckDigit",
    "BadChecksum",
    "BadLength",
    "CardAuthFailed",
    "CardDataInvalid",
    "CardNotFound",
    "CardReadError",
    "CommandRefused",
    "Ga467FrameError",
    "Ga467Reader",
    "Ga467Settings",
    "Ga467StatusError",
    "ReaderInternalError",
    "RequestDamaged",
    "SamFault",
    "ShortReply",
    "UnexpectedReply",
    "UnknownStatus",
    "UnsupportedCard",
    "WrongCardType",
]
