"""The HTTP SMS backend: one JSON POST per message to a gateway, with urllib (no dependency).

Request (``Content-Type: application/json; charset=utf-8``)::

    {"phone": "13812345678", "sign_name": "【某某政务服务中心】", "kind": "booking_reminder",
     "lang": "zh", "out_id": "<our unique reference>", "text": "<rendered SMS>"}

or, for a kind listed in ``template_ids``, ``"template_id"`` and ``"params"`` instead of
``"text"``. ``out_id`` is the same on every attempt of one message, so a gateway that
deduplicates on it turns our at-least-once into exactly-once.

Answers: 2xx is delivered, unless the JSON body has ``response_code_field`` with a value not in
``ok_codes`` (an ``invalid_number_codes`` value is permanent, any other is retried); 408, 429
and 5xx, timeouts and connection errors are transient; every other status (other 4xx, and 3xx:
redirects are not followed, so credentials never go to another host) is permanent.

Error texts carry the status and a sanitised gateway code only, never the response body: a
gateway may echo the request, and the request holds the password.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from email.message import Message
from pathlib import Path
from typing import Any, Final

from hall.notify.errors import NotifyConfigError, PermanentSendError, TransientSendError
from hall.notify.message import OutgoingMessage
from hall.notify.senders import NotificationSender
from hall.notify.settings import HttpSmsSettings

MAX_RESPONSE_BYTES: Final = 64 * 1024
_TOKEN_RE: Final = re.compile(r"[^A-Za-z0-9_.:-]")
USER_AGENT: Final = "hallkiosk-notify/1"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(  # noqa: PLR0917 - urllib's signature
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Message,
        newurl: str,
    ) -> urllib.request.Request | None:
        return None  # urllib then raises HTTPError with the 3xx status


class HttpSmsSender(NotificationSender):
    """Reads its credential file once, here: a missing or empty file fails at start-up."""

    def __init__(self, settings: HttpSmsSettings, *, base_dir: Path | str | None = None) -> None:
        if not settings.url:
            raise NotifyConfigError("http_sms.url is not set")
        self._settings = settings
        self._auth_header = _auth_header(settings, Path(base_dir) if base_dir else None)
        handlers: list[urllib.request.BaseHandler] = [
            _NoRedirect(),
            urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        ]
        if not settings.use_env_proxy:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"HttpSmsSender(url={self._settings.url!r}, auth={self._settings.auth!r})"

    def send(self, msg: OutgoingMessage) -> str:
        s = self._settings
        body: dict[str, Any] = {
            "phone": msg.phone,
            "sign_name": s.sign_name,
            "kind": msg.kind,
            "lang": msg.lang,
            "out_id": msg.out_id,
        }
        if msg.template_id is not None:
            body["template_id"] = msg.template_id
            body["params"] = msg.template_params
        else:
            body["text"] = msg.text
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if self._auth_header:
            headers["Authorization"] = self._auth_header
        request = urllib.request.Request(  # noqa: S310 - the url is checked to be http(s)
            s.url,
            data=json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers=headers,
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=s.timeout_s) as response:
                status = int(response.status)
                raw = response.read(MAX_RESPONSE_BYTES)
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:
                raw = exc.read(MAX_RESPONSE_BYTES)
            except (OSError, http.client.HTTPException):
                raw = b""
            finally:
                exc.close()
            raise self._http_failure(status, raw) from None
        except urllib.error.URLError as exc:
            raise TransientSendError(_network_reason(exc.reason, s.timeout_s)) from None
        except (OSError, http.client.HTTPException) as exc:
            # timeouts and resets while reading the answer arrive unwrapped
            raise TransientSendError(_network_reason(exc, s.timeout_s)) from None
        if not 200 <= status < 300:
            raise self._http_failure(status, raw)
        return self._accept(msg, raw)

    def _accept(self, msg: OutgoingMessage, raw: bytes) -> str:
        s = self._settings
        answer = _json_object(raw)
        if answer is not None and s.response_code_field in answer:
            code = _token(answer[s.response_code_field])
            if code not in s.ok_codes:
                if code in s.invalid_number_codes:
                    raise PermanentSendError(f"gateway code {code} (invalid number)")
                raise TransientSendError(f"gateway code {code}")
        provider_id = answer.get(s.response_id_field) if answer is not None else None
        if isinstance(provider_id, str | int) and not isinstance(provider_id, bool):
            value = _token(provider_id)
            if value:
                return value
        # delivered, but the gateway names no id: our own reference identifies it
        return f"out:{msg.out_id}"

    def _http_failure(self, status: int, raw: bytes) -> TransientSendError | PermanentSendError:
        answer = _json_object(raw)
        field = self._settings.response_code_field
        code = _token(answer[field]) if answer is not None and field in answer else ""
        detail = f"HTTP {status}" + (f", gateway code {code}" if code else "")
        if status in (408, 429) or status >= 500:
            return TransientSendError(detail)
        if code and code in self._settings.invalid_number_codes:
            detail += " (invalid number)"
        return PermanentSendError(detail)


def _auth_header(settings: HttpSmsSettings, base_dir: Path | None) -> str:
    if settings.auth == "bearer":
        return "Bearer " + _read_secret(settings.token_file, "token_file", base_dir)
    if settings.auth == "basic":
        password = _read_secret(settings.password_file, "password_file", base_dir)
        pair = f"{settings.username}:{password}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return ""


def _read_secret(name: str, key: str, base_dir: Path | None) -> str:
    path = Path(name)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise NotifyConfigError(f"http_sms.{key} {path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise NotifyConfigError(f"http_sms.{key} {path}: not UTF-8 text") from None
    if not value or any(c in value for c in "\r\n"):
        raise NotifyConfigError(f"http_sms.{key} {path}: must hold one non-empty line")
    return value


def _network_reason(reason: object, timeout_s: float) -> str:
    if isinstance(reason, TimeoutError | socket.timeout):
        return f"no answer within {timeout_s} s"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ConnectionResetError | http.client.RemoteDisconnected):
        return "connection closed by the gateway"
    if isinstance(reason, ssl.SSLError):
        return f"TLS failure ({type(reason).__name__})"
    if isinstance(reason, socket.gaierror):
        return "gateway host name not resolved"
    if isinstance(reason, OSError) and reason.strerror:
        return f"network error: {reason.strerror}"
    return f"network error: {type(reason).__name__}"


def _json_object(raw: bytes) -> Mapping[str, Any] | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _token(value: object) -> str:
    """A gateway code or id, made safe to log and store: short, plain characters only."""
    return _TOKEN_RE.sub("?", str(value))[:64]
