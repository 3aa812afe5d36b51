"""The child process of bench/kiosk_start.py: a bare Kivy app showing one label (the floor), or
the kiosk shell. Both print ``FIRST_FRAME`` when their first frame is drawn; with
``--rounds`` the kiosk then walks through its screens and prints each screen change's time.
Both end with ``RSS_KB <VmRSS>`` and exit.

    python -m kiosk.ui.bench_target bare
    python -m kiosk.ui.bench_target kiosk --rounds 3

Until the real session is wired in, the kiosk side is the demo router (kiosk/ui/demo.py);
``walk_steps`` is the only part to replace with the real journey.
"""

# Kivy reads its environment at first import: everything Kivy is imported after
# prepare_kivy_env, inside the functions.
# ruff: noqa: PLC0415

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.ui.kivy_env import prepare_kivy_env

if TYPE_CHECKING:
    from kiosk.ui.demo import DemoPinFlow, DemoRouter
    from kiosk.ui.flow_screen import FlowScreen
    from kiosk.ui.shell import KioskShell

# frames the bare app draws before it reports, so both sides have run their loop a while
BARE_FRAMES = 30
STEP_MAX_WAIT_FRAMES = 10
Step = Callable[[], bool]  # True: done, go on; False: not yet, call again next frame


def say(*words: object) -> None:
    print(*words, flush=True)


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def run_bare(width_px: int, height_px: int) -> None:
    from kivy.config import Config

    # the same window as the kiosk's: its framebuffer is a large part of both
    Config.set("graphics", "width", str(width_px))
    Config.set("graphics", "height", str(height_px))
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.uix.label import Label

    class Bare(App):  # type: ignore[misc]
        def build(self) -> Label:
            return Label(text="Hello")

        def on_start(self) -> None:
            Window.bind(on_flip=self._first)

        def _first(self, window: Any) -> None:
            window.unbind(on_flip=self._first)
            say("FIRST_FRAME")
            self._frames = 0
            Clock.schedule_interval(self._count, 0)

        def _count(self, _dt: float) -> None:
            self._frames += 1
            if self._frames >= BARE_FRAMES:
                gc.collect()
                say("RSS_KB", rss_kb())
                self.stop()

    Bare().run()


def do(action: Callable[[], object]) -> Step:
    def step() -> bool:
        action()
        return True

    return step


def walk_steps(router: DemoRouter, shell: KioskShell) -> Iterator[Step]:
    """One round of the demo journey: every screen, in zh, en and elderly mode, a keypad entry
    with a wrong and a right password (a background job and a notice each)."""
    from kiosk.ui.demo import DEMO_PASSWORD, TileId

    ctx = shell.ctx

    def pin() -> DemoPinFlow:
        if router.pin is None:
            raise RuntimeError("the password screen is not on")
        return router.pin

    yield do(lambda: ctx.set_language("en"))
    yield do(lambda: ctx.set_elderly(True))
    yield do(lambda: ctx.set_language("zh"))
    yield do(lambda: ctx.set_elderly(False))
    for entry in ("111111", DEMO_PASSWORD):
        yield do(lambda: router.home.start(TileId.PICKUP))
        for digit in entry:
            yield do(lambda d=digit: pin().press(d))  # type: ignore[misc]
        yield do(lambda: pin().confirm())
        if entry != DEMO_PASSWORD:
            yield lambda: pin().busy is None and pin().notice is not None
            yield do(lambda: pin().dismiss_notice())
            yield do(router.go_home)
        else:
            yield lambda: shell.manager.current == "home"
    yield do(lambda: router.home.start(TileId.TICKET))
    yield do(lambda: ctx.set_language("en"))
    for seconds in (15, 10, 5):
        yield do(lambda s=seconds: shell.idle.show(s, 15))  # type: ignore[misc]
    yield do(router.go_home)
    yield do(lambda: ctx.set_language("zh"))


