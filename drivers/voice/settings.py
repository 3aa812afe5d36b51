"""Voice settings: which backend, how speech reaches the speaker, and how it sounds.

[kiosk.voice]
backend = "espeak"
output = "pipe"                                  # espeak-ng --stdout | player_argv
player_argv = ["aplay", "-q", "-D", "plughw:CARD=Headphones"]
rate_wpm = 140
voices = { zh = "cmn", en = "en" }
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from hallkiosk.config import StrictModel

Lang = Literal["zh", "en"]
# an espeak-ng voice or language name; never starting with "-", so it cannot read as an option
VoiceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_+./-]{0,63}$")]


class VoiceNames(StrictModel):
    zh: VoiceId = "cmn"  # Mandarin (espeak-ng sit/cmn)
    en: VoiceId = "en"


class VoiceSettings(StrictModel):
    """``[kiosk.voice]``."""

    backend: Literal["espeak", "sim"] = "sim"
    # direct: espeak-ng opens the sound device itself (cannot tell when that fails: exit 0);
    # pipe: espeak-ng --stdout into player_argv (aplay reports a missing card: exit 1);
    # wav: one WAV file per prompt in wav_dir (tests, and checking a voice without a speaker)
    output: Literal["direct", "pipe", "wav"] = "pipe"
    rate_wpm: Annotated[int, Field(ge=80, le=450)] = 150  # espeak's default 175 is fast for elders
    volume_pct: Annotated[int, Field(ge=0, le=200)] = 100  # espeak-ng -a; 100 is its default
    pitch: Annotated[int, Field(ge=0, le=99)] = 50
    voices: VoiceNames = Field(default_factory=VoiceNames)
    espeak_command: Annotated[str, Field(min_length=1)] = "espeak-ng"
    player_argv: Annotated[
        tuple[Annotated[str, Field(min_length=1)], ...],
        Strict(False),  # TOML gives a list
        Field(min_length=1, max_length=16),
    ] = ("aplay", "-q", "-D", "default")
    wav_dir: Annotated[str, Field(min_length=1)] | None = None
    max_text_chars: Annotated[int, Field(ge=1, le=2_000)] = 300
    # SIGTERM to the prompt's process group, then SIGKILL after this long
    kill_grace_ms: Annotated[int, Field(ge=10, le=5_000)] = 500
    # simulator only: how long a simulated prompt lasts (Mandarin is about 4 syllables a second)
    sim_chars_per_s: Annotated[float, Field(ge=0.5, le=10_000.0)] = 4.0

    @model_validator(mode="after")
    def _wav_needs_a_dir(self) -> VoiceSettings:
        if self.output == "wav" and self.wav_dir is None:
            raise ValueError('output = "wav" needs wav_dir')
        return self

    def voice_for(self, lang: Lang) -> str:
        return self.voices.zh if lang == "zh" else self.voices.en
