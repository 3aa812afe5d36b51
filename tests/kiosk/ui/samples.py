"""A tiny journey and its screen, defined here so the UI layer is tested without the real
journeys: a 6-digit code on a keypad, checked by a background job that the test releases."""

from __future__ import annotations

import threading
from enum import StrEnum
from typing import Any

from kivy.uix.widget import Widget

from kiosk.flows.base import Flow, Msg, Notice, Outcome, Text, Worker
from kiosk.flows.keypad import Keypad as KeypadModel
from kiosk.ui.context import UiContext
from kiosk.ui.flow_screen import FlowScreen
from kiosk.ui.widgets import Keypad, TextLabel

GATE_TIMEOUT_S = 30.0


class SampleState(StrEnum):
    ENTERING = "entering"
    DONE = "done"


class SampleFlow(Flow[SampleState]):
    name = "sample"

    def __init__(self, worker: Worker) -> None:
        super().__init__(worker, SampleState.ENTERING)
        self.keypad = KeypadModel(6, secret=True)
        self.title: Text = Msg("Please enter the 6-digit pickup password.")
        self.checked: list[str] = []
        self.gate = threading.Event()  # the job waits on it: the test sees the busy state

    def press(self, digit: str) -> None:
        if self.keypad.press(digit):
            self._changed()

    def delete(self) -> None:
        self.keypad.delete()
        self._changed()

    def confirm(self) -> None:
        code = self.keypad.take()
        self._job(Msg("Checking the password…"), lambda: self._check(code), self._done)

    def _check(self, code: str) -> bool:
        self.gate.wait(GATE_TIMEOUT_S)
        self.checked.append(code)
        return code == "123456"

    def _done(self, outcome: Outcome[bool]) -> None:
        if outcome.ok and outcome.value:
            self._go(SampleState.DONE)
        else:
            self._notify(Notice(Msg("The password is wrong. Please try again."), call_staff=True))

    def set_title(self, title: Text) -> None:
        """Called from any thread by the tests, like a worker's callback would."""
        self.title = title
        self._changed()


class SampleScreen(FlowScreen[SampleFlow]):
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(ctx, **kwargs)
        self.title = TextLabel(ctx, role="title", fit_height=True)
        self.keypad: Keypad | None = None
        self.render_threads: list[int] = []

    def attach(self, flow: SampleFlow) -> None:
        self.keypad = None
        super().attach(flow)

    def render(self, flow: SampleFlow) -> None:
        self.render_threads.append(threading.get_ident())
        if self.keypad is None:
            self.body.clear_widgets()
            self.keypad = Keypad(self.ctx, flow.press, flow.delete, flow.confirm)
            self.body.add_widget(self.title)
            self.body.add_widget(self.keypad)
            self.body.add_widget(Widget())
        self.title.set_source(flow.title)
        self.keypad.show(flow.keypad.display, can_confirm=flow.keypad.complete)