class Walker:
    """Runs the steps one at a time, each after the previous step's frame is drawn, and times
    each screen change: from ``show`` to the first frame drawn with the new screen rendered
    (and its transition, if any, finished)."""

    def __init__(
        self, steps: Iterator[Step], shell: KioskShell, on_done: Callable[[], None]
    ) -> None:
        from kivy.clock import Clock
        from kivy.core.window import Window

        self.steps = steps
        self.shell = shell
        self.on_done = on_done
        self.current: Step | None = None
        self.frames_since_step = 0
        self.drawn = True
        self.changing: tuple[float, str, FlowScreen[Any], int] | None = None
        self.transitions_ms: list[float] = []
        self._window = Window
        Window.bind(on_flip=self._flip)
        self._event = Clock.schedule_interval(self._tick, 0)

    def _flip(self, *_args: Any) -> None:
        self.drawn = True
        if self.changing is None:
            return
        started, name, screen, renders = self.changing
        manager = self.shell.manager
        if (
            manager.current == name
            and screen.renders > renders
            and not manager.transition.is_active
        ):
            self.transitions_ms.append((time.perf_counter() - started) * 1000)
            self.changing = None

    def _tick(self, _dt: float) -> None:
        self.frames_since_step += 1
        # a step that changed nothing on screen draws no frame: go on after a few anyway
        waiting = not self.drawn and self.frames_since_step < STEP_MAX_WAIT_FRAMES
        if self.changing is not None or waiting:
            return
        if self.current is None:
            self.current = next(self.steps, None)
            if self.current is None:
                self._event.cancel()
                self._window.unbind(on_flip=self._flip)
                self.on_done()
                return
        before = self.shell.manager.current
        started = time.perf_counter()
        if not self.current():
            return  # a condition step: try again next frame
        self.current = None
        self.drawn = False
        self.frames_since_step = 0
        name = self.shell.manager.current
        if name != before:
            screen = self.shell.manager.get_screen(name)
            self.changing = (started, name, screen, screen.renders)


def run_kiosk(rounds: int, transition: str) -> None:
    from kivy.app import App

    from kiosk.ui.app import KioskApp, configure_kivy
    from kiosk.ui.demo import DemoRouter, demo_screens
    from kiosk.ui.settings import UiSettings
    from kiosk.ui.worker import KivyWorker

    settings = UiSettings(transition=transition)  # type: ignore[arg-type]
    configure_kivy(settings)
    worker = KivyWorker()
    routers: list[DemoRouter] = []
    walkers: list[Walker] = []  # held here: the Clock keeps only a weak reference to _tick

    def start(shell: KioskShell) -> None:
        router = DemoRouter(shell, worker)
        routers.append(router)
        router.go_home()

    def finish(walker: Walker) -> None:
        for ms in walker.transitions_ms:
            say("TRANSITION_MS", f"{ms:.3f}")
        gc.collect()
        say("RSS_KB", rss_kb())
        App.get_running_app().stop()

    def first_frame(shell: KioskShell) -> None:
        say("FIRST_FRAME")

        def all_rounds() -> Iterator[Step]:
            for _ in range(rounds):
                yield from walk_steps(routers[0], shell)

        walkers.append(Walker(all_rounds(), shell, lambda: finish(walkers[0])))

    try:
        KioskApp(settings, demo_screens(), start=start, on_first_frame=first_frame).run()
    finally:
        worker.close()


