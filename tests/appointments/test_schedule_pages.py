"""Console pages of schedules: weekly templates, holidays, sessions (stop, extra places) and the booking rules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from appointments.models import Appointment, BookingPolicy, Holiday, Schedule, ScheduleTemplate, Slot
from appointments.selectors import booking_policy
from appointments.services import BookingDoor, appointment_book, holiday_save, schedule_template_save
from hcrm.models import AuditEntry
from hcrm.roles import Role
from patients.models import OutboundMessage
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory

pytestmark = pytest.mark.django_db

MANAGE = [
    "view_scheduletemplate",
    "add_scheduletemplate",
    "change_scheduletemplate",
    "delete_scheduletemplate",
    "view_holiday",
    "add_holiday",
    "delete_holiday",
    "view_schedule",
    "change_schedule",
    "view_bookingpolicy",
]
# What the roles are given here stands in for hcrm.roles, which grants the appointments permissions.
GRANTS = {
    Role.ADMINISTRATOR: [*MANAGE, "change_bookingpolicy"],
    Role.DEPARTMENT_HEAD: MANAGE,
    Role.DOCTOR: ["view_schedule"],
    Role.NURSE: ["view_schedule"],
    Role.AGENT: ["view_schedule"],
}


@pytest.fixture(autouse=True)
def schedule_permissions(db):
    for role, codenames in GRANTS.items():
        Group.objects.get(name=role).permissions.add(
            *Permission.objects.filter(content_type__app_label="appointments", codename__in=codenames)
        )


def _signed_in(client, user):
    client.force_login(user)
    return client


def _weekly(actor, doctor, department, **overrides):
    data = {
        "doctor": doctor,
        "department": department,
        "weekday": 2,
        "session": "afternoon",
        "start_time": "14:00",
        "end_time": "15:00",
        "slot_minutes": 30,
        "capacity_online": 3,
        "valid_from": timezone.localdate(),
        **overrides,
    }
    return schedule_template_save(actor=actor, data=data)


@pytest.fixture
def ours(staff, internal_medicine):
    return _weekly(staff["administrator"], staff["doctor"], internal_medicine)


@pytest.fixture
def theirs(staff, acupuncture):
    return _weekly(staff["administrator"], staff["other_doctor"], acupuncture)


@pytest.fixture
def clinic(staff, internal_medicine):
    return session(doctor=staff["doctor"], department=internal_medicine, slots=2, online=1, window=1)


@pytest.fixture
def other_clinic(staff, acupuncture):
    return session(doctor=staff["other_doctor"], department=acupuncture, slots=2, online=1)


@pytest.fixture
def other_head(acupuncture):
    return UserFactory(username="zj_head", roles=[Role.DEPARTMENT_HEAD], departments=[acupuncture])


TEMPLATE_FORM = {
    "weekday": "4",
    "session": "morning",
    "start_time": "08:00",
    "end_time": "10:00",
    "slot_minutes": "20",
    "capacity_online": "2",
    "capacity_phone": "1",
    "capacity_window": "0",
    "clinic_level": "expert",
    "location": "名医堂 1 诊室",
    "fee": "200",
    "valid_from": "2026-12-01",
    "valid_until": "",
    "is_active": "on",
}


def _template_form(department, doctor, **overrides):
    return {**TEMPLATE_FORM, "department": department.pk, "doctor": doctor.pk, **overrides}


def test_anonymous_visitors_are_sent_to_sign_in(client, ours, clinic):
    holiday = holiday_save(actor=None, data={"date": timezone.localdate(), "name": "院庆"})
    gets = [
        "/appointments/schedules/",
        f"/appointments/schedules/sessions/{clinic.uuid}/",
        "/appointments/schedules/weekly/",
        "/appointments/schedules/weekly/new/",
        f"/appointments/schedules/weekly/{ours.uuid}/",
        "/appointments/schedules/holidays/",
        "/appointments/schedules/rules/",
    ]
    posts = [
        f"/appointments/schedules/sessions/{clinic.uuid}/stop/",
        f"/appointments/schedules/sessions/{clinic.uuid}/places/",
        f"/appointments/schedules/weekly/{ours.uuid}/delete/",
        f"/appointments/schedules/holidays/{holiday.uuid}/delete/",
    ]

    responses = [client.get(url) for url in gets] + [client.post(url) for url in posts]

    assert [response.status_code for response in responses] == [302] * 11
    assert all(response["Location"].startswith("/login/") for response in responses)
    assert (ScheduleTemplate.objects.count(), Holiday.objects.count()) == (1, 1)


# --- Weekly templates --------------------------------------------------------------------------------------


def test_a_department_head_lists_the_weekly_schedules_of_their_department(client, staff, ours, theirs):
    response = _signed_in(client, staff["department_head"]).get("/appointments/schedules/weekly/")

    assert response.status_code == 200
    assert list(response.context["templates"]) == [ours]
    assert "14:00–15:00" in response.content.decode()


def test_an_administrator_lists_every_department_and_can_choose_one(client, staff, ours, theirs, acupuncture):
    client = _signed_in(client, staff["administrator"])

    everything = client.get("/appointments/schedules/weekly/")
    one = client.get(f"/appointments/schedules/weekly/?department={acupuncture.uuid}")

    assert sorted(t.pk for t in everything.context["templates"]) == sorted([ours.pk, theirs.pk])
    assert list(one.context["templates"]) == [theirs]


def test_weekly_schedules_of_another_department_are_not_found_and_other_roles_are_refused(
    client, staff, ours, acupuncture
):
    head = _signed_in(client, staff["department_head"]).get(
        f"/appointments/schedules/weekly/?department={acupuncture.uuid}"
    )
    analyst = _signed_in(client, staff["analyst"]).get("/appointments/schedules/weekly/")

    assert (head.status_code, analyst.status_code) == (404, 403)


def test_a_department_head_creates_a_weekly_schedule(client, staff, internal_medicine):
    response = _signed_in(client, staff["department_head"]).post(
        "/appointments/schedules/weekly/new/", _template_form(internal_medicine, staff["doctor"])
    )

    assert response.status_code == 302
    assert response["Location"] == f"/appointments/schedules/weekly/?department={internal_medicine.uuid}"
    template = ScheduleTemplate.objects.get()
    assert (template.doctor, template.weekday, template.slot_minutes, template.clinic_level, template.location) == (
        staff["doctor"],
        4,
        20,
        "expert",
        "名医堂 1 诊室",
    )
    assert (template.capacity_online, template.capacity_phone, template.valid_from) == (2, 1, dt.date(2026, 12, 1))


def test_a_bad_weekly_schedule_shows_the_error_by_its_field_and_saves_nothing(client, staff, internal_medicine):
    response = _signed_in(client, staff["department_head"]).post(
        "/appointments/schedules/weekly/new/",
        _template_form(internal_medicine, staff["doctor"], slot_minutes="25", capacity_online="0", capacity_phone="0"),
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "slot_minutes": ["25-minute slots do not divide a session of 120 minutes."],
        "capacity_online": ["Give each slot at least one place (online, phone or window)."],
    }
    assert ScheduleTemplate.objects.count() == 0


def test_weekly_schedules_cannot_be_made_for_another_department_or_by_other_roles(
    client, staff, acupuncture, internal_medicine
):
    head = _signed_in(client, staff["department_head"]).post(
        "/appointments/schedules/weekly/new/", _template_form(acupuncture, staff["other_doctor"])
    )
    nurse = _signed_in(client, staff["nurse"]).post(
        "/appointments/schedules/weekly/new/", _template_form(internal_medicine, staff["doctor"])
    )

    assert (head.status_code, nurse.status_code) == (400, 403)
    assert set(head.context["form"].errors) == {"department", "doctor"}
    assert ScheduleTemplate.objects.count() == 0


def test_a_department_head_edits_a_weekly_schedule_of_their_department(client, staff, ours, internal_medicine):
    form = _template_form(
        internal_medicine, staff["doctor"], weekday="2", session="afternoon", start_time="14:00", end_time="16:00"
    )

    response = _signed_in(client, staff["department_head"]).post(f"/appointments/schedules/weekly/{ours.uuid}/", form)

    assert response.status_code == 302
    ours.refresh_from_db()
    assert (ours.start_time, ours.end_time, ours.slot_minutes, ours.fee) == (dt.time(14), dt.time(16), 20, 200)


def test_editing_is_refused_outside_the_department_and_to_other_roles(client, staff, ours, theirs, acupuncture):
    before = list(ScheduleTemplate.objects.order_by("pk").values())

    head = _signed_in(client, staff["department_head"]).post(
        f"/appointments/schedules/weekly/{theirs.uuid}/", _template_form(acupuncture, staff["other_doctor"])
    )
    nurse = _signed_in(client, staff["nurse"]).get(f"/appointments/schedules/weekly/{ours.uuid}/")

    assert (head.status_code, nurse.status_code) == (404, 403)
    assert list(ScheduleTemplate.objects.order_by("pk").values()) == before


def test_deleting_a_weekly_schedule_follows_the_same_rules(client, staff, ours, theirs):
    nurse = _signed_in(client, staff["nurse"]).post(f"/appointments/schedules/weekly/{ours.uuid}/delete/")
    other = _signed_in(client, staff["department_head"]).post(f"/appointments/schedules/weekly/{theirs.uuid}/delete/")
    assert (nurse.status_code, other.status_code) == (403, 404)
    assert ScheduleTemplate.objects.count() == 2

    response = client.post(f"/appointments/schedules/weekly/{ours.uuid}/delete/")

    assert response.status_code == 302
    assert list(ScheduleTemplate.objects.all()) == [theirs]


# --- Holidays -----------------------------------------------------------------------------------------------


@pytest.fixture
def holidays(staff, internal_medicine, acupuncture):
    day = timezone.localdate() + dt.timedelta(days=10)
    return {
        "hospital": holiday_save(actor=None, data={"date": day, "name": "元旦"}),
        "ours": holiday_save(actor=None, data={"date": day, "name": "内科培训", "department": internal_medicine}),
        "theirs": holiday_save(actor=None, data={"date": day, "name": "针灸科义诊", "department": acupuncture}),
        "past": holiday_save(actor=None, data={"date": day - dt.timedelta(days=30), "name": "国庆"}),
    }


def test_holidays_ahead_of_the_hospital_and_my_department_are_listed(client, staff, holidays):
    response = _signed_in(client, staff["department_head"]).get("/appointments/schedules/holidays/")

    assert response.status_code == 200
    assert [(holiday.name, manageable) for holiday, manageable in response.context["rows"]] == [
        ("元旦", False),
        ("内科培训", True),
    ]
    assert _signed_in(client, staff["analyst"]).get("/appointments/schedules/holidays/").status_code == 403


def test_a_department_head_adds_a_holiday_for_their_department_only(
    client, staff, internal_medicine, acupuncture, clinic
):
    client = _signed_in(client, staff["department_head"])
    day = clinic.date.isoformat()

    hospital = client.post("/appointments/schedules/holidays/", {"date": day, "name": "春节", "department": ""})
    other = client.post(
        "/appointments/schedules/holidays/", {"date": day, "name": "义诊", "department": acupuncture.pk}
    )
    assert (hospital.status_code, other.status_code) == (400, 400)
    assert Holiday.objects.count() == 0

    response = client.post(
        "/appointments/schedules/holidays/",
        {"date": day, "name": "科室培训", "department": internal_medicine.pk},
        follow=True,
    )

    assert response.redirect_chain == [("/appointments/schedules/holidays/", 302)]
    assert list(Holiday.objects.values_list("name", "department")) == [("科室培训", internal_medicine.pk)]
    assert [str(message) for message in response.context["messages"]] == [
        "Holiday added; no sessions will be generated that day.",
        "1 sessions already exist that day; stop them one by one if they should not run.",
    ]


def test_an_administrator_adds_a_holiday_for_the_whole_hospital(client, staff):
    response = _signed_in(client, staff["administrator"]).post(
        "/appointments/schedules/holidays/", {"date": "2027-02-06", "name": "春节", "department": ""}
    )

    assert response.status_code == 302
    assert list(Holiday.objects.values_list("date", "name", "department")) == [(dt.date(2027, 2, 6), "春节", None)]


def test_other_roles_cannot_add_holidays(client, staff):
    response = _signed_in(client, staff["nurse"]).post(
        "/appointments/schedules/holidays/", {"date": "2027-02-06", "name": "春节"}
    )

    assert response.status_code == 403
    assert Holiday.objects.count() == 0


def test_removing_holidays_follows_the_department_rules(client, staff, holidays):
    client = _signed_in(client, staff["department_head"])

    hospital = client.post(f"/appointments/schedules/holidays/{holidays['hospital'].uuid}/delete/")
    theirs = client.post(f"/appointments/schedules/holidays/{holidays['theirs'].uuid}/delete/")
    nurse = _signed_in(client, staff["nurse"]).post(f"/appointments/schedules/holidays/{holidays['ours'].uuid}/delete/")
    assert (hospital.status_code, theirs.status_code, nurse.status_code) == (403, 404, 403)
    assert Holiday.objects.count() == 4

    response = _signed_in(client, staff["department_head"]).post(
        f"/appointments/schedules/holidays/{holidays['ours'].uuid}/delete/"
    )

    assert response.status_code == 302
    assert not Holiday.objects.filter(pk=holidays["ours"].pk).exists()


# --- Sessions --------------------------------------------------------------------------------------------


def test_the_week_of_sessions_of_my_department(client, staff, clinic, other_clinic, internal_medicine):
    appointment_book(patient=PatientFactory(), slot=clinic.slots.first(), door=BookingDoor(channel="online"))

    response = _signed_in(client, staff["nurse"]).get(f"/appointments/schedules/?week={clinic.date.isoformat()}")

    assert response.status_code == 200
    assert response.context["department"] == internal_medicine
    assert [(row.pk, row.taken, waiting) for row, waiting in response.context["rows"]] == [(clinic.pk, 1, 0)]


def test_sessions_of_another_department_are_not_found_and_other_roles_are_refused(client, staff, internal_medicine):
    other = _signed_in(client, staff["other_doctor"]).get(
        f"/appointments/schedules/?department={internal_medicine.uuid}"
    )
    analyst = _signed_in(client, staff["analyst"]).get("/appointments/schedules/")

    assert (other.status_code, analyst.status_code) == (404, 403)


def test_the_session_page_shows_places_per_channel_and_the_forms_its_viewer_may_use(client, staff, clinic):
    appointment_book(patient=PatientFactory(), slot=clinic.slots.first(), door=BookingDoor(channel="window"))

    head = _signed_in(client, staff["department_head"]).get(f"/appointments/schedules/sessions/{clinic.uuid}/")
    nurse = _signed_in(client, staff["nurse"]).get(f"/appointments/schedules/sessions/{clinic.uuid}/")
    doctor = _signed_in(client, staff["doctor"]).get(f"/appointments/schedules/sessions/{clinic.uuid}/")

    assert [r.status_code for r in (head, nurse, doctor)] == [200, 200, 200]
    html = head.content.decode()
    assert "1 of 4 taken" in html
    assert "0 / 1" in html and "1 / 1" in html
    assert [(r.context["may_stop"], r.context["may_add"]) for r in (head, nurse, doctor)] == [
        (True, True),
        (False, False),
        (False, True),
    ]
    assert 'class="card stop-clinic"' in html and 'class="card stop-clinic"' not in doctor.content.decode()


def test_a_session_of_another_department_is_not_found_and_other_roles_are_refused(client, staff, clinic):
    other = _signed_in(client, staff["other_doctor"]).get(f"/appointments/schedules/sessions/{clinic.uuid}/")
    analyst = _signed_in(client, staff["analyst"]).get(f"/appointments/schedules/sessions/{clinic.uuid}/")

    assert (other.status_code, analyst.status_code) == (404, 403)


def _snapshot():
    return (
        list(Schedule.objects.order_by("pk").values()),
        list(Slot.objects.order_by("pk").values()),
        list(Appointment.objects.order_by("pk").values()),
    )


def test_a_department_head_stops_a_clinic_with_a_reason_and_confirmation(client, staff, clinic, patient):
    booked = appointment_book(patient=patient, slot=clinic.slots.first(), door=BookingDoor(channel="online"))
    client = _signed_in(client, staff["department_head"])
    url = f"/appointments/schedules/sessions/{clinic.uuid}/stop/"
    before = _snapshot()

    unconfirmed = client.post(url, {"reason": "医生外出会诊"})
    assert unconfirmed.status_code == 400
    assert list(unconfirmed.context["stop_form"].errors) == ["confirm"]
    assert _snapshot() == before

    response = client.post(url, {"reason": "医生外出会诊", "confirm": "on"})

    assert response.status_code == 302
    clinic.refresh_from_db()
    booked.refresh_from_db()
    assert (clinic.status, clinic.stopped_reason, booked.status) == ("stopped", "医生外出会诊", "cancelled")
    assert OutboundMessage.objects.filter(idempotency_key=f"appointment:{booked.uuid}:stopped").exists()
    entry = AuditEntry.objects.filter(content_type__model="schedule", object_pk=str(clinic.pk)).latest("timestamp")
    assert entry.actor == staff["department_head"]


def test_stopping_is_refused_to_other_roles_other_departments_and_the_doctor(
    client, staff, clinic, patient, other_head
):
    appointment_book(patient=patient, slot=clinic.slots.first(), door=BookingDoor(channel="online"))
    url = f"/appointments/schedules/sessions/{clinic.uuid}/stop/"
    form = {"reason": "医生外出会诊", "confirm": "on"}
    before = _snapshot()

    statuses = [
        _signed_in(client, user).post(url, form).status_code for user in (staff["nurse"], other_head, staff["doctor"])
    ]

    assert statuses == [403, 404, 403]
    assert _snapshot() == before


def test_the_sessions_doctor_and_the_head_add_places(client, staff, clinic):
    first, last = clinic.slots.all()
    url = f"/appointments/schedules/sessions/{clinic.uuid}/places/"

    by_doctor = _signed_in(client, staff["doctor"]).post(url, {"slot": "", "channel": "window", "count": "2"})
    by_head = _signed_in(client, staff["department_head"]).post(
        url, {"slot": str(first.uuid), "channel": "phone", "count": "1"}
    )

    assert (by_doctor.status_code, by_head.status_code) == (302, 302)
    assert list(clinic.slots.order_by("starts_at").values_list("capacity_phone", "capacity_window")) == [(1, 1), (0, 3)]
    clinic.refresh_from_db()
    assert (clinic.capacity_phone, clinic.capacity_window, clinic.extra_capacity) == (1, 4, 3)


def test_bad_extra_places_show_the_error_and_change_nothing(client, staff, clinic):
    before = _snapshot()

    response = _signed_in(client, staff["doctor"]).post(
        f"/appointments/schedules/sessions/{clinic.uuid}/places/", {"slot": "", "channel": "online", "count": "0"}
    )

    assert response.status_code == 400
    assert response.context["extra_form"].errors == {"count": ["Enter a number from 1 to 50."]}
    assert _snapshot() == before


def test_extra_places_are_refused_to_other_roles_and_departments(client, staff, clinic, other_head):
    url = f"/appointments/schedules/sessions/{clinic.uuid}/places/"
    form = {"slot": "", "channel": "online", "count": "1"}
    before = _snapshot()

    statuses = [
        _signed_in(client, user).post(url, form).status_code
        for user in (staff["nurse"], staff["other_doctor"], other_head, staff["analyst"])
    ]

    assert statuses == [403, 404, 404, 403]
    assert _snapshot() == before


# --- Booking rules --------------------------------------------------------------------------------------------

RULES = {
    "release_days_ahead": "14",
    "release_time": "07:30",
    "window_fallback_hours": "2",
    "hold_minutes": "8",
    "cancel_days_before": "1",
    "cancel_time": "18:00",
    "max_open_bookings": "5",
    "no_show_limit": "3",
    "no_show_window_days": "90",
    "no_show_block_days": "90",
    "reminder_time": "18:00",
    "waitlist_offer_minutes": "30",
    "login_code_minutes": "5",
}


def test_an_administrator_changes_the_booking_rules(client, staff):
    response = _signed_in(client, staff["administrator"]).post("/appointments/schedules/rules/", RULES)

    assert response.status_code == 302
    policy = BookingPolicy.objects.get()
    assert (policy.release_days_ahead, policy.release_time, policy.hold_minutes, policy.updated_by) == (
        14,
        dt.time(7, 30),
        8,
        staff["administrator"],
    )


def test_bad_booking_rules_are_shown_by_field_and_change_nothing(client, staff):
    booking_policy()
    before = list(BookingPolicy.objects.values())

    response = _signed_in(client, staff["administrator"]).post(
        "/appointments/schedules/rules/", {**RULES, "hold_minutes": "0", "max_open_bookings": "x"}
    )

    assert response.status_code == 400
    assert response.context["form"].errors == {
        "hold_minutes": ["Enter a number from 1 to 60."],
        "max_open_bookings": ["Enter a whole number."],
    }
    assert list(BookingPolicy.objects.values()) == before


def test_the_booking_rules_are_read_only_without_the_change_permission(client, staff):
    booking_policy()
    before = list(BookingPolicy.objects.values())
    client = _signed_in(client, staff["department_head"])

    page = client.get("/appointments/schedules/rules/")
    post = client.post("/appointments/schedules/rules/", RULES)
    analyst = _signed_in(client, staff["analyst"]).get("/appointments/schedules/rules/")

    assert (page.status_code, post.status_code, analyst.status_code) == (200, 403, 403)
    assert 'type="submit">Save' not in page.content.decode()
    assert list(BookingPolicy.objects.values()) == before


# --- Query counts ------------------------------------------------------------------------------------------

# Every page makes six queries (session, user, user and group permissions, roles, departments); the rest are
# the page's own (department lists, form choices, the rows, the sessions' waitlists), whatever the number of rows.


@pytest.mark.parametrize("rows", [2, 12])
def test_the_weekly_schedules_list_query_count_does_not_grow_with_rows(
    client, staff, internal_medicine, django_assert_num_queries, rows
):
    doctors = [UserFactory(roles=[Role.DOCTOR], departments=[internal_medicine]) for _ in range(rows)]
    for doctor in doctors:
        _weekly(None, doctor, internal_medicine)
    client = _signed_in(client, staff["department_head"])

    with django_assert_num_queries(8):
        response = client.get("/appointments/schedules/weekly/")

    assert len(response.context["templates"]) == rows


@pytest.mark.parametrize("rows", [2, 12])
def test_the_holidays_list_query_count_does_not_grow_with_rows(
    client, staff, internal_medicine, django_assert_num_queries, rows
):
    for offset in range(rows):
        holiday_save(
            actor=None,
            data={
                "date": timezone.localdate() + dt.timedelta(days=offset),
                "name": "假日",
                "department": internal_medicine,
            },
        )
    client = _signed_in(client, staff["department_head"])

    with django_assert_num_queries(9):
        response = client.get("/appointments/schedules/holidays/")

    assert len(response.context["rows"]) == rows


@pytest.mark.parametrize("rows", [2, 12])
def test_the_sessions_list_query_count_does_not_grow_with_rows(
    client, staff, internal_medicine, django_assert_num_queries, rows
):
    monday = timezone.localdate() - dt.timedelta(days=timezone.localdate().weekday()) + dt.timedelta(days=7)
    for index in range(rows):
        doctor = UserFactory(roles=[Role.DOCTOR], departments=[internal_medicine])
        session(doctor=doctor, department=internal_medicine, date=monday + dt.timedelta(days=index % 7))
    client = _signed_in(client, staff["nurse"])

    with django_assert_num_queries(10):
        response = client.get(f"/appointments/schedules/?week={monday.isoformat()}")

    assert len(response.context["rows"]) == rows
