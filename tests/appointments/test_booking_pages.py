"""Console pages of bookings: a doctor's day, the department grid, the booking desk, lifting restrictions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from appointments.models import Appointment, BookingRestriction, Slot, WaitlistEntry
from appointments.selectors import booking_policy
from appointments.services import BookingDoor, appointment_book, appointment_cancel, waitlist_join
from hcrm.models import AuditEntry
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

PHONE = BookingDoor(channel="phone")
WINDOW = BookingDoor(channel="window")


def _signed_in(client, user):
    client.force_login(user)
    return client


def _snapshot():
    return (
        list(Appointment.objects.order_by("pk").values()),
        list(Slot.objects.order_by("pk").values("taken_online", "taken_phone", "taken_window")),
        list(WaitlistEntry.objects.order_by("pk").values()),
        list(BookingRestriction.objects.order_by("pk").values()),
    )


@pytest.fixture
def acupuncture_nurse(acupuncture):
    return UserFactory(username="acupuncture_nurse", roles=["nurse"], departments=[acupuncture])


@pytest.fixture
def today(staff, internal_medicine):
    """The internal-medicine doctor's session today (from midnight), three slots with a window place each."""
    return session(
        doctor=staff["doctor"], department=internal_medicine, date=timezone.localdate(), start=dt.time(0, 0),
        slots=3, online=0, window=1,
    )  # fmt: skip


def _book_before(slot, patient):
    """A window booking made an hour before the slot began (the session is under way now)."""
    return appointment_book(patient=patient, slot=slot, door=WINDOW, now=slot.starts_at - dt.timedelta(hours=1))


@pytest.fixture
def day(today, patient):
    """Today's session: 张三 (no. 1) and a second patient (no. 2), a third who cancelled, one waiting."""
    first, second, third = today.slots.order_by("starts_at")
    booked = _book_before(second, patient)
    other = _book_before(first, PatientFactory(name="李四"))
    gone = _book_before(third, PatientFactory(name="王五"))
    appointment_cancel(appointment=gone, by="staff", reason="来电取消", now=third.starts_at - dt.timedelta(minutes=30))
    return booked, other, gone


# --- A doctor's day --------------------------------------------------------------------------------------


def test_the_day_list_needs_a_signed_in_user_with_access_to_bookings(client, staff, day):
    anonymous = client.get("/appointments/day/")
    analyst = _signed_in(client, staff["analyst"]).get("/appointments/day/")

    assert (anonymous.status_code, anonymous["Location"]) == (302, "/login/?next=/appointments/day/")
    assert analyst.status_code == 403


def test_a_doctor_sees_todays_bookings_in_visit_number_order_with_check_in(client, staff, today, day):
    booked, other, gone = day

    response = _signed_in(client, staff["doctor"]).get("/appointments/day/")

    (listed,) = response.context["sessions"]
    assert listed == today
    assert [(b.visit_number, b.patient.name, b.status) for b in listed.appointments.all()] == [
        (1, "张三", "booked"),
        (2, "李四", "booked"),
        (3, "王五", "cancelled"),
    ]
    html = response.content.decode()
    assert html.count('action="/appointments/bookings/') == 2  # a check-in button per booked patient
    assert f'action="/appointments/bookings/{gone.uuid}/check-in/"' not in html
    entry = AuditEntry.objects.get(event="list")
    assert entry.additional_data["patients"] == sorted(str(b.patient.uuid) for b in day)


def test_the_waitlist_of_each_session_is_shown(client, staff, internal_medicine):
    full = session(doctor=staff["doctor"], department=internal_medicine, slots=1, online=1)
    appointment_book(patient=PatientFactory(), slot=full.slots.get(), door=BookingDoor(channel="online"))
    waiting = PatientFactory(name="赵六")
    waitlist_join(schedule=full, patient=waiting, door=PHONE)

    response = _signed_in(client, staff["nurse"]).get(
        "/appointments/day/", {"doctor": str(staff["doctor"].uuid), "date": str(full.date)}
    )

    (listed,) = response.context["sessions"]
    assert [entry.patient.name for entry in listed.waitlist.all()] == ["赵六"]
    assert "赵六" in response.content.decode()
    assert "Check in" not in response.content.decode()  # not today


