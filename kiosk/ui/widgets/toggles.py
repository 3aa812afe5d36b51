"""The two switches on every screen: language (中文/English) and elderly mode (大字版)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kiosk.flows.base import Bilingual, Msg
from kiosk.i18n import Language
from kiosk.ui.context import UiContext
from kiosk.ui.widgets.buttons import KioskButton

# each language's button is labelled in the language it switches to
_OTHER_LANGUAGE = Bilingual(zh="English", en="中文")


class LanguageToggle(KioskButton):
    """Shows the other language's name; a tap asks for that language."""

    def __init__(
        self, ctx: UiContext, on_choose: Callable[[Language], None], **kwargs: Any
    ) -> None:
        self._on_choose = on_choose
        super().__init__(ctx, _OTHER_LANGUAGE, self._tap, "secondary", **kwargs)

    def _tap(self) -> None:
        other = Language.EN if self.ctx.lang is Language.ZH_CN else Language.ZH_CN
        self._on_choose(other)


class ElderlyToggle(KioskButton):
    """ "Large text" while off, "Standard text" while on; a tap asks for the other mode."""

    def __init__(self, ctx: UiContext, on_choose: Callable[[bool], None], **kwargs: Any) -> None:
        self._on_choose = on_choose
        super().__init__(ctx, Msg("Large text"), self._tap, "secondary", **kwargs)

    def _tap(self) -> None:
        self._on_choose(not self.ctx.elderly)

    def refresh(self, *args: Any) -> None:
        self.source = Msg("Standard text") if self.ctx.elderly else Msg("Large text")
        super().refresh(*args)
