"""Portal pages through Django's test client: sign-in, booking, my appointments, waitlist offers, family members."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django.utils.translation import gettext

from appointments.models import Appointment, BookingPolicy, DoctorProfile, FamilyMember, PortalAccount, WaitlistEntry
from appointments.portal.session import ACCOUNT_KEY, SEEN_AT_KEY, SIGNED_IN_AT_KEY
from appointments.selectors import booking_policy, booking_policy_forget
from appointments.services import BookingDoor, appointment_book, appointment_cancel, waitlist_join
from hcrm.models import AuditEntry
from patients.models import OutboundMessage
from tests.appointments.factories import session
from tests.factories import PatientFactory, UserFactory, national_id

pytestmark = pytest.mark.django_db

MOBILE = "+8613812345678"
ONLINE = BookingDoor(channel="online")


@pytest.fixture
def doctor(staff):
    doctor = staff["doctor"]
    doctor.full_name, doctor.title, doctor.specialties = "李时珍", "chief_physician", "脾胃病"
    doctor.is_renowned_expert = True
    doctor.save()
    return doctor


@pytest.fixture
def clinic(doctor, internal_medicine):
    schedule = session(doctor=doctor, department=internal_medicine, slots=2, online=1)
    schedule.fee = "50.00"
    schedule.save()
    return schedule


@pytest.fixture
def holder(db):
    return PatientFactory(name="王芳", mobile=MOBILE)


@pytest.fixture
def account(holder):
    account = PortalAccount.objects.create(mobile=MOBILE)
    FamilyMember.objects.create(account=account, patient=holder, relationship="self")
    return account


@pytest.fixture
def other_account(db):
    stranger = PatientFactory(name="赵强", mobile="+8613700002222")
    account = PortalAccount.objects.create(mobile=stranger.mobile)
    FamilyMember.objects.create(account=account, patient=stranger, relationship="self")
    return account


def _signed_in(client: Client, account: PortalAccount, *, signed_in_at: float | None = None) -> Client:
    store = client.session
    store[ACCOUNT_KEY] = account.pk
    store[SIGNED_IN_AT_KEY] = int(signed_in_at if signed_in_at is not None else time.time())
    store.save()
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Signing in ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/portal/", "/portal/book/", "/portal/appointments/", "/portal/family/", "/portal/book/doctor/{doctor}/"]
)
def test_signed_out_visitors_are_sent_to_sign_in(client, doctor, path):
    path = path.format(doctor=doctor.uuid)

    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"] == f"/portal/sign-in/?next={path.replace('/', '%2F')}"


def test_a_patient_signs_in_with_the_code_sent_by_sms(client, holder):
    page = client.get("/portal/sign-in/")
    assert page.status_code == 200
    assert 'name="viewport"' in page.content.decode()

    sent = client.post("/portal/sign-in/", {"mobile": "138 1234 5678", "next": "/portal/family/"})
    assert sent.status_code == 302
    assert sent["Location"] == "/portal/sign-in/code/?next=%2Fportal%2Ffamily%2F"
    code_page = client.get(sent["Location"])
    assert "+86138****5678" in code_page.content.decode()

    code = re.search(r"\d{6}", OutboundMessage.objects.get(purpose="verification").body).group()
    wrong = client.post("/portal/sign-in/code/", {"code": f"{(int(code) + 1) % 1_000_000:06d}"})
    assert wrong.status_code == 200
    assert "The code is wrong; 4 attempts left." in wrong.content.decode()

    signed_in = client.post("/portal/sign-in/code/", {"code": code, "next": "/portal/family/"})

    assert signed_in["Location"] == "/portal/family/"
    account = PortalAccount.objects.get(mobile=MOBILE)
    assert client.session[ACCOUNT_KEY] == account.pk
    assert client.session.get_expiry_age() == 30 * 60
    assert AuditEntry.objects.get(event="login").client == "portal:+86138****5678"
    assert client.get("/portal/").status_code == 200


def test_an_unknown_number_gets_the_same_answer(client):
    response = client.post("/portal/sign-in/", {"mobile": "13700001111"})

    assert response["Location"] == "/portal/sign-in/code/"
    assert OutboundMessage.objects.count() == 0


def test_the_rate_limit_is_shown_on_the_form(client, holder):
    client.post("/portal/sign-in/", {"mobile": MOBILE})

    response = client.post("/portal/sign-in/", {"mobile": MOBILE})

    assert response.status_code == 200
    assert "At most 1 codes per minute may be sent to one number; please wait." in response.content.decode()


def test_an_offsite_next_is_ignored(client, holder):
    client.post("/portal/sign-in/", {"mobile": MOBILE})
    code = re.search(r"\d{6}", OutboundMessage.objects.get(purpose="verification").body).group()

    response = client.post("/portal/sign-in/code/", {"code": code, "next": "https://evil.example/"})

    assert response["Location"] == "/portal/"


def test_registration_creates_the_patient_and_asks_for_the_code(client):
    born = national_id("110105", dt.date(1990, 5, 17), 123)

    response = client.post("/portal/register/", {"mobile": "13812345678", "name": "王小明", "national_id": born})

    assert response["Location"] == "/portal/sign-in/code/"
    message = OutboundMessage.objects.get(purpose="verification")
    assert (message.patient.name, message.patient.national_id) == ("王小明", born)


def test_registration_errors_are_shown_by_field(client):
    response = client.post("/portal/register/", {"mobile": "13812345678", "name": "王小明", "national_id": "123"})

    assert response.status_code == 200
    assert response.context["form"].errors["national_id"] == [
        "A national ID number has 17 digits followed by a digit or X."
    ]


def test_sign_out_ends_the_portal_session_and_needs_a_post(client, account):
    _signed_in(client, account)

    assert client.get("/portal/sign-out/").status_code == 405
    response = client.post("/portal/sign-out/")

    assert response["Location"] == "/portal/sign-in/"
    assert ACCOUNT_KEY not in client.session
    assert client.get("/portal/").status_code == 302


def test_a_session_signed_in_too_long_ago_has_expired(client, account):
    _signed_in(client, account, signed_in_at=time.time() - 9 * 3600)

    response = client.get("/portal/")

    assert response.status_code == 302
    assert ACCOUNT_KEY not in client.session


def _session_writes(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return sum(query["sql"].startswith('UPDATE "django_session"') for query in queries.captured_queries)


def test_the_idle_expiry_is_pushed_back_at_most_once_a_minute(client, account):
    _signed_in(client, account)
    assert _session_writes(client, "/portal/family/") == 1
    seen = client.session[SEEN_AT_KEY]
    expires = Session.objects.get().expire_date

    assert _session_writes(client, "/portal/family/") == 0

    store = client.session
    store[SEEN_AT_KEY] = seen - 60
    store.save()
    assert _session_writes(client, "/portal/family/") == 1
    assert client.session[SEEN_AT_KEY] >= seen
    assert Session.objects.get().expire_date >= expires


def test_a_staff_login_is_no_portal_sign_in(client, staff):
    client.force_login(staff["doctor"])

    assert client.get("/portal/").status_code == 302


def test_forms_need_the_csrf_token(account, clinic):
    client = _signed_in(Client(enforce_csrf_checks=True), account)

    response = client.post(f"/portal/book/session/{clinic.uuid}/", {"slot": str(clinic.slots.first().uuid)})

    assert response.status_code == 403
    assert Appointment.objects.count() == 0


# --- Booking -------------------------------------------------------------------------------------------


def test_departments_doctors_and_days_show_what_can_be_booked(client, account, clinic, doctor, internal_medicine):
    DoctorProfile.objects.create(doctor=doctor, introduction="擅长脾胃病")
    _signed_in(client, account)

    departments = client.get("/portal/book/")
    doctors = client.get(f"/portal/book/department/{internal_medicine.uuid}/")
    days = client.get(f"/portal/book/doctor/{doctor.uuid}/")

    assert list(departments.context["departments"]) == [internal_medicine]
    [card] = doctors.context["cards"]
    assert (card["doctor"], str(card["fee"]), card["free"]) == (doctor, "50.00", 2)
    html = doctors.content.decode()
    assert "Renowned TCM expert" in html and "Chief physician" in html and "脾胃病" in html and "¥50.00" in html
    assert '<span class="avatar initials" aria-hidden="true">李</span>' in html
    [(date, [schedule])] = days.context["days"]
    assert (date, schedule, schedule.free_places) == (clinic.date, clinic, 2)
    assert f"/portal/book/session/{clinic.uuid}/" in days.content.decode()


def test_doctors_not_bookable_online_are_not_offered(client, account, clinic, doctor, internal_medicine):
    DoctorProfile.objects.create(doctor=doctor, is_bookable=False)
    _signed_in(client, account)

    assert list(client.get("/portal/book/").context["departments"]) == []
    assert client.get(f"/portal/book/department/{internal_medicine.uuid}/").context["cards"] == []


def test_a_patient_holds_confirms_and_gets_a_visit_number(client, account, holder, clinic):
    _signed_in(client, account)
    slot = clinic.slots.first()
    page = client.get(f"/portal/book/session/{clinic.uuid}/")
    assert [place.free_places for place in page.context["slots"]] == [1, 1]

    held = client.post(f"/portal/book/session/{clinic.uuid}/", {"patient": str(holder.uuid), "slot": str(slot.uuid)})

    appointment = Appointment.objects.get()
    assert held["Location"] == f"/portal/appointments/{appointment.uuid}/confirm/"
    assert (appointment.status, appointment.channel, appointment.portal_account) == ("held", "online", account)
    confirm_page = client.get(held["Location"])
    assert 290 <= confirm_page.context["seconds"] <= 300
    assert 'class="countdown"' in confirm_page.content.decode()

    done = client.post(held["Location"])

    assert done["Location"] == f"/portal/appointments/{appointment.uuid}/"
    appointment.refresh_from_db()
    assert (appointment.status, appointment.visit_number) == ("booked", 1)
    done_page = client.get(done["Location"])
    assert '<p class="visit-number">1</p>' in done_page.content.decode()
    entry = AuditEntry.objects.filter(event="update", object_pk=str(appointment.pk)).latest("timestamp")
    assert (entry.actor, entry.client) == (None, "portal:+86138****5678")


def test_a_booking_refusal_is_shown_and_nothing_changes(client, account, holder, clinic):
    slot = clinic.slots.first()
    appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)
    _signed_in(client, account)

    response = client.post(
        f"/portal/book/session/{clinic.uuid}/", {"patient": str(holder.uuid), "slot": str(slot.uuid)}, follow=True
    )

    assert _messages(response) == ["This time slot is fully booked; choose another or join the waitlist."]
    assert Appointment.objects.filter(patient=holder).count() == 0
    slot.refresh_from_db()
    assert slot.taken_online == 1


def test_a_refusal_is_shown_in_the_patients_language(client, account, holder, clinic):
    slot = clinic.slots.first()
    appointment_book(patient=PatientFactory(), slot=slot, door=ONLINE)
    _signed_in(client, account)

    response = client.post(
        f"/portal/book/session/{clinic.uuid}/",
        {"patient": str(holder.uuid), "slot": str(slot.uuid)},
        follow=True,
        headers={"accept-language": "zh-hans"},
    )

    with translation.override("zh-hans"):
        expected = gettext("This time slot is fully booked; choose another or join the waitlist.")
    assert _messages(response) == [expected]
    assert '<html lang="zh-hans">' in response.content.decode()


def test_booking_for_someone_not_on_the_account_is_not_found(client, account, clinic, other_account):
    stranger = other_account.members.get().patient
    _signed_in(client, account)

    response = client.post(
        f"/portal/book/session/{clinic.uuid}/", {"patient": str(stranger.uuid), "slot": str(clinic.slots.first().uuid)}
    )

    assert response.status_code == 404
    assert Appointment.objects.count() == 0


def test_another_accounts_appointment_is_not_found_and_nothing_changes(client, account, other_account, clinic):
    theirs = appointment_book(patient=other_account.members.get().patient, slot=clinic.slots.first(), door=ONLINE)
    _signed_in(client, account)

    pages = [
        client.get(f"/portal/appointments/{theirs.uuid}/"),
        client.get(f"/portal/appointments/{theirs.uuid}/confirm/"),
        client.post(f"/portal/appointments/{theirs.uuid}/cancel/"),
        client.get(f"/portal/appointments/{theirs.uuid}/reschedule/"),
        client.post(f"/portal/appointments/{theirs.uuid}/reschedule/", {"slot": str(clinic.slots.last().uuid)}),
    ]

    assert [page.status_code for page in pages] == [404] * 5
    theirs.refresh_from_db()
    assert (theirs.status, theirs.slot_id) == ("booked", clinic.slots.first().pk)


def test_my_appointments_lists_upcoming_and_past_for_the_whole_family_in_few_queries(
    client, account, holder, clinic, doctor, internal_medicine, django_assert_num_queries
):
    child = PatientFactory(name="王小宝")
    FamilyMember.objects.create(account=account, patient=child, relationship="child")
    first, second = clinic.slots.all()
    mine = appointment_book(patient=holder, slot=first, door=ONLINE)
    childs = appointment_book(patient=child, slot=second, door=ONLINE)
    later = session(doctor=doctor, department=internal_medicine, date=clinic.date + dt.timedelta(days=1))
    cancelled = appointment_book(patient=holder, slot=later.slots.first(), door=ONLINE)
    appointment_cancel(appointment=cancelled, by="patient")
    appointment_book(patient=PatientFactory(), slot=later.slots.last(), door=ONLINE)
    _signed_in(client, account)

    # session, account, appointments, waitlist, audit entry, session saved (update in a savepoint)
    with django_assert_num_queries(8):
        response = client.get("/portal/appointments/")

    assert response.context["upcoming"] == [mine, childs]
    assert response.context["past"] == [cancelled]
    entry = AuditEntry.objects.get(event="list")
    assert entry.client == "portal:+86138****5678"
    assert sorted(entry.additional_data["patients"]) == sorted([str(holder.uuid), str(child.uuid)])


def test_cancelling_gives_the_place_back(client, account, holder, clinic):
    booked = appointment_book(patient=holder, slot=clinic.slots.first(), door=ONLINE)
    _signed_in(client, account)

    response = client.post(f"/portal/appointments/{booked.uuid}/cancel/", follow=True)

    assert _messages(response) == ["The appointment is cancelled."]
    booked.refresh_from_db()
    assert (booked.status, booked.cancelled_by) == ("cancelled", "patient")
    assert clinic.slots.first().taken_online == 0


def test_cancelling_after_the_deadline_shows_why_and_changes_nothing(client, account, holder, clinic):
    booked = appointment_book(patient=holder, slot=clinic.slots.first(), door=ONLINE)
    BookingPolicy.objects.filter(pk=booking_policy().pk).update(cancel_days_before=5)
    booking_policy_forget()
    _signed_in(client, account)

    response = client.post(f"/portal/appointments/{booked.uuid}/cancel/", follow=True)

    deadline = timezone.make_aware(dt.datetime.combine(clinic.date - dt.timedelta(days=5), dt.time(18, 0)))
    assert _messages(response) == [
        f"Appointments can be cancelled online until {timezone.localtime(deadline):%Y-%m-%d %H:%M}; "
        "please call the hospital."
    ]
    booked.refresh_from_db()
    assert booked.status == "booked"


def test_rescheduling_moves_to_another_slot_of_the_same_doctor(client, account, holder, clinic):
    first, second = clinic.slots.all()
    booked = appointment_book(patient=holder, slot=first, door=ONLINE)
    _signed_in(client, account)

    page = client.get(f"/portal/appointments/{booked.uuid}/reschedule/")
    [(schedule, slots)] = page.context["sessions"]
    assert (schedule, slots) == (clinic, [second])

    response = client.post(f"/portal/appointments/{booked.uuid}/reschedule/", {"slot": str(second.uuid)})

    moved = Appointment.objects.get(patient=holder, status="booked")
    assert response["Location"] == f"/portal/appointments/{moved.uuid}/"
    assert (moved.slot, moved.visit_number) == (second, 2)
    booked.refresh_from_db()
    assert (booked.status, booked.rescheduled_to) == ("cancelled", moved)


def test_a_full_session_offers_the_waitlist_and_the_offer_is_accepted(
    client, account, holder, clinic, django_capture_on_commit_callbacks
):
    clinic.slots.exclude(pk=clinic.slots.first().pk).delete()
    taken = appointment_book(patient=PatientFactory(), slot=clinic.slots.first(), door=ONLINE)
    _signed_in(client, account)
    page = client.get(f"/portal/book/session/{clinic.uuid}/")
    assert page.context["full"] is True
    assert f"/portal/book/session/{clinic.uuid}/waitlist/" in page.content.decode()

    joined = client.post(f"/portal/book/session/{clinic.uuid}/waitlist/", {"patient": str(holder.uuid)}, follow=True)
    entry = WaitlistEntry.objects.get(patient=holder)
    assert entry.status == "waiting"
    assert f"/portal/waitlist/{entry.uuid}/" in joined.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        appointment_cancel(appointment=taken, by="patient")
    offer = client.get(f"/portal/waitlist/{entry.uuid}/")
    assert offer.context["offer_open"] is True
    assert 1790 <= offer.context["seconds"] <= 1800

    accepted = client.post(f"/portal/waitlist/{entry.uuid}/", {"accept": "1"})

    booked = Appointment.objects.get(patient=holder, status="booked")
    assert accepted["Location"] == f"/portal/appointments/{booked.uuid}/"
    assert WaitlistEntry.objects.get(pk=entry.pk).status == "booked"


def test_another_accounts_waitlist_offer_is_not_found(client, account, other_account, clinic):
    entry = waitlist_join(schedule=clinic, patient=other_account.members.get().patient, door=ONLINE)
    _signed_in(client, account)

    assert client.get(f"/portal/waitlist/{entry.uuid}/").status_code == 404
    assert client.post(f"/portal/waitlist/{entry.uuid}/", {"decline": "1"}).status_code == 404
    assert WaitlistEntry.objects.get(pk=entry.pk).status == "waiting"


def test_a_waitlist_link_from_the_sms_asks_to_sign_in_first(client, clinic, holder):
    entry = waitlist_join(schedule=clinic, patient=holder, door=ONLINE)

    response = client.get(f"/portal/waitlist/{entry.uuid}/")

    assert response["Location"] == f"/portal/sign-in/?next=%2Fportal%2Fwaitlist%2F{entry.uuid}%2F"


# --- Family members ------------------------------------------------------------------------------------


def test_family_members_are_added_and_removed(client, account):
    _signed_in(client, account)
    born = national_id("110105", dt.date(2015, 3, 9), 124)

    added = client.post(
        "/portal/family/", {"name": "王小宝", "national_id": born, "relationship": "child"}, follow=True
    )

    assert _messages(added) == ["Family member added."]
    member = account.members.get(relationship="child")
    assert (member.patient.name, member.patient.national_id) == ("王小宝", born)
    removed = client.post(f"/portal/family/{member.uuid}/remove/", follow=True)
    assert _messages(removed) == ["Family member removed."]
    assert list(account.members.values_list("relationship", flat=True)) == ["self"]


def test_a_family_member_with_a_bad_id_is_refused_on_the_form(client, account):
    _signed_in(client, account)

    response = client.post("/portal/family/", {"name": "王小宝", "national_id": "110105", "relationship": "child"})

    assert response.status_code == 200
    assert response.context["form"].errors["national_id"] == [
        "A national ID number has 17 digits followed by a digit or X."
    ]
    assert account.members.count() == 1


def test_another_accounts_family_member_cannot_be_removed(client, account, other_account):
    _signed_in(client, account)
    theirs = other_account.members.get()

    assert client.post(f"/portal/family/{theirs.uuid}/remove/").status_code == 404
    assert FamilyMember.objects.filter(pk=theirs.pk).exists()


def test_letting_go_of_a_hold_returns_to_the_times(client, account, holder, clinic):
    _signed_in(client, account)
    slot = clinic.slots.first()
    client.post(f"/portal/book/session/{clinic.uuid}/", {"patient": str(holder.uuid), "slot": str(slot.uuid)})
    held = Appointment.objects.get()

    response = client.post(f"/portal/appointments/{held.uuid}/cancel/")

    assert response["Location"] == f"/portal/book/session/{clinic.uuid}/"
    held.refresh_from_db()
    assert held.status == "cancelled"
    slot.refresh_from_db()
    assert slot.taken_online == 0
    listed = client.get("/portal/appointments/")
    assert (listed.context["upcoming"], listed.context["past"]) == ([], [])


def test_an_expired_hold_cannot_be_confirmed_and_says_so(client, account, holder, clinic):
    _signed_in(client, account)
    slot = clinic.slots.first()
    client.post(f"/portal/book/session/{clinic.uuid}/", {"patient": str(holder.uuid), "slot": str(slot.uuid)})
    held = Appointment.objects.get()
    Appointment.objects.filter(pk=held.pk).update(hold_expires_at=timezone.now() - dt.timedelta(seconds=1))

    response = client.post(f"/portal/appointments/{held.uuid}/confirm/", follow=True)

    assert _messages(response) == ["The hold on this place has expired; choose a slot again."]
    held.refresh_from_db()
    assert (held.status, held.visit_number) == ("expired", None)
    slot.refresh_from_db()
    assert slot.taken_online == 0


def test_rescheduling_after_the_deadline_or_to_another_doctor_changes_nothing(
    client, account, holder, clinic, staff, internal_medicine
):
    first, second = clinic.slots.all()
    booked = appointment_book(patient=holder, slot=first, door=ONLINE)
    elsewhere = session(doctor=staff["other_doctor"], department=internal_medicine)
    _signed_in(client, account)

    other_doctor = client.post(
        f"/portal/appointments/{booked.uuid}/reschedule/", {"slot": str(elsewhere.slots.first().uuid)}
    )
    BookingPolicy.objects.filter(pk=booking_policy().pk).update(cancel_days_before=5)
    booking_policy_forget()
    too_late = client.post(f"/portal/appointments/{booked.uuid}/reschedule/", {"slot": str(second.uuid)}, follow=True)

    assert other_doctor.status_code == 404
    assert _messages(too_late)[0].startswith("Appointments can be changed online until ")
    booked.refresh_from_db()
    assert (booked.status, booked.slot) == ("booked", first)
    second.refresh_from_db()
    assert second.taken_online == 0


def test_a_stopped_clinic_says_so_instead_of_offering_times(client, account, clinic):
    clinic.status = "stopped"
    clinic.save()
    _signed_in(client, account)

    response = client.get(f"/portal/book/session/{clinic.uuid}/")

    html = response.content.decode()
    assert "This clinic is closed for booking; choose another day." in html
    assert 'name="slot"' not in html


def test_the_doctor_list_takes_the_same_queries_for_more_doctors_and_names_departments_in_english(
    client, account, clinic, internal_medicine, django_assert_num_queries
):
    for index in range(3):
        colleague = UserFactory(full_name=f"医生{index}", roles=["doctor"], departments=[internal_medicine])
        session(doctor=colleague, department=internal_medicine)
    booking_policy()
    _signed_in(client, account)

    # session, account, department, sessions with doctors and profiles, session saved (3, in a savepoint);
    # the booking rules are kept
    with django_assert_num_queries(7):
        response = client.get(f"/portal/book/department/{internal_medicine.uuid}/", headers={"accept-language": "en"})

    assert len(response.context["cards"]) == 4
    assert "<h1>Internal medicine</h1>" in response.content.decode()


def test_a_doctor_with_a_photo_shows_it_instead_of_initials(client, account, clinic, doctor, internal_medicine):
    DoctorProfile.objects.create(doctor=doctor, photo="doctors/li.jpg")
    _signed_in(client, account)

    html = client.get(f"/portal/book/department/{internal_medicine.uuid}/").content.decode()

    assert '<img class="avatar" src="/media/doctors/li.jpg" alt="" width="56" height="56">' in html
    assert "avatar initials" not in html


def test_the_language_switch_turns_the_portal_to_english(client, account):
    _signed_in(client, account)
    assert '<html lang="zh-hans">' in client.get("/portal/", headers={"accept-language": "zh-hans"}).content.decode()

    switched = client.post("/i18n/setlang/", {"language": "en", "next": "/portal/"})

    assert switched["Location"] == "/portal/"
    html = client.get("/portal/", headers={"accept-language": "zh-hans"}).content.decode()
    assert '<html lang="en">' in html
    assert 'value="zh-hans"' in html


def test_declining_an_offer_leaves_the_waitlist_and_frees_the_place(
    client, account, holder, clinic, django_capture_on_commit_callbacks
):
    clinic.slots.exclude(pk=clinic.slots.first().pk).delete()
    taken = appointment_book(patient=PatientFactory(), slot=clinic.slots.first(), door=ONLINE)
    entry = waitlist_join(schedule=clinic, patient=holder, door=ONLINE)
    with django_capture_on_commit_callbacks(execute=True):
        appointment_cancel(appointment=taken, by="patient")
    _signed_in(client, account)

    response = client.post(f"/portal/waitlist/{entry.uuid}/", {"decline": "1"}, follow=True)

    assert _messages(response) == ["You have left the waitlist."]
    entry.refresh_from_db()
    assert (entry.status, entry.appointment.status) == ("cancelled", "cancelled")
    assert clinic.slots.first().taken_online == 0


def test_a_next_page_with_a_query_string_survives_the_code_page(client, holder):
    response = client.post("/portal/sign-in/", {"mobile": MOBILE, "next": "/portal/book/?a=1&b=2"})

    assert response["Location"] == "/portal/sign-in/code/?next=%2Fportal%2Fbook%2F%3Fa%3D1%26b%3D2"
