"""Schedule, Slot and Appointment on the FHIR facade: mapping, search, paging, permissions, audit, $everything."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from appointments.models import Appointment, Schedule
from appointments.services import BookingDoor, appointment_book, appointment_hold
from hcrm.models import AuditEntry
from tests.appointments.conftest import booking_templates  # noqa: F401  (autouse: the booking message templates)
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory
from tests.integrations.fhir.conftest import FhirClient

pytestmark = pytest.mark.django_db

ONLINE = BookingDoor(channel="online")
DAY = timezone.localdate() + dt.timedelta(days=3)


def local(day: dt.date, hour: int, minute: int = 0) -> str:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute))).isoformat()


def ids(response) -> list[str]:
    return [entry["resource"]["id"] for entry in response.json().get("entry", [])]


@pytest.fixture
def doctor(staff):
    doctor = staff["doctor"]
    doctor.full_name = "李时珍"
    doctor.save()
    return doctor


@pytest.fixture
def clinic(doctor, internal_medicine):
    """Tomorrow-plus-three, 08:00–08:30: two slots of one online place each."""
    schedule = session(doctor=doctor, department=internal_medicine, date=DAY, slots=2, online=1)
    schedule.clinic_level = "expert"
    schedule.save()
    return schedule


@pytest.fixture
def booking(clinic, patient):
    return appointment_book(patient=patient, slot=clinic.slots.first(), door=ONLINE)


def allowed(user, *codenames: str):
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="appointments", codename__in=codenames)
    )
    return FhirClient().as_user(user)


# --- Mapping ---------------------------------------------------------------------------------------------


def test_read_a_schedule(reader, clinic, doctor):
    response = reader.get_fhir(f"/fhir/R4/Schedule/{clinic.uuid}")

    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["planningHorizon"] == {"start": local(DAY, 8), "end": local(DAY, 8, 30)}
    assert body["actor"] == [
        {"reference": f"Practitioner/{doctor.uuid}", "type": "Practitioner", "display": "李时珍"},
        {
            "type": "HealthcareService",
            "identifier": {"system": "urn:hcrm:CodeSystem:department", "value": "NK"},
            "display": "内科",
        },
        {"type": "Location", "display": "门诊楼 3 楼 301"},
    ]
    assert body["serviceType"][0]["coding"][0] == {
        "system": "urn:hcrm:CodeSystem:clinic-level",
        "code": "expert",
        "display": "Senior TCM expert clinic",
    }
    assert body["specialty"][0]["coding"][0] == {
        "system": "urn:hcrm:CodeSystem:department",
        "code": "NK",
        "display": "内科",
    }


def test_slots_are_free_until_every_place_is_taken_and_unavailable_when_the_session_stops(reader, clinic, booking):
    first, second = clinic.slots.all()

    busy = reader.get_fhir(f"/fhir/R4/Slot/{first.uuid}").json()
    free = reader.get_fhir(f"/fhir/R4/Slot/{second.uuid}").json()
    Schedule.objects.filter(pk=clinic.pk).update(status="stopped", stopped_reason="医生出差")
    stopped = reader.get_fhir(f"/fhir/R4/Slot/{second.uuid}").json()
    stopped_schedule = reader.get_fhir(f"/fhir/R4/Schedule/{clinic.uuid}").json()

    assert busy == {
        "resourceType": "Slot",
        "id": str(first.uuid),
        "meta": busy["meta"],
        "schedule": {"reference": f"Schedule/{clinic.uuid}"},
        "status": "busy",
        "start": local(DAY, 8),
        "end": local(DAY, 8, 15),
        "overbooked": False,
    }
    assert (free["status"], stopped["status"]) == ("free", "busy-unavailable")
    assert (stopped_schedule["active"], stopped_schedule["comment"]) == (False, "医生出差")


def test_read_an_appointment(reader, clinic, booking, patient, doctor):
    response = reader.get_fhir(f"/fhir/R4/Appointment/{booking.uuid}")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "booked"
    assert body["identifier"] == [{"type": {"text": "visit number"}, "system": "urn:hcrm:visit-number", "value": "1"}]
    assert (body["start"], body["end"]) == (local(DAY, 8), local(DAY, 8, 15))
    assert body["slot"] == [{"reference": f"Slot/{clinic.slots.first().uuid}"}]
    assert body["participant"] == [
        {"actor": {"reference": f"Patient/{patient.uuid}"}, "required": "required", "status": "accepted"},
        {
            "actor": {"reference": f"Practitioner/{doctor.uuid}", "type": "Practitioner", "display": "李时珍"},
            "required": "required",
            "status": "accepted",
        },
    ]


@pytest.mark.parametrize(
    ("status", "fhir_status"),
    [
        ("booked", "booked"),
        ("checked_in", "arrived"),
        ("no_show", "noshow"),
        ("cancelled", "cancelled"),
        ("expired", "cancelled"),
    ],
)
def test_appointment_status_map(reader, booking, status, fhir_status):
    Appointment.objects.filter(pk=booking.pk).update(status=status)

    body = reader.get_fhir(f"/fhir/R4/Appointment/{booking.uuid}").json()

    assert body["status"] == fhir_status


def test_a_hold_is_pending_without_a_visit_number(reader, clinic, patient):
    held = appointment_hold(patient=patient, slot=clinic.slots.first(), door=ONLINE)

    body = reader.get_fhir(f"/fhir/R4/Appointment/{held.uuid}").json()

    assert (body["status"], "identifier" in body) == ("pending", False)
    assert [participant["status"] for participant in body["participant"]] == ["tentative", "tentative"]


def test_outputs_validate_as_fhir_r4(reader, clinic, booking):
    from fhir.resources.R4B import get_fhir_model_class

    for path in (
        f"Schedule/{clinic.uuid}",
        f"Slot/{clinic.slots.first().uuid}",
        f"Appointment/{booking.uuid}",
    ):
        body = reader.get_fhir(f"/fhir/R4/{path}").json()
        get_fhir_model_class(body["resourceType"]).model_validate(body)
    bundle = reader.get_fhir(f"/fhir/R4/Slot?schedule={clinic.uuid}").json()
    get_fhir_model_class("Bundle").model_validate(bundle)


# --- Search -----------------------------------------------------------------------------------------------


@pytest.fixture
def timetable(clinic, doctor, internal_medicine, acupuncture, staff):
    """The clinic of the doctor, a stopped one two days later, and another doctor's the day after."""
    later = session(doctor=doctor, department=internal_medicine, date=DAY + dt.timedelta(days=2), slots=1)
    Schedule.objects.filter(pk=later.pk).update(status="stopped")
    other = session(doctor=staff["other_doctor"], department=acupuncture, date=DAY + dt.timedelta(days=1), slots=1)
    return {"clinic": clinic, "later": later, "other": other}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=Practitioner/{doctor}&_sort=_lastUpdated", ["clinic", "later"]),
        ("actor={doctor}&active=true", ["clinic"]),
        ("active=false", ["later"]),
        ("date={day}", ["clinic"]),
        ("date=ge{next_day}&_sort=_lastUpdated", ["later", "other"]),
        ("date=lt{next_day}", ["clinic"]),
    ],
)
def test_schedule_search(reader, timetable, doctor, query, expected):
    url = query.format(doctor=doctor.uuid, day=DAY, next_day=DAY + dt.timedelta(days=1))

    response = reader.get_fhir(f"/fhir/R4/Schedule?{url}")

    assert response.status_code == 200, response.content
    assert ids(response) == [str(timetable[name].uuid) for name in expected]


