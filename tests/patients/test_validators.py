"""Chinese identity data: national ID numbers (GB 11643), phones, dates."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from patients.validators import (
    format_phone,
    national_id_birth_date,
    national_id_check_digit,
    national_id_sex,
    normalize_mobile,
    normalize_national_id,
    normalize_phone,
    phone_search_key,
    validate_national_id,
    validate_national_id_matches,
    validate_not_future,
)
from tests.factories import national_id

# The worked example of GB 11643: a woman born on 31 December 1949 in Beijing.
EXAMPLE_ID = "11010519491231002X"


def _code(call, *args, **kwargs) -> str:
    with pytest.raises(ValidationError) as error:
        call(*args, **kwargs)
    return error.value.code


@pytest.mark.parametrize(
    ("first17", "check"),
    [("11010519491231002", "X"), ("44030419900101001", "1"), ("11010519900307123", "9")],
)
def test_check_digit(first17, check):
    assert national_id_check_digit(first17) == check


def test_valid_id_yields_birth_date_and_sex():
    validate_national_id(EXAMPLE_ID)

    assert national_id_birth_date(EXAMPLE_ID) == dt.date(1949, 12, 31)
    assert national_id_sex(EXAMPLE_ID) == "female"
    assert national_id_sex(national_id("110105", dt.date(1980, 5, 6), 13)) == "male"


def test_lower_case_x_and_spaces_are_normalised():
    assert normalize_national_id(" 110105 19491231002x ") == EXAMPLE_ID


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("1101051949123100", "format"),
        ("11010519491231002x", "format"),
        ("1101051949123100XX", "format"),
        ("110105194912310021", "check_digit"),
    ],
)
def test_invalid_ids_say_why(value, code):
    assert _code(validate_national_id, value) == code


@pytest.mark.parametrize("first17", ["11010520000230001", "11010518700101001", "11010519901301001"])
def test_impossible_birth_date_inside_the_id(first17):
    # given a correct check digit around 30 February, 1870 and month 13
    value = first17 + national_id_check_digit(first17)

    assert _code(validate_national_id, value) == "birth_date"


def test_future_birth_date_inside_the_id():
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    assert _code(validate_national_id, national_id("110105", tomorrow, 1)) == "birth_date"


def test_birth_date_and_sex_must_agree_with_the_id():
    errors = validate_national_id_matches(EXAMPLE_ID, birth_date=dt.date(1949, 12, 30), sex="male")

    assert sorted(errors) == ["birth_date", "sex"]
    assert errors["birth_date"].code == "mismatch"
    assert errors["sex"].messages == ["The sex does not match the national ID number."]


def test_matching_or_unstated_details_pass():
    assert validate_national_id_matches(EXAMPLE_ID, birth_date=dt.date(1949, 12, 31), sex="female") == {}
    assert validate_national_id_matches(EXAMPLE_ID, birth_date=None, sex="unknown") == {}
    assert validate_national_id_matches(EXAMPLE_ID, birth_date=None, sex="other") == {}


@pytest.mark.parametrize(
    "typed",
    ["13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678", "008613812345678"],
)
def test_mobile_is_normalised_to_e164(typed):
    assert normalize_mobile(typed) == "+8613812345678"


@pytest.mark.parametrize(
    ("typed", "code"),
    [("12345", "phone"), ("not a number", "phone"), ("010-65123456", "mobile"), ("+1 650 253 0000", "mobile")],
)
def test_invalid_mobiles_say_why(typed, code):
    assert _code(normalize_mobile, typed) == code


def test_other_phone_accepts_landlines_and_foreign_numbers():
    assert normalize_phone("(010) 6512-3456") == "+861065123456"
    assert normalize_phone("+1 650 253 0000") == "+16502530000"
    assert _code(normalize_phone, "010-1") == "phone"


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("+86 (138) 1234-5678", "+8613812345678"),
        ("010 6512 3456", "+861065123456"),
        ("zhangsan", None),
        ("12345", None),
        ("1999999999999", None),
        ("", None),
    ],
)
def test_phone_search_key(typed, key):
    assert phone_search_key(typed) == key


def test_format_phone_for_reading():
    assert format_phone("+8613812345678") == "138 1234 5678"
    assert format_phone("+861065123456") == "010 6512 3456"
    assert format_phone("+16502530000") == "+1 650-253-0000"
    assert format_phone("") == ""


def test_today_is_not_in_the_future():
    validate_not_future(timezone.localdate())
    validate_not_future(timezone.now())


def test_tomorrow_is_in_the_future():
    assert _code(validate_not_future, timezone.localdate() + dt.timedelta(days=1)) == "future"


def test_future_is_judged_in_the_hospital_time_zone():
    # given half past midnight tomorrow in Shanghai, written in UTC (still "today" there)
    local_tomorrow = timezone.localtime() + dt.timedelta(days=1)
    moment = local_tomorrow.replace(hour=0, minute=30, second=0, microsecond=0).astimezone(dt.UTC)

    # then
    assert moment.date() == timezone.localdate()
    assert _code(validate_not_future, moment) == "future"


def test_a_normalised_number_is_taken_as_it_is_without_parsing_again(monkeypatch):
    import phonenumbers

    from patients import validators

    first = normalize_mobile("139 1234 0017")
    parses = []
    monkeypatch.setattr(phonenumbers, "parse", lambda *args, **kwargs: parses.append(args))

    assert (first, normalize_mobile(first), normalize_phone(first)) == ("+8613912340017", first, first)
    assert parses == []
    assert validators._parsed_phone(first) == ("+8613912340017", True)


def test_plain_chinese_mobile_numbers_get_the_full_parsers_answer():
    from patients.validators import _parsed_phone, _phone_parse

    rng = random.Random(11643)
    # every prefix of four digits from 1000 to 1999, with suffixes of all zeros, all nines and random ones
    numbers = [
        f"{prefix}{suffix}"
        for prefix in range(1000, 2000)
        for suffix in ("0000000", "9999999", f"{rng.randrange(10**7):07d}", f"{rng.randrange(10**7):07d}")
    ]
    differing = [number for number in numbers if _parsed_phone(number) != _phone_parse(number)]

    assert differing == []
    assert _parsed_phone("13812345678") == ("+8613812345678", True)
    assert _parsed_phone("17951234567") == _phone_parse("17951234567")
    assert _parsed_phone("12012345678") is None
    assert [_parsed_phone(f"+86{number}") for number in numbers[::97]] == [
        _phone_parse(f"+86{number}") for number in numbers[::97]
    ]


@pytest.mark.parametrize("days", [-400, -3, -2, -1, 0, 1, 2])
def test_dates_around_today_are_judged_as_before_in_every_time_zone(days):
    for zone in ("Pacific/Kiritimati", "Asia/Shanghai", "UTC", "Etc/GMT+12"):
        with timezone.override(zone):
            day = timezone.localdate() + dt.timedelta(days=days)
            moment = timezone.now() + dt.timedelta(days=days, minutes=-1 if days <= 0 else 1)
            expected = "future" if days > 0 else ""
            assert _outcome(day) == expected, (zone, day)
            assert _outcome(moment) == expected, (zone, moment)


def _outcome(value) -> str:
    try:
        validate_not_future(value)
    except ValidationError as error:
        return error.code
    return ""
