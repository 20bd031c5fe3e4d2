"""Matching every incoming patient to one identity: the rules, conflicts, updates, candidates, cost."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from hcrm.models import AuditEntry
from patients.models import MatchCandidate, Patient, PatientIdentifier
from patients.services.identity import (
    IdentifierInput,
    PatientDemographics,
    demographics_clean,
    match_reason,
    patient_match_or_create,
    patients_merge,
    within_one_edit,
)
from tests.factories import IdentifierFactory, PatientFactory, national_id

pytestmark = pytest.mark.django_db

BORN = dt.date(1980, 5, 17)
ZHANG_ID = national_id("110105", BORN, 13)  # male


@pytest.fixture
def warm_caches():
    from django.contrib.contenttypes.models import ContentType

    for model in (AuditEntry, Patient, PatientIdentifier):
        ContentType.objects.get_for_model(model)


def _card(value: str, assigner: str = "HIS1") -> IdentifierInput:
    return IdentifierInput(kind="visit_card", value=value, assigner=assigner)


def _zhang(**fields) -> Patient:
    defaults = {"name": "张伟", "sex": "male", "birth_date": BORN, "national_id": ZHANG_ID, "mobile": "+8613800138000"}
    return PatientFactory(**{**defaults, **fields})


# --- Pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        ("liuyang", "liuyang", True),
        ("liuyang", "liuyan", True),
        ("liuyan", "liuyang", True),
        ("zhangwei", "zhangwai", True),
        ("zhangwei", "zhangwie", False),
        ("wangli", "wanglin", True),
        ("wangli", "wangming", False),
        ("", "a", True),
        ("ab", "", False),
    ],
)
def test_within_one_edit(first, second, expected):
    assert within_one_edit(first, second) is expected


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (("张伟", "zhangwei", {"+8613800138000"}), ("张伟", "zhangwei", {"+8613800138000"}), ("name_birth_phone", 95)),
        (("张伟", "zhangwei", {"+8613800138000"}), ("张伟", "zhangwei", {"+8613900139000"}), ("name_birth", 85)),
        (("张伟", "zhangwei", set()), ("章伟", "zhangwei", set()), ("same_pinyin", 80)),
        (("王明伟", "wangmingwei", set()), ("王伟明", "wangweiming", set()), ("swapped", 70)),
        (("John Smith", "johnsmith", set()), ("Smith John", "smithjohn", set()), ("swapped", 70)),
        (("刘阳", "liuyang", set()), ("刘艳", "liuyan", set()), ("close_pinyin", 65)),
        (("刘阳", "liuyang", set()), ("王芳", "wangfang", set()), None),
    ],
)
def test_match_reason(first, second, expected):
    assert match_reason(first, second) == expected


def test_cleaning_normalises_phones_and_fills_what_the_national_id_implies():
    clean = demographics_clean(
        PatientDemographics(name=" 张伟 ", national_id=ZHANG_ID.lower(), mobile="138 0013 8000", phone="010-6512 3456")
    )

    assert clean.values == {
        "name": "张伟",
        "national_id": ZHANG_ID,
        "mobile": "+8613800138000",
        "phone": "+861065123456",
        "birth_date": BORN,
        "sex": "male",
    }
    assert clean.skipped == {}


def test_cleaning_leaves_out_what_cannot_be_stored_and_says_why():
    clean = demographics_clean(
        PatientDemographics(
            name="张伟",
            national_id="110105198005170014",  # wrong check digit
            mobile="12345",
            sex="robot",
            birth_date=dt.date(2999, 1, 1),
            email="not-an-email",
            identifiers=[IdentifierInput(kind="shoe_size", value="42"), _card("  "), _card("C1"), _card("C1")],
        )
    )

    assert clean.values == {"name": "张伟"}
    assert sorted(clean.skipped) == [
        "birth_date",
        "email",
        "identifiers.shoe_size",
        "mobile",
        "national_id",
        "sex",
    ]
    assert clean.skipped["national_id"] == "The check digit of this national ID number is wrong."
    assert clean.identifiers == [_card("C1")]


def test_a_foreign_mobile_is_kept_as_the_other_phone():
    clean = demographics_clean(PatientDemographics(name="Anna Schmidt", mobile="+49 1512 3456789"))

    assert clean.values == {"name": "Anna Schmidt", "phone": "+4915123456789"}
    assert clean.skipped == {}


def test_a_birth_date_that_contradicts_the_national_id_gives_way_to_it():
    clean = demographics_clean(PatientDemographics(name="张伟", national_id=ZHANG_ID, birth_date=dt.date(1981, 1, 1)))

    assert clean.values["birth_date"] == BORN
    assert clean.skipped == {"birth_date": "It does not match the national ID number."}


# --- Matching rules --------------------------------------------------------------------------


def test_a_new_patient_is_created_with_identifiers_pinyin_and_source():
    outcome = patient_match_or_create(
        demographics=PatientDemographics(
            name="张伟", national_id=ZHANG_ID, mobile="13800138000", identifiers=[_card("C1"), _card("C2", "HIS2")]
        ),
        source="hl7",
        system="HIS^HOSP",
    )

    patient = outcome.patient
    assert (outcome.created, outcome.matched_by, outcome.candidates) == (True, "new", [])
    assert (patient.name, patient.name_pinyin, patient.name_pinyin_initials) == ("张伟", "zhangwei", "zw")
    assert (patient.birth_date, patient.sex, patient.mobile, patient.source) == (
        BORN,
        "male",
        "+8613800138000",
        "his_import",
    )
    assert patient.mrn.startswith("M")
    assert sorted(patient.identifiers.values_list("kind", "assigner", "value")) == [
        ("visit_card", "HIS1", "C1"),
        ("visit_card", "HIS2", "C2"),
    ]
    entries = AuditEntry.objects.filter(patient_uuid=patient.uuid)
    assert sorted(entries.values_list("event", flat=True)) == ["create", "create", "create"]
    assert set(entries.values_list("client", flat=True)) == {"hl7:HIS^HOSP"}
    assert set(entries.values_list("actor", flat=True)) == {None}


def test_a_new_patient_needs_a_name():
    with pytest.raises(ValidationError) as error:
        patient_match_or_create(demographics=PatientDemographics(identifiers=[_card("C1")]), source="hl7")

    assert error.value.message_dict == {"name": ["Enter the patient's name."]}
    assert Patient.objects.count() == 0  # and the caller's transaction is still usable


def test_the_same_identifier_and_assigner_finds_the_patient():
    zhang = _zhang()
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", identifiers=[_card("C1")]), source="hl7"
    )

    assert (outcome.patient, outcome.created, outcome.matched_by) == (zhang, False, "identifier")
    assert Patient.objects.count() == 1


def test_the_same_value_from_another_assigner_is_another_identifier():
    zhang = _zhang()
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(
            name="李娜", birth_date=dt.date(1990, 1, 1), identifiers=[_card("C1", "HIS2")]
        ),
        source="hl7",
    )

    assert outcome.created is True
    assert outcome.patient != zhang
    assert PatientIdentifier.objects.filter(value="C1").count() == 2


def test_an_identifier_of_a_merged_patient_leads_to_the_survivor():
    survivor, prior = _zhang(), PatientFactory(name="张玮", birth_date=BORN)
    patients_merge(survivor=survivor, prior=prior)
    # An identifier that stayed behind (here: added to the merged record afterwards by hand).
    PatientIdentifier.objects.create(patient=prior, kind="visit_card", assigner="HIS1", value="OLD")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", identifiers=[_card("OLD")]), source="hl7"
    )

    assert (outcome.patient, outcome.matched_by) == (survivor, "identifier")


def test_a_valid_national_id_finds_the_patient_and_adds_the_new_identifier():
    zhang = _zhang()

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", national_id=ZHANG_ID, identifiers=[_card("C9")]), source="fhir"
    )

    assert (outcome.patient, outcome.created, outcome.matched_by) == (zhang, False, "national_id")
    assert list(zhang.identifiers.values_list("value", flat=True)) == ["C9"]


def test_an_invalid_national_id_matches_nobody_and_is_not_stored():
    zhang = _zhang()
    broken = ZHANG_ID[:-1] + ("0" if ZHANG_ID[-1] != "0" else "1")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", national_id=broken, birth_date=dt.date(1990, 2, 2)), source="hl7"
    )

    assert outcome.created is True
    assert outcome.patient != zhang
    assert outcome.patient.national_id == ""
    assert "national_id" in outcome.skipped


def test_the_national_id_of_a_merged_patient_leads_to_the_survivor():
    survivor = PatientFactory(name="张伟", birth_date=BORN, national_id="")
    prior = _zhang()
    patients_merge(survivor=survivor, prior=prior)
    survivor.refresh_from_db()
    # The merge filled the survivor's empty ID number; take it away to see the prior's still count.
    Patient.objects.filter(pk=survivor.pk).update(national_id="")

    outcome = patient_match_or_create(demographics=PatientDemographics(name="张伟", national_id=ZHANG_ID), source="hl7")

    assert (outcome.patient, outcome.matched_by) == (survivor, "national_id")


def test_the_mrn_finds_the_patient():
    zhang = _zhang(mrn="HIS-000123")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", mrn="HIS-000123", birth_date=BORN), source="hl7"
    )

    assert (outcome.patient, outcome.matched_by) == (zhang, "mrn")


def test_a_new_patient_takes_the_senders_mrn():
    outcome = patient_match_or_create(demographics=PatientDemographics(name="张伟", mrn="HIS-000777"), source="hl7")

    assert outcome.patient.mrn == "HIS-000777"


def test_the_identifier_wins_over_the_national_id_and_the_conflict_is_queued():
    holder_of_card = PatientFactory(name="张伟", birth_date=BORN, national_id="")
    IdentifierFactory(patient=holder_of_card, kind="visit_card", assigner="HIS1", value="C1")
    holder_of_id = PatientFactory(name="王芳", birth_date=dt.date(1970, 3, 3), national_id=ZHANG_ID.replace("13", "13"))
    Patient.objects.filter(pk=holder_of_id.pk).update(national_id=ZHANG_ID)

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", national_id=ZHANG_ID, identifiers=[_card("C1")]), source="hl7"
    )

    holder_of_card.refresh_from_db()
    assert (outcome.patient, outcome.matched_by) == (holder_of_card, "identifier")
    assert holder_of_card.national_id == ""  # the ID number stays with the patient who holds it
    assert Patient.objects.get(pk=holder_of_id.pk).national_id == ZHANG_ID
    [candidate] = outcome.candidates
    assert (candidate.reason, candidate.score, candidate.status, candidate.details) == (
        "identifier_conflict",
        100,
        "open",
        {"national_id": True},
    )
    assert {candidate.patient_a_id, candidate.patient_b_id} == {holder_of_card.pk, holder_of_id.pk}
    assert candidate.patient_a_id < candidate.patient_b_id


def test_two_identifiers_of_two_patients_use_the_first_and_queue_the_pair():
    first, second = PatientFactory(name="张伟"), PatientFactory(name="李娜")
    IdentifierFactory(patient=first, kind="visit_card", assigner="HIS1", value="C1")
    IdentifierFactory(patient=second, kind="insurance", assigner="SI", value="INS1")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(
            name="张伟", identifiers=[_card("C1"), IdentifierInput(kind="insurance", value="INS1", assigner="SI")]
        ),
        source="hl7",
    )

    assert outcome.patient == first
    assert PatientIdentifier.objects.get(value="INS1").patient == second
    [candidate] = outcome.candidates
    assert candidate.details == {"identifier": {"kind": "insurance", "assigner": "SI"}}


def test_the_same_conflict_is_not_raised_twice():
    first, second = PatientFactory(name="张伟"), PatientFactory(name="李娜")
    IdentifierFactory(patient=first, kind="visit_card", assigner="HIS1", value="C1")
    IdentifierFactory(patient=second, kind="visit_card", assigner="HIS2", value="C2")
    demographics = PatientDemographics(name="张伟", identifiers=[_card("C1"), _card("C2", "HIS2")])

    patient_match_or_create(demographics=demographics, source="hl7")
    again = patient_match_or_create(demographics=demographics, source="hl7")

    assert again.candidates == []
    assert MatchCandidate.objects.count() == 1


# --- Updates ---------------------------------------------------------------------------------


def test_sent_fields_overwrite_cleared_fields_empty_and_identifiers_are_only_added():
    zhang = _zhang(email="old@example.com", occupation="教师", district="朝阳区")
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")
    IdentifierFactory(patient=zhang, kind="insurance", assigner="SI", value="INS1")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(
            name="张卫",
            mobile="13911112222",
            district="海淀区",
            identifiers=[_card("C1"), _card("C7", "HIS2")],
            cleared=frozenset({"email", "occupation"}),
        ),
        source="hl7",
    )

    zhang.refresh_from_db()
    assert outcome.matched_by == "identifier"
    assert (zhang.name, zhang.name_pinyin, zhang.name_pinyin_consonants) == ("张卫", "zhangwei", "zhw")
    assert (zhang.mobile, zhang.district, zhang.email, zhang.occupation) == ("+8613911112222", "海淀区", "", "")
    assert (zhang.national_id, zhang.birth_date) == (ZHANG_ID, BORN)  # not sent: kept
    assert sorted(zhang.identifiers.values_list("value", flat=True)) == ["C1", "C7", "INS1"]


def test_a_cleared_death_clears_its_date():
    zhang = _zhang(is_deceased=True, deceased_date=dt.date(2020, 1, 1))
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")

    patient_match_or_create(
        demographics=PatientDemographics(identifiers=[_card("C1")], cleared=frozenset({"is_deceased"})), source="hl7"
    )

    zhang.refresh_from_db()
    assert (zhang.is_deceased, zhang.deceased_date) == (False, None)


def test_an_update_is_audited_as_the_system_with_the_changed_fields():
    zhang = _zhang()
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")

    patient_match_or_create(
        demographics=PatientDemographics(mobile="13911112222", identifiers=[_card("C1")]), source="hl7", system="HIS"
    )

    entry = AuditEntry.objects.filter(patient_uuid=zhang.uuid, event="update").get()
    assert (entry.actor, entry.client) == (None, "hl7:HIS")
    assert entry.changes_dict == {"mobile": ["+8613800138000", "+8613911112222"]}


def test_an_update_by_a_person_names_them(staff):
    zhang = _zhang()
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")

    patient_match_or_create(
        demographics=PatientDemographics(mobile="13911112222", identifiers=[_card("C1")]),
        source="spreadsheet",
        actor=staff["administrator"],
    )

    assert AuditEntry.objects.filter(patient_uuid=zhang.uuid, event="update").get().actor == staff["administrator"]


def test_redelivering_the_same_demographics_writes_nothing(django_assert_num_queries, warm_caches):
    zhang = _zhang()
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")
    demographics = PatientDemographics(
        name="张伟", national_id=ZHANG_ID, mobile="13800138000", identifiers=[_card("C1")]
    )
    audited = AuditEntry.objects.count()

    with django_assert_num_queries(1):
        outcome = patient_match_or_create(demographics=demographics, source="hl7")

    assert outcome.patient == zhang
    assert AuditEntry.objects.count() == audited


def test_matching_by_identifier_and_updating_takes_four_queries(django_assert_num_queries, warm_caches):
    zhang = _zhang()
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")
    IdentifierFactory(patient=zhang, kind="insurance", assigner="SI", value="INS1")
    demographics = PatientDemographics(
        name="张伟",
        national_id=ZHANG_ID,
        mobile="13911112222",
        address_detail="建国路1号",
        identifiers=[_card("C1"), IdentifierInput(kind="insurance", value="INS1", assigner="SI")],
    )

    # the identifiers with their patient, the audit log's old row, the update, the audit entry
    with django_assert_num_queries(4):
        patient_match_or_create(demographics=demographics, source="hl7")

    zhang.refresh_from_db()
    assert (zhang.mobile, zhang.address_detail) == ("+8613911112222", "建国路1号")


def test_a_name_change_looks_for_duplicates_with_one_indexed_query_more(django_assert_num_queries, warm_caches):
    zhang = _zhang()
    IdentifierFactory(patient=zhang, kind="visit_card", assigner="HIS1", value="C1")

    with django_assert_num_queries(5):
        patient_match_or_create(demographics=PatientDemographics(name="张卫", identifiers=[_card("C1")]), source="hl7")


# --- Likely duplicates -----------------------------------------------------------------------


def test_same_name_birth_date_and_phone_is_queued_not_merged():
    zhang = _zhang(national_id="")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", birth_date=BORN, mobile="13800138000"), source="hl7", system="HIS"
    )

    assert outcome.created is True
    [candidate] = outcome.candidates
    assert (candidate.reason, candidate.score, candidate.source, candidate.status) == (
        "name_birth_phone",
        95,
        "hl7:HIS",
        "open",
    )
    assert (candidate.patient_a, candidate.patient_b) == (zhang, outcome.patient)
    assert Patient.objects.filter(merged_into__isnull=True).count() == 2


@pytest.mark.parametrize(
    ("existing", "incoming", "reason"),
    [
        ("张伟", "章伟", "same_pinyin"),
        ("刘阳", "刘艳", "close_pinyin"),
        ("王明伟", "王伟明", "swapped"),
    ],
)
def test_close_names_born_the_same_day_are_queued(existing, incoming, reason):
    PatientFactory(name=existing, birth_date=BORN)

    outcome = patient_match_or_create(demographics=PatientDemographics(name=incoming, birth_date=BORN), source="hl7")

    assert [candidate.reason for candidate in outcome.candidates] == [reason]


def test_close_names_born_on_other_days_are_not_queued():
    PatientFactory(name="张伟", birth_date=BORN)

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="张伟", birth_date=BORN + dt.timedelta(days=1)), source="hl7"
    )

    assert outcome.candidates == []


def test_merged_patients_are_not_candidates():
    survivor = PatientFactory(name="李娜", birth_date=dt.date(1960, 1, 1))
    prior = PatientFactory(name="张伟", birth_date=BORN)
    patients_merge(survivor=survivor, prior=prior)

    outcome = patient_match_or_create(demographics=PatientDemographics(name="张伟", birth_date=BORN), source="hl7")

    assert outcome.candidates == []


def test_a_pair_marked_different_is_never_raised_again():
    zhang = PatientFactory(name="张伟", birth_date=BORN)
    other = PatientFactory(name="张伟", birth_date=BORN, mobile="+8613911112222")
    MatchCandidate.objects.create(patient_a=zhang, patient_b=other, reason="name_birth", score=85, status="different")
    IdentifierFactory(patient=other, kind="visit_card", assigner="HIS1", value="C1")

    outcome = patient_match_or_create(
        demographics=PatientDemographics(name="章伟", identifiers=[_card("C1")]), source="hl7"
    )

    assert outcome.candidates == []
    assert MatchCandidate.objects.count() == 1


def test_a_placeholder_birth_date_shared_by_many_compares_only_close_matches(settings, monkeypatch):
    from patients.services import identity

    monkeypatch.setattr(identity, "SAME_BIRTH_DATE_LIMIT", 3)
    placeholder = dt.date(1900, 1, 1)
    for _index in range(5):
        PatientFactory(birth_date=placeholder, name="赵敏")
    twin = PatientFactory(birth_date=placeholder, name="刘阳")

    outcome = patient_match_or_create(demographics=PatientDemographics(name="刘阳", birth_date=placeholder), source="x")

    assert [(candidate.reason, candidate.patient_a) for candidate in outcome.candidates] == [("name_birth", twin)]


# --- Manual registration goes through the same rules --------------------------------------------


def test_registering_a_second_patient_with_an_existing_national_id_is_refused(api, staff, patient):
    response = api.as_user(staff["administrator"]).post(
        "/api/v1/patients/", {"name": "张三丰", "national_id": patient.national_id}, format="json"
    )

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["national_id"]
    assert Patient.objects.count() == 1


def test_registering_a_likely_duplicate_creates_it_and_queues_the_pair(api, staff, patient):
    response = api.as_user(staff["administrator"]).post(
        "/api/v1/patients/",
        {"name": patient.name, "birth_date": patient.birth_date.isoformat(), "mobile": patient.mobile},
        format="json",
    )

    assert response.status_code == 201
    new = Patient.objects.get(uuid=response.json()["id"])
    candidate = MatchCandidate.objects.get()
    assert (candidate.patient_a, candidate.patient_b, candidate.reason, candidate.source) == (
        patient,
        new,
        "name_birth_phone",
        "manual",
    )


def test_renaming_a_patient_by_hand_looks_for_duplicates(staff, patient):
    from patients.services import patient_update

    other = PatientFactory(name="李娜", birth_date=patient.birth_date)

    patient_update(actor=staff["administrator"], patient=other, data={"name": patient.name})

    assert MatchCandidate.objects.get().reason == "name_birth"
