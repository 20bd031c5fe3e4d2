"""Portal pages of booking: department, doctor, day and time; confirming a hold; my appointments; waitlist offers."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    CancelledBy,
    Schedule,
    ScheduleStatus,
    Slot,
    WaitlistEntry,
    WaitlistStatus,
)
from appointments.portal.session import portal_required
from appointments.portal.views.common import (
    ONLINE,
    account_members,
    audit_portal_read,
    booking_door,
    member_patient,
    member_patient_and_slot,
    own_appointment,
    posted_uuid,
    refusal_show,
)
from appointments.selectors import (
    account_appointments,
    account_patient_ids,
    booking_policy,
    booking_window,
    schedules_bookable,
    sessions_for_patients,
    slot_free_places,
)
from appointments.services import (
    BookingRefused,
    appointment_cancel,
    appointment_confirm,
    appointment_hold,
    appointment_reschedule,
    cancel_deadline,
    waitlist_accept,
    waitlist_join,
    waitlist_leave,
)
from hcrm.audit import Event
from hcrm.models import Department


@portal_required
def book_departments(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    start, end = booking_window(booking_policy(), now)
    sessions = sessions_for_patients(start=start, end=end, now=now)
    departments = Department.objects.filter(pk__in=sessions.values("department_id"), is_active=True).order_by("code")
    return render(request, "appointments/portal/departments.html", {"departments": departments})


def _doctor_cards(sessions) -> list[dict]:
    """One card per doctor: the next session's fee and the online places free over the window."""
    cards: dict[int, dict] = {}
    for schedule in sessions:
        card = cards.setdefault(
            schedule.doctor_id,
            {"doctor": schedule.doctor, "profile": _profile(schedule.doctor), "fee": schedule.fee, "free": 0},
        )
        if schedule.releases_at <= timezone.now():
            card["free"] += max(schedule.free_online or 0, 0)
    return list(cards.values())


def _profile(doctor):
    return getattr(doctor, "doctor_profile", None)


@portal_required
def book_doctors(request: HttpRequest, department) -> HttpResponse:
    department = get_object_or_404(Department, uuid=department, is_active=True)
    policy = booking_policy()
    start, end = booking_window(policy)
    sessions = (
        schedules_bookable(department=department, start=start, end=end)
        .filter(ends_at__gt=timezone.now())
        .exclude(doctor__doctor_profile__is_bookable=False)
        .select_related("doctor__doctor_profile")
    )
    context = {"department": department, "cards": _doctor_cards(sessions)}
    return render(request, "appointments/portal/doctors.html", context)


@portal_required
def book_doctor(request: HttpRequest, doctor) -> HttpResponse:
    doctor = get_object_or_404(get_user_model(), uuid=doctor, is_active=True)
    policy = booking_policy()
    now = timezone.now()
    start, end = booking_window(policy, now)
    sessions = list(
        schedules_bookable(doctor=doctor, start=start, end=end)
        .filter(ends_at__gt=now)
        .exclude(doctor__doctor_profile__is_bookable=False)
    )
    days: dict = defaultdict(list)
    for schedule in sessions:
        schedule.released = schedule.releases_at <= now
        schedule.free_places = max(schedule.free_online or 0, 0) if schedule.released else 0
        days[schedule.date].append(schedule)
    context = {
        "doctor": doctor,
        "profile": _profile(doctor),
        "days": sorted(days.items()),
    }
    return render(request, "appointments/portal/doctor.html", context)


def _slots_with_places(schedule: Schedule, policy, now) -> list[Slot]:
    slots = list(schedule.slots.order_by("starts_at"))
    for slot in slots:
        slot.schedule = schedule
        slot.free_places = slot_free_places(slot, ONLINE, policy, now) if slot.starts_at > now else 0
    return slots


