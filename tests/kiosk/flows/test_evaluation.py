"""好差评 through the real gateway into the real hall (the evaluation event, counted in the
hall's daily summary)."""

from __future__ import annotations

from typing import Any

import pytest

from hall import evaluations
from hall.service import Hall
from kiosk.flows.base import FlowStateError, InlineWorker, Msg, QueueWorker
from kiosk.flows.evaluation import (
    LEVELS,
    NEGATIVE_REASONS,
    POSITIVE_REASONS,
    EvaluationFlow,
    EvaluationState,
)
from kiosk.flows.home import Cancelled, Finished
from kiosk.services.hall_service import HallGateway

S = EvaluationState
DAY = "2026-11-23"


def summary(hall: Hall) -> dict[str, Any]:
    return evaluations.summary(hall.store.conn, DAY)


def test_levels_are_the_five_of_the_national_scheme() -> None:
    assert [lv.value for lv in LEVELS] == [5, 4, 3, 2, 1]
    assert LEVELS[0].text == Msg.of("Very satisfied")
    assert LEVELS[-1].text == Msg.of("Very dissatisfied")


def test_a_good_rating_with_an_optional_reason_reaches_the_hall(
    inline: InlineWorker, hall: Hall, hall_service: HallGateway
) -> None:
    flow = EvaluationFlow(inline, hall_service, service="ticket", reference="t-123")
    assert flow.state is S.CHOOSE_LEVEL
    assert flow.prompt == Msg.of("How satisfied are you with this service?")
    flow.choose_level(5)
    view = flow.view
    assert flow.state is S.CHOOSE_REASONS
    assert view.reasons == POSITIVE_REASONS and not view.reasons_required and view.can_submit
    flow.toggle_reason("fast")
    flow.toggle_reason("easy_to_use")
    flow.toggle_reason("easy_to_use")  # a second touch takes it back
    assert flow.view.chosen == frozenset({"fast"})
    flow.submit()
    assert flow.state is S.THANKS
    assert flow.prompt == Msg.of("Thank you for your evaluation.")
    got = summary(hall)
    assert got["count"] == 1 and got["levels"]["5"] == 1
    assert got["reasons"] == {"fast": 1} and got["by_service"] == {"ticket": 1}
    row = hall.store.conn.execute("SELECT reference FROM evaluations").fetchone()
    assert row["reference"] == "t-123"
    flow.finish()
    assert flow.ended == Finished("evaluation", "t-123", evaluate=False)


def test_a_bad_rating_needs_a_reason(
    inline: InlineWorker, hall: Hall, hall_service: HallGateway
) -> None:
    flow = EvaluationFlow(inline, hall_service, service="pickup", reference="42")
    flow.choose_level(2)
    view = flow.view
    assert view.reasons == NEGATIVE_REASONS and view.reasons_required and not view.can_submit
    assert flow.prompt == Msg.of("Please tell us what went wrong.")
    flow.submit()
    assert flow.state is S.CHOOSE_REASONS
    assert flow.notice is not None and flow.notice.code == "evaluation_reason_needed"
    assert summary(hall)["count"] == 0
    flow.toggle_reason("long_wait")
    assert flow.notice is None and flow.view.can_submit
    flow.toggle_reason("device_fault")
    flow.submit()
    assert flow.state is S.THANKS
    got = summary(hall)
    assert got["bad_ratio"] == 1.0
    assert got["reasons"] == {"long_wait": 1, "device_fault": 1}


def test_changing_the_level_clears_reasons_of_the_other_list(
    inline: InlineWorker, hall_service: HallGateway
) -> None:
    flow = EvaluationFlow(inline, hall_service, service="ticket", reference="")
    flow.choose_level(4)
    flow.toggle_reason("helpful_staff")
    flow.back()
    assert flow.state is S.CHOOSE_LEVEL and flow.view.chosen == frozenset({"helpful_staff"})
    flow.choose_level(5)  # the same list: kept
    assert flow.view.chosen == frozenset({"helpful_staff"})
    flow.choose_level(1)
    assert flow.view.chosen == frozenset() and flow.view.reasons == NEGATIVE_REASONS
    with pytest.raises(FlowStateError):
        flow.toggle_reason("helpful_staff")  # not on this list
    with pytest.raises(FlowStateError):
        flow.choose_level(6)
    flow.choose_level(3)  # basically satisfied: reasons offered, not required
    assert flow.view.reasons == NEGATIVE_REASONS and flow.view.can_submit


def test_a_rating_the_hall_would_refuse_is_said_plainly(
    inline: InlineWorker, hall: Hall, hall_service: HallGateway
) -> None:
    flow = EvaluationFlow(inline, hall_service, service="evaluation", reference="x")
    flow.choose_level(4)
    flow.submit()
    assert flow.state is S.CHOOSE_REASONS
    assert flow.notice is not None and flow.notice.code == "evaluation_not_recorded"
    assert summary(hall)["count"] == 0
    flow.skip()
    assert flow.ended == Cancelled()


def test_busy_while_sending_and_a_wipe_drops_the_answer(
    queued: QueueWorker, hall: Hall, hall_service: HallGateway
) -> None:
    flow = EvaluationFlow(queued, hall_service, service="prereview", reference="YS2026112300001")
    flow.choose_level(1)
    flow.toggle_reason("unclear_guide")
    flow.submit()
    assert flow.busy == Msg.of("Sending your evaluation…") and flow.state is S.CHOOSE_REASONS
    with pytest.raises(FlowStateError):
        flow.skip()
    flow.wipe()
    queued.pump()
    assert flow.state is S.CLOSED and flow.busy is None
    assert flow.view.level is None and flow.view.chosen == frozenset()
    assert flow.reference == "" and flow.service == ""
    assert summary(hall)["count"] == 1  # the job had run: the rating is recorded


def test_skip_from_the_first_screen(inline: InlineWorker, hall_service: HallGateway) -> None:
    flow = EvaluationFlow(inline, hall_service, service="ticket", reference="")
    for call in (flow.submit, flow.back, flow.finish):
        with pytest.raises(FlowStateError):
            call()
    flow.skip()
    assert flow.ended == Cancelled() and flow.state is S.CLOSED
