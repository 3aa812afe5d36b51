"""The espeak-ng backend with the real espeak-ng: WAV output, interruption of a prompt that is
still playing (through a paced stand-in for aplay), failures, and checks made at open."""

from __future__ import annotations

import array
import os
import sys
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.voice import (
    UtteranceState,
    Voice,
    VoiceClosed,
    VoiceNotInstalled,
    VoiceSettings,
    VoiceTextError,
    VoiceUnavailable,
    open_voice,
)
from drivers.voice.espeak import EspeakVoice
from tests.fixtures import wait_until

SINK = str(Path(__file__).with_name("paced_sink.py"))
# 4x a 22050 Hz 16-bit mono sound card: a long prompt lasts many seconds, a short one a moment
SINK_BYTES_PER_S = 4 * 44_100
LONG_ZH = "请将身份证放在读卡区，" * 20


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_wav(path: str | Path) -> tuple[Any, array.array[int]]:
    with open(path, "rb") as f:
        head = f.read(12)
    assert head[:4] == b"RIFF" and head[8:12] == b"WAVE"
    with wave.open(str(path)) as w:
        params = w.getparams()
        samples = array.array("h", w.readframes(w.getnframes()))
    return params, samples


@pytest.fixture
def make_voice() -> Iterator[Any]:
    voices: list[Voice] = []

    def make(**fields: Any) -> Voice:
        voice = open_voice(VoiceSettings.model_validate({"backend": "espeak", **fields}))
        voices.append(voice)
        return voice

    yield make
    for voice in voices:
        voice.close()


