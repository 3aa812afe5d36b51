"""A simulated GA 467 reader: the reader side of the byte protocol, with synthetic cards.

Its framing is written here from the hardware notes and shares no code with ``codec.py``, so a
codec bug cannot hide behind the same bug in the simulator. Only the text block comes from
``textblock.build_text_block`` (a builder the parser's own tests check byte by byte).

``Ga467Sim`` is pure and I/O-free: ``handle`` takes the bytes the host sent and returns reply
frames. ``sim_runner.SimRunner`` serves it on a pty. Hooks (thread-safe): ``present_card``,
``remove_card``, ``fail_next``, ``garble_next``, ``set_silent``; records: ``commands``,
``snapshot``.

Cards are synthetic: region codes 99xxxx (no such province exists, so no generated number can
be a real person's), check digits valid unless a test asks otherwise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, get_args

from drivers.identity.ga467.textblock import LONG_TERM, build_text_block
from hallkiosk.privacy import gb11643_check_digit, mask_id_number, mask_name

_PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
_MAX_REQUEST_LEN = 0x100  # requests are short; a larger LEN is a damaged frame

GarbleMode = Literal["checksum", "short", "noise", "length", "resync"]
GARBLE_MODES: tuple[str, ...] = get_args(GarbleMode)
FailOn = Literal["any", "sam", "find", "select", "read"]
FAIL_ON: tuple[str, ...] = get_args(FailOn)
# where an injected SW3 lands by default: the command that really produces it
_DEFAULT_FAIL_ON: Mapping[int, FailOn] = {
    0x80: "find",
    0x81: "select",
    **dict.fromkeys((0x31, 0x32, 0x33, 0x40, 0x41, 0x47), "read"),
}
# 05.01-20230101-0000000001-2345678901 in the usual printed form (see reader.format_sam_id)
DEFAULT_SAM_ID = (
    (5).to_bytes(2, "little")
    + (1).to_bytes(2, "little")
    + (20230101).to_bytes(4, "little")
    + (1).to_bytes(4, "little")
    + (2345678901).to_bytes(4, "little")
)
_NOISE = b"\x55\xaa\x00\xaa\xaa\xaa\x96"  # ends like a preamble, to test the host's resync

_REFERENCE_YEAR = 2025
_SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
_DOUBLE_SURNAMES = ("欧阳", "司马", "上官", "诸葛")
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰秀建国"


@dataclass(frozen=True, repr=False)
class SimCard:
    """A card's text fields as they would be printed on it; dates as ``YYYYMMDD``."""

    name: str
    sex: str
    nation_code: str
    birth_date: str
    address: str
    id_number: str
    authority: str
    valid_from: str
    valid_to: str  # YYYYMMDD or 长期
    kind_flag: str = ""  # "" resident ID card, "J" residence permit, "I" foreigner's card

    @classmethod
    def synthetic(cls, seed: int, **overrides: str) -> SimCard:
        """A made-up person, the same for the same seed; ``overrides`` replace fields."""
        rnd = random.Random(seed)
        surname = rnd.choice(_DOUBLE_SURNAMES) if rnd.random() < 0.1 else rnd.choice(_SURNAMES)
        name = surname + "".join(rnd.choice(_GIVEN) for _ in range(rnd.randint(1, 2)))
        born = date(1935, 1, 1) + timedelta(days=rnd.randrange(365 * 70))  # up to 2004
        sequence = rnd.randrange(1000)
        sex = "1" if sequence % 2 else "2"  # GB 11643: odd sequence code for men
        region = f"99{rnd.randrange(10_000):04d}"
        # 第二代 cards exist since 2004; keep every date in the past of _REFERENCE_YEAR
        first_age = max(16, 2004 - born.year)
        issued_at_age = rnd.randint(first_age, max(first_age, _REFERENCE_YEAR - born.year - 1))
        issued = _add_years(born, issued_at_age) + timedelta(days=rnd.randrange(300))
        # validity by age at issue: 16-25 ten years, 26-45 twenty, 46 and older 长期
        years = 10 if issued_at_age <= 25 else 20 if issued_at_age <= 45 else None
        fields = {
            "name": name,
            "sex": sex,
            "nation_code": f"{rnd.choice((1, 1, 1, 2, 3, 5, 8, 11)):02d}",
            "birth_date": born.strftime("%Y%m%d"),
            "address": f"测试省模拟市示例区样板路{rnd.randint(1, 999)}号{rnd.randint(1, 30)}栋",
            "id_number": synthetic_id_number(region, born, sequence),
            "authority": "模拟市公安局示例分局",
            "valid_from": issued.strftime("%Y%m%d"),
            "valid_to": LONG_TERM
            if years is None
            else _add_years(issued, years).strftime("%Y%m%d"),
        }
        fields.update(overrides)
        return cls(**fields)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimCard:
        """From a control request: string fields; missing ones come from ``synthetic(seed)``."""
        names = {field.name for field in dataclasses.fields(cls)}
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("card: 'seed' must be an integer")
        overrides = {key: value for key, value in data.items() if key != "seed"}
        unknown = set(overrides) - names
        if unknown:
            raise ValueError(f"card: unknown fields {sorted(unknown)}")
        for key, value in overrides.items():
            if not isinstance(value, str):
                raise ValueError(f"card: '{key}' must be a string")
        card = cls.synthetic(seed, **overrides)
        card.text_block()  # refuse fields that do not fit now, not at the first read
        return card

    def text_block(self) -> bytes:
        return build_text_block(**dataclasses.asdict(self))

    def photo(self) -> bytes:
        """1,024 bytes standing in for the encoded WLT photo (nobody decodes it)."""
        seed = hashlib.sha256(self.id_number.encode()).digest()
        return b"WLT" + (seed * 33)[: 1024 - 3]

    def describe(self) -> dict[str, str]:
        """Masked fields only, for logs and control answers."""
        return {
            "name_masked": mask_name(self.name),
            "id_masked": mask_id_number(self.id_number),
            "kind": self.kind_flag or "resident",
        }

    def __repr__(self) -> str:
        return f"SimCard({self.describe()})"


