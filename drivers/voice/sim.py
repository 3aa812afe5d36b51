"""Simulated voice: records every prompt, with the real backend's non-blocking and interrupt
rules, and a simulated duration of ``len(text) / sim_chars_per_s`` seconds.

Hooks for tests and demos: ``history`` (every prompt, oldest first), ``finish_current()`` (end
the playing prompt now, as if it had been spoken), ``fail_next(reason)`` (the next prompt fails,
as with an unplugged speaker).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from drivers.voice.base import Utterance, UtteranceState, Voice
from drivers.voice.errors import VoiceClosed
from drivers.voice.settings import Lang, VoiceSettings


class SimVoice(Voice):
    def __init__(
        self, settings: VoiceSettings, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(settings, monotonic)
        self._lock = threading.Lock()
        self._history: list[Utterance] = []
        self._playing: Utterance | None = None
        self._timer: threading.Timer | None = None
        self._fail_next: str | None = None
        self._closed = False

    def say(self, text: str, lang: Lang = "zh") -> Utterance:
        with self._lock:
            if self._closed:
                raise VoiceClosed("voice is closed")
            utterance = self._new_utterance(text, lang)
            self._interrupt_locked()
            self._history.append(utterance)
            now = self._monotonic()
            utterance.mark_started(now)
            if self._fail_next is not None:
                utterance.mark_done(UtteranceState.FAILED, now, self._fail_next)
                self._fail_next = None
                return utterance
            self._playing = utterance
            duration_s = len(utterance.text) / self.settings.sim_chars_per_s
            self._timer = threading.Timer(duration_s, self._finish, (utterance,))
            self._timer.daemon = True
            self._timer.start()
        return utterance

    def stop(self) -> None:
        with self._lock:
            self._interrupt_locked()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._interrupt_locked()

    @property
    def current(self) -> Utterance | None:
        with self._lock:
            playing = self._playing
        return playing if playing is not None and not playing.state.done else None

    # -- hooks -----------------------------------------------------------------------------

    @property
    def history(self) -> list[Utterance]:
        with self._lock:
            return list(self._history)

    def finish_current(self) -> Utterance | None:
        with self._lock:
            playing = self._playing
        if playing is not None:
            self._finish(playing)
        return playing

    def fail_next(self, reason: str = "simulated speaker fault") -> None:
        with self._lock:
            self._fail_next = reason

    # -- internals -------------------------------------------------------------------------

    def _finish(self, utterance: Utterance) -> None:
        with self._lock:
            if self._playing is utterance:
                self._playing = None
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
        utterance.mark_done(UtteranceState.FINISHED, self._monotonic())

    def _interrupt_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._playing is not None:
            self._playing.mark_done(UtteranceState.INTERRUPTED, self._monotonic())
            self._playing = None