@portal_required
def book_session(request: HttpRequest, schedule) -> HttpResponse:
    if request.method == "POST":
        # At release time every patient posts here at once: the slot is read as booking reads it, once.
        patient, slot = member_patient_and_slot(
            request, request.POST.get("patient"), posted_uuid(request.POST.get("slot"))
        )
        if slot is None or slot.schedule.uuid != schedule:
            raise Http404
        try:
            held = appointment_hold(patient=patient, slot=slot, door=booking_door(request))
        except BookingRefused as refusal:
            refusal_show(request, refusal)
            return redirect("portal:book-session", schedule=schedule)
        return redirect("portal:confirm", appointment=held.uuid)
    schedule = get_object_or_404(Schedule.objects.select_related("doctor", "department"), uuid=schedule)
    policy = booking_policy()
    now = timezone.now()
    slots = _slots_with_places(schedule, policy, now)
    members = account_members(request)
    audit_portal_read(request, [member.patient.uuid for member in members], event=Event.LIST)
    context = {
        "schedule": schedule,
        "slots": slots,
        "stopped": schedule.status != ScheduleStatus.OPEN or schedule.ends_at <= now,
        "full": schedule.releases_at <= now and not any(slot.free_places for slot in slots),
        "released": schedule.releases_at <= now,
        "members": members,
    }
    return render(request, "appointments/portal/session.html", context)


@portal_required
@require_POST
def waitlist_join_view(request: HttpRequest, schedule) -> HttpResponse:
    schedule = get_object_or_404(Schedule, uuid=schedule)
    patient = member_patient(request, request.POST.get("patient"))
    try:
        waitlist_join(schedule=schedule, patient=patient, door=booking_door(request))
    except BookingRefused as refusal:
        refusal_show(request, refusal)
        return redirect("portal:book-session", schedule=schedule.uuid)
    messages.success(request, _("You are on the waitlist. We will send an SMS if a place becomes free."))
    return redirect("portal:appointments")


@portal_required
def confirm(request: HttpRequest, appointment) -> HttpResponse:
    appointment = own_appointment(request, appointment)
    if request.method == "POST":
        try:
            booked = appointment_confirm(appointment=appointment, door=booking_door(request))
        except BookingRefused as refusal:
            refusal_show(request, refusal)
            return redirect("portal:book-session", schedule=appointment.schedule.uuid)
        return redirect("portal:appointment", appointment=booked.uuid)
    if appointment.status != AppointmentStatus.HELD:
        return redirect("portal:appointment", appointment=appointment.uuid)
    audit_portal_read(request, [appointment.patient.uuid])
    seconds = max(int((appointment.hold_expires_at - timezone.now()).total_seconds()), 0)
    return render(request, "appointments/portal/confirm.html", {"appointment": appointment, "seconds": seconds})


@portal_required
def appointment_detail(request: HttpRequest, appointment) -> HttpResponse:
    appointment = own_appointment(request, appointment)
    audit_portal_read(request, [appointment.patient.uuid])
    context = {
        "appointment": appointment,
        "upcoming": _is_upcoming(appointment),
        "deadline": cancel_deadline(appointment, booking_policy()),
    }
    return render(request, "appointments/portal/appointment.html", context)


def _is_upcoming(appointment: Appointment) -> bool:
    return appointment.status in (AppointmentStatus.HELD, AppointmentStatus.BOOKED) and (
        appointment.slot.ends_at > timezone.now()
    )


@portal_required
def my_appointments(request: HttpRequest) -> HttpResponse:
    # Holds that were let go or ran out were never appointments to the patient.
    appointments = list(
        account_appointments(request.portal_account)
        .exclude(visit_number__isnull=True, status__in=[AppointmentStatus.CANCELLED, AppointmentStatus.EXPIRED])
        .order_by("slot__starts_at", "pk")
    )
    upcoming = [appointment for appointment in appointments if _is_upcoming(appointment)]
    past = [appointment for appointment in reversed(appointments) if not _is_upcoming(appointment)]
    waiting = list(
        WaitlistEntry.objects.filter(
            patient__portal_links__account=request.portal_account,
            status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED],
        ).select_related("patient", "schedule__doctor", "schedule__department")
    )
    audit_portal_read(
        request,
        [appointment.patient.uuid for appointment in appointments] + [entry.patient.uuid for entry in waiting],
        event=Event.LIST,
    )
    context = {"upcoming": upcoming, "past": past, "waiting": waiting}
    return render(request, "appointments/portal/appointments.html", context)


