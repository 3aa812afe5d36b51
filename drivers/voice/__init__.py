"""Spoken prompts in Mandarin and English.

    voice = open_voice(settings)          # espeak-ng checked here: missing program/voice raises
    u = voice.say("请刷身份证", "zh")        # returns at once; speech plays in the background
    voice.say("Please scan your ID card", "en")   # interrupts the first: u.state == "interrupted"
    voice.close()

Backends: ``espeak`` (espeak-ng subprocesses: direct to the sound device, piped into a player
such as ``aplay -D``, or written to WAV files) and ``sim`` (records what was said). The state of
an ``Utterance`` changes on the voice's own threads; the kiosk reads it, and never waits on it
from the UI thread.
"""

from drivers.voice.base import Utterance, UtteranceState, Voice
from drivers.voice.errors import (
    VoiceClosed,
    VoiceError,
    VoiceFailed,
    VoiceNotInstalled,
    VoiceTextError,
    VoiceUnavailable,
)
from drivers.voice.settings import Lang, VoiceNames, VoiceSettings


def open_voice(settings: VoiceSettings) -> Voice:
    """The backend the settings name. The real one checks its programs and voices now."""
    if settings.backend == "sim":
        from drivers.voice.sim import SimVoice  # noqa: PLC0415 - only the chosen backend loads

        return SimVoice(settings)
    from drivers.voice.espeak import EspeakVoice  # noqa: PLC0415 - only the chosen backend loads

    return EspeakVoice(settings)


__all__ = [
    "Lang",
    "Utterance",
    "UtteranceState",
    "Voice",
    "VoiceClosed",
    "VoiceError",
    "VoiceFailed",
    "VoiceNames",
    "VoiceNotInstalled",
    "VoiceSettings",
    "VoiceTextError",
    "VoiceUnavailable",
    "open_voice",
]
