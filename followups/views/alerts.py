"""Console pages for alerts on answers: my alerts (filters, pages), an alert with its answers and the
acknowledge form; the alert rules (list, create, edit)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from followups.models import UNACKNOWLEDGED, AlertRule, AlertStatus, Questionnaire, Severity
from followups.scoring import answered_rows
from followups.selectors import (
    alert_acknowledgeable,
    alert_rule_editable,
    alert_rules_visible_to,
    alerts_visible_to,
    lead_departments,
    sees_every_department,
)
from followups.services import alert_acknowledge, alert_rule_save
from followups.services.alerts import RULE_FIELDS
from followups.views.plans import form_saved
from hcrm.audit import Event, audit_read
from hcrm.models import Department
from patients.selectors.archive import patient_view
from patients.views.archive import PAGE_SIZE, _Page, _query_without_page

WAITING = "waiting"


class AlertFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=[(WAITING, gettext_lazy("Not acknowledged")), ("", gettext_lazy("Any status")), *AlertStatus.choices],
        required=False,
    )
    severity = forms.ChoiceField(
        label=gettext_lazy("Severity"), choices=[("", gettext_lazy("Any severity")), *Severity.choices], required=False
    )
    department = forms.ModelChoiceField(
        queryset=Department.objects.filter(is_active=True).order_by("code"),
        label=gettext_lazy("Department"),
        to_field_name="code",
        required=False,
        empty_label=gettext_lazy("All departments"),
    )

    def apply(self, alerts):
        """Filter `alerts`; with no status asked for, those not yet acknowledged."""
        data = self.cleaned_data if self.is_bound else {}
        status = data["status"] if "status" in self.data else WAITING
        if status == WAITING:
            alerts = alerts.filter(status__in=UNACKNOWLEDGED)
        elif status:
            alerts = alerts.filter(status=status)
        if data.get("severity"):
            alerts = alerts.filter(severity=data["severity"])
        if data.get("department"):
            alerts = alerts.filter(department=data["department"])
        return alerts


@login_required
@permission_required("followups.view_alert", raise_exception=True)
def alert_list(request: HttpRequest) -> HttpResponse:
    """The alerts the signed-in member of staff may acknowledge, waiting ones first by default."""
    form = AlertFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(request, "followups/alerts/list.html", {"form": form, "page": None}, status=400)
    alerts = form.apply(alerts_visible_to(request.user))
    try:
        number = max(int(request.GET.get("page", 1)), 1)
    except ValueError:
        number = 1
    rows = alerts.select_related("patient", "rule", "department", "recipient", "escalated_to").order_by(
        "-created_at", "-id"
    )
    page = _Page(list(rows[(number - 1) * PAGE_SIZE : number * PAGE_SIZE + 1]), number)
    audit_read(
        event=Event.LIST,
        details={"record": "alert", "patients": sorted({str(alert.patient.uuid) for alert in page.object_list})},
    )
    context = {"form": form, "page": page, "query_string": _query_without_page(request)}
    return render(request, "followups/alerts/list.html", context)


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        label=gettext_lazy("What was done"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("For example: called the patient, advised to come to the emergency department."),
    )


@login_required
@permission_required("followups.view_alert", raise_exception=True)
def alert_detail(request: HttpRequest, uuid) -> HttpResponse:
    """An alert with what fired it and the response's answers; a POST acknowledges it with a note."""
    alert = get_object_or_404(
        alerts_visible_to(request.user).select_related(
            "patient",
            "rule",
            "department",
            "recipient",
            "escalated_to",
            "acknowledged_by",
            "task",
            "response__version__questionnaire",
        ),
        uuid=uuid,
    )
    form = AcknowledgeForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if not request.user.has_perm("followups.acknowledge_alert"):
            raise PermissionDenied
        if form.is_valid():
            try:
                alert_acknowledge(alert=alert, actor=request.user, note=form.cleaned_data["note"])
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("The alert has been acknowledged."))
                return redirect("followups:alert-detail", uuid=alert.uuid)
        status = 400
    audit_read(event=Event.VIEW, instance=alert, details={"response": str(alert.response.uuid)})
    english = (get_language() or "").startswith("en")
    context = {
        "alert": alert,
        "patient": patient_view(request.user, alert.patient),
        "findings": _localised(alert.findings, english),
        "answers": _localised(answered_rows(alert.response.version.items, alert.response.answers), english),
        "form": form,
        "can_acknowledge": alert_acknowledgeable(request.user, alert),
    }
    return render(request, "followups/alerts/detail.html", context, status=status)


