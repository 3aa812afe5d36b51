"""The voice interface and the record of one spoken prompt.

``say()`` never waits for speech: it returns an ``Utterance`` at once and the prompt plays in the
background. The next ``say()`` (or ``stop()``) interrupts the one playing, so a user who taps on
never hears a queue of stale prompts.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from enum import StrEnum
from types import TracebackType

from drivers.voice.errors import VoiceTextError
from drivers.voice.settings import Lang, VoiceSettings


class UtteranceState(StrEnum):
    PENDING = "pending"  # accepted, the process is not started yet
    SPEAKING = "speaking"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # stopped by a newer prompt, stop() or close()
    FAILED = "failed"

    @property
    def done(self) -> bool:
        return self in (UtteranceState.FINISHED, UtteranceState.INTERRUPTED, UtteranceState.FAILED)


class Utterance:
    """One prompt. Its state moves PENDING -> SPEAKING -> one final state, exactly once; the
    first final state wins (a process that exits as it is killed stays "interrupted")."""

    def __init__(
        self, seq: int, text: str, lang: Lang, voice: str, wav_path: str | None = None
    ) -> None:
        self.seq = seq
        self.text = text
        self.lang: Lang = lang
        self.voice = voice
        self.wav_path = wav_path
        self.started_s: float | None = None  # monotonic, when its process began
        self.ended_s: float | None = None
        self.error = ""  # why it failed (process stderr tail)
        self.pids: tuple[int, ...] = ()
        self._state = UtteranceState.PENDING
        self._lock = threading.Lock()
        self._done = threading.Event()

    @property
    def state(self) -> UtteranceState:
        return self._state

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until a final state (for tools and tests; the kiosk never needs to)."""
        return self._done.wait(timeout_s)

    def mark_started(self, now: float) -> bool:
        with self._lock:
            if self._state is not UtteranceState.PENDING:
                return False
            self._state = UtteranceState.SPEAKING
            self.started_s = now
            return True

    def mark_done(self, state: UtteranceState, now: float, error: str = "") -> bool:
        assert state.done
        with self._lock:
            if self._state.done:
                return False
            self._state = state
            self.ended_s = now
            self.error = error
        self._done.set()
        return True

    def __repr__(self) -> str:
        return f"<Utterance #{self.seq} {self.lang} {self._state.value}>"


class Voice(ABC):
    def __init__(self, settings: VoiceSettings, monotonic: Callable[[], float]) -> None:
        self.settings = settings
        self._monotonic = monotonic
        self._seq = 0

    @abstractmethod
    def say(self, text: str, lang: Lang = "zh") -> Utterance:
        """Start speaking ``text`` and return at once; interrupts the prompt playing now."""

    @abstractmethod
    def stop(self) -> None:
        """Interrupt whatever is playing or about to play."""

    @abstractmethod
    def close(self) -> None:
        """Stop, and release the worker; later say() raises VoiceClosed."""

    @property
    @abstractmethod
    def current(self) -> Utterance | None:
        """The newest prompt that is not finished yet, if any."""

    def _new_utterance(self, text: str, lang: Lang, wav_dir: str | None = None) -> Utterance:
        text = text.strip()
        if not text:
            raise VoiceTextError("nothing to say")
        if len(text) > self.settings.max_text_chars:
            raise VoiceTextError(
                f"prompt of {len(text)} characters; the limit is {self.settings.max_text_chars}"
            )
        if lang not in ("zh", "en"):
            raise VoiceTextError(f"unknown prompt language {lang!r} (zh or en)")
        self._seq += 1
        wav = f"{wav_dir}/prompt-{self._seq:04d}-{lang}.wav" if wav_dir else None
        return Utterance(self._seq, text, lang, self.settings.voice_for(lang), wav)

    def __enter__(self) -> Voice:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
