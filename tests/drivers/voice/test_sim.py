"""The simulated voice: records every prompt with the real backend's rules."""

from __future__ import annotations

import pytest

from drivers.voice import UtteranceState, VoiceClosed, VoiceSettings, VoiceTextError, open_voice
from drivers.voice.sim import SimVoice
from tests.fixtures import wait_until


def sim(**fields: object) -> SimVoice:
    voice = open_voice(VoiceSettings.model_validate({"backend": "sim", **fields}))
    assert isinstance(voice, SimVoice)
    return voice


def test_say_is_non_blocking_and_records_text_language_and_start() -> None:
    clock = iter(range(100, 1000))
    voice = SimVoice(VoiceSettings(sim_chars_per_s=0.5), monotonic=lambda: float(next(clock)))
    u = voice.say("请刷身份证", "zh")  # 10 simulated seconds
    assert u.state is UtteranceState.SPEAKING
    assert voice.current is u
    assert (u.text, u.lang, u.voice, u.started_s) == ("请刷身份证", "zh", "cmn", 100.0)
    assert voice.finish_current() is u
    assert u.state is UtteranceState.FINISHED
    assert u.ended_s is not None and u.ended_s > u.started_s
    assert voice.current is None
    voice.close()


def test_the_next_prompt_interrupts_the_current_one() -> None:
    voice = sim(sim_chars_per_s=0.5)
    first = voice.say("请刷身份证", "zh")
    second = voice.say("Please scan your ID card", "en")
    assert first.state is UtteranceState.INTERRUPTED
    assert second.state is UtteranceState.SPEAKING
    voice.stop()
    assert second.state is UtteranceState.INTERRUPTED
    assert [(u.text, u.lang, u.state.value) for u in voice.history] == [
        ("请刷身份证", "zh", "interrupted"),
        ("Please scan your ID card", "en", "interrupted"),
    ]
    voice.close()


def test_a_prompt_finishes_by_itself_after_its_simulated_duration() -> None:
    voice = sim(sim_chars_per_s=1000)
    u = voice.say("取号成功", "zh")
    assert u.wait(5)
    assert u.state is UtteranceState.FINISHED
    after = voice.say("谢谢", "zh")  # a finished prompt is not touched by the next one
    assert u.state is UtteranceState.FINISHED
    after.wait(5)
    voice.close()


def test_fail_next_simulates_a_broken_speaker() -> None:
    voice = sim()
    voice.fail_next("speaker unplugged")
    u = voice.say("你好", "zh")
    assert u.state is UtteranceState.FAILED and u.error == "speaker unplugged"
    assert voice.say("你好", "zh").state is UtteranceState.SPEAKING  # only the next one
    voice.close()


def test_close_interrupts_and_refuses_new_prompts() -> None:
    voice = sim(sim_chars_per_s=0.5)
    u = voice.say("请稍候", "zh")
    voice.close()
    assert u.state is UtteranceState.INTERRUPTED
    with pytest.raises(VoiceClosed):
        voice.say("你好", "zh")
    with pytest.raises(VoiceTextError):
        sim().say("", "zh")


def test_interrupt_and_timer_race_leaves_one_final_state() -> None:
    voice = sim(sim_chars_per_s=10_000)  # timers fire almost at once
    prompts = [voice.say(f"第{i}号", "zh") for i in range(50)]
    wait_until(lambda: all(u.state.done for u in prompts))
    assert prompts[-1].state is UtteranceState.FINISHED
    assert {u.state for u in prompts} <= {UtteranceState.FINISHED, UtteranceState.INTERRUPTED}
    voice.close()
