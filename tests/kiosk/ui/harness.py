"""Drive a real Kivy window in the test process: frames, synthetic touches, screenshots and an
overflow check.

Kivy's window is a process-wide singleton, so one window serves the whole test session (on a
private Xvfb, see tests/fixtures/xvfb.py) and each test mounts its own root widget into it. The
event loop is not run freely: ``step()`` runs one iteration of exactly what ``App.run()`` runs
(``EventLoop.idle()``: Clock, input providers, post-processing, draw; then the SDL event pump),
so a test decides when time moves and waits on conditions, never on sleeps.

Touches enter through Kivy's real input path: a ``MotionEventProvider`` registered with the
event loop, like the kernel touchscreen providers (hidinput, mtdev) on the kiosk. Its events go
through the post-processing modules (double tap, dejitter ...) and ``Window.on_motion`` to the
widget tree, so a modal box in the way, a disabled button or a wrong position all behave as
they would under a finger.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kivy.base import EventLoop, runTouchApp, stopTouchApp
from kivy.clock import Clock
from kivy.config import Config
from kivy.input.motionevent import MotionEvent
from kivy.input.provider import MotionEventProvider
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget
from PIL import Image

from kiosk.ui.app import configure_kivy
from kiosk.ui.context import UiContext
from kiosk.ui.fonts import register_default_font, resolve_fonts
from kiosk.ui.settings import UiSettings

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_WAIT_S = 10.0
SETTLE_MAX_FRAMES = 120
QUIET_FRAMES = 2  # frames with nothing redrawn before the screen counts as settled
SLACK_PX = 1  # rounding between a texture and its box


def artefacts_dir() -> Path:
    """Screenshots go to ``$HALLKIOSK_ARTEFACTS/screens`` or ``test-artefacts/screens``."""
    root = os.environ.get("HALLKIOSK_ARTEFACTS")
    base = Path(root) if root else REPO_ROOT / "test-artefacts"
    return base / "screens"


# -- synthetic touches through an input provider -----------------------------------------------


class SyntheticTouch(MotionEvent):  # type: ignore[misc]
    """A finger: position only, normalised to the window like a touchscreen's events."""

    def __init__(self, device: str, touch_id: int, position: tuple[float, float]) -> None:
        super().__init__(device, touch_id, position, is_touch=True, type_id="touch")

    def depack(self, args: tuple[float, float]) -> None:
        self.sx, self.sy = args
        self.profile = ["pos"]
        super().depack(args)


class SyntheticTouchProvider(MotionEventProvider):  # type: ignore[misc]
    """Queues touch events; the event loop collects them on its next frame."""

    def __init__(self) -> None:
        super().__init__("synthetic", "")
        self._pending: deque[tuple[str, SyntheticTouch]] = deque()
        self._ids = itertools.count(1)

    def update(self, dispatch_fn: Callable[[str, MotionEvent], None]) -> None:
        while self._pending:
            dispatch_fn(*self._pending.popleft())

    def down(self, position: tuple[float, float]) -> SyntheticTouch:
        touch = SyntheticTouch(self.device, next(self._ids), position)
        self._pending.append(("begin", touch))
        return touch

    def move(self, touch: SyntheticTouch, position: tuple[float, float]) -> None:
        touch.move(position)
        self._pending.append(("update", touch))

    def up(self, touch: SyntheticTouch) -> None:
        touch.update_time_end()
        self._pending.append(("end", touch))


# -- what the overflow check reports -----------------------------------------------------------


@dataclass(frozen=True)
class Overflow:
    widget: Label
    text: str
    box: tuple[int, int]
    needed: tuple[int, int]
    reason: str

    def __str__(self) -> str:
        return (
            f"{type(self.widget).__name__} {self.text!r}: {self.reason} "
            f"(box {self.box[0]}x{self.box[1]}, text needs {self.needed[0]}x{self.needed[1]})"
        )


