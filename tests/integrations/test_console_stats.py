"""Per-source statistics of the integration overview: exact numbers for a fixed set of messages."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from integrations.selectors import WINDOW_HOURS, inbound_overview, senders_without_profile
from tests.integrations.console_fixtures import inbound, source

pytestmark = pytest.mark.django_db

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2025, 3, 1, 10, 20, tzinfo=SHANGHAI)


def at(hours_ago: float, minutes: int = 0) -> dt.datetime:
    return NOW - dt.timedelta(hours=hours_ago, minutes=minutes)


@pytest.fixture
def fixture_set():
    """HIS: 3 applied, 1 failed, 1 duplicate in the window, 2 applied outside it; LIS: 1 rejected; a stray sender."""
    his = source("HIS", "ZYY", name="HIS 中医院")
    lis = source("LIS", "ZYY", name="LIS")
    idle = source("PACS", "ZYY", name="PACS")
    for minutes in (5, 10):
        inbound(profile=his, received_at=at(0, minutes))  # 10:15, 10:10 → the current hour
    inbound(profile=his, received_at=at(2))  # 08:20
    inbound(profile=his, status="failed", received_at=at(2, 10))  # 08:10
    inbound(profile=his, status="duplicate", received_at=at(23, 15))  # 11:05 the day before: first hour of the window
    inbound(profile=his, received_at=at(24, 30))  # 09:50 the day before: outside
    inbound(profile=his, received_at=at(48))  # outside
    inbound(profile=lis, status="rejected", received_at=at(5))  # 05:20
    inbound(sender="OLDHIS^BRANCH", status="failed", received_at=at(1))  # 09:20
    inbound(sender="OLDHIS^BRANCH", received_at=at(1, 5))  # 09:15
    inbound(sender="OLDHIS^BRANCH", status="received", received_at=at(0, 1))  # 10:19
    inbound(sender="FUTURE^X", received_at=NOW + dt.timedelta(minutes=5))  # clock skew: not counted
    return his, lis, idle


def test_the_overview_counts_each_source_per_hour_and_status_over_the_last_24_hours(fixture_set):
    his, lis, idle = fixture_set

    overview = inbound_overview(now=NOW)

    assert overview.hours[0] == dt.datetime(2025, 2, 28, 11, tzinfo=SHANGHAI)
    assert overview.hours[-1] == dt.datetime(2025, 3, 1, 10, tzinfo=SHANGHAI)
    rows = {stats.sender: stats for stats in overview.sources}
    assert list(rows) == ["HIS^ZYY", "LIS^ZYY", "PACS^ZYY", "OLDHIS^BRANCH"]

    hospital = rows["HIS^ZYY"]
    assert hospital.profile == his
    assert (hospital.received, hospital.applied, hospital.failed, hospital.rejected, hospital.duplicates) == (
        5, 3, 1, 0, 1,
    )  # fmt: skip
    expected = [0] * WINDOW_HOURS
    expected[0], expected[21], expected[23] = 1, 2, 2
    assert hospital.hourly == expected
    # The last message of a profile is its newest of all time, inside the window or not.
    assert hospital.last_received_at == at(0, 5)

    laboratory = rows["LIS^ZYY"]
    assert (laboratory.received, laboratory.rejected, laboratory.hourly[18]) == (1, 1, 1)

    assert rows["PACS^ZYY"].received == 0
    assert rows["PACS^ZYY"].last_received_at is None

    stray = rows["OLDHIS^BRANCH"]
    assert stray.profile is None
    assert (stray.received, stray.applied, stray.failed, stray.pending) == (3, 1, 1, 1)
    assert stray.hourly[22:] == [2, 1]
    assert stray.last_received_at == at(0, 1)

    totals = overview.totals
    assert (totals.received, totals.applied, totals.failed, totals.rejected, totals.duplicates, totals.pending) == (
        9, 4, 2, 1, 1, 1,
    )  # fmt: skip
    assert totals.last_received_at == at(0, 1)
    assert overview.errors_waiting == 3


def test_the_overview_reads_the_window_in_three_queries_whatever_the_number_of_sources(
    fixture_set, django_assert_num_queries
):
    with django_assert_num_queries(3):
        inbound_overview(now=NOW)


def test_senders_without_a_profile_lists_each_stray_sender_once_with_its_count_and_last_message(fixture_set):
    assert senders_without_profile(now=NOW) == [
        ("FUTURE^X", "hl7v2", 1, NOW + dt.timedelta(minutes=5)),
        ("OLDHIS^BRANCH", "hl7v2", 3, at(0, 1)),
    ]


def test_messages_stored_before_their_sender_got_a_profile_count_for_that_profile():
    inbound(sender="NEW^ZYY", status="failed", received_at=at(3))
    profile = source("NEW", "ZYY")
    inbound(profile=profile, received_at=at(1))

    overview = inbound_overview(now=NOW)

    assert [(stats.profile, stats.received, stats.failed, stats.applied) for stats in overview.sources] == [
        (profile, 2, 1, 1)
    ]
    assert overview.sources[0].last_received_at == at(1)
