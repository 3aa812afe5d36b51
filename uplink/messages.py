"""Payloads of MQTT contract v1: strict models, decode/encode, command signing bytes, JSON Schemas.

Every payload is a UTF-8 JSON object with ``"v": 1``. Unknown fields, coerced types, naive times
and other schema versions are errors. ``decode`` is the only way bytes from the network become a
model, and it raises nothing but ``MessageError``, whose text names the field and the reason.
The JSON Schema files under ``uplink/schemas/`` are generated from these models
(``python -m uplink schemas --write``) and a test keeps them equal.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any, ClassVar, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    PlainSerializer,
    RootModel,
    Strict,
    Tag,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
    model_validator,
)

from uplink.errors import UplinkError
from uplink.topics import SEGMENT_PATTERN, Leaf, ParsedTopic

SCHEMA_VERSION: Final = 1
SCHEMA_ID_BASE = "https://hallkiosk.invalid/schemas/"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# The fields a command's Ed25519 signature covers, as the contract lists them.
SIGNED_COMMAND_FIELDS: Final = (
    "device",
    "component",
    "command_id",
    "issued_at",
    "expires_at",
    "action",
    "args",
)
# Durable counters live in SQLite INTEGER columns.
COUNTER_MAX = 2**63 - 1
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", flags=re.ASCII
)


class MessageError(UplinkError, ValueError):
    code = "message_invalid"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


# --- field types -----------------------------------------------------------------------------


def _exactly_int(value: Any) -> Any:
    # Literal[1] alone would take true and 1.0, because True == 1.0 == 1 in Python.
    if type(value) is not int:
        raise ValueError("Input should be the integer 1")
    return value


def _rfc3339_text(value: Any) -> Any:
    # The datetime below is lax so that it parses text handed on by this validator; this check
    # is the strict part. pydantic alone would also take "2025-03-01 09:00:00+0800" or numbers.
    if isinstance(value, datetime) or (isinstance(value, str) and _RFC3339.fullmatch(value)):
        return value
    raise ValueError(
        "Input should be an RFC 3339 time with an offset, e.g. 2025-03-01T09:00:00+08:00"
    )


def _whole_minute_offset(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is not None and offset % timedelta(minutes=1):
        raise ValueError("the UTC offset must be whole minutes to be written in RFC 3339")
    return value


def format_time(value: datetime) -> str:
    """The one way times are written: ``datetime.isoformat()`` of an aware time."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise MessageError(["a time to be sent must be timezone-aware"])
    return value.isoformat()


Version = Annotated[Literal[1], BeforeValidator(_exactly_int)]
Segment = Annotated[str, Field(pattern=SEGMENT_PATTERN)]
# uuid.uuid4().hex: 32 lower-case hex digits with the version and variant bits of a v4 UUID.
Uuid4Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")]
Counter = Annotated[int, Field(ge=1, le=COUNTER_MAX)]
Session = Annotated[int, Field(ge=0, le=COUNTER_MAX)]
Time = Annotated[
    AwareDatetime,
    Strict(False),
    BeforeValidator(_rfc3339_text),
    AfterValidator(_whole_minute_offset),
    PlainSerializer(format_time, return_type=str, when_used="json"),
]
Text = Annotated[str, Field(min_length=1, max_length=500)]
CommandId = Annotated[str, Field(min_length=1, max_length=64)]


def _finite(value: JsonValue, path: str = "") -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path or 'value'} is not finite (JSON has no NaN or Infinity)")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite(item, f"{path}.{key}" if path else repr(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _finite(item, f"{path}[{index}]")


def _all_finite(value: JsonValue) -> bool:
    """``_finite`` without building a path for every key: the check on every message's data.
    Only when it finds a NaN or an infinity does ``_finite`` run, to name where."""
    if isinstance(value, float):
        return math.isfinite(value)
    items: Iterable[JsonValue]
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return True
    for item in items:
        if isinstance(item, float | dict | list) and not _all_finite(item):
            return False
    return True