@dataclass(frozen=True)
class ModeShot:
    mode: str  # "zh", "en", "elderly"
    path: Path
    overflows: list[Overflow]


# -- the harness -------------------------------------------------------------------------------


class KivyHarness:
    def __init__(self, window: Any, provider: SyntheticTouchProvider) -> None:
        self.window = window
        self.provider = provider
        self.flips = 0
        self.prefix = ""  # screenshot name prefix: the test's name
        # Every frame is drawn for real; only the last step, the buffer swap to the X server,
        # is skipped unless asked for (to watch the tests over VNC): nothing looks at Xvfb's
        # screen, screenshots read the drawn buffer before the swap, and under Xvfb the swap
        # is four fifths of a frame's time.
        self.present_frames = os.environ.get("HALLKIOSK_UI_PRESENT") == "1"
        window.bind(on_flip=self._count_flip)

    def _count_flip(self, *_args: Any) -> bool:
        self.flips += 1
        return not self.present_frames  # True: the window's own on_flip (the swap) is skipped

    # -- frames -----------------------------------------------------------------------------

    def step(self, frames: int = 1) -> None:
        """Run ``frames`` iterations of the app's main loop."""
        for _ in range(frames):
            EventLoop.idle()
            self.window.mainloop()  # SDL's event pump, as EventLoop.mainloop does

    def settle(self, max_frames: int = SETTLE_MAX_FRAMES) -> None:
        """Step until nothing is redrawn for a few frames (layouts and label textures are
        done), or ``max_frames`` (an animation, such as a busy spinner, never settles)."""
        quiet = 0
        for _ in range(max_frames):
            before = self.flips
            self.step()
            quiet = quiet + 1 if self.flips == before else 0
            if quiet >= QUIET_FRAMES:
                return

    def wait_for(
        self,
        predicate: Callable[[], object],
        what: str | Callable[[], str],
        timeout_s: float = DEFAULT_WAIT_S,
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out waiting for {what if isinstance(what, str) else what()}"
                )
            self.step()

    # -- the widget tree --------------------------------------------------------------------

    def mount(self, widget: Widget) -> Widget:
        self.window.add_widget(widget)
        self.settle()
        return widget

    def unmount_all(self) -> None:
        for child in list(self.window.children):
            stop = getattr(child, "stop", None)
            if callable(stop):
                stop()
            self.window.remove_widget(child)
        EventLoop.touches.clear()
        self.step()

    def visible_widgets(self) -> Iterator[Widget]:
        """Widgets drawn on screen: in the window, not transparent (nor any ancestor), with
        an area inside the window."""

        def walk(widget: Widget) -> Iterator[Widget]:
            if widget.opacity <= 0 or widget.width <= 0 or widget.height <= 0:
                return
            if self._on_window(widget):
                yield widget
            for child in reversed(widget.children):  # back to front, like drawing
                yield from walk(child)

        for root in reversed(self.window.children):
            yield from walk(root)

    def _on_window(self, widget: Widget) -> bool:
        left, bottom = widget.to_window(widget.x, widget.y)
        right, top = widget.to_window(widget.right, widget.top)
        return right > 0 and top > 0 and left < self.window.width and bottom < self.window.height

    def visible_labels(self) -> list[Label]:
        return [w for w in self.visible_widgets() if isinstance(w, Label) and w.text]

    def find_text(self, text: str) -> Label:
        """The one visible Label showing exactly ``text`` (the frontmost, if several)."""
        labels = [w for w in self.visible_labels() if w.text == text]
        if not labels:
            shown = sorted({w.text for w in self.visible_labels()})
            raise AssertionError(f"no visible label {text!r}; on screen: {shown}")
        return labels[-1]

    def texts(self) -> list[str]:
        return [w.text for w in self.visible_labels()]

    # -- touches ----------------------------------------------------------------------------

    def _normalised(self, x: float, y: float) -> tuple[float, float]:
        return x / (self.window.width - 1), y / (self.window.height - 1)

    def press(self, x: float, y: float) -> SyntheticTouch:
        touch = self.provider.down(self._normalised(x, y))
        self.step()
        return touch

    def release(self, touch: SyntheticTouch) -> None:
        self.provider.up(touch)
        self.step()
        self.settle()

    def tap_at(self, x: float, y: float) -> None:
        self.release(self.press(x, y))

    def tap(self, widget: Widget) -> None:
        """A finger on the widget's centre, in window coordinates, and off again."""
        if widget.get_root_window() is None:
            raise AssertionError(f"{widget!r} is not on the window")
        if widget not in list(self.visible_widgets()):
            raise AssertionError(f"{widget!r} is not visible")
        self.tap_at(*widget.to_window(*widget.center))

    def tap_text(self, text: str) -> None:
        self.tap(self.find_text(text))

    # -- screenshots ------------------------------------------------------------------------

    def screenshot(self, name: str) -> Path:
        """The window's pixels as drawn (read before the buffer swap) into a PNG."""
        from kivy.graphics.opengl import GL_RGBA, GL_UNSIGNED_BYTE, glReadPixels

        captured: list[Image.Image] = []

        def grab(window: Any) -> None:
            width, height = window.size
            data = glReadPixels(0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE)
            image = Image.frombytes("RGBA", (width, height), bytes(data))
            captured.append(image.transpose(Image.Transpose.FLIP_TOP_BOTTOM).convert("RGB"))

        self.settle()
        self.window.bind(on_flip=grab)  # bound handlers run before the default one swaps
        try:
            self.window.canvas.ask_update()
            self.wait_for(lambda: captured, f"a frame to capture for {name}")
        finally:
            self.window.unbind(on_flip=grab)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{self.prefix}__{name}" if self.prefix else name)
        path = artefacts_dir() / f"{safe}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        captured[0].save(path)
        return path

    # -- overflow ---------------------------------------------------------------------------

    def overflows(self) -> list[Overflow]:
        """Visible labels whose text does not fit their box.

        Each label's text is laid out again, at the label's wrapping width and with no height
        limit, and compared with the label's size. This also catches what Kivy hides: with a
        fixed ``text_size`` height, lines that do not fit are silently dropped; and a word
        longer than the wrapping width is broken mid-word ("Engli/sh"). Labels with
        ``shorten`` on are not reported: cutting with "…" was the screen author's choice.
        Labels must also lie inside the window and inside their parent's box (a button taller
        than its strip), unless they are in a ScrollView."""
        found: list[Overflow] = []
        scrolled = {
            id(w) for v in self.visible_widgets() if isinstance(v, ScrollView) for w in v.walk()
        }
        for label in self.visible_labels():
            if label.shorten:
                continue
            needed = measure_label(label)
            box = (round(label.width), round(label.height))
            reason = ""
            if needed[0] > box[0] + SLACK_PX:
                reason = "too wide"
            elif needed[1] > box[1] + SLACK_PX:
                reason = "too tall"
            elif split_word(label):
                reason = f"the word {split_word(label)!r} is split across lines"
            elif id(label) not in scrolled and not self._inside_window(label):
                reason = "outside the window"
            elif id(label) not in scrolled and not self._inside_parent(label):
                reason = "sticks out of its parent"
            if reason:
                found.append(Overflow(label, label.text, box, needed, reason))
        return found

    def _inside_window(self, widget: Widget) -> bool:
        return _contains((0, 0, self.window.width, self.window.height), _window_box(widget))

    def _inside_parent(self, widget: Widget) -> bool:
        parent = widget.parent
        if not isinstance(parent, Widget) or parent is self.window:
            return True
        return _contains(_window_box(parent), _window_box(widget))

    # -- every screen in every mode ---------------------------------------------------------

    def render_modes(
        self, ctx: UiContext, name: str, build: Callable[[], Widget], modes: Sequence[str] = ()
    ) -> list[ModeShot]:
        """Mount ``build()`` and take a screenshot plus an overflow check in zh_CN, in English
        and in elderly mode (zh_CN), switching through the context as a user would."""
        from kiosk.i18n import Language

        settings = {
            "zh": (Language.ZH_CN, False),
            "en": (Language.EN, False),
            "elderly": (Language.ZH_CN, True),
        }
        shots: list[ModeShot] = []
        widget = self.mount(build())
        try:
            for mode in modes or settings:
                language, elderly = settings[mode]
                ctx.set_language(language)
                ctx.set_elderly(elderly)
                self.settle()
                shots.append(ModeShot(mode, self.screenshot(f"{name}-{mode}"), self.overflows()))
        finally:
            stop = getattr(widget, "stop", None)
            if callable(stop):
                stop()
            self.window.remove_widget(widget)
            ctx.set_language(Language.ZH_CN)
            ctx.set_elderly(False)
        return shots


