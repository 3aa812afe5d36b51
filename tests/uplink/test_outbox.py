"""The durable outbox: seq and ids, payload bytes, acks, telemetry, size policy, the
transactional ``append_in``, threads, a process killed mid-append, and a state machine.

Every test uses a real SQLite file under ``tmp_path``. Run as a module
(``python -m tests.uplink.test_outbox DB COUNT``), this file is the child process of the kill
test: it appends COUNT events and prints ``seq id`` after each append returns.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hallkiosk.clock import ManualClock, SystemClock
from uplink.errors import UplinkError
from uplink.outbox import (
    Backlog,
    InvalidPayload,
    Outbox,
    OutboxError,
    OutboxEvent,
    OutboxFull,
)

if TYPE_CHECKING:
    from tests.fixtures.processes import Spawner

DEVICE = "locker-01"
COMPONENT = "lockerd"
START = datetime(2024, 5, 6, 9, 30, tzinfo=UTC)
CHILD_MODULE = "tests.uplink.test_outbox"
CHILD_APPENDS = 1_000_000  # more than a child can do before it is killed
CHILD_STARTUP_TIMEOUT_S = 20.0  # generous: a long benchmark may be loading the machine
ALL = 1_000_000  # a pending() limit larger than any test's backlog


def open_outbox(path: Path, clock: ManualClock | None = None, **options: Any) -> Outbox:
    return Outbox(
        path,
        device=DEVICE,
        component=COMPONENT,
        clock=clock or ManualClock(START),
        **options,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def outbox(tmp_path: Path, clock: ManualClock) -> Iterator[Outbox]:
    box = open_outbox(tmp_path / "outbox.db", clock)
    yield box
    box.close()


def connect(path: Path) -> sqlite3.Connection:
    """A second connection, the way a business store holds one."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


# -- recording and draining ----------------------------------------------------------------------


def test_append_assigns_increasing_seqs_unique_ids_and_pending_keeps_seq_order(
    outbox: Outbox,
) -> None:
    events = [outbox.append("deposit.stored", {"index": index}) for index in range(5)]

    assert [event.seq for event in events] == [1, 2, 3, 4, 5]
    assert len({event.id for event in events}) == 5
    assert all(len(event.id) == 32 and int(event.id, 16) >= 0 for event in events)
    assert outbox.pending(ALL) == events
    assert outbox.pending(2) == events[:2]
    assert outbox.pending(2, after_seq=3) == events[3:]
    with pytest.raises(ValueError, match="limit"):
        outbox.pending(0)


def test_payload_is_the_contract_envelope_as_compact_utf8_json(
    outbox: Outbox, clock: ManualClock
) -> None:
    clock.advance(1.5)
    data = {"bay": "B01", "masked_name": "张*三", "count": 2, "ok": True, "none": None}

    event = outbox.append("deposit.stored", data)

    envelope = {
        "v": 1,
        "id": event.id,
        "seq": 1,
        "ts": event.ts,
        "type": "deposit.stored",
        "device": DEVICE,
        "component": COMPONENT,
        "data": data,
    }
    expected = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    assert event.payload == expected
    assert list(json.loads(event.payload)) == list(envelope)  # the contract's key order
    assert datetime.fromisoformat(event.ts) == clock.now()  # aware, with an offset
    assert event.ts.endswith("+00:00")
    assert outbox.pending(1)[0].payload == expected


def test_event_and_telemetry_payloads_pass_the_contracts_strict_models(
    outbox: Outbox, clock: ManualClock
) -> None:
    from uplink.messages import Event, Telemetry, decode

    event = outbox.append("alarm.raised", {"kind": "door_forced", "bay": "B07", "list": [1, None]})
    outbox.put_telemetry({"cpu_temp_c": 41.5, "printer": {"paper": "low"}, "reader": True})

    decoded = decode(Event, event.payload)
    assert (decoded.id, decoded.seq, decoded.type) == (event.id, event.seq, event.type)
    assert decoded.ts == clock.now()
    telemetry = outbox.take_telemetry()
    assert telemetry is not None
    assert decode(Telemetry, telemetry).metrics["printer"] == {"paper": "low"}


def test_ack_deletes_and_acking_twice_or_an_unknown_row_is_harmless(outbox: Outbox) -> None:
    first, second, third = (outbox.append("alarm.raised", {"n": n}) for n in range(3))

    outbox.ack(second.row_id)
    outbox.ack(second.row_id)
    outbox.ack(9_999)
    outbox.ack(-1)

    assert outbox.pending(ALL) == [first, third]
    outbox.ack(first.row_id)
    outbox.ack(third.row_id)
    assert outbox.pending(ALL) == []


