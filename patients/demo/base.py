"""Shared pieces of demo generation: the world rows refer to, weighted choices, ids, times and money."""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect
from functools import cache
from typing import NamedTuple

from patients.demo import data

ANCHOR_ORDINAL = data.ANCHOR.toordinal()
FIRST_DAY = ANCHOR_ORDINAL - data.HISTORY_DAYS
LAST_DAY = ANCHOR_ORDINAL - 1
# Asia/Shanghai has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact here.
_CLOCK = [f" {minute // 60:02d}:{minute % 60:02d}:00+08:00" for minute in range(1440)]
_UUID_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_BITS = (0x4000 << 64) | (0x8000 << 48)
# Phone numbers are a bijection of a number (multiplying by a number coprime to 10 permutes
# 0..10^8-1), so they never repeat: patients use 1..4e7, their contacts 4e7..9e7, staff 9e7 on.
_PHONE_MULTIPLIER = 73_939_133
CONTACT_PHONES = 40_000_000
STAFF_PHONES = 90_000_000


class Doctor(NamedTuple):
    id: int
    name: str
    fee: int  # registration fee in yuan


class World(NamedTuple):
    """What generation needs from the database: the ids of departments, doctors and tags."""

    seed: int
    mrn_prefix: str
    departments: dict[str, int]  # code → id
    department_names: dict[str, str]
    doctors: dict[str, tuple[Doctor, ...]]  # department code → its doctors
    tags: dict[str, int]  # name → id


class Weighted:
    """A fixed weighted choice, drawn with one random number."""

    __slots__ = ("items", "cumulative", "total")

    def __init__(self, pairs):
        self.items, self.cumulative, total = [], [], 0.0
        for item, weight in pairs:
            if weight > 0:
                total += weight
                self.items.append(item)
                self.cumulative.append(total)
        self.total = total

    def __bool__(self) -> bool:
        return bool(self.items)

    def pick(self, rng: random.Random):
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


def new_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng`, as the 32 hex digits both databases accept."""
    return f"{(rng.getrandbits(128) & _UUID_MASK) | _UUID_BITS:032x}"


def moment(day: int, minute: int) -> int:
    """A point in time as whole minutes since the anchor's midnight: `day` is a date ordinal."""
    return (day - ANCHOR_ORDINAL) * 1440 + minute


def day_of(moment_: int) -> int:
    return ANCHOR_ORDINAL + moment_ // 1440


def stamp(moment_: int) -> str:
    """ISO 8601 text of a moment in the hospital's zone, which both databases parse into an aware timestamp.

    Times are kept as minutes and written as text because formatting aware datetimes cost more than
    generating the rest of a row.
    """
    day, minute = divmod(moment_, 1440)
    return _date_text(day) + _CLOCK[minute]


@cache
def _date_text(offset: int) -> str:
    return (data.ANCHOR + dt.timedelta(days=offset)).isoformat()


def money(cents: int) -> str:
    """Yuan with two decimals, as text the decimal columns take."""
    return f"{cents // 100}.{cents % 100:02d}"


def mobile(rng: random.Random, number: int) -> str:
    """A valid, E.164 Chinese mobile number that no other `number` below 10^8 gets."""
    return f"+86{rng.choice(data.MOBILE_PREFIXES)}{(number * _PHONE_MULTIPLIER + 12_345_678) % 100_000_000:08d}"