def test_slot_search_by_schedule_start_and_status(reader, timetable, booking):
    clinic, later = timetable["clinic"], timetable["later"]
    first, second = clinic.slots.all()

    def found(query: str) -> list[str]:
        response = reader.get_fhir(f"/fhir/R4/Slot?{query}&_sort=_lastUpdated")
        assert response.status_code == 200, response.content
        return ids(response)

    assert found(f"schedule=Schedule/{clinic.uuid}") == [str(second.uuid), str(first.uuid)]
    assert found(f"schedule={clinic.uuid}&status=free") == [str(second.uuid)]
    assert found(f"schedule={clinic.uuid}&status=busy") == [str(first.uuid)]
    assert found("status=busy-unavailable") == [str(later.slots.get().uuid)]
    assert found(f"schedule={clinic.uuid}&start=ge{DAY}T08:15:00") == [str(second.uuid)]
    assert found(f"schedule={clinic.uuid},{later.uuid}&start=lt{DAY}T08:15:00") == [str(first.uuid)]


def test_appointment_search(reader, clinic, booking, patient, doctor, staff):
    other = PatientFactory()
    second = appointment_book(patient=other, slot=clinic.slots.last(), door=ONLINE)
    Appointment.objects.filter(pk=second.pk).update(status="checked_in")

    def found(query: str) -> list[str]:
        response = reader.get_fhir(f"/fhir/R4/Appointment?{query}&_sort=_lastUpdated")
        assert response.status_code == 200, response.content
        return ids(response)

    assert found(f"patient=Patient/{patient.uuid}") == [str(booking.uuid)]
    assert found("status=arrived") == [str(second.uuid)]
    assert found("status=booked,arrived") == [str(booking.uuid), str(second.uuid)]
    assert found(f"practitioner=Practitioner/{doctor.uuid}") == [str(booking.uuid), str(second.uuid)]
    assert found(f"practitioner={staff['other_doctor'].uuid}") == []
    assert found(f"date={DAY}&slot=Slot/{clinic.slots.last().uuid}") == [str(second.uuid)]
    assert found(f"date=gt{DAY}") == []


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("Slot?status=closed", "status"),
        ("Slot?schedule=Patient/00000000-0000-4000-8000-000000000000", "schedule"),
        ("Slot?start=tomorrow", "start"),
        ("Schedule?active=maybe", "active"),
        ("Schedule?actor=Practitioner/dr-li", "actor"),
        ("Appointment?status=fulfilled", "status"),
        ("Appointment?practitioner=Patient/00000000-0000-4000-8000-000000000000", "practitioner"),
        ("Appointment?identifier=1", "identifier"),
        ("Slot?_count=many", "_count"),
    ],
)
def test_bad_search_parameters_are_operation_outcomes(reader, clinic, query, parameter):
    response = reader.get_fhir(f"/fhir/R4/{query}")

    body = response.json()
    assert (response.status_code, body["resourceType"]) == (400, "OperationOutcome")
    assert body["issue"][0]["expression"] == [parameter]
    assert body["issue"][0]["severity"] == "error"


