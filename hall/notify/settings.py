"""``[hall.notify]``: how the hall sends SMS to applicants, and how hard it retries.

``backend = "file"`` (the default and the simulator) writes each SMS as a JSON file in
``spool_dir``; ``"http_sms"`` POSTs it to an SMS gateway. Plain ``http://`` is allowed only to a
loopback address, because the request carries phone numbers and pickup passwords.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Annotated, Literal, Self

from pydantic import Field, field_validator, model_validator

from hall.notify.templates import KINDS
from hallkiosk.config import StrictModel

FilePath = Annotated[str, Field(max_length=4096)]
# Gateway codes and template ids are short ASCII tokens in every gateway we know of.
Token = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
LOOPBACK_NAMES = frozenset({"localhost"})
# 签名: 2-16 characters between full-width brackets, as carriers register them.
SIGN_NAME_RE = re.compile(r"^【[^【】\s]{2,16}】$")


class HttpSmsSettings(StrictModel):
    """``[hall.notify.http_sms]``: one JSON-over-HTTP SMS gateway (docs/hall-notify.md)."""

    url: Annotated[str, Field(max_length=2048)] = ""
    # none | bearer (Authorization: Bearer <token_file>) | basic (username + password_file).
    # Credential files are read once when the sender starts; they never sit in the config.
    auth: Literal["none", "bearer", "basic"] = "none"
    token_file: FilePath = ""
    username: Annotated[str, Field(max_length=128, pattern=r"^[^:\s]*$")] = ""
    password_file: FilePath = ""
    # Applies to connect and to each read (urllib's socket timeout), not to the whole exchange.
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # The registered 签名, e.g. "【某某政务服务中心】": sent as its own field, counted in
    # max_sms_chars.
    sign_name: str = ""
    # kind -> the gateway's approved template id; a kind not listed is sent as rendered text.
    template_ids: dict[str, Token] = Field(default_factory=dict)
    # A 2xx answer whose JSON has this field is judged by its value (some gateways answer
    # 200 for every outcome); a body without the field is judged by the HTTP status alone.
    response_code_field: Token = "code"
    ok_codes: list[Token] = Field(default_factory=lambda: ["0", "OK", "ok", "success"])
    # Codes that mean "this number cannot receive SMS": permanent, never retried. Any other
    # non-ok code is retried (it may be throttling) until max_attempts, then alarmed.
    invalid_number_codes: list[Token] = Field(default_factory=list)
    # Where the gateway's message id is in a 2xx JSON answer.
    response_id_field: Token = "message_id"
    # Off by default: an http_proxy left in a service's environment must not see the traffic.
    use_env_proxy: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value:
            return value
        parts = urllib.parse.urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be http(s)://host/...")
        if parts.username or parts.password:
            raise ValueError("url must not carry credentials; use auth and a credential file")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError(
                "plain http:// is allowed only to a loopback address; use https:// for a gateway"
            )
        return value

    @field_validator("sign_name")
    @classmethod
    def _sign(cls, value: str) -> str:
        if value and not SIGN_NAME_RE.fullmatch(value):
            raise ValueError("sign_name must look like 【某某政务服务中心】 (2-16 characters)")
        return value

    @field_validator("template_ids")
    @classmethod
    def _template_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown message kind(s) {unknown}; known: {sorted(KINDS)}")
        return value

    @model_validator(mode="after")
    def _auth_files(self) -> Self:
        if self.auth == "bearer" and not self.token_file:
            raise ValueError("auth = 'bearer' needs token_file")
        if self.auth == "basic" and not (self.username and self.password_file):
            raise ValueError("auth = 'basic' needs username and password_file")
        return self


class RetrySettings(StrictModel):
    """``[hall.notify.retry]``: exponential backoff for transient failures."""

    # Attempts in all, the first included; after the last one the message fails with an alarm.
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 8
    # Delay after the n-th failed attempt: min(initial * 2**(n-1), max), times 1 +- jitter.
    backoff_initial_s: Annotated[float, Field(ge=1, le=86_400)] = 30.0
    backoff_max_s: Annotated[float, Field(ge=1, le=7 * 86_400)] = 3600.0
    # Spreads retries so a gateway coming back is not hit by every queued message at once.
    jitter_fraction: Annotated[float, Field(ge=0, le=0.5)] = 0.2

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError(
                f"backoff_max_s ({self.backoff_max_s}) must be at least backoff_initial_s "
                f"({self.backoff_initial_s})"
            )
        return self


class NotifySettings(StrictModel):
    backend: Literal["file", "http_sms"] = "file"
    # file backend: one JSON file per SMS. A relative path is resolved by the caller (data_dir).
    spool_dir: Annotated[str, Field(min_length=1, max_length=4096)] = "notify-spool"
    http_sms: HttpSmsSettings = HttpSmsSettings()
    retry: RetrySettings = RetrySettings()
    # Whole SMS, sign name included. Carriers join long SMS up to about 500 characters.
    max_sms_chars: Annotated[int, Field(ge=70, le=1000)] = 500
    # Background loop: how often due messages are looked for (``wake()`` skips the wait).
    poll_interval_s: Annotated[float, Field(ge=0.05, le=600)] = 5.0
    # Most messages one ``run_once`` sends, so a long backlog does not starve ``stop()``.
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    # A message being sent is leased for this long; if the sender dies mid-send, the message is
    # sent again after the lease (at-least-once). Must outlast one send attempt.
    claim_lease_s: Annotated[float, Field(ge=10, le=86_400)] = 300.0

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.backend == "http_sms" and not self.http_sms.url:
            raise ValueError("backend = 'http_sms' needs http_sms.url")
        if self.claim_lease_s <= 2 * self.http_sms.timeout_s:
            raise ValueError(
                f"claim_lease_s ({self.claim_lease_s}) must exceed twice http_sms.timeout_s "
                f"({self.http_sms.timeout_s}), or a slow send would be repeated by the lease"
            )
        if len(self.sign_name) >= self.max_sms_chars:
            raise ValueError("sign_name leaves no room for the text within max_sms_chars")
        return self

    @property
    def sign_name(self) -> str:
        """The sign the gateway adds; the file backend adds none."""
        return self.http_sms.sign_name if self.backend == "http_sms" else ""

    @property
    def text_budget_chars(self) -> int:
        """Characters left for the text once the sign name is counted: pass to ``enqueue``."""
        return self.max_sms_chars - len(self.sign_name)


def _is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
