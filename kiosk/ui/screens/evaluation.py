"""Service evaluation (好差评): renders every ``EvaluationFlow`` state.

CHOOSE_LEVEL    five big buttons, 非常满意 … 非常不满意, one under the other; Skip
CHOOSE_REASONS  the reasons for that level as toggle buttons (a tick when chosen), Submit;
                Back (another level) / Skip
THANKS          thank you; Done
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.flows.base import Msg, Text
from kiosk.flows.evaluation import EvaluationFlow, EvaluationState, EvaluationView, Reason
from kiosk.flows.home import JourneyKind
from kiosk.ui.context import UiContext
from kiosk.ui.screens.common_a import BACK, DONE, JourneyScreen, act, main_actions
from kiosk.ui.shell import ScreenFactory
from kiosk.ui.widgets import KioskButton

S = EvaluationState

TITLE = Msg("Service evaluation")
SKIP = Msg("Skip")


def reason_text(reason: Reason, chosen: bool) -> Text:
    return Msg.of("✓ {reason}", reason=reason.text) if chosen else reason.text


class EvaluationScreen(JourneyScreen[EvaluationFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self._pages: dict[EvaluationState, Callable[[EvaluationFlow, EvaluationView], None]] = {
            S.CHOOSE_LEVEL: self._choose_level,
            S.CHOOSE_REASONS: self._choose_reasons,
            S.THANKS: self._thanks,
            S.CLOSED: self._closed,
        }

    def build(self, flow: EvaluationFlow) -> None:
        self._pages[flow.state](flow, flow.view)

    # -- pages ---------------------------------------------------------------------------------

    def _choose_level(self, flow: EvaluationFlow, view: EvaluationView) -> None:
        self.page(
            self.title(flow.prompt),
            main_actions(
                self,
                *[
                    self.button(level.text, act(flow.choose_level, level.value), height_role="tile")
                    for level in view.levels
                ],
            ),
            nav=[self.nav_button(SKIP, act(flow.skip))],
        )

    def _choose_reasons(self, flow: EvaluationFlow, view: EvaluationView) -> None:
        toggles = [self._toggle(flow, reason, reason.id in view.chosen) for reason in view.reasons]
        self.page(
            self.title(flow.prompt),
            self.line(Msg.of("Your rating: {level}", level=view.level.text))
            if view.level is not None
            else None,
            self.line(Msg("Choose at least one."), role="small", colour="text_muted")
            if view.reasons_required
            else None,
            self.grid(toggles),
            main_actions(
                self,
                self.button(
                    Msg("Submit"), act(flow.submit), "primary" if view.can_submit else "secondary"
                ),
            ),
            nav=[self.nav_button(BACK, act(flow.back)), self.nav_button(SKIP, act(flow.skip))],
        )

    def _thanks(self, flow: EvaluationFlow, view: EvaluationView) -> None:
        self.page(
            self.title(flow.prompt),
            nav=[self.nav_button(DONE, act(flow.finish), "primary")],
        )

    def _closed(self, flow: EvaluationFlow, view: EvaluationView) -> None:
        self.page(self.title(TITLE))

    # -- parts ---------------------------------------------------------------------------------

    def _toggle(self, flow: EvaluationFlow, reason: Reason, chosen: bool) -> KioskButton:
        """A reason: ticked and filled when chosen; a touch turns it on or off."""
        return KioskButton(
            self.ctx,
            reason_text(reason, chosen),
            act(flow.toggle_reason, reason.id),
            "primary" if chosen else "secondary",
            role="body",
            height_role="key",
        )


SCREENS: dict[str, ScreenFactory] = {JourneyKind.EVALUATION.value: EvaluationScreen}

__all__ = ["SCREENS", "EvaluationScreen"]