def test_slot_paging_links(reader, doctor, internal_medicine):
    schedule = session(doctor=doctor, department=internal_medicine, date=DAY, slots=3)
    slots = list(schedule.slots.order_by("updated_at", "pk"))

    first = reader.get_fhir(f"/fhir/R4/Slot?schedule={schedule.uuid}&_count=2&_sort=_lastUpdated").json()
    links = {link["relation"]: link["url"] for link in first["link"]}
    second = reader.get_fhir(links["next"]).json()

    assert links["next"] == (
        f"http://testserver/fhir/R4/Slot?schedule={schedule.uuid}&_count=2&_sort=_lastUpdated&_offset=2"
    )
    assert [entry["resource"]["id"] for entry in first["entry"] + second["entry"]] == [str(s.uuid) for s in slots]
    assert {link["relation"] for link in second["link"]} == {"self", "previous"}


def test_slot_and_appointment_searches_pin_their_query_count(
    reader, doctor, internal_medicine, django_assert_num_queries
):
    schedule = session(doctor=doctor, department=internal_medicine, date=DAY, slots=12)
    for slot in schedule.slots.all():
        appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)
    reader.get_fhir("/fhir/R4/Slot?_count=2")
    reader.get_fhir("/fhir/R4/Appointment?_count=2")

    with django_assert_num_queries(3):
        small = reader.get_fhir("/fhir/R4/Slot?_count=2")
    with django_assert_num_queries(3):
        large = reader.get_fhir("/fhir/R4/Slot?_count=12")
    with django_assert_num_queries(3):
        appointments = reader.get_fhir("/fhir/R4/Appointment?_count=12")

    assert (len(ids(small)), len(ids(large)), len(ids(appointments))) == (2, 12, 12)


# --- Who may read -----------------------------------------------------------------------------------------


