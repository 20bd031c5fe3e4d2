"""Console pages of research cohorts: list, create, edit, detail (members, waves, completion), exports.

The pages show counts, never a patient; the exports carry pseudonyms (see `followups.research_export`).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from followups.models import CohortMember, FollowUpChannel, Questionnaire, ResearchCohort, ScheduleKind
from followups.models.questionnaires import QuestionnaireStatus
from followups.research_export import research_dictionary_response, research_export_response
from followups.selectors import cohort_editable, cohort_waves, cohorts_listed, lead_departments
from followups.services import cohort_enrol, cohort_member_withdraw, cohort_save, cohort_tasks_make
from followups.services.research import COHORT_FIELDS, COHORT_PLAN_FIELDS
from followups.views.plans import OffsetsField
from hcrm.audit import Event, audit_read
from hcrm.exports import EXPORT_FORMATS
from hcrm.models import User
from hcrm.roles import Role
from patients.models import Patient, Segment
from patients.selectors.archive import patient_visible

PAGE_SIZE = 25


class CohortForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    principal_investigator = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("full_name", "username"),
        label=gettext_lazy("Principal investigator"),
        to_field_name="uuid",
    )
    ethics_approval = forms.CharField(label=gettext_lazy("Ethics approval reference"), max_length=100)
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name"),
        label=gettext_lazy("Segment"),
        to_field_name="uuid",
        help_text=gettext_lazy("Its patients are enrolled at each sweep and stay enrolled until withdrawn."),
    )
    questionnaire = forms.ModelChoiceField(queryset=None, label=gettext_lazy("Questionnaire"), to_field_name="uuid")
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), choices=FollowUpChannel.choices)
    schedule_kind = forms.ChoiceField(
        label=gettext_lazy("Schedule"), choices=ScheduleKind.choices, widget=forms.RadioSelect
    )
    offsets = OffsetsField(
        label=gettext_lazy("Days after enrolment"),
        required=False,
        help_text=gettext_lazy("For example 0, 30, 90, 180."),
    )
    interval_days = forms.IntegerField(label=gettext_lazy("Every (days)"), min_value=1, required=False)
    start_date = forms.DateField(label=gettext_lazy("Start date"), widget=forms.DateInput(attrs={"type": "date"}))
    end_date = forms.DateField(
        label=gettext_lazy("End date"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    assignee_role = forms.ChoiceField(label=gettext_lazy("Worked by the role"), choices=Role.choices)
    assignee_department = forms.ModelChoiceField(
        queryset=None, label=gettext_lazy("of the department"), to_field_name="code"
    )
    retry_attempts = forms.IntegerField(label=gettext_lazy("Attempts"), min_value=1, max_value=20, initial=3)
    retry_spacing_hours = forms.IntegerField(
        label=gettext_lazy("Hours between attempts"), min_value=1, max_value=24 * 14, initial=24
    )
    active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["questionnaire"].queryset = Questionnaire.objects.filter(status=QuestionnaireStatus.ACTIVE)
        self.fields["assignee_department"].queryset = lead_departments(user)
        self.fields["assignee_department"].label_from_instance = lambda department: department.display_name
        self.fields["principal_investigator"].label_from_instance = lambda staff: str(staff)

    @staticmethod
    def initial_from(cohort: ResearchCohort) -> dict:
        initial = {name: getattr(cohort, name) for name in COHORT_FIELDS}
        initial |= {name: getattr(cohort.plan, name) for name in COHORT_PLAN_FIELDS}
        for name, key in (("principal_investigator", "uuid"), ("segment", "uuid"), ("questionnaire", "uuid")):
            initial[name] = getattr(initial[name], key)
        initial["assignee_department"] = (
            cohort.plan.assignee_department.code if cohort.plan.assignee_department else None
        )
        return initial


def _save(request: HttpRequest, form: CohortForm, cohort: ResearchCohort | None) -> ResearchCohort | None:
    try:
        return cohort_save(actor=request.user, data=form.cleaned_data, cohort=cohort)
    except ValidationError as error:
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
        return None


@login_required
@permission_required("followups.view_researchcohort", raise_exception=True)
def cohort_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(cohorts_listed(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "followups/research/list.html", {"page": page})


@login_required
@permission_required("followups.add_researchcohort", raise_exception=True)
def cohort_create(request: HttpRequest) -> HttpResponse:
    form = CohortForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        cohort = _save(request, form, None)
        if cohort is not None:
            messages.success(request, _("Cohort %(name)s saved.") % {"name": cohort.name})
            return redirect("followups:cohort-detail", uuid=cohort.uuid)
    status = 400 if form.is_bound else 200
    return render(request, "followups/research/form.html", {"form": form, "cohort": None}, status=status)


def _editable(request: HttpRequest, uuid) -> ResearchCohort:
    cohort = get_object_or_404(ResearchCohort.objects.select_related("plan"), uuid=uuid)
    if not cohort_editable(request.user, cohort):
        raise Http404  # another department's cohort is answered like one that does not exist
    return cohort


@login_required
@permission_required("followups.change_researchcohort", raise_exception=True)
def cohort_edit(request: HttpRequest, uuid) -> HttpResponse:
    cohort = _editable(request, uuid)
    form = CohortForm(request.POST or None, user=request.user, initial=CohortForm.initial_from(cohort))
    if request.method == "POST" and form.is_valid() and _save(request, form, cohort) is not None:
        messages.success(request, _("Cohort %(name)s saved.") % {"name": cohort.name})
        return redirect("followups:cohort-detail", uuid=cohort.uuid)
    status = 400 if form.is_bound else 200
    return render(request, "followups/research/form.html", {"form": form, "cohort": cohort}, status=status)


class WithdrawForm(forms.Form):
    mrn = forms.CharField(label=gettext_lazy("MRN"), max_length=32)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)


@login_required
@permission_required("followups.view_researchcohort", raise_exception=True)
def cohort_detail(request: HttpRequest, uuid, withdraw_form: WithdrawForm | None = None, status: int = 200):
    cohort = get_object_or_404(cohorts_listed(), uuid=uuid)
    context = {
        "cohort": cohort,
        "waves": cohort_waves(cohort),
        "editable": cohort_editable(request.user, cohort),
        "withdraw_form": withdraw_form or WithdrawForm(),
    }
    return render(request, "followups/research/detail.html", context, status=status)


@login_required
@require_POST
@permission_required("followups.change_researchcohort", raise_exception=True)
def cohort_enrol_now(request: HttpRequest, uuid) -> HttpResponse:
    """Enrol the segment's new patients and make their tasks now, rather than at the next sweep."""
    cohort = _editable(request, uuid)
    joined = cohort_enrol(cohort=cohort, actor=request.user)
    made = cohort_tasks_make(cohort=cohort)
    messages.success(
        request, _("%(joined)d patients enrolled, %(made)d tasks made.") % {"joined": joined, "made": made}
    )
    return redirect("followups:cohort-detail", uuid=cohort.uuid)


