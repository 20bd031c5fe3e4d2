"""The booking desk: agents on the phone and staff at the window book, cancel and move bookings for a
patient, put them on a waitlist, and lift a no-show restriction."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from appointments.models import (
    ACTIVE_STATUSES,
    BookingChannel,
    BookingRestriction,
    CancelledBy,
    Schedule,
    ScheduleStatus,
    Slot,
)
from appointments.selectors import (
    active_restriction,
    appointments_visible_to,
    booking_department_ids,
    booking_policy,
    patients_bookable_by,
    schedules_visible_to,
    slot_free_places,
    user_sees_all_departments,
    waitlist_visible_to,
)
from appointments.services import (
    BookingDoor,
    appointment_book,
    appointment_cancel,
    appointment_reschedule,
    restriction_lift,
    waitlist_join,
    waitlist_leave,
)
from hcrm.audit import Event, audit_read
from hcrm.models import Department
from patients.selectors import patients_matching, search_kind

BOOK = ["appointments.view_appointment", "appointments.add_appointment"]
CHANGE = ["appointments.view_appointment", "appointments.change_appointment"]
STAFF_CHANNELS = [
    (BookingChannel.PHONE, BookingChannel.PHONE.label),
    (BookingChannel.WINDOW, BookingChannel.WINDOW.label),
]
SEARCH_LIMIT = 20
# Sessions offered: the days online booking is open, and a week beyond for staff.
EXTRA_DAYS = 7


# --- Forms ------------------------------------------------------------------------------------------------


class ObjectChoiceField(forms.ChoiceField):
    """A choice among objects loaded once (a ModelChoiceField queries again each time it is rendered)."""

    def __init__(self, *, key: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.objects: dict[str, object] = {}

    def load(self, objects) -> list:
        objects = list(objects)
        self.objects = {str(getattr(item, self.key)): item for item in objects}
        self.choices = [(value, str(item)) for value, item in self.objects.items()]
        return objects

    def clean(self, value):
        value = super().clean(value)
        return self.objects.get(value) if value else None


class DeskForm(forms.Form):
    """The desk's steps, all in the query string: find the patient, then department, doctor and channel."""

    q = forms.CharField(label=gettext_lazy("Find the patient"), required=False, max_length=100)
    patient = forms.UUIDField(required=False, widget=forms.HiddenInput)
    department = ObjectChoiceField(key="code", label=gettext_lazy("Department"), required=False)
    doctor = forms.UUIDField(required=False, widget=forms.HiddenInput)
    channel = forms.ChoiceField(label=gettext_lazy("Booked through"), choices=STAFF_CHANNELS, required=False)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].load(_departments(user))


class BookForm(forms.Form):
    patient = forms.UUIDField()
    slot = forms.UUIDField()
    channel = forms.ChoiceField(choices=STAFF_CHANNELS)


class CancelForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)


class RescheduleForm(forms.Form):
    slot = forms.UUIDField()


class WaitlistJoinForm(forms.Form):
    patient = forms.UUIDField()
    schedule = forms.UUIDField()
    channel = forms.ChoiceField(choices=STAFF_CHANNELS)


class LiftForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why is online booking given back?"),
        max_length=200,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


# --- Helpers ---------------------------------------------------------------------------------------------


def _departments(user):
    departments = Department.objects.filter(is_active=True)
    department_ids = booking_department_ids(user)
    if department_ids is not None:
        departments = departments.filter(pk__in=sorted(department_ids))
    return departments


def _default_channel(user) -> str:
    """The call centre books by phone; staff of a department book at its window."""
    return BookingChannel.PHONE if user_sees_all_departments(user) else BookingChannel.WINDOW


def _bookable_sessions(*, department, days: int) -> list[Schedule]:
    """Open sessions of a department from today, with their slots, for the desk and for moving a booking."""
    today = timezone.localdate()
    sessions = Schedule.objects.filter(
        department=department,
        date__gte=today,
        date__lte=today + dt.timedelta(days=days),
        status=ScheduleStatus.OPEN,
        ends_at__gt=timezone.now(),
    )
    return list(
        sessions.select_related("doctor")
        .prefetch_related(Prefetch("slots", queryset=Slot.objects.order_by("starts_at")))
        .order_by("date", "starts_at", "doctor_id")
    )


def _with_free_places(sessions, channel: str, policy) -> None:
    """Each slot's free places through `channel` now; each session's total."""
    now = timezone.now()
    for session in sessions:
        for slot in session.slots.all():
            slot.free_places = slot_free_places(slot, channel, policy, now) if slot.starts_at > now else 0
        session.free_places = sum(slot.free_places for slot in session.slots.all())


def _desk_url(patient_uuid, **params) -> str:
    query = {"patient": str(patient_uuid), **{key: value for key, value in params.items() if value}}
    return reverse("appointments:desk") + "?" + urlencode(query)


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect(fallback)