def test_a_department_head_chooses_a_doctor_of_the_department_only(client, staff, today, day):
    client = _signed_in(client, staff["department_head"])

    own = client.get("/appointments/day/", {"doctor": str(staff["doctor"].uuid)})
    other = client.get("/appointments/day/", {"doctor": str(staff["other_doctor"].uuid)})

    assert [s.pk for s in own.context["sessions"]] == [today.pk]
    assert other.status_code == 404


def test_a_nurse_checks_a_patient_in(client, staff, day):
    booked = day[0]

    response = _signed_in(client, staff["nurse"]).post(f"/appointments/bookings/{booked.uuid}/check-in/")

    assert response.status_code == 302
    assert response["Location"] == f"/appointments/day/?doctor={staff['doctor'].uuid}&date={booked.date}"
    booked.refresh_from_db()
    assert booked.status == "checked_in"
    page = client.get(response["Location"])
    assert "Checked in." in page.content.decode()


def test_agents_and_other_departments_cannot_check_in_and_nothing_changes(client, staff, day, acupuncture_nurse):
    booked = day[0]
    before = _snapshot()

    anonymous = client.post(f"/appointments/bookings/{booked.uuid}/check-in/")
    by_agent = _signed_in(client, staff["agent"]).post(f"/appointments/bookings/{booked.uuid}/check-in/")
    by_other = _signed_in(client, acupuncture_nurse).post(f"/appointments/bookings/{booked.uuid}/check-in/")

    assert (by_agent.status_code, by_other.status_code, anonymous.status_code) == (403, 404, 302)
    assert _snapshot() == before


# session, user, user permissions, group permissions, the user's roles, the doctors to choose from,
# the sessions, their bookings, their waitlists, the audit entry, the roles in the header
DAY_QUERIES = 11


@pytest.mark.parametrize("patients", [2, 12])
def test_day_list_query_count_does_not_grow_with_bookings(
    client, staff, internal_medicine, warm_caches, django_assert_num_queries, patients
):
    clinic = session(doctor=staff["doctor"], department=internal_medicine, date=timezone.localdate(),
                     start=dt.time(0, 0), slots=patients, online=0, window=1)  # fmt: skip
    for slot in clinic.slots.all():
        _book_before(slot, PatientFactory())
    client = _signed_in(client, staff["doctor"])

    with django_assert_num_queries(DAY_QUERIES):
        response = client.get("/appointments/day/")

    assert len(response.context["sessions"][0].appointments.all()) == patients


# --- The department grid ------------------------------------------------------------------------------------


@pytest.fixture
def week(staff, internal_medicine):
    """Monday of next week: a full morning (4 of 4 places) with two waiting, a stopped afternoon, Wednesday half full."""
    monday = timezone.localdate() + dt.timedelta(days=7 - timezone.localdate().weekday())
    full = session(doctor=staff["doctor"], department=internal_medicine, date=monday, slots=4, online=1)
    for slot in full.slots.all():
        appointment_book(patient=PatientFactory(), slot=slot, door=BookingDoor(channel="online"))
    for _index in range(2):
        waitlist_join(schedule=full, patient=PatientFactory(), door=PHONE)
    stopped = session(doctor=staff["doctor"], department=internal_medicine, date=monday, start=dt.time(14, 0),
                      session_name="afternoon", slots=2, online=0, phone=1)  # fmt: skip
    stopped.status = "stopped"
    stopped.save()
    head = UserFactory(full_name="内科主任医师", roles=["doctor"], departments=[internal_medicine])
    wednesday = session(doctor=head, department=internal_medicine, date=monday + dt.timedelta(days=2),
                        slots=2, online=0, phone=1)  # fmt: skip
    appointment_book(patient=PatientFactory(), slot=wednesday.slots.first(), door=PHONE)
    return monday, full, stopped, wednesday


