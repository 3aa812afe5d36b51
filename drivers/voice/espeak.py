"""espeak-ng prompts in subprocesses, one process group per prompt.

The caller's thread only records the request; a worker thread kills the previous prompt's group
(SIGTERM, SIGKILL after ``kill_grace_ms``), waits until it is gone, and only then starts the
next. Waiting matters with ``aplay -D hw:...``: the sound device is exclusive, and a new player
that starts while the old one still holds it fails with "device busy".

Text goes to espeak-ng on stdin, as UTF-8 (``--stdin -b 1``): not in argv, where ``ps`` would
show it and where a prompt starting with "-" would read as an option.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drivers.voice.base import Utterance, UtteranceState, Voice
from drivers.voice.errors import VoiceClosed, VoiceError, VoiceNotInstalled, VoiceUnavailable
from drivers.voice.settings import Lang, VoiceSettings

log = logging.getLogger(__name__)

STDERR_TAIL_BYTES = 2_000
STDERR_LINES = 3  # ALSA prints a screenful; the last lines say what failed
_AUDIO_ERROR = re.compile(r"^error:", re.IGNORECASE | re.MULTILINE)
OPEN_CHECK_TIMEOUT_S = 10.0


def espeak_argv(settings: VoiceSettings, voice: str, wav_path: str | None) -> list[str]:
    argv = [
        settings.espeak_command,
        "--stdin",
        "-b",
        "1",
        "-v",
        voice,
        "-s",
        str(settings.rate_wpm),
        "-a",
        str(settings.volume_pct),
        "-p",
        str(settings.pitch),
    ]
    if settings.output == "wav":
        assert wav_path is not None
        argv += ["-w", wav_path]
    elif settings.output == "pipe":
        argv.append("--stdout")
    return argv


def check_installation(settings: VoiceSettings) -> None:
    """Everything a prompt will need, checked once at open: a missing program or voice is an
    error now, at start-up, and not a silent kiosk at 3 a.m."""
    if shutil.which(settings.espeak_command) is None:
        raise VoiceUnavailable(f"{settings.espeak_command}: not found (apt install espeak-ng)")
    if settings.output == "pipe" and shutil.which(settings.player_argv[0]) is None:
        raise VoiceUnavailable(f"{settings.player_argv[0]}: player not found")
    if settings.output == "wav":
        assert settings.wav_dir is not None
        try:
            Path(settings.wav_dir).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VoiceError(f"wav_dir {settings.wav_dir}: {exc.strerror}") from None
    for voice in sorted({settings.voices.zh, settings.voices.en}):
        # -q synthesises nothing, but an unknown voice still exits 1
        done = subprocess.run(
            [settings.espeak_command, "-q", "-v", voice, "."],
            capture_output=True,
            text=True,
            timeout=OPEN_CHECK_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            detail = done.stderr.strip() or f"exit {done.returncode}"
            raise VoiceNotInstalled(f"espeak-ng voice {voice!r}: {detail}")


@dataclass
class _Run:
    """The processes of one prompt and the thread that reaps them."""

    utterance: Utterance
    procs: list[subprocess.Popen[bytes]]
    names: list[str]
    pgid: int
    exited: threading.Event = field(default_factory=threading.Event)
    killed: bool = False


class EspeakVoice(Voice):
    def __init__(
        self, settings: VoiceSettings, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(settings, monotonic)
        check_installation(settings)
        self._cond = threading.Condition()
        self._queued: Utterance | None = None  # asked for, not started yet
        self._starting: Utterance | None = None  # the worker is starting its processes
        self._playing: _Run | None = None
        self._closing = False
        self._worker = threading.Thread(target=self._work, name="voice", daemon=True)
        self._worker.start()

    # -- caller side: never blocks on a process ------------------------------------------

    def say(self, text: str, lang: Lang = "zh") -> Utterance:
        with self._cond:
            if self._closing:
                raise VoiceClosed("voice is closed")
            wav_dir = self.settings.wav_dir if self.settings.output == "wav" else None
            utterance = self._new_utterance(text, lang, wav_dir)
            self._interrupt_locked()
            self._queued = utterance
            self._cond.notify_all()
        return utterance

    def stop(self) -> None:
        with self._cond:
            self._interrupt_locked()
            self._cond.notify_all()

    @property
    def current(self) -> Utterance | None:
        with self._cond:
            candidates = [self._queued, self._starting]
            if self._playing is not None:
                candidates.append(self._playing.utterance)
        return next((u for u in candidates if u is not None and not u.state.done), None)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._interrupt_locked()
            self._cond.notify_all()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout=10.0)

    def _interrupt_locked(self) -> None:
        now = self._monotonic()
        if self._queued is not None:
            self._queued.mark_done(UtteranceState.INTERRUPTED, now)
            self._queued = None
        if self._starting is not None:
            self._starting.mark_done(UtteranceState.INTERRUPTED, now)
        if self._playing is not None:
            # the worker sees the state and kills the group
            self._playing.utterance.mark_done(UtteranceState.INTERRUPTED, now)

    # -- worker side ------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._next_job_locked()
            if job is None:
                return
            if isinstance(job, _Run):
                self._kill(job)
            else:
                self._start(job)

    def _next_job_locked(self) -> _Run | Utterance | None:
        """A group to kill, a prompt to start, or None to exit. Waits for one of them."""
        while True:
            run = self._playing
            if run is not None and run.exited.is_set():
                self._playing = run = None
            if run is not None:
                if run.utterance.state is UtteranceState.INTERRUPTED and not run.killed:
                    run.killed = True
                    return run
                # still playing (or dying): nothing new starts until its processes are gone
            elif self._queued is not None:
                self._starting, self._queued = self._queued, None
                return self._starting
            elif self._closing:
                return None
            self._cond.wait()

    def _kill(self, run: _Run) -> None:
        grace_s = self.settings.kill_grace_ms / 1000
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.pgid, sig)
            if run.exited.wait(grace_s if sig == signal.SIGTERM else 5.0):
                return
        log.error("voice prompt #%d: processes survived SIGKILL", run.utterance.seq)

    def _start(self, utterance: Utterance) -> None:
        argv = espeak_argv(self.settings, utterance.voice, utterance.wav_path)
        commands = [argv]
        if self.settings.output == "pipe":
            commands.append(list(self.settings.player_argv))
        err_r, err_w = os.pipe()
        procs: list[subprocess.Popen[bytes]] = []
        try:
            first = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE if self.settings.output == "pipe" else subprocess.DEVNULL,
                stderr=err_w,
                process_group=0,  # its own group: one killpg stops espeak-ng and the player
            )
            procs.append(first)
            if self.settings.output == "pipe":
                player = subprocess.Popen(
                    commands[1],
                    stdin=first.stdout,
                    stdout=subprocess.DEVNULL,
                    stderr=err_w,
                    process_group=first.pid,
                )
                procs.append(player)
                assert first.stdout is not None
                first.stdout.close()  # the player holds the only read end now
        except OSError as exc:
            os.close(err_r)
            os.close(err_w)
            for proc in procs:
                _kill_quietly(proc)
            utterance.mark_done(UtteranceState.FAILED, self._monotonic(), f"cannot start: {exc}")
            with self._cond:
                self._starting = None
            return
        os.close(err_w)
        run = _Run(utterance, procs, [os.path.basename(a[0]) for a in commands], first.pid)
        utterance.pids = tuple(p.pid for p in procs)
        # False if interrupted meanwhile: the worker's next round then kills the group
        utterance.mark_started(self._monotonic())
        with self._cond:
            self._playing = run
            self._starting = None
        threading.Thread(
            target=self._reap, args=(run, err_r), name=f"voice-reap-{utterance.seq}", daemon=True
        ).start()
        assert first.stdin is not None
        try:
            # a prompt is at most a few KB, far below the pipe buffer: this write cannot block
            first.stdin.write(utterance.text.encode("utf-8"))
            first.stdin.close()
        except BrokenPipeError:
            pass  # espeak-ng died at once; the reaper records why

    def _reap(self, run: _Run, err_fd: int) -> None:
        tail = b""
        with os.fdopen(err_fd, "rb") as err:
            for chunk in iter(lambda: err.read(4096), b""):
                tail = (tail + chunk)[-STDERR_TAIL_BYTES:]
        codes = [proc.wait() for proc in run.procs]
        stderr = tail.decode("utf-8", "replace").strip()
        detail = "\n".join(stderr.splitlines()[-STDERR_LINES:])
        exits = ", ".join(f"{n} exit {c}" for n, c in zip(run.names, codes, strict=True))
        # direct output: espeak-ng exits 0 even when it cannot open the sound device, and only
        # says "error: ..." on stderr
        audio_error = self.settings.output == "direct" and _AUDIO_ERROR.search(stderr)
        if all(code == 0 for code in codes) and not audio_error:
            run.utterance.mark_done(UtteranceState.FINISHED, self._monotonic())
        else:
            run.utterance.mark_done(
                UtteranceState.FAILED, self._monotonic(), f"{exits}: {detail}" if detail else exits
            )
        with self._cond:
            run.exited.set()
            self._cond.notify_all()


def _kill_quietly(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        proc.kill()
    proc.wait()