@portal_required
@require_POST
def cancel(request: HttpRequest, appointment) -> HttpResponse:
    appointment = own_appointment(request, appointment)
    was_held = appointment.status == AppointmentStatus.HELD
    try:
        appointment_cancel(appointment=appointment, by=CancelledBy.PATIENT, reason="portal")
    except BookingRefused as refusal:
        refusal_show(request, refusal)
        return redirect("portal:appointment", appointment=appointment.uuid)
    if was_held:  # the patient let go of a hold to choose another time
        return redirect("portal:book-session", schedule=appointment.schedule.uuid)
    messages.success(request, _("The appointment is cancelled."))
    return redirect("portal:appointments")


@portal_required
def reschedule(request: HttpRequest, appointment) -> HttpResponse:
    appointment = own_appointment(request, appointment)
    if appointment.status != AppointmentStatus.BOOKED:
        raise Http404
    if request.method == "POST":
        slot = get_object_or_404(Slot, uuid=posted_uuid(request.POST.get("slot")), schedule__doctor=appointment.doctor)
        try:
            moved = appointment_reschedule(appointment=appointment, slot=slot, door=booking_door(request))
        except BookingRefused as refusal:
            refusal_show(request, refusal)
            return redirect("portal:reschedule", appointment=appointment.uuid)
        messages.success(request, _("The appointment is moved."))
        return redirect("portal:appointment", appointment=moved.uuid)
    policy = booking_policy()
    now = timezone.now()
    start, end = booking_window(policy, now)
    sessions = [
        (schedule, [slot for slot in _slots_with_places(schedule, policy, now) if slot.free_places])
        for schedule in sessions_for_patients(start=start, end=end, now=now)
        .filter(doctor=appointment.doctor)
        .select_related("department")
    ]
    audit_portal_read(request, [appointment.patient.uuid])
    context = {"appointment": appointment, "sessions": [(schedule, slots) for schedule, slots in sessions if slots]}
    return render(request, "appointments/portal/reschedule.html", context)


@portal_required
def waitlist_offer(request: HttpRequest, entry) -> HttpResponse:
    entry = get_object_or_404(
        WaitlistEntry.objects.select_related(
            "patient", "schedule__doctor", "schedule__department", "appointment__slot"
        ),
        uuid=entry,
        patient_id__in=account_patient_ids(request.portal_account),
    )
    if request.method == "POST":
        try:
            if request.POST.get("decline"):
                waitlist_leave(entry=entry)
                messages.success(request, _("You have left the waitlist."))
                return redirect("portal:appointments")
            booked = waitlist_accept(entry=entry, door=booking_door(request))
        except BookingRefused as refusal:
            refusal_show(request, refusal)
            return redirect("portal:waitlist-offer", entry=entry.uuid)
        return redirect("portal:appointment", appointment=booked.uuid)
    audit_portal_read(request, [entry.patient.uuid])
    now = timezone.now()
    offer_open = (
        entry.status == WaitlistStatus.OFFERED
        and entry.appointment is not None
        and entry.appointment.status in ACTIVE_STATUSES
        and entry.offer_expires_at is not None
        and entry.offer_expires_at > now
    )
    seconds = max(int((entry.offer_expires_at - now).total_seconds()), 0) if offer_open else 0
    context = {"entry": entry, "offer_open": offer_open, "seconds": seconds}
    return render(request, "appointments/portal/waitlist_offer.html", context)