def test_ack_many_deletes_a_batch_in_one_go_like_ack_for_each(outbox: Outbox) -> None:
    events = [outbox.append("alarm.raised", {"n": n}) for n in range(1_200)]
    assert outbox.backlog().events == 1_200  # counted once: ack_many must keep the count exact

    outbox.ack_many([])
    # repeated, unknown and out-of-order rows, more than one statement's worth (ACK_MANY_CHUNK)
    batch = [e.row_id for e in events[1:1_100:2]] * 2 + [9_999, -1] + [events[5].row_id]
    outbox.ack_many(batch[::-1])

    kept = [e for n, e in enumerate(events) if n % 2 == 0 or n >= 1_100]
    assert outbox.pending(ALL) == kept
    assert outbox.backlog().events == len(kept)
    outbox.ack_many([e.row_id for e in kept])
    assert outbox.pending(ALL) == []
    assert outbox.backlog() == Backlog(0, None, False, False)


def test_seq_is_never_reused_after_acking_everything_and_reopening(
    tmp_path: Path, clock: ManualClock
) -> None:
    path = tmp_path / "outbox.db"
    with open_outbox(path, clock) as box:
        for event in [box.append("t.x", {}) for _ in range(3)]:
            box.ack(event.row_id)
        late = box.append("t.x", {})
        box.ack(late.row_id)
        # a late PUBACK for an old row must not delete the event that came after it
        kept = box.append("t.x", {})
        box.ack(late.row_id)
        assert box.pending(ALL) == [kept]

    with open_outbox(path, clock) as box:
        assert box.pending(ALL) == [kept]
        assert box.append("t.x", {}).seq == kept.seq + 1 == 6


def test_bad_event_type_or_data_is_refused_and_uses_no_seq(outbox: Outbox) -> None:
    for bad_type in ("", "a/b", "evt+", "#", "x" * 65, "空格"):
        with pytest.raises(InvalidPayload):
            outbox.append(bad_type, {})
    for bad_data in ({"x": float("nan")}, {"x": object()}, {"x": b"bytes"}):
        with pytest.raises(InvalidPayload, match="strict JSON"):
            outbox.append("t.x", bad_data)

    assert outbox.pending(ALL) == []
    assert outbox.append("t.x", {}).seq == 1


def test_errors_mix_the_package_root_with_builtins() -> None:
    assert issubclass(OutboxError, UplinkError) and issubclass(OutboxError, RuntimeError)
    assert issubclass(OutboxFull, OutboxError) and issubclass(OutboxFull, OSError)
    assert issubclass(InvalidPayload, OutboxError) and issubclass(InvalidPayload, ValueError)


def test_a_closed_outbox_raises_outbox_error(tmp_path: Path) -> None:
    box = open_outbox(tmp_path / "outbox.db")
    box.close()
    box.close()
    with pytest.raises(OutboxError):
        box.append("t.x", {})
    with pytest.raises(OutboxError):
        box.ack(1)


# -- transactional append_in ---------------------------------------------------------------------


def test_append_in_commits_with_the_callers_transaction_or_not_at_all(outbox: Outbox) -> None:
    conn = connect(outbox.path)
    conn.execute("CREATE TABLE business (id INTEGER PRIMARY KEY, what TEXT NOT NULL)")

    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO business (what) VALUES ('rolled back')")
    doomed = outbox.append_in(conn, "deposit.stored", {"what": "rolled back"})
    assert doomed.seq == 1
    conn.execute("ROLLBACK")

    assert outbox.pending(ALL) == []
    assert conn.execute("SELECT count(*) FROM business").fetchone()[0] == 0

    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO business (what) VALUES ('kept')")
    kept = outbox.append_in(conn, "deposit.stored", {"what": "kept"})
    assert outbox.pending(ALL) == []  # not visible before the caller commits
    conn.execute("COMMIT")
    conn.close()

    # the rolled-back seq was never published, so it is handed out again
    assert kept.seq == 1
    assert outbox.pending(ALL) == [kept]
    assert outbox.append("t.x", {}).seq == 2


