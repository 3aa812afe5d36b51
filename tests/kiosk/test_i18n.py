"""Catalogs, the PO/MO tools, the msgid extractor and the translator."""

from __future__ import annotations

import gettext
import string
from pathlib import Path

import pytest

from kiosk.flows.base import Bilingual, Msg
from kiosk.i18n import (
    LOCALE_DIR,
    Language,
    Translations,
    Translator,
    code_msgids,
    mo_path,
    po_path,
    read_catalog,
    untranslated,
    update_catalog,
    write_catalog,
)
from kiosk.locale.extract import scan_source
from kiosk.locale.po import Catalog, Entry, PoError, compile_mo, format_po, header_for, parse_po


def fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


# -- the committed catalogs ---------------------------------------------------------------------


@pytest.mark.parametrize("language", list(Language))
def test_committed_mo_is_a_fresh_compile_of_its_po(language: Language) -> None:
    catalog = read_catalog(language)
    assert mo_path(language).read_bytes() == compile_mo(catalog), (
        f"{mo_path(language)} is stale: run `python -m kiosk.i18n compile`"
    )


def test_every_msgid_in_the_code_has_a_chinese_translation() -> None:
    msgids, _dynamic = code_msgids()
    missing = untranslated(Language.ZH_CN, msgids)
    listing = "\n".join(f"  {m!r}  ({', '.join(p)})" for m, p in missing.items())
    assert not missing, (
        f"{len(missing)} msgid(s) have no zh_CN translation. Run `python -m kiosk.i18n update`, "
        f"translate them in {po_path(Language.ZH_CN)}, then `python -m kiosk.i18n compile`:\n"
        f"{listing}"
    )


@pytest.mark.parametrize("language", list(Language))
def test_translations_name_only_the_parameters_the_code_passes(language: Language) -> None:
    bad = [
        (e.msgid, e.msgstr)
        for e in read_catalog(language).entries
        if e.translated and not fields(e.msgstr) <= fields(e.msgid)
    ]
    assert not bad, f"translations with placeholders the msgid does not have: {bad}"


# the UI infrastructure's own modules (journey screens have their own tests)
UI_INFRASTRUCTURE = (
    "kiosk/ui/widgets/",
    "kiosk/ui/shell.py",
    "kiosk/ui/demo.py",
    "kiosk/ui/screens/home.py",
    "kiosk/ui/screens/out_of_service.py",
)


def test_the_ui_layer_s_own_texts_are_found_and_translated() -> None:
    msgids, _ = code_msgids()
    ours = {m: p for m, p in msgids.items() if any(x.startswith(UI_INFRASTRUCTURE) for x in p)}
    assert "More time" in ours
    assert "Large text" in ours
    assert not untranslated(Language.ZH_CN, ours)


# -- PO reading, writing and compiling ---------------------------------------------------------

TRICKY = Catalog(
    header_for("zh_CN"),
    [
        Entry('Say "hi"\\now', '说"你好"\\现在', comments=["# a translator's note"]),
        Entry("Two\nlines", "两\n行", references=["kiosk/ui/a.py:1", "kiosk/ui/b.py:2"]),
        Entry("Tab\there", "制表\t这里", flags=["fuzzy"]),
        Entry("Not yet", ""),
    ],
)


def test_po_survives_a_round_trip() -> None:
    again = parse_po(format_po(TRICKY))
    assert again == TRICKY


def test_mo_holds_translated_entries_only_and_gnu_gettext_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "x.mo"
    path.write_bytes(compile_mo(TRICKY))
    with path.open("rb") as f:
        catalog = gettext.GNUTranslations(f)
    assert catalog.gettext('Say "hi"\\now') == '说"你好"\\现在'
    assert catalog.gettext("Two\nlines") == "两\n行"
    assert catalog.gettext("Tab\there") == "Tab\there"  # fuzzy: not used
    assert catalog.gettext("Not yet") == "Not yet"
    assert catalog.info()["language"] == "zh_CN"


def test_mo_output_is_deterministic() -> None:
    shuffled = Catalog(TRICKY.header, list(reversed(TRICKY.entries)))
    assert compile_mo(shuffled) == compile_mo(TRICKY)


@pytest.mark.parametrize(
    "text",
    [
        'msgid ""\nmsgstr ""\n\nmsgid "a"\nmsgid_plural "as"\nmsgstr[0] "x"\n',
        'msgid ""\nmsgstr ""\n\nmsgctxt "c"\nmsgid "a"\nmsgstr "x"\n',
        'msgid ""\nmsgstr ""\n\nmsgid "a"\nmsgstr "x"\n\nmsgid "a"\nmsgstr "y"\n',
        'msgid ""\nmsgstr ""\n\nmsgid "a\\q"\nmsgstr ""\n',
        'msgid "a"\nmsgstr "x"\n',
    ],
    ids=["plural", "context", "duplicate", "bad-escape", "no-header"],
)
def test_po_reader_refuses_what_it_does_not_support(text: str) -> None:
    with pytest.raises(PoError):
        parse_po(text)


