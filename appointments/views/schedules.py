"""Console pages for doctor schedules: weekly templates, holidays, sessions, stopping a clinic, extra places, rules.

Department scoping is in `schedule_access`; the doctor of a session may also add places to it. Schedules
hold no patient data, so these pages write no read-audit entries.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from appointments.models import (
    Holiday,
    Schedule,
    ScheduleTemplate,
    WaitlistStatus,
)
from appointments.selectors import booking_policy
from appointments.services import policy as policy_service
from appointments.services import schedules as services
from appointments.views.schedule_access import (
    managed_departments,
    manages_all_departments,
    manages_department,
    sees_department,
)
from appointments.views.schedule_forms import (
    WEEKDAYS,
    BookingRulesForm,
    ExtraPlacesForm,
    HolidayForm,
    ScheduleTemplateForm,
    StopForm,
)
from hcrm.models import Department


def _department_from_query(request: HttpRequest, departments: QuerySet[Department]) -> Department | None:
    wanted = request.GET.get("department", "")
    if not wanted:
        return None
    try:
        return departments.get(uuid=wanted)
    except (Department.DoesNotExist, ValidationError):
        raise Http404 from None


def _add_service_errors(form: forms.Form, error: ValidationError) -> None:
    for field, errors in error.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)


# --- Weekly templates ------------------------------------------------------------------------------------


def _template_initial(template: ScheduleTemplate) -> dict:
    fields = [name for name in ScheduleTemplateForm.base_fields if name not in ("department", "doctor")]
    return {"department": template.department_id, "doctor": template.doctor_id} | {
        name: getattr(template, name) for name in fields
    }


@login_required
@permission_required("appointments.view_scheduletemplate", raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    """The weekly pattern of each doctor, per department."""
    departments = managed_departments(request.user)
    department = _department_from_query(request, departments)
    templates = ScheduleTemplate.objects.filter(department__in=departments).select_related("doctor", "department")
    if department is not None:
        templates = templates.filter(department=department)
    context = {
        "departments": departments,
        "department": department,
        "templates": templates.order_by("department__code", "weekday", "start_time", "doctor__full_name"),
        "weekdays": dict(WEEKDAYS),
    }
    return render(request, "appointments/schedules/templates.html", context)


def _template_form_page(request: HttpRequest, template: ScheduleTemplate | None) -> HttpResponse:
    initial = _template_initial(template) if template else {"valid_from": timezone.localdate()}
    form = ScheduleTemplateForm(request.POST or None, user=request.user, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                saved = services.schedule_template_save(actor=request.user, data=form.cleaned_data, template=template)
            except ValidationError as error:
                _add_service_errors(form, error)
            else:
                messages.success(request, _("Weekly schedule saved. Sessions are generated from it every night."))
                return redirect(f"{reverse('appointments:schedule-templates')}?department={saved.department.uuid}")
        status = 400
    return render(
        request, "appointments/schedules/template_form.html", {"form": form, "template": template}, status=status
    )


@login_required
@permission_required("appointments.add_scheduletemplate", raise_exception=True)
def template_create(request: HttpRequest) -> HttpResponse:
    return _template_form_page(request, None)


def _managed_template(request: HttpRequest, uuid) -> ScheduleTemplate:
    return get_object_or_404(
        ScheduleTemplate.objects.filter(department__in=managed_departments(request.user)).select_related("department"),
        uuid=uuid,
    )


@login_required
@permission_required("appointments.change_scheduletemplate", raise_exception=True)
def template_edit(request: HttpRequest, uuid) -> HttpResponse:
    return _template_form_page(request, _managed_template(request, uuid))


@login_required
@require_POST
@permission_required("appointments.delete_scheduletemplate", raise_exception=True)
def template_delete(request: HttpRequest, uuid) -> HttpResponse:
    template = _managed_template(request, uuid)
    services.schedule_template_delete(actor=request.user, template=template)
    messages.success(request, _("Weekly schedule deleted; sessions already generated are kept."))
    return redirect(f"{reverse('appointments:schedule-templates')}?department={template.department.uuid}")


# --- Holidays ---------------------------------------------------------------------------------------------


@login_required
@permission_required("appointments.view_holiday", raise_exception=True)
def holiday_list(request: HttpRequest) -> HttpResponse:
    """Days without clinics from today on: the hospital's and those of the user's departments."""
    user = request.user
    form = HolidayForm(request.POST or None, user=user)
    status = 200
    if request.method == "POST":
        if not user.has_perm("appointments.add_holiday"):
            raise PermissionDenied
        if form.is_valid():
            try:
                holiday = services.holiday_save(actor=user, data=form.cleaned_data)
            except ValidationError as error:
                _add_service_errors(form, error)
            else:
                clashes = Schedule.objects.filter(date=holiday.date, status="open")
                if holiday.department_id:
                    clashes = clashes.filter(department_id=holiday.department_id)
                messages.success(request, _("Holiday added; no sessions will be generated that day."))
                if count := clashes.count():
                    messages.warning(
                        request,
                        _("%(count)d sessions already exist that day; stop them one by one if they should not run.")
                        % {"count": count},
                    )
                return redirect("appointments:holidays")
        status = 400
    holidays = Holiday.objects.filter(date__gte=timezone.localdate()).select_related("department")
    if not manages_all_departments(user):
        holidays = holidays.filter(Q(department__isnull=True) | Q(department_id__in=sorted(user.department_ids)))
    rows = [(holiday, manages_department(user, holiday.department_id)) for holiday in holidays.order_by("date", "pk")]
    return render(request, "appointments/schedules/holidays.html", {"form": form, "rows": rows}, status=status)


@login_required
@require_POST
@permission_required("appointments.delete_holiday", raise_exception=True)
def holiday_delete(request: HttpRequest, uuid) -> HttpResponse:
    holiday = get_object_or_404(Holiday, uuid=uuid)
    if holiday.department_id is not None and not sees_department(request.user, holiday.department_id):
        raise Http404
    if not manages_department(request.user, holiday.department_id):
        raise PermissionDenied
    services.holiday_delete(actor=request.user, holiday=holiday)
    messages.success(request, _("Holiday removed; the next run generates that day's sessions."))
    return redirect("appointments:holidays")


# --- Sessions -------------------------------------------------------------------------------------------


def _week_start(request: HttpRequest) -> dt.date:
    try:
        day = dt.date.fromisoformat(request.GET.get("week", ""))
    except ValueError:
        day = timezone.localdate()
    return day - dt.timedelta(days=day.weekday())


@login_required
@permission_required("appointments.view_schedule", raise_exception=True)
def session_list(request: HttpRequest) -> HttpResponse:
    """One week of a department's sessions with their places, taken and waitlist, to open one."""
    user = request.user
    if manages_all_departments(user) or user.has_perm("patients.view_all_patients"):
        departments = Department.objects.filter(is_active=True)
    else:
        departments = Department.objects.filter(is_active=True, pk__in=sorted(user.department_ids))
    department = _department_from_query(request, departments) or departments.order_by("code").first()
    monday = _week_start(request)
    sessions = (
        Schedule.objects.filter(department=department, date__gte=monday, date__lt=monday + dt.timedelta(days=7))
        .select_related("doctor")
        .annotate(
            taken=Sum("slots__taken_online") + Sum("slots__taken_phone") + Sum("slots__taken_window"),
        )
        .order_by("date", "starts_at", "doctor__full_name")
        if department is not None
        else Schedule.objects.none()
    )
    waiting = dict(
        Schedule.objects.filter(pk__in=[session.pk for session in sessions])
        .annotate(waiting=Count("waitlist", filter=Q(waitlist__status=WaitlistStatus.WAITING)))
        .values_list("pk", "waiting")
    )
    rows = [(session, waiting.get(session.pk, 0)) for session in sessions]
    context = {
        "departments": departments,
        "department": department,
        "rows": rows,
        "monday": monday,
        "previous_week": monday - dt.timedelta(days=7),
        "next_week": monday + dt.timedelta(days=7),
    }
    return render(request, "appointments/schedules/sessions.html", context)