def test_append_in_refuses_a_connection_without_transaction_or_to_another_file(
    tmp_path: Path, outbox: Outbox
) -> None:
    same = connect(outbox.path)
    with pytest.raises(OutboxError, match="open transaction"):
        outbox.append_in(same, "t.x", {})
    same.close()

    other_path = tmp_path / "other.db"
    open_outbox(other_path).close()  # same tables, wrong file: must still be refused
    other = connect(other_path)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(OutboxError, match="append_in got a connection"):
        outbox.append_in(other, "t.x", {})
    other.execute("ROLLBACK")
    other.close()

    # the same file through a symlink is the same database
    link = tmp_path / "link.db"
    link.symlink_to(outbox.path)
    linked = connect(link)
    linked.execute("BEGIN IMMEDIATE")
    event = outbox.append_in(linked, "t.x", {})
    linked.execute("COMMIT")
    linked.close()
    assert outbox.pending(ALL) == [event]


@pytest.mark.parametrize("outbox_first", [True, False])
def test_outbox_shares_lockers_database_without_touching_its_schema_version(
    tmp_path: Path, clock: ManualClock, outbox_first: bool
) -> None:
    from locker.store import SCHEMA, Store

    path = tmp_path / "locker.db"
    box = open_outbox(path, clock) if outbox_first else None
    store = Store.open(path)
    box = box or open_outbox(path, clock)
    try:
        assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(SCHEMA)
        with pytest.raises(RuntimeError, match="boom"), store.transaction() as conn:
            conn.execute(
                "INSERT INTO alarms (kind, subject, raised_at) VALUES ('tamper', 'B01', 'now')"
            )
            box.append_in(conn, "alarm.raised", {"kind": "tamper"})
            raise RuntimeError("boom")
        assert box.pending(ALL) == []
        with store.transaction() as conn:
            conn.execute(
                "INSERT INTO alarms (kind, subject, raised_at) VALUES ('tamper', 'B01', 'now')"
            )
            event = box.append_in(conn, "alarm.raised", {"kind": "tamper"})
        assert box.pending(ALL) == [event]
        assert store.conn.execute("SELECT count(*) FROM alarms").fetchone()[0] == 1
    finally:
        box.close()
        store.close()
    Store.open(path).close()  # lockerd still opens it: its migrations are untouched


# -- telemetry, backlog and the size policy ------------------------------------------------------


def test_telemetry_is_coalesced_to_the_latest_snapshot_and_never_mixes_with_events(
    outbox: Outbox, clock: ManualClock
) -> None:
    assert outbox.take_telemetry() is None
    event = outbox.append("t.x", {})
    for temperature_c in (40, 41, 42):
        clock.advance(10)
        outbox.put_telemetry({"cpu_temp_c": temperature_c, "printer": {"paper": "ok"}})

    assert outbox.backlog() == Backlog(
        events=1, oldest_ts=event.ts, telemetry_pending=True, over_limit=False
    )
    payload = outbox.take_telemetry()
    assert payload is not None
    assert json.loads(payload) == {
        "v": 1,
        "ts": clock.now().astimezone(UTC).isoformat(timespec="microseconds"),
        "device": DEVICE,
        "component": COMPONENT,
        "metrics": {"cpu_temp_c": 42, "printer": {"paper": "ok"}},
    }
    assert b" " not in payload
    assert outbox.take_telemetry() is None
    assert outbox.backlog().telemetry_pending is False
    assert outbox.pending(ALL) == [event]


def test_backlog_reports_count_and_the_oldest_pending_event(
    outbox: Outbox, clock: ManualClock
) -> None:
    assert outbox.backlog() == Backlog(0, None, False, False)
    first = outbox.append("t.x", {})
    clock.advance(60)
    second = outbox.append("t.x", {})

    assert outbox.backlog() == Backlog(2, first.ts, False, False)
    outbox.ack(first.row_id)
    assert outbox.backlog() == Backlog(1, second.ts, False, False)


def test_past_max_business_rows_every_event_is_kept_and_over_limit_is_reported(
    tmp_path: Path,
) -> None:
    with open_outbox(tmp_path / "outbox.db", max_business_rows=3) as box:
        events = [box.append("t.x", {"n": n}) for n in range(3)]
        assert box.backlog().over_limit is False
        events += [box.append("t.x", {"n": n}) for n in range(3, 6)]
        box.put_telemetry({"disk_free_mb": 5})  # telemetry does not count

        assert box.pending(ALL) == events
        assert box.backlog() == Backlog(6, events[0].ts, True, True)
        for event in events[:3]:
            box.ack(event.row_id)
        assert box.backlog().over_limit is False


