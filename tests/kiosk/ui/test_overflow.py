"""The overflow check finds text that does not fit its box, and only that."""

from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label

from kiosk.flows.base import Msg
from kiosk.ui.context import UiContext
from kiosk.ui.widgets import TextLabel, plain
from tests.kiosk.ui.harness import KivyHarness

LONG = (
    "Please place your ID card on the reader, scan your booking QR code, or enter your "
    "booking number, and then wait for the ticket to be printed."
)


def placed(widget: Label, x: float, y: float, width: float, height: float) -> Label:
    widget.size_hint = (None, None)
    widget.pos = (x, y)
    widget.size = (width, height)
    return widget


def test_a_label_too_small_for_its_text_is_reported(ui: KivyHarness, ctx: UiContext) -> None:
    room = FloatLayout()
    fits = placed(TextLabel(ctx, plain("OK")), 50, 1500, 600, 100)
    wrapped_too_tall = placed(TextLabel(ctx, plain(LONG)), 50, 1200, 400, 90)
    unwrapped_too_wide = placed(Label(text=LONG, font_size=40), 50, 1000, 300, 100)
    # a fixed text_size height makes Kivy drop the lines that do not fit, silently
    clipped = placed(Label(text=LONG, font_size=40, valign="top"), 50, 700, 400, 100)
    clipped.text_size = (400, 100)
    shortened = placed(Label(text=LONG, font_size=40, shorten=True), 50, 400, 300, 100)
    shortened.text_size = (300, None)
    off_screen = placed(TextLabel(ctx, plain("OK")), 1000, 100, 200, 100)
    word_split = placed(TextLabel(ctx, plain("Appointment")), 700, 1500, 120, 300)
    strip = BoxLayout(size_hint=(None, None), pos=(600, 600), size=(400, 80))
    grown = TextLabel(ctx, plain(LONG), fit_height=True)  # taller than the strip it is in
    strip.add_widget(grown)
    for widget in (
        fits,
        wrapped_too_tall,
        unwrapped_too_wide,
        clipped,
        shortened,
        off_screen,
        word_split,
        strip,
    ):
        room.add_widget(widget)
    ui.mount(room)

    found = {id(o.widget): o.reason for o in ui.overflows()}

    assert found == {
        id(wrapped_too_tall): "too tall",
        id(unwrapped_too_wide): "too wide",
        id(clipped): "too tall",
        id(off_screen): "outside the window",
        id(word_split): "the word 'Appointment' is split across lines",
        id(grown): "sticks out of its parent",
    }, [str(o) for o in ui.overflows()]


def test_chinese_without_spaces_wraps_and_fits(ui: KivyHarness, ctx: UiContext) -> None:
    room = FloatLayout()
    text = "请将身份证放在读卡区，或扫描预约二维码，或输入预约号，然后等待打印排队号。"
    room.add_widget(placed(TextLabel(ctx, plain(text)), 50, 1000, 500, 400))
    ui.mount(room)
    assert ui.overflows() == []


def test_overflows_name_the_text(ui: KivyHarness, ctx: UiContext) -> None:
    room = FloatLayout()
    room.add_widget(placed(TextLabel(ctx, Msg("Please choose a service")), 50, 1000, 80, 40))
    ui.mount(room)
    (overflow,) = ui.overflows()
    assert overflow.text == "请选择办理的业务"
    assert "请选择办理的业务" in str(overflow)