def may_add_places(user, schedule: Schedule) -> bool:
    if schedule.doctor_id == user.pk:
        return True
    return user.has_perm("appointments.change_schedule") and manages_department(user, schedule.department_id)


def _session_for(request: HttpRequest, uuid) -> Schedule:
    schedule = get_object_or_404(Schedule.objects.select_related("doctor", "department", "template"), uuid=uuid)
    if schedule.doctor_id != request.user.pk and not sees_department(request.user, schedule.department_id):
        raise Http404
    return schedule


def _session_page(request: HttpRequest, schedule: Schedule, *, stop_form=None, extra_form=None, status=200):
    slots = list(schedule.slots.order_by("starts_at"))
    user = request.user
    may_stop = user.has_perm("appointments.change_schedule") and manages_department(user, schedule.department_id)
    context = {
        "schedule": schedule,
        "slots": slots,
        "totals": {
            "capacity": sum(slot.capacity_total for slot in slots),
            "taken": sum(slot.taken_total for slot in slots),
        },
        "waiting": schedule.waitlist.filter(status=WaitlistStatus.WAITING).count(),
        "policy": booking_policy(),
        "may_stop": may_stop and schedule.status == "open",
        "may_add": may_add_places(user, schedule) and schedule.status == "open" and schedule.ends_at > timezone.now(),
        "stop_form": stop_form or StopForm(),
        "extra_form": extra_form or ExtraPlacesForm(slots=slots),
    }
    return render(request, "appointments/schedules/session.html", context, status=status)


