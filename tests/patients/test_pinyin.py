"""Names are found by pinyin: full, initials and initial consonants, surnames read as surnames."""

from __future__ import annotations

import pytest

from patients.models import Patient
from patients.pinyin import name_search_keys, search_key
from patients.selectors import patients_matching
from tests.factories import PatientFactory


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("张三", ("zhangsan", "zs", "zhs")),
        ("欧阳娜娜", ("ouyangnana", "oynn", "oynn")),
        ("吕布", ("lvbu", "lb", "lb")),
        ("长孙无忌", ("changsunwuji", "cswj", "chswj")),
        ("John Smith", ("johnsmith", "js", "js")),
        ("李Lisa", ("lilisa", "ll", "ll")),
        ("", ("", "", "")),
    ],
)
def test_search_keys(name, keys):
    assert name_search_keys(name) == keys


@pytest.mark.parametrize(
    ("name", "full"),
    [("曾小明", "zengxiaoming"), ("单田芳", "shantianfang"), ("解晓东", "xiexiaodong"), ("仇英", "qiuying")],
)
def test_polyphonic_surnames_read_as_surnames(name, full):
    assert name_search_keys(name)[0] == full


def test_surname_reading_applies_only_to_the_first_character():
    # 曾 inside a given name keeps its ordinary reading
    assert name_search_keys("王曾")[0] == "wangceng"


@pytest.mark.parametrize(("typed", "key"), [("Zhang San", "zhangsan"), ("lü", "lv"), ("z-h-s", "zhs"), ("  ", "")])
def test_typed_query_is_reduced_to_letters(typed, key):
    assert search_key(typed) == key


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["zhs", "zs", "zhangsan", "zhang san", "ZHANG", "Zhang San", "张", "张三"])
def test_zhang_san_is_found(typed):
    # given
    zhang_san = PatientFactory(name="张三")
    PatientFactory(name="李四")

    # then
    assert list(patients_matching(Patient.objects.all(), typed)) == [zhang_san]


@pytest.mark.django_db
def test_polyphonic_surnames_are_found_by_their_surname_reading():
    # given
    zeng = PatientFactory(name="曾小明")
    shan = PatientFactory(name="单田芳")

    # then
    assert list(patients_matching(Patient.objects.all(), "zeng")) == [zeng]
    assert list(patients_matching(Patient.objects.all(), "ceng")) == []
    assert list(patients_matching(Patient.objects.all(), "shantf")) == []
    assert list(patients_matching(Patient.objects.all(), "stf")) == [shan]
    assert list(patients_matching(Patient.objects.all(), "shtf")) == [shan]
    assert list(patients_matching(Patient.objects.all(), "dan")) == []


@pytest.mark.django_db
def test_latin_names_are_found_by_word_and_initials():
    # given
    john = PatientFactory(name="John Smith")
    PatientFactory(name="张三")

    # then
    assert list(patients_matching(Patient.objects.all(), "john")) == [john]
    assert list(patients_matching(Patient.objects.all(), "John Smith")) == [john]
    assert list(patients_matching(Patient.objects.all(), "js")) == [john]
    assert list(patients_matching(Patient.objects.all(), "smith")) == []


@pytest.mark.django_db
def test_pinyin_results_come_most_recently_updated_first():
    # given
    zhang_shan = PatientFactory(name="张山")
    zhang_san = PatientFactory(name="张三")
    zhao_si = PatientFactory(name="赵四")
    zhang_shan.save()  # updated last

    # then
    assert list(patients_matching(Patient.objects.all(), "zhs")) == [zhang_shan, zhao_si, zhang_san]
