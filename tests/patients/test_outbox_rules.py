"""Pure parts of the outbox: quiet hours across midnight, the next day's start, template variables."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from patients.selectors.messages import (
    next_day_start,
    quiet_hours_end,
    template_errors,
    template_render,
    template_variables,
)

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NIGHT = (dt.time(21, 0), dt.time(8, 0))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("when", "until"),
    [
        (at(25, 20, 59), None),
        (at(25, 21, 0), at(26, 8, 0)),  # evening: to the next morning
        (at(25, 23, 59), at(26, 8, 0)),
        (at(26, 0, 0), at(26, 8, 0)),  # after midnight: to this morning
        (at(26, 7, 59), at(26, 8, 0)),
        (at(26, 8, 0), None),
    ],
)
def test_quiet_hours_across_midnight(when, until):
    assert quiet_hours_end(when, *NIGHT) == until


def test_quiet_hours_within_one_day():
    lunch = (dt.time(12, 0), dt.time(13, 30))

    assert quiet_hours_end(at(25, 12, 15), *lunch) == at(25, 13, 30)
    assert quiet_hours_end(at(25, 13, 30), *lunch) is None
    assert quiet_hours_end(at(25, 11, 59), *lunch) is None


def test_equal_start_and_end_mean_no_quiet_hours():
    assert quiet_hours_end(at(25, 3, 0), dt.time(8, 0), dt.time(8, 0)) is None


def test_quiet_hours_are_local_time_whatever_zone_the_caller_uses():
    in_utc = at(25, 22, 30).astimezone(dt.UTC)  # 14:30 UTC

    assert quiet_hours_end(in_utc, *NIGHT) == at(26, 8, 0)


def test_the_daily_cap_moves_to_the_next_mornings_first_minute():
    assert next_day_start(at(25, 10, 0), dt.time(8, 0)) == at(26, 8, 0)
    assert next_day_start(at(25, 23, 50), dt.time(8, 0)) == at(26, 8, 0)


def test_template_variables_in_order_without_repeats():
    assert template_variables("{a}，{b}。{a}") == ["a", "b"]
    assert template_variables("没有变量") == []


@pytest.mark.parametrize(
    ("text", "errors"),
    [
        ("{patient_name}您好", []),
        ("{dose}", ["Unknown variable {dose}."]),
        ("{patient_name.upper}", ["“{patient_name.upper}” is not a variable name."]),
        ("{patient_name:>10}", ["“{patient_name}” is not a variable name."]),
        ("{0}", ["“{0}” is not a variable name."]),
        ("{}", ["“{}” is not a variable name."]),
    ],
)
def test_template_errors(text, errors):
    assert template_errors(text) == errors


def test_literal_braces_are_written_doubled():
    assert template_errors("{{not a variable}}") == []
    assert template_render("{{code}} {code}", {"code": "123"}) == "{code} 123"


def test_a_missing_value_renders_empty_not_as_the_placeholder():
    assert template_render("{patient_name}：{content}", {"patient_name": "张三"}) == "张三："