@login_required
@require_POST
@permission_required(["followups.view_researchcohort", "followups.change_cohortmember"], raise_exception=True)
def cohort_withdraw(request: HttpRequest, uuid) -> HttpResponse:
    """Withdraw a patient (found by MRN among those the user may see) from the study; their tasks close."""
    cohort = get_object_or_404(ResearchCohort.objects.select_related("plan"), uuid=uuid)
    form = WithdrawForm(request.POST)
    if form.is_valid():
        patient = Patient.objects.filter(mrn=form.cleaned_data["mrn"].strip(), merged_into__isnull=True).first()
        member = None
        if patient is not None and patient_visible(request.user, patient):
            audit_read(event=Event.VIEW, instance=patient, details={"part": "research cohort withdrawal"})
            member = CohortMember.objects.filter(cohort=cohort, patient=patient).select_related("cohort").first()
        if member is None:
            form.add_error("mrn", _("No patient of yours with this MRN is in the cohort."))
        else:
            try:
                cohort_member_withdraw(actor=request.user, member=member, reason=form.cleaned_data["reason"])
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("The patient has been withdrawn from the study."))
                return redirect("followups:cohort-detail", uuid=cohort.uuid)
    return cohort_detail(request, uuid, withdraw_form=form, status=400)


@login_required
@permission_required(["followups.view_researchcohort", "followups.export_research"], raise_exception=True)
def cohort_export(request: HttpRequest, uuid, file_format: str):
    if file_format not in EXPORT_FORMATS:
        raise Http404
    cohort = get_object_or_404(ResearchCohort.objects.select_related("plan"), uuid=uuid)
    return research_export_response(
        cohort, request.user, file_format=file_format, include_free_text=request.GET.get("free_text") == "1"
    )


@login_required
@permission_required(["followups.view_researchcohort", "followups.export_research"], raise_exception=True)
def cohort_dictionary(request: HttpRequest, uuid) -> HttpResponse:
    cohort = get_object_or_404(ResearchCohort.objects.select_related("plan"), uuid=uuid)
    return research_dictionary_response(cohort, request.user, include_free_text=request.GET.get("free_text") == "1")


urlpatterns = [
    path("research/", cohort_list, name="cohort-list"),
    path("research/new/", cohort_create, name="cohort-create"),
    path("research/<uuid:uuid>/", cohort_detail, name="cohort-detail"),
    path("research/<uuid:uuid>/edit/", cohort_edit, name="cohort-edit"),
    path("research/<uuid:uuid>/enrol/", cohort_enrol_now, name="cohort-enrol"),
    path("research/<uuid:uuid>/withdraw/", cohort_withdraw, name="cohort-withdraw"),
    path("research/<uuid:uuid>/export.<str:file_format>", cohort_export, name="cohort-export"),
    path("research/<uuid:uuid>/dictionary.csv", cohort_dictionary, name="cohort-dictionary"),
]