def paced(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    return {
        "output": "pipe",
        "player_argv": [sys.executable, SINK, str(tmp_path), str(SINK_BYTES_PER_S)],
        **fields,
    }


@pytest.mark.parametrize(
    ("lang", "text"), [("zh", "请刷身份证，取号。"), ("en", "Please take a ticket.")]
)
def test_wav_output_is_a_real_mono_wav_for_each_language(
    make_voice: Any, tmp_path: Path, lang: str, text: str
) -> None:
    voice = make_voice(output="wav", wav_dir=str(tmp_path / "wav"))
    u = voice.say(text, lang)
    assert u.wait(30), u
    assert u.state is UtteranceState.FINISHED, u.error
    assert u.voice == {"zh": "cmn", "en": "en"}[lang]
    assert u.wav_path is not None and Path(u.wav_path).parent == tmp_path / "wav"
    params, samples = read_wav(u.wav_path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 22050)
    assert params.nframes > 22050 // 4  # a real phrase, not a header
    assert max(abs(s) for s in samples) > 1000  # audible, not silence


def test_the_language_picks_the_voice_and_the_volume_reaches_espeak(
    make_voice: Any, tmp_path: Path
) -> None:
    voice = make_voice(output="wav", wav_dir=str(tmp_path))
    zh, en = voice.say("1 2 3", "zh"), None
    assert zh.wait(30)
    en = voice.say("1 2 3", "en")
    assert en.wait(30)
    assert zh.wav_path and en.wav_path
    # "yi er san" and "one two three" are different sounds
    assert read_wav(zh.wav_path)[1] != read_wav(en.wav_path)[1]
    silent = make_voice(output="wav", wav_dir=str(tmp_path / "silent"), volume_pct=0)
    u = silent.say("你好", "zh")
    assert u.wait(30) and u.state is UtteranceState.FINISHED
    assert u.wav_path is not None
    samples = read_wav(u.wav_path)[1]
    assert len(samples) > 0 and max(abs(s) for s in samples) == 0


def test_say_returns_before_the_speech_is_done_and_the_next_prompt_interrupts_it(
    make_voice: Any, tmp_path: Path
) -> None:
    voice = make_voice(**paced(tmp_path))
    first = voice.say(LONG_ZH, "zh")
    assert not first.state.done  # returned at once; the prompt is many seconds of audio
    assert voice.current is first
    wait_until(lambda: first.state is UtteranceState.SPEAKING, what="first prompt to start")
    espeak_pid, sink_pid = first.pids
    sink_file = tmp_path / f"{sink_pid}.wav"
    wait_until(
        lambda: sink_file.exists() and sink_file.stat().st_size > 4096,
        what="audio flowing into the player",
    )
    assert alive(espeak_pid) and alive(sink_pid)

    second = voice.say("请取号", "zh")
    assert first.state is UtteranceState.INTERRUPTED  # recorded at once
    wait_until(
        lambda: not alive(espeak_pid) and not alive(sink_pid),
        what="the first prompt's espeak-ng and player to be gone",
    )
    assert second.wait(30), second
    assert second.state is UtteranceState.FINISHED, second.error
    assert first.state is UtteranceState.INTERRUPTED  # its exit did not overwrite the record
    assert set(second.pids).isdisjoint(first.pids)
    # the second prompt went through the same pipeline, complete
    second_file = tmp_path / f"{second.pids[1]}.wav"
    assert second_file.read_bytes()[:4] == b"RIFF"
    assert voice.current is None
    # the first prompt was cut off: its player got less than the whole prompt's audio
    whole = make_voice(output="wav", wav_dir=str(tmp_path / "whole")).say(LONG_ZH, "zh")
    assert whole.wait(30) and whole.wav_path
    assert 4096 < sink_file.stat().st_size < Path(whole.wav_path).stat().st_size


def test_a_burst_of_prompts_plays_only_the_last(make_voice: Any, tmp_path: Path) -> None:
    voice = make_voice(**paced(tmp_path))
    burst = [voice.say(f"{LONG_ZH}{i}", "zh") for i in range(5)]
    last = voice.say("好的", "zh")
    assert last.wait(30), last
    assert last.state is UtteranceState.FINISHED
    assert [u.state for u in burst] == [UtteranceState.INTERRUPTED] * 5
    # a prompt interrupted before its turn never started a process
    assert all(not alive(pid) for u in burst for pid in u.pids)


def test_stop_and_close_leave_no_process_behind(make_voice: Any, tmp_path: Path) -> None:
    voice = make_voice(**paced(tmp_path))
    u = voice.say(LONG_ZH, "zh")
    wait_until(lambda: u.state is UtteranceState.SPEAKING)
    voice.stop()
    assert u.state is UtteranceState.INTERRUPTED
    wait_until(lambda: not any(alive(p) for p in u.pids), what="stopped processes gone")
    assert voice.current is None

    u2 = voice.say(LONG_ZH, "zh")
    wait_until(lambda: u2.state is UtteranceState.SPEAKING)
    voice.close()  # joins the worker, which kills first
    assert u2.state is UtteranceState.INTERRUPTED
    assert not any(alive(p) for p in u2.pids)
    with pytest.raises(VoiceClosed):
        voice.say("你好", "zh")


def test_a_player_that_fails_marks_the_prompt_failed_with_its_reason(make_voice: Any) -> None:
    voice = make_voice(
        output="pipe", player_argv=["sh", "-c", "echo 'aplay: audio open error: busy' >&2; exit 1"]
    )
    u = voice.say("你好", "zh")
    assert u.wait(30)
    assert u.state is UtteranceState.FAILED
    assert "sh exit 1" in u.error and "audio open error" in u.error


@pytest.mark.skipif(
    Path("/dev/snd").exists(), reason="this machine has a sound card, so direct output works"
)
def test_direct_output_without_a_sound_card_is_a_failure_not_a_silent_success(
    make_voice: Any,
) -> None:
    voice = make_voice(output="direct")
    u = voice.say("你好", "zh")
    assert u.wait(30)
    assert u.state is UtteranceState.FAILED  # espeak-ng itself exits 0 here
    assert "espeak-ng exit 0" in u.error and "error:" in u.error


def test_missing_programs_and_voices_fail_at_open_not_at_the_first_prompt(
    tmp_path: Path,
) -> None:
    with pytest.raises(VoiceUnavailable, match="not found"):
        EspeakVoice(VoiceSettings(backend="espeak", espeak_command=str(tmp_path / "espeak-ng")))
    with pytest.raises(VoiceUnavailable, match="player not found"):
        EspeakVoice(VoiceSettings(backend="espeak", player_argv=(str(tmp_path / "aplay"),)))
    with pytest.raises(VoiceNotInstalled, match=r"'xx-nosuch'.*does not exist"):
        EspeakVoice(
            VoiceSettings.model_validate(
                {"backend": "espeak", "output": "direct", "voices": {"en": "xx-nosuch"}}
            )
        )
    assert isinstance(VoiceUnavailable(), FileNotFoundError)


def test_prompt_text_is_checked(make_voice: Any, tmp_path: Path) -> None:
    voice = make_voice(output="wav", wav_dir=str(tmp_path), max_text_chars=10)
    with pytest.raises(VoiceTextError):
        voice.say("   ", "zh")
    with pytest.raises(VoiceTextError, match="11 characters"):
        voice.say("一二三四五六七八九十一", "zh")
    with pytest.raises(VoiceTextError):
        voice.say("hello", "fr")
    # text starting with "-" is spoken, not read as an option: it goes in on stdin
    u = voice.say("-w /tmp/x", "en")
    assert u.wait(30) and u.state is UtteranceState.FINISHED
