"""The debounce and hold rule, with the times passed in (the pure half of the input path)."""

from __future__ import annotations

from drivers.gpio.debounce import Change, InputFilter

A, D, H = Change.ACTIVATED, Change.DEACTIVATED, Change.HELD


def test_a_level_counts_only_after_it_held_for_bounce_s() -> None:
    f = InputFilter(active=False, bounce_s=0.05)
    f.edge(True, now=10.0)
    assert f.poll(10.049) == []
    assert f.stable is False
    assert f.poll(10.05) == [A]
    assert f.stable is True
    assert f.poll(11.0) == []
    assert f.next_deadline() is None


def test_chatter_gives_one_change_timed_from_the_last_edge() -> None:
    f = InputFilter(active=False, bounce_s=0.05)
    for i, level in enumerate([True, False, True, False, True]):
        f.edge(level, now=1.0 + i * 0.01)
    assert f.next_deadline() == 1.04 + 0.05
    assert f.poll(1.08) == []  # 0.05 after the first edge, but not after the last
    assert f.poll(1.09) == [A]


def test_a_glitch_shorter_than_bounce_s_is_no_event() -> None:
    f = InputFilter(active=True, bounce_s=0.05)
    f.edge(False, now=5.0)
    f.edge(True, now=5.02)
    assert f.poll(5.2) == []
    assert f.stable is True


def test_the_starting_level_is_no_event() -> None:
    f = InputFilter(active=True, bounce_s=0.05, hold_s=1.0)
    assert f.poll(100.0) == []
    assert f.next_deadline() is None


def test_hold_fires_once_hold_s_after_the_press_was_confirmed() -> None:
    f = InputFilter(active=False, bounce_s=0.03, hold_s=2.0)
    f.edge(True, now=0.0)
    assert f.poll(0.03) == [A]
    assert f.next_deadline() == 2.03
    assert f.poll(2.0) == []
    assert f.poll(2.03) == [H]
    assert f.poll(10.0) == []  # once per press
    f.edge(False, now=10.0)
    assert f.poll(10.03) == [D]


def test_a_release_before_hold_s_cancels_the_hold() -> None:
    f = InputFilter(active=False, bounce_s=0.03, hold_s=2.0)
    f.edge(True, now=0.0)
    assert f.poll(0.03) == [A]
    f.edge(False, now=2.01)  # released just before the hold time (2.03)
    assert f.poll(2.035) == []  # hold is due, but the release is settling: no hold
    assert f.poll(2.04) == [D]
    assert f.poll(5.0) == []


def test_a_glitch_during_a_hold_does_not_cancel_it() -> None:
    f = InputFilter(active=False, bounce_s=0.03, hold_s=1.0)
    f.edge(True, now=0.0)
    assert f.poll(0.03) == [A]
    f.edge(False, now=1.0)
    f.edge(True, now=1.01)
    assert f.poll(1.03) == [H]  # the level is back to pressed when the hold comes due
    assert f.poll(1.04) == []  # and the glitch itself settles into no change
    assert f.stable is True
