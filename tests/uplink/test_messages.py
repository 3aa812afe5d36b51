"""Payload models of contract v1: examples, strict rejections, errors, signing bytes, schemas."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from uplink.__main__ import main as cli
from uplink.errors import UplinkError
from uplink.messages import (
    SCHEMA_MODELS,
    SCHEMA_VERSION,
    Ack,
    AckAccepted,
    AckRejected,
    AckResult,
    AppointmentList,
    Birth,
    Command,
    Event,
    HallPresence,
    MessageError,
    Presence,
    Request,
    Response,
    ResponseError,
    ResponseOk,
    Telemetry,
    Versions,
    Will,
    check_topic,
    decode,
    encode,
    json_schemas,
    model_for,
    render_schema_files,
    signing_bytes,
)
from uplink.topics import Leaf, Topics, parse

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = ROOT / "uplink" / "schemas"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# Ed25519 is deterministic, so a fixed test key gives the fixed signature shown in docs/mqtt.md.
TEST_HALL_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))

SIGNED_FIELDS: dict[str, Any] = {
    "device": "locker-01",
    "component": "lockerd",
    "command_id": "cmd-20250301-0007",
    "issued_at": "2025-03-01T09:00:00+08:00",
    "expires_at": "2025-03-01T09:05:00+08:00",
    "action": "open_bay",
    "args": {"bay": 3, "reason": "维修"},
}
EXPECTED_SIGNING_BYTES = (
    '{"action":"open_bay","args":{"bay":3,"reason":"维修"},"command_id":"cmd-20250301-0007",'
    '"component":"lockerd","device":"locker-01","expires_at":"2025-03-01T09:05:00+08:00",'
    '"issued_at":"2025-03-01T09:00:00+08:00"}'
).encode()
SIG = "OzOOQibSNJQWvTEGwxKHjNwoGAtSiXTEADA9ZhKJyZ2XJGM7HzgQRM5cv7AraMSdOO0PwUaVvb+9zXFZd66JCg=="

DEVICE = {"device": "locker-01", "component": "lockerd"}
EXAMPLES: dict[str, tuple[type[BaseModel], dict[str, Any]]] = {
    "event": (
        Event,
        {
            "v": 1,
            "id": "3f2b8c1e9a4d4f6b8e2a7c5d1b0e9f4a",
            "seq": 42,
            "ts": "2025-03-01T09:15:02.120000+08:00",
            "type": "bay_opened",
            **DEVICE,
            "data": {"bay": 3, "cause": "pickup", "nested": [1, 2.5, None, {"ok": True}]},
        },
    ),
    "birth": (
        Birth,
        {
            "v": 1,
            "state": "online",
            **DEVICE,
            "session": 17,
            "boot_id": "9b1f0c2ad3e44b7f8a6c5d4e3f2a1b0c",
            "versions": {"hallkiosk": "0.1.0", "schema": 1},
            "ts": "2025-03-01T08:59:58+08:00",
        },
    ),
    "will": (
        Will,
        {
            "v": 1,
            "state": "offline",
            **DEVICE,
            "session": 17,
            "boot_id": "9b1f0c2ad3e44b7f8a6c5d4e3f2a1b0c",
            "ts": "2025-03-01T08:59:57+08:00",
        },
    ),
    "telemetry": (
        Telemetry,
        {
            "v": 1,
            "ts": "2025-03-01T09:15:00Z",
            **DEVICE,
            "metrics": {
                "cpu_temp_c": 51.5,
                "disk_free_bytes": 10737418240,
                "reader_present": True,
                "printer_paper": None,
                "firmware": "1.2",
                "door_states": {"1": "closed"},
            },
        },
    ),
    "request": (
        Request,
        {
            "v": 1,
            "kind": "ticket.issue",
            "ts": "2025-03-01T09:20:11+08:00",
            "device": "kiosk-02",
            "component": "kiosk",
            "args": {"area": "social-security"},
        },
    ),
    "response_ok": (Response, {"v": 1, "ok": True, "result": {"ticket": "S017"}}),
    "response_error": (
        Response,
        {
            "v": 1,
            "ok": False,
            "error": {
                "code": "quota_exhausted",
                "message_zh": "号源已发完。",
                "message_en": "None left.",
            },
        },
    ),
    "command": (Command, {"v": 1, **SIGNED_FIELDS, "sig": SIG}),
    "ack_accepted": (
        Ack,
        {
            "v": 1,
            **DEVICE,
            "command_id": "cmd-1",
            "status": "accepted",
            "ts": "2025-03-01T09:00:01+08:00",
        },
    ),
    "ack_rejected": (
        Ack,
        {
            "v": 1,
            **DEVICE,
            "command_id": "cmd-1",
            "status": "rejected",
            "reason": "expired",
            "ts": "2025-03-01T09:00:01+08:00",
        },
    ),
    "ack_result": (
        Ack,
        {
            "v": 1,
            **DEVICE,
            "command_id": "cmd-1",
            "status": "result",
            "result": {"error": "door_jammed"},
            "ts": "2025-03-01T09:00:02+08:00",
        },
    ),
    "hall_presence": (
        HallPresence,
        {
            "v": 1,
            "state": "online",
            "hall": "demo-hall",
            "session": 5,
            "ts": "2025-03-01T06:00:00+08:00",
        },
    ),
}
TIME_FIELDS = ("ts", "issued_at", "expires_at")


def raw(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def problem(model: type[BaseModel], document: Any) -> str:
    with pytest.raises(MessageError) as info:
        decode(model, raw(document))
    return str(info.value)


def cases() -> list[tuple[str, type[BaseModel], dict[str, Any]]]:
    return [(name, model, doc) for name, (model, doc) in EXAMPLES.items()]


def kind_of(model: type[BaseModel]) -> str:
    return str(getattr(model, "KIND"))  # noqa: B009 (ClassVar on our models)


# --- examples --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "model", "doc"), cases())
def test_example_decodes_and_encodes_back_unchanged(
    name: str, model: type[BaseModel], doc: dict[str, Any]
) -> None:
    message = decode(model, raw(doc))
    encoded = encode(message)
    # The telemetry example's "Z" is the only non-canonical spelling; it is the same instant.
    expected = dict(doc, ts="2025-03-01T09:15:00+00:00") if name == "telemetry" else doc
    assert json.loads(encoded) == expected
    assert decode(model, encoded) == message


def test_encode_is_compact_utf8() -> None:
    command = decode(Command, raw(EXAMPLES["command"][1]))
    encoded = encode(command)
    assert b" " not in encoded
    assert "维修".encode() in encoded
    assert encoded.startswith(b'{"v":1,"device":"locker-01","component":"lockerd",')


def test_presence_decodes_birth_or_will() -> None:
    birth = decode(Presence, raw(EXAMPLES["birth"][1])).root
    will = decode(Presence, raw(EXAMPLES["will"][1])).root
    assert isinstance(birth, Birth)
    assert isinstance(will, Will)
    assert birth.versions.schema_version == SCHEMA_VERSION
    assert will.session == birth.session
    assert "presence.state: Input tag 'sleeping'" in problem(
        Presence, dict(EXAMPLES["will"][1], state="sleeping")
    )


def test_variants_decode_to_their_own_classes() -> None:
    assert isinstance(decode(Response, raw(EXAMPLES["response_ok"][1])).root, ResponseOk)
    assert isinstance(decode(Response, raw(EXAMPLES["response_error"][1])).root, ResponseError)
    assert isinstance(decode(Ack, raw(EXAMPLES["ack_accepted"][1])).root, AckAccepted)
    assert isinstance(decode(Ack, raw(EXAMPLES["ack_rejected"][1])).root, AckRejected)
    assert isinstance(decode(Ack, raw(EXAMPLES["ack_result"][1])).root, AckResult)


# --- strict rejections -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "model", "doc"), cases())
def test_every_missing_field_is_named(
    name: str, model: type[BaseModel], doc: dict[str, Any]
) -> None:
    for field in doc:
        broken = {k: v for k, v in doc.items() if k != field}
        text = problem(model, broken)
        assert text.startswith(f"{kind_of(model)}.{field}: "), text


@pytest.mark.parametrize(("name", "model", "doc"), cases())
def test_unknown_field_is_refused(name: str, model: type[BaseModel], doc: dict[str, Any]) -> None:
    assert problem(model, dict(doc, colour="red")) == f"{kind_of(model)}.colour: unknown field"


@pytest.mark.parametrize(("name", "model", "doc"), cases())
def test_every_field_of_the_wrong_type_is_named(
    name: str, model: type[BaseModel], doc: dict[str, Any]
) -> None:
    for field in doc:
        # No field of the contract is an array, so an array is wrong everywhere.
        text = problem(model, dict(doc, **{field: ["x"]}))
        assert text.startswith(f"{kind_of(model)}.{field}: "), text


@pytest.mark.parametrize(("name", "model", "doc"), cases())
def test_no_coercion_from_strings(name: str, model: type[BaseModel], doc: dict[str, Any]) -> None:
    for field, value in doc.items():
        if isinstance(value, int):  # seq, session, v, and the booleans of a response
            text = problem(model, dict(doc, **{field: str(value).lower()}))
            assert text.startswith(f"{kind_of(model)}.{field}: "), text


@pytest.mark.parametrize(
    ("name", "model", "doc"), [c for c in cases() if not c[0].startswith("response")]
)
def test_naive_or_malformed_times_are_refused(
    name: str, model: type[BaseModel], doc: dict[str, Any]
) -> None:
    fields = [f for f in TIME_FIELDS if f in doc]
    for field in fields:
        for bad in (
            "2025-03-01T09:00:00",
            "2025-03-01 09:00:00+08:00",
            "2025-03-01T09:00:00+0800",
            "2025-03-01",
            "09:00:00+08:00",
            1740790800,
        ):
            text = problem(model, dict(doc, **{field: bad}))
            assert text.startswith(f"{kind_of(model)}.{field}: "), text
    assert "RFC 3339 time with an offset" in problem(
        model, dict(doc, **{fields[0]: "2025-03-01T09:00:00"})
    )


@pytest.mark.parametrize(("name", "model", "doc"), cases())
def test_other_schema_versions_are_refused(
    name: str, model: type[BaseModel], doc: dict[str, Any]
) -> None:
    kind = kind_of(model)
    assert problem(model, dict(doc, v=2)) == (
        f"{kind}.v: unsupported schema version 2 (this release reads 1)"
    )
    assert "unsupported schema version 0" in problem(model, dict(doc, v=0))
    for not_one in (True, 1.0, "1", None):
        assert problem(model, dict(doc, v=not_one)).startswith(f"{kind}.v: ")


@pytest.mark.parametrize(
    ("name", "change", "expected"),
    [
        ("event", {"seq": 0}, "event.seq: Input should be greater than or equal to 1"),
        ("event", {"seq": 2**63}, "event.seq: Input should be less than or equal to"),
        ("event", {"seq": True}, "event.seq: Input should be a valid integer (got a boolean)"),
        ("event", {"seq": 1.0}, "event.seq: "),
        ("event", {"id": uuid.uuid1().hex}, "event.id: String should match pattern"),
        ("event", {"id": "3F2B8C1E9A4D4F6B8E2A7C5D1B0E9F4A"}, "event.id: String should match"),
        ("event", {"type": "bay/opened"}, "event.type: String should match pattern"),
        ("event", {"type": "bay+"}, "event.type: String should match pattern"),
        ("event", {"device": "x" * 65}, "event.device: String should match pattern"),
        ("event", {"device": ""}, "event.device: String should match pattern"),
        (
            "event",
            {"ts": "2025-02-30T09:00:00+08:00"},
            "event.ts: Input should be a valid datetime",
        ),
        ("birth", {"session": -1}, "birth.session: Input should be greater than or equal to 0"),
        ("birth", {"state": "offline"}, "birth.state: Input should be 'online'"),
        ("birth", {"versions": {"hallkiosk": "0.1.0"}}, "birth.versions.schema: Field required"),
        (
            "birth",
            {"versions": {"hallkiosk": "0.1.0", "schema": 1, "x": 1}},
            "birth.versions.x: unknown field",
        ),
        (
            "telemetry",
            {"metrics": {"t": [1]}},
            "telemetry.metrics.t: Input should be a number, string, boolean, null or object",
        ),
        ("telemetry", {"metrics": {"a.b": []}}, "telemetry.metrics['a.b']: Input should be"),
        (
            "telemetry",
            {"metrics": {"": 1}},
            "telemetry.metrics[''][key]: String should have at least",
        ),
        ("request", {"kind": "a#b"}, "request.kind: String should match pattern"),
        ("response_ok", {"ok": 1}, "response.ok: Input should be true or false"),
        ("response_ok", {"ok": "true"}, "response.ok: Input should be true or false"),
        ("response_ok", {"error": {}}, "response.error: unknown field"),
        (
            "response_error",
            {"error": {"code": "x", "message_zh": "", "message_en": "y"}},
            "response.error.message_zh: String should have at least 1 character",
        ),
        ("ack_accepted", {"status": "done"}, "ack.status: Input tag 'done' found"),
        ("ack_accepted", {"reason": "x"}, "ack.reason: unknown field"),
        ("ack_rejected", {"reason": ""}, "ack.reason: String should have at least 1 character"),
        (
            "ack_result",
            {"result": "opened"},
            "ack.result: Input should be an object (got a string)",
        ),
        ("command", {"command_id": ""}, "command.command_id: String should have at least 1"),
        ("command", {"command_id": "c" * 65}, "command.command_id: String should have at most 64"),
        ("command", {"action": "open bay"}, "command.action: String should match pattern"),
        ("command", {"sig": SIG[:-4] + "===="}, "command.sig: String should match pattern"),
        ("command", {"sig": base64.b64encode(b"x" * 63).decode()}, "command.sig: String should"),
        (
            "command",
            {"expires_at": "2025-03-01T09:00:00+08:00"},
            "command: expires_at must be after issued_at",
        ),
        (
            "command",
            {"issued_at": "2025-03-01T01:00:00Z"},
            "command.issued_at: a signed time must be written as 2025-03-01T01:00:00+00:00",
        ),
        (
            "command",
            {"expires_at": "2025-03-01T09:05:00.5+08:00"},
            "command.expires_at: a signed time must be written as 2025-03-01T09:05:00.500000+08:00",
        ),
        ("hall_presence", {"state": "away"}, "hall_presence.state: Input should be 'online' or"),
        ("hall_presence", {"hall": "a/b"}, "hall_presence.hall: String should match pattern"),
    ],
)
def test_field_rules(name: str, change: dict[str, Any], expected: str) -> None:
    model, doc = EXAMPLES[name]
    assert problem(model, dict(doc, **change)).startswith(expected)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("event", {"data": {"t": "BIG"}}, "event.data: 't' is not finite"),
        ("event", {"data": {"a": [{"t": "BIG"}]}}, "event.data: 'a'[0].t is not finite"),
        ("telemetry", {"metrics": {"t": "-BIG"}}, "telemetry.metrics.t: value is not finite"),
        ("telemetry", {"metrics": {"d": {"t": "BIG"}}}, "telemetry.metrics.d: 't' is not finite"),
    ],
)
def test_numbers_beyond_a_float_are_refused(
    name: str, value: dict[str, Any], expected: str
) -> None:
    # json.dumps cannot write 1e400, and Python reads it as infinity: a sender's overflow.
    model, doc = EXAMPLES[name]
    payload = raw(dict(doc, **value)).replace(b'"BIG"', b"1e400").replace(b'"-BIG"', b"-1e400")
    with pytest.raises(MessageError) as info:
        decode(model, payload)
    assert expected in str(info.value)


def test_times_outside_commands_may_use_any_rfc3339_offset_spelling() -> None:
    model, doc = EXAMPLES["event"]
    for ts in ("2025-03-01T01:15:02Z", "2025-03-01T09:15:02.1+08:00", "2025-03-01T01:15:02-00:00"):
        event = decode(model, raw(dict(doc, ts=ts)))
        assert isinstance(event, Event)
        assert event.ts.utcoffset() is not None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xff\xfe{}", "event: not UTF-8 (byte 0)"),
        (b"", "event: not JSON"),
        (b"{", "event: not JSON"),
        (b"{'v': 1}", "event: not JSON"),
        (b'{"v": NaN}', "event: not JSON (NaN is not JSON)"),
        (b'{"v": Infinity}', "event: not JSON (Infinity is not JSON)"),
        (b"[]", "event: must be a JSON object, not an array"),
        (b'"event"', "event: must be a JSON object, not a string"),
        (b"42", "event: must be a JSON object, not a number"),
        (b"null", "event: must be a JSON object, not null"),
        (b"true", "event: must be a JSON object, not a boolean"),
        (b'{"v": 1, "v": 1}', "event: duplicate key 'v'"),
        (b'{"v": 1, "data": {"a": 1, "a": 2}}', "event: duplicate key 'a'"),
        (b"[" * 100_000 + b"]" * 100_000, "event: nested too deeply"),
        (b'{"v": 1, "data": {"s": "\\ud800"}}', "event: Invalid JSON"),
        (b'{"v": 1, "seq": ' + b"9" * 5000 + b"}", "event: not JSON"),
    ],
)
def test_decode_refuses_what_is_not_a_json_object(payload: bytes, expected: str) -> None:
    with pytest.raises(MessageError) as info:
        decode(Event, payload)
    assert str(info.value).startswith(expected)


def test_message_error_lists_every_problem_and_is_an_uplink_value_error() -> None:
    model, doc = EXAMPLES["event"]
    with pytest.raises(MessageError) as info:
        decode(model, raw(dict(doc, seq=0, id="x", extra=1)))
    assert set(info.value.problems) == {
        "event.seq: Input should be greater than or equal to 1",
        "event.id: String should match pattern '^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$'",
        "event.extra: unknown field",
    }
    assert isinstance(info.value, UplinkError)
    assert isinstance(info.value, ValueError)
    assert info.value.code == "message_invalid"


def test_decode_refuses_a_str_payload() -> None:
    with pytest.raises(MessageError, match="payload must be bytes"):
        decode(Event, "{}")  # type: ignore[arg-type]


# --- models built in Python --------------------------------------------------------------------


def test_models_built_in_python_take_aware_times_only() -> None:
    fields: dict[str, Any] = {
        "v": SCHEMA_VERSION,
        "id": uuid.uuid4().hex,
        "seq": 1,
        "type": "door_forced",
        **DEVICE,
        "data": {},
    }
    event = Event(ts=datetime(2025, 3, 1, 9, 0, tzinfo=SHANGHAI), **fields)
    assert json.loads(encode(event))["ts"] == "2025-03-01T09:00:00+08:00"
    with pytest.raises(ValidationError, match="timezone"):
        Event(ts=datetime(2025, 3, 1, 9, 0), **fields)  # noqa: DTZ001 (the naive time under test)
    with pytest.raises(ValidationError, match="whole minutes"):
        Event(ts=datetime(2025, 3, 1, tzinfo=timezone(timedelta(seconds=30))), **fields)
    with pytest.raises(ValidationError, match="frozen"):
        event.seq = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="finite"):
        Event(ts=datetime(2025, 3, 1, tzinfo=UTC), **dict(fields, data={"x": [float("nan")]}))


def test_birth_built_in_python_round_trips() -> None:
    birth = Birth(
        v=SCHEMA_VERSION,
        state="online",
        device="kiosk-02",
        component="kiosk",
        session=0,
        boot_id=uuid.uuid4().hex,
        versions=Versions(hallkiosk="0.1.0", schema=SCHEMA_VERSION),
        ts=datetime(2025, 3, 1, 9, 0, 0, 123000, tzinfo=SHANGHAI),
    )
    encoded = encode(birth)
    assert b'"versions":{"hallkiosk":"0.1.0","schema":1}' in encoded
    assert b'"ts":"2025-03-01T09:00:00.123000+08:00"' in encoded
    assert decode(Presence, encoded).root == birth


# --- commands and signing bytes --------------------------------------------------------------


def test_signing_bytes_are_byte_exact() -> None:
    assert signing_bytes(SIGNED_FIELDS) == EXPECTED_SIGNING_BYTES
    assert "维修".encode() in EXPECTED_SIGNING_BYTES  # UTF-8, not \\u escapes


def test_signing_bytes_do_not_depend_on_insertion_order_or_other_fields() -> None:
    reordered = {k: SIGNED_FIELDS[k] for k in reversed(SIGNED_FIELDS)}
    reordered["args"] = {"reason": "维修", "bay": 3}
    assert list(reordered) != list(SIGNED_FIELDS)
    assert signing_bytes(reordered) == EXPECTED_SIGNING_BYTES
    assert signing_bytes(dict(reordered, v=1, sig=SIG)) == EXPECTED_SIGNING_BYTES


def test_command_signing_bytes_equal_those_of_the_received_fields() -> None:
    received = json.loads(raw(EXAMPLES["command"][1]))
    command = decode(Command, raw(received))
    assert command.signing_bytes() == signing_bytes(received) == EXPECTED_SIGNING_BYTES
    assert command.signature == base64.b64decode(SIG)


def test_docs_signature_is_genuine() -> None:
    # Signature checking belongs to the command handler; this only proves the example is real.
    assert base64.b64encode(TEST_HALL_KEY.sign(EXPECTED_SIGNING_BYTES)).decode() == SIG
    TEST_HALL_KEY.public_key().verify(
        decode(Command, raw(EXAMPLES["command"][1])).signature, EXPECTED_SIGNING_BYTES
    )


def test_signing_bytes_write_datetimes_as_encode_does() -> None:
    issued = datetime(2025, 3, 1, 9, 0, tzinfo=SHANGHAI)
    fields = dict(SIGNED_FIELDS, issued_at=issued, expires_at=issued + timedelta(minutes=5))
    assert signing_bytes(fields) == EXPECTED_SIGNING_BYTES
    command = Command(v=SCHEMA_VERSION, sig=SIG, **fields)
    assert command.signing_bytes() == EXPECTED_SIGNING_BYTES
    assert decode(Command, encode(command)).signing_bytes() == EXPECTED_SIGNING_BYTES


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"args": None}, None),
        ({"issued_at": datetime(2025, 3, 1, 9, 0)}, "timezone-aware"),  # noqa: DTZ001
        ({"args": {"x": float("nan")}}, "cannot be signed"),
        ({"args": {"x": {1, 2}}}, "set is not JSON"),
    ],
)
def test_signing_bytes_refuse_what_cannot_be_signed(
    change: dict[str, Any], expected: str | None
) -> None:
    fields = dict(SIGNED_FIELDS, **change)
    if expected is None:  # a present null is signed as null, not refused
        assert b'"args":null' in signing_bytes(fields)
        return
    with pytest.raises(MessageError, match=expected):
        signing_bytes(fields)


def test_signing_bytes_name_missing_fields() -> None:
    fields = {k: v for k, v in SIGNED_FIELDS.items() if k not in ("args", "device")}
    with pytest.raises(MessageError) as info:
        signing_bytes(fields)
    assert info.value.problems == ["command.device: Field required", "command.args: Field required"]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(deadline=None, max_examples=150)
@given(args=st.dictionaries(st.text(max_size=6), json_values, max_size=5))
def test_any_decoded_command_signs_the_bytes_of_its_received_fields(args: dict[str, Any]) -> None:
    received = dict(EXAMPLES["command"][1], args=args)
    try:
        command = decode(Command, raw(received))
    except MessageError:
        # Lone surrogates are valid for Python's json but not for pydantic's parser.
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in json.dumps(args, ensure_ascii=False))
        return
    assert command.signing_bytes() == signing_bytes(json.loads(raw(received)))


# --- topics and payloads together ------------------------------------------------------------


def test_model_for_covers_every_leaf() -> None:
    assert {leaf: model_for(leaf) for leaf in Leaf} == {
        Leaf.PRESENCE: Presence,
        Leaf.EVENT: Event,
        Leaf.TELEMETRY: Telemetry,
        Leaf.REQUEST: Request,
        Leaf.RESPONSE: Response,
        Leaf.COMMAND: Command,
        Leaf.ACK: Ack,
        Leaf.HALL_PRESENCE: HallPresence,
        Leaf.HALL_APPOINTMENTS: AppointmentList,
    }


def test_check_topic_accepts_a_payload_on_its_own_topic() -> None:
    t = Topics("demo-hall", "locker-01", "lockerd")
    pairs = [
        (t.event("bay_opened"), "event"),
        (t.presence, "birth"),
        (t.presence, "will"),
        (t.telemetry, "telemetry"),
        (t.response, "response_ok"),
        (t.command, "command"),
        (t.ack, "ack_result"),
        (t.hall_presence, "hall_presence"),
        (Topics("demo-hall", "kiosk-02", "kiosk").request("ticket.issue"), "request"),
    ]
    for topic, name in pairs:
        parsed = parse(topic)
        check_topic(decode(model_for(parsed.leaf), raw(EXAMPLES[name][1])), parsed)


@pytest.mark.parametrize(
    ("topic", "name", "expected"),
    [
        (
            "hall/demo-hall/dev/locker-02/lockerd/evt/bay_opened",
            "event",
            ["event.device: 'locker-01' does not match the topic's 'locker-02'"],
        ),
        (
            "hall/demo-hall/dev/locker-01/kiosk/evt/door_forced",
            "event",
            [
                "event.component: 'lockerd' does not match the topic's 'kiosk'",
                "event.type: 'bay_opened' does not match the topic's 'door_forced'",
            ],
        ),
        (
            "hall/demo-hall/dev/kiosk-02/kiosk/req/appointment.lookup",
            "request",
            ["request.kind: 'ticket.issue' does not match the topic's 'appointment.lookup'"],
        ),
        (
            "hall/other-hall/hall/presence",
            "hall_presence",
            ["hall_presence.hall: 'demo-hall' does not match the topic's 'other-hall'"],
        ),
        (
            "hall/demo-hall/dev/locker-01/lockerd/presence",
            "ack_accepted",
            ["ack: does not belong on a 'presence' topic"],
        ),
    ],
)
def test_check_topic_refuses_claims_the_topic_does_not_back(
    topic: str, name: str, expected: list[str]
) -> None:
    model, doc = EXAMPLES[name]
    with pytest.raises(MessageError) as info:
        check_topic(decode(model, raw(doc)), parse(topic))
    assert info.value.problems == expected


# --- JSON Schemas ----------------------------------------------------------------------------


def test_committed_schema_files_are_up_to_date() -> None:
    committed = {p.name: p.read_text("utf-8") for p in SCHEMAS_DIR.glob("*.json")}
    assert committed == render_schema_files(), "run: python -m uplink schemas --write"
    assert cli(["schemas", "--check"]) == 0


def test_schema_ids_titles_and_names() -> None:
    schemas = json_schemas()
    assert set(schemas) == set(SCHEMA_MODELS)
    for kind, schema in schemas.items():
        assert schema["$id"] == f"https://hallkiosk.invalid/schemas/{kind}.v1.json"
        assert schema["title"] == f"hallkiosk {kind} v1"
        assert (SCHEMAS_DIR / f"{kind}.v1.json").is_file()
    assert all(text.endswith("}\n") for text in render_schema_files().values())


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    if "oneOf" not in schema:
        return [schema]
    return [schema["$defs"][ref["$ref"].rsplit("/", 1)[1]] for ref in schema["oneOf"]]


def _fits(variant: dict[str, Any], doc: dict[str, Any]) -> bool:
    """Top level only: required fields present, no others, consts equal, patterns met."""
    props: dict[str, Any] = variant["properties"]
    if variant.get("additionalProperties") is not False:
        return False
    if not set(variant["required"]) <= set(doc) <= set(props):
        return False
    for name, value in doc.items():
        spec = props[name]
        if "const" in spec and (spec["const"] != value or type(spec["const"]) is not type(value)):
            return False
        if "pattern" in spec and not re.search(spec["pattern"], value):
            return False
    return True


@pytest.mark.parametrize(("name", "model", "doc"), cases())
def test_each_schema_file_takes_a_sample_and_refuses_a_bad_one(
    name: str, model: type[BaseModel], doc: dict[str, Any]
) -> None:
    kind = kind_of(model)
    schema = json.loads((SCHEMAS_DIR / f"{kind}.v1.json").read_text("utf-8"))
    assert schema == json_schemas()[kind] == {**model.model_json_schema(), **_ids(kind)}
    bad = {k: v for k, v in doc.items() if k != "v"}
    assert [_fits(v, doc) for v in _variants(schema)].count(True) == 1
    assert not any(_fits(v, bad) for v in _variants(schema))
    decode(model, raw(doc))
    with pytest.raises(MessageError):
        decode(model, raw(bad))


def _ids(kind: str) -> dict[str, str]:
    return {
        "$id": f"https://hallkiosk.invalid/schemas/{kind}.v1.json",
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"hallkiosk {kind} v1",
    }


def test_cli_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schemas"
    assert cli(["schemas", "--check", "--dir", str(out)]) == 1
    assert cli(["schemas", "--write", "--dir", str(out)]) == 0
    assert cli(["schemas", "--check", "--dir", str(out)]) == 0
    (out / "event.v1.json").write_text("{}\n", "utf-8")
    (out / "old.v0.json").write_text("{}\n", "utf-8")
    capsys.readouterr()
    assert cli(["schemas", "--check", "--dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "event.v1.json" in err and "old.v0.json" in err and "birth" not in err
    assert cli(["schemas", "--write", "--dir", str(out)]) == 0
    assert {p.name: p.read_text("utf-8") for p in out.iterdir()} == render_schema_files()
    with pytest.raises(SystemExit):
        cli(["schemas"])


# --- docs -------------------------------------------------------------------------------------


def test_every_example_in_the_docs_decodes() -> None:
    text = (ROOT / "docs" / "mqtt.md").read_text("utf-8")
    found = re.findall(r"<!-- example: (\w+) -->\n```json\n(.*?)```", text, flags=re.DOTALL)
    kinds = {kind for kind, _ in found}
    assert kinds == set(SCHEMA_MODELS)
    for kind, block in found:
        message = decode(SCHEMA_MODELS[kind], block.encode())
        if isinstance(message, Command):
            assert message.signing_bytes() == EXPECTED_SIGNING_BYTES
            assert message.sig == SIG
    assert EXPECTED_SIGNING_BYTES.decode() in text


# --- robustness -------------------------------------------------------------------------------

decodable = [*SCHEMA_MODELS.values(), Presence]


@settings(deadline=None, max_examples=300)
@given(model=st.sampled_from(decodable), payload=st.binary(max_size=200))
def test_decode_raises_only_message_error_on_arbitrary_bytes(
    model: type[BaseModel], payload: bytes
) -> None:
    with contextlib.suppress(MessageError):
        decode(model, payload)


@settings(deadline=None, max_examples=300)
@given(
    name=st.sampled_from(sorted(EXAMPLES)),
    key=st.text(max_size=10) | st.sampled_from(["v", "ts", "seq", "args", "ok", "status", "sig"]),
    value=json_values,
)
def test_decode_raises_only_message_error_on_mutated_examples(
    name: str, key: str, value: Any
) -> None:
    model, doc = EXAMPLES[name]
    mutated = copy.deepcopy(doc)
    mutated[key] = value
    payload = json.dumps(mutated, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        message = decode(model, payload)
    except MessageError:
        return
    assert json.loads(encode(message)) == json.loads(encode(decode(model, encode(message))))