# -- the extractor and the update command ------------------------------------------------------

SOURCE = """
from kiosk.flows.base import Msg
from kiosk.flows import base

A = Msg.of("Take a ticket")
B = Msg("Plain {n}", (("n", 1),))
C = base.Msg.of("Qualified")
D = Msg.of(msgid="By keyword")
E = Msg.of(f"dynamic {A}")
F = Msg.of(SOME_NAME)
G = Other.of("not ours")
"""


def test_extractor_finds_literal_msgids_and_reports_dynamic_ones() -> None:
    found, dynamic = scan_source(SOURCE, "kiosk/x.py")
    assert [f.msgid for f in found] == ["Take a ticket", "Plain {n}", "Qualified", "By keyword"]
    assert found[0].place == "kiosk/x.py:5"
    assert [d.place for d in dynamic] == ["kiosk/x.py:9", "kiosk/x.py:10"]


def test_update_adds_missing_msgids_empty_and_keeps_translations(tmp_path: Path) -> None:
    catalog = Catalog(header_for("zh_CN"), [Entry("Old", "旧"), Entry("Kept", "保留")])
    msgids = {"Kept": ["kiosk/a.py:3"], "New one": ["kiosk/b.py:7"]}
    updated, added = update_catalog(catalog, msgids)
    assert added == 1
    assert [(e.msgid, e.msgstr, e.references) for e in updated.entries] == [
        ("Old", "旧", []),  # no longer in the code: kept, without references
        ("Kept", "保留", ["kiosk/a.py:3"]),
        ("New one", "", ["kiosk/b.py:7"]),
    ]
    write_catalog(Language.ZH_CN, updated, tmp_path)
    assert read_catalog(Language.ZH_CN, tmp_path) == updated
    assert untranslated(Language.ZH_CN, msgids, tmp_path) == {"New one": ["kiosk/b.py:7"]}


# -- the translator ----------------------------------------------------------------------------


@pytest.fixture
def translations(tmp_path: Path) -> Translations:
    zh = Catalog(
        header_for("zh_CN"),
        [
            Entry("You are number {position} in the queue", "您前面还有 {position} 人"),
            Entry("Window {window}: {what}", "{window}号窗口：{what}"),
            Entry("Collect", "取件"),
            Entry("Broken {name}", "坏了 {nam}"),  # a translator's typo
        ],
    )
    write_catalog(Language.ZH_CN, zh, tmp_path)
    write_catalog(Language.EN, Catalog(header_for("en"), []), tmp_path)
    return Translations.load(tmp_path)


def test_translator_formats_parameters_in_each_language(translations: Translations) -> None:
    text = Msg.of("You are number {position} in the queue", position=3)
    assert translations[Language.ZH_CN].text(text) == "您前面还有 3 人"
    assert translations[Language.EN].text(text) == "You are number 3 in the queue"


def test_nested_texts_are_translated_too(translations: Translations) -> None:
    text = Msg.of("Window {window}: {what}", window=5, what=Msg("Collect"))
    assert translations.text(text, "zh") == "5号窗口：取件"
    assert translations.text(text, "en") == "Window 5: Collect"


def test_bilingual_texts_pick_their_language(translations: Translations) -> None:
    text = Bilingual("柜门未关", "The door is open")
    assert translations.text(text, "zh_CN") == "柜门未关"
    assert translations.text(text, "en") == "The door is open"


def test_a_translation_with_a_wrong_placeholder_shows_english(
    translations: Translations,
) -> None:
    text = Msg.of("Broken {name}", name="printer")
    assert translations[Language.ZH_CN].text(text) == "Broken printer"


def test_a_missing_catalog_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"kiosk\.i18n compile"):
        Translator.load(Language.ZH_CN, tmp_path)


def test_language_codes_of_the_session_are_understood() -> None:
    assert Language.parse("zh") is Language.ZH_CN
    assert Language.parse("zh-CN") is Language.ZH_CN
    assert Language.parse("en") is Language.EN
    assert [language.short for language in Language] == ["zh", "en"]
    with pytest.raises(ValueError, match="unsupported"):
        Language.parse("fr")


def test_the_packaged_catalogs_load() -> None:
    zh = Translator.load(Language.ZH_CN, LOCALE_DIR)
    assert zh.text(Msg("More time")) != "More time"
