"""``[hall.notify]`` settings: defaults, range checks and the cross-field rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hall.notify import NotifySettings


def test_defaults() -> None:
    s = NotifySettings()
    assert s.backend == "file"
    assert s.retry.max_attempts == 8
    assert s.retry.backoff_initial_s == 30.0
    assert s.retry.backoff_max_s == 3600.0
    assert s.sign_name == ""
    assert s.text_budget_chars == s.max_sms_chars == 500


def test_sign_name_counts_against_the_length_only_on_the_gateway() -> None:
    s = NotifySettings.model_validate(
        {
            "backend": "http_sms",
            "http_sms": {
                "url": "https://sms.example.gov.cn/send",
                "sign_name": "【某某政务服务中心】",
            },
        }
    )
    assert s.sign_name == "【某某政务服务中心】"
    assert s.text_budget_chars == 500 - 10


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"retry": {"max_attempts": 0}}, "greater than or equal to 1"),
        ({"retry": {"max_attempts": 21}}, "less than or equal to 20"),
        ({"retry": {"jitter_fraction": 0.6}}, "less than or equal to 0.5"),
        ({"retry": {"backoff_initial_s": 600.0, "backoff_max_s": 60.0}}, "at least"),
        ({"max_sms_chars": 69}, "greater than or equal to 70"),
        ({"poll_interval_s": 0.0}, "greater than or equal to 0.05"),
        ({"backend": "carrier_pigeon"}, "'file' or 'http_sms'"),
        ({"backend": "http_sms"}, "needs http_sms.url"),
        ({"spool": "x"}, "Extra inputs are not permitted"),
        ({"http_sms": {"url": "http://sms.example.gov.cn/send"}}, "only to a loopback"),
        ({"http_sms": {"url": "ftp://127.0.0.1/"}}, "http(s)://"),
        ({"http_sms": {"url": "https://u:p@sms.example/"}}, "must not carry credentials"),
        ({"http_sms": {"sign_name": "某某中心"}}, "sign_name must look like"),
        ({"http_sms": {"template_ids": {"fax": "T1"}}}, "unknown message kind"),
        ({"http_sms": {"template_ids": {"booking_reminder": "a b"}}}, "pattern"),
        ({"http_sms": {"auth": "bearer"}}, "needs token_file"),
        ({"http_sms": {"auth": "basic", "username": "u"}}, "needs username and password_file"),
        ({"http_sms": {"timeout_s": 0}}, "greater than 0"),
        ({"claim_lease_s": 10.0, "http_sms": {"timeout_s": 5.0}}, "must exceed twice"),
        ({"retry": {"max_attempts": "8"}}, "valid integer"),
    ],
)
def test_invalid_values_are_refused(data: dict[str, Any], needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        NotifySettings.model_validate(data)
    assert needle in str(caught.value)


def test_plain_http_to_loopback_is_allowed() -> None:
    for url in ("http://127.0.0.1:8080/sms", "http://localhost/sms", "http://[::1]:9/x"):
        s = NotifySettings.model_validate({"backend": "http_sms", "http_sms": {"url": url}})
        assert s.http_sms.url == url
