"""The staff self-test page: each device asked once, with pass/fail and plain words.

``SelfTest.run`` blocks (a printer status query, a camera picture, a lockerd call, a short
spoken prompt): run it inside a flow's job. A device the kiosk does not have (None) is left
out. The checks use the same driver calls as ``hwctl`` (``printer.status``, ``reader.status``,
``scanner.connected``, ``camera.snap``) and lockerd's ``status``; hwctl's own functions print
to a terminal, so they are not called from here.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.camera import Camera, CameraError
from drivers.identity import IdentityReader, IdentityReaderError
from drivers.printer import PaperStatus, TicketPrinter
from drivers.scanner import Scanner
from drivers.voice import Voice, VoiceError
from drivers.voice.base import UtteranceState
from kiosk.flows.base import Bilingual, Msg, Text
from kiosk.flows.printing import check_printer
from kiosk.services.locker_gateway import LockerGateway, LockerGatewayError

VOICE_TEST_PHRASE = "语音测试"  # spoken, not shown: the technician listens for it


@dataclass(frozen=True)
class CheckResult:
    component: str  # printer / card_reader / scanner / camera / locker / voice
    ok: bool
    text: Text  # what the staff member reads
    code: str = ""  # the driver's error code, for the log and for ops


class SelfTest:
    def __init__(
        self,
        *,
        printer: TicketPrinter | None = None,
        reader: IdentityReader | None = None,
        scanner: Scanner | None = None,
        camera: Camera | None = None,
        locker: LockerGateway | None = None,
        voice: Voice | None = None,
        voice_timeout_s: float = 5.0,
    ) -> None:
        self._printer = printer
        self._reader = reader
        self._scanner = scanner
        self._camera = camera
        self._locker = locker
        self._voice = voice
        self._voice_timeout_s = voice_timeout_s

    def run(self) -> tuple[CheckResult, ...]:
        results: list[CheckResult] = []
        if self._printer is not None:
            results.append(self._check_printer(self._printer))
        if self._reader is not None:
            results.append(self._check_reader(self._reader))
        if self._scanner is not None:
            results.append(self._check_scanner(self._scanner))
        if self._camera is not None:
            results.append(self._check_camera(self._camera))
        if self._locker is not None:
            results.append(self._check_locker(self._locker))
        if self._voice is not None:
            results.append(self._check_voice(self._voice))
        return tuple(results)

    @staticmethod
    def _check_printer(printer: TicketPrinter) -> CheckResult:
        check = check_printer(printer)
        if not check.ready:
            notice = check.notice()
            text: Text = notice.text if notice is not None else Msg.of("The printer cannot print.")
            return CheckResult("printer", False, text, check.code)
        if check.paper is PaperStatus.NEAR_END:
            return CheckResult(
                "printer", True, Msg.of("The printer works. The paper roll is nearly used up.")
            )
        return CheckResult("printer", True, Msg.of("The printer works and has paper."))

    @staticmethod
    def _check_reader(reader: IdentityReader) -> CheckResult:
        try:
            status = reader.status()
        except IdentityReaderError as exc:
            return CheckResult("card_reader", False, Bilingual.from_error(exc), exc.code)
        if not status.online:
            return CheckResult(
                "card_reader", False, Msg.of("The card reader does not answer."), status.detail
            )
        return CheckResult("card_reader", True, Msg.of("The card reader is ready."))

    @staticmethod
    def _check_scanner(scanner: Scanner) -> CheckResult:
        if not scanner.connected:
            return CheckResult(
                "scanner", False, Msg.of("The code scanner is not connected."), "scanner_offline"
            )
        return CheckResult("scanner", True, Msg.of("The code scanner is connected."))

    @staticmethod
    def _check_camera(camera: Camera) -> CheckResult:
        try:
            photo = camera.snap()
        except CameraError as exc:
            return CheckResult("camera", False, Bilingual.from_error(exc), exc.code)
        if not photo.jpeg:
            return CheckResult("camera", False, Msg.of("The camera gave an empty picture."))
        return CheckResult(
            "camera",
            True,
            Msg.of(
                "The camera took a picture ({width} x {height}).",
                width=photo.width,
                height=photo.height,
            ),
        )

    @staticmethod
    def _check_locker(locker: LockerGateway) -> CheckResult:
        try:
            status = locker.status()
        except LockerGatewayError as exc:
            return CheckResult("locker", False, Bilingual.from_error(exc), exc.code)
        # reachable is the test; its alarms are listed for the staff member to look at
        return CheckResult(
            "locker",
            True,
            Msg.of(
                "The locker answers: {bays} bays, {alarms} active alarms.",
                bays=len(status.bays),
                alarms=len(status.alarms),
            ),
            ",".join(sorted({a.alarm for a in status.alarms})),
        )

    def _check_voice(self, voice: Voice) -> CheckResult:
        try:
            utterance = voice.say(VOICE_TEST_PHRASE, "zh")
        except VoiceError as exc:
            return CheckResult("voice", False, Bilingual.from_error(exc), exc.code)
        utterance.wait(self._voice_timeout_s)
        if utterance.state is UtteranceState.FAILED:
            return CheckResult(
                "voice",
                False,
                Msg.of("The speaker could not play the test prompt."),
                "voice_failed",
            )
        return CheckResult("voice", True, Msg.of("A test prompt was played. Did you hear it?"))
