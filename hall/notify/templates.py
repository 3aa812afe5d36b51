"""The five SMS kinds as data: named, validated parameters and the zh (and en) text.

The hall fills the parameters; ``render`` checks them and produces the final SMS text. The
pickup password is the only secret: it is never a queued parameter, it is added at send time
(``PASSWORD_PARAM``) from the sealed form, and no error here ever quotes a parameter's value.

A returned pre-review lists every missing or faulty item in one message (一次性告知): ``items`` is
a list and all of it is rendered; a message that would get too long is refused, never cut.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

from hall.notify.errors import MessageTooLong, TemplateError

PASSWORD_PARAM: Final = "password"  # noqa: S105 - a parameter name
PASSWORD_DIGITS: Final = 6
# Stands in for the password when the length is checked before the real one is unsealed.
PASSWORD_PLACEHOLDER: Final = "0" * PASSWORD_DIGITS
MAX_ITEMS: Final = 50
# Full-width brackets frame the carrier sign (签名); in a parameter they could fake one.
_FORBIDDEN = frozenset("【】")

ParamKind = Literal["text", "items", "password"]
Lang = Literal["zh", "en"]
ParamValue = str | Sequence[str]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    kind: ParamKind = "text"
    max_chars: int = 64  # per value; per item for "items"


@dataclass(frozen=True, slots=True)
class Template:
    kind: str
    params: tuple[Param, ...]
    zh: str
    en: str | None = None

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.name for p in self.params)

    @property
    def needs_secret(self) -> bool:
        return any(p.kind == "password" for p in self.params)

    def text(self, lang: Lang) -> str:
        return self.en if lang == "en" and self.en is not None else self.zh


def _t(kind: str, params: tuple[Param, ...], zh: str, en: str | None) -> tuple[str, Template]:
    return kind, Template(kind, params, zh, en)


TEMPLATES: Final[Mapping[str, Template]] = MappingProxyType(
    dict(
        [
            _t(
                "pickup_password",
                (
                    Param("case_no"),
                    Param("location"),
                    Param("deadline", max_chars=32),
                    Param(PASSWORD_PARAM, "password"),
                ),
                "您的办件{case_no}的证照已存入{location}，取件密码{password}，"
                "请于{deadline}前凭身份证和取件密码自助取件。密码请勿告知他人。",
                "Your certificate for case {case_no} is in {location}. Pickup password "
                "{password}. Collect it with your ID card before {deadline}. "
                "Do not share the password.",
            ),
            _t(
                "prereview_accepted",
                (Param("receipt_no"), Param("matter", max_chars=80)),
                "您提交的“{matter}”网上预审（编号{receipt_no}）已通过，请携带材料原件到大厅办理。",
                'Your online pre-review for "{matter}" (no. {receipt_no}) is accepted. '
                "Please bring the original documents to the hall.",
            ),
            _t(
                "prereview_returned",
                (
                    Param("receipt_no"),
                    Param("matter", max_chars=80),
                    Param("items", "items", max_chars=100),
                ),
                "您提交的“{matter}”网上预审（编号{receipt_no}）未通过，需补正以下全部材料："
                "{items}。请一次补齐后重新提交。",
                'Your online pre-review for "{matter}" (no. {receipt_no}) was returned. '
                "Please provide all of: {items}. Then submit again.",
            ),
            _t(
                "overdue_reminder",
                (Param("case_no"), Param("location"), Param("deadline", max_chars=32)),
                "您的办件{case_no}的证照存于{location}，已超过取件期限{deadline}，"
                "请尽快到大厅领取或联系工作人员。",
                "Your certificate for case {case_no} in {location} was due for pickup by "
                "{deadline}. Please collect it soon or contact the hall staff.",
            ),
            _t(
                "booking_reminder",
                (
                    Param("booking_code"),
                    Param("matter", max_chars=80),
                    Param("slot", max_chars=32),
                    Param("place", max_chars=80),
                ),
                "您已预约“{matter}”，预约号{booking_code}，时间{slot}，地点{place}。"
                "超过预约时间1小时未到场视为主动放弃。",
                'You booked "{matter}", code {booking_code}, at {slot}, {place}. '
                "A booking more than 1 hour late is given up.",
            ),
        ]
    )
)
KINDS: Final = frozenset(TEMPLATES)


def template_for(kind: str) -> Template:
    try:
        return TEMPLATES[kind]
    except KeyError:
        raise TemplateError(f"unknown message kind {kind!r}; known: {sorted(KINDS)}") from None


def validate_params(
    kind: str, params: Mapping[str, object], *, with_secret: bool
) -> dict[str, str | list[str]]:
    """Check names and values; return a clean copy (values stripped, lists as lists).

    ``with_secret=False`` is the queue's view: the password must be absent (it travels sealed).
    ``with_secret=True`` is the send-time view: the password must be present and 6 digits.
    """
    template = template_for(kind)
    expected = set(template.names)
    if not with_secret:
        if PASSWORD_PARAM in params:
            raise TemplateError(
                f"{kind}: the password must not be a parameter; pass it as sealed_secret"
            )
        expected.discard(PASSWORD_PARAM)
    missing = sorted(expected - set(params))
    unknown = sorted(set(params) - expected)
    if missing or unknown:
        parts = [f"missing {missing}"] if missing else []
        parts += [f"unknown {unknown}"] if unknown else []
        raise TemplateError(f"{kind}: parameters: {'; '.join(parts)}")
    clean: dict[str, str | list[str]] = {}
    for spec in template.params:
        if spec.name not in expected:
            continue
        value = params[spec.name]
        where = f"{kind}.{spec.name}"
        if spec.kind == "password":
            if not _is_password(value):
                raise TemplateError(f"{where}: must be {PASSWORD_DIGITS} digits")
            assert isinstance(value, str)
            clean[spec.name] = value
        elif spec.kind == "items":
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise TemplateError(f"{where}: must be a list of strings")
            if not 1 <= len(value) <= MAX_ITEMS:
                raise TemplateError(f"{where}: must list 1 to {MAX_ITEMS} items, got {len(value)}")
            clean[spec.name] = [
                _text(item, f"{where}[{i}]", spec.max_chars) for i, item in enumerate(value)
            ]
        else:
            clean[spec.name] = _text(value, where, spec.max_chars)
    return clean


def render(
    kind: str,
    params: Mapping[str, object],
    *,
    lang: Lang = "zh",
    max_chars: int | None = None,
) -> str:
    """The final SMS text (sign name not included). ``params`` must hold the password for a
    kind that has one. Raises ``TemplateError`` or ``MessageTooLong``, never quoting a value."""
    template = template_for(kind)
    clean = validate_params(kind, params, with_secret=True)
    values = {
        name: format_items(value, lang) if isinstance(value, list) else value
        for name, value in clean.items()
    }
    # format() only parses our constant template; parameter values are inserted literally.
    text = template.text(lang).format(**values)
    if max_chars is not None and len(text) > max_chars:
        raise MessageTooLong(len(text), max_chars, kind)
    return text


def check_length(
    kind: str, params: Mapping[str, object], *, lang: Lang = "zh", max_chars: int
) -> int:
    """Length of the rendered text with a placeholder for the (fixed-length) password, so a
    message that could never be sent is refused when it is queued. Returns the length."""
    full = dict(params)
    if template_for(kind).needs_secret:
        full[PASSWORD_PARAM] = PASSWORD_PLACEHOLDER
    return len(render(kind, full, lang=lang, max_chars=max_chars))


def gateway_params(kind: str, params: Mapping[str, object], *, lang: Lang = "zh") -> dict[str, str]:
    """Parameters for a gateway that renders its own approved template: lists joined."""
    clean = validate_params(kind, params, with_secret=True)
    return {k: format_items(v, lang) if isinstance(v, list) else v for k, v in clean.items()}


def format_items(items: Sequence[str], lang: Lang = "zh") -> str:
    """``1.身份证复印件；2.户口簿原件``: numbered so the applicant can tick them off."""
    sep = "；" if lang == "zh" else "; "
    return sep.join(f"{i}.{item}" for i, item in enumerate(items, start=1))


def placeholders(template_text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template_text) if name}


def _is_password(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == PASSWORD_DIGITS
        and value.isascii()
        and value.isdigit()
    )


def _text(value: object, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise TemplateError(f"{where}: must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise TemplateError(f"{where}: must not be empty")
    if len(text) > max_chars:
        raise TemplateError(f"{where}: {len(text)} characters, at most {max_chars}")
    # control and format characters (newlines, bidi overrides) have no place in one SMS line
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
        raise TemplateError(f"{where}: contains a control character")
    if any(c in _FORBIDDEN for c in text):
        raise TemplateError(f"{where}: must not contain 【 or 】 (they frame the sign name)")
    return text