def _refused(request: HttpRequest, refusal: ValidationError) -> None:
    messages.error(request, " ".join(refusal.messages))


# --- The desk --------------------------------------------------------------------------------------------


@login_required
@permission_required(BOOK, raise_exception=True)
def desk(request: HttpRequest) -> HttpResponse:
    """Find the patient, then choose a department, a doctor and a slot; or cancel, move, join a waitlist."""
    user = request.user
    form = DeskForm(request.GET or None, user=user)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    status = 400 if form.is_bound and form.errors else 200
    context: dict = {"form": form, "channel": data.get("channel") or _default_channel(user)}
    if data.get("q") and not data.get("patient"):
        found = list(patients_matching(patients_bookable_by(user), data["q"])[:SEARCH_LIMIT])
        audit_read(
            event=Event.SEARCH,
            details={"query": data["q"], "kind": search_kind(data["q"]), "patients": [str(p.uuid) for p in found]},
        )
        context["found"] = found
    if data.get("patient"):
        patient = get_object_or_404(patients_bookable_by(user), uuid=data["patient"])
        audit_read(event=Event.VIEW, instance=patient, details={"part": "booking desk"})
        context.update(_patient_context(user, patient))
        department = data.get("department")
        if department is not None:
            policy = booking_policy()
            sessions = _bookable_sessions(department=department, days=policy.release_days_ahead + EXTRA_DAYS)
            # The doctors to choose from are those with open sessions; choosing one narrows the list.
            doctors = list({session.doctor_id: session.doctor for session in sessions}.values())
            chosen = data.get("doctor")
            if chosen:
                sessions = [session for session in sessions if session.doctor.uuid == chosen]
            _with_free_places(sessions, context["channel"], policy)
            context.update({"department": department, "sessions": sessions, "doctors": doctors, "doctor_uuid": chosen})
    return render(request, "appointments/bookings/desk.html", context, status=status)


def _patient_context(user, patient) -> dict:
    upcoming = (
        appointments_visible_to(user)
        .filter(patient=patient, status__in=ACTIVE_STATUSES, date__gte=timezone.localdate())
        .select_related("slot", "schedule__department", "doctor")
        .order_by("date", "slot__starts_at")
    )
    waiting = (
        waitlist_visible_to(user)
        .filter(patient=patient, status__in=["waiting", "offered"])
        .select_related("schedule__doctor", "schedule__department")
        .order_by("created_at")
    )
    return {
        "patient": patient,
        "restriction": active_restriction(patient),
        "upcoming": list(upcoming),
        "waiting": list(waiting),
    }


@login_required
@require_POST
@permission_required(BOOK, raise_exception=True)
def book(request: HttpRequest) -> HttpResponse:
    """Book the patient into the chosen slot as the signed-in staff member (phone or window)."""
    form = BookForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a patient and a time slot."))
        return redirect("appointments:desk")
    data = form.cleaned_data
    patient = get_object_or_404(patients_bookable_by(request.user), uuid=data["patient"])
    slots = Slot.objects.select_related("schedule__department")
    department_ids = booking_department_ids(request.user)
    if department_ids is not None:
        slots = slots.filter(schedule__department_id__in=sorted(department_ids))
    slot = get_object_or_404(slots, uuid=data["slot"])
    try:
        booked = appointment_book(
            patient=patient, slot=slot, door=BookingDoor(channel=data["channel"], actor=request.user)
        )
    except ValidationError as refusal:
        _refused(request, refusal)
    else:
        messages.success(
            request,
            _("Booked: %(patient)s, %(time)s, visit number %(number)d.")
            % {
                "patient": patient.name,
                "time": timezone.localtime(slot.starts_at).strftime("%Y-%m-%d %H:%M"),
                "number": booked.visit_number,
            },
        )
    return redirect(_desk_url(patient.uuid, department=slot.schedule.department.code, channel=data["channel"]))


