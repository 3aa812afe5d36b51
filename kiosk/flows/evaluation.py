"""Service evaluation (好差评) after a ticket, a pickup or a pre-review.

    CHOOSE_LEVEL ─ choose_level(1..5) ─> CHOOSE_REASONS ─ submit() ─> [record] ─> THANKS
         │                                    │  back() ─> CHOOSE_LEVEL
         └──────────── skip() ────────────────┴─> ended = Cancelled
    THANKS ─ finish() ─> ended = Finished("evaluation", evaluate=False)

Five levels, 5 非常满意 … 1 非常不满意. At 不满意 or below at least one reason is required (a
差评 must say what went wrong so the hall can act on it); above, reasons are optional.
The rating goes to ``HallService.record_evaluation`` (an outbox event).

The domain notices in the design folder give no fixed reason list, so the lists below follow
the usual 好差评 headings (waiting, guidance, trips, equipment, attitude, materials).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kiosk.flows.base import Flow, FlowStateError, Msg, Notice, Outcome, Worker
from kiosk.flows.home import Cancelled, Finished, JourneyEnd
from kiosk.services.hall_gateway import Evaluation, HallService

REASONS_REQUIRED_AT_OR_BELOW = 2


@dataclass(frozen=True)
class Level:
    value: int  # 1..5
    text: Msg


@dataclass(frozen=True)
class Reason:
    id: str  # what the hall records
    text: Msg


LEVELS: tuple[Level, ...] = (
    Level(5, Msg.of("Very satisfied")),
    Level(4, Msg.of("Satisfied")),
    Level(3, Msg.of("Basically satisfied")),
    Level(2, Msg.of("Dissatisfied")),
    Level(1, Msg.of("Very dissatisfied")),
)

NEGATIVE_REASONS: tuple[Reason, ...] = (
    Reason("long_wait", Msg.of("I waited too long")),
    Reason("unclear_guide", Msg.of("The guide or materials list was unclear")),
    Reason("extra_trips", Msg.of("I have to come back again")),
    Reason("device_fault", Msg.of("The machine did not work well")),
    Reason("staff_attitude", Msg.of("Staff were not helpful")),
    Reason("too_many_materials", Msg.of("Too many materials were asked for")),
)
POSITIVE_REASONS: tuple[Reason, ...] = (
    Reason("fast", Msg.of("Quick")),
    Reason("clear_guide", Msg.of("Clear guidance")),
    Reason("easy_to_use", Msg.of("Easy to use")),
    Reason("helpful_staff", Msg.of("Helpful staff")),
)


def reasons_for(level: int) -> tuple[Reason, ...]:
    return POSITIVE_REASONS if level >= 4 else NEGATIVE_REASONS


class EvaluationState(StrEnum):
    CHOOSE_LEVEL = "choose_level"
    CHOOSE_REASONS = "choose_reasons"
    THANKS = "thanks"
    CLOSED = "closed"


S = EvaluationState


@dataclass(frozen=True)
class EvaluationView:
    levels: tuple[Level, ...] = LEVELS
    level: Level | None = None
    reasons: tuple[Reason, ...] = ()  # offered for the chosen level
    chosen: frozenset[str] = frozenset()
    reasons_required: bool = False
    can_submit: bool = False


_PROMPTS: dict[EvaluationState, Msg] = {
    S.CHOOSE_LEVEL: Msg.of("How satisfied are you with this service?"),
    S.THANKS: Msg.of("Thank you for your evaluation."),
}


class EvaluationFlow(Flow[EvaluationState]):
    name = "evaluation"

    def __init__(self, worker: Worker, hall: HallService, *, service: str, reference: str) -> None:
        super().__init__(worker, EvaluationState.CHOOSE_LEVEL)
        self._hall = hall
        self._service = service
        self._reference = reference
        self._level: Level | None = None
        self._chosen: set[str] = set()
        self._ended: JourneyEnd | None = None

    @property
    def ended(self) -> JourneyEnd | None:
        return self._ended

    @property
    def service(self) -> str:
        return self._service

    @property
    def reference(self) -> str:
        return self._reference

    @property
    def prompt(self) -> Msg | None:
        if self._state is S.CHOOSE_REASONS:
            if self._required():
                return Msg.of("Please tell us what went wrong.")
            return Msg.of("You may choose what you liked, then submit.")
        return _PROMPTS.get(self._state)

    @property
    def view(self) -> EvaluationView:
        level = self._level
        return EvaluationView(
            level=level,
            reasons=reasons_for(level.value) if level else (),
            chosen=frozenset(self._chosen),
            reasons_required=self._required(),
            can_submit=level is not None and (bool(self._chosen) or not self._required()),
        )

    # -- touches -----------------------------------------------------------------------------

    def choose_level(self, value: int) -> None:
        self._idle(S.CHOOSE_LEVEL, S.CHOOSE_REASONS)
        level = next((lv for lv in LEVELS if lv.value == value), None)
        if level is None:
            raise FlowStateError(f"{self.name}: no level {value}")
        if self._level is None or reasons_for(self._level.value) != reasons_for(value):
            self._chosen.clear()  # the other list: earlier ticks mean nothing there
        self._level = level
        self._go(S.CHOOSE_REASONS)

    def toggle_reason(self, reason_id: str) -> None:
        self._idle(S.CHOOSE_REASONS)
        assert self._level is not None
        if reason_id not in {r.id for r in reasons_for(self._level.value)}:
            raise FlowStateError(f"{self.name}: no reason {reason_id!r} at this level")
        self._chosen.symmetric_difference_update({reason_id})
        self._status.notice = None
        self._changed()

    def back(self) -> None:
        self._idle(S.CHOOSE_REASONS)
        self._go(S.CHOOSE_LEVEL)

    def submit(self) -> None:
        self._idle(S.CHOOSE_REASONS)
        level = self._level
        assert level is not None
        if self._required() and not self._chosen:
            self._notify(
                Notice(Msg.of("Please choose at least one reason."), "evaluation_reason_needed")
            )
            return
        order = [r.id for r in reasons_for(level.value)]
        evaluation = Evaluation(
            service=self._service,
            reference=self._reference,
            level=level.value,
            reasons=tuple(r for r in order if r in self._chosen),
        )
        self._job(
            Msg.of("Sending your evaluation…"),
            lambda: self._hall.record_evaluation(evaluation),
            self._recorded,
        )

    def skip(self) -> None:
        self._idle(S.CHOOSE_LEVEL, S.CHOOSE_REASONS)
        self._end(Cancelled())

    def finish(self) -> None:
        self._idle(S.THANKS)
        self._end(Finished("evaluation", self._reference, evaluate=False))

    def cancel(self) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: cancel while busy")
        if self._state is not S.CLOSED:
            self._end(Cancelled())

    def wipe(self) -> None:
        self._level = None
        self._chosen.clear()
        self._service = self._reference = ""
        self._state = S.CLOSED
        super().wipe()

    # -- internals ---------------------------------------------------------------------------

    def _recorded(self, outcome: Outcome[None]) -> None:
        if outcome.ok:
            self._go(S.THANKS)
        else:  # stay, so the applicant can try again or leave
            self._notify(
                Notice(
                    Msg.of("Your evaluation could not be recorded. Please try again."),
                    "evaluation_not_recorded",
                )
            )

    def _required(self) -> bool:
        return self._level is not None and self._level.value <= REASONS_REQUIRED_AT_OR_BELOW

    def _idle(self, *states: EvaluationState) -> None:
        if self.busy is not None:
            raise FlowStateError(f"{self.name}: busy")
        self._require(*states)

    def _end(self, end: JourneyEnd) -> None:
        self._ended = end
        self.wipe()
