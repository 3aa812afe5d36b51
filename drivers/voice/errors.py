"""Voice-prompt errors. Each mixes in a builtin so generic handlers still work."""

from drivers.errors import DriverError


class VoiceError(DriverError):
    code = "voice_fault"
    message_zh = "语音提示故障，请看屏幕提示或联系工作人员。"
    message_en = "Voice prompts are not working. Please follow the screen or contact staff."


class VoiceUnavailable(VoiceError, FileNotFoundError):
    """espeak-ng (or the configured player) is not installed: found at open, not at a prompt."""

    code = "voice_unavailable"


class VoiceNotInstalled(VoiceError, LookupError):
    """espeak-ng runs but does not know a configured voice (e.g. ``cmn``)."""

    code = "voice_not_installed"


class VoiceTextError(VoiceError, ValueError):
    """Nothing to say, or a prompt longer than ``max_text_chars``."""

    code = "voice_bad_text"


class VoiceFailed(VoiceError, OSError):
    """A prompt's process failed (player could not open the sound card, synthesis error)."""

    code = "voice_failed"


class VoiceClosed(VoiceError, RuntimeError):
    code = "voice_closed"