def test_a_full_disk_raises_outbox_full_records_nothing_and_recovers(outbox: Outbox) -> None:
    kept = outbox.append("t.x", {})
    conn = outbox._conn  # SQLite's page cap stands in for a full disk
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")

    with pytest.raises(OutboxFull):
        outbox.append("t.x", {"blob": "x" * 100_000})

    conn.execute("PRAGMA max_page_count=1073741823")
    assert outbox.pending(ALL) == [kept]
    assert outbox.append("t.x", {}).seq == kept.seq + 1


def test_opening_refuses_a_newer_schema_or_another_components_outbox(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    open_outbox(path).close()
    with pytest.raises(OutboxError, match="lockerd"):
        Outbox(path, device=DEVICE, component="kiosk", clock=ManualClock(START))

    conn = connect(path)
    conn.execute("UPDATE outbox_schema SET version = 99")
    conn.close()
    with pytest.raises(OutboxError, match="newer"):
        open_outbox(path)


def test_device_and_component_must_be_topic_segments(tmp_path: Path) -> None:
    with pytest.raises(InvalidPayload):
        Outbox(tmp_path / "a.db", device="locker/01", component=COMPONENT, clock=SystemClock())
    with pytest.raises(InvalidPayload):
        Outbox(tmp_path / "a.db", device=DEVICE, component="+", clock=SystemClock())


# -- threads -------------------------------------------------------------------------------------


def test_appends_and_acks_on_two_threads_lose_and_duplicate_nothing(outbox: Outbox) -> None:
    count = 300
    appended: list[int] = []
    acked: list[int] = []
    errors: list[BaseException] = []
    appending_done = threading.Event()

    def append_all() -> None:
        try:
            for index in range(count):
                appended.append(outbox.append("t.x", {"index": index}).seq)
        except BaseException as exc:
            errors.append(exc)
        finally:
            appending_done.set()

    def ack_all() -> None:  # the network thread: PUBACKs, some of them repeated
        try:
            while True:
                finished = appending_done.is_set()  # before the read, so the last pass sees all
                batch = outbox.pending(32)
                outbox.backlog()  # counts rows while appends land, so its bookkeeping is raced
                for event in batch:
                    outbox.ack(event.row_id)
                    outbox.ack(event.row_id)
                    acked.append(event.seq)
                if finished and not batch:
                    return
                if not batch:
                    time.sleep(0.001)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=append_all), threading.Thread(target=ack_all)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert appended == list(range(1, count + 1))
    assert acked == appended  # each exactly once, in seq order
    assert outbox.backlog().events == 0


# -- a process killed mid-append -----------------------------------------------------------------


def child_main(argv: list[str]) -> None:
    """Append events until killed; report each append that returned, one line each."""
    path, count = Path(argv[0]), int(argv[1])
    with Outbox(path, device=DEVICE, component=COMPONENT, clock=SystemClock()) as box:
        print("ready", flush=True)
        for index in range(count):
            event = box.append("test.tick", {"index": index})
            print(f"{event.seq} {event.id}", flush=True)


def parse_report(line: str) -> tuple[int, str]:
    seq, event_id = line.split()
    return int(seq), event_id


