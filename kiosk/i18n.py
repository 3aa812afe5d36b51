"""Translating the texts flows hold (``Msg``, ``Bilingual``) with gettext catalogs.

zh_CN is the default language, English the other. The msgid is the English source text, so the
English catalog may leave a msgstr empty (gettext then shows the msgid).

Catalogs live in ``kiosk/locale/{language}/LC_MESSAGES/kiosk.po`` with a compiled ``.mo`` beside
each. Keep them in step with the code::

    python -m kiosk.i18n extract   # list every msgid in kiosk/ (and calls it cannot read)
    python -m kiosk.i18n update    # add missing msgids (empty msgstr) to every .po, recompile
    python -m kiosk.i18n compile   # recompile every .mo from its .po
    python -m kiosk.i18n check     # exit 1 listing msgids with no zh_CN translation
"""

from __future__ import annotations

import argparse
import gettext
import logging
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from kiosk.flows.base import Bilingual, Msg, Text
from kiosk.locale.extract import Dynamic, msgids_in_order, scan_package
from kiosk.locale.po import Catalog, Entry, compile_mo, format_po, header_for, parse_po

DOMAIN = "kiosk"
PACKAGE_DIR = Path(__file__).resolve().parent
LOCALE_DIR = PACKAGE_DIR / "locale"

log = logging.getLogger(__name__)


class Language(StrEnum):
    ZH_CN = "zh_CN"
    EN = "en"

    @classmethod
    def parse(cls, code: str) -> Language:
        """``zh``, ``zh_CN``, ``zh-CN`` or ``en`` (the session says ``zh``/``en``)."""
        normal = code.replace("-", "_")
        if normal in ("zh", "zh_CN"):
            return cls.ZH_CN
        if normal in ("en", "en_US", "en_GB"):
            return cls.EN
        raise ValueError(f"unsupported language {code!r}")

    @property
    def short(self) -> str:
        """``zh`` or ``en``, as the session names them."""
        return self.value.split("_")[0]


DEFAULT_LANGUAGE = Language.ZH_CN


class CatalogMissing(FileNotFoundError):
    pass


def po_path(language: Language, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / language.value / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(language: Language, locale_dir: Path = LOCALE_DIR) -> Path:
    return po_path(language, locale_dir).with_suffix(".mo")


class Translator:
    """Turns a flow's ``Text`` into the string shown in one language."""

    def __init__(self, language: Language, catalog: gettext.NullTranslations) -> None:
        self.language = language
        self._catalog = catalog

    @classmethod
    def load(cls, language: Language, locale_dir: Path = LOCALE_DIR) -> Translator:
        path = mo_path(language, locale_dir)
        try:
            with path.open("rb") as f:
                return cls(language, gettext.GNUTranslations(f))
        except FileNotFoundError:
            raise CatalogMissing(
                f"no compiled catalog {path}; run `python -m kiosk.i18n compile`"
            ) from None

    def text(self, text: Text) -> str:
        if isinstance(text, Bilingual):
            return text.zh if self.language is Language.ZH_CN else text.en
        params = {key: self._param(value) for key, value in text.params}
        translated = self._catalog.gettext(text.msgid)
        try:
            return translated.format(**params) if params else translated
        except (KeyError, IndexError, ValueError):
            # a translation naming a parameter the code does not pass: show the English text
            # rather than a traceback (tests/kiosk/test_i18n.py catches this before release)
            log.error("bad placeholders in the %s translation of %r", self.language, text.msgid)
            try:
                return text.msgid.format(**params)
            except (KeyError, IndexError, ValueError):
                return text.msgid

    def _param(self, value: Any) -> Any:
        return self.text(value) if isinstance(value, Msg | Bilingual) else value


def load_translators(locale_dir: Path = LOCALE_DIR) -> dict[Language, Translator]:
    return {language: Translator.load(language, locale_dir) for language in Language}


class Translations:
    """Both languages' translators. ``text(text, "zh")`` fits the session's ``translate``
    callback (it speaks prompts in elderly mode)."""

    def __init__(self, translators: Mapping[Language, Translator]) -> None:
        self._translators = dict(translators)

    @classmethod
    def load(cls, locale_dir: Path = LOCALE_DIR) -> Translations:
        return cls(load_translators(locale_dir))

    def __getitem__(self, language: Language) -> Translator:
        return self._translators[language]

    def text(self, text: Text, language: str) -> str:
        return self._translators[Language.parse(language)].text(text)


# -- keeping the catalogs in step with the code ------------------------------------------------


def read_catalog(language: Language, locale_dir: Path = LOCALE_DIR) -> Catalog:
    path = po_path(language, locale_dir)
    if not path.exists():
        return Catalog(header_for(language.value), [])
    return parse_po(path.read_text(encoding="utf-8"), str(path))


def code_msgids(package_dir: Path = PACKAGE_DIR) -> tuple[dict[str, list[str]], list[Dynamic]]:
    found, dynamic = scan_package(package_dir)
    return msgids_in_order(found), dynamic


def untranslated(
    language: Language, msgids: Mapping[str, Sequence[str]], locale_dir: Path = LOCALE_DIR
) -> dict[str, list[str]]:
    """msgids the code uses that ``language``'s catalog does not translate, with their places."""
    catalog = read_catalog(language, locale_dir)
    done = {e.msgid for e in catalog.entries if e.translated}
    return {msgid: list(places) for msgid, places in msgids.items() if msgid not in done}


def update_catalog(catalog: Catalog, msgids: Mapping[str, Sequence[str]]) -> tuple[Catalog, int]:
    """Add missing msgids (empty msgstr) and refresh every entry's references. Entries the code
    no longer uses are kept, with no references, so a translation is never thrown away."""
    entries: list[Entry] = []
    for entry in catalog.entries:
        entry.references = list(msgids.get(entry.msgid, []))
        entries.append(entry)
    known = {e.msgid for e in entries}
    added = [Entry(m, references=list(p)) for m, p in msgids.items() if m not in known]
    return Catalog(catalog.header, entries + added), len(added)


def write_catalog(language: Language, catalog: Catalog, locale_dir: Path = LOCALE_DIR) -> None:
    path = po_path(language, locale_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_po(catalog), encoding="utf-8")
    mo_path(language, locale_dir).write_bytes(compile_mo(catalog))


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.i18n", description=__doc__)
    parser.add_argument("command", choices=["extract", "update", "compile", "check"])
    args = parser.parse_args(argv)
    msgids, dynamic = code_msgids()
    for odd in dynamic:
        print(f"warning: {odd.place}: msgid is not a literal: {odd.source}", file=sys.stderr)
    if args.command == "extract":
        for msgid, places in msgids.items():
            print(f"{msgid!r}  ({', '.join(places)})")
        return 0
    if args.command == "check":
        missing = untranslated(Language.ZH_CN, msgids)
        for msgid, places in missing.items():
            print(f"untranslated: {msgid!r}  ({', '.join(places)})")
        return 1 if missing else 0
    for language in Language:
        catalog = read_catalog(language)
        if args.command == "compile":
            mo_path(language).write_bytes(compile_mo(catalog))
            continue
        catalog, added = update_catalog(catalog, msgids)
        write_catalog(language, catalog)
        print(f"{po_path(language)}: {added} new msgid(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
