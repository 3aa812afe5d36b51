"""The five SMS kinds: parameters are checked by name and value, every returned item is listed,
and a message too long to send is refused with a clear error, never cut."""

from __future__ import annotations

import pytest

from hall.notify import MessageTooLong, TemplateError, render
from hall.notify.templates import (
    TEMPLATES,
    check_length,
    gateway_params,
    placeholders,
    validate_params,
)

PICKUP = {"case_no": "ZJ2026-0042", "location": "A区03号柜", "deadline": "2026-06-30"}


def test_every_template_uses_exactly_its_declared_parameters() -> None:
    assert set(TEMPLATES) == {
        "pickup_password",
        "prereview_accepted",
        "prereview_returned",
        "overdue_reminder",
        "booking_reminder",
    }
    for template in TEMPLATES.values():
        assert placeholders(template.zh) == set(template.names), template.kind
        assert template.en is not None
        assert placeholders(template.en) == set(template.names), template.kind


def test_pickup_password_renders_the_final_text() -> None:
    text = render("pickup_password", {**PICKUP, "password": "482913"})
    assert text == (
        "您的办件ZJ2026-0042的证照已存入A区03号柜，取件密码482913，"
        "请于2026-06-30前凭身份证和取件密码自助取件。密码请勿告知他人。"
    )


def test_returned_prereview_lists_every_item_at_once() -> None:
    items = ["身份证复印件（正反面）", "户口簿原件照片", "房屋租赁合同第3页签字"]
    text = render(
        "prereview_returned", {"receipt_no": "YS-0007", "matter": "居住证办理", "items": items}
    )
    assert "1.身份证复印件（正反面）；2.户口簿原件照片；3.房屋租赁合同第3页签字。" in text
    en = render(
        "prereview_returned",
        {"receipt_no": "YS-0007", "matter": "Residence permit", "items": ["ID copy", "Photo"]},
        lang="en",
    )
    assert "Please provide all of: 1.ID copy; 2.Photo. Then submit again." in en
    assert gateway_params(
        "prereview_returned", {"receipt_no": "YS-0007", "matter": "居住证办理", "items": items}
    )["items"] == ("1.身份证复印件（正反面）；2.户口簿原件照片；3.房屋租赁合同第3页签字")


def test_too_long_is_refused_with_the_length_and_the_limit() -> None:
    items = [f"第{i}项材料需要补正的详细说明" for i in range(1, 41)]
    params = {"receipt_no": "YS-0007", "matter": "居住证办理", "items": items}
    full = len(render("prereview_returned", params))
    with pytest.raises(MessageTooLong) as caught:
        render("prereview_returned", params, max_chars=full - 1)
    assert caught.value.length == full
    assert caught.value.limit == full - 1
    assert f"is {full} characters, over the limit of {full - 1}" in str(caught.value)
    assert render("prereview_returned", params, max_chars=full).endswith("请一次补齐后重新提交。")


def test_length_check_before_the_password_exists_counts_six_digits() -> None:
    real = len(render("pickup_password", {**PICKUP, "password": "123456"}))
    assert check_length("pickup_password", PICKUP, max_chars=real) == real
    with pytest.raises(MessageTooLong):
        check_length("pickup_password", PICKUP, max_chars=real - 1)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"case_no": "X1", "location": "A1"}, "missing ['deadline']"),
        ({**PICKUP, "colour": "red"}, "unknown ['colour']"),
        ({**PICKUP, "case_no": "  "}, "case_no: must not be empty"),
        ({**PICKUP, "case_no": "A\nB"}, "control character"),
        ({**PICKUP, "location": "【假冒】柜"}, "must not contain 【"),
        ({**PICKUP, "case_no": "x" * 65}, "65 characters, at most 64"),
        ({**PICKUP, "deadline": 20260630}, "must be a string, got int"),
    ],
)
def test_bad_parameters_are_named(params: dict[str, object], needle: str) -> None:
    with pytest.raises(TemplateError) as caught:
        validate_params("overdue_reminder", params, with_secret=False)
    assert needle in str(caught.value)


def test_the_password_is_never_a_queued_parameter_and_never_quoted() -> None:
    with pytest.raises(TemplateError, match="sealed_secret"):
        validate_params("pickup_password", {**PICKUP, "password": "482913"}, with_secret=False)
    for bad in ("48291", "4829130", "48291a", "４８２９１３"):
        with pytest.raises(TemplateError) as caught:
            render("pickup_password", {**PICKUP, "password": bad})
        assert bad not in str(caught.value)
        assert "must be 6 digits" in str(caught.value)


def test_items_must_be_a_non_empty_list() -> None:
    base = {"receipt_no": "YS-1", "matter": "m"}
    with pytest.raises(TemplateError, match="list of strings"):
        render("prereview_returned", {**base, "items": "身份证"})
    with pytest.raises(TemplateError, match="1 to 50 items, got 0"):
        render("prereview_returned", {**base, "items": []})
    with pytest.raises(TemplateError, match=r"items\[1\]: must not be empty"):
        render("prereview_returned", {**base, "items": ["a", ""]})


def test_unknown_kind() -> None:
    with pytest.raises(TemplateError, match="unknown message kind 'fax'"):
        render("fax", {})


def test_values_are_inserted_literally() -> None:
    text = render("prereview_accepted", {"receipt_no": "{matter}", "matter": "{0}{x}"})
    assert "“{0}{x}”" in text and "编号{matter}" in text
