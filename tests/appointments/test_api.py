"""/api/v1/schedules/, /api/v1/appointments/ and /api/v1/waitlist/: permissions, filters, refusals, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from appointments.models import Appointment, Slot, WaitlistEntry
from appointments.selectors import booking_policy
from appointments.services import BookingDoor, appointment_book, waitlist_join
from hcrm.models import AuditEntry, IntegrationKey
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

PHONE = BookingDoor(channel="phone")


@pytest.fixture
def clinic(staff, internal_medicine):
    """Internal medicine, in three days: two slots, each with one place online, by phone and at the window."""
    return session(doctor=staff["doctor"], department=internal_medicine, slots=2, online=1, phone=1, window=1)


@pytest.fixture
def other_clinic(staff, acupuncture):
    return session(doctor=staff["other_doctor"], department=acupuncture, slots=1, online=1, phone=1)


@pytest.fixture
def booking(clinic, patient):
    """The internal-medicine patient booked by phone into the first slot (visit number 1)."""
    return appointment_book(patient=patient, slot=clinic.slots.order_by("starts_at")[0], door=PHONE)


@pytest.fixture
def acupuncture_nurse(acupuncture):
    return UserFactory(username="acupuncture_nurse", roles=["nurse"], departments=[acupuncture])


def _key(*scopes):
    _key, secret = IntegrationKey.objects.create_key(name="小程序", scopes=list(scopes))
    return secret


def _snapshot():
    return (
        list(Appointment.objects.order_by("pk").values()),
        list(Slot.objects.order_by("pk").values("taken_online", "taken_phone", "taken_window")),
        list(WaitlistEntry.objects.order_by("pk").values()),
    )


def _writes(booking, clinic, patient):
    """Every write of the API: (url, payload)."""
    second = clinic.slots.order_by("starts_at")[1]
    return [
        ("/api/v1/appointments/", {"patient": str(patient.uuid), "slot": str(second.uuid), "channel": "phone"}),
        (f"/api/v1/appointments/{booking.uuid}/confirm/", {}),
        (f"/api/v1/appointments/{booking.uuid}/cancel/", {"reason": "患者来电取消"}),
        (f"/api/v1/appointments/{booking.uuid}/reschedule/", {"slot": str(second.uuid)}),
        (f"/api/v1/appointments/{booking.uuid}/check-in/", {}),
        ("/api/v1/waitlist/", {"patient": str(patient.uuid), "schedule": str(clinic.uuid), "channel": "phone"}),
    ]


def _reads(booking, clinic):
    return [
        "/api/v1/schedules/",
        f"/api/v1/schedules/{clinic.uuid}/",
        "/api/v1/appointments/",
        f"/api/v1/appointments/{booking.uuid}/",
        "/api/v1/waitlist/",
    ]


# --- Permission matrix ----------------------------------------------------------------------------------


def test_anonymous_callers_get_401_and_change_nothing(api, booking, clinic, patient):
    before = _snapshot()

    reads = [api.get(url).status_code for url in _reads(booking, clinic)]
    writes = [api.post(url, data, format="json").status_code for url, data in _writes(booking, clinic, patient)]

    assert reads == [401] * 5
    assert writes == [401] * 6
    assert _snapshot() == before


def test_analysts_get_403_and_change_nothing(api, staff, booking, clinic, patient):
    client = api.as_user(staff["analyst"])
    before = _snapshot()

    reads = [client.get(url).status_code for url in _reads(booking, clinic)]
    writes = [client.post(url, data, format="json").status_code for url, data in _writes(booking, clinic, patient)]

    assert reads == [403] * 5
    assert writes == [403] * 6
    assert _snapshot() == before


def test_doctors_read_but_neither_book_nor_cancel_and_check_in_only_on_the_day(api, staff, booking, clinic, patient):
    client = api.as_user(staff["doctor"])
    before = _snapshot()

    reads = [client.get(url).status_code for url in _reads(booking, clinic)]
    created, confirmed, cancelled, moved, checked_in, joined = [
        client.post(url, data, format="json") for url, data in _writes(booking, clinic, patient)
    ]

    assert reads == [200] * 5
    assert [r.status_code for r in (created, confirmed, cancelled, moved, joined)] == [403] * 5
    # a doctor may check in, but the appointment is in three days
    assert checked_in.json()["errors"] == [
        {"field": "appointment", "code": "not_today", "message": "Patients check in on the day of their appointment."}
    ]
    assert _snapshot() == before


def test_another_departments_staff_see_no_booking_and_cannot_touch_one(
    api, staff, booking, clinic, patient, acupuncture_nurse
):
    client = api.as_user(acupuncture_nurse)
    before = _snapshot()

    listed = client.get("/api/v1/appointments/")
    retrieved = client.get(f"/api/v1/appointments/{booking.uuid}/")
    waitlist = client.get("/api/v1/waitlist/")
    created, confirmed, cancelled, moved, checked_in, joined = [
        client.post(url, data, format="json") for url, data in _writes(booking, clinic, patient)
    ]

    assert (listed.json()["results"], waitlist.json()["results"]) == ([], [])
    assert [r.status_code for r in (retrieved, confirmed, cancelled, moved, checked_in)] == [404] * 5
    # the patient and the session of another department are answered like ones that do not exist
    assert [error["field"] for error in created.json()["errors"]] == ["patient", "slot"]
    assert [error["field"] for error in joined.json()["errors"]] == ["schedule", "patient"]
    assert _snapshot() == before


def test_sessions_are_readable_by_every_department(api, clinic, acupuncture_nurse):
    response = api.as_user(acupuncture_nurse).get("/api/v1/schedules/")

    assert [row["id"] for row in response.json()["results"]] == [str(clinic.uuid)]


def test_the_api_does_not_change_or_delete_bookings(api, staff, booking):
    client = api.as_user(staff["administrator"])
    before = _snapshot()
    url = f"/api/v1/appointments/{booking.uuid}/"

    statuses = [
        client.patch(url, {"status": "cancelled"}, format="json").status_code,
        client.put(url, {}, format="json").status_code,
        client.delete(url).status_code,
        client.post("/api/v1/schedules/", {}, format="json").status_code,
    ]

    assert statuses == [405, 405, 405, 405]
    assert _snapshot() == before


def test_an_integration_key_reads_with_appointments_read_and_books_online_with_write(api, clinic, patient):
    reader = api.__class__()
    reader.credentials(HTTP_AUTHORIZATION=f"Api-Key {_key('appointments.read')}")
    slot = clinic.slots.order_by("starts_at")[0]
    payload = {"patient": str(patient.uuid), "slot": str(slot.uuid), "channel": "online"}

    refused = reader.post("/api/v1/appointments/", payload, format="json")
    listed = reader.get("/api/v1/schedules/")

    assert (refused.status_code, listed.status_code) == (403, 200)
    assert Appointment.objects.count() == 0

    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {_key('appointments.write')}")
    booked = api.post("/api/v1/appointments/", payload, format="json")

    assert booked.status_code == 201
    assert (booked.json()["channel"], booked.json()["pool"], booked.json()["visit_number"]) == ("online", "online", 1)
    assert Appointment.objects.get().booked_by is None


def test_integration_keys_of_other_scopes_have_no_access(api, booking, clinic, patient):
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {_key('patients.read', 'patients.write')}")
    before = _snapshot()

    reads = [api.get(url).status_code for url in _reads(booking, clinic)]
    writes = [api.post(url, data, format="json").status_code for url, data in _writes(booking, clinic, patient)]

    assert reads == [403] * 5
    assert writes == [403] * 6
    assert _snapshot() == before


# --- Schedules ------------------------------------------------------------------------------------------


def test_a_session_lists_its_slots_with_the_places_free_per_channel(api, staff, clinic, booking, internal_medicine):
    response = api.as_user(staff["agent"]).get(f"/api/v1/schedules/{clinic.uuid}/")

    body = response.json()
    first, second = clinic.slots.order_by("starts_at")
    assert (body["department"], body["doctor"]["id"], body["status"], body["session"]) == (
        "NK",
        str(staff["doctor"].uuid),
        "open",
        "morning",
    )
    assert body["slots"] == [
        {
            "id": str(first.uuid),
            "starts_at": timezone.localtime(first.starts_at).isoformat(),
            "ends_at": timezone.localtime(first.ends_at).isoformat(),
            "capacity": {"online": 1, "phone": 1, "window": 1},
            "taken": {"online": 0, "phone": 1, "window": 0},
            "free": {"online": 1, "phone": 0, "window": 1},
        },
        {
            "id": str(second.uuid),
            "starts_at": timezone.localtime(second.starts_at).isoformat(),
            "ends_at": timezone.localtime(second.ends_at).isoformat(),
            "capacity": {"online": 1, "phone": 1, "window": 1},
            "taken": {"online": 0, "phone": 0, "window": 0},
            "free": {"online": 1, "phone": 1, "window": 1},
        },
    ]


def test_an_unreleased_or_stopped_session_has_nothing_free_online(api, staff, internal_medicine, clinic):
    later = session(
        doctor=staff["doctor"], department=internal_medicine, date=clinic.date + dt.timedelta(days=1), released=False
    )
    clinic.status = "stopped"
    clinic.save()

    rows = api.as_user(staff["agent"]).get("/api/v1/schedules/").json()["results"]

    assert [(row["id"], row["slots"][0]["free"]) for row in rows] == [
        (str(clinic.uuid), {"online": 0, "phone": 0, "window": 0}),
        (str(later.uuid), {"online": 0, "phone": 0, "window": 0}),
    ]


def test_sessions_filter_by_department_doctor_dates_and_status(api, staff, clinic, other_clinic):
    client = api.as_user(staff["agent"])
    later = session(doctor=staff["doctor"], department=clinic.department, date=clinic.date + dt.timedelta(days=2))
    later.status = "stopped"
    later.save()

    def ids(**params):
        return [row["id"] for row in client.get("/api/v1/schedules/", params).json()["results"]]

    assert ids(department="ZJ") == [str(other_clinic.uuid)]
    assert ids(doctor=str(staff["doctor"].uuid)) == [str(clinic.uuid), str(later.uuid)]
    assert ids(date_from=str(later.date)) == [str(later.uuid)]
    assert ids(date_to=str(clinic.date), department="NK") == [str(clinic.uuid)]
    assert ids(status="stopped") == [str(later.uuid)]


# token and user, user permissions, group permissions, the page, the slots (the booking rules are kept)
SCHEDULE_LIST_QUERIES = 5


@pytest.mark.parametrize("sessions", [2, 12])
def test_schedule_list_query_count_does_not_grow_with_rows(
    api, staff, internal_medicine, warm_caches, django_assert_num_queries, sessions
):
    today = timezone.localdate()
    for days in range(sessions):
        session(doctor=staff["doctor"], department=internal_medicine, date=today + dt.timedelta(days=days + 1))
    booking_policy()  # the rules row exists on a running server
    client = api.as_user(staff["nurse"])

    with django_assert_num_queries(SCHEDULE_LIST_QUERIES):
        response = client.get("/api/v1/schedules/", {"page_size": 50})

    assert len(response.json()["results"]) == sessions
    assert all(len(row["slots"]) == 4 for row in response.json()["results"])


# --- Booking --------------------------------------------------------------------------------------------


def test_an_agent_books_a_caller_by_phone(api, staff, clinic, patient):
    slot = clinic.slots.order_by("starts_at")[1]

    response = api.as_user(staff["agent"]).post(
        "/api/v1/appointments/",
        {"patient": str(patient.uuid), "slot": str(slot.uuid), "channel": "phone"},
        format="json",
    )

    assert response.status_code == 201
    appointment = Appointment.objects.get()
    body = response.json()
    assert {key: body[key] for key in ("id", "patient", "slot", "schedule", "status", "visit_number", "channel")} == {
        "id": str(appointment.uuid),
        "patient": str(patient.uuid),
        "slot": str(slot.uuid),
        "schedule": str(clinic.uuid),
        "status": "booked",
        "visit_number": 1,
        "channel": "phone",
    }
    assert (body["department"], body["doctor"]["id"], body["patient_name"]) == ("NK", str(staff["doctor"].uuid), "张三")
    assert (appointment.booked_by, appointment.pool) == (staff["agent"], "phone")
    slot.refresh_from_db()
    assert (slot.taken_online, slot.taken_phone, slot.taken_window) == (0, 1, 0)


def test_an_agent_books_for_every_department_a_nurse_at_the_window_for_her_own(
    api, staff, other_clinic, clinic, patient
):
    agent = api.as_user(staff["agent"]).post(
        "/api/v1/appointments/",
        {"patient": str(patient.uuid), "slot": str(other_clinic.slots.get().uuid), "channel": "phone"},
        format="json",
    )
    nurse = api.as_user(staff["nurse"]).post(
        "/api/v1/appointments/",
        {"patient": str(patient.uuid), "slot": str(clinic.slots.order_by("starts_at")[0].uuid), "channel": "window"},
        format="json",
    )

    assert (agent.status_code, nurse.status_code) == (201, 201)
    assert sorted(Appointment.objects.values_list("channel", "pool", "booked_by__username")) == [
        ("phone", "phone", "agent"),
        ("window", "window", "nurse"),
    ]


def test_staff_do_not_book_online(api, staff, clinic, patient):
    response = api.as_user(staff["agent"]).post(
        "/api/v1/appointments/",
        {"patient": str(patient.uuid), "slot": str(clinic.slots.first().uuid), "channel": "online"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "channel", "code": "staff_channel", "message": "Staff book by phone or at the window."}
    ]
    assert Appointment.objects.count() == 0


def test_a_refused_booking_is_a_400_naming_the_field_and_the_rule(api, staff, booking, clinic):
    before = _snapshot()

    response = api.as_user(staff["agent"]).post(
        "/api/v1/appointments/",
        {"patient": str(PatientFactory().uuid), "slot": str(booking.slot.uuid), "channel": "phone"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["errors"] == [
        {
            "field": "slot",
            "code": "full",
            "message": "This time slot is fully booked; choose another or join the waitlist.",
        }
    ]
    assert _snapshot()[:2] == before[:2]


def test_a_second_booking_with_the_same_doctor_that_day_names_the_rule(api, staff, booking, clinic, patient):
    response = api.as_user(staff["agent"]).post(
        "/api/v1/appointments/",
        {"patient": str(patient.uuid), "slot": str(clinic.slots.order_by("starts_at")[1].uuid), "channel": "phone"},
        format="json",
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("slot", "one_per_doctor_day")]


def test_bad_input_names_each_field(api, staff):
    response = api.as_user(staff["agent"]).post(
        "/api/v1/appointments/", {"patient": "not-a-uuid", "channel": "fax"}, format="json"
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [
        ("patient", "invalid"),
        ("slot", "required"),
        ("channel", "invalid_choice"),
    ]


def test_a_hold_is_confirmed_with_the_next_visit_number(api, staff, clinic, patient):
    client = api.as_user(staff["agent"])
    slot = clinic.slots.order_by("starts_at")[0]

    held = client.post(
        "/api/v1/appointments/",
        {"patient": str(patient.uuid), "slot": str(slot.uuid), "channel": "phone", "hold": True},
        format="json",
    ).json()
    confirmed = client.post(f"/api/v1/appointments/{held['id']}/confirm/")
    again = client.post(f"/api/v1/appointments/{held['id']}/confirm/")

    assert (held["status"], held["visit_number"], held["hold_expires_at"] is not None) == ("held", None, True)
    assert (confirmed.json()["status"], confirmed.json()["visit_number"]) == ("booked", 1)
    assert [(e["field"], e["code"]) for e in again.json()["errors"]] == [("appointment", "not_held")]


# --- Cancel, reschedule, check in -------------------------------------------------------------------------


def test_staff_cancel_on_the_patients_behalf_after_the_patients_deadline(api, staff, booking):
    # given a rule that closes cancelling by the patient a week before the visit, long passed
    policy = booking_policy()
    policy.cancel_days_before = 7
    policy.save()
    by_the_patients_app = api.__class__()
    by_the_patients_app.credentials(HTTP_AUTHORIZATION=f"Api-Key {_key('appointments.write')}")

    refused = by_the_patients_app.post(
        f"/api/v1/appointments/{booking.uuid}/cancel/", {"reason": "出差"}, format="json"
    )
    response = api.as_user(staff["agent"]).post(
        f"/api/v1/appointments/{booking.uuid}/cancel/", {"reason": "患者来电：出差"}, format="json"
    )

    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [("appointment", "cancel_deadline")]
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelled_by"], response.json()["cancel_reason"]) == (
        "cancelled",
        "staff",
        "患者来电：出差",
    )
    assert Slot.objects.get(pk=booking.slot_id).taken_phone == 0


def test_a_cancel_needs_a_reason_and_only_once(api, staff, booking):
    client = api.as_user(staff["agent"])

    missing = client.post(f"/api/v1/appointments/{booking.uuid}/cancel/", {}, format="json")
    done = client.post(f"/api/v1/appointments/{booking.uuid}/cancel/", {"reason": "不来了"}, format="json")
    twice = client.post(f"/api/v1/appointments/{booking.uuid}/cancel/", {"reason": "不来了"}, format="json")

    assert [(e["field"], e["code"]) for e in missing.json()["errors"]] == [("reason", "required")]
    assert done.status_code == 200
    assert [(e["field"], e["code"]) for e in twice.json()["errors"]] == [("appointment", "not_cancellable")]


def test_a_booking_is_rescheduled_and_the_answer_is_the_new_booking(api, staff, booking, clinic):
    later = session(doctor=staff["doctor"], department=clinic.department, date=clinic.date + dt.timedelta(days=1))
    target = later.slots.order_by("starts_at")[0]
    later.slots.update(capacity_phone=1)

    response = api.as_user(staff["agent"]).post(
        f"/api/v1/appointments/{booking.uuid}/reschedule/", {"slot": str(target.uuid)}, format="json"
    )

    assert response.status_code == 200
    moved = Appointment.objects.get(uuid=response.json()["id"])
    booking.refresh_from_db()
    assert (moved.slot, moved.status, moved.visit_number, moved.booked_by) == (target, "booked", 1, staff["agent"])
    assert (booking.status, booking.cancelled_by, booking.rescheduled_to) == ("cancelled", "reschedule", moved)


def test_a_reschedule_that_cannot_be_had_changes_nothing(api, staff, booking, clinic):
    full = clinic.slots.order_by("starts_at")[1]
    appointment_book(patient=PatientFactory(), slot=full, door=PHONE)
    before = _snapshot()

    response = api.as_user(staff["agent"]).post(
        f"/api/v1/appointments/{booking.uuid}/reschedule/", {"slot": str(full.uuid)}, format="json"
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("slot", "full")]
    assert _snapshot() == before


@pytest.fixture
def today_booking(staff, internal_medicine, patient):
    """A booking in a session today (booked at the window before it began)."""
    today = session(
        doctor=staff["doctor"], department=internal_medicine, date=timezone.localdate(), start=dt.time(0, 0), window=1
    )
    slot = today.slots.order_by("starts_at")[0]
    return appointment_book(
        patient=patient, slot=slot, door=BookingDoor(channel="window"), now=slot.starts_at - dt.timedelta(hours=1)
    )


def test_a_nurse_checks_a_patient_in_on_the_day(api, staff, today_booking):
    response = api.as_user(staff["nurse"]).post(f"/api/v1/appointments/{today_booking.uuid}/check-in/")

    assert response.status_code == 200
    assert response.json()["status"] == "checked_in"
    today_booking.refresh_from_db()
    assert (today_booking.status, today_booking.checked_in_at is not None) == ("checked_in", True)


def test_agents_and_other_departments_doctors_cannot_check_in(api, staff, today_booking):
    by_agent = api.as_user(staff["agent"]).post(f"/api/v1/appointments/{today_booking.uuid}/check-in/")
    by_other = api.as_user(staff["other_doctor"]).post(f"/api/v1/appointments/{today_booking.uuid}/check-in/")

    assert (by_agent.status_code, by_other.status_code) == (403, 404)
    assert Appointment.objects.get(pk=today_booking.pk).status == "booked"


# --- Listing --------------------------------------------------------------------------------------------


def test_appointments_filter_by_patient_doctor_date_and_status(api, staff, booking, other_clinic, patient):
    other = appointment_book(patient=PatientFactory(), slot=other_clinic.slots.get(), door=PHONE)
    client = api.as_user(staff["agent"])

    def ids(**params):
        return [row["id"] for row in client.get("/api/v1/appointments/", params).json()["results"]]

    assert ids(patient=str(patient.uuid)) == [str(booking.uuid)]
    assert ids(doctor=str(staff["other_doctor"].uuid)) == [str(other.uuid)]
    assert ids(date=str(booking.date), department="NK") == [str(booking.uuid)]
    assert ids(status="cancelled") == []
    assert sorted(ids()) == sorted([str(booking.uuid), str(other.uuid)])


def test_listing_a_patients_bookings_is_audited(api, staff, booking, patient):
    api.as_user(staff["nurse"]).get("/api/v1/appointments/", {"patient": str(patient.uuid)})

    entry = AuditEntry.objects.get(event="list")
    assert (entry.patient_uuid, entry.actor, entry.additional_data) == (
        patient.uuid,
        staff["nurse"],
        {"record": "appointment", "patients": [str(patient.uuid)]},
    )


# token and user, user permissions, group permissions, departments, the page, the audit entry
APPOINTMENT_LIST_QUERIES = 6


@pytest.mark.parametrize("rows", [2, 12])
def test_appointment_list_query_count_does_not_grow_with_rows(
    api, staff, internal_medicine, warm_caches, django_assert_num_queries, rows
):
    today = timezone.localdate()
    for days in range(rows):
        clinic = session(doctor=staff["doctor"], department=internal_medicine, date=today + dt.timedelta(days=days + 1))
        appointment_book(patient=PatientFactory(), slot=clinic.slots.first(), door=BookingDoor(channel="online"))
    client = api.as_user(staff["nurse"])

    with django_assert_num_queries(APPOINTMENT_LIST_QUERIES):
        response = client.get("/api/v1/appointments/", {"page_size": 50})

    assert len(response.json()["results"]) == rows


# --- Waitlist -------------------------------------------------------------------------------------------


def test_an_agent_puts_a_caller_on_the_waitlist_and_takes_them_off(api, staff, clinic, patient):
    client = api.as_user(staff["agent"])

    joined = client.post(
        "/api/v1/waitlist/",
        {"patient": str(patient.uuid), "schedule": str(clinic.uuid), "channel": "phone"},
        format="json",
    )
    listed = client.get("/api/v1/waitlist/", {"schedule": str(clinic.uuid)})
    left = client.post(f"/api/v1/waitlist/{joined.json()['id']}/leave/")

    assert joined.status_code == 201
    assert (joined.json()["patient"], joined.json()["status"], joined.json()["channel"]) == (
        str(patient.uuid),
        "waiting",
        "phone",
    )
    assert [row["id"] for row in listed.json()["results"]] == [joined.json()["id"]]
    assert left.json()["status"] == "cancelled"
    assert WaitlistEntry.objects.get().status == "cancelled"


def test_joining_the_waitlist_with_a_booking_that_day_names_the_rule(api, staff, booking, clinic, patient):
    response = api.as_user(staff["agent"]).post(
        "/api/v1/waitlist/",
        {"patient": str(patient.uuid), "schedule": str(clinic.uuid), "channel": "phone"},
        format="json",
    )

    assert response.status_code == 400
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [("patient", "one_per_doctor_day")]
    assert WaitlistEntry.objects.count() == 0


# token and user, user permissions, group permissions, departments, the page, the audit entry
WAITLIST_LIST_QUERIES = 6


@pytest.mark.parametrize("rows", [2, 12])
def test_waitlist_list_query_count_does_not_grow_with_rows(
    api, staff, clinic, warm_caches, django_assert_num_queries, rows
):
    for _index in range(rows):
        waitlist_join(schedule=clinic, patient=PatientFactory(), door=PHONE)
    client = api.as_user(staff["nurse"])

    with django_assert_num_queries(WAITLIST_LIST_QUERIES):
        response = client.get("/api/v1/waitlist/", {"page_size": 50})

    assert [row["status"] for row in response.json()["results"]] == ["waiting"] * rows