def _cells(response):
    return [
        (
            str(row["doctor"]),
            [[(s.session, s.places, s.taken, s.fill_rate, s.waiting, s.status) for s in d] for d in row["days"]],
        )
        for row in response.context["rows"]
    ]


def test_the_grid_shows_places_taken_fill_rate_and_waitlist_per_session(client, staff, week):
    monday, full, stopped, wednesday = week

    response = _signed_in(client, staff["nurse"]).get("/appointments/grid/", {"department": "NK", "week": str(monday)})

    assert response.status_code == 200
    assert _cells(response) == [
        ("内科主任医师", [[], [], [("morning", 2, 1, 50, 0, "open")], [], [], [], []]),
        (
            str(staff["doctor"]),
            [[("morning", 4, 4, 100, 2, "open"), ("afternoon", 2, 0, 0, 0, "stopped")], [], [], [], [], [], []],
        ),
    ]
    html = response.content.decode()
    assert f'data-session="{stopped.uuid}"' in html
    assert 'class="grid-session stopped"' in html


def test_a_week_is_shown_from_its_monday(client, staff, week):
    monday = week[0]

    response = _signed_in(client, staff["nurse"]).get(
        "/appointments/grid/", {"department": "NK", "week": str(monday + dt.timedelta(days=3))}
    )

    assert response.context["days"][0] == monday


def test_the_grid_of_another_department_is_not_shown(client, staff, week):
    anonymous = client.get("/appointments/grid/")
    analyst = _signed_in(client, staff["analyst"]).get("/appointments/grid/")
    other = _signed_in(client, staff["other_doctor"]).get("/appointments/grid/", {"department": "NK"})
    agent = _signed_in(client, staff["agent"]).get("/appointments/grid/", {"department": "NK", "week": str(week[0])})

    assert (anonymous.status_code, analyst.status_code, other.status_code, agent.status_code) == (302, 403, 404, 200)
    assert len(agent.context["rows"]) == 2


# session, user, user permissions, group permissions, the user's departments, the departments to choose
# from, the sessions with their places, places taken and waitlist lengths, the roles in the header
GRID_QUERIES = 8


@pytest.mark.parametrize("doctors", [1, 6])
def test_grid_query_count_does_not_grow_with_sessions(
    client, staff, internal_medicine, django_assert_num_queries, doctors
):
    monday = timezone.localdate() + dt.timedelta(days=7 - timezone.localdate().weekday())
    for _index in range(doctors):
        doctor = UserFactory(roles=["doctor"], departments=[internal_medicine])
        for offset in range(5):
            clinic = session(doctor=doctor, department=internal_medicine, date=monday + dt.timedelta(days=offset))
            waitlist_join(schedule=clinic, patient=PatientFactory(), door=PHONE)
    client = _signed_in(client, staff["department_head"])

    with django_assert_num_queries(GRID_QUERIES):
        response = client.get("/appointments/grid/", {"department": "NK", "week": str(monday)})

    assert len(response.context["rows"]) == doctors
    assert all(s.waiting == 1 for row in response.context["rows"] for cell in row["days"] for s in cell)


# --- The booking desk ----------------------------------------------------------------------------------------


@pytest.fixture
def clinic(staff, internal_medicine):
    """Internal medicine in three days: two slots with a place by phone and one at the window each."""
    return session(doctor=staff["doctor"], department=internal_medicine, slots=2, online=0, phone=1, window=1)


def test_the_desk_is_for_staff_who_book(client, staff):
    anonymous = client.get("/appointments/desk/")
    doctor = _signed_in(client, staff["doctor"]).get("/appointments/desk/")
    agent = _signed_in(client, staff["agent"]).get("/appointments/desk/")

    assert (anonymous.status_code, doctor.status_code, agent.status_code) == (302, 403, 200)


def test_an_agent_finds_the_caller_and_the_search_is_audited(client, staff, patient):
    response = _signed_in(client, staff["agent"]).get("/appointments/desk/", {"q": "张三"})

    assert [found.pk for found in response.context["found"]] == [patient.pk]
    assert f'href="?patient={patient.uuid}"' in response.content.decode()
    entry = AuditEntry.objects.get(event="search")
    assert entry.additional_data == {"query": "张三", "kind": "name", "patients": [str(patient.uuid)]}


