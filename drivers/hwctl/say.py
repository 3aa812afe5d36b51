"""``hwctl say``: speak one prompt through the voice driver and report how it went.

    hwctl say 请刷身份证 --lang zh                        espeak-ng | aplay -D default
    hwctl say "Please take your ticket" --lang en --device plughw:CARD=Headphones
    hwctl say 请取号 --wav-dir /tmp/voice                 a WAV file instead of the speaker
    hwctl say 请取号 --config /etc/hallkiosk/site.toml    exactly what the kiosk would do

Waits until the prompt ends (or ``--timeout-s``), then prints its final state. A prompt that
failed (no sound card, unknown voice) is an error with its reason.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from pydantic import ValidationError

from drivers.hwctl.output import Output
from drivers.voice import UtteranceState, VoiceFailed, VoiceSettings, open_voice
from hallkiosk.config import ConfigError, load


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "say", help="speak a prompt (espeak-ng) and report the result"
    )
    parser.add_argument("text", help="what to say")
    parser.add_argument("--lang", choices=("zh", "en"), default="zh")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="FILE",
        help="site TOML file(s), layered over the packaged defaults",
    )
    parser.add_argument(
        "--section",
        default="kiosk.voice",
        help="dotted section holding the voice settings (default kiosk.voice)",
    )
    parser.add_argument("--backend", choices=("espeak", "sim"))
    parser.add_argument("--output", choices=("direct", "pipe", "wav"))
    parser.add_argument("--wav-dir", help="write the prompt as a WAV file here (output=wav)")
    parser.add_argument("--device", help="ALSA device for aplay (output=pipe)")
    parser.add_argument("--rate-wpm", type=int)
    parser.add_argument("--volume-pct", type=int)
    parser.add_argument(
        "--timeout-s",
        type=float,
        default=120.0,
        help="give up (and stop the prompt) after this long",
    )
    parser.set_defaults(handler=run_say)


def settings_from_args(args: argparse.Namespace) -> VoiceSettings:
    # without a config file this is a technician checking the real speaker
    raw: dict[str, Any] = {"backend": "espeak"}
    if args.config:
        loaded = load(args.config)
        node: Any = loaded.data
        for part in args.section.split("."):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        try:
            raw = VoiceSettings.model_validate(dict(node)).model_dump()
        except ValidationError as exc:
            section = tuple(args.section.split("."))
            raise ConfigError(
                [loaded.describe((*section, *e["loc"]), e["msg"]) for e in exc.errors()]
            ) from None
    overrides = {
        "backend": args.backend,
        "output": args.output,
        "wav_dir": args.wav_dir,
        "rate_wpm": args.rate_wpm,
        "volume_pct": args.volume_pct,
    }
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if args.device:
        raw["player_argv"] = ("aplay", "-q", "-D", args.device)
        if not args.output:
            raw["output"] = "pipe"
    if args.wav_dir and not args.output:
        raw["output"] = "wav"
    try:
        return VoiceSettings.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'voice'}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(problems) from None


def run_say(args: argparse.Namespace, out: Output) -> int:
    settings = settings_from_args(args)
    voice = open_voice(settings)
    try:
        utterance = voice.say(args.text, args.lang)
        if not utterance.wait(args.timeout_s):
            voice.stop()
            raise VoiceFailed(f"the prompt did not end within {args.timeout_s} s")
    finally:
        voice.close()
    if utterance.state is not UtteranceState.FINISHED:
        raise VoiceFailed(utterance.error or f"prompt {utterance.state.value}")
    wav_bytes = None
    if utterance.wav_path is not None:
        wav_bytes = os.path.getsize(utterance.wav_path)
    spoken_s = None
    if utterance.started_s is not None and utterance.ended_s is not None:
        spoken_s = round(utterance.ended_s - utterance.started_s, 3)
    data = {
        "ok": True,
        "state": utterance.state.value,
        "text": utterance.text,
        "lang": utterance.lang,
        "voice": utterance.voice,
        "backend": settings.backend,
        "output": settings.output,
        "wav": utterance.wav_path,
        "wav_bytes": wav_bytes,
        "spoken_s": spoken_s,
    }
    where = f" -> {utterance.wav_path} ({wav_bytes} bytes)" if utterance.wav_path else ""
    out.result(
        data,
        f"said ({utterance.lang}, voice {utterance.voice}, {settings.backend}/{settings.output})"
        f" in {spoken_s} s{where}",
    )
    return 0
