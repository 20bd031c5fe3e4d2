"""How sensitive values look to staff who may not see them."""

from __future__ import annotations

import pytest

from hcrm.masking import mask_for_audit, mask_national_id, mask_phone, mask_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("11010519491231002X", "110105********002X"), ("1234567890", "**********"), ("", "")],
)
def test_national_id_keeps_the_region_and_the_last_four(value, expected):
    assert mask_national_id(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("建国路88号", "建*****"), ("北京", "北***"), ("北京中医药大学附属东直门医院", "北********"), ("", "")],
)
def test_text_keeps_the_first_character(value, expected):
    assert mask_text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("+8613812345678", "+86138****5678"), ("1234567", "*******"), ("", "")]
)
def test_phone_keeps_prefix_and_last_four(value, expected):
    assert mask_phone(value) == expected


@pytest.mark.parametrize(("value", "expected"), [("建国路88号", "[masked]"), ("", ""), ("None", "None")])
def test_audit_diff_records_a_change_not_the_value(value, expected):
    assert mask_for_audit(value) == expected