def test_an_agent_chooses_a_department_and_sees_each_slots_places_by_phone(client, staff, patient, clinic):
    response = _signed_in(client, staff["agent"]).get(
        "/appointments/desk/", {"patient": str(patient.uuid), "department": "NK"}
    )

    assert response.context["channel"] == "phone"
    (listed,) = response.context["sessions"]
    assert [slot.free_places for slot in listed.slots.all()] == [1, 1]
    assert response.content.decode().count('name="slot"') == 2


def test_an_agent_books_a_caller_by_phone(client, staff, patient, clinic):
    slot = clinic.slots.order_by("starts_at")[1]

    response = _signed_in(client, staff["agent"]).post(
        "/appointments/desk/book/", {"patient": str(patient.uuid), "slot": str(slot.uuid), "channel": "phone"}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/appointments/desk/?patient={patient.uuid}&department=NK&channel=phone"
    booked = Appointment.objects.get()
    assert (booked.patient, booked.slot, booked.channel, booked.booked_by, booked.visit_number) == (
        patient,
        slot,
        "phone",
        staff["agent"],
        1,
    )
    page = client.get(response["Location"])
    assert "visit number 1" in page.content.decode()
    assert [b.pk for b in page.context["upcoming"]] == [booked.pk]


def test_a_refused_booking_says_why_and_changes_nothing(client, staff, patient, clinic):
    slot = clinic.slots.order_by("starts_at")[0]
    appointment_book(patient=PatientFactory(), slot=slot, door=PHONE)
    before = _snapshot()

    response = _signed_in(client, staff["agent"]).post(
        "/appointments/desk/book/", {"patient": str(patient.uuid), "slot": str(slot.uuid), "channel": "phone"}
    )

    assert _snapshot() == before
    page = client.get(response["Location"])
    assert "This time slot is fully booked; choose another or join the waitlist." in page.content.decode()


def test_another_departments_nurse_cannot_book_or_see_the_patient(client, patient, clinic, acupuncture_nurse):
    before = _snapshot()
    client = _signed_in(client, acupuncture_nurse)

    shown = client.get("/appointments/desk/", {"patient": str(patient.uuid)})
    booked = client.post(
        "/appointments/desk/book/",
        {"patient": str(patient.uuid), "slot": str(clinic.slots.first().uuid), "channel": "window"},
    )

    assert (shown.status_code, booked.status_code) == (404, 404)
    assert _snapshot() == before


def test_a_nurse_books_at_the_window_of_her_department(client, staff, patient, clinic):
    page = _signed_in(client, staff["nurse"]).get(
        "/appointments/desk/", {"patient": str(patient.uuid), "department": "NK"}
    )
    client.post(
        "/appointments/desk/book/",
        {"patient": str(patient.uuid), "slot": str(clinic.slots.first().uuid), "channel": "window"},
    )

    assert page.context["channel"] == "window"
    assert Appointment.objects.get().pool == "window"


def test_a_full_session_offers_the_waitlist(client, staff, patient, internal_medicine):
    full = session(doctor=staff["doctor"], department=internal_medicine, slots=1, online=0, phone=1)
    appointment_book(patient=PatientFactory(), slot=full.slots.get(), door=PHONE)
    client = _signed_in(client, staff["agent"])

    page = client.get("/appointments/desk/", {"patient": str(patient.uuid), "department": "NK"})
    joined = client.post(
        "/appointments/waitlist/join/", {"patient": str(patient.uuid), "schedule": str(full.uuid), "channel": "phone"}
    )

    assert "Join the waitlist" in page.content.decode()
    assert joined.status_code == 302
    entry = WaitlistEntry.objects.get()
    assert (entry.patient, entry.schedule, entry.channel, entry.status) == (patient, full, "phone", "waiting")
    left = client.post(f"/appointments/waitlist/{entry.uuid}/leave/")
    assert left.status_code == 302
    entry.refresh_from_db()
    assert entry.status == "cancelled"


def test_staff_cancel_with_a_reason(client, staff, patient, clinic):
    booked = appointment_book(patient=patient, slot=clinic.slots.first(), door=PHONE)
    client = _signed_in(client, staff["agent"])

    without = client.post(f"/appointments/bookings/{booked.uuid}/cancel/", {"reason": ""})
    booked.refresh_from_db()
    assert booked.status == "booked"

    response = client.post(f"/appointments/bookings/{booked.uuid}/cancel/", {"reason": "患者来电取消"})

    assert (without.status_code, response.status_code) == (302, 302)
    booked.refresh_from_db()
    assert (booked.status, booked.cancelled_by, booked.cancel_reason) == ("cancelled", "staff", "患者来电取消")


def test_doctors_and_other_departments_cannot_cancel(client, staff, patient, clinic, acupuncture_nurse):
    booked = appointment_book(patient=patient, slot=clinic.slots.first(), door=PHONE)
    before = _snapshot()

    by_doctor = _signed_in(client, staff["doctor"]).post(
        f"/appointments/bookings/{booked.uuid}/cancel/", {"reason": "x"}
    )
    by_other = _signed_in(client, acupuncture_nurse).post(
        f"/appointments/bookings/{booked.uuid}/cancel/", {"reason": "x"}
    )

    assert (by_doctor.status_code, by_other.status_code) == (403, 404)
    assert _snapshot() == before


def test_staff_move_a_booking_to_another_slot(client, staff, patient, clinic):
    first, second = clinic.slots.order_by("starts_at")
    booked = appointment_book(patient=patient, slot=first, door=PHONE)
    later = session(doctor=staff["doctor"], department=clinic.department, date=clinic.date + dt.timedelta(days=1),
                    slots=1, online=0, phone=1)  # fmt: skip
    client = _signed_in(client, staff["agent"])

    page = client.get(f"/appointments/bookings/{booked.uuid}/reschedule/")
    response = client.post(f"/appointments/bookings/{booked.uuid}/reschedule/", {"slot": str(later.slots.get().uuid)})

    assert [s.pk for s in page.context["sessions"]] == [clinic.pk, later.pk]
    assert response.status_code == 302
    booked.refresh_from_db()
    assert (booked.status, booked.rescheduled_to.slot, booked.rescheduled_to.visit_number) == (
        "cancelled",
        later.slots.get(),
        1,
    )


def test_a_move_that_cannot_be_had_changes_nothing(client, staff, patient, clinic):
    first, second = clinic.slots.order_by("starts_at")
    booked = appointment_book(patient=patient, slot=first, door=PHONE)
    appointment_book(patient=PatientFactory(), slot=second, door=PHONE)
    before = _snapshot()

    response = _signed_in(client, staff["agent"]).post(
        f"/appointments/bookings/{booked.uuid}/reschedule/", {"slot": str(second.uuid)}
    )

    assert response.status_code == 400
    assert "This time slot is fully booked; choose another or join the waitlist." in response.content.decode()
    assert _snapshot() == before


# --- Lifting a restriction -----------------------------------------------------------------------------------


@pytest.fixture
def restriction(patient):
    now = timezone.now()
    return BookingRestriction.objects.create(
        patient=patient, reason="3 missed appointments in 90 days", starts_at=now, ends_at=now + dt.timedelta(days=90)
    )


def test_the_desk_shows_the_restriction_with_a_link_to_lift_it(client, staff, patient, restriction):
    response = _signed_in(client, staff["agent"]).get("/appointments/desk/", {"patient": str(patient.uuid)})

    assert response.context["restriction"] == restriction
    assert f'href="/appointments/restrictions/{restriction.uuid}/lift/"' in response.content.decode()


def test_a_department_head_lifts_a_restriction_with_a_reason_and_it_is_audited(client, staff, patient, restriction):
    client = _signed_in(client, staff["department_head"])

    response = client.post(f"/appointments/restrictions/{restriction.uuid}/lift/", {"reason": "住院期间未能就诊"})

    assert response.status_code == 302
    restriction.refresh_from_db()
    assert (restriction.lifted_by, restriction.lift_reason, restriction.lifted_at is not None) == (
        staff["department_head"],
        "住院期间未能就诊",
        True,
    )
    change = AuditEntry.objects.get(event="update", content_type__model="bookingrestriction")
    assert (change.actor, change.patient_uuid, change.changes_dict["lift_reason"]) == (
        staff["department_head"],
        patient.uuid,
        ["", "住院期间未能就诊"],
    )


def test_a_restriction_is_not_lifted_without_a_reason_or_by_those_who_may_not(
    client, staff, restriction, acupuncture_nurse
):
    before = _snapshot()

    anonymous = client.post(f"/appointments/restrictions/{restriction.uuid}/lift/", {"reason": "x"})
    nurse = _signed_in(client, staff["nurse"]).post(
        f"/appointments/restrictions/{restriction.uuid}/lift/", {"reason": "x"}
    )
    head = UserFactory(roles=["department_head"], departments=[acupuncture_nurse.staff_departments.get().department])
    other = _signed_in(client, head).post(f"/appointments/restrictions/{restriction.uuid}/lift/", {"reason": "x"})
    blank = _signed_in(client, staff["department_head"]).post(
        f"/appointments/restrictions/{restriction.uuid}/lift/", {"reason": "  "}
    )

    assert (anonymous.status_code, nurse.status_code, other.status_code, blank.status_code) == (302, 403, 404, 400)
    assert "This field is required." in blank.content.decode()
    assert _snapshot() == before


def test_the_lift_page_shows_the_restriction_and_is_audited(client, staff, patient, restriction):
    response = _signed_in(client, staff["agent"]).get(f"/appointments/restrictions/{restriction.uuid}/lift/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Lift 张三's booking restriction</h1>" in html
    assert "3 missed appointments in 90 days" in html
    viewed = AuditEntry.objects.get(event="view")
    assert (viewed.patient_uuid, viewed.content_type.model) == (patient.uuid, "bookingrestriction")


# session, user, user permissions, group permissions, the departments to choose from, the patient, the audit
# entry, the patient's restriction, bookings and waitlist, the sessions, their slots, the roles (the booking
# rules are kept)
DESK_QUERIES = 13


@pytest.mark.parametrize("sessions", [1, 6])
def test_desk_query_count_does_not_grow_with_sessions(
    client, staff, patient, internal_medicine, warm_caches, django_assert_num_queries, sessions
):
    booking_policy()
    for days in range(sessions):
        session(
            doctor=staff["doctor"],
            department=internal_medicine,
            date=timezone.localdate() + dt.timedelta(days=days + 1),
        )
    client = _signed_in(client, staff["agent"])

    with django_assert_num_queries(DESK_QUERIES):
        response = client.get("/appointments/desk/", {"patient": str(patient.uuid), "department": "NK"})

    assert len(response.context["sessions"]) == sessions


def test_the_agent_narrows_the_sessions_to_one_doctor(client, staff, patient, clinic, internal_medicine):
    expert = UserFactory(full_name="王名医", roles=["doctor"], departments=[internal_medicine], is_renowned_expert=True)
    theirs = session(doctor=expert, department=internal_medicine, date=clinic.date, start=dt.time(14, 0),
                     session_name="afternoon", slots=1, online=0, phone=1)  # fmt: skip
    client = _signed_in(client, staff["agent"])

    everyone = client.get("/appointments/desk/", {"patient": str(patient.uuid), "department": "NK"})
    one = client.get(
        "/appointments/desk/", {"patient": str(patient.uuid), "department": "NK", "doctor": str(expert.uuid)}
    )

    assert [d.pk for d in everyone.context["doctors"]] == [staff["doctor"].pk, expert.pk]
    assert [s.pk for s in everyone.context["sessions"]] == [clinic.pk, theirs.pk]
    assert [s.pk for s in one.context["sessions"]] == [theirs.pk]
    assert [d.pk for d in one.context["doctors"]] == [staff["doctor"].pk, expert.pk]
    assert f'&amp;doctor={expert.uuid}" aria-current="true">王名医' in one.content.decode()
