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


@lru_cache(maxsize=20000)
def _char_reading(char: str) -> str:
    reading = lazy_pinyin(char, style=Style.NORMAL, errors="default")[0].lower()
    return _NON_LETTERS.sub("", reading.replace("ü", "v"))


_TOKENS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z]+")


def _readings(name: str) -> list[str]:
    """One reading per Chinese character; a Latin word counts as one token."""
    readings: list[str] = []
    for index, token in enumerate(_TOKENS.findall(name)):
        if index == 0 and token in _SURNAME_READINGS:
            readings.append(_SURNAME_READINGS[token])
        elif len(token) == 1 and not token.isascii():
            reading = _char_reading(token)
            if reading:
                readings.append(reading)
        else:
            readings.append(token.lower())
    return readings


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
