"""A Label that shows a flow ``Text`` in the session's language at a theme size."""

from __future__ import annotations

from typing import Any, Literal

from kivy.uix.label import Label

from kiosk.flows.base import Bilingual, Text
from kiosk.ui.context import UiContext
from kiosk.ui.theme import FontRole

Colour = Literal[
    "text", "text_muted", "on_primary", "on_secondary", "on_warning", "on_danger", "on_header"
]


def plain(value: str) -> Bilingual:
    """A text that reads the same in every language (digits, a masked ID number)."""
    return Bilingual(value, value)


class TextLabel(Label):  # type: ignore[misc]
    """Wraps to its width. With ``fit_height`` its height follows the text, so a layout can
    stack labels of any length; otherwise the layout decides and the overflow check in the
    tests reports text that does not fit. With ``fit_width`` it does not wrap: its width
    follows the text (short labels such as a language name)."""

    def __init__(
        self,
        ctx: UiContext,
        source: Text | None = None,
        *,
        role: FontRole = "body",
        colour: Colour = "text",
        fit_height: bool = False,
        fit_width: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("halign", "center")
        kwargs.setdefault("valign", "middle")
        super().__init__(**kwargs)
        self.ctx = ctx
        self.source = source
        self.role: FontRole = role
        self.colour: Colour = colour
        self.fit_height = fit_height
        self.fit_width = fit_width
        if fit_height:
            self.size_hint_y = None
        if fit_width:
            self.size_hint_x = None
        self.bind(width=self._wrap, texture_size=self._fit)
        ctx.bind(revision=self.refresh)  # a bound method: Kivy keeps it weakly
        self.refresh()

    def set_source(self, source: Text | None) -> None:
        self.source = source
        self.refresh()

    def refresh(self, *_args: Any) -> None:
        theme = self.ctx.theme
        self.text = "" if self.source is None else self.ctx.text(self.source)
        self.font_size = theme.sizes.font(self.role)
        self.color = getattr(theme.palette, self.colour)

    def _wrap(self, *_args: Any) -> None:
        if self.fit_width:
            return
        left, _top, right, _bottom = self.padding
        self.text_size = (max(0.0, self.width - left - right), None)

    def _fit(self, *_args: Any) -> None:
        # the texture includes the padding
        if self.fit_height:
            self.height = self.texture_size[1]
        if self.fit_width:
            self.width = self.texture_size[0]
