"""Console pages of the patient archive, through Django's test client."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from hcrm.models import AuditEntry
from patients.models import BreakGlassGrant, Consent, Patient
from tests.factories import ContactPersonFactory, LabResultFactory, PatientFactory, ProcedureFactory, national_id

pytestmark = pytest.mark.django_db

ZHANG_ID = "11010519491231002X"


@pytest.fixture
def zhang(internal_medicine):
    patient = PatientFactory(
        name="张三", national_id=ZHANG_ID, birth_date=dt.date(1949, 12, 31), sex="female",
        address_detail="建国路88号", employer="北京中医药大学", family_notes="独居", departments=[internal_medicine],
    )  # fmt: skip
    ContactPersonFactory(patient=patient, name="李四", phone="+8613700001111")
    return patient


def _signed_in(client, user):
    client.force_login(user)
    return client


def test_search_page_lists_matches_masked(client, staff, zhang):
    response = _signed_in(client, staff["doctor"]).get("/patients/", {"q": "zhs"})

    html = response.content.decode()
    assert response.status_code == 200
    assert [view.patient for view in response.context["page"].object_list] == [zhang]
    assert "110105********002X" in html
    assert ZHANG_ID not in html
    assert AuditEntry.objects.get(event="search").additional_data == {
        "query": "zhs",
        "kind": "pinyin",
        "patients": [str(zhang.uuid)],
    }


def test_search_page_keeps_to_the_callers_departments(client, staff, zhang):
    response = _signed_in(client, staff["other_doctor"]).get("/patients/", {"q": "张三"})

    assert list(response.context["page"].object_list) == []
    assert "张三" not in response.content.decode().split('<div id="results">')[1]


def test_search_page_needs_the_patient_permission(client, staff):
    assert _signed_in(client, staff["analyst"]).get("/patients/", {"q": "zhs"}).status_code == 403


def test_detail_shows_the_timeline_and_masks_sensitive_values(client, staff, zhang):
    now = timezone.now()
    LabResultFactory(
        patient=zhang,
        panel_name="血糖",
        name="葡萄糖",
        value="7.8",
        abnormal_flag="H",
        observed_at=now - dt.timedelta(1),
    )
    ProcedureFactory(patient=zhang, name="艾灸", performed_at=now - dt.timedelta(2))

    response = _signed_in(client, staff["doctor"]).get(f"/patients/{zhang.uuid}/")

    html = response.content.decode()
    assert response.status_code == 200
    assert [entry.kind for entry in response.context["timeline"]] == ["lab", "procedure"]
    assert '<li class="entry kind-lab flag-warning">' in html
    assert "葡萄糖: 7.8 mmol/L (3.9-6.1) [H]" in html
    assert "艾灸" in html
    for hidden in (ZHANG_ID, "建国路88号", "北京中医药大学", "独居", "李四", "137 0000 1111"):
        assert hidden not in html, hidden
    for masked in ("110105********002X", "建*****", "北******", "李***", "+86137****1111"):
        assert masked in html, masked
    assert AuditEntry.objects.get(event="view").patient_uuid == zhang.uuid


def test_breaking_the_glass_reveals_and_records_the_reason(client, staff, zhang):
    client = _signed_in(client, staff["doctor"])

    response = client.post(f"/patients/{zhang.uuid}/reveal/", {"reason": "核对身份证号码"}, follow=True)

    html = response.content.decode()
    assert response.redirect_chain == [(f"/patients/{zhang.uuid}/", 302)]
    for shown in (ZHANG_ID, "建国路88号", "北京中医药大学", "独居", "李四"):
        assert shown in html, shown
    assert BreakGlassGrant.objects.get().reason == "核对身份证号码"
    entry = AuditEntry.objects.get(event="reveal")
    assert (entry.actor, entry.patient_uuid, entry.reason, entry.client) == (
        staff["doctor"],
        zhang.uuid,
        "核对身份证号码",
        "console",
    )


def test_breaking_the_glass_needs_a_reason(client, staff, zhang):
    response = _signed_in(client, staff["doctor"]).post(f"/patients/{zhang.uuid}/reveal/", {"reason": "看"})

    assert response.status_code == 400
    assert "Ensure this value has at least 4 characters (it has 1)." in response.content.decode()
    assert BreakGlassGrant.objects.count() == 0


def test_patient_outside_the_departments_shows_nothing_but_the_way_in(client, staff, zhang):
    response = _signed_in(client, staff["other_doctor"]).get(f"/patients/{zhang.uuid}/")

    html = response.content.decode()
    assert response.status_code == 403
    assert "This patient is outside your departments" in html
    assert f'action="/patients/{zhang.uuid}/reveal/"' in html
    for private in ("张三", zhang.mrn, "110105", "建国路", "zhangsan", zhang.mobile[-4:]):
        assert private not in html, private
    assert AuditEntry.objects.filter(event="view").count() == 0


def test_breaking_the_glass_opens_a_patient_outside_the_departments(client, staff, zhang):
    client = _signed_in(client, staff["other_doctor"])

    client.post(f"/patients/{zhang.uuid}/reveal/", {"reason": "急诊抢救，患者昏迷"})
    response = client.get(f"/patients/{zhang.uuid}/")

    assert response.status_code == 200
    assert ZHANG_ID in response.content.decode()


def test_registering_a_patient(client, staff):
    form = {
        "name": "王五",
        "sex": "unknown",
        "mobile": "138 1234 5678",
        "source": "walk_in",
        "preferred_language": "zh-hans",
    }

    response = _signed_in(client, staff["doctor"]).post("/patients/new/", form)

    patient = Patient.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/patients/{patient.uuid}/"
    assert (patient.name, patient.mobile, patient.mrn) == ("王五", "+8613812345678", "M00000001")
    assert list(patient.departments.values_list("code", flat=True)) == ["NK"]


def test_registration_errors_are_shown_next_to_their_field(client, staff):
    form = {
        "name": "王五", "sex": "female", "mobile": "12345", "national_id": national_id("110105", dt.date(1980, 5, 6), 13),
        "source": "walk_in", "preferred_language": "zh-hans",
    }  # fmt: skip

    response = _signed_in(client, staff["doctor"]).post("/patients/new/", form)

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "sex": ["The sex does not match the national ID number."],
        "mobile": ["Enter a valid phone number."],
    }
    html = response.content.decode()
    mobile_field = html.split('for="id_mobile"')[1].split("</div>")[0]
    assert '<small class="error" role="alert">Enter a valid phone number.</small>' in mobile_field
    assert Patient.objects.count() == 0


def test_editing_a_patient(client, staff, zhang):
    form = {"name": "张叁", "sex": "female", "mobile": "13900000009", "source": "walk_in", "preferred_language": "en"}

    response = _signed_in(client, staff["nurse"]).post(f"/patients/{zhang.uuid}/edit/", form)

    zhang.refresh_from_db()
    assert response.status_code == 302
    assert (zhang.name, zhang.mobile, zhang.preferred_language) == ("张叁", "+8613900000009", "en")
    assert (zhang.national_id, zhang.address_detail) == (ZHANG_ID, "建国路88号")  # hidden from nurses, untouched


def test_edit_form_hides_sensitive_fields_from_roles_without_them(client, staff, zhang):
    nurse_form = _signed_in(client, staff["nurse"]).get(f"/patients/{zhang.uuid}/edit/").context["form"]
    admin_form = _signed_in(client, staff["administrator"]).get(f"/patients/{zhang.uuid}/edit/").context["form"]

    assert {"national_id", "address_detail", "employer", "income_band", "family_notes"} & set(
        nurse_form.fields
    ) == set()
    assert {"national_id", "address_detail", "employer", "income_band", "family_notes"} <= set(admin_form.fields)


def test_edit_errors_are_shown_next_to_their_field(client, staff, zhang):
    form = {
        "name": "张三",
        "sex": "female",
        "birth_date": "1949-12-30",
        "source": "walk_in",
        "preferred_language": "en",
    }

    response = _signed_in(client, staff["administrator"]).post(
        f"/patients/{zhang.uuid}/edit/", form | {"national_id": ZHANG_ID}
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {"birth_date": ["The birth date does not match the national ID number."]}
    zhang.refresh_from_db()
    assert zhang.birth_date == dt.date(1949, 12, 31)


def test_editing_a_patient_outside_the_departments_is_refused(client, staff, zhang):
    response = _signed_in(client, staff["other_doctor"]).post(f"/patients/{zhang.uuid}/edit/", {"name": "改名"})

    assert response.status_code == 403
    zhang.refresh_from_db()
    assert zhang.name == "张三"


def test_consent_toggle(client, staff, zhang):
    client = _signed_in(client, staff["agent"])

    granted = client.post(
        f"/patients/{zhang.uuid}/consent/", {"purpose": "marketing", "channel": "sms", "granted": "on"}
    )
    assert list(Consent.objects.values_list("purpose", "channel", "granted")) == [("marketing", "sms", True)]
    client.post(f"/patients/{zhang.uuid}/consent/", {"purpose": "marketing", "channel": "sms"})

    assert granted.status_code == 302
    assert granted["Location"] == f"/patients/{zhang.uuid}/#consents"
    assert list(Consent.objects.values_list("purpose", "channel", "granted", "note")) == [
        ("marketing", "sms", False, "Changed in the console")
    ]


def test_consent_toggle_refuses_bad_choices_and_other_roles(client, staff, zhang):
    bad = _signed_in(client, staff["agent"]).post(
        f"/patients/{zhang.uuid}/consent/", {"purpose": "x", "channel": "sms"}
    )
    denied = _signed_in(client, staff["analyst"]).post(
        f"/patients/{zhang.uuid}/consent/", {"purpose": "marketing", "channel": "sms", "granted": "on"}
    )

    assert (bad.status_code, denied.status_code) == (302, 403)
    assert Consent.objects.count() == 0


@pytest.mark.parametrize(
    ("role", "status"),
    [("administrator", 200), ("department_head", 403), ("doctor", 403), ("agent", 403), ("analyst", 403)],
)
def test_access_history_only_for_administrators(client, staff, zhang, role, status):
    client.force_login(staff["doctor"])
    client.get(f"/patients/{zhang.uuid}/")

    response = _signed_in(client, staff[role]).get(f"/patients/{zhang.uuid}/access/")

    assert response.status_code == status
    if status == 200:
        assert [(entry.event, entry.actor) for entry in response.context["page"]] == [
            ("view", staff["administrator"]),  # reading the access history is itself recorded
            ("view", staff["doctor"]),
            ("create", None),
            ("create", None),
            ("create", None),
        ]


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_console_export_is_masked(client, staff, zhang, internal_medicine, file_format):
    PatientFactory(name="李四", departments=[internal_medicine])

    response = _signed_in(client, staff["doctor"]).get(f"/patients/export.{file_format}", {"q": "zhs"})

    if file_format == "csv":
        rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    else:
        rows = [list(row) for row in load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True)]
    assert response["Content-Disposition"] == f'attachment; filename="patients.{file_format}"'
    assert [row[1] for row in rows[1:]] == ["张三"]
    assert (rows[1][5], rows[1][9], rows[1][10]) == ("110105********002X", "建*****", "北******")
    assert AuditEntry.objects.get(event="export").additional_data == {"query": "zhs", "format": file_format, "rows": 1}


def test_console_export_without_a_search_goes_back_to_search(client, staff):
    response = _signed_in(client, staff["doctor"]).get("/patients/export.csv")

    assert (response.status_code, response["Location"]) == (302, "/patients/")


def test_console_export_of_an_unknown_format_is_404(client, staff):
    assert _signed_in(client, staff["doctor"]).get("/patients/export.pdf", {"q": ""}).status_code == 404