@pytest.mark.timeout(60)
def test_sigkill_mid_append_loses_no_returned_event_and_reuses_no_seq(
    tmp_path: Path, spawn: Spawner
) -> None:
    seed = random.SystemRandom().getrandbits(32)
    rng = random.Random(seed)
    path = tmp_path / "outbox.db"
    expected: dict[int, str] = {}  # what the outbox must hold: seq -> id
    highest_seq = 0  # every seq ever committed, acked or not

    for round_number in range(3):
        child = spawn(CHILD_MODULE, str(path), str(CHILD_APPENDS))
        assert child.read_line(CHILD_STARTUP_TIMEOUT_S) == "ready", child.describe()
        returned = [parse_report(child.read_line()) for _ in range(rng.randint(1, 150))]
        time.sleep(rng.uniform(0, 0.002))  # land somewhere inside an append
        child.kill()
        while True:
            try:
                returned.append(parse_report(child.read_line(timeout_s=5.0)))
            except EOFError:
                break
        context = f"seed {seed} round {round_number}\n{child.describe()}"
        assert child.returncode == -9, context

        # one process, no rollbacks: its appends take consecutive seqs after the last committed
        seqs = [seq for seq, _ in returned]
        assert seqs == list(range(highest_seq + 1, highest_seq + 1 + len(seqs))), context
        expected.update(returned)

        with open_outbox(path) as box:
            stored = {event.seq: event.id for event in box.pending(ALL)}
            assert list(stored) == sorted(stored), context
            assert len(set(stored.values())) == len(stored), context  # ids unique
            # at most the one append that committed but was killed before it could report
            unreported = {seq: eid for seq, eid in stored.items() if seq not in expected}
            assert set(unreported) <= {highest_seq + len(seqs) + 1}, context
            expected.update(unreported)
            assert stored == expected, context
            highest_seq = max([highest_seq, *stored])

            # ack nothing, then everything (the counter's hardest case), then a random half
            to_ack = [[], list(expected), rng.sample(list(expected), len(expected) // 2)]
            for seq in to_ack[round_number]:
                box.ack(seq)
                del expected[seq]

    with open_outbox(path) as box:
        assert {event.seq: event.id for event in box.pending(ALL)} == expected
        assert box.append("t.x", {}).seq == highest_seq + 1, f"seed {seed}"


# -- any interleaving of append, append_in, ack and reopen ---------------------------------------

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=8)
)
json_objects = st.dictionaries(
    st.text(max_size=6),
    st.one_of(json_scalars, st.lists(json_scalars, max_size=3)),
    max_size=4,
)
MACHINE_MAX_ROWS = 4


class OutboxMachine(RuleBasedStateMachine):
    """pending() is always what was appended (and committed) minus what was acked, in seq
    order, and seqs are handed out without reuse."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="outbox-machine-"))
        self.path = self.directory / "outbox.db"
        self.clock = ManualClock(START)
        self.outbox = self.open()
        self.model: dict[int, OutboxEvent] = {}
        self.last_seq = 0

    def open(self) -> Outbox:
        return open_outbox(self.path, self.clock, max_business_rows=MACHINE_MAX_ROWS)

    @rule(data=json_objects, seconds=st.integers(0, 3))
    def append(self, data: dict[str, Any], seconds: int) -> None:
        self.clock.advance(seconds)
        event = self.outbox.append("prop.event", data)
        assert event.seq == self.last_seq + 1
        assert json.loads(event.payload)["data"] == data
        self.last_seq = event.seq
        self.model[event.seq] = event

    @rule(data=json_objects, commit=st.booleans())
    def append_in(self, data: dict[str, Any], commit: bool) -> None:
        conn = connect(self.path)
        try:
            conn.execute("BEGIN IMMEDIATE")
            event = self.outbox.append_in(conn, "prop.event", data)
            assert event.seq == self.last_seq + 1
            conn.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            conn.close()
        if commit:
            self.last_seq = event.seq
            self.model[event.seq] = event

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def ack_pending(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(sorted(self.model)))
        self.outbox.ack(self.model.pop(seq).row_id)

    @rule(row_ids=st.lists(st.integers(-2, 40), max_size=6))
    def ack_many_rows(self, row_ids: list[int]) -> None:  # a batch, with repeats and unknowns
        self.outbox.ack_many(row_ids)
        for row_id in row_ids:
            self.model.pop(row_id, None)

    @rule(row_id=st.integers(-2, 40))
    def ack_any_row(self, row_id: int) -> None:  # repeated, late and unknown acks
        self.outbox.ack(row_id)
        self.model.pop(row_id, None)

    @rule()
    def reopen(self) -> None:
        self.outbox.close()
        self.outbox = self.open()

    @invariant()
    def pending_is_appended_minus_acked_in_seq_order(self) -> None:
        expected = [self.model[seq] for seq in sorted(self.model)]
        assert self.outbox.pending(ALL) == expected
        middle = expected[len(expected) // 2].seq if expected else 0
        assert (
            self.outbox.pending(2, after_seq=middle)
            == [event for event in expected if event.seq > middle][:2]
        )
        assert self.outbox.backlog() == Backlog(
            events=len(expected),
            oldest_ts=expected[0].ts if expected else None,
            telemetry_pending=False,
            over_limit=len(expected) > MACHINE_MAX_ROWS,
        )

    def teardown(self) -> None:
        self.outbox.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def test_any_interleaving_keeps_pending_equal_to_appended_minus_acked() -> None:
    run_state_machine_as_test(
        OutboxMachine, settings=settings(max_examples=40, stateful_step_count=20, deadline=None)
    )


if __name__ == "__main__":
    child_main(sys.argv[1:])
