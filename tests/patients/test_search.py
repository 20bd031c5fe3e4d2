"""One search box: names, pinyin, phones, MRNs, card numbers and national IDs, within the caller's departments."""

from __future__ import annotations

import datetime as dt

import pytest

from patients.models import Patient
from patients.selectors import SearchKind, patients_matching, patients_visible_to, search_kind
from patients.services import patient_reveal
from tests.factories import IdentifierFactory, PatientFactory, national_id

pytestmark = pytest.mark.django_db

ZHANG_ID = national_id("110105", dt.date(1949, 12, 31), 2)


@pytest.fixture
def zhang_san(internal_medicine):
    return PatientFactory(
        name="张三", mrn="M00000042", mobile="+8613812345678", phone="+861065123456", national_id=ZHANG_ID,
        birth_date=dt.date(1949, 12, 31), sex="female", departments=[internal_medicine],
    )  # fmt: skip


@pytest.fixture
def others(internal_medicine):
    return [
        PatientFactory(name="张山", mrn="M00000043", mobile="+8613900000001", departments=[internal_medicine]),
        PatientFactory(name="李四", mrn="M00000420", mobile="+8613900000002", departments=[internal_medicine]),
    ]


def _found(query: str) -> list[str]:
    """Names found, sorted (the order of results is tested in test_pinyin)."""
    return sorted(patients_matching(Patient.objects.all(), query).values_list("name", flat=True))


@pytest.mark.parametrize(
    ("query", "kind"),
    [
        ("张三", SearchKind.NAME),
        ("zhangsan", SearchKind.PINYIN),
        ("zhang san", SearchKind.PINYIN),
        ("138 1234 5678", SearchKind.PHONE),
        ("(010) 6512-3456", SearchKind.PHONE),
        ("M00000042", SearchKind.MRN),
        ("C0000000001", SearchKind.MRN),
        ("11010519491231002x", SearchKind.NATIONAL_ID),
        ("   ", SearchKind.NONE),
    ],
)
def test_search_kind_is_recognised(query, kind):
    assert search_kind(query) == kind


def test_name_characters_match_from_the_start(zhang_san, others):
    assert _found("张") == ["张三", "张山"]
    assert _found("张三") == ["张三"]
    assert _found("三") == []


@pytest.mark.parametrize(("query", "names"), [("zhangsan", ["张三"]), ("zhang", ["张三", "张山"]), ("lisi", ["李四"])])
def test_full_pinyin(zhang_san, others, query, names):
    assert _found(query) == names


@pytest.mark.parametrize(("query", "names"), [("zs", ["张三", "张山"]), ("ls", ["李四"]), ("zhs", ["张三", "张山"])])
def test_initials_and_consonant_initials(zhang_san, others, query, names):
    assert _found(query) == names


def test_consonant_initials_tell_zh_from_z(zhang_san, others):
    # given
    zou = PatientFactory(name="邹三")

    # then zhs is 张三 and 张山 (zh-), zs also finds 邹三 (z-)
    assert _found("zhs") == ["张三", "张山"]
    assert set(_found("zs")) == {"张三", "张山", zou.name}


@pytest.mark.parametrize(
    "typed", ["13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678"]
)
def test_mobile_in_several_typed_forms(zhang_san, others, typed):
    assert _found(typed) == ["张三"]


@pytest.mark.parametrize("typed", ["010-65123456", "(010) 6512 3456", "+86 10 6512 3456"])
def test_other_phone_in_several_typed_forms(zhang_san, others, typed):
    assert _found(typed) == ["张三"]


def test_mrn_is_exact_and_case_insensitive(zhang_san, others):
    assert _found("M00000042") == ["张三"]
    assert _found("m00000042") == ["张三"]
    assert _found("M0000004") == []


def test_visit_card_number(zhang_san, others):
    IdentifierFactory(patient=zhang_san, kind="visit_card", value="C0000000001")
    IdentifierFactory(patient=others[1], kind="insurance", value="YB12345678")

    assert _found("C0000000001") == ["张三"]
    assert _found("YB12345678") == ["李四"]
    assert _found("C000000000") == []


def test_national_id_is_exact(zhang_san, others):
    assert _found(ZHANG_ID) == ["张三"]
    assert _found(ZHANG_ID.lower()) == ["张三"]
    assert _found(ZHANG_ID[:17] + "0") == []


def test_search_finds_only_patients_of_the_callers_departments(staff, zhang_san, acupuncture):
    # given a 张三 in each department
    other_zhang = PatientFactory(name="张三", departments=[acupuncture])

    # then
    assert list(patients_matching(patients_visible_to(staff["doctor"]), "zhangsan")) == [zhang_san]
    assert list(patients_matching(patients_visible_to(staff["other_doctor"]), "zhangsan")) == [other_zhang]
    assert set(patients_matching(patients_visible_to(staff["agent"]), "zhangsan")) == {zhang_san, other_zhang}


def test_scoping_applies_to_every_kind_of_search(staff, zhang_san):
    IdentifierFactory(patient=zhang_san, value="C0000000001")
    visible = patients_visible_to(staff["other_doctor"])

    for query in ("张三", "zs", "13812345678", "M00000042", "C0000000001", ZHANG_ID):
        assert list(patients_matching(visible, query)) == [], query


def test_breaking_the_glass_adds_that_patient_to_the_results(staff, zhang_san):
    patient_reveal(actor=staff["other_doctor"], patient=zhang_san, reason="急诊抢救")
    staff["other_doctor"]._grant_patient_ids = None

    assert list(patients_matching(patients_visible_to(staff["other_doctor"]), "zhs")) == [zhang_san]


def test_merged_patients_are_not_found(staff, zhang_san, others):
    Patient.objects.filter(pk=others[0].pk).update(merged_into=zhang_san)

    assert list(patients_matching(patients_visible_to(staff["agent"]), "zhs")) == [zhang_san]


def test_api_search_box(api, staff, zhang_san, others, acupuncture):
    PatientFactory(name="张三", departments=[acupuncture])

    response = api.as_user(staff["doctor"]).get("/api/v1/patients/", {"q": "zhang san"})

    assert [row["id"] for row in response.json()["results"]] == [str(zhang_san.uuid)]


@pytest.mark.parametrize("typed", ["8613812345678", "0086 138 1234 5678", "+86 138-1234-5678"])
def test_mobile_typed_with_the_country_code_is_found(zhang_san, others, typed):
    assert _found(typed) == ["张三"]


def test_a_card_number_that_looks_like_a_mobile_is_found(zhang_san, others):
    # given an 11-digit visit card that no patient has as a phone
    IdentifierFactory(patient=others[1], kind="visit_card", value="13700001111")

    assert search_kind("13700001111") == SearchKind.PHONE
    assert _found("13700001111") == ["李四"]


def test_an_explicit_phone_search_ignores_identifiers(zhang_san, others):
    IdentifierFactory(patient=others[1], kind="visit_card", value="13700001111")

    assert list(patients_matching(Patient.objects.all(), "13700001111", SearchKind.PHONE)) == []
