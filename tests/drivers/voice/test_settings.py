"""Voice settings: ranges, strict keys, and the espeak-ng command line they produce."""

from __future__ import annotations

import tomllib

import pytest
from pydantic import ValidationError

from drivers.voice.espeak import espeak_argv
from drivers.voice.settings import VoiceSettings


def test_toml_section_validates() -> None:
    settings = VoiceSettings.model_validate(
        tomllib.loads(
            """
            backend = "espeak"
            output = "pipe"
            player_argv = ["aplay", "-q", "-D", "plughw:CARD=Headphones"]
            rate_wpm = 140
            volume_pct = 150
            voices = { zh = "cmn-latn-pinyin", en = "en-us" }
            """
        )
    )
    assert settings.player_argv == ("aplay", "-q", "-D", "plughw:CARD=Headphones")
    assert settings.voice_for("zh") == "cmn-latn-pinyin"
    assert settings.voice_for("en") == "en-us"


def test_defaults_are_the_simulator_with_mandarin_and_english() -> None:
    settings = VoiceSettings()
    assert settings.backend == "sim"
    assert (settings.voices.zh, settings.voices.en) == ("cmn", "en")


@pytest.mark.parametrize(
    "bad",
    [
        {"rate_wpm": 79},
        {"rate_wpm": 451},
        {"volume_pct": 201},
        {"pitch": 100},
        {"max_text_chars": 0},
        {"kill_grace_ms": 5},
        {"sim_chars_per_s": 0.1},
        {"output": "wav"},  # without wav_dir
        {"player_argv": []},
        {"voices": {"zh": "-w/etc/passwd"}},  # would read as an espeak-ng option
        {"voices": {"zh": "cmn", "fr": "fr"}},
        {"volume": 100},
        {"rate_wpm": "150"},
    ],
)
def test_bad_values_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        VoiceSettings.model_validate(bad)


def test_espeak_command_line_per_output_mode() -> None:
    base = {"backend": "espeak", "rate_wpm": 140, "volume_pct": 120, "pitch": 40}
    common = ["espeak-ng", "--stdin", "-b", "1", "-v", "cmn", "-s", "140", "-a", "120", "-p", "40"]
    direct = VoiceSettings.model_validate({**base, "output": "direct"})
    assert espeak_argv(direct, "cmn", None) == common
    pipe = VoiceSettings.model_validate({**base, "output": "pipe"})
    assert espeak_argv(pipe, "cmn", None) == [*common, "--stdout"]
    wav = VoiceSettings.model_validate({**base, "output": "wav", "wav_dir": "/tmp/v"})
    assert espeak_argv(wav, "cmn", "/tmp/v/a.wav") == [*common, "-w", "/tmp/v/a.wav"]
