"""Portal pages: load, call a service, render. Every page but sign-in and registration needs a signed-in account."""

from __future__ import annotations

import uuid
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from appointments.models import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentStatus,
    BookingChannel,
    CancelledBy,
    FamilyMember,
    Schedule,
    ScheduleStatus,
    Slot,
    WaitlistEntry,
    WaitlistStatus,
)
from appointments.portal.forms import CodeForm, FamilyMemberForm, MobileForm, RegisterForm, errors_onto
from appointments.portal.session import (
    PENDING_MOBILE_KEY,
    portal_account,
    portal_audit_as,
    portal_required,
    portal_sign_in,
    portal_sign_out,
    safe_next,
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
    BookingDoor,
    BookingRefused,
    appointment_cancel,
    appointment_confirm,
    appointment_hold,
    appointment_reschedule,
    cancel_deadline,
    family_member_add,
    family_member_remove,
    login_code_request,
    login_code_verify,
    portal_label,
    portal_register,
    waitlist_accept,
    waitlist_join,
    waitlist_leave,
)
from hcrm.audit import Event, audit_acting_as, audit_read
from hcrm.masking import mask_phone
from hcrm.models import Department

ONLINE = BookingChannel.ONLINE


def _door(request) -> BookingDoor:
    return BookingDoor(channel=ONLINE, portal_account=request.portal_account)