def synthetic_id_number(region: str, born: date, sequence: int) -> str:
    """18 characters with a valid GB 11643 check digit."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + gb11643_check_digit(first17)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _frame(sw3: int, data: bytes = b"") -> bytes:
    body = bytes([0x00, 0x00, sw3]) + data
    length = len(body) + 1
    head = bytes([length >> 8, length & 0xFF])
    chk = 0
    for byte in head + body:
        chk ^= byte
    return _PREAMBLE + head + body + bytes([chk])


def _category(cmd: int, para: int) -> FailOn | None:
    if cmd in (0x10, 0x11, 0x12):
        return "sam"
    if (cmd, para) == (0x20, 0x01):
        return "find"
    if (cmd, para) == (0x20, 0x02):
        return "select"
    if cmd == 0x30:
        return "read"
    return None


class Ga467Sim:
    def __init__(self, card: SimCard | None = None, *, sam_id: bytes = DEFAULT_SAM_ID) -> None:
        self._lock = threading.Lock()
        self._rx = bytearray()
        self._card = card
        self._selected = False
        self._sam_id = sam_id
        self._failures: deque[tuple[int, FailOn]] = deque()
        self._garbles: deque[tuple[GarbleMode, FailOn]] = deque()
        self._silent = False
        self._commands: list[str] = []

    # -- hooks ----------------------------------------------------------------------------------

    def present_card(self, card: SimCard | None = None) -> SimCard:
        """Lay a card on the reader (``SimCard.synthetic(0)`` by default), replacing any other."""
        card = card if card is not None else SimCard.synthetic(0)
        with self._lock:
            self._card = card
            self._selected = False
        return card

    def remove_card(self) -> None:
        with self._lock:
            self._card = None
            self._selected = False

    def fail_next(self, sw3: int, count: int = 1, on: FailOn | None = None) -> None:
        """Answer the next ``count`` commands of kind ``on`` with ``sw3`` and no data.

        ``on`` defaults to the command that really produces the code: 0x80 the find, 0x81 the
        select, card errors (0x31-0x47) the read, anything else the very next command.
        """
        if not 0 <= sw3 <= 0xFF:
            raise ValueError("sw3 is one byte")
        if count < 0:
            raise ValueError("count must be >= 0")
        target: FailOn = on if on is not None else _DEFAULT_FAIL_ON.get(sw3, "any")
        if target not in FAIL_ON:
            raise ValueError(f"on must be one of {FAIL_ON}")
        with self._lock:
            self._failures.extend([(sw3, target)] * count)

    def garble_next(
        self, mode: GarbleMode = "checksum", count: int = 1, on: FailOn = "any"
    ) -> None:
        """Damage the next ``count`` replies to commands of kind ``on``.

        ``checksum``: wrong CHK. ``short``: only the first half is sent. ``noise``: bytes that
        look like a preamble come first (the frame itself is fine). ``length``: LEN is FFFF.
        ``resync``: a copy with a wrong CHK, then the good frame.
        """
        if mode not in GARBLE_MODES:
            raise ValueError(f"mode must be one of {GARBLE_MODES}")
        if on not in FAIL_ON:
            raise ValueError(f"on must be one of {FAIL_ON}")
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._garbles.extend([(mode, on)] * count)

    def set_silent(self, silent: bool = True) -> None:
        """A reader that takes commands and never answers (a hung SAM, a wrong baud)."""
        with self._lock:
            self._silent = silent

    # -- records --------------------------------------------------------------------------------

    def commands(self, *, clear: bool = False) -> list[str]:
        """Commands received, as ``"20 01"``; bad frames as ``"bad checksum"``/``"bad length"``."""
        with self._lock:
            seen = list(self._commands)
            if clear:
                self._commands.clear()
            return seen

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "card": None if self._card is None else self._card.describe(),
                "selected": self._selected,
                "silent": self._silent,
                "pending_failures": [f"0x{sw3:02X} on {on}" for sw3, on in self._failures],
                "pending_garbles": [f"{mode} on {on}" for mode, on in self._garbles],
                "commands": len(self._commands),
            }

    # -- wire -----------------------------------------------------------------------------------

    def handle(self, data: bytes) -> list[bytes]:
        """Feed bytes from the host; return the reply frames to write, in order."""
        with self._lock:
            self._rx += data
            out: list[bytes] = []
            for kind, reply in self._take_requests():
                if not self._silent:
                    out.append(self._garbled(reply, kind))
            return out

    def _take_requests(self) -> list[tuple[FailOn | None, bytes]]:
        """Complete requests out of the receive buffer, each with its kind and reply."""
        rx = self._rx
        replies: list[tuple[FailOn | None, bytes]] = []
        while True:
            start = rx.find(_PREAMBLE)
            if start < 0:
                del rx[: max(0, len(rx) - (len(_PREAMBLE) - 1))]
                return replies
            del rx[:start]
            if len(rx) < 7:
                return replies
            length = (rx[5] << 8) | rx[6]
            if not 3 <= length <= _MAX_REQUEST_LEN:
                del rx[:1]
                self._commands.append("bad length")
                replies.append((None, _frame(0x11)))
                continue
            if len(rx) < 7 + length:
                return replies
            frame = bytes(rx[: 7 + length])
            del rx[: 7 + length]
            chk = 0
            for byte in frame[5:-1]:
                chk ^= byte
            if chk != frame[-1]:
                self._commands.append("bad checksum")
                replies.append((None, _frame(0x10)))
                continue
            kind = _category(frame[7], frame[8])
            replies.append((kind, self._dispatch(frame[7], frame[8], kind)))

    def _dispatch(self, cmd: int, para: int, kind: FailOn | None) -> bytes:
        self._commands.append(f"{cmd:02X} {para:02X}")
        if self._failures and self._failures[0][1] in ("any", kind):
            sw3, _ = self._failures.popleft()
            if kind in ("find", "select"):
                self._selected = False
            return _frame(sw3)
        card = self._card
        match cmd, para:
            case (0x10 | 0x11, 0xFF):  # reset SAM, SAM status
                return _frame(0x90)
            case (0x12, 0xFF):
                return _frame(0x90, self._sam_id)
            case (0x20, 0x01):
                return _frame(0x9F, bytes(4)) if card else _frame(0x80)
            case (0x20, 0x02):
                self._selected = card is not None
                return _frame(0x90, bytes(8)) if card else _frame(0x81)
            case (0x30, 0x01 | 0x10) if card is None or not self._selected:
                return _frame(0x41)
            case (0x30, 0x01) if card is not None:
                lengths = (256).to_bytes(2, "big") + (1024).to_bytes(2, "big")
                return _frame(0x90, lengths + card.text_block() + card.photo())
            case (0x30, 0x10) if card is not None:  # no fingerprint on a synthetic card
                lengths = b"\x01\x00\x04\x00\x00\x00"
                return _frame(0x90, lengths + card.text_block() + card.photo())
            case (0x30, 0x03):
                return _frame(0x91) if card and self._selected else _frame(0x41)
            case (0x60, 0x00 | 0x01 | 0x02 | 0x03 | 0x04):  # a pty has no line rate
                return _frame(0x90)
        return _frame(0x21)

    def _garbled(self, reply: bytes, kind: FailOn | None) -> bytes:
        if not self._garbles or self._garbles[0][1] not in ("any", kind):
            return reply
        mode, _ = self._garbles.popleft()
        if mode == "checksum":
            return reply[:-1] + bytes([reply[-1] ^ 0xFF])
        if mode == "short":
            return reply[: max(8, len(reply) // 2)]
        if mode == "noise":
            return _NOISE + reply
        if mode == "length":
            return reply[:5] + b"\xff\xff" + reply[7:]
        return reply[:-1] + bytes([reply[-1] ^ 0xFF]) + reply  # resync
