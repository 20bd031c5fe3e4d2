"""Dashboards for administrators and department heads: satisfaction results and follow-up KPIs, with exports.

The pages show aggregates; the satisfaction comments are patients' own words, shown with the department
they rate and linked to the patient only for readers who may see that patient (audited).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Exists, OuterRef
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from analytics.selectors import (
    COMMENTS_PAGE,
    Filters,
    cached,
    default_period,
    department_names,
    doctor_names,
    followup_kpis,
    lowest_items,
    questionnaire_title,
    satisfaction_comments,
    satisfaction_results,
    satisfaction_versions,
    statistics_department_ids,
    statistics_departments,
)
from followups.models import Questionnaire, QuestionnairePurpose
from hcrm.audit import Event, audit_read
from hcrm.exports import EXPORT_FORMATS, file_response, table_file
from patients.models import Patient
from patients.selectors import patients_visible_to

# A longer period is a report for the analysts' tools, not a page.
LONGEST_PERIOD_DAYS = 3 * 366
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class PeriodForm(forms.Form):
    """GET filters: `from`, `to` (ISO dates), `department` (id); `questionnaire` (id) for satisfaction."""

    def __init__(self, data, *, user, with_questionnaire: bool) -> None:
        super().__init__(data)
        start, end = default_period()
        self.fields["from"] = forms.DateField(
            label=pgettext_lazy("period", "From"), required=False, initial=start, widget=DATE_INPUT
        )
        self.fields["to"] = forms.DateField(
            label=pgettext_lazy("period", "To"), required=False, initial=end, widget=DATE_INPUT
        )
        self.fields["department"] = forms.ModelChoiceField(
            label=gettext_lazy("Department"),
            queryset=statistics_departments(user),
            required=False,
            empty_label=gettext_lazy("All departments"),
        )
        if with_questionnaire:
            self.fields["questionnaire"] = forms.ModelChoiceField(
                label=gettext_lazy("Questionnaire"),
                queryset=Questionnaire.objects.filter(purpose=QuestionnairePurpose.SATISFACTION).order_by("title"),
                required=False,
                empty_label=gettext_lazy("All satisfaction surveys"),
            )
        self.fields["page"] = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)
        self.fields["export"] = forms.ChoiceField(
            choices=[(value, value) for value in EXPORT_FORMATS], required=False, widget=forms.HiddenInput
        )
        self.fields["table"] = forms.CharField(max_length=20, required=False, widget=forms.HiddenInput)

    def clean(self) -> dict:
        data = super().clean()
        default_start, default_end = default_period()
        start, end = data.get("from") or default_start, data.get("to") or default_end
        if "from" not in self.errors and "to" not in self.errors:
            if start > end:
                self.add_error("to", _("The end of the period is before its start."))
            elif (end - start).days > LONGEST_PERIOD_DAYS:
                self.add_error("from", _("Choose a period of at most three years."))
        data["from"], data["to"] = start, end
        return data


def _filters(request: HttpRequest, form: PeriodForm) -> Filters:
    scope = statistics_department_ids(request.user)
    data = form.cleaned_data
    department, questionnaire = data.get("department"), data.get("questionnaire")
    return Filters(
        start=data["from"],
        end=data["to"],
        scope=frozenset(scope) if scope is not None else None,
        department_id=department.pk if department else None,
        questionnaire_id=questionnaire.pk if questionnaire else None,
    )


@dataclass(frozen=True)
class Table:
    """One exportable table of a dashboard: its code (the `table` parameter), title, header and rows."""

    code: str
    title: str
    header: list[str]
    rows: list[list[Any]]


def _export(tables: dict[str, Table], filters: Filters, file_format: str, code: str) -> HttpResponse | None:
    table = tables.get(code)
    if table is None:
        return None
    content, content_type, count = table_file(table.header, table.rows, file_format=file_format, title=table.title)
    audit_read(
        event=Event.EXPORT,
        details={
            "record": "statistics",
            "table": code,
            "from": filters.start.isoformat(),
            "to": filters.end.isoformat(),
            "format": file_format,
            "rows": count,
        },
    )
    return file_response(content, content_type, f"{code}-{filters.start}-{filters.end}.{file_format}")


def _page(request: HttpRequest, *, template: str, with_questionnaire: bool, build: Callable) -> HttpResponse:
    form = PeriodForm(request.GET, user=request.user, with_questionnaire=with_questionnaire)
    if not form.is_valid():
        return render(request, template, {"form": form}, status=400)
    filters = _filters(request, form)
    context = build(request, filters, form.cleaned_data.get("page") or 1)
    file_format, code = form.cleaned_data.get("export"), form.cleaned_data.get("table")
    if file_format:
        download = _export({table.code: table for table in context["tables"]}, filters, file_format, code)
        if download is None:
            form.add_error("table", _("There is no table %(table)s on this page.") % {"table": code})
            return render(request, template, {"form": form}, status=400)
        return download
    query = request.GET.copy()
    for name in ("export", "table", "page"):
        query.pop(name, None)
    context |= {"form": form, "filters": filters, "query": query.urlencode()}
    return render(request, template, context)


def _rate(value) -> str:
    return "" if value is None else str(value)


def _satisfaction_rows(groups: dict, names: dict) -> list[dict]:
    rows = []
    for key, figures in groups.items():
        rows.append({"key": key, "name": names.get(key, ""), "figures": figures})
    return sorted(rows, key=lambda row: (row["name"] == "", row["name"]))


def _satisfaction_table(code: str, title: str, first: str, rows: list[dict], *, rates: bool) -> Table:
    header = [first, _("Responses")]
    if rates:
        header += [_("Invitations"), _("Completed"), _("Response rate (%)")]
    header += [_("Mean satisfaction"), _("Promoters"), _("Passives"), _("Detractors"), _("NPS")]
    body = []
    for row in rows:
        figures = row["figures"]
        line = [row["name"], figures.responses]
        if rates:
            line += [figures.invited, figures.answered, _rate(figures.response_rate)]
        line += [_rate(figures.mean), figures.promoters, figures.passives, figures.detractors, _rate(figures.nps)]
        body.append(line)
    return Table(code, title, [str(label) for label in header], body)


def _comments(request: HttpRequest, rows: list[dict], versions: dict, departments: dict, doctors: dict) -> list[dict]:
    """The comments as shown: a link to the patient only where the reader may see the patient (audited)."""
    patient_ids = sorted({row["patient_id"] for row in rows})
    links: dict[int, Any] = {}
    if request.user.has_perm("patients.view_patient") and patient_ids:
        visible = patients_visible_to(request.user).filter(pk=OuterRef("pk"))
        links = dict(Patient.objects.filter(Exists(visible), pk__in=patient_ids).values_list("pk", "uuid").order_by())
    audit_read(
        event=Event.LIST,
        details={
            "record": "satisfaction comment",
            "responses": [str(row["uuid"]) for row in rows],
            "patients": sorted(str(uuid) for uuid in links.values()),
        },
    )
    shown = []
    for row in rows:
        version = versions.get(row["version_id"])
        shown.append(
            {
                **row,
                "department": departments.get(row["department_id"], ""),
                "doctor": doctors.get(row["doctor_id"], ""),
                "questionnaire": questionnaire_title(version.questionnaire) if version else "",
                "patient_uuid": links.get(row["patient_id"]),
            }
        )
    return shown


def _satisfaction_context(request: HttpRequest, filters: Filters, page: int) -> dict:
    versions = satisfaction_versions(filters)
    result = cached(filters, "satisfaction", lambda: satisfaction_results(filters, versions))
    figures = result["figures"]
    comment_rows = satisfaction_comments(filters, versions, page=page)
    departments = department_names([*figures.by_department, *(row["department_id"] for row in comment_rows)])
    doctors = doctor_names([*figures.by_doctor, *(row["doctor_id"] for row in comment_rows)])
    by_department = _satisfaction_rows(figures.by_department, departments)
    by_doctor = _satisfaction_rows(figures.by_doctor, doctors)
    by_month = [
        {"key": month, "name": month.strftime("%Y-%m"), "figures": values}
        for month, values in sorted(figures.by_month.items(), key=lambda item: item[0] or dt.date.min)
        if month is not None
    ]
    items = lowest_items(figures, versions)
    tables = [
        _satisfaction_table("departments", _("By department"), _("Department"), by_department, rates=True),
        _satisfaction_table("doctors", _("By doctor"), _("Doctor"), by_doctor, rates=False),
        _satisfaction_table("months", _("By month"), _("Month"), by_month, rates=True),
        Table(
            "items",
            _("Lowest-scoring items"),
            [_("Questionnaire"), _("Item"), _("Answers"), _("Mean score")],
            [[item.questionnaire, item.text, item.answers, str(item.mean)] for item in items],
        ),
    ]
    return {
        "computed_at": result["computed_at"],
        "total": figures.total,
        "by_department": by_department,
        "by_doctor": by_doctor,
        "by_month": by_month,
        "items": items,
        "comments": _comments(request, comment_rows[:COMMENTS_PAGE], versions, departments, doctors),
        "page": page,
        "has_next": len(comment_rows) > COMMENTS_PAGE,
        "tables": tables,
        "cache_minutes": settings.ANALYTICS_CACHE_SECONDS // 60,
    }


def _kpi_context(request: HttpRequest, filters: Filters, page: int) -> dict:
    result = cached(filters, "followup-kpis", lambda: followup_kpis(filters))
    figures = result["figures"]
    names = department_names(figures.by_department)
    rows = sorted(
        ({"name": names.get(key, ""), "figures": values} for key, values in figures.by_department.items()),
        key=lambda row: (row["name"] == "", row["name"]),
    )
    header = [
        _("Department"),
        _("Discharges"),
        _("With a follow-up"),
        _("Coverage (%)"),
        _("Tasks due"),
        _("Tried"),
        _("Connected"),
        _("Connect rate (%)"),
        _("Completed"),
        _("Completion rate (%)"),
        _("On time"),
        _("On-time rate (%)"),
    ]
    body = [
        [
            row["name"],
            kpis.discharges,
            kpis.covered,
            _rate(kpis.coverage),
            kpis.due,
            kpis.tried,
            kpis.connected,
            _rate(kpis.connect_rate),
            kpis.completed,
            _rate(kpis.completion_rate),
            kpis.on_time,
            _rate(kpis.on_time_rate),
        ]
        for row in rows
        for kpis in [row["figures"]]
    ]
    return {
        "computed_at": result["computed_at"],
        "total": figures.total,
        "rows": rows,
        "tables": [Table("departments", _("Follow-up KPIs"), header, body)],
        "grace_days": settings.ANALYTICS_ON_TIME_GRACE_DAYS,
        "cache_minutes": settings.ANALYTICS_CACHE_SECONDS // 60,
    }


@login_required
@permission_required("analytics.view_statistics", raise_exception=True)
def satisfaction(request: HttpRequest) -> HttpResponse:
    """Satisfaction survey results: response rate, mean, NPS by department, doctor and month; items; comments."""
    return _page(request, template="analytics/satisfaction.html", with_questionnaire=True, build=_satisfaction_context)


@login_required
@permission_required("analytics.view_statistics", raise_exception=True)
def followup_kpi_page(request: HttpRequest) -> HttpResponse:
    """Follow-up KPIs per department: coverage of discharges, connect, completion and on-time rates."""
    return _page(request, template="analytics/followup_kpis.html", with_questionnaire=False, build=_kpi_context)


urlpatterns = [
    path("satisfaction/", satisfaction, name="satisfaction"),
    path("followups/", followup_kpi_page, name="followup-kpis"),
]