def _client_address(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _refused(request, refusal: ValidationError) -> None:
    for message in refusal.messages:
        messages.error(request, message)


def _audit_view(request, patient_uuids, *, event=Event.VIEW, details=None) -> None:
    """One audit entry for a portal page that showed these patients' data."""
    uuids = sorted({str(value) for value in patient_uuids})
    if not uuids:
        return
    with audit_acting_as(portal_label(request.portal_account.mobile)):
        audit_read(
            event=event,
            patient_uuid=uuids[0] if len(uuids) == 1 else None,
            details={"page": request.resolver_match.url_name, "patients": uuids, **(details or {})},
        )


def _members(request):
    return list(request.portal_account.members.select_related("patient").order_by("created_at", "pk"))


def _uuid(value) -> uuid.UUID:
    """A UUID sent in a form, or 404."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Http404 from None


def _member_patient(request, patient_uuid):
    member = (
        FamilyMember.objects.filter(account=request.portal_account, patient__uuid=_uuid(patient_uuid))
        .select_related("patient")
        .first()
    )
    if member is None:
        raise Http404
    return member.patient


def _own_appointment(request, appointment_uuid) -> Appointment:
    """An appointment of a patient this account books for; anyone else's is not found."""
    return get_object_or_404(account_appointments(request.portal_account), uuid=appointment_uuid)


# --- Signing in -------------------------------------------------------------------------------------


def sign_in(request: HttpRequest) -> HttpResponse:
    if portal_account(request) is not None and request.method == "GET":
        return redirect(safe_next(request, reverse("portal:home")))
    form = MobileForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        portal_audit_as(form.cleaned_data["mobile"])
        try:
            requested = login_code_request(mobile=form.cleaned_data["mobile"], client_address=_client_address(request))
        except ValidationError as error:
            errors_onto(form, error)
        else:
            request.session[PENDING_MOBILE_KEY] = requested.mobile
            return _to_code_page(request)
    return render(request, "appointments/portal/sign_in.html", {"form": form, "next": safe_next(request, "")})


def _to_code_page(request) -> HttpResponse:
    target = reverse("portal:sign-in-code")
    next_url = safe_next(request, "")
    return redirect(f"{target}?next={next_url}" if next_url else target)


def sign_in_code(request: HttpRequest) -> HttpResponse:
    mobile = request.session.get(PENDING_MOBILE_KEY)
    if not mobile:
        return redirect("portal:sign-in")
    form = CodeForm(request.POST or None)
    portal_audit_as(mobile)
    if request.method == "POST" and form.is_valid():
        try:
            account = login_code_verify(mobile=mobile, code=form.cleaned_data["code"])
        except ValidationError as error:
            errors_onto(form, error)
        else:
            portal_sign_in(request, account)
            with audit_acting_as(portal_label(account.mobile)):
                audit_read(event=Event.LOGIN, details={"portal_account": str(account.uuid)})
            return redirect(safe_next(request, reverse("portal:home")))
    context = {"form": form, "masked_mobile": mask_phone(mobile), "next": safe_next(request, "")}
    return render(request, "appointments/portal/sign_in_code.html", context)


def register(request: HttpRequest) -> HttpResponse:
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        portal_audit_as(form.cleaned_data["mobile"])
        try:
            requested = portal_register(client_address=_client_address(request), **form.cleaned_data)
        except ValidationError as error:
            errors_onto(form, error)
        else:
            request.session[PENDING_MOBILE_KEY] = requested.mobile
            return _to_code_page(request)
    return render(request, "appointments/portal/register.html", {"form": form, "next": safe_next(request, "")})


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    portal_sign_out(request)
    return redirect("portal:sign-in")


# --- Home and booking --------------------------------------------------------------------------------


@portal_required
def home(request: HttpRequest) -> HttpResponse:
    members = _members(request)
    upcoming = (
        account_appointments(request.portal_account)
        .filter(status__in=[AppointmentStatus.HELD, AppointmentStatus.BOOKED], slot__ends_at__gt=timezone.now())
        .count()
    )
    return render(request, "appointments/portal/home.html", {"members": members, "upcoming": upcoming})


def _offered_sessions():
    policy = booking_policy()
    now = timezone.now()
    start, end = booking_window(policy, now)
    return sessions_for_patients(start=start, end=end, now=now), policy, now


@portal_required
def book_departments(request: HttpRequest) -> HttpResponse:
    sessions, _policy, _now = _offered_sessions()
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
    schedule = get_object_or_404(Schedule.objects.select_related("doctor", "department"), uuid=schedule)
    if request.method == "POST":
        patient = _member_patient(request, request.POST.get("patient"))
        slot = get_object_or_404(Slot, uuid=_uuid(request.POST.get("slot")), schedule=schedule)
        try:
            held = appointment_hold(patient=patient, slot=slot, door=_door(request))
        except BookingRefused as refusal:
            _refused(request, refusal)
            return redirect("portal:book-session", schedule=schedule.uuid)
        return redirect("portal:confirm", appointment=held.uuid)
    policy = booking_policy()
    now = timezone.now()
    slots = _slots_with_places(schedule, policy, now)
    members = _members(request)
    _audit_view(request, [member.patient.uuid for member in members], event=Event.LIST)
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
    patient = _member_patient(request, request.POST.get("patient"))
    try:
        waitlist_join(schedule=schedule, patient=patient, door=_door(request))
    except BookingRefused as refusal:
        _refused(request, refusal)
        return redirect("portal:book-session", schedule=schedule.uuid)
    messages.success(request, _("You are on the waitlist. We will send an SMS if a place becomes free."))
    return redirect("portal:appointments")


@portal_required
def confirm(request: HttpRequest, appointment) -> HttpResponse:
    appointment = _own_appointment(request, appointment)
    if request.method == "POST":
        try:
            booked = appointment_confirm(appointment=appointment, door=_door(request))
        except BookingRefused as refusal:
            _refused(request, refusal)
            return redirect("portal:book-session", schedule=appointment.schedule.uuid)
        return redirect("portal:appointment", appointment=booked.uuid)
    if appointment.status != AppointmentStatus.HELD:
        return redirect("portal:appointment", appointment=appointment.uuid)
    _audit_view(request, [appointment.patient.uuid])
    seconds = max(int((appointment.hold_expires_at - timezone.now()).total_seconds()), 0)
    return render(request, "appointments/portal/confirm.html", {"appointment": appointment, "seconds": seconds})


@portal_required
def appointment_detail(request: HttpRequest, appointment) -> HttpResponse:
    appointment = _own_appointment(request, appointment)
    _audit_view(request, [appointment.patient.uuid])
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
    appointments = list(account_appointments(request.portal_account).order_by("slot__starts_at", "pk"))
    upcoming = [appointment for appointment in appointments if _is_upcoming(appointment)]
    past = [appointment for appointment in reversed(appointments) if not _is_upcoming(appointment)]
    waiting = list(
        WaitlistEntry.objects.filter(
            patient__portal_links__account=request.portal_account,
            status__in=[WaitlistStatus.WAITING, WaitlistStatus.OFFERED],
        ).select_related("patient", "schedule__doctor", "schedule__department")
    )
    _audit_view(
        request,
        [appointment.patient.uuid for appointment in appointments] + [entry.patient.uuid for entry in waiting],
        event=Event.LIST,
    )
    context = {"upcoming": upcoming, "past": past, "waiting": waiting}
    return render(request, "appointments/portal/appointments.html", context)


@portal_required
@require_POST
def cancel(request: HttpRequest, appointment) -> HttpResponse:
    appointment = _own_appointment(request, appointment)
    was_held = appointment.status == AppointmentStatus.HELD
    try:
        appointment_cancel(appointment=appointment, by=CancelledBy.PATIENT, reason="portal")
    except BookingRefused as refusal:
        _refused(request, refusal)
        return redirect("portal:appointment", appointment=appointment.uuid)
    if was_held:  # the patient let go of a hold to choose another time
        return redirect("portal:book-session", schedule=appointment.schedule.uuid)
    messages.success(request, _("The appointment is cancelled."))
    return redirect("portal:appointments")


@portal_required
def reschedule(request: HttpRequest, appointment) -> HttpResponse:
    appointment = _own_appointment(request, appointment)
    if appointment.status != AppointmentStatus.BOOKED:
        raise Http404
    if request.method == "POST":
        slot = get_object_or_404(Slot, uuid=_uuid(request.POST.get("slot")), schedule__doctor=appointment.doctor)
        try:
            moved = appointment_reschedule(appointment=appointment, slot=slot, door=_door(request))
        except BookingRefused as refusal:
            _refused(request, refusal)
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
    _audit_view(request, [appointment.patient.uuid])
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
            booked = waitlist_accept(entry=entry, door=_door(request))
        except BookingRefused as refusal:
            _refused(request, refusal)
            return redirect("portal:waitlist-offer", entry=entry.uuid)
        return redirect("portal:appointment", appointment=booked.uuid)
    _audit_view(request, [entry.patient.uuid])
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


# --- Family members ----------------------------------------------------------------------------------


@portal_required
def family(request: HttpRequest) -> HttpResponse:
    form = FamilyMemberForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            family_member_add(account=request.portal_account, **form.cleaned_data)
        except ValidationError as error:
            errors_onto(form, error)
        else:
            messages.success(request, _("Family member added."))
            return redirect("portal:family")
    members = _members(request)
    _audit_view(request, [member.patient.uuid for member in members], event=Event.LIST)
    return render(request, "appointments/portal/family.html", {"members": members, "form": form})


@portal_required
@require_POST
def family_remove(request: HttpRequest, member) -> HttpResponse:
    member = get_object_or_404(FamilyMember, uuid=member, account=request.portal_account)
    try:
        family_member_remove(member=member)
    except ValidationError as error:
        _refused(request, error)
    else:
        messages.success(request, _("Family member removed."))
    return redirect("portal:family")
