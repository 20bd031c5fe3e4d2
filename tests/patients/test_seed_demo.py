"""`manage.py seed_demo`: a valid, deterministic, idempotent demo hospital."""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Max, Q

from hcrm.models import Counter, Department, StaffDepartment, User
from patients import models
from patients.demo import data, load
from patients.services import mrn_next
from patients.validators import normalize_mobile, normalize_phone, validate_national_id, validate_national_id_matches

PATIENTS = 300
ANCHOR = dt.datetime.combine(data.ANCHOR, dt.time(), tzinfo=data.HOSPITAL_TZ)
TABLES = (
    models.Patient, models.PatientIdentifier, models.ContactPerson, models.Consent, models.Patient.tags.through,
    models.PatientDepartment, models.ClinicalHistory, models.Allergy, models.Encounter, models.Diagnosis,
    models.Procedure, models.LabResult, models.MedicationOrder, models.Charge, User, StaffDepartment, Department,
    models.Tag,
)  # fmt: skip


@pytest.fixture(autouse=True)
def archive_alone(monkeypatch):
    """The generated archive on its own: the follow-ups part of the demo adds recent visits after the anchor."""
    import followups.demo

    monkeypatch.setattr(
        load, "_extensions", [e for e in load._extensions if e is not followups.demo.followups_demo_ensure]
    )


def seed(patients: int = PATIENTS, seed: int = 7, **options) -> str:
    out = io.StringIO()
    call_command("seed_demo", patients=patients, seed=seed, no_progress=True, stdout=out, **options)
    return out.getvalue()


def snapshot() -> dict[str, tuple[int, object]]:
    """Row count and newest update of every table the demo writes."""
    result = {}
    for model in TABLES:
        newest = model.objects.aggregate(newest=Max("updated_at"))["newest"] if hasattr(model, "updated_at") else None
        result[model._meta.label] = (model.objects.count(), newest)
    return result


def patient_facts() -> list[tuple]:
    """What a run wrote, without the primary keys (which depend on what the database held before)."""
    patients = models.Patient.objects.order_by("mrn")
    encounters = models.Encounter.objects.order_by("external_id")
    return [
        *patients.values_list("mrn", "uuid", "name", "national_id", "mobile", "birth_date", "updated_at"),
        *encounters.values_list(
            "external_id", "uuid", "kind", "started_at", "ended_at", "doctor_name", "chief_complaint"
        ),
        *models.LabResult.objects.order_by("uuid").values_list("uuid", "encounter__external_id", "code", "value"),
        *models.MedicationOrder.objects.order_by("uuid").values_list("uuid", "name", "herbs", "status"),
        *models.Charge.objects.order_by("uuid").values_list("uuid", "category", "amount", "charged_at"),
    ]


@pytest.mark.django_db
def test_seed_demo_creates_departments_staff_and_one_login_per_role():
    output = seed()

    assert sorted(Department.objects.values_list("code", flat=True)) == sorted(d.code for d in data.DEPARTMENTS)
    assert Department.objects.get(code="ZWB").kind == "preventive"
    for login in data.DEMO_LOGINS:
        user = User.objects.get(username=login.username)
        assert user.check_password("hcrm-demo-2026")
        assert user.role_codes == [login.role]
        assert re.search(rf"^\s+{login.username}\s+{login.role}\s+hcrm-demo-2026$", output, re.MULTILINE)
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.is_superuser
    head = StaffDepartment.objects.get(user__username="head")
    assert (head.department.code, head.is_head) == ("NK", True)
    doctors = User.objects.filter(groups__name="doctor")
    assert doctors.filter(is_renowned_expert=True).count() == len(data.RENOWNED_DEPARTMENTS)
    per_department = Department.objects.annotate(doctors=Count("staff", filter=Q(staff__groups__name="doctor")))
    assert sorted(department.doctors for department in per_department)[::11] == [3, 6]
    assert not User.objects.get(username="nk.d01").has_usable_password()


@pytest.mark.django_db
def test_national_ids_are_valid_unique_and_agree_with_birth_date_sex_and_district():
    seed()

    patients = list(models.Patient.objects.values_list("national_id", "birth_date", "sex", "region_code"))
    assert len(patients) == PATIENTS
    for national_id, birth_date, sex, region_code in patients:
        validate_national_id(national_id)
        assert validate_national_id_matches(national_id, birth_date=birth_date, sex=sex) == {}
        assert national_id[:6] == region_code
    assert len({national_id for national_id, *_ in patients}) == PATIENTS


@pytest.mark.django_db
def test_phone_numbers_are_valid_e164_and_mobiles_unique():
    seed()

    mobiles = list(models.Patient.objects.values_list("mobile", flat=True))
    assert all(normalize_mobile(mobile) == mobile for mobile in mobiles)
    assert len(set(mobiles)) == len(mobiles)
    contacts = list(models.ContactPerson.objects.values_list("phone", flat=True))
    assert contacts and all(normalize_mobile(phone) == phone for phone in contacts)
    assert not set(contacts) & set(mobiles)
    landlines = [phone for phone in models.Patient.objects.values_list("phone", flat=True) if phone]
    assert all(normalize_phone(phone) == phone for phone in landlines)
    staff_phones = list(User.objects.exclude(phone="").values_list("phone", flat=True))
    assert all(normalize_mobile(phone) == phone for phone in staff_phones)


@pytest.mark.django_db
def test_lab_flags_agree_with_value_and_reference_range():
    seed()

    results = list(models.LabResult.objects.values_list("value", "value_numeric", "reference_range", "abnormal_flag"))
    assert len(results) > PATIENTS
    for value, numeric, reference_range, flag in results:
        assert float(value) == numeric
        low, high = re.fullmatch(r"(?:([\d.]+)-|<)([\d.]+)", reference_range).groups()
        expected = "H" if numeric > float(high) else "L" if low and numeric < float(low) else "N"
        assert flag == expected, (value, reference_range, flag)
    assert {flag for *_, flag in results} >= {"N", "H"}


