"""Console pages for follow-up plans (list, create, edit) and scheduling a one-off follow-up from a patient."""

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
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from followups.models import FollowUpChannel, FollowUpPlan, Questionnaire, TriggerKind
from followups.models.questionnaires import QuestionnaireStatus
from followups.selectors import lead_departments, plan_editable, plans_visible_to, sees_every_department
from followups.services import followup_schedule_one_off, plan_save
from followups.services.plans import PLAN_FIELDS
from followups.services.tasks import staff_of_department
from hcrm.audit import Event, audit_read
from patients.models import Patient
from patients.selectors.archive import patient_visible


class OffsetsField(forms.CharField):
    """Days as "3, 7, 30, 90"; the service checks the values."""

    def to_python(self, value):
        text = (super().to_python(value) or "").replace("，", ",")
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise ValidationError(_("Write whole numbers of days separated by commas."), code="invalid") from None

    def prepare_value(self, value):
        return ", ".join(str(item) for item in value) if isinstance(value, list) else value


class PlanForm(forms.ModelForm):
    offsets = OffsetsField(label=gettext_lazy("Offsets in days"), help_text=gettext_lazy("For example 3, 7, 30, 90."))

    class Meta:
        model = FollowUpPlan
        fields = list(PLAN_FIELDS)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["questionnaire"].queryset = Questionnaire.objects.filter(status=QuestionnaireStatus.ACTIVE)
        # A research plan is set up with its cohort (see views/research.py).
        self.fields["trigger"].choices = [
            choice for choice in self.fields["trigger"].choices if choice[0] != TriggerKind.RESEARCH
        ]
        # Choices name rows by their public keys: integer primary keys stay in the database.
        for name, key in (("department", "code"), ("assignee_department", "code"), ("segment", "uuid")):
            self.fields[name].to_field_name = key
        self.fields["questionnaire"].to_field_name = "uuid"
        if not sees_every_department(user):
            # A department head writes the plans of their own departments.
            departments = lead_departments(user)
            self.fields["department"].queryset = departments
            self.fields["department"].required = True
            self.fields["assignee_department"].queryset = departments

    def _post_clean(self) -> None:
        # The service validates the plan as a whole (and names the fields); see `plan_save`.
        pass


def form_saved(form: forms.ModelForm, fields, save):
    """Pass the form's `fields` to the service `save(data)`; what it refuses becomes the form's errors (None)."""
    data = {name: form.cleaned_data[name] for name in fields if name in form.cleaned_data}
    try:
        return save(data)
    except ValidationError as error:
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


def _save(request: HttpRequest, form: PlanForm, plan: FollowUpPlan | None) -> FollowUpPlan | None:
    return form_saved(form, PLAN_FIELDS, lambda data: plan_save(actor=request.user, data=data, plan=plan))


@login_required
@permission_required("followups.view_followupplan", raise_exception=True)
def plan_list(request: HttpRequest) -> HttpResponse:
    plans = plans_visible_to(request.user).select_related("department", "questionnaire", "segment")
    rows = [(plan, plan_editable(request.user, plan)) for plan in plans.order_by("name")]
    return render(request, "followups/worklists/plans.html", {"rows": rows})


@login_required
@permission_required("followups.add_followupplan", raise_exception=True)
def plan_create(request: HttpRequest) -> HttpResponse:
    form = PlanForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid() and _save(request, form, None) is not None:
        messages.success(request, _("The plan has been saved."))
        return redirect("followups:plans")
    status = 400 if form.is_bound else 200
    return render(request, "followups/worklists/plan_form.html", {"form": form, "plan": None}, status=status)


@login_required
@permission_required("followups.change_followupplan", raise_exception=True)
def plan_edit(request: HttpRequest, uuid) -> HttpResponse:
    plan = get_object_or_404(FollowUpPlan, uuid=uuid)
    if not plan_editable(request.user, plan):
        raise Http404  # another department's plan is answered like one that does not exist
    form = PlanForm(request.POST or None, instance=plan, user=request.user)
    if request.method == "POST" and form.is_valid() and _save(request, form, plan) is not None:
        messages.success(request, _("The plan has been saved."))
        return redirect("followups:plans")
    status = 400 if form.is_bound else 200
    return render(request, "followups/worklists/plan_form.html", {"form": form, "plan": plan}, status=status)


# --- A one-off follow-up from the patient's page -------------------------------------------------


class ScheduleForm(forms.Form):
    questionnaire = forms.ModelChoiceField(queryset=None, label=gettext_lazy("Questionnaire"), to_field_name="uuid")
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=FollowUpChannel.choices)
    in_days = forms.IntegerField(
        label=gettext_lazy("In how many days"), min_value=0, max_value=3650, required=False, initial=14
    )
    due_date = forms.DateField(
        label=gettext_lazy("Or on"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    assignee = forms.ModelChoiceField(
        queryset=None, label=gettext_lazy("Who follows up"), required=False, to_field_name="uuid"
    )
    note = forms.CharField(label=gettext_lazy("Note"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["questionnaire"].queryset = Questionnaire.objects.filter(status=QuestionnaireStatus.ACTIVE)
        department_ids = sorted(user.department_ids)
        staff = staff_of_department(department_ids[0] if department_ids else None)
        if len(department_ids) > 1:
            staff = staff_of_department(None).filter(staff_departments__department_id__in=department_ids).distinct()
        self.fields["assignee"].queryset = staff
        self.fields["assignee"].empty_label = _("Me")

    def clean(self):
        data = super().clean()
        if data.get("due_date") is None:
            days = data.get("in_days")
            if days is None:
                raise ValidationError({"in_days": _("Say when: in a number of days, or on a date.")})
            data["due_date"] = timezone.localdate() + dt.timedelta(days=days)
        return data


@login_required
@permission_required(["patients.view_patient", "followups.add_followuptask"], raise_exception=True)
def schedule(request: HttpRequest, uuid) -> HttpResponse:
    """ "Phone this patient in 2 weeks with questionnaire X": one follow-up task, outside any plan."""
    patient = get_object_or_404(Patient.objects.filter(merged_into__isnull=True), uuid=uuid)
    if not patient_visible(request.user, patient):
        raise Http404
    form = ScheduleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            followup_schedule_one_off(
                actor=request.user,
                patient=patient,
                questionnaire=data["questionnaire"],
                channel=data["channel"],
                due_date=data["due_date"],
                assignee=data["assignee"],
                note=data["note"],
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, _("Follow-up scheduled for %(date)s.") % {"date": data["due_date"].isoformat()})
            return redirect(reverse("patients:detail", kwargs={"uuid": patient.uuid}))
    else:
        audit_read(event=Event.VIEW, instance=patient, details={"part": "schedule follow-up"})
    status = 400 if form.is_bound else 200
    return render(request, "followups/worklists/schedule.html", {"form": form, "patient": patient}, status=status)


urlpatterns = [
    path("plans/", plan_list, name="plans"),
    path("plans/new/", plan_create, name="plan-create"),
    path("plans/<uuid:uuid>/", plan_edit, name="plan-edit"),
    path("patients/<uuid:uuid>/schedule/", schedule, name="schedule"),
]