Box = tuple[float, float, float, float]  # left, bottom, right, top in window coordinates


def _window_box(widget: Widget) -> Box:
    left, bottom = widget.to_window(widget.x, widget.y)
    right, top = widget.to_window(widget.right, widget.top)
    return left, bottom, right, top


def _contains(outer: Box, inner: Box) -> bool:
    return (
        inner[0] >= outer[0] - SLACK_PX
        and inner[1] >= outer[1] - SLACK_PX
        and inner[2] <= outer[2] + SLACK_PX
        and inner[3] <= outer[3] + SLACK_PX
    )


def measure_label(label: Label) -> tuple[int, int]:
    """The size ``label``'s text needs at its wrapping width, with no height limit."""
    core = label._label
    options = dict(core.options)
    options["text"] = label.text  # options keep the text the core label was made with
    options["text_size"] = (label.text_size[0], None)
    measure = type(core)(**options)
    measure.resolve_font_name()
    width, height = measure.render()
    natural_width = math.ceil(measure._internal_size[0])
    return max(width, natural_width), height


_MARKUP_TAG = re.compile(r"\[/?[a-z_]+(?:=[^\]]*)?\]")
_LATIN_WORD = re.compile(r"[A-Za-z0-9][\w'’.,:;!?()-]*")


def split_word(label: Label) -> str | None:
    """A Latin word wider than the label's wrapping width (Kivy then breaks it mid-word).
    Chinese breaks between any two characters, so only Latin words are checked."""
    wrap_width = label.text_size[0]
    if wrap_width is None:
        return None
    text = _MARKUP_TAG.sub("", label.text) if label.markup else label.text
    core = label._label
    for word in sorted(set(_LATIN_WORD.findall(text)), key=len, reverse=True):
        options = {**core.options, "text": word, "text_size": (None, None), "padding": 0}
        measure = type(core)(**options)
        measure.resolve_font_name()
        if measure.render()[0] > wrap_width + SLACK_PX:
            return word
    return None


# -- the session's window ----------------------------------------------------------------------


def start_kivy(settings: UiSettings, font_cache_dir: Path) -> KivyHarness:
    """Make the session's window on ``$DISPLAY`` and start the event loop without running it.
    Must run before anything imports ``kivy.core.window``."""
    configure_kivy(settings)
    Clock._max_fps = 0  # frames as fast as the test asks for them (as Kivy's own tests do)
    for key, _value in Config.items("input"):
        Config.remove_option("input", key)  # no mouse: touches come only from the provider
    from kivy.core.window import Window

    Window.size = (settings.window_width_px, settings.window_height_px)
    cached = settings.model_copy(update={"font_cache_dir": str(font_cache_dir)})
    register_default_font(resolve_fonts(cached))
    runTouchApp(embedded=True)  # input post-processing + EventLoop.start(), no loop
    provider = SyntheticTouchProvider()
    EventLoop.add_input_provider(provider)
    provider.start()
    return KivyHarness(Window, provider)


def stop_kivy(harness: KivyHarness) -> None:
    harness.unmount_all()
    stopTouchApp()
    harness.window.close()
