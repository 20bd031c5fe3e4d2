"""Console pages for bookings: a doctor's day, a department's grid, check-in.

Booking for a caller, cancelling, moving, the waitlist and lifting restrictions are in `desk.py`;
their URLs are included here.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from appointments.selectors import (
    appointments_visible_to,
    booking_department_ids,
    doctor_day,
    doctors_visible_to,
    schedule_grid,
)
from appointments.services import appointment_check_in
from appointments.views import desk
from appointments.views.desk import ObjectChoiceField
from hcrm.audit import Event, audit_read
from hcrm.models import Department
from hcrm.roles import Role

# --- A doctor's day --------------------------------------------------------------------------------------


class DayForm(forms.Form):
    doctor = ObjectChoiceField(key="uuid", label=gettext_lazy("Doctor"), required=False)
    date = forms.DateField(label=gettext_lazy("Date"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["doctor"].load(doctors_visible_to(user))


def _day_url(doctor, date: dt.date) -> str:
    return reverse("appointments:day") + "?" + urlencode({"doctor": str(doctor.uuid), "date": date.isoformat()})


@login_required
@permission_required("appointments.view_appointment", raise_exception=True)
def day_list(request: HttpRequest) -> HttpResponse:
    """A doctor's sessions of a day (the signed-in doctor, today, unless chosen): bookings in visit-number
    order, check-in, and each session's waitlist."""
    user = request.user
    form = DayForm(request.GET or None, user=user)
    doctor = user if Role.DOCTOR in user.role_codes else None
    date = timezone.localdate()
    status = 200
    if form.is_bound and form.is_valid():
        doctor = form.cleaned_data["doctor"] or doctor
        date = form.cleaned_data["date"] or date
    elif form.is_bound:
        if "doctor" in form.errors:
            raise Http404  # a doctor of another department is answered like one that does not exist
        doctor, status = None, 400
    else:
        form.initial = {"doctor": str(doctor.uuid) if doctor else None, "date": date}
    sessions = []
    if doctor is not None:
        sessions = doctor_day(doctor=doctor, date=date, department_ids=booking_department_ids(user))
        audit_read(
            event=Event.LIST,
            details={
                "record": "appointment",
                "part": "day list",
                "patients": sorted(
                    {str(booking.patient.uuid) for session in sessions for booking in session.appointments.all()}
                    | {str(entry.patient.uuid) for session in sessions for entry in session.waitlist.all()}
                ),
            },
        )
    context = {
        "form": form,
        "doctor": doctor,
        "date": date,
        "sessions": sessions,
        "is_today": date == timezone.localdate(),
        "can_check_in": user.has_perm("appointments.check_in_appointment"),
        "previous_day": date - dt.timedelta(days=1),
        "next_day": date + dt.timedelta(days=1),
    }
    return render(request, "appointments/bookings/day.html", context, status=status)


@login_required
@require_POST
@permission_required(["appointments.view_appointment", "appointments.check_in_appointment"], raise_exception=True)
def check_in(request: HttpRequest, uuid) -> HttpResponse:
    """Record a patient's arrival, then back to the doctor's day."""
    appointment = get_object_or_404(appointments_visible_to(request.user).select_related("doctor"), uuid=uuid)
    try:
        appointment_check_in(appointment=appointment, actor=request.user)
    except ValidationError as refusal:
        messages.error(request, " ".join(refusal.messages))
    else:
        messages.success(request, _("Checked in."))
    return redirect(_day_url(appointment.doctor, appointment.date))


# --- A department's week -------------------------------------------------------------------------------


class GridForm(forms.Form):
    department = ObjectChoiceField(key="code", label=gettext_lazy("Department"), required=False)
    week = forms.DateField(
        label=gettext_lazy("Week of"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        departments = Department.objects.filter(is_active=True)
        department_ids = booking_department_ids(user)
        if department_ids is not None:
            departments = departments.filter(pk__in=sorted(department_ids))
        self.departments = self.fields["department"].load(departments)


@login_required
@permission_required("appointments.view_schedule", raise_exception=True)
def schedule_week(request: HttpRequest) -> HttpResponse:
    """Doctors × the days of a week, each session with its places, places taken, fill rate and waitlist."""
    form = GridForm(request.GET or None, user=request.user)
    if request.GET and not form.is_valid():
        raise Http404  # a department outside the user's is answered like one that does not exist
    data = form.cleaned_data if form.is_bound else {}
    department = data.get("department") or next(iter(form.departments), None)
    start = data.get("week") or timezone.localdate()
    start -= dt.timedelta(days=start.weekday())
    days = [start + dt.timedelta(days=offset) for offset in range(7)]
    rows: dict[int, dict] = {}
    if department is not None:
        for session in schedule_grid(department=department, start=days[0], end=days[-1]):
            session.fill_rate = round(session.taken * 100 / session.places) if session.places else 0
            row = rows.setdefault(session.doctor_id, {"doctor": session.doctor, "days": [[] for _day in days]})
            row["days"][(session.date - start).days].append(session)
    if not form.is_bound:
        form.initial = {"department": getattr(department, "code", None), "week": start}
    context = {
        "form": form,
        "department": department,
        "days": days,
        "rows": list(rows.values()),
        "previous_week": start - dt.timedelta(days=7),
        "next_week": start + dt.timedelta(days=7),
    }
    return render(request, "appointments/bookings/grid.html", context)


urlpatterns: list = [
    path("day/", day_list, name="day"),
    path("grid/", schedule_week, name="grid"),
    path("bookings/<uuid:uuid>/check-in/", check_in, name="check-in"),
    *desk.urlpatterns,
]
