"""Merging two records of one person: every record moves, the link stays, and undo gives back exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from hcrm.models import AuditEntry
from integrations.models import InboundMessage
from patients.models import (
    BreakGlassGrant,
    Charge,
    ClinicalHistory,
    Consent,
    ContactEntry,
    ContactPerson,
    InboundSms,
    MatchCandidate,
    OutboundMessage,
    Patient,
    PatientDepartment,
    PatientMerge,
    PatientStats,
    Tag,
)
from patients.services.identity import (
    _patient_relations,
    match_candidate_resolve,
    patient_merge_undo,
    patients_merge,
)
from tests.factories import (
    AllergyFactory,
    DepartmentFactory,
    DiagnosisFactory,
    EncounterFactory,
    IdentifierFactory,
    LabResultFactory,
    MedicationOrderFactory,
    PatientFactory,
    ProcedureFactory,
)

pytestmark = pytest.mark.django_db


def _links(*patients: Patient) -> dict[tuple[str, str, object], int]:
    """Every row in any app that points at one of `patients`: {(model, field, pk): patient id}."""
    ids = [patient.pk for patient in patients]
    links = {}
    for field in _patient_relations():
        rows = field.model._default_manager.filter(**{f"{field.attname}__in": ids})
        for pk, patient_id in rows.values_list("pk", field.attname):
            links[(field.model._meta.label_lower, field.name, pk)] = patient_id
    return links


@pytest.fixture
def pair(staff, internal_medicine, acupuncture):
    """A survivor and a prior registration of the same person, the prior with one record of every kind."""
    survivor = PatientFactory(name="张伟", national_id="", mobile="", departments=[internal_medicine])
    prior = PatientFactory(name="张玮", birth_date=survivor.birth_date, departments=[internal_medicine, acupuncture])
    vip, diabetic = Tag.objects.create(name="VIP"), Tag.objects.create(name="糖尿病")
    survivor.tags.set([vip])
    prior.tags.set([vip, diabetic])
    IdentifierFactory(patient=prior, value="CARD-PRIOR")
    ContactPerson.objects.create(patient=prior, name="李娜", relationship="spouse", phone="+8613911112222")
    earlier, later = timezone.now() - dt.timedelta(days=3), timezone.now() - dt.timedelta(days=1)
    Consent.objects.create(patient=prior, purpose="marketing", channel="sms", granted=False, note="opted out")
    Consent.objects.filter(patient=prior).update(updated_at=later)
    Consent.objects.create(patient=survivor, purpose="marketing", channel="sms", granted=True, note="opted in")
    Consent.objects.filter(patient=survivor).update(updated_at=earlier)
    Consent.objects.create(patient=prior, purpose="care", channel="email", granted=True)
    Consent.objects.create(patient=survivor, purpose="follow_up", channel="sms", granted=True)
    Consent.objects.filter(patient=survivor, purpose="follow_up").update(updated_at=later)
    Consent.objects.create(patient=prior, purpose="follow_up", channel="sms", granted=False)
    Consent.objects.filter(patient=prior, purpose="follow_up").update(updated_at=earlier)
    ClinicalHistory.objects.create(patient=prior, kind="past", content="高血压10年", recorded_at=earlier)
    AllergyFactory(patient=prior)
    encounter = EncounterFactory(patient=prior, department=acupuncture)
    Charge.objects.create(patient=prior, encounter=encounter, category="herbal", amount="88.50", charged_at=earlier)
    DiagnosisFactory(patient=prior, encounter=encounter)
    ProcedureFactory(patient=prior, encounter=encounter)
    LabResultFactory(patient=prior, encounter=encounter)
    MedicationOrderFactory(patient=prior, encounter=encounter)
    EncounterFactory(patient=survivor, department=internal_medicine)
    ContactEntry.objects.create(
        patient=prior, staff=staff["nurse"], channel="phone", direction="out", purpose="follow_up",
        occurred_at=earlier, outcome="reached",
    )  # fmt: skip
    OutboundMessage.objects.create(
        patient=prior, channel="sms", purpose="appointment", language="zh-hans", body="明天复诊",
        idempotency_key="prior:1", not_before=earlier,
    )  # fmt: skip
    InboundSms.objects.create(patient=prior, from_number="+8613800138000", text="TD", received_at=earlier)
    InboundMessage.objects.create(protocol="hl7v2", transport="mllp", raw=b"MSH|^~\\&|", patient=prior)
    BreakGlassGrant.objects.create(user=staff["doctor"], patient=prior, reason="急诊会诊", expires_at=later)
    once_merged = PatientFactory(name="张伟伟")
    patients_merge(survivor=prior, prior=once_merged)
    from patients.services.stats import patient_stats_recompute

    patient_stats_recompute(patient_ids=[survivor.pk, prior.pk])
    return survivor, prior


def test_a_merge_moves_every_record_of_every_kind(pair, staff):
    survivor, prior = pair
    before = _links(survivor, prior)
    prior_rows = {key for key, patient_id in before.items() if patient_id == prior.pk}

    merge = patients_merge(survivor=survivor, prior=prior, actor=staff["administrator"], reason="同一人，HIS重复建档")

    after = _links(survivor, prior)
    still_with_prior = {key[:2] for key in prior_rows if after[key] == prior.pk}
    moved_kinds = {key[:2] for key in prior_rows if after[key] == survivor.pk}
    # Clashes stay with the prior record: the shared department, the shared tag, the two consents decided on both.
    assert still_with_prior == {
        ("patients.patientdepartment", "patient"),
        ("patients.patient_tags", "patient"),
        ("patients.consent", "patient"),
    }
    assert moved_kinds == {
        ("integrations.inboundmessage", "patient"),
        ("patients.allergy", "patient"),
        ("patients.charge", "patient"),
        ("patients.clinicalhistory", "patient"),
        ("patients.consent", "patient"),
        ("patients.contactentry", "patient"),
        ("patients.contactperson", "patient"),
        ("patients.diagnosis", "patient"),
        ("patients.encounter", "patient"),
        ("patients.inboundsms", "patient"),
        ("patients.labresult", "patient"),
        ("patients.medicationorder", "patient"),
        ("patients.outboundmessage", "patient"),
        ("patients.patient", "merged_into"),
        ("patients.patient_tags", "patient"),
        ("patients.patientdepartment", "patient"),
        ("patients.patientidentifier", "patient"),
        ("patients.procedure", "patient"),
    }
    prior.refresh_from_db()
    survivor.refresh_from_db()
    assert prior.merged_into == survivor
    assert Patient.objects.get(name="张伟伟").merged_into == survivor  # no chains
    assert sorted(survivor.tags.values_list("name", flat=True)) == ["VIP", "糖尿病"]
    assert sorted(survivor.departments.values_list("code", flat=True)) == ["NK", "ZJ"]
    assert BreakGlassGrant.objects.get().patient == prior  # a reveal of one record never opens another
    assert survivor.encounters.count() == 2
    assert PatientStats.objects.get(patient=survivor).visit_count == 2
    assert not PatientStats.objects.filter(patient=prior).exists()
    # the later consent decision wins: the prior's opt-out from marketing SMS
    consents = {(c.purpose, c.channel): (c.granted, c.note) for c in survivor.consents.all()}
    assert consents == {
        ("marketing", "sms"): (False, "opted out"),
        ("care", "email"): (True, ""),
        ("follow_up", "sms"): (True, ""),
    }
    # the survivor's empty fields are filled from the prior
    assert (survivor.national_id, survivor.mobile) == (prior.national_id, prior.mobile)
    assert (merge.actor, merge.reason, merge.moved_count) == (staff["administrator"], "同一人，HIS重复建档", 18)
    entries = AuditEntry.objects.filter(reason="同一人，HIS重复建档").order_by("patient_uuid")
    assert sorted((entry.patient_uuid, entry.actor) for entry in entries) == sorted(
        [(survivor.uuid, staff["administrator"]), (prior.uuid, staff["administrator"])]
    )


def test_undo_gives_back_exactly_what_moved(pair, staff):
    survivor, prior = pair
    before = _links(survivor, prior)
    consents_before = sorted(Consent.objects.values_list("pk", "patient_id", "purpose", "channel", "granted", "note"))
    survivor_before = Patient.objects.values().get(pk=survivor.pk)
    merge = patients_merge(survivor=survivor, prior=prior, actor=staff["administrator"])

    patient_merge_undo(merge=merge, actor=staff["department_head"])

    assert _links(survivor, prior) == before
    assert sorted(Consent.objects.values_list("pk", "patient_id", "purpose", "channel", "granted", "note")) == (
        consents_before
    )
    survivor_after = Patient.objects.values().get(pk=survivor.pk)
    assert {k: v for k, v in survivor_after.items() if k != "updated_at"} == {
        k: v for k, v in survivor_before.items() if k != "updated_at"
    }
    prior.refresh_from_db()
    merge.refresh_from_db()
    assert prior.merged_into is None
    assert (merge.undone_by, merge.undone_at is not None) == (staff["department_head"], True)
    assert PatientStats.objects.get(patient=prior).visit_count == 1
    assert PatientStats.objects.get(patient=survivor).visit_count == 1


def test_a_merge_cannot_be_undone_twice(pair):
    survivor, prior = pair
    merge = patients_merge(survivor=survivor, prior=prior)
    patient_merge_undo(merge=merge)

    with pytest.raises(ValidationError) as error:
        patient_merge_undo(merge=merge)

    assert error.value.messages == ["This merge has already been undone."]


def test_a_record_added_after_the_merge_stays_with_the_survivor_on_undo(pair):
    survivor, prior = pair
    merge = patients_merge(survivor=survivor, prior=prior)
    later = EncounterFactory(patient=survivor)

    patient_merge_undo(merge=merge)

    later.refresh_from_db()
    assert later.patient == survivor


@pytest.mark.parametrize("case", ["itself", "into a merged patient", "a merged patient"])
def test_merges_that_would_break_the_chain_are_refused(case):
    first, second, third = PatientFactory(), PatientFactory(), PatientFactory()
    patients_merge(survivor=second, prior=third)
    survivor, prior = {
        "itself": (first, first),
        "into a merged patient": (third, first),
        "a merged patient": (first, third),
    }[case]

    with pytest.raises(ValidationError):
        patients_merge(survivor=survivor, prior=prior)

    assert PatientMerge.objects.count() == 1
    assert Patient.objects.get(pk=first.pk).merged_into is None


def test_undo_waits_for_the_later_merge_of_the_survivor_to_be_undone_first():
    first, second, third = PatientFactory(), PatientFactory(), PatientFactory()
    earlier = patients_merge(survivor=second, prior=first)
    later = patients_merge(survivor=third, prior=second)

    with pytest.raises(ValidationError) as error:
        patient_merge_undo(merge=earlier)

    assert error.value.messages == ["The surviving patient has since been merged into another; undo that merge first."]
    patient_merge_undo(merge=later)
    patient_merge_undo(merge=earlier)
    assert list(Patient.objects.filter(merged_into__isnull=False)) == []


def test_undo_is_refused_while_another_patient_holds_the_prior_national_id():
    survivor = PatientFactory(national_id="")
    prior = PatientFactory()
    merge = patients_merge(survivor=survivor, prior=prior)
    Patient.objects.filter(pk=survivor.pk).update(national_id="")
    PatientFactory(national_id=prior.national_id)

    with pytest.raises(ValidationError) as error:
        patient_merge_undo(merge=merge)

    assert list(error.value.message_dict) == ["national_id"]
    assert Patient.objects.get(pk=prior.pk).merged_into == survivor


def test_resolving_a_candidate_by_merge_settles_it_and_undo_reopens_it(staff):
    first = PatientFactory(name="张伟", birth_date=dt.date(1980, 1, 1))
    second = PatientFactory(name="张伟", birth_date=dt.date(1980, 1, 1))
    candidate = MatchCandidate.objects.create(patient_a=first, patient_b=second, reason="name_birth", score=85)

    merge = match_candidate_resolve(
        candidate=candidate, decision="merge", survivor=second, actor=staff["administrator"], reason="同一人"
    )

    candidate.refresh_from_db()
    assert (merge.survivor, merge.prior, merge.source) == (second, first, "review")
    assert (candidate.status, candidate.merge, candidate.decided_by) == ("merged", merge, staff["administrator"])
    patient_merge_undo(merge=merge, actor=staff["administrator"])
    candidate.refresh_from_db()
    assert (candidate.status, candidate.merge, candidate.decided_by, candidate.decided_at) == ("open", None, None, None)


def test_marking_different_people_is_audited_on_both(staff):
    first, second = PatientFactory(), PatientFactory()
    candidate = MatchCandidate.objects.create(patient_a=first, patient_b=second, reason="name_birth", score=85)

    match_candidate_resolve(candidate=candidate, decision="different", actor=staff["department_head"])

    candidate.refresh_from_db()
    assert (candidate.status, candidate.decided_by) == ("different", staff["department_head"])
    entries = AuditEntry.objects.filter(additional_data__match_candidate=str(candidate.uuid))
    assert sorted(entry.patient_uuid for entry in entries) == sorted([first.uuid, second.uuid])
    with pytest.raises(ValidationError):
        match_candidate_resolve(candidate=candidate, decision="merge", survivor=first, actor=staff["department_head"])


def test_the_priors_open_candidates_follow_it_to_the_survivor_and_back():
    survivor, prior, third = PatientFactory(), PatientFactory(), PatientFactory()
    low, high = sorted([prior, third], key=lambda p: p.pk)
    candidate = MatchCandidate.objects.create(patient_a=low, patient_b=high, reason="name_birth", score=85)

    merge = patients_merge(survivor=survivor, prior=prior)

    candidate.refresh_from_db()
    assert {candidate.patient_a, candidate.patient_b} == {survivor, third}
    assert candidate.patient_a_id < candidate.patient_b_id
    patient_merge_undo(merge=merge)
    candidate.refresh_from_db()
    assert (candidate.patient_a, candidate.patient_b) == (low, high)


def test_a_department_link_the_survivor_lacks_moves_and_returns(internal_medicine):
    other = DepartmentFactory(code="FK")
    survivor = PatientFactory(departments=[internal_medicine])
    prior = PatientFactory(departments=[other])

    merge = patients_merge(survivor=survivor, prior=prior)
    assert sorted(PatientDepartment.objects.filter(patient=survivor).values_list("department__code", flat=True)) == [
        "FK",
        "NK",
    ]
    patient_merge_undo(merge=merge)
    assert list(PatientDepartment.objects.filter(patient=prior).values_list("department__code", flat=True)) == ["FK"]