@login_required
@require_POST
@permission_required(CHANGE, raise_exception=True)
def cancel(request: HttpRequest, uuid) -> HttpResponse:
    """Cancel on the patient's behalf: staff are not bound by the patient's deadline."""
    appointment = get_object_or_404(appointments_visible_to(request.user).select_related("patient"), uuid=uuid)
    form = CancelForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say why the appointment is cancelled."))
    else:
        try:
            appointment_cancel(
                appointment=appointment, by=CancelledBy.STAFF, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as refusal:
            _refused(request, refusal)
        else:
            messages.success(request, _("Appointment cancelled; the patient is told by SMS."))
    return _back(request, _desk_url(appointment.patient.uuid))


@login_required
@permission_required(CHANGE, raise_exception=True)
def reschedule(request: HttpRequest, uuid) -> HttpResponse:
    """Move a booking to another slot of its department; if the new place cannot be had, nothing changes."""
    appointment = get_object_or_404(
        appointments_visible_to(request.user).select_related("patient", "slot", "schedule__department", "doctor"),
        uuid=uuid,
    )
    channel = BookingChannel.PHONE if appointment.channel == BookingChannel.ONLINE else appointment.channel
    status = 200
    if request.method == "POST":
        form = RescheduleForm(request.POST)
        slot = None
        if form.is_valid():
            slot = Slot.objects.filter(
                uuid=form.cleaned_data["slot"], schedule__department_id=appointment.schedule.department_id
            ).first()
        if slot is None:
            messages.error(request, _("Choose a time slot."))
            status = 400
        else:
            try:
                appointment_reschedule(
                    appointment=appointment, slot=slot, door=BookingDoor(channel=channel, actor=request.user)
                )
            except ValidationError as refusal:
                _refused(request, refusal)
                status = 400
            else:
                messages.success(request, _("Appointment moved; the patient is told by SMS."))
                return redirect(_desk_url(appointment.patient.uuid))
    policy = booking_policy()
    sessions = _bookable_sessions(
        department=appointment.schedule.department, days=policy.release_days_ahead + EXTRA_DAYS
    )
    _with_free_places(sessions, channel, policy)
    audit_read(event=Event.VIEW, instance=appointment, details={"part": "reschedule"})
    context = {"appointment": appointment, "sessions": sessions, "channel": channel}
    return render(request, "appointments/bookings/reschedule.html", context, status=status)


@login_required
@require_POST
@permission_required(["appointments.view_waitlistentry", "appointments.add_waitlistentry"], raise_exception=True)
def waitlist_add(request: HttpRequest) -> HttpResponse:
    """Put the patient in the queue of a full session."""
    form = WaitlistJoinForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a patient and a clinic session."))
        return redirect("appointments:desk")
    data = form.cleaned_data
    patient = get_object_or_404(patients_bookable_by(request.user), uuid=data["patient"])
    session = get_object_or_404(schedules_visible_to(request.user).select_related("department"), uuid=data["schedule"])
    try:
        waitlist_join(schedule=session, patient=patient, door=BookingDoor(channel=data["channel"], actor=request.user))
    except ValidationError as refusal:
        _refused(request, refusal)
    else:
        messages.success(request, _("On the waitlist: the patient is offered the first place that frees up, by SMS."))
    return redirect(_desk_url(patient.uuid, department=session.department.code, channel=data["channel"]))


@login_required
@require_POST
@permission_required(["appointments.view_waitlistentry", "appointments.change_waitlistentry"], raise_exception=True)
def waitlist_remove(request: HttpRequest, uuid) -> HttpResponse:
    entry = get_object_or_404(waitlist_visible_to(request.user).select_related("patient"), uuid=uuid)
    waitlist_leave(entry=entry, actor=request.user)
    messages.success(request, _("Taken off the waitlist."))
    return _back(request, _desk_url(entry.patient.uuid))


@login_required
@permission_required(
    ["appointments.view_bookingrestriction", "appointments.change_bookingrestriction"], raise_exception=True
)
def restriction_lift_page(request: HttpRequest, uuid) -> HttpResponse:
    """Give a patient online booking back before the restriction ends; the reason is kept with the change."""
    restriction = get_object_or_404(
        BookingRestriction.objects.filter(patient__in=patients_bookable_by(request.user)).select_related("patient"),
        uuid=uuid,
    )
    status = 200
    if request.method == "POST":
        form = LiftForm(request.POST)
        if form.is_valid():
            try:
                restriction_lift(restriction=restriction, actor=request.user, reason=form.cleaned_data["reason"])
            except ValidationError as error:
                form.add_error("reason", error.message_dict.get("reason", error.messages))
            else:
                messages.success(request, _("Online booking is open again for this patient."))
                return redirect(_desk_url(restriction.patient.uuid))
        status = 400
    else:
        form = LiftForm()
        audit_read(event=Event.VIEW, instance=restriction)
    return render(request, "appointments/bookings/lift.html", {"restriction": restriction, "form": form}, status=status)


urlpatterns = [
    path("desk/", desk, name="desk"),
    path("desk/book/", book, name="book"),
    path("bookings/<uuid:uuid>/cancel/", cancel, name="cancel"),
    path("bookings/<uuid:uuid>/reschedule/", reschedule, name="reschedule"),
    path("waitlist/join/", waitlist_add, name="waitlist-join"),
    path("waitlist/<uuid:uuid>/leave/", waitlist_remove, name="waitlist-leave"),
    path("restrictions/<uuid:uuid>/lift/", restriction_lift_page, name="restriction-lift"),
]
