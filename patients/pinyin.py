"""Pinyin search keys for Chinese names: `张三` → `zhangsan`, `zs`, `zhs`."""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

# Surnames read differently from the same character elsewhere.
_SURNAME_READINGS = {
    "曾": "zeng",
    "单": "shan",
    "解": "xie",
    "仇": "qiu",
    "朴": "piao",
    "查": "zha",
    "区": "ou",
    "盖": "ge",
    "覃": "qin",
    "乐": "yue",
    "缪": "miao",
    "种": "chong",
    "员": "yun",
    "秘": "bi",
    "尉": "yu",
    "繁": "po",
    "召": "shao",
    "长": "chang",
    "翟": "zhai",
    "柏": "bai",
    "牟": "mou",
}
_CONSONANT_PAIRS = ("zh", "ch", "sh")
_NON_LETTERS = re.compile(r"[^a-z]")
_RUNS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[A-Za-z]+")


@lru_cache(maxsize=200_000)
def _readings(name: str) -> tuple[str, ...]:
    """One reading per Chinese character; a Latin word counts as one token.

    Chinese runs are read whole so pypinyin's phrase dictionary picks the
    reading a character has in context (乐 in 快乐 is le, in 音乐 yue); a
    surname gets its surname reading.
    """
    readings: list[str] = []
    for index, run in enumerate(_RUNS.findall(name)):
        if run.isascii():
            readings.append(run.lower())
            continue
        run_readings = [_clean(reading) for reading in lazy_pinyin(run, style=Style.NORMAL)]
        if index == 0 and run[0] in _SURNAME_READINGS:
            run_readings[0] = _SURNAME_READINGS[run[0]]
        readings.extend(reading for reading in run_readings if reading)
    return tuple(readings)


def _clean(reading: str) -> str:
    return _NON_LETTERS.sub("", reading.lower().replace("ü", "v"))


def _consonant(reading: str) -> str:
    for pair in _CONSONANT_PAIRS:
        if reading.startswith(pair):
            return pair
    return reading[:1]


def name_search_keys(name: str) -> tuple[str, str, str]:
    """(full pinyin, first letters, initial consonants) for a name, all lower case without spaces."""
    readings = _readings(name)
    return (
        "".join(readings),
        "".join(reading[:1] for reading in readings),
        "".join(_consonant(reading) for reading in readings),
    )


def search_key(query: str) -> str:
    """A typed pinyin query in the stored form: lower case letters only."""
    return _NON_LETTERS.sub("", query.lower().replace("ü", "v"))
