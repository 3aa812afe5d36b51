"""Every locker flow through the real API, on a real pty to the simulator, for both families."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from locker.client import ApiError
from tests.fixtures.processes import LockboardSimFactory
from tests.locker.harness import BOARD, InProcessLockerd


def ident(n: int) -> str:
    return hashlib.sha256(f"person-{n}".encode()).hexdigest()


@pytest.fixture(params=["8a80", "kerong"])
def locker(
    request: pytest.FixtureRequest, tmp_path: Path, lockboard_sim: LockboardSimFactory
) -> Iterator[InProcessLockerd]:
    protocol = str(request.param)
    sim = lockboard_sim(protocol, boards=(BOARD[protocol],), channels=16)
    daemon = InProcessLockerd(tmp_path, sim, protocol, channels=6).start()
    try:
        yield daemon
    finally:
        daemon.stop()


def api_error(fn: object, *args: object, **kwargs: object) -> ApiError:
    with pytest.raises(ApiError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return info.value


def test_load_then_pickup(locker: InProcessLockerd) -> None:
    deposit_id, bay_id, password = locker.load(ident(1), size="M")
    assert bay_id in ("A03", "A04") and len(password) == 6 and password.isdigit()
    waiting = locker.client.call("deposits.for_identity", identity_hash=ident(1))["deposits"]
    assert [(d["deposit_id"], d["recipient"], d["overdue"]) for d in waiting] == [
        (deposit_id, "张*三", False)
    ]
    assert waiting[0]["deadline"] == "2026-11-30T23:59:59+08:00"  # 7 days, end of service day
    result = locker.client.call("pickup", identity_hash=ident(1), password=password)
    assert result == {"deposit_id": deposit_id, "bay_id": bay_id, "opened": True}
    locker.wait_door(bay_id, "open")
    locker.wait_door(bay_id, "closed")
    assert locker.client.call("deposits.for_identity", identity_hash=ident(1)) == {"deposits": []}
    kinds = [e["kind"] for e in locker.audit() if e["deposit_id"] == deposit_id]
    assert kinds.count("door_opened") == 2  # the load and the pickup, each seen by the watch
    assert [k for k in kinds if k != "door_opened"] == [
        "deposit_started",
        "open_intent",
        "open_result",
        "deposit_stored",
        "open_intent",
        "open_result",
    ]
    assert [(f.board, f.channel) for f in locker.sim.control.unlock_log()] == [
        (locker.board, locker.channel(bay_id))
    ] * 2
    # the same pickup again does nothing: the deposit is closed
    err = api_error(locker.client.call, "pickup", identity_hash=ident(1), password=password)
    assert err.code == "no_such_deposit" and "没有找到" in err.message_zh


def test_password_is_stored_only_as_a_slow_hash(locker: InProcessLockerd) -> None:
    deposit_id, _bay, password = locker.load(ident(2))
    db = sqlite3.connect(locker.settings.db_path)
    row = db.execute("SELECT password_hash FROM deposits WHERE id = ?", (deposit_id,)).fetchone()
    assert row[0].startswith("scrypt$1024$8$1$") and password not in row[0]
    dump = "\n".join(db.iterdump())
    assert password not in dump.replace(row[0], "")
    db.close()


def test_wrong_passwords_lock_deposit_and_identity(locker: InProcessLockerd) -> None:
    deposit_id, _, password = locker.load(ident(3))
    wrong = "000000" if password != "000000" else "111111"
    lefts = []
    for _ in range(4):
        err = api_error(locker.client.call, "pickup", identity_hash=ident(3), password=wrong)
        assert err.code == "wrong_password"
        lefts.append(err.error["attempts_left"])
    assert lefts == [4, 3, 2, 1]
    err = api_error(locker.client.call, "pickup", identity_hash=ident(3), password=wrong)
    assert err.code == "locked_out" and "03:15" in err.message_zh
    assert ("pickup_lockout", f"deposit:{deposit_id}") in locker.alarms()
    # locked: even the right password is refused, and nothing was opened
    err = api_error(locker.client.call, "pickup", identity_hash=ident(3), password=password)
    assert err.code == "locked_out"
    fires_before = len(locker.sim.control.unlock_log())
    locker.clock.advance(15 * 60 + 1)
    result = locker.client.call("pickup", identity_hash=ident(3), password=password)
    assert result["opened"] is True
    assert len(locker.sim.control.unlock_log()) == fires_before + 1
    reasons = [e["detail"]["reason"] for e in locker.audit("pickup_refused")]
    assert reasons == ["wrong_password"] * 5 + ["locked_out"]


def test_identity_lockout_spans_that_identitys_deposits(locker: InProcessLockerd) -> None:
    first, _, pw1 = locker.load(ident(4), case="ZJ2026-0101")
    second, _, pw2 = locker.load(ident(4), case="ZJ2026-0102")
    err = api_error(locker.client.call, "pickup", identity_hash=ident(4), password=pw1)
    assert err.code == "choose_deposit" and "多件" in err.message_zh
    wrong = next(p for p in ("123456", "654321", "111111") if p not in (pw1, pw2))
    for n in range(5):
        target = first if n % 2 == 0 else second
        err = api_error(
            locker.client.call, "pickup", identity_hash=ident(4), password=wrong, deposit_id=target
        )
    assert err.code == "locked_out"  # five wrong for this card, spread over two deposits
    err = api_error(
        locker.client.call, "pickup", identity_hash=ident(4), password=pw2, deposit_id=second
    )
    assert err.code == "locked_out"


def test_someone_elses_deposit_is_not_found(locker: InProcessLockerd) -> None:
    deposit_id, _, password = locker.load(ident(5))
    err = api_error(
        locker.client.call,
        "pickup",
        identity_hash=ident(6),
        password=password,
        deposit_id=deposit_id,
    )
    assert err.code == "no_such_deposit"
    err = api_error(locker.client.call, "pickup", identity_hash=ident(5), password="12345")
    assert err.code == "password_format" and "6位数字" in err.message_zh


def test_reissued_password_replaces_the_old_one(locker: InProcessLockerd) -> None:
    deposit_id, _, old = locker.load(ident(7))
    new = locker.client.call("deposit.reissue_password", staff_id="clerk1", deposit_id=deposit_id)[
        "password"
    ]
    if new != old:
        err = api_error(locker.client.call, "pickup", identity_hash=ident(7), password=old)
        assert err.code == "wrong_password"
    assert locker.client.call("pickup", identity_hash=ident(7), password=new)["opened"]


def test_reissue_lifts_the_card_lockout_so_the_new_code_works_at_once(
    locker: InProcessLockerd,
) -> None:
    deposit_id, bay_id, password = locker.load(ident(11))
    wrong = "000000" if password != "000000" else "111111"
    for _ in range(5):
        err = api_error(locker.client.call, "pickup", identity_hash=ident(11), password=wrong)
    assert err.code == "locked_out"
    assert ("pickup_lockout", f"deposit:{deposit_id}") in locker.alarms()
    # the card is locked too: the clerk's new code must not wait 15 minutes for it
    db = sqlite3.connect(locker.settings.db_path)
    try:
        (locked_until,) = db.execute(
            "SELECT locked_until FROM identity_lockouts WHERE identity_hash = ?", (ident(11),)
        ).fetchone()
    finally:
        db.close()
    assert locked_until is not None
    fires_before = len(locker.sim.control.unlock_log())
    new = locker.client.call("deposit.reissue_password", staff_id="clerk2", deposit_id=deposit_id)[
        "password"
    ]
    result = locker.client.call("pickup", identity_hash=ident(11), password=new)  # no clock move
    assert result == {"deposit_id": deposit_id, "bay_id": bay_id, "opened": True}
    assert len(locker.sim.control.unlock_log()) == fires_before + 1
    (cleared,) = locker.audit("identity_lockout_cleared")
    assert (cleared["deposit_id"], cleared["actor"]) == (deposit_id, "clerk2")
    assert cleared["detail"]["reason"] == "password_reissued"
    assert cleared["detail"]["identity"] == ident(11)[:12]  # a hash prefix, never an ID number
    assert cleared["detail"]["was_locked_until"] == "2026-11-23T03:15:00+08:00"
    assert ("pickup_lockout", f"deposit:{deposit_id}") not in locker.alarms()
    kinds = [e["kind"] for e in locker.audit() if e["deposit_id"] == deposit_id]
    assert kinds.index("password_reissued") < kinds.index("identity_lockout_cleared")


def test_reissue_without_a_lockout_clears_nothing(locker: InProcessLockerd) -> None:
    deposit_id, _, _ = locker.load(ident(12))
    new = locker.client.call("deposit.reissue_password", staff_id="clerk1", deposit_id=deposit_id)[
        "password"
    ]
    assert locker.client.call("pickup", identity_hash=ident(12), password=new)["opened"]
    assert locker.audit("identity_lockout_cleared") == []


def test_overdue_retrieve_and_pickup_refused(locker: InProcessLockerd) -> None:
    deposit_id, bay_id, password = locker.load(ident(8))
    err = api_error(locker.client.call, "retrieve", staff_id="clerk2", deposit_id=deposit_id)
    assert err.code == "not_overdue"
    assert locker.client.call("overdue.list") == {"deposits": []}
    locker.clock.advance(8 * 86400)
    overdue = locker.client.call("overdue.list")["deposits"]
    assert [(d["deposit_id"], d["overdue"]) for d in overdue] == [(deposit_id, True)]
    err = api_error(locker.client.call, "pickup", identity_hash=ident(8), password=password)
    assert err.code == "overdue" and "窗口" in err.message_zh
    result = locker.client.call("retrieve", staff_id="clerk2", deposit_id=deposit_id)
    assert result["opened"] and result["bay_id"] == bay_id
    assert locker.client.call("overdue.list") == {"deposits": []}
    opened = [e for e in locker.audit("open_intent") if e["deposit_id"] == deposit_id]
    assert [e["detail"]["purpose"] for e in opened] == ["load", "retrieve"]
    assert opened[-1]["actor"] == "clerk2"


def test_recall_a_wrongly_loaded_item(locker: InProcessLockerd) -> None:
    deposit_id, bay_id, password = locker.load(ident(9))
    result = locker.client.call(
        "recall", staff_id="clerk1", deposit_id=deposit_id, reason="wrong envelope"
    )
    assert result == {"deposit_id": deposit_id, "bay_id": bay_id, "opened": True}
    err = api_error(locker.client.call, "pickup", identity_hash=ident(9), password=password)
    assert err.code == "no_such_deposit"


def test_cancel_a_load_frees_the_bay(locker: InProcessLockerd) -> None:
    started = locker.start_load(ident(10), size="L", case="ZJ2026-0200", name="李*")
    assert started["bay_id"] == "A05"
    locker.client.call("deposit.cancel", staff_id="clerk1", deposit_id=started["deposit_id"])
    locker.wait_door("A05", "open")  # the clerk takes the item back out and shuts the door
    locker.wait_door("A05", "closed")
    again = locker.start_load(ident(10), size="L", case="ZJ2026-0201", name="李*")
    assert again["bay_id"] == "A05"


def test_bay_allocation_size_fallback_disable_and_no_free_bay(locker: InProcessLockerd) -> None:
    locker.client.call(
        "bay.set_enabled", staff_id="ops1", bay_id="A01", enabled=False, reason="hinge broken"
    )
    bays = []
    for n in range(5):  # S bays: A02 only (A01 disabled); then M and L by fallback
        started = locker.start_load(ident(20 + n), size="S", case=f"ZJ2026-03{n:02d}", name="王*")
        bays.append(started["bay_id"])
    assert bays == ["A02", "A03", "A04", "A05", "A06"]
    err = api_error(
        locker.client.call,
        "deposit.start",
        staff_id="clerk1",
        case_number="ZJ2026-0399",
        size="S",
        recipient={"identity_hash": ident(30), "masked_name": "王*"},
    )
    assert err.code == "no_free_bay" and "空柜格" in err.message_zh
    status = {b["bay_id"]: b for b in locker.client.call("status")["bays"]}
    assert status["A01"]["enabled"] is False and status["A01"]["disabled_reason"] == "hinge broken"


def test_confirm_refused_while_the_door_is_open(locker: InProcessLockerd) -> None:
    locker.sim.control.set_auto_person(False)
    started = locker.start_load(ident(40), size="S", case="ZJ2026-0400", name="赵*")
    channel = locker.channel(started["bay_id"])
    locker.sim.control.hold_door_open(locker.board, channel)
    err = api_error(
        locker.client.call, "deposit.confirm", staff_id="clerk1", deposit_id=started["deposit_id"]
    )
    assert err.code == "door_not_closed" and "关好柜门" in err.message_zh
    locker.sim.control.close_door(locker.board, channel)
    assert locker.client.call(
        "deposit.confirm", staff_id="clerk1", deposit_id=started["deposit_id"]
    )["password"]


def test_repeated_start_with_the_same_request_id_is_one_deposit(locker: InProcessLockerd) -> None:
    params = {
        "staff_id": "clerk1",
        "case_number": "ZJ2026-0500",
        "size": "S",
        "recipient": {"identity_hash": ident(50), "masked_name": "孙*"},
        "request_id": "load-0500",
    }
    first = locker.client.call("deposit.start", **params)
    second = locker.client.call("deposit.start", **params)
    assert first["deposit_id"] == second["deposit_id"]
    assert len(locker.sim.control.unlock_log()) == 1  # the repeat did not fire the lock again


def test_maintenance_open(locker: InProcessLockerd) -> None:
    err = api_error(
        locker.client.call, "maintenance.open", staff_id="ops1", bay_id="A03", reason=" "
    )
    assert err.code == "invalid_request"
    result = locker.client.call(
        "maintenance.open", staff_id="ops1", bay_id="A03", reason="replace lock", request_id="cmd-1"
    )
    assert result == {"bay_id": "A03", "opened": True}
    again = locker.client.call(
        "maintenance.open", staff_id="ops1", bay_id="A03", reason="replace lock", request_id="cmd-1"
    )
    assert again["repeated"] is True
    assert [(f.board, f.channel) for f in locker.sim.control.unlock_log()] == [(locker.board, 3)]
    err = api_error(
        locker.client.call, "maintenance.open", staff_id="ops1", bay_id="Z99", reason="x"
    )
    assert err.code == "no_such_bay"


def test_invalid_inputs_are_refused_with_reasons(locker: InProcessLockerd) -> None:
    bad = {"identity_hash": "330106199001011234", "masked_name": "张三"}
    err = api_error(
        locker.client.call,
        "deposit.start",
        staff_id="clerk1",
        case_number="ZJ2026-0600",
        size="S",
        recipient=bad,
    )
    assert err.code == "invalid_request" and "64 lower-case hex" in err.detail
    err = api_error(
        locker.client.call,
        "deposit.start",
        staff_id="clerk 1",
        case_number="ZJ2026-0600",
        size="S",
        recipient={"identity_hash": ident(60), "masked_name": "张*"},
    )
    assert "staff_id" in err.detail
    err = api_error(
        locker.client.call,
        "deposit.start",
        staff_id="clerk1",
        case_number="x",
        size="S",
        recipient={"identity_hash": ident(60), "masked_name": "张*"},
    )
    assert "case_number" in err.detail