def app_steps(running: Any) -> Iterator[Step]:
    """One round of the assembled kiosk (kiosk/app.py): a ticket printed and rated, English,
    大字版, and the check-in, pre-review and case-status journeys opened and left."""
    from kiosk.flows.home import JourneyKind, TileId

    session = running.kiosk.session

    def state(*states: str) -> Step:
        def arrived() -> bool:
            journey = session.journey
            return journey is not None and journey.busy is None and str(journey.state) in states

        return arrived

    def home() -> bool:
        return session.active is JourneyKind.HOME

    def call(method: str, *args: object) -> Step:
        # the journey is looked up when the step runs: each step may be on a new one
        return do(lambda: getattr(session.journey, method)(*args))

    yield do(lambda: session.start(TileId.TICKET))
    yield state("choose_area")
    yield do(lambda: session.journey.choose_area(session.journey.view.areas[0].area))
    yield state("choose_type")
    yield do(lambda: session.journey.choose_type(session.journey.view.types[0].category_id))
    yield state("identify")
    yield call("skip_card")
    yield state("done")
    yield call("finish")
    yield state("choose_level")
    yield call("choose_level", 5)
    yield call("submit")
    yield state("thanks")
    yield do(session.go_home)
    yield home
    yield do(lambda: session.set_language("en"))
    yield do(lambda: session.set_elderly(True))
    yield do(lambda: session.set_elderly(False))
    yield do(lambda: session.set_language("zh"))
    for tile, first in (
        (TileId.CHECKIN, "identify"),
        (TileId.PREREVIEW, "choose_matter"),
        (TileId.STATUS, "identify"),
    ):
        yield do(lambda tile=tile: session.start(tile))  # type: ignore[misc]
        yield state(first)
        yield do(session.go_home)
        yield home


def run_app(rounds: int) -> None:
    """The assembled kiosk on a fresh data directory (embedded hall, simulated devices)."""
    import json

    from kivy.app import App

    from kiosk.app import RunningKiosk, build_app
    from kiosk.start_settings import StartSettings

    data = Path(tempfile.mkdtemp(prefix="hk-bench-app-"))
    site = data / "site.toml"
    site.write_text(
        f"schema_version = 1\n[site]\ndata_dir = {json.dumps(str(data))}\n"
        '[kiosk]\ndevice_id = "kiosk-01"\n'
        "[kiosk.offline]\nranges = [{ first = 1001, last = 1199 }]\n"
    )
    walkers: list[Walker] = []  # held here: the Clock keeps only a weak reference to _tick

    def finish(walker: Walker) -> None:
        for ms in walker.transitions_ms:
            say("TRANSITION_MS", f"{ms:.3f}")
        gc.collect()
        say("RSS_KB", rss_kb())
        App.get_running_app().stop()

    def first_frame(_running: RunningKiosk) -> None:
        say("FIRST_FRAME")  # the home page, touches taken; the journeys are assembled next

    def started(running: RunningKiosk) -> None:
        say("READY")  # assembled, the session on screen: a tile starts its journey now
        shell = running.app.shell
        assert shell is not None

        def all_rounds() -> Iterator[Step]:
            for _ in range(rounds):
                yield from app_steps(running)

        walkers.append(Walker(all_rounds(), shell, lambda: finish(walkers[0])))

    # as kiosk/__main__.py: the first frame's settings now, the rest while assembling
    start = StartSettings.load([site])
    running = build_app(start, on_first_frame=first_frame, on_started=started)
    try:
        running.app.run()
    finally:
        running.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kiosk.ui.bench_target")
    parser.add_argument("side", choices=["bare", "kiosk", "app"])
    parser.add_argument("--rounds", type=int, default=0, help="journey walks (kiosk only)")
    parser.add_argument("--transition", choices=["none", "fade", "slide"], default="none")
    parser.add_argument("--kivy-home", type=Path, default=None)
    # bare only (it must not import the kiosk's modules): the kiosk's window size
    parser.add_argument("--size", default="1080x1920", help="bare: window WIDTHxHEIGHT")
    args = parser.parse_args(argv)
    home = args.kivy_home or Path(tempfile.gettempdir()) / "hallkiosk-bench-kivy"
    prepare_kivy_env(home)
    if args.side == "bare":
        width, _, height = args.size.partition("x")
        run_bare(int(width), int(height))
    elif args.side == "app":
        run_app(args.rounds)
    else:
        run_kiosk(args.rounds, args.transition)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
