"""Out of service: why, and where to go instead. Shown by the session when ops locked the
kiosk or critical hardware failed; nothing here can be touched but the language switch."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kivy.uix.widget import Widget

from kiosk.flows.base import Msg, Text
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import FlowScreen
from kiosk.ui.widgets import TextLabel


class OutOfServiceModel(Protocol):
    @property
    def out_of_service_reason(self) -> Text | None: ...

    @property
    def where_instead(self) -> Text | None: ...

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...


class OutOfServiceScreen(FlowScreen[OutOfServiceModel]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.heading = TextLabel(
            ctx, Msg("This kiosk is out of service"), role="title", fit_height=True
        )
        self.reason = TextLabel(ctx, fit_height=True)
        self.where = TextLabel(ctx, fit_height=True)
        for widget in (self.heading, self.reason, self.where):
            self.body.add_widget(widget)
        self.body.add_widget(Widget())  # takes the rest of the height

    def render(self, flow: OutOfServiceModel) -> None:
        self.reason.set_source(flow.out_of_service_reason)
        self.where.set_source(flow.where_instead)
