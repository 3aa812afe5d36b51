"""``FlowScreen``: the base of every screen. It renders one flow and forwards touches to it.

A flow announces changes to its listeners on whatever thread changed it (a worker's ``done``
may run anywhere). The screen's listener only pulls a Clock trigger, so ``render`` always runs
on the Kivy main thread, once per frame however many changes came in. A language or mode
change triggers the same render.

Subclasses implement ``render(flow)``: read ``flow.state`` and the flow's view, and (re)build
``self.body``. They never call ``render`` themselves and hold no rules; a button calls a flow
method, the flow changes, the screen renders. The flow's ``busy`` text and ``notice`` are shown
here, for every screen alike.

"Flow" is anything with ``subscribe``: a ``kiosk.flows.base.Flow`` journey, or the session
itself for the home page. ``busy``, ``notice`` and ``dismiss_notice`` are used when present.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from kivy.clock import Clock
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import Screen

from kiosk.flows.base import Notice, Text
from kiosk.ui.context import UiContext
from kiosk.ui.widgets.overlays import BusyOverlay, NoticeBox


class Observable(Protocol):
    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]: ...


F = TypeVar("F", bound=Observable)


class FlowScreen(Screen, Generic[F]):  # type: ignore[misc]
    def __init__(self, ctx: UiContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ctx = ctx
        self.flow: F | None = None
        self.renders = 0  # how many times render ran (tests and the bench read it)
        self._unsubscribe: Any = None
        self._render_trigger = Clock.create_trigger(self._render_now)
        self.body = BoxLayout(orientation="vertical")
        self.busy_overlay = BusyOverlay(ctx)
        self.notice_box = NoticeBox(ctx, on_ok=self._dismiss_notice)
        self._layers = FloatLayout()
        self._layers.add_widget(self.body)
        self.add_widget(self._layers)
        ctx.bind(revision=self._on_context)

    # -- binding to a flow ---------------------------------------------------------------------

    def attach(self, flow: F) -> None:
        """Show ``flow`` from the next frame on; the previous flow, if any, is let go."""
        self.detach()
        self.flow = flow
        self._unsubscribe = flow.subscribe(self._on_flow_changed)
        self._render_trigger()

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.flow = None
        self._render_trigger.cancel()

    def on_leave(self, *_args: Any) -> None:
        # a late on_leave (after a transition) must not drop a flow attached since
        if self.manager is None or self.manager.current != self.name:
            self.detach()

    def _on_flow_changed(self, _flow: Any) -> None:
        self._render_trigger()  # any thread: Clock scheduling is thread safe

    def _on_context(self, *_args: Any) -> None:
        if self.flow is not None:
            self._render_trigger()

    # -- rendering -----------------------------------------------------------------------------

    def _render_now(self, _dt: float) -> None:
        flow = self.flow
        if flow is None:
            return
        sizes = self.ctx.theme.sizes
        self.body.padding = sizes.padding_px
        self.body.spacing = sizes.spacing_px
        self.render(flow)
        self.renders += 1
        self._show_overlays(flow)

    def render(self, flow: F) -> None:
        raise NotImplementedError

    def _show_overlays(self, flow: F) -> None:
        notice: Notice | None = getattr(flow, "notice", None)
        busy: Text | None = getattr(flow, "busy", None)
        if notice is not None:
            self.notice_box.show(notice)
        self._layer(self.notice_box, notice is not None, on_top=False)
        if busy is not None:
            self.busy_overlay.show(busy)
        self._layer(self.busy_overlay, busy is not None, on_top=True)

    def _layer(self, overlay: Any, visible: bool, on_top: bool) -> None:
        if visible and overlay.parent is None:
            # children[0] is drawn last: busy goes on top, a notice just above the body
            index = 0 if on_top else len(self._layers.children) - 1
            self._layers.add_widget(overlay, index=index)
        elif not visible and overlay.parent is not None:
            self._layers.remove_widget(overlay)

    def _dismiss_notice(self) -> None:
        dismiss = getattr(self.flow, "dismiss_notice", None)
        if dismiss is not None:
            dismiss()