@login_required
@permission_required("appointments.view_schedule", raise_exception=True)
def session_detail(request: HttpRequest, uuid) -> HttpResponse:
    """A session's slots with places and taken per channel, and the forms to stop it or add places."""
    return _session_page(request, _session_for(request, uuid))


@login_required
@require_POST
@permission_required(["appointments.view_schedule", "appointments.change_schedule"], raise_exception=True)
def session_stop(request: HttpRequest, uuid) -> HttpResponse:
    schedule = _session_for(request, uuid)
    if not manages_department(request.user, schedule.department_id):
        raise PermissionDenied
    form = StopForm(request.POST)
    if form.is_valid():
        try:
            services.schedule_stop(schedule=schedule, actor=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(request, _("The clinic is stopped; its patients are being told."))
            return redirect("appointments:schedule-session", uuid=schedule.uuid)
    return _session_page(request, schedule, stop_form=form, status=400)


@login_required
@require_POST
@permission_required("appointments.view_schedule", raise_exception=True)
def session_add_places(request: HttpRequest, uuid) -> HttpResponse:
    schedule = _session_for(request, uuid)
    if not may_add_places(request.user, schedule):
        raise PermissionDenied
    slots = list(schedule.slots.order_by("starts_at"))
    form = ExtraPlacesForm(request.POST, slots=slots)
    if form.is_valid():
        data = form.cleaned_data
        try:
            slot = services.schedule_add_capacity(
                schedule=schedule,
                actor=request.user,
                slot=form.slots.get(data["slot"]),
                channel=data["channel"],
                count=data["count"],
            )
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            messages.success(
                request,
                _("%(count)s places added at %(time)s.")
                % {"count": data["count"], "time": timezone.localtime(slot.starts_at).strftime("%H:%M")},
            )
            return redirect("appointments:schedule-session", uuid=schedule.uuid)
    return _session_page(request, schedule, extra_form=form, status=400)


# --- Booking rules ------------------------------------------------------------------------------------------


@login_required
@permission_required("appointments.view_bookingpolicy", raise_exception=True)
def booking_rules(request: HttpRequest) -> HttpResponse:
    policy = booking_policy()
    form = BookingRulesForm(
        request.POST or None, initial={field: getattr(policy, field) for field in policy_service.POLICY_FIELDS}
    )
    status = 200
    if request.method == "POST":
        if not request.user.has_perm("appointments.change_bookingpolicy"):
            raise PermissionDenied
        if form.is_valid():
            try:
                policy_service.booking_policy_update(actor=request.user, data=form.cleaned_data)
            except ValidationError as error:
                _add_service_errors(form, error)
            else:
                messages.success(request, _("Booking rules saved."))
                return redirect("appointments:booking-rules")
        status = 400
    return render(request, "appointments/schedules/rules.html", {"form": form, "policy": policy}, status=status)


urlpatterns = [
    path("schedules/", session_list, name="schedule-sessions"),
    path("schedules/sessions/<uuid:uuid>/", session_detail, name="schedule-session"),
    path("schedules/sessions/<uuid:uuid>/stop/", session_stop, name="schedule-stop"),
    path("schedules/sessions/<uuid:uuid>/places/", session_add_places, name="schedule-add-places"),
    path("schedules/weekly/", template_list, name="schedule-templates"),
    path("schedules/weekly/new/", template_create, name="schedule-template-create"),
    path("schedules/weekly/<uuid:uuid>/", template_edit, name="schedule-template-edit"),
    path("schedules/weekly/<uuid:uuid>/delete/", template_delete, name="schedule-template-delete"),
    path("schedules/holidays/", holiday_list, name="holidays"),
    path("schedules/holidays/<uuid:uuid>/delete/", holiday_delete, name="holiday-delete"),
    path("schedules/rules/", booking_rules, name="booking-rules"),
]
