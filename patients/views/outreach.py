"""Console page of the outreach settings: quiet hours, the daily cap, RFM window and boundaries, recompute."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from patients.models import (
    PatientStats,
)
from patients.selectors.outreach import outreach_settings
from patients.services import outreach
from patients.tasks.segments import patient_stats_recompute_start


def _number(**attrs) -> forms.NumberInput:
    return forms.NumberInput(attrs={"inputmode": "numeric", **attrs})


class OutreachSettingsForm(forms.Form):
    quiet_hours_start = forms.TimeField(
        label=gettext_lazy("Quiet hours start"), widget=forms.TimeInput({"type": "time"}, format="%H:%M")
    )
    quiet_hours_end = forms.TimeField(
        label=gettext_lazy("Quiet hours end"), widget=forms.TimeInput({"type": "time"}, format="%H:%M")
    )
    daily_message_cap = forms.CharField(label=gettext_lazy("Messages per patient per day"), widget=_number())
    rfm_window_days = forms.CharField(label=gettext_lazy("RFM window (days)"), widget=_number())
    rfm_recency_days = forms.CharField(
        label=gettext_lazy("Recency boundaries (days)"),
        help_text=gettext_lazy(
            "Four increasing numbers: a last visit within the first scores 5, beyond the last scores 1."
        ),
    )
    rfm_frequency_visits = forms.CharField(
        label=gettext_lazy("Frequency boundaries (visits)"),
        help_text=gettext_lazy("Four increasing numbers: reaching the first scores 2, reaching the last scores 5."),
    )
    rfm_monetary_yuan = forms.CharField(
        label=gettext_lazy("Monetary boundaries (yuan)"),
        help_text=gettext_lazy("Four increasing amounts: reaching the first scores 2, reaching the last scores 5."),
    )


def _bands(boundaries: list, unit: str, *, recency: bool = False) -> list[tuple[int, str]]:
    """Which figure earns which score, as the settings define it today."""
    b = [f"{value:,}" for value in boundaries]
    if recency:
        return [
            (5, f"≤ {b[0]} {unit}"),
            (4, f"≤ {b[1]} {unit}"),
            (3, f"≤ {b[2]} {unit}"),
            (2, f"≤ {b[3]} {unit}"),
            (1, f"> {b[3]} {unit}"),
        ]
    return [
        (5, f"≥ {b[3]} {unit}"),
        (4, f"≥ {b[2]} {unit}"),
        (3, f"≥ {b[1]} {unit}"),
        (2, f"≥ {b[0]} {unit}"),
        (1, f"< {b[0]} {unit}"),
    ]


@login_required
@permission_required("patients.view_outreachsettings", raise_exception=True)
def outreach_settings_page(request: HttpRequest) -> HttpResponse:
    row = outreach_settings()
    initial = {
        "quiet_hours_start": row.quiet_hours_start,
        "quiet_hours_end": row.quiet_hours_end,
        "daily_message_cap": row.daily_message_cap,
        "rfm_window_days": row.rfm_window_days,
        **{field: ", ".join(str(value) for value in getattr(row, field)) for field in outreach.BOUNDARY_FIELDS},
    }
    form = OutreachSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST":
        if not request.user.has_perm("patients.change_outreachsettings"):
            raise PermissionDenied
        if form.is_valid():
            try:
                outreach.outreach_settings_update(actor=request.user, data=form.cleaned_data)
            except ValidationError as error:
                for field, errors in error.error_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, _("Settings saved. Scores use the new boundaries from the next recompute."))
                return redirect("patients:outreach-settings")
    context = {
        "form": form,
        "settings_row": row,
        "bands": [
            (_("Recency"), _bands(row.rfm_recency_days, _("days since the last visit"), recency=True)),
            (_("Frequency"), _bands(row.rfm_frequency_visits, _("visits in the window"))),
            (_("Monetary"), _bands(row.rfm_monetary_yuan, _("yuan in the window"))),
        ],
        "stats": PatientStats.objects.aggregate(computed_at=Max("computed_at"), patients=Count("pk")),
    }
    return render(request, "patients/segments/settings.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
@permission_required("patients.change_outreachsettings", raise_exception=True)
def patient_stats_recompute(request: HttpRequest) -> HttpResponse:
    if patient_stats_recompute_start():
        messages.success(request, _("Recomputing the statistics of every patient in the background."))
    else:
        messages.warning(request, _("A recompute is already running."))
    return redirect("patients:outreach-settings")


urlpatterns = [
    path("settings/", outreach_settings_page, name="outreach-settings"),
    path("settings/recompute/", patient_stats_recompute, name="patient-stats-recompute"),
]