@pytest.mark.django_db
def test_dates_are_ordered_and_never_after_the_anchor():
    seed()

    for encounter in models.Encounter.objects.select_related("patient"):
        assert encounter.started_at <= encounter.ended_at < ANCHOR
        assert encounter.created_at == encounter.started_at
        assert encounter.patient.birth_date < encounter.started_at.astimezone(data.HOSPITAL_TZ).date()
        if encounter.patient.deceased_date:
            assert encounter.ended_at.astimezone(data.HOSPITAL_TZ).date() < encounter.patient.deceased_date
    for patient in models.Patient.objects.filter(is_deceased=True):
        assert patient.birth_date < patient.deceased_date < data.ANCHOR
    for model in (models.Patient, models.Diagnosis, models.LabResult, models.MedicationOrder, models.Charge):
        newest = model.objects.aggregate(newest=Max("updated_at"))["newest"]
        assert newest < ANCHOR, model


@pytest.mark.django_db
def test_encounters_are_seen_by_doctors_of_their_department_and_link_the_patient_to_it():
    seed()

    memberships = set(StaffDepartment.objects.values_list("user_id", "department_id"))
    links = set(models.PatientDepartment.objects.values_list("patient_id", "department_id"))
    visited = set(models.Encounter.objects.values_list("patient_id", "department_id"))
    assert links == visited
    for doctor_id, department_id, doctor_name in models.Encounter.objects.values_list(
        "doctor_id", "department_id", "doctor__full_name"
    ):
        assert (doctor_id, department_id) in memberships
        assert doctor_name
    assert models.Encounter.objects.filter(kind="inpatient").exclude(ward="").exists()


@pytest.mark.django_db
def test_every_encounter_has_one_primary_western_diagnosis_and_coded_treatment():
    seed()

    primaries = models.Diagnosis.objects.filter(is_primary=True)
    assert primaries.count() == models.Encounter.objects.count()
    assert set(primaries.values_list("system", flat=True)) == {"icd10"}
    assert models.Diagnosis.objects.filter(system="tcm_syndrome", code__startswith="ZYV").exists()
    decoction = models.MedicationOrder.objects.filter(kind="decoction").first()
    assert decoction.herbs and {"name", "dose", "unit"} <= set(decoction.herbs[0])
    assert decoction.decoction_instructions.startswith("每日1剂")
    assert models.Procedure.objects.filter(system="tcm_technique").exists()
    for amount in models.Charge.objects.values_list("amount", flat=True):
        assert amount > 0 and amount == amount.quantize(Decimal("0.01"))
    assert models.Encounter.objects.filter(external_id__isnull=True).count() == 0


@pytest.mark.django_db
def test_running_again_with_the_same_arguments_changes_nothing():
    seed()
    before = snapshot()

    output = seed()

    assert snapshot() == before
    assert f"{PATIENTS:,} demo patients, 0 added" in output


@pytest.mark.django_db
def test_more_patients_resume_after_the_last_and_match_a_single_run():
    seed(patients=PATIENTS)
    single_run = patient_facts()
    models.Patient.objects.all().delete()

    seed(patients=120, batch_size=50)
    output = seed(patients=PATIENTS, batch_size=70)

    assert patient_facts() == single_run
    assert f"{PATIENTS:,} demo patients, {PATIENTS - 120:,} added" in output


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_first_patient():
    seed(patients=3)

    first = models.Patient.objects.get(mrn="M00000001")

    assert (first.name, first.national_id, first.mobile, first.birth_date) == (
        "王月华",
        "650102197501068806",
        "+8615186284811",
        dt.date(1975, 1, 6),
    )


@pytest.mark.django_db
def test_manual_registration_continues_after_the_demo_mrns():
    seed(patients=50)

    assert Counter.objects.get(name="mrn").value == 50
    assert mrn_next() == "M00000051"


@pytest.mark.django_db
def test_a_registered_patient_holding_a_demo_mrn_stops_the_load():
    seed(patients=50)
    models.Patient.objects.create(mrn="M00000051", name="张三")

    with pytest.raises(CommandError, match="M00000051"):
        seed(patients=60)

    assert models.Patient.objects.count() == 51


def demo_schema() -> set[str]:
    """Names of the indexes and foreign keys on the demo tables."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename LIKE 'patients\\_%%' UNION "
            "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conrelid::regclass::text LIKE 'patients\\_%%'"
        )
        return {name for (name,) in cursor.fetchall()}


on_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")


@pytest.mark.postgres
@on_postgres
@pytest.mark.django_db
def test_a_bulk_load_rebuilds_every_index_and_foreign_key_it_dropped():
    before = demo_schema()

    result = load.seed_demo(
        patients=60, seed=7, batch_size=25, progress=lambda done, total: lambda count: None, bulk_minimum=1
    )

    assert result.bulk
    assert demo_schema() == before
    assert models.Encounter.objects.filter(patient__mrn="M00000060").exists()


@pytest.mark.postgres
@on_postgres
@pytest.mark.django_db
def test_indexes_left_out_by_an_interrupted_bulk_load_are_rebuilt_by_the_next_run():
    seed(patients=20)
    before = demo_schema()
    with connection.cursor() as cursor:
        cursor.execute('DROP INDEX "patient_mobile"')
        cursor.execute('DROP INDEX "diagnosis_code_system"')

    output = seed(patients=20)

    assert demo_schema() == before
    assert "2 indexes left by an interrupted load rebuilt" in output
