"""Layouts whose height follows their content (``minimum_height``), for stacking blocks of
any length in a vertical layout."""

from __future__ import annotations

from typing import Any

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout


class FitBox(BoxLayout):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("size_hint_y", None)
        super().__init__(**kwargs)

    def on_minimum_height(self, _instance: Any, value: float) -> None:
        self.height = value


class FitGrid(GridLayout):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("size_hint_y", None)
        super().__init__(**kwargs)

    def on_minimum_height(self, _instance: Any, value: float) -> None:
        self.height = value
