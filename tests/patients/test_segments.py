"""Segments: every filter with its exact members, validation, the services, and the console pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.exceptions import ValidationError as ApiValidationError

from hcrm.models import AuditEntry
from patients.models import OutreachSettings, Segment
from patients.selectors.segments import local_midnight, segment_filters_clean, segment_patients
from patients.services.segments import (
    segment_count,
    segment_create,
    segment_delete,
    segment_update,
)
from patients.services.stats import patient_stats_recompute
from tests.factories import (
    ChargeFactory,
    ConsentFactory,
    DiagnosisFactory,
    EncounterFactory,
    PatientFactory,
    SegmentFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)


def _at(days_ago: int) -> dt.datetime:
    return local_midnight(TODAY - dt.timedelta(days=days_ago)) + dt.timedelta(hours=10)


@pytest.fixture
def population(internal_medicine, acupuncture):
    """Four patients who differ in every filter, a deceased one and a merged one; statistics computed for TODAY."""
    hypertension, diabetes = TagFactory(name="高血压"), TagFactory(name="糖尿病")
    zhang = PatientFactory(
        name="张秀英", sex="female", birth_date=dt.date(1950, 3, 1), province="广东省", city="广州市",
        district="越秀区", source="referral", departments=[internal_medicine],
    )  # fmt: skip
    li = PatientFactory(
        name="李伟", sex="male", birth_date=dt.date(1990, 6, 15), province="广东省", city="佛山市",
        district="禅城区", source="online", departments=[acupuncture],
    )  # fmt: skip
    wang = PatientFactory(
        name="王芳", sex="female", birth_date=dt.date(2000, 6, 16), province="北京市", city="北京市",
        district="朝阳区", source="walk_in", departments=[internal_medicine],
    )  # fmt: skip
    dead = PatientFactory(
        name="赵强", sex="male", birth_date=dt.date(1940, 1, 1), province="广东省", city="广州市", district="越秀区",
        source="referral", is_deceased=True, departments=[internal_medicine],
    )  # fmt: skip
    merged = PatientFactory(
        name="张秀英", sex="female", birth_date=dt.date(1950, 3, 1), province="广东省", city="广州市",
        district="越秀区", source="referral", departments=[internal_medicine], merged_into=zhang,
    )  # fmt: skip
    zhang.tags.add(hypertension)
    merged.tags.add(hypertension)
    li.tags.add(diabetes)
    visit = EncounterFactory(patient=zhang, department=internal_medicine, started_at=_at(10))
    ChargeFactory(patient=zhang, encounter=visit, amount=Decimal(6000))
    old_visit = EncounterFactory(patient=li, department=acupuncture, started_at=_at(400))
    ChargeFactory(patient=li, encounter=old_visit, amount=Decimal(100))
    EncounterFactory(patient=wang, department=internal_medicine, started_at=_at(3), status="cancelled")
    EncounterFactory(patient=dead, department=internal_medicine, started_at=_at(5))
    EncounterFactory(patient=merged, department=internal_medicine, started_at=_at(10))
    DiagnosisFactory(patient=zhang, system="icd10", code="I10", name="原发性高血压")
    DiagnosisFactory(patient=zhang, system="tcm_syndrome", code="ZYV040", name="肝阳上亢证")
    DiagnosisFactory(patient=li, system="icd10", code="E11.9", name="2型糖尿病")
    DiagnosisFactory(patient=wang, system="tcm_disease", code="BNG070", name="不寐病")
    DiagnosisFactory(patient=dead, system="icd10", code="I10", name="原发性高血压")
    DiagnosisFactory(patient=merged, system="icd10", code="I10", name="原发性高血压")
    ConsentFactory(patient=zhang, purpose="marketing", channel="sms", granted=True)
    ConsentFactory(patient=merged, purpose="marketing", channel="sms", granted=True)
    ConsentFactory(patient=li, purpose="follow_up", channel="sms", granted=False)
    patient_stats_recompute(today=TODAY)
    return {"zhang": zhang, "li": li, "wang": wang, "dead": dead, "merged": merged}


def _members(spec: dict) -> set[str]:
    return set(segment_patients(spec, today=TODAY).values_list("name", flat=True))


# --- Each filter -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, {"张秀英", "李伟", "王芳"}),
        ({"include_deceased": True}, {"张秀英", "李伟", "王芳", "赵强"}),
        ({"visit_from": "2026-05-16"}, {"张秀英"}),  # the cancelled visit of 王芳 is not a visit
        ({"visit_from": "2026-06-05", "visit_to": "2026-06-05"}, {"张秀英"}),
        ({"visit_to": "2026-06-04"}, {"李伟"}),
        ({"visit_from": "2026-06-06"}, set()),
        ({"provinces": ["广东省"]}, {"张秀英", "李伟"}),
        ({"cities": ["佛山市"]}, {"李伟"}),
        ({"districts": ["越秀区", "朝阳区"]}, {"张秀英", "王芳"}),
        ({"sources": ["referral", "walk_in"]}, {"张秀英", "王芳"}),
        ({"departments": ["ZJ"]}, {"李伟"}),
        ({"departments": ["NK"]}, {"张秀英", "王芳"}),
        ({"diagnosis_prefixes": ["I10"]}, {"张秀英"}),
        ({"diagnosis_prefixes": ["i10", "E11"]}, {"张秀英", "李伟"}),
        ({"diagnosis_prefixes": ["E11."]}, {"李伟"}),
        ({"diagnosis_prefixes": ["BNG"], "diagnosis_system": "tcm_disease"}, {"王芳"}),
        ({"diagnosis_prefixes": ["I10"], "diagnosis_system": "tcm_syndrome"}, set()),
        ({"diagnosis_prefixes": ["ZYV"], "diagnosis_system": "tcm_syndrome"}, {"张秀英"}),
        ({"spending_min": 5000}, {"张秀英"}),
        ({"spending_max": 500}, {"李伟", "王芳"}),  # never visited: spent 0
        ({"spending_min": 100, "spending_max": 100}, {"李伟"}),
        ({"age_min": 36}, {"张秀英", "李伟"}),  # 李伟 turns 36 today
        ({"age_max": 25}, {"王芳"}),  # 王芳 turns 26 tomorrow
        ({"age_min": 26, "age_max": 36}, {"李伟"}),
        ({"sexes": ["female"]}, {"张秀英", "王芳"}),
        ({"tags": ["高血压", "糖尿病"]}, {"张秀英", "李伟"}),
        ({"last_visit_within_days": 10}, {"张秀英"}),
        ({"last_visit_within_days": 9}, set()),
        ({"no_visit_for_days": 400}, {"李伟"}),  # never visited is not "no visit for": see rfm_groups none
        ({"no_visit_for_days": 401}, set()),
        ({"consent": {"purpose": "marketing", "channel": "sms", "granted": True}}, {"张秀英"}),
        ({"consent": {"purpose": "marketing", "channel": "sms", "granted": False}}, {"李伟", "王芳"}),
        ({"consent": {"purpose": "follow_up", "channel": "sms", "granted": True}}, {"张秀英", "王芳"}),
        ({"consent": {"purpose": "follow_up", "channel": "sms", "granted": False}}, {"李伟"}),
        ({"rfm_groups": ["new"]}, {"张秀英"}),
        ({"rfm_groups": ["lapsed", "none"]}, {"李伟", "王芳"}),
        ({"recency_scores": [5]}, {"张秀英"}),
        ({"frequency_scores": [1]}, {"张秀英", "李伟"}),
        ({"monetary_scores": [4]}, {"张秀英"}),
        ({"cities": ["广州市"], "include_deceased": True}, {"张秀英", "赵强"}),
        ({"cities": ["广州市"], "age_min": 60, "sexes": ["female"], "tags": ["高血压"]}, {"张秀英"}),
    ],
)
def test_each_filter_matches_exactly(population, spec, expected):
    assert _members(spec) == expected


def test_a_patient_registered_since_the_last_recompute_counts_as_no_visit(population):
    PatientFactory(name="新来的")

    assert _members({"rfm_groups": ["none"]}) == {"王芳", "新来的"}
    assert _members({"spending_max": 500}) == {"李伟", "王芳"}


def test_members_are_narrowed_to_the_patients_given(population, staff):
    from patients.selectors import patients_visible_to

    spec = {"provinces": ["广东省"]}

    own = segment_patients(spec, patients=patients_visible_to(staff["doctor"]), today=TODAY)
    other = segment_patients(spec, patients=patients_visible_to(staff["other_doctor"]), today=TODAY)

    assert set(own.values_list("name", flat=True)) == {"张秀英"}
    assert set(other.values_list("name", flat=True)) == {"李伟"}


def test_counting_is_one_query(population, django_assert_num_queries):
    spec = {
        "visit_from": "2025-01-01",
        "departments": ["NK"],
        "diagnosis_prefixes": ["I10"],
        "tags": ["高血压"],
        "consent": {"purpose": "marketing", "channel": "sms", "granted": True},
        "rfm_groups": ["new"],
        "spending_min": 1,
    }
    queryset = segment_patients(spec, today=TODAY)

    with django_assert_num_queries(1):
        assert queryset.count() == 1


# --- Validation --------------------------------------------------------------------------------------


def _spec_errors(spec, **kwargs) -> dict:
    with pytest.raises(ApiValidationError) as error:
        segment_filters_clean(spec, **kwargs)
    return {field: [str(message) for message in messages] for field, messages in error.value.detail.items()}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"age_mini": 3}, "age_mini"),
        ({"age_min": 70, "age_max": 60}, "age_max"),
        ({"visit_from": "2026-02-01", "visit_to": "2026-01-01"}, "visit_to"),
        ({"spending_min": "-1"}, "spending_min"),
        ({"sources": ["newspaper"]}, "sources"),
        ({"recency_scores": [6]}, "recency_scores"),
        ({"diagnosis_prefixes": ["I10%"]}, "diagnosis_prefixes"),
        ({"diagnosis_system": "icd9"}, "diagnosis_system"),
        ({"consent": {"purpose": "marketing", "channel": "fax", "granted": True}}, "consent"),
        ({"visit_from": "yesterday"}, "visit_from"),
        ({"departments": ["XX"]}, "departments"),
        ({"tags": ["没有这个标签"]}, "tags"),
    ],
)
def test_validation_names_the_field(db, internal_medicine, spec, field):
    assert list(_spec_errors(spec)) == [field]


def test_unknown_references_are_checked_on_save_but_a_saved_one_matches_nobody(population):
    assert _spec_errors({"tags": ["已改名"]}) == {"tags": ["Unknown: 已改名."]}
    assert _members({"tags": ["已改名"]}) == set()


def test_the_spec_is_stored_in_canonical_form():
    spec = segment_filters_clean(
        {
            "age_min": 60,
            "diagnosis_prefixes": [" i10 ", "I10", "e11"],
            "recency_scores": ["5", 4, 5],
            "diagnosis_system": "any",
            "include_deceased": False,
            "provinces": [],
            "spending_min": "1000.00",
            "spending_max": "2000.50",
            "visit_from": "2026-01-01",
        },
        check_references=False,
    )

    assert spec == {
        "visit_from": "2026-01-01",
        "diagnosis_prefixes": ["I10", "E11"],
        "spending_min": 1000,
        "spending_max": 2000.5,
        "age_min": 60,
        "recency_scores": [4, 5],
    }


# --- Services -----------------------------------------------------------------------------------------


def test_create_stores_the_canonical_spec_and_is_audited(staff, internal_medicine):
    segment = segment_create(
        actor=staff["doctor"], name=" 高血压随访 ", filters={"diagnosis_prefixes": ["i10"], "departments": ["NK"]}
    )

    assert (segment.name, segment.owner, segment.filters) == (
        "高血压随访",
        staff["doctor"],
        {"departments": ["NK"], "diagnosis_prefixes": ["I10"]},
    )
    entry = AuditEntry.objects.get(content_type__model="segment")
    assert (entry.event, entry.actor, entry.object_pk) == ("create", staff["doctor"], str(segment.pk))


def test_create_refuses_a_bad_spec_or_a_taken_name_and_writes_nothing(staff):
    SegmentFactory(name="老年人")
    before = (Segment.objects.count(), AuditEntry.objects.count())

    with pytest.raises(ValidationError) as bad_spec:
        segment_create(actor=staff["doctor"], name="新分群", filters={"age_min": 70, "age_max": 60})
    with pytest.raises(ValidationError) as taken:
        segment_create(actor=staff["doctor"], name="老年人", filters={})
    with pytest.raises(ValidationError) as unnamed:
        segment_create(actor=staff["doctor"], name="  ", filters={})
    with pytest.raises(ValidationError) as bad_choice:
        segment_create(actor=staff["doctor"], name="新分群", filters={"consent": {"purpose": "x", "channel": "sms"}})

    assert bad_spec.value.message_dict == {"filters.age_max": ["The maximum is less than the minimum."]}
    assert taken.value.message_dict == {"name": ["Another segment already has this name."]}
    assert unnamed.value.message_dict == {"name": ["Give the segment a name."]}
    assert {field: [e.code for e in errors] for field, errors in bad_choice.value.error_dict.items()} == {
        "filters.consent.purpose": ["invalid_choice"],
        "filters.consent.granted": ["required"],
    }
    assert (Segment.objects.count(), AuditEntry.objects.count()) == before


def test_update_of_filters_forgets_the_cached_count(population, staff):
    segment = SegmentFactory(name="广东", filters={"provinces": ["广东省"]})
    segment_count(segment=segment, today=TODAY)
    assert segment.last_count == 2

    segment_update(actor=staff["department_head"], segment=segment, data={"filters": {"provinces": ["北京市"]}})

    segment.refresh_from_db()
    assert (segment.filters, segment.last_count, segment.last_counted_at) == ({"provinces": ["北京市"]}, None, None)
    entry = AuditEntry.objects.filter(content_type__model="segment").latest("pk")
    assert (entry.event, entry.actor) == ("update", staff["department_head"])


def test_count_keeps_the_figure_without_an_audit_entry(population):
    segment = SegmentFactory(filters={"sexes": ["female"]})
    before = AuditEntry.objects.count()

    assert segment_count(segment=segment, today=TODAY) == 2

    segment.refresh_from_db()
    assert segment.last_count == 2
    assert segment.last_counted_at is not None
    assert AuditEntry.objects.count() == before


def test_delete_is_audited(staff):
    segment = SegmentFactory()

    segment_delete(actor=staff["administrator"], segment=segment)

    assert not Segment.objects.exists()
    entry = AuditEntry.objects.filter(content_type__model="segment").latest("pk")
    assert (entry.event, entry.actor) == ("delete", staff["administrator"])


# --- Console pages -------------------------------------------------------------------------------------


@pytest.fixture
def console(client):
    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in


def _builder_data(**fields) -> dict:
    return {"name": "", "description": "", "diagnosis_system": "any", **fields}


def test_builder_saves_a_segment_from_the_form(console, staff, population):
    response = console(staff["doctor"]).post(
        reverse("patients:segment-create"),
        _builder_data(
            name="广州女性",
            cities="广州市",
            sexes=["female"],
            age_min="60",
            departments=["NK"],
            consent_purpose="marketing",
            consent_channel="sms",
            consent_granted="yes",
        ),
    )

    segment = Segment.objects.get(name="广州女性")
    assert response.status_code == 302
    assert response["Location"] == reverse("patients:segment-detail", args=[segment.uuid])
    assert segment.filters == {
        "cities": ["广州市"],
        "departments": ["NK"],
        "age_min": 60,
        "sexes": ["female"],
        "consent": {"purpose": "marketing", "channel": "sms", "granted": True},
    }


def test_builder_shows_errors_on_the_fields_and_saves_nothing(console, staff, population):
    response = console(staff["doctor"]).post(
        reverse("patients:segment-create"),
        _builder_data(name="错误", age_min="70", age_max="60", consent_purpose="marketing"),
    )

    assert response.status_code == 400
    form = response.context["form"]
    assert form.errors == {
        "consent_granted": ["Choose the purpose, the channel and the answer."],
    }
    response = console(staff["doctor"]).post(
        reverse("patients:segment-create"), _builder_data(name="错误", age_min="70", age_max="60")
    )
    assert response.context["form"].errors == {"age_max": ["The maximum is less than the minimum."]}
    assert not Segment.objects.exists()


def test_live_count_counts_the_form(console, staff, population):
    response = console(staff["analyst"]).get(
        reverse("patients:segment-preview"), {"provinces": "广东省", "diagnosis_system": "any"}
    )

    assert response.status_code == 200
    assert b'data-count="2"' in response.content


def test_live_count_reports_errors(console, staff, population):
    response = console(staff["doctor"]).get(reverse("patients:segment-preview"), {"age_min": "70", "age_max": "60"})

    assert b"data-count" not in response.content
    assert "The maximum is less than the minimum." in response.content.decode()


def test_edit_form_starts_from_the_saved_spec(console, staff, population):
    segment = SegmentFactory(
        name="编辑我",
        filters={
            "provinces": ["广东省", "北京市"],
            "recency_scores": [4, 5],
            "consent": {"purpose": "care", "channel": "sms", "granted": False},
        },
    )

    response = console(staff["administrator"]).get(reverse("patients:segment-edit", args=[segment.uuid]))

    form = response.context["form"]
    assert (form["provinces"].value(), form["recency_scores"].value(), form["consent_granted"].value()) == (
        "广东省, 北京市",
        ["4", "5"],
        "no",
    )


@pytest.mark.parametrize(
    ("role", "url_name", "status"),
    [
        ("nurse", "patients:segment-create", 403),
        ("analyst", "patients:segment-create", 403),
        ("doctor", "patients:segment-create", 200),
        ("doctor", "patients:outreach-settings", 403),
        ("administrator", "patients:outreach-settings", 200),
        ("analyst", "patients:segment-list", 200),
        ("agent", "patients:segment-list", 200),
    ],
)
def test_pages_follow_the_role(console, staff, role, url_name, status):
    assert console(staff[role]).get(reverse(url_name)).status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("patients:segment-list"))

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_list_and_rfm_overview(console, staff, population):
    SegmentFactory(name="女性", filters={"sexes": ["female"]}, last_count=2)

    listing = console(staff["analyst"]).get(reverse("patients:segment-list"))
    overview = console(staff["analyst"]).get(reverse("patients:segment-rfm"))

    assert "女性" in listing.content.decode()
    # The deceased patient's single recent visit makes him "new" too; the merged patient has no statistics.
    groups = {value: count for value, _label, count in overview.context["groups"]}
    assert groups == {"none": 1, "new": 2, "loyal": 0, "active": 0, "occasional": 0, "at_risk": 0, "lapsed": 1}
    assert dict(overview.context["scores"])[5] == {"recency": 2, "frequency": 0, "monetary": 0}
    assert overview.context["total"] == 4


def test_detail_lists_own_department_members_masked_and_audits(console, staff, population):
    segment = SegmentFactory(filters={"provinces": ["广东省"]})

    response = console(staff["doctor"]).get(reverse("patients:segment-detail", args=[segment.uuid]))

    rows = response.context["page"].object_list
    assert [view.name for view in rows] == ["张秀英"]
    assert "*" in rows[0].national_id
    assert rows[0].national_id != population["zhang"].national_id
    entry = AuditEntry.objects.get(event="list")
    assert entry.additional_data == {"segment": str(segment.uuid), "patients": [str(population["zhang"].uuid)]}


def test_detail_shows_an_administrator_everyone_unmasked(console, staff, population):
    segment = SegmentFactory(filters={"provinces": ["广东省"]})

    response = console(staff["administrator"]).get(reverse("patients:segment-detail", args=[segment.uuid]))

    rows = response.context["page"].object_list
    assert sorted(view.name for view in rows) == ["张秀英", "李伟"]
    assert {view.national_id for view in rows} == {population["zhang"].national_id, population["li"].national_id}


def test_analyst_sees_the_count_but_no_member(console, staff, population):
    segment = SegmentFactory(filters={"provinces": ["广东省"]})

    detail = console(staff["analyst"]).get(reverse("patients:segment-detail", args=[segment.uuid]))
    export = console(staff["analyst"]).get(reverse("patients:segment-export", args=[segment.uuid, "csv"]))
    count = console(staff["analyst"]).post(
        reverse("patients:segment-count", args=[segment.uuid]), HTTP_HX_REQUEST="true"
    )

    assert detail.context["page"] is None
    assert "张秀英" not in detail.content.decode()
    assert export.status_code == 403
    assert count.status_code == 200
    assert "<strong>2</strong>" in count.content.decode()
    assert not AuditEntry.objects.filter(event__in=["list", "export"]).exists()


def test_export_is_masked_for_the_role_and_audited(console, staff, population):
    segment = SegmentFactory(filters={"provinces": ["广东省"]})

    response = console(staff["doctor"]).get(reverse("patients:segment-export", args=[segment.uuid, "csv"]))

    text = response.content.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert len(lines) == 2 and "张秀英" in lines[1]
    assert population["zhang"].national_id not in text
    entry = AuditEntry.objects.get(event="export")
    assert entry.additional_data == {"segment": str(segment.uuid), "format": "csv", "rows": 1}


def test_delete_from_the_console(console, staff):
    segment = SegmentFactory()

    refused = console(staff["doctor"]).post(reverse("patients:segment-delete", args=[segment.uuid]))
    assert refused.status_code == 403
    assert Segment.objects.exists()

    response = console(staff["department_head"]).post(reverse("patients:segment-delete", args=[segment.uuid]))
    assert response.status_code == 302
    assert not Segment.objects.exists()


def test_settings_page_saves_boundaries_and_shows_errors(console, staff):
    client = console(staff["administrator"])
    data = {
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "07:30",
        "daily_message_cap": "2",
        "rfm_window_days": "365",
        "rfm_recency_days": "15, 60, 120, 300",
        "rfm_frequency_visits": "2，4，6，10",
        "rfm_monetary_yuan": "300, 1000, 3000, 10000",
    }

    bad = client.post(reverse("patients:outreach-settings"), {**data, "rfm_recency_days": "60, 15, 120, 300"})
    assert bad.status_code == 400
    assert bad.context["form"].errors == {"rfm_recency_days": ["The boundaries must be strictly increasing."]}

    good = client.post(reverse("patients:outreach-settings"), data)
    assert good.status_code == 302
    row = OutreachSettings.objects.get()
    assert (row.rfm_recency_days, row.rfm_frequency_visits, row.daily_message_cap, row.quiet_hours_end) == (
        [15, 60, 120, 300],
        [2, 4, 6, 10],
        2,
        dt.time(7, 30),
    )


def test_settings_cannot_be_changed_without_the_permission(console, staff):
    from django.contrib.auth.models import Permission

    staff["analyst"].user_permissions.add(Permission.objects.get(codename="view_outreachsettings"))

    response = console(staff["analyst"]).post(reverse("patients:outreach-settings"), {"daily_message_cap": "9"})
    recompute = console(staff["analyst"]).post(reverse("patients:patient-stats-recompute"))

    assert (response.status_code, recompute.status_code) == (403, 403)
    assert not OutreachSettings.objects.filter(daily_message_cap=9).exists()


def test_recompute_button_queues_a_run(console, staff, population, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from patients.tasks.segments import RUN_KEY

    cache.delete(RUN_KEY)

    with django_capture_on_commit_callbacks() as callbacks:
        response = console(staff["administrator"]).post(reverse("patients:patient-stats-recompute"), follow=True)

    assert len(callbacks) == 1  # the first batch, enqueued once the request's transaction commits
    assert [str(message) for message in response.context["messages"]] == [
        "Recomputing the statistics of every patient in the background."
    ]
    cache.set(RUN_KEY, "running", 60)
    again = console(staff["administrator"]).post(reverse("patients:patient-stats-recompute"), follow=True)
    assert [str(message) for message in again.context["messages"]] == ["A recompute is already running."]
    cache.delete(RUN_KEY)