def _localised(rows: list[dict], english: bool) -> list[tuple[str, str]]:
    if english:
        return [(row.get("question_en") or row["question"], row.get("answer_en") or row["answer"]) for row in rows]
    return [(row["question"], row["answer"]) for row in rows]


# --- Rules -------------------------------------------------------------------------------------------------


class AlertRuleForm(forms.ModelForm):
    class Meta:
        model = AlertRule
        fields = list(RULE_FIELDS)

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["questionnaire"].queryset = Questionnaire.objects.order_by("title")
        # Choices name rows by their public keys: integer primary keys stay in the database.
        self.fields["questionnaire"].to_field_name = "uuid"
        self.fields["department"].to_field_name = "code"
        self.fields["escalate_after_minutes"].required = False
        if self.instance.pk is None:
            self.fields["escalate_after_minutes"].initial = settings.ALERT_ESCALATE_AFTER_MINUTES
        if not sees_every_department(user):
            # A department head writes the rules of their own departments.
            self.fields["department"].queryset = lead_departments(user)
            self.fields["department"].required = True

    def _post_clean(self) -> None:
        # The service validates the rule as a whole (and names the fields); see `alert_rule_save`.
        pass


def _rule_save(request: HttpRequest, form: AlertRuleForm, rule: AlertRule | None) -> AlertRule | None:
    return form_saved(form, RULE_FIELDS, lambda data: alert_rule_save(actor=request.user, data=data, rule=rule))


@login_required
@permission_required("followups.view_alertrule", raise_exception=True)
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = alert_rules_visible_to(request.user).select_related("questionnaire", "department")
    rows = [(rule, alert_rule_editable(request.user, rule)) for rule in rules.order_by("name")]
    return render(request, "followups/alerts/rules.html", {"rows": rows})


@login_required
@permission_required("followups.add_alertrule", raise_exception=True)
def rule_create(request: HttpRequest) -> HttpResponse:
    form = AlertRuleForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid() and _rule_save(request, form, None) is not None:
        messages.success(request, _("The alert rule has been saved."))
        return redirect("followups:alert-rules")
    status = 400 if form.is_bound else 200
    return render(request, "followups/alerts/rule_form.html", {"form": form, "rule": None}, status=status)


@login_required
@permission_required("followups.change_alertrule", raise_exception=True)
def rule_edit(request: HttpRequest, uuid) -> HttpResponse:
    rule = get_object_or_404(AlertRule, uuid=uuid)
    if not alert_rule_editable(request.user, rule):
        raise Http404  # another department's rule is answered like one that does not exist
    form = AlertRuleForm(request.POST or None, instance=rule, user=request.user)
    if request.method == "POST" and form.is_valid() and _rule_save(request, form, rule) is not None:
        messages.success(request, _("The alert rule has been saved."))
        return redirect("followups:alert-rules")
    status = 400 if form.is_bound else 200
    return render(request, "followups/alerts/rule_form.html", {"form": form, "rule": rule}, status=status)


urlpatterns = [
    path("alerts/", alert_list, name="alerts"),
    path("alerts/<uuid:uuid>/", alert_detail, name="alert-detail"),
    path("alert-rules/", rule_list, name="alert-rules"),
    path("alert-rules/new/", rule_create, name="alert-rule-create"),
    path("alert-rules/<uuid:uuid>/", rule_edit, name="alert-rule-edit"),
]
