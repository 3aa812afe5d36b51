"""What every widget needs to draw itself: the session's language and mode, the translator
and the theme for them. One per app, handed to every screen and widget (never a global).

Widgets bind to ``revision``, which moves whenever the language or the mode changes, and
re-render their texts and sizes from ``text()`` and ``theme``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, NumericProperty, OptionProperty

from kiosk.flows.base import Text
from kiosk.i18n import DEFAULT_LANGUAGE, LOCALE_DIR, Language, Translations
from kiosk.ui.settings import UiSettings
from kiosk.ui.theme import Theme, make_theme


class UiContext(EventDispatcher):  # type: ignore[misc]
    language = OptionProperty(DEFAULT_LANGUAGE.value, options=[lang.value for lang in Language])
    elderly = BooleanProperty(False)
    revision = NumericProperty(0)

    def __init__(
        self,
        translations: Translations,
        themes: tuple[Theme, Theme],  # (standard, elderly)
        language: Language = DEFAULT_LANGUAGE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.translations = translations
        self._themes = themes
        self.language = language.value
        self.bind(language=self._bump, elderly=self._bump)

    def _bump(self, *_args: Any) -> None:
        self.revision += 1

    @property
    def lang(self) -> Language:
        return Language(self.language)

    @property
    def theme(self) -> Theme:
        return self._themes[1 if self.elderly else 0]

    def text(self, text: Text) -> str:
        return self.translations[self.lang].text(text)

    def set_language(self, language: Language | str) -> None:
        self.language = Language.parse(language).value

    def set_elderly(self, elderly: bool) -> None:
        self.elderly = elderly


def make_context(settings: UiSettings, locale_dir: Path = LOCALE_DIR) -> UiContext:
    """The app's context: both catalogs loaded, both themes sized for the panel."""
    themes = (make_theme(False, settings.screen_dpi), make_theme(True, settings.screen_dpi))
    return UiContext(
        Translations.load(locale_dir), themes, language=Language(settings.default_language)
    )