def _finite_object(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    if not _all_finite(value):
        _finite(value)
    return value


def _metric(value: JsonValue) -> JsonValue:
    if isinstance(value, list):
        raise ValueError("Input should be a number, string, boolean, null or object")
    if not _all_finite(value):
        _finite(value)
    return value


# Free-form business data: any JSON object that survives a round trip unchanged.
JsonObject = Annotated[dict[str, JsonValue], AfterValidator(_finite_object)]
# One JSON value with one clear error, rather than a union reporting each failed branch.
MetricValue = Annotated[
    JsonValue,
    AfterValidator(_metric),
    WithJsonSchema({"type": ["number", "string", "boolean", "null", "object"]}),
]


class Message(BaseModel):
    """Base of every payload: strict types, no unknown fields, immutable."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)
    KIND: ClassVar[str]


# --- device -> hall --------------------------------------------------------------------------


class Event(Message):
    """A business fact or alarm, published QoS 1 from the durable outbox; deduplicated on
    (device, id) and ordered per component by seq."""

    KIND: ClassVar[str] = "event"
    v: Version
    id: Uuid4Hex = Field(description="uuid4 hex, unique on the device; the hall dedups on it")
    seq: Counter = Field(description="per component, durable, increasing by one per event")
    ts: Time = Field(description="when the fact happened on the device")
    type: Segment = Field(description="also the last topic segment (evt/{type})")
    device: Segment
    component: Segment
    data: JsonObject


class Versions(Message):
    KIND: ClassVar[str] = "versions"
    hallkiosk: Annotated[str, Field(min_length=1, max_length=64)]
    # "schema" would shadow a BaseModel method, hence the alias.
    schema_version: int = Field(alias="schema", ge=1)


class Birth(Message):
    """The retained online presence, published on every connect."""

    KIND: ClassVar[str] = "birth"
    v: Version
    state: Literal["online"]
    device: Segment
    component: Segment
    session: Session = Field(description="+1 per connection, durable; the will carries the same")
    boot_id: Uuid4Hex = Field(description="new per process start")
    versions: Versions
    ts: Time


class Will(Message):
    """The retained offline presence, registered as the MQTT last will at connect."""

    KIND: ClassVar[str] = "will"
    v: Version
    state: Literal["offline"]
    device: Segment
    component: Segment
    session: Session = Field(description="the session of the connection that registered it")
    boot_id: Uuid4Hex
    ts: Time = Field(description="when the will was registered, not when it was sent")


PresenceVariant = Annotated[Birth | Will, Field(discriminator="state")]


class Presence(RootModel[PresenceVariant]):
    """Whatever arrives on a device's presence topic: a birth or a will."""

    model_config = ConfigDict(strict=True, frozen=True)
    KIND: ClassVar[str] = "presence"
    DISCRIMINATOR: ClassVar[str] = "state"


class Telemetry(Message):
    """Periodic health; only the latest is kept while offline."""

    KIND: ClassVar[str] = "telemetry"
    v: Version
    ts: Time
    device: Segment
    component: Segment
    metrics: dict[Annotated[str, Field(min_length=1, max_length=64)], MetricValue] = Field(
        description="names carry units, e.g. cpu_temp_c, disk_free_bytes"
    )


class Request(Message):
    """A question to the hall; MQTT 5 ResponseTopic and CorrelationData carry the way back."""

    KIND: ClassVar[str] = "request"
    v: Version
    kind: Segment = Field(description="also the last topic segment (req/{kind})")
    ts: Time
    device: Segment
    component: Segment
    args: JsonObject


class _AckBase(Message):
    KIND: ClassVar[str] = "ack"
    v: Version
    device: Segment
    component: Segment
    command_id: CommandId


class AckAccepted(_AckBase):
    """Stage one: the command passed signature, expiry and replay checks and will be run."""

    status: Literal["accepted"]
    ts: Time


class AckRejected(_AckBase):
    """Stage one: the command was refused and nothing was done."""

    status: Literal["rejected"]
    reason: Text
    ts: Time


class AckResult(_AckBase):
    """Stage two: the physical outcome of an accepted command."""

    status: Literal["result"]
    result: JsonObject = Field(description='e.g. {"opened": true} or {"error": "door_jammed"}')
    ts: Time


AckVariant = Annotated[AckAccepted | AckRejected | AckResult, Field(discriminator="status")]


class Ack(RootModel[AckVariant]):
    """A command acknowledgement: accepted or rejected, then (if accepted) the result."""

    model_config = ConfigDict(strict=True, frozen=True)
    KIND: ClassVar[str] = "ack"
    DISCRIMINATOR: ClassVar[str] = "status"


# --- hall -> device --------------------------------------------------------------------------


class ResponseOk(Message):
    KIND: ClassVar[str] = "response"
    v: Version
    ok: Literal[True]
    result: JsonObject


class ErrorInfo(Message):
    KIND: ClassVar[str] = "error"
    code: Segment = Field(description="stable, for programs")
    message_zh: Text
    message_en: Text


class ResponseError(Message):
    KIND: ClassVar[str] = "response"
    v: Version
    ok: Literal[False]
    error: ErrorInfo


def _response_tag(value: Any) -> str | None:
    # By identity: Literal[True] alone would take 1 and 1.0, because True == 1 == 1.0.
    ok = value.get("ok") if isinstance(value, dict) else getattr(value, "ok", None)
    if ok is True:
        return "ok"
    return "error" if ok is False else None


ResponseVariant = Annotated[
    Annotated[ResponseOk, Tag("ok")] | Annotated[ResponseError, Tag("error")],
    Discriminator(
        _response_tag,
        custom_error_type="union_tag_not_bool",
        custom_error_message="Input should be true or false",
    ),
]


class Response(RootModel[ResponseVariant]):
    """The hall's answer on the device's response topic, matched by CorrelationData."""

    model_config = ConfigDict(strict=True, frozen=True)
    KIND: ClassVar[str] = "response"
    DISCRIMINATOR: ClassVar[str] = "ok"


def _signed_time_text(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # The signature covers the text as sent, so only the one spelling encode() writes is taken:
    # then Command.signing_bytes() equals signing_bytes() of the received fields.
    parsed = handler(value)
    if isinstance(value, str) and format_time(parsed) != value:
        raise ValueError(f"a signed time must be written as {format_time(parsed)}")
    return parsed


SignedTime = Annotated[Time, WrapValidator(_signed_time_text)]


class Command(Message):
    """An action the hall asks a device to take, signed by the hall with Ed25519."""

    KIND: ClassVar[str] = "command"
    v: Version
    device: Segment
    component: Segment
    command_id: CommandId = Field(
        description="unique per hall; the device keeps seen ids until they expire"
    )
    issued_at: SignedTime
    expires_at: SignedTime
    action: Segment = Field(description="e.g. open_bay, lock, resync")
    args: JsonObject
    # 64 signature bytes are 86 base64 characters and "==".
    sig: Annotated[str, Field(pattern=r"^[A-Za-z0-9+/]{86}==$")] = Field(
        description="base64 Ed25519 signature over the canonical signing bytes"
    )

    @model_validator(mode="after")
    def _expires_after_issue(self) -> Command:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.sig, validate=True)

    def signing_bytes(self) -> bytes:
        return signing_bytes(self.model_dump(mode="json", include=set(SIGNED_COMMAND_FIELDS)))


class HallPresence(Message):
    """The hall's own retained presence; devices hold back requests while it is offline."""

    KIND: ClassVar[str] = "hall_presence"
    v: Version
    state: Literal["online", "offline"]
    hall: Segment
    session: Session
    ts: Time


IdentityHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
BookingCode = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{4,32}$")]
ShortText = Annotated[str, Field(min_length=1, max_length=64)]
MaskedName = Annotated[str, Field(min_length=1, max_length=32)]


class ListedAppointment(Message):
    """One booking as a kiosk keeps it for offline check-in. The identity is the keyed hash
    (the same hash the kiosk computes from the card); a raw ID number has no field here."""

    booking_code: BookingCode
    identity_hash: IdentityHash
    name_masked: MaskedName
    matter_code: ShortText
    matter_name: Annotated[str, Field(min_length=1, max_length=200)]
    area: ShortText
    slot_start: Time
    slot_end: Time
    place: Annotated[str, Field(max_length=200)] | None
    status: Literal["booked", "checked_in", "no_show", "cancelled"]


class AppointmentList(Message):
    """The hall's retained list of one service day's bookings. ``revision`` is a digest of the
    list, so a kiosk can tell a changed list from a repeated one."""

    KIND: ClassVar[str] = "appointment_list"
    v: Version
    hall: Segment
    service_day: Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    revision: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    generated_at: Time
    early_s: Annotated[int, Field(ge=0, le=86_400)]
    late_s: Annotated[int, Field(ge=0, le=86_400)]
    appointments: Annotated[list[ListedAppointment], Field(max_length=5000)]


# --- functions ---------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)

# One schema file per message kind; Presence only groups Birth and Will for decoding.
SCHEMA_MODELS: Final[Mapping[str, type[BaseModel]]] = {
    "event": Event,
    "birth": Birth,
    "will": Will,
    "telemetry": Telemetry,
    "request": Request,
    "response": Response,
    "command": Command,
    "ack": Ack,
    "hall_presence": HallPresence,
    "appointment_list": AppointmentList,
}

_LEAF_MODELS: Final[Mapping[Leaf, type[BaseModel]]] = {
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


def model_for(leaf: Leaf) -> type[BaseModel]:
    """The model to decode a payload arriving on a topic with this leaf."""
    return _LEAF_MODELS[leaf]


def decode(model_cls: type[M], payload: bytes) -> M:
    """Validate a payload from the network. Raises only MessageError."""
    kind = _kind(model_cls)
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError([f"{kind}: not UTF-8 (byte {exc.start})"]) from None
    except AttributeError:
        raise MessageError([f"{kind}: payload must be bytes"]) from None
    try:
        if text.startswith("\ufeff"):  # as json.loads says it
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        document = _DECODER.decode(text)
    except _DuplicateKey as exc:
        raise MessageError([f"{kind}: duplicate key {exc.args[0]!r}"]) from None
    except RecursionError:
        raise MessageError([f"{kind}: nested too deeply"]) from None
    except ValueError as exc:
        raise MessageError([f"{kind}: not JSON ({_first_line(exc)})"]) from None
    if not isinstance(document, dict):
        raise MessageError([f"{kind}: must be a JSON object, not {_json_type(document)}"])
    version = document.get("v")
    if type(version) is int and version != SCHEMA_VERSION:
        reason = f"unsupported schema version {version} (this release reads {SCHEMA_VERSION})"
        raise MessageError([f"{kind}.v: {reason}"])
    try:
        return model_cls.model_validate_json(text)
    except ValidationError as exc:
        raise MessageError(describe_errors(model_cls, exc)) from None
    except RecursionError:
        raise MessageError([f"{kind}: nested too deeply"]) from None


def encode(model: BaseModel) -> bytes:
    """Compact UTF-8 JSON, non-ASCII text as is."""
    return model.model_dump_json(by_alias=True).encode("utf-8")


def signing_bytes(command_fields: Mapping[str, Any]) -> bytes:
    """The exact bytes a command signature covers, from a command's fields (others ignored).

    Times may be given as text as received or as aware datetimes, written as ``encode`` does.
    """
    missing = [name for name in SIGNED_COMMAND_FIELDS if name not in command_fields]
    if missing:
        raise MessageError([f"command.{name}: Field required" for name in missing])
    signed = {name: command_fields[name] for name in SIGNED_COMMAND_FIELDS}
    try:
        text = json.dumps(
            signed,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
        )
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise MessageError([f"command: cannot be signed: {_first_line(exc)}"]) from None


def check_topic(message: BaseModel, topic: ParsedTopic) -> None:
    """Raise MessageError unless the payload fits the topic it arrived on.

    The broker ACL vouches only for the topic, so the sender's claims in the payload (device,
    component, hall, event type, request kind) must agree with it.
    """
    kind = _kind(type(message))
    if not isinstance(message, model_for(topic.leaf)):
        raise MessageError([f"{kind}: does not belong on a {topic.leaf.value!r} topic"])
    inner = message.root if isinstance(message, RootModel) else message
    claims = _CLAIMS.get(type(inner))
    if claims is None:
        fields = type(inner).model_fields
        claims = _CLAIMS[type(inner)] = tuple(name for name in _CLAIM_NAMES if name in fields)
    if not claims:
        return
    expected = {
        "device": topic.device_id,
        "component": topic.component,
        "hall": topic.hall_id,
        "type": topic.name,
        "kind": topic.name,
    }
    problems = [
        f"{kind}.{name}: {getattr(inner, name)!r} does not match the topic's {expected[name]!r}"
        for name in claims
        if getattr(inner, name) != expected[name]
    ]
    if problems:
        raise MessageError(problems)


# The payload fields that claim what the topic says, in the order problems are reported, and
# which of them each model has (worked out once per model class; the classes are ours).
_CLAIM_NAMES: Final = ("device", "component", "hall", "type", "kind")
_CLAIMS: dict[type[BaseModel], tuple[str, ...]] = {}


def json_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each message kind, keyed by kind."""
    out: dict[str, dict[str, Any]] = {}
    for kind, model in SCHEMA_MODELS.items():
        schema = model.model_json_schema()
        schema["$schema"] = JSON_SCHEMA_DIALECT
        schema["$id"] = SCHEMA_ID_BASE + schema_filename(kind)
        schema["title"] = f"hallkiosk {kind} v{SCHEMA_VERSION}"
        out[kind] = schema
    return out


def schema_filename(kind: str) -> str:
    return f"{kind}.v{SCHEMA_VERSION}.json"


def render_schema_files() -> dict[str, str]:
    """File name -> exact text of each committed schema file (pretty, sorted, newline-ended)."""
    return {
        schema_filename(kind): json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False)
        + "\n"
        for kind, schema in json_schemas().items()
    }


def describe_errors(model_cls: type[BaseModel], exc: ValidationError) -> list[str]:
    """``kind.field.path: reason`` for every error pydantic found."""
    kind = _kind(model_cls)
    discriminator: str | None = getattr(model_cls, "DISCRIMINATOR", None)
    problems = []
    for err in exc.errors(include_url=False):
        loc: tuple[int | str, ...] = tuple(err["loc"])
        if discriminator is not None:
            if err["type"].startswith("union_tag_"):
                loc = (discriminator,)
            elif loc:
                loc = loc[1:]  # the variant's tag, already implied by the discriminator
        reason = _reason(err["type"], err["msg"])
        if err["type"].endswith("_type"):
            reason += f" (got {_json_type(err['input'])})"
        problems.append(f"{_format_loc((kind, *loc))}: {reason}")
    return problems


# --- helpers -----------------------------------------------------------------------------------


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Two values for one key would let the signature and the action disagree on which counts.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# json.loads with these arguments would build this decoder for every payload; it keeps no state
# between calls (like json's own default decoder, shared by every thread)
_DECODER: Final = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _kind(model_cls: type[BaseModel]) -> str:
    kind: str = getattr(model_cls, "KIND", model_cls.__name__.lower())
    return kind


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, int | float) else type(value).__name__


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _format_loc(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int) or part == "[key]":
            out += f"[{part}]" if isinstance(part, int) else part
        elif _PLAIN_NAME.fullmatch(part):
            out += ("." if out else "") + part
        else:  # a data key that would not read as a name, e.g. "" or "a.b"
            out += f"[{part!r}]"
    return out


def _reason(error_type: str, msg: str) -> str:
    if error_type == "extra_forbidden":
        return "unknown field"
    return msg.removeprefix("Value error, ")