def _views() -> int:
    return AuditEntry.objects.filter(event__in=["view", "search"]).count()


def test_appointment_reads_permission_matrix(fhir, staff, booking):
    url = f"/fhir/R4/Appointment/{booking.uuid}"

    anonymous = fhir.get_fhir(url)
    wrong_role = FhirClient().as_user(staff["analyst"]).get_fhir(url)
    clerk = UserFactory(username="clerk", roles=[], departments=list(staff["doctor"].departments.all()))
    without_permission = FhirClient().as_user(clerk).get_fhir(url)
    assert _views() == 0
    other_department = allowed(staff["other_doctor"], "view_appointment")
    not_visible = other_department.get_fhir(url)
    searched_elsewhere = other_department.get_fhir("/fhir/R4/Appointment")
    doctor = allowed(staff["doctor"], "view_appointment")
    read = doctor.get_fhir(url)
    searched = doctor.get_fhir("/fhir/R4/Appointment")

    assert (anonymous.status_code, anonymous.json()["issue"][0]["code"]) == (401, "login")
    assert (wrong_role.status_code, wrong_role.json()["issue"][0]["code"]) == (403, "forbidden")
    assert without_permission.status_code == 403
    assert (not_visible.status_code, not_visible.json()["issue"][0]["code"]) == (404, "not-found")
    assert "entry" not in searched_elsewhere.json()
    assert (read.status_code, read.json()["id"]) == (200, str(booking.uuid))
    assert ids(searched) == [str(booking.uuid)]


def test_schedule_reads_need_the_permission_but_not_the_department(fhir, staff, clinic):
    url = f"/fhir/R4/Schedule/{clinic.uuid}"

    anonymous = fhir.get_fhir(url)
    wrong_role = FhirClient().as_user(staff["analyst"]).get_fhir(url)
    slot_without_permission = allowed(UserFactory(username="clerk", roles=[]), "view_schedule").get_fhir(
        "/fhir/R4/Slot"
    )
    assert _views() == 0
    other_department = allowed(staff["other_doctor"], "view_schedule", "view_slot")
    read = other_department.get_fhir(url)
    slots = other_department.get_fhir(f"/fhir/R4/Slot?schedule={clinic.uuid}")

    assert anonymous.status_code == 401
    assert wrong_role.status_code == 403
    assert slot_without_permission.status_code == 403
    assert (read.status_code, read.json()["id"]) == (200, str(clinic.uuid))
    assert len(ids(slots)) == 2


def test_appointment_reads_are_audited_under_the_patient(reader, booking, patient, clinic):
    reader.get_fhir(f"/fhir/R4/Appointment/{booking.uuid}")
    reader.get_fhir(f"/fhir/R4/Appointment?patient={patient.uuid}")
    reader.get_fhir(f"/fhir/R4/Slot?schedule={clinic.uuid}")

    view, search, slots = AuditEntry.objects.filter(event__in=["view", "search"]).order_by("pk")
    assert (view.event, view.patient_uuid, view.additional_data) == ("view", patient.uuid, {"fhir": "Appointment"})
    assert (search.additional_data["fhir"], search.additional_data["patients"]) == ("Appointment", [str(patient.uuid)])
    assert (slots.additional_data["fhir"], slots.additional_data["patients"]) == ("Slot", [])


def test_everything_includes_the_patients_appointments(reader, booking, patient, clinic):
    cancelled_elsewhere = session(
        doctor=UserFactory(full_name="张仲景"), department=clinic.department, date=DAY, start=dt.time(14, 0), slots=1
    )
    other = appointment_book(patient=patient, slot=cancelled_elsewhere.slots.get(), door=ONLINE)
    Appointment.objects.filter(pk=other.pk).update(status="cancelled")

    body = reader.get_fhir(f"/fhir/R4/Patient/{patient.uuid}/$everything").json()

    assert body["total"] == 3
    assert [(entry["resource"]["resourceType"], entry["resource"]["status"]) for entry in body["entry"][1:]] == [
        ("Appointment", "booked"),
        ("Appointment", "cancelled"),
    ]
    assert body["entry"][1]["fullUrl"] == f"http://testserver/fhir/R4/Appointment/{booking.uuid}"
